// File: solver/lemma_test_util.h
//
// What the *_lemmas_test.cc files share: a result as one readable block, and
// a counterexample's "field = value" lines as a map. Test-only.

#ifndef HMMREF_SOLVER_LEMMA_TEST_UTIL_H_
#define HMMREF_SOLVER_LEMMA_TEST_UTIL_H_

#include <map>
#include <string>

#include "solver/lemma.h"

namespace hmm::solver {

// "<name>: <status> in <s> s (rlimit <n>)", the detail and the counterexample.
inline std::string Describe(const LemmaResult& r) {
  return r.name + ": " + LemmaStatusName(r.status) + " in " + std::to_string(r.seconds) +
         " s (rlimit " + std::to_string(r.rlimit) + ")\n  detail: " + r.detail +
         "\n  counterexample:\n" + r.counterexample;
}

// The "field = value" lines of `text`, by field.
inline std::map<std::string, std::string> Fields(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    const size_t eq = line.find(" = ");
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 3);
    begin = end + 1;
  }
  return out;
}

}  // namespace hmm::solver

#endif  // HMMREF_SOLVER_LEMMA_TEST_UTIL_H_
