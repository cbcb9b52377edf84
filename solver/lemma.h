// File: solver/lemma.h
//
// The registry of Z3 lemmas. A lemma is one function that asserts the negation
// of its claim under named, tracked assertions and expects unsat (the prove()
// idiom); on sat it renders the counterexample as readable field values. Every
// lemma has a negative control: the same claim over a deliberately broken
// variant, which must come back sat with a counterexample.

#ifndef HMMREF_SOLVER_LEMMA_H_
#define HMMREF_SOLVER_LEMMA_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hmm::solver {

enum class LemmaStatus {
  kProved,   // the negation is unsat
  kFailed,   // sat: `counterexample` holds the model
  kUnknown,  // Z3 gave up (resource limit); `detail` says why
  kError,    // a z3::exception; `detail` holds its message
};

const char* LemmaStatusName(LemmaStatus s);
// How tables show a status: "proved", "FAILED" (Z3 found a counterexample),
// "unknown", "error".
const char* LemmaStatusWord(LemmaStatus s);

struct LemmaResult {
  std::string name;
  LemmaStatus status = LemmaStatus::kError;
  double seconds = 0;
  uint64_t rlimit = 0;          // the resource limit the lemma ran under
  std::string counterexample;   // sat only: "field = value" lines
  std::string detail;           // failed assertion names, unknown reason, error text
};

struct Lemma {
  std::string name;       // e.g. "LemmaPteDecodeEncodeRoundTrip"
  std::string statement;  // one sentence
  std::string invariant;  // the named invariant it proves (docs/invariants.md), or ""
  std::function<LemmaResult()> run;
};

// Whether a proved lemma's proof is a witness (an existence claim, such as the
// v18 placement collision): its `detail` then starts "witness" and shows it.
bool HasWitness(const LemmaResult& r);

// Runs one lemma, named and timed; an exception that escapes it becomes kError
// with its message rather than a crash.
LemmaResult RunLemma(const Lemma& lemma);

// Every lemma hmmref proves, in a stable order.
const std::vector<Lemma>& AllLemmas();
// For each lemma in AllLemmas(), a negative control of the same name with the
// suffix "NegativeControl": expected to end kFailed with a counterexample.
const std::vector<Lemma>& NegativeControls();

}  // namespace hmm::solver

#endif  // HMMREF_SOLVER_LEMMA_H_
