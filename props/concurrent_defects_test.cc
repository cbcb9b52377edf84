// File: props/concurrent_defects_test.cc
//
// Each check of RunConcurrent (props/concurrent.h) fails when the impl is
// broken the way it forbids, with the seeded defects of impl/defects.h
// (//impl:kernel_defects), in the default profile:
//   - a device write through an entry mprotect left writable
//     (kNoInvalidateOnMprotect): the hazard, named InvMirrorSubsetOfCpu,
//     worded as an impl bug;
//   - a page reference munmap leaks (kMunmapLeaksRef): "rep";
//   - a migration that loses the page's bytes (kMigrateLosesDirtyData):
//     "linearizable", the model's bytes beside the impl's;
//   - the default profile invalidating mirrors at range_end as v18 did
//     (kDefaultInvalidatesAtEnd), which no sequential run can see: the
//     hazard, worded as an impl bug;
// and the race suite itself finds the last two (the mirror suite does not
// find the concurrency-only one). Each case passes with the defect off.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "impl/defects.h"
#include "props/concurrent.h"
#include "props/suite.h"
#include "props/trace.h"
#include "props/trace_test_util.h"

namespace hmm::props {
namespace {

using impl::Defect;

class ConcurrentDefect : public ::testing::Test {
 protected:
  void TearDown() override { impl::SetSeededDefect(Defect::kNone); }
};

using testing::MustParse;

// "ab" at the first page, which the device's page table maps writable.
ConcurrentCase Case(const std::string& cpu, const std::string& dev) {
  ConcurrentCase c;
  c.prologue = MustParse(
      "process\n"
      "mmap 1 0x10000000 0x4000 rw private fixed\n"
      "write 1 0x10000000 \"ab\"\n"
      "mirror 0 1\n"
      "dread 1 0x10000000 1\n");
  c.actors.push_back({"cpu0", MustParse(cpu)});
  c.actors.push_back({"dev1", MustParse(dev)});
  return c;
}

// Runs `c` with `defect` on (it must fail `check`), then off (it must pass).
ConcurrentReport RunWith(Defect defect, const ConcurrentCase& c, const std::string& check) {
  impl::SetSeededDefect(defect);
  const ConcurrentReport broken = RunConcurrent(c);
  EXPECT_FALSE(broken.ok) << impl::DefectName(defect);
  EXPECT_EQ(broken.check, check) << FormatConcurrentReport(c, broken);
  impl::SetSeededDefect(Defect::kNone);
  const ConcurrentReport fixed = RunConcurrent(c);
  EXPECT_TRUE(fixed.ok) << FormatConcurrentReport(c, fixed);
  return broken;
}

TEST_F(ConcurrentDefect, StaleWriteEntryIsAHazardInTheDefaultProfile) {
  const ConcurrentCase c =
      Case("mprotect 1 0x10000000 0x1000 r\n", "dwrite 1 0x10000000 fill:0x7*0x1000\n");
  const ConcurrentReport r = RunWith(Defect::kNoInvalidateOnMprotect, c, "InvMirrorSubsetOfCpu");
  ASSERT_FALSE(r.hazards.empty());
  EXPECT_TRUE(r.hazards[0].write);
  const std::string text = FormatConcurrentReport(c, r);
  EXPECT_NE(text.find("wrote 0x10000000 through its entry"), std::string::npos) << text;
  EXPECT_NE(text.find("read-only) -- the default profile"), std::string::npos) << text;
  EXPECT_NE(text.find("an impl bug"), std::string::npos) << text;
}

TEST_F(ConcurrentDefect, LeakedReferenceFailsTheRepInvariant) {
  const ConcurrentCase c = Case("munmap 1 0x10000000 0x1000\n", "dread 1 0x10001000 1\n");
  const ConcurrentReport r = RunWith(Defect::kMunmapLeaksRef, c, "rep");
  ASSERT_FALSE(r.problems.empty());
}

TEST_F(ConcurrentDefect, LostBytesAreNotLinearizable) {
  const ConcurrentCase c = Case("read 1 0x10003000 2\n", "migrate_to_dev 1 0x10000000 1\n");
  const ConcurrentReport r = RunWith(Defect::kMigrateLosesDirtyData, c, "linearizable");
  const std::string text = FormatConcurrentReport(c, r);
  EXPECT_NE(text.find("not linearizable"), std::string::npos) << text;
  EXPECT_NE(text.find("migrate_to_dev 1 0x10000000 1: impl returned ok"), std::string::npos) << text;
}

// munmap against a device read of the page it unmaps: some schedule of 10
// bytes (each 0 or 1) runs the read at munmap's pte_changed.
TEST_F(ConcurrentDefect, InvalidateAtEndIsAHazardInTheDefaultProfile) {
  ConcurrentCase c = Case("munmap 1 0x10000000 0x1000\n", "dread 1 0x10000000 1\n");
  impl::SetSeededDefect(Defect::kDefaultInvalidatesAtEnd);
  ConcurrentReport r;
  for (uint32_t bits = 0; bits < (1u << 10) && r.ok; ++bits) {
    c.schedule.assign(10, 0);
    for (size_t i = 0; i < 10; ++i) c.schedule[i] = (bits >> i) & 1;
    r = RunConcurrent(c);
  }
  ASSERT_FALSE(r.ok) << "no schedule of 10 bytes lets the device read inside the munmap";
  EXPECT_EQ(r.check, "InvMirrorSubsetOfCpu") << FormatConcurrentReport(c, r);
  ASSERT_FALSE(r.hazards.empty());
  const std::string text = FormatConcurrentReport(c, r);
  EXPECT_NE(text.find("pte_changed"), std::string::npos) << text;
  EXPECT_NE(text.find("(cpu: none) -- the default profile"), std::string::npos) << text;
  EXPECT_NE(text.find("an impl bug"), std::string::npos) << text;
  impl::SetSeededDefect(Defect::kNone);
  const ConcurrentReport fixed = RunConcurrent(c);
  EXPECT_TRUE(fixed.ok) << FormatConcurrentReport(c, fixed);
}

SuiteOptions Suite(const std::string& name, uint64_t runs) {
  SuiteOptions options;
  options.name = name;
  options.seed = 1;
  options.runs = runs;
  return options;
}

// The race suite finds `defect` within 300 sequences, shrunk to at most 3
// operations, and the case passes without it. Returns the failed check.
std::string RaceSuiteFinds(Defect defect) {
  impl::SetSeededDefect(defect);
  const SuiteResult r = RunSuite(Suite("race", 300));
  EXPECT_FALSE(r.passed) << impl::DefectName(defect) << " not caught in " << r.sequences
                         << " sequences";
  EXPECT_LE(ActorOpCount(r.race_case), 3u) << r.failure;
  impl::SetSeededDefect(Defect::kNone);
  EXPECT_TRUE(RunConcurrent(r.race_case).ok) << r.failure;
  return r.failed_check;
}

TEST_F(ConcurrentDefect, RaceSuiteFindsALostMigration) {
  EXPECT_FALSE(RaceSuiteFinds(Defect::kMigrateLosesDirtyData).empty());
}

TEST_F(ConcurrentDefect, RaceSuiteFindsInvalidateAtEndThatSequentialSuitesCannot) {
  impl::SetSeededDefect(Defect::kDefaultInvalidatesAtEnd);
  SuiteOptions mirror = Suite("mirror", 200);
  mirror.profile = "default";
  const SuiteResult sequential = RunSuite(mirror);
  EXPECT_TRUE(sequential.passed) << sequential.failure;
  EXPECT_EQ(RaceSuiteFinds(Defect::kDefaultInvalidatesAtEnd), "InvMirrorSubsetOfCpu");
}

}  // namespace
}  // namespace hmm::props
