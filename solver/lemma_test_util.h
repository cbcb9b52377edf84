// File: solver/lemma_test_util.h
//
// What the *_lemmas_test.cc files share: a result as one readable block, a
// counterexample's "field = value" lines as a map, and the checks every
// registered lemma and control gets. Test-only.

#ifndef HMMREF_SOLVER_LEMMA_TEST_UTIL_H_
#define HMMREF_SOLVER_LEMMA_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>

#include "solver/lemma.h"
#include "solver/prove.h"

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

using FieldMap = std::map<std::string, std::string>;

// Field `name` of `f`; a test failure (and "") if it is missing.
inline std::string Get(const FieldMap& f, const std::string& name) {
  const auto it = f.find(name);
  EXPECT_NE(it, f.end()) << "no field " << name;
  return it == f.end() ? "" : it->second;
}

// Runs `lemma` and prints it; it must be proved, without a counterexample.
inline void ExpectProved(const Lemma& lemma) {
  const LemmaResult r = RunLemma(lemma);
  std::printf("%s\n", Describe(r).c_str());
  EXPECT_EQ(r.name, lemma.name);
  EXPECT_EQ(r.status, LemmaStatus::kProved) << Describe(r);
  EXPECT_TRUE(r.counterexample.empty());
}

// Runs `e`'s negative control and prints it; it must fail a claim with a
// counterexample, whose fields it returns ({} if it did not fail).
inline FieldMap ExpectControlFails(const LemmaWithControl& e) {
  EXPECT_EQ(e.control.name, e.lemma.name + "NegativeControl");
  const LemmaResult r = RunLemma(e.control);
  std::printf("%s\n", Describe(r).c_str());
  EXPECT_EQ(r.name, e.control.name);
  EXPECT_EQ(r.status, LemmaStatus::kFailed) << Describe(r);
  EXPECT_EQ(r.detail.rfind("claim fails: ", 0), 0u) << r.detail;
  EXPECT_FALSE(r.counterexample.empty());
  return r.status == LemmaStatus::kFailed ? Fields(r.counterexample) : FieldMap{};
}

// `e` proves `invariant` (its statement names it), its control says what it
// breaks, and the registry holds the lemma once, paired with the control.
inline void ExpectRegistered(const LemmaWithControl& e, const std::string& invariant) {
  const std::string& name = e.lemma.name;
  EXPECT_EQ(e.lemma.invariant, invariant) << name;
  EXPECT_EQ(e.control.invariant, invariant) << name;
  EXPECT_NE(e.lemma.statement.find(invariant), std::string::npos) << name;
  EXPECT_NE(e.control.statement.find("Negative control over "), std::string::npos) << name;
  size_t found = 0;
  for (size_t i = 0; i < AllLemmas().size(); ++i) {
    if (AllLemmas()[i].name != name) continue;
    ++found;
    EXPECT_EQ(NegativeControls()[i].name, e.control.name);
  }
  EXPECT_EQ(found, 1u) << name;
}

}  // namespace hmm::solver

// Defines the parameterized tests `Prefix/Suite.Proved/<lemma>` and
// `Prefix/Suite.NegativeControlFailsWithCounterexample/<lemma>` over
// `entries()`, the registry entries of one *_lemmas.cc: each lemma is proved,
// and each control fails with a counterexample whose fields
// `expect_breaks(invariant, fields)` re-checks.
#define HMM_LEMMA_ENTRY_TESTS(Prefix, Suite, entries, expect_breaks)                  \
  class Suite : public testing::TestWithParam<size_t> {};                             \
  TEST_P(Suite, Proved) { ::hmm::solver::ExpectProved(entries()[GetParam()].lemma); } \
  TEST_P(Suite, NegativeControlFailsWithCounterexample) {                             \
    const ::hmm::solver::LemmaWithControl& e = entries()[GetParam()];                 \
    const ::hmm::solver::FieldMap f = ::hmm::solver::ExpectControlFails(e);           \
    if (!f.empty()) expect_breaks(e.lemma.invariant, f);                              \
  }                                                                                   \
  INSTANTIATE_TEST_SUITE_P(                                                           \
      Prefix, Suite, testing::Range<size_t>(0, entries().size()),                     \
      [](const testing::TestParamInfo<size_t>& info) { return entries()[info.param].lemma.name; })

#endif  // HMMREF_SOLVER_LEMMA_TEST_UTIL_H_
