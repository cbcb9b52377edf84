// File: props/defects_test.cc
//
// The honest-check test: each suite, run against the impl built with each of
// its seeded defects (//impl:kernel_defects), must find a counterexample and
// shrink it to at most 8 operations (set-up lines not counted). A suite that
// passes here proves nothing elsewhere. It also prints, and bounds, what the
// trace-level pass (props/trace_shrink.h) adds after rapidcheck's shrinking;
// docs/shrinking.md tabulates the output.

#include <algorithm>

#include <gtest/gtest.h>

#include "impl/defects.h"
#include "props/runner.h"
#include "props/suite.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

using impl::Defect;

struct Case {
  Defect defect;
  const char* suite;
  size_t shortest;  // the shortest known reproduction, in lines (docs/shrinking.md)
};

class SeededDefect : public ::testing::TestWithParam<Case> {
 protected:
  void TearDown() override { impl::SetSeededDefect(Defect::kNone); }
};

TEST_P(SeededDefect, IsCaughtAndShrunk) {
  const Defect defect = GetParam().defect;
  impl::SetSeededDefect(defect);
  SuiteOptions options;
  options.name = GetParam().suite;
  options.seed = 7;
  options.runs = 1000;
  options.max_steps = 60;
  SuiteResult r = RunSuite(options);
  ASSERT_FALSE(r.passed) << impl::DefectName(defect) << " was not caught in " << r.sequences
                         << " sequences";
  ASSERT_FALSE(r.counterexample.empty());
  // Set-up lines (ram, physmem_bits, ...) describe the machine: only operations count.
  const size_t operations = std::count_if(r.counterexample.begin(), r.counterexample.end(),
                                          [](const Op& op) { return !IsSetupKind(op.kind); });
  EXPECT_LE(operations, 8u)
      << FormatTrace(r.counterexample, impl::DefectName(defect));
  EXPECT_GE(r.original_length, r.counterexample.size());
  // The trace-level pass never lengthens rapidcheck's result, and keeps to its budget.
  EXPECT_GE(r.original_length, r.rc_shrunk_length);
  EXPECT_LE(r.counterexample.size(), r.rc_shrunk_length);
  EXPECT_LE(r.trace_shrink_runs, 2000u);
  // The project's shrinking target: at most 1.5 times the shortest known
  // reproduction. (Its other half, under 10 s, is a time: it is measured and
  // reported in docs/shrinking.md, not asserted here, where sanitizer builds
  // run several times slower.)
  EXPECT_LE(2 * r.counterexample.size(), 3 * GetParam().shortest)
      << FormatTrace(r.counterexample, impl::DefectName(defect));
  // The minimized trace replays to the same failure, and only with the defect.
  EXPECT_FALSE(RunTrace(r.counterexample).ok);
  impl::SetSeededDefect(Defect::kNone);
  EXPECT_TRUE(RunTrace(r.counterexample).ok)
      << FormatTrace(r.counterexample, "fails without the defect");
  std::cout << impl::DefectName(defect) << ": " << r.original_length << " -> "
            << r.rc_shrunk_length << " (rapidcheck) -> " << r.counterexample.size()
            << " steps (trace pass), " << r.shrinks << " shrinks, " << r.trace_shrink_accepted
            << "/" << r.trace_shrink_runs << " trace candidates kept, " << r.seconds << " s ("
            << r.trace_shrink_seconds << " s trace pass)\n"
            << FormatTrace(r.counterexample, impl::DefectName(defect));
}

INSTANTIATE_TEST_SUITE_P(
    All, SeededDefect,
    ::testing::Values(Case{Defect::kCowNotBroken, "cpu", 5},
                      Case{Defect::kZeroPageWrittenInPlace, "cpu", 4},
                      Case{Defect::kMunmapLeaksRef, "cpu", 4},
                      Case{Defect::kMprotectKeepsWrite, "cpu", 4},
                      Case{Defect::kForkCopiesSharedPtes, "cpu", 4},
                      Case{Defect::kPageFreeTwice, "devmem", 7},
                      Case{Defect::kForkKeepsDeviceWrite, "devmem", 7},
                      Case{Defect::kPlacementOverlapsRam, "devmem", 1},
                      Case{Defect::kNoInvalidateOnMprotect, "mirror", 5},
                      Case{Defect::kRangeDoneAlwaysValid, "mirror", 6},
                      Case{Defect::kForkSkipsMirrorInvalidate, "mirror", 5},
                      Case{Defect::kMigrateLosesDirtyData, "migrate", 5},
                      Case{Defect::kMigrateLeavesMigrationEntry, "migrate", 5},
                      Case{Defect::kMigratePinnedPage, "migrate", 5},
                      Case{Defect::kMigrateBackGainsWrite, "migrate", 5},
                      Case{Defect::kMigratePageFreeTwice, "migrate", 5}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string name = impl::DefectName(info.param.defect);
      return name.substr(1);  // "kCowNotBroken" -> "CowNotBroken"
    });

}  // namespace
}  // namespace hmm::props
