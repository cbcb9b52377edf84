// File: solver/lemma_text.h
//
// Counterexamples and witnesses as text: one "field = value" line per field,
// numbers from a model. Internal to //solver:lemmas.

#ifndef HMMREF_SOLVER_LEMMA_TEXT_H_
#define HMMREF_SOLVER_LEMMA_TEXT_H_

#include <z3++.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/types.h"

#include "solver/prove.h"

namespace hmm::solver::text {

using ::hmm::Hex;  // model/types.h

inline std::string Line(const std::string& field, const std::string& value) {
  return field + " = " + value + "\n";
}

inline std::string Bool(bool b) { return b ? "true" : "false"; }

// The value of bit-vector `e` in `m` (unconstrained parts completed).
inline uint64_t U64(const z3::model& m, const z3::expr& e) {
  return m.eval(e, /*model_completion=*/true).get_numeral_uint64();
}

// "name = true|false" and "name = 0x..." for term `b` or bit-vector `bv` in `m`.
inline std::string RenderBool(const std::string& name, const z3::expr& b, const z3::model& m) {
  return Line(name, Bool(m.eval(b, /*model_completion=*/true).is_true()));
}

inline std::string RenderNum(const std::string& name, const z3::expr& bv, const z3::model& m) {
  return Line(name, Hex(U64(m, bv)));
}

inline std::vector<Named> Concat(std::vector<Named> a, const std::vector<Named>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace hmm::solver::text

#endif  // HMMREF_SOLVER_LEMMA_TEXT_H_
