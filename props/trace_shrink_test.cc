// File: props/trace_shrink_test.cc
//
// The trace-level shrinking pass (props/trace_shrink.h) on synthetic
// predicates: no kernel runs, so each test states exactly what "still fails"
// means and what the minimal form is.

#include "props/trace_shrink.h"

#include <algorithm>
#include <chrono>
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

}  // namespace
}  // namespace hmm::props
