// File: props/trace_shrink_test.cc
//
// The trace-level shrinking pass (props/trace_shrink.h) on synthetic
// predicates: no kernel runs, so each test states exactly what "still fails"
// means and what the minimal form is.

#include "props/trace_shrink.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "model/types.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

constexpr uint8_t kBadByte = 0xAB;

Op SetupLine(OpKind kind, uint64_t len) {
  Op op;
  op.kind = kind;
  op.len = len;
  return op;
}
Op Process() { return Op{}; }
Op Mmap(uint64_t pid, uint64_t addr, uint64_t len, uint32_t prot, uint32_t flags) {
  Op op;
  op.kind = OpKind::kMmap;
  op.pid = pid;
  op.addr = addr;
  op.len = len;
  op.prot = prot;
  op.flags = flags;
  return op;
}
Op Write(uint64_t pid, uint64_t addr, std::vector<uint8_t> data) {
  Op op;
  op.kind = OpKind::kWrite;
  op.pid = pid;
  op.addr = addr;
  op.data = std::move(data);
  return op;
}
Op Read(uint64_t pid, uint64_t addr, uint64_t len) {
  Op op;
  op.kind = OpKind::kRead;
  op.pid = pid;
  op.addr = addr;
  op.len = len;
  return op;
}
Op Fork(uint64_t pid) {
  Op op;
  op.kind = OpKind::kFork;
  op.pid = pid;
  return op;
}

// Fails (at its last step) when the last step writes kBadByte after some fork.
bool WriteAfterFork(const std::vector<Op>& ops) {
  if (ops.empty()) return false;
  const Op& last = ops.back();
  if (last.kind != OpKind::kWrite) return false;
  if (std::find(last.data.begin(), last.data.end(), kBadByte) == last.data.end()) return false;
  return std::any_of(ops.begin(), ops.end() - 1, [](const Op& op) { return op.kind == OpKind::kFork; });
}

// A long trace of 20 steps that fails that way at its last step.
std::vector<Op> LongTrace() {
  const uint64_t base = kMmapBase + 6 * kPageSize;
  return {
      SetupLine(OpKind::kRam, 512),
      SetupLine(OpKind::kPhysmemBits, 40),
      Process(),
      Process(),
      Mmap(1, base, 8 * kPageSize, kProtRead, kMapShared | kMapFixed),
      Mmap(2, base, 4 * kPageSize, kProtRead | kProtWrite, kMapPrivate),
      Write(1, base + 3, {1, 2, 3}),
      Read(2, base + 2 * kPageSize, 100),
      Write(2, base + kPageSize, {9}),
      Fork(2),
      Read(3, base, 7),
      Write(3, base + 5, {kBadByte}),  // step 12: a bad byte after a fork, but not the last step
      Mmap(1, base + 32 * kPageSize, 2 * kPageSize, kProtRead, kMapPrivate),
      Read(1, base + 32 * kPageSize, 1),
      Fork(1),
      Write(4, base + 33 * kPageSize, {4, 4}),
      Read(4, base, 4096),
      Process(),
      Read(5, base, 1),
      Write(3, base + 2 * kPageSize + 17, {kBadByte, 2, 3, 4, 5, 6, 7, 8}),
  };
}

TEST(TraceShrink, LongTraceShrinksToMinimalForm) {
  const std::vector<Op> original = LongTrace();
  ASSERT_TRUE(WriteAfterFork(original));
  ShrinkStats stats;
  const std::vector<Op> shrunk = ShrinkTrace(original, StillFails(WriteAfterFork), {}, &stats);
  ASSERT_TRUE(WriteAfterFork(shrunk));
  EXPECT_FALSE(stats.budget_exhausted);
  // Minimal: fork 1; write 1 kMmapBase [0xAB]. Set-up lines are not needed, so they go.
  const std::vector<Op> expected = {Fork(1), Write(1, kMmapBase, {kBadByte})};
  EXPECT_EQ(FormatTrace(shrunk, "shrunk"), FormatTrace(expected, "shrunk"));
}

TEST(TraceShrink, NeededSetupLinesStayFirst) {
  // Also requires a `ram` line as the first line.
  auto needs_ram = [](const std::vector<Op>& ops) {
    return !ops.empty() && ops.front().kind == OpKind::kRam && WriteAfterFork(ops);
  };
  const std::vector<Op> shrunk = ShrinkTrace(LongTrace(), StillFails(needs_ram));
  ASSERT_TRUE(needs_ram(shrunk));
  const std::vector<Op> expected = {SetupLine(OpKind::kRam, 512), Fork(1),
                                    Write(1, kMmapBase, {kBadByte})};
  EXPECT_EQ(FormatTrace(shrunk, "shrunk"), FormatTrace(expected, "shrunk"));
  // Whatever survives, set-up lines come before every operation.
  const auto first_op = std::find_if(shrunk.begin(), shrunk.end(),
                                     [](const Op& op) { return !IsSetupKind(op.kind); });
  EXPECT_TRUE(std::none_of(first_op, shrunk.end(), [](const Op& op) { return IsSetupKind(op.kind); }));
}

TEST(TraceShrink, NeverLonger) {
  // Always failing: the pass may delete anything but the last step.
  auto always = [](const std::vector<Op>& ops) { return !ops.empty(); };
  const std::vector<Op> original = LongTrace();
  EXPECT_EQ(ShrinkTrace(original, StillFails(always)).size(), 1u);
  // Failing only as it is: nothing changes.
  auto exactly = [&original](const std::vector<Op>& ops) {
    return FormatTrace(ops, "") == FormatTrace(original, "");
  };
  EXPECT_EQ(FormatTrace(ShrinkTrace(original, StillFails(exactly)), ""), FormatTrace(original, ""));
  // Every prefix of the long trace that fails shrinks to no more steps than it had.
  for (size_t n = 1; n <= original.size(); ++n) {
    std::vector<Op> prefix(original.begin(), original.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_LE(ShrinkTrace(prefix, StillFails(always)).size(), n);
  }
}

TEST(TraceShrink, DropsStepsAfterAnEarlierFailure) {
  // A failing-prefix oracle: the trace "fails" at the first write of kBadByte after a fork.
  const FailingPrefix first_bad = [](const std::vector<Op>& ops) -> size_t {
    bool forked = false;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (ops[i].kind == OpKind::kFork) forked = true;
      if (forked && ops[i].kind == OpKind::kWrite &&
          std::find(ops[i].data.begin(), ops[i].data.end(), kBadByte) != ops[i].data.end()) {
        return i + 1;
      }
    }
    return 0;
  };
  std::vector<Op> original = LongTrace();
  original.back().data = {1};  // the last write is harmless: step 12 fails first
  ASSERT_EQ(first_bad(original), 12u);
  const std::vector<Op> shrunk = ShrinkTrace(original, first_bad);
  const std::vector<Op> expected = {Fork(1), Write(1, kMmapBase, {kBadByte})};
  EXPECT_EQ(FormatTrace(shrunk, "shrunk"), FormatTrace(expected, "shrunk"));
}

TEST(TraceShrink, HonoursTheRunBudget) {
  int calls = 0;
  auto counting = [&calls](const std::vector<Op>& ops) {
    ++calls;
    return WriteAfterFork(ops);
  };
  ShrinkLimits limits;
  limits.max_runs = 5;
  ShrinkStats stats;
  const std::vector<Op> original = LongTrace();
  const std::vector<Op> shrunk = ShrinkTrace(original, StillFails(counting), limits, &stats);
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(stats.runs, 5u);
  EXPECT_TRUE(stats.budget_exhausted);
  EXPECT_TRUE(WriteAfterFork(shrunk));
  EXPECT_LE(shrunk.size(), original.size());
}

TEST(TraceShrink, HonoursTheTimeBudget) {
  // Each call takes 20 ms; a 0.1 s budget allows a handful, not the hundreds the pass wants.
  int calls = 0;
  auto slow = [&calls](const std::vector<Op>& ops) {
    ++calls;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
    while (std::chrono::steady_clock::now() < until) {
    }
    return WriteAfterFork(ops);
  };
  ShrinkLimits limits;
  limits.seconds = 0.1;
  ShrinkStats stats;
  const std::vector<Op> shrunk = ShrinkTrace(LongTrace(), StillFails(slow), limits, &stats);
  EXPECT_TRUE(stats.budget_exhausted);
  // Every call lasts at least 20 ms, so a 0.1 s budget admits at most 6 (the
  // count, not the elapsed time, is asserted: a loaded machine only lowers it).
  EXPECT_LE(calls, 6);
  EXPECT_TRUE(WriteAfterFork(shrunk));
  // A zero budget runs nothing and returns the input.
  limits.seconds = 0;
  calls = 0;
  EXPECT_EQ(ShrinkTrace(LongTrace(), StillFails(slow), limits).size(), LongTrace().size());
  EXPECT_EQ(calls, 0);
}

// --- Mirror and range ids ---

// One trace line as an Op (no expectation, `line` cleared as generated ops have it).
Op Line(const std::string& text) {
  std::vector<Op> ops;
  std::string error;
  EXPECT_TRUE(ParseTrace(text, "t.hmm", &ops, &error)) << error;
  Op op = ops.empty() ? Op{} : ops[0];
  op.line = 0;
  return op;
}

// How many ops of `kind` come before position `end`.
size_t CountBefore(const std::vector<Op>& ops, size_t end, OpKind kind) {
  return static_cast<size_t>(std::count_if(ops.begin(), ops.begin() + static_cast<std::ptrdiff_t>(end),
                                           [kind](const Op& op) { return op.kind == kind; }));
}

// Whether the last step is of `kind`, names a mirror some earlier `mirror`
// line made (ids 1, 2, ... in line order), at an address an earlier mmap
// returned (its ADDR, as in a MAP_FIXED mmap), and some earlier step is `also`.
bool LastOnAMappedMirror(const std::vector<Op>& ops, OpKind kind,
                         const std::function<bool(const std::vector<Op>&, size_t)>& also) {
  if (ops.empty() || ops.back().kind != kind) return false;
  const Op& last = ops.back();
  const size_t n = ops.size() - 1;
  if (last.mirror == 0 || last.mirror > CountBefore(ops, n, OpKind::kMirror)) return false;
  bool mapped = false;
  bool found = false;
  for (size_t i = 0; i < n; ++i) {
    mapped |= ops[i].kind == OpKind::kMmap && ops[i].addr == last.addr;
    found |= also(ops, i);
  }
  return mapped && found;
}

// Fails when the last step is a dread of a mapped mirror and a commit of a
// range some earlier get_pfns line made comes before it.
bool DreadOfAMirror(const std::vector<Op>& ops) {
  return LastOnAMappedMirror(ops, OpKind::kDread, [](const std::vector<Op>& o, size_t i) {
    return o[i].kind == OpKind::kCommit && o[i].range != 0 &&
           o[i].range <= CountBefore(o, i, OpKind::kGetPfns);
  });
}

// What `original`, which fails `fails`, shrinks to, as text ("" if it does not fail).
std::string ShrunkText(const std::vector<Op>& original, bool (*fails)(const std::vector<Op>&)) {
  if (!fails(original)) return "";
  const std::vector<Op> shrunk = ShrinkTrace(original, StillFails(fails));
  EXPECT_TRUE(fails(shrunk));
  return FormatTrace(shrunk, "");
}

TEST(TraceShrink, MovesMirrorAndRangeIdsAndTheirAddresses) {
  const std::vector<Op> original = {
      Process(),
      Line("mirror 3 1"),
      Line("mirror 2 1"),
      Line("mmap 1 0x10006000 0x8000 rw private|fixed"),
      Line("get_pfns 2 0x10006000 8"),
      Line("get_pfns 2 0x10007000 2"),
      Line("dwrite 2 0x10006000 fill:0x5a*0x3000"),
      Line("commit 2"),
      Line("dread 2 0x10006000 8"),
  };
  // The dread's mirror id moved down onto the first mirror line, the commit's
  // range id onto the first get_pfns; the lines no longer named went; the
  // shared address moved to kMmapBase everywhere at once.
  EXPECT_EQ(ShrunkText(original, DreadOfAMirror),
            "mirror 0 1\n"
            "mmap 1 0x10000000 0x1000 rw private|fixed\n"
            "get_pfns 1 0x10000000 1\n"
            "commit 1\n"
            "dread 1 0x10000000 1\n");
}

// Fails when the last step is a migrate_to_dev of a mapped mirror after a
// dflags of that mirror with fail_alloc set.
bool MigrationAfterFailAlloc(const std::vector<Op>& ops) {
  return LastOnAMappedMirror(ops, OpKind::kMigrateToDev, [](const std::vector<Op>& o, size_t i) {
    return o[i].kind == OpKind::kDflags && o[i].mirror == o.back().mirror &&
           (o[i].flags & kDmirrorFlagFailAlloc) != 0;
  });
}

TEST(TraceShrink, MovesMigrationLinesIdsAddressesAndFlags) {
  const std::vector<Op> original = {
      Process(),
      Line("mirror 3 1"),
      Line("mirror 2 1"),
      Line("mmap 1 0x10006000 0x8000 rw private|fixed"),
      Line("release 2"),
      Line("dflags 2 fail_alloc|0x4"),
      Line("migrate_to_sys 2 0x10006000 8"),
      Line("migrate_to_dev 2 0x10006000 8"),
  };
  EXPECT_EQ(ShrunkText(original, MigrationAfterFailAlloc),
            "mirror 0 1\n"
            "mmap 1 0x10000000 0x1000 rw private|fixed\n"
            "dflags 1 fail_alloc\n"
            "migrate_to_dev 1 0x10000000 1\n");
}

TEST(TraceShrink, DwriteDataShrinksInWholePages) {
  // Fails when the last step is a dwrite of 2+ pages whose first byte is 0x5a.
  auto big_dwrite = [](const std::vector<Op>& ops) {
    return !ops.empty() && ops.back().kind == OpKind::kDwrite &&
           ops.back().data.size() >= 2 * kPageSize && ops.back().data[0] == 0x5a;
  };
  const std::vector<Op> original = {Process(), Line("dwrite 1 0x10000000 fill:0x5a*0x5000")};
  const std::vector<Op> shrunk = ShrinkTrace(original, StillFails(big_dwrite));
  ASSERT_EQ(shrunk.size(), 1u);
  EXPECT_EQ(shrunk[0].data, std::vector<uint8_t>(2 * kPageSize, 0x5a)) << "5 pages -> 2 -> stop";
}

}  // namespace
}  // namespace hmm::props
