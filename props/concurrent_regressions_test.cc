// File: props/concurrent_regressions_test.cc
//
// The race suite's counterexamples that were gaps of its checker, found by
// sweeping `hmmref check --suite race --seed S` (docs/concurrency.md, "What
// the seed sweep found"), each kept as the shrunk case the sweep printed:
// every one passes now. Where a rule of the checker was widened for a case
// (a migration that may have skipped pages while another actor touched its
// range), the same history with the migration moved after everything else
// (nothing overlapping it) must fail, so that the rule stays as narrow as
// the kernel behaviour it admits.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "props/concurrent.h"
#include "props/trace.h"
#include "props/trace_test_util.h"

namespace hmm::props {
namespace {

using testing::MustParse;

const char kFourPages[] =
    "process\n"
    "mmap 1 0x10000000 0x4000 rw private fixed\n";

ConcurrentCase Case(const std::string& prologue, const std::vector<ActorOps>& actors,
                    const std::vector<uint8_t>& schedule) {
  ConcurrentCase c;
  c.prologue = MustParse(prologue);
  c.actors = actors;
  c.schedule = schedule;
  return c;
}

ActorOps Actor(const std::string& name, const std::string& ops) { return {name, MustParse(ops)}; }

// The history entry of `c`'s run whose op is `line`.
const HistoryOp* Entry(const ConcurrentReport& r, const std::string& line) {
  const Op want = MustParse(line).at(0);
  for (const HistoryOp& e : r.history) {
    if (FormatOp(e.op) == FormatOp(want)) return &e;
  }
  return nullptr;
}

// Runs `c`, which must pass; then, when `move` names an operation, runs it
// again with that operation moved after every other (no overlap left),
// which must fail the linearizability check.
void ExpectPassesAndNeedsTheOverlap(const ConcurrentCase& c, const std::string& move) {
  const ConcurrentReport r = RunConcurrent(c);
  ASSERT_TRUE(r.ok) << FormatConcurrentReport(c, r);
  if (move.empty()) return;
  ASSERT_NE(Entry(r, move), nullptr) << move << "\n" << FormatConcurrentReport(c, r);
  ConcurrentOptions options;
  options.tamper_history_for_test = [&move](std::vector<HistoryOp>* h) {
    uint64_t last = 0;
    for (const HistoryOp& e : *h) last = std::max(last, e.respond);
    const Op want = MustParse(move).at(0);
    for (HistoryOp& e : *h) {
      if (FormatOp(e.op) != FormatOp(want)) continue;
      e.invoke = last + 1;
      e.respond = last + 2;
    }
  };
  const ConcurrentReport moved = RunConcurrent(c, options);
  EXPECT_FALSE(moved.ok) << "without the overlap the rule must not apply\n"
                         << FormatConcurrentReport(c, moved);
  EXPECT_EQ(moved.check, "linearizable");
}

// Seed 2: migrate_to_dev collects an empty slot, the owner device's dwrite
// faults a RAM page in there first, the insertion loses, and the driver's
// read-back counts the page through the dwrite's entry.
TEST(ConcurrentRegressions, EmptySlotLostToTheOwnDevicesFault) {
  const ConcurrentCase c = Case(std::string(kFourPages) + "mirror 0 1\nmirror 1 1\n",
                                {Actor("cpu0", "munmap 1 0x10001000 0x1000\n"),
                                 Actor("dev1",
                                       "snapshot 1 0x10001000 1\n"
                                       "dwrite 1 0x10002000 fill:0x1*4096\n"),
                                 Actor("dev2", "migrate_to_dev 1 0x10001000 2\n")},
                                {0, 1, 0, 1, 2, 1, 2, 1, 1, 1, 0, 0, 2, 1, 0, 0, 2, 0, 1, 0, 0, 0, 2,
                                 1, 0, 2});
  ExpectPassesAndNeedsTheOverlap(c, "migrate_to_dev 1 0x10001000 2");
}

// Seed 25: migrate_to_dev over a hole returns kInval after the page before
// the hole lost its empty slot to a dwrite's fault; no read-back says so.
TEST(ConcurrentRegressions, HoleAfterALostSlotIsKInvalWithTheSlotLost) {
  const ConcurrentCase c = Case(std::string(kFourPages) + "mirror 0 1\n",
                                {Actor("cpu0", "write 1 0x10000000 fill:0x1*8\n"),
                                 Actor("dev1", "migrate_to_dev 1 0x10003000 2\n"),
                                 Actor("dev2", "dwrite 1 0x10003000 fill:0x1*4096\n")},
                                {1, 0, 0, 0, 0, 0, 1});
  const ConcurrentReport r = RunConcurrent(c);
  const HistoryOp* migrate = Entry(r, "migrate_to_dev 1 0x10003000 2");
  ASSERT_NE(migrate, nullptr) << FormatConcurrentReport(c, r);
  EXPECT_EQ(migrate->result.err, Errno::kInval);
  ExpectPassesAndNeedsTheOverlap(c, "migrate_to_dev 1 0x10003000 2");
}

// Seed 36: a fork copying a shared page's entry holds it, so the migration
// skips it; the read-back counts it through the mirror's old entry, which
// the migration's own invalidation left (it skips the owner's mirror).
TEST(ConcurrentRegressions, PageAForkHoldsIsSkippedAndStillReadBack) {
  const ConcurrentCase c = Case(std::string(kFourPages) +
                                    "write 1 0x10001000 fill:0x1*8\nfork 1\nmirror 0 1\n"
                                    "dread 1 0x10000000 2\n",
                                {Actor("cpu0", "fork 2\n"),
                                 Actor("dev1", "migrate_to_dev 1 0x10000000 2\n")},
                                {0, 0, 0, 1});
  ExpectPassesAndNeedsTheOverlap(c, "migrate_to_dev 1 0x10000000 2");
}

// Seed 8: which slot each device's chunk took (device 1's migration lost its
// page, but added the first chunk).
TEST(ConcurrentRegressions, ChunkSlotsDependOnWhoAllocatedFirst) {
  const ConcurrentCase c = Case(std::string(kFourPages) + "mirror 0 1\nmirror 1 1\n",
                                {Actor("cpu0", "fork 1\nmunmap 2 0x10000000 0x1000\n"),
                                 Actor("dev1",
                                       "dwrite 1 0x10002000 fill:0x1*4096\n"
                                       "migrate_to_dev 1 0x10003000 1\n"),
                                 Actor("dev2", "migrate_to_dev 2 0x10003000 1\n")},
                                {2, 0, 0, 0, 1, 2, 0, 0, 1, 1, 0, 2});
  ExpectPassesAndNeedsTheOverlap(c, "");
}

// Seeds 10 and 11: a dwrite's write fault broke COW, or allocated a page of
// zeros, before a fork or an mprotect sent it back: its fault-in is a dfault.
TEST(ConcurrentRegressions, WriteFaultBeforeForkOrMprotectIsADfault) {
  const ConcurrentCase seed10 = Case(
      std::string(kFourPages) +
          "write 1 0x10001000 fill:0x1*8\nfork 1\nmirror 0 1\nmirror 1 1\n"
          "migrate_to_dev 2 0x10000000 1\n",
      {Actor("cpu0", "mprotect 1 0x10000000 0x1000 r\n"),
       Actor("dev1",
             "dread 1 0x10003000 1\n"
             "dwrite 1 0x10001000 fill:0x1*4096\n"
             "migrate_to_dev 1 0x10001000 1\n"),
       Actor("cpu2", "read 1 0x10000000 0x8\nmprotect 1 0x10001000 0x2000 r\n")},
      {1, 0, 0, 0, 1, 2, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  ExpectPassesAndNeedsTheOverlap(seed10, "");
  const ConcurrentCase seed11 =
      Case(std::string(kFourPages) + "write 1 0x10001000 fill:0x1*8\nmirror 0 1\n",
           {Actor("cpu0", "fork 1\nmprotect 1 0x10000000 0x1000 r\n"),
            Actor("dev1", "dwrite 1 0x10000000 fill:0x1*8192\n"),
            Actor("dev2", "dread 1 0x10000000 1\nmigrate_to_dev 1 0x10000000 1\n")},
           {1, 0, 0, 0, 1, 1});
  ExpectPassesAndNeedsTheOverlap(seed11, "");
}

}  // namespace
}  // namespace hmm::props
