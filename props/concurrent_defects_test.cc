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
// and the race suite itself finds the last one. Each case passes with the
// defect off.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "impl/defects.h"
#include "props/concurrent.h"
#include "props/suite.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

using impl::Defect;

class ConcurrentDefect : public ::testing::Test {
 protected:
  void TearDown() override { impl::SetSeededDefect(Defect::kNone); }
};

std::vector<Op> Parse(const std::string& text) {
  std::vector<Op> ops;
  std::string error;
  EXPECT_TRUE(ParseTrace(text, "test", &ops, &error)) << error;
  return ops;
}

// "ab" at the first page, which the device's page table maps writable.
ConcurrentCase Case(const std::string& cpu, const std::string& dev) {
  ConcurrentCase c;
  c.prologue = Parse(
      "process\n"
      "mmap 1 0x10000000 0x4000 rw private fixed\n"
      "write 1 0x10000000 \"ab\"\n"
      "mirror 0 1\n"
      "dread 1 0x10000000 1\n");
  c.actors.push_back({"cpu0", Parse(cpu)});
  c.actors.push_back({"dev1", Parse(dev)});
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

TEST_F(ConcurrentDefect, RaceSuiteFindsALostMigration) {
  impl::SetSeededDefect(Defect::kMigrateLosesDirtyData);
  SuiteOptions options;
  options.name = "race";
  options.seed = 1;
  options.runs = 300;
  const SuiteResult r = RunSuite(options);
  ASSERT_FALSE(r.passed) << "not caught in " << r.sequences << " sequences";
  EXPECT_LE(ActorOpCount(r.race_case), 3u) << r.failure;
  EXPECT_FALSE(r.failed_check.empty());
  impl::SetSeededDefect(Defect::kNone);
  EXPECT_TRUE(RunConcurrent(r.race_case).ok) << r.failure;
}

}  // namespace
}  // namespace hmm::props
