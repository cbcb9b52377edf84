// File: props/concurrent_test.cc
//
// RunConcurrent (props/concurrent.h) on hand-written cases: a race-free case
// passes under the sequential schedule and under every short schedule, in
// both profiles; munmap against a device read finds the v18 hazard under
// some schedule, named after InvMirrorSubsetOfCpu with the yield point the
// CPU stopped at, and under none in the default profile; each check fails
// when its condition is broken on purpose (a prologue expectation, a run
// stopped at its step limit, a history result altered before the
// linearizability check). No assertion depends on wall-clock time. Run it
// under --config=tsan too.

#include "props/concurrent.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "props/trace.h"
#include "props/trace_test_util.h"

namespace hmm::props {
namespace {

using testing::MustParse;

// Four pages at 0x10000000, "ab" at the first, mirror 1 of device 0 with
// the first two pages in its page table.
const char kPrologue[] =
    "process\n"
    "mmap 1 0x10000000 0x4000 rw private fixed\n"
    "write 1 0x10000000 \"ab\"\n"
    "mirror 0 1\n"
    "dread 1 0x10000000 2\n";

ConcurrentCase Case(const std::string& profile_line, const std::string& cpu,
                    const std::string& dev, std::vector<uint8_t> schedule = {}) {
  ConcurrentCase c;
  c.prologue = MustParse(profile_line + kPrologue);
  c.actors.push_back({"cpu0", MustParse(cpu)});
  c.actors.push_back({"dev1", MustParse(dev)});
  c.schedule = std::move(schedule);
  return c;
}

// Every schedule of `length` bytes, each 0 or 1 (a choice keeps the running
// actor or switches), then the callback on each report.
template <typename F>
void ForEachSchedule(ConcurrentCase c, size_t length, F f) {
  for (uint32_t bits = 0; bits < (1u << length); ++bits) {
    c.schedule.assign(length, 0);
    for (size_t i = 0; i < length; ++i) c.schedule[i] = (bits >> i) & 1;
    f(c, RunConcurrent(c));
  }
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Concurrent, RaceFreeCasePassesUnderTheSequentialSchedule) {
  for (const std::string profile : {"", "profile v18\n"}) {
    const ConcurrentCase c =
        Case(profile, "write 1 0x10003000 \"cd\"\n", "dread 1 0x10000000 1\n");
    const ConcurrentReport r = RunConcurrent(c);
    ASSERT_TRUE(r.ok) << FormatConcurrentReport(c, r);
    EXPECT_TRUE(r.run.completed());
    ASSERT_EQ(r.history.size(), 2u);
    EXPECT_EQ(r.linearization.size(), 2u);
    EXPECT_TRUE(r.hazards.empty());
    // The default schedule runs actor 0 to its end before actor 1 starts.
    EXPECT_LT(r.history[0].respond, r.history[1].invoke);
    EXPECT_EQ(r.steps, c.prologue.size() + 2);
    EXPECT_TRUE(Contains(FormatConcurrentReport(c, r), "all checks hold")) << r.check;
  }
}

TEST(Concurrent, RaceFreeCasePassesUnderEveryShortSchedule) {
  for (const std::string profile : {"", "profile v18\n"}) {
    const ConcurrentCase c = Case(profile, "write 1 0x10003000 \"cd\"\nread 1 0x10000000 2\n",
                                  "dread 1 0x10000000 1\ndwrite 1 0x10001000 fill:0x7*0x1000\n");
    ForEachSchedule(c, 8, [](const ConcurrentCase& s, const ConcurrentReport& r) {
      EXPECT_TRUE(r.ok) << FormatConcurrentReport(s, r);
    });
  }
}

// munmap of the first page against a device read of it, its entry already
// in the device's page table.
ConcurrentCase MunmapAgainstDread(const std::string& profile_line) {
  return Case(profile_line, "munmap 1 0x10000000 0x1000\n", "dread 1 0x10000000 1\n");
}

TEST(Concurrent, V18MunmapAgainstDeviceReadIsAHazard) {
  size_t found = 0;
  ForEachSchedule(MunmapAgainstDread("profile v18\n"), 10,
                  [&found](const ConcurrentCase& c, const ConcurrentReport& r) {
                    if (r.ok) return;
                    ASSERT_EQ(r.check, "InvMirrorSubsetOfCpu") << FormatConcurrentReport(c, r);
                    ASSERT_FALSE(r.hazards.empty());
                    EXPECT_EQ(r.hazards[0].addr, 0x10000000u);
                    EXPECT_FALSE(r.hazards[0].write);
                    EXPECT_EQ(r.hazards[0].cpu, "none");
                    const std::string text = FormatConcurrentReport(c, r);
                    EXPECT_TRUE(Contains(text, "hazard InvMirrorSubsetOfCpu: device 0 (mirror 1) "
                                               "read 0x10000000 through its entry for pfn 0x"))
                        << text;
                    EXPECT_TRUE(Contains(text, "(cpu: none) -- the v18 profile")) << text;
                    EXPECT_TRUE(Contains(text, "pte_changed")) << text;
                    ++found;
                  });
  EXPECT_GT(found, 0u) << "no schedule of 10 bytes lets the device read inside the munmap";
}

TEST(Concurrent, DefaultMunmapAgainstDeviceReadIsNoHazard) {
  ForEachSchedule(MunmapAgainstDread(""), 10, [](const ConcurrentCase& c, const ConcurrentReport& r) {
    EXPECT_TRUE(r.ok) << FormatConcurrentReport(c, r);
  });
}

TEST(Concurrent, PrologueFailureIsReported) {
  ConcurrentCase c = MunmapAgainstDread("");
  c.prologue = MustParse(std::string(kPrologue) + "read 1 0x10000000 2 -> \"zz\"\n");
  const ConcurrentReport r = RunConcurrent(c);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.check, "prologue");
  EXPECT_TRUE(r.history.empty());
  EXPECT_TRUE(Contains(r.problems.at(0), "step 6 of the prologue fails check 'expect'"))
      << r.problems.at(0);
}

TEST(Concurrent, RunPastItsStepLimitIsReported) {
  ConcurrentOptions options;
  options.max_sched_steps = 2;
  const ConcurrentCase c = MunmapAgainstDread("");
  const ConcurrentReport r = RunConcurrent(c, options);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.check, "step limit");
  EXPECT_EQ(r.run.outcome, impl::sched::RunOutcome::kStepLimit);
  EXPECT_TRUE(Contains(FormatConcurrentReport(c, r), "outcome: step limit")) << r.check;
}

TEST(Concurrent, TamperedResultIsNotLinearizable) {
  const ConcurrentCase c = Case("", "read 1 0x10000000 2\n", "dread 1 0x10001000 1\n");
  ConcurrentOptions options;
  options.tamper_history_for_test = [](std::vector<HistoryOp>* h) {
    for (HistoryOp& e : *h) {
      if (e.op.kind == OpKind::kRead) e.result.data = {'z', 'z'};
    }
  };
  const ConcurrentReport r = RunConcurrent(c, options);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.check, "linearizable");
  const std::string text = FormatConcurrentReport(c, r);
  EXPECT_TRUE(Contains(text, "not linearizable")) << text;
  EXPECT_TRUE(Contains(text, "impl returned ok hex:7a7a, the model gives ok hex:6162")) << text;
}

TEST(Concurrent, SameResultToleratesOnlyTheRetryCount) {
  Op dread = MustParse("dread 1 0x10000000 1\n").at(0);
  OpResult model;
  model.cpages = 1;
  model.faults = 1;
  OpResult impl = model;
  impl.faults = 2;
  EXPECT_TRUE(ConcurrentSameResult(dread, model, impl));
  impl.cpages = 0;
  EXPECT_FALSE(ConcurrentSameResult(dread, model, impl));
  Op snapshot = MustParse("snapshot 1 0x10000000 1\n").at(0);
  impl = model;
  impl.faults = 2;
  EXPECT_FALSE(ConcurrentSameResult(snapshot, model, impl));
}

// A state with one dummy-device chunk per device in `devices` order (ids
// 1, 2, ... at consecutive 0x10000-page ranges), each chunk's first page
// held with `fill`, and pid 1's first page mapping device 0's.
model::State ChunkState(const std::vector<uint64_t>& devices, uint8_t fill) {
  model::State s;
  uint64_t pfn = 0x400000000;
  for (uint64_t i = 0; i < devices.size(); ++i, pfn += 0x10000) {
    model::Devmem& d = s.devmems[i + 1];
    d.device = DeviceId(devices[i]);
    d.first_pfn = pfn;
    d.npages = 0x10000;
    d.dmirror_chunk = true;
    d.pages[pfn].held = true;
    for (uint16_t b = 0; b < 8; ++b) d.pages[pfn].data.Set(b, fill);
    s.resources[pfn * kPageSize] = model::Resource{pfn * kPageSize, (pfn + 0x10000) * kPageSize,
                                                   /*device=*/true, /*boot=*/false, i + 1};
    if (devices[i] != 0) continue;
    model::Pte& e = s.procs[Pid(1)].ptes[Vpn(0x10000)];
    e.device = true;
    e.device_pfn = pfn;
  }
  return s;
}

TEST(Concurrent, ResidueForgetsWhichSlotEachChunkTook) {
  // Device 1 added its chunk first on one side, device 0 on the other.
  const model::State a = ChunkState({0, 1}, 7), b = ChunkState({1, 0}, 7);
  ASSERT_FALSE(a == b);
  EXPECT_TRUE(ForgetRaceResidue(a) == ForgetRaceResidue(b));
  // What the chunks hold still counts.
  EXPECT_FALSE(ForgetRaceResidue(a) == ForgetRaceResidue(ChunkState({1, 0}, 8)));
  EXPECT_FALSE(ForgetRaceResidue(a) == ForgetRaceResidue(ChunkState({1, 1}, 7)));
}

}  // namespace
}  // namespace hmm::props
