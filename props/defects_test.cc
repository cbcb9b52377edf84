// File: props/defects_test.cc
//
// The honest-check test: the CPU suite, run against the impl built with each
// seeded defect (//impl:kernel_defects), must find a counterexample and shrink
// it to at most 8 steps. A suite that passes here proves nothing elsewhere.

#include <gtest/gtest.h>

#include "impl/defects.h"
#include "props/runner.h"
#include "props/suite.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

using impl::Defect;

class SeededDefect : public ::testing::TestWithParam<Defect> {
 protected:
  void TearDown() override { impl::SetSeededDefect(Defect::kNone); }
};

TEST_P(SeededDefect, IsCaughtAndShrunk) {
  impl::SetSeededDefect(GetParam());
  SuiteOptions options;
  options.seed = 7;
  options.runs = 1000;
  options.max_steps = 60;
  SuiteResult r = RunSuite(options);
  ASSERT_FALSE(r.passed) << impl::DefectName(GetParam()) << " was not caught in " << r.sequences
                         << " sequences";
  ASSERT_FALSE(r.counterexample.empty());
  EXPECT_LE(r.counterexample.size(), 8u)
      << FormatTrace(r.counterexample, impl::DefectName(GetParam()));
  EXPECT_GE(r.original_length, r.counterexample.size());
  // The minimized trace replays to the same failure, and only with the defect.
  EXPECT_FALSE(RunTrace(r.counterexample).ok);
  impl::SetSeededDefect(Defect::kNone);
  EXPECT_TRUE(RunTrace(r.counterexample).ok)
      << FormatTrace(r.counterexample, "fails without the defect");
  std::cout << impl::DefectName(GetParam()) << ": " << r.original_length << " -> "
            << r.counterexample.size() << " steps, " << r.shrinks << " shrinks, " << r.seconds
            << " s\n"
            << FormatTrace(r.counterexample, impl::DefectName(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(All, SeededDefect,
                         ::testing::Values(Defect::kCowNotBroken, Defect::kZeroPageWrittenInPlace,
                                           Defect::kMunmapLeaksRef, Defect::kMprotectKeepsWrite,
                                           Defect::kForkCopiesSharedPtes),
                         [](const ::testing::TestParamInfo<Defect>& info) {
                           std::string name = impl::DefectName(info.param);
                           return name.substr(1);  // "kCowNotBroken" -> "CowNotBroken"
                         });

}  // namespace
}  // namespace hmm::props
