// File: impl/sched_test.cc
//
// The controlled scheduler (impl/sched.h) on toys: two or three actors
// incrementing a shared counter with a yield point between the read and the
// write. Some schedule loses an update and the default one does not;
// rapidcheck finds and shrinks such a schedule; every schedule terminates;
// the recorded interleaving is the one the schedule said; a lock taken at a
// yield point never loses an update; an ABBA cycle of such locks is a
// deadlock and a lock taken behind the scheduler's back is "stuck", both
// reported, neither a hang; a wait inside a NoThrowScope returns from an
// aborted run instead of throwing. No assertion depends on wall-clock time
// (the stuck case only needs its bound to pass). Run it under --config=tsan too.

#include "impl/sched.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <iostream>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace hmm::impl::sched {
namespace {

struct Counter {
  int value = 0;
};

// The racy increment: another actor may run between the read and the write.
void Increment(Counter& c) {
  const int v = c.value;
  YieldPoint("read");
  c.value = v + 1;
}

// The same under a lock taken at a yield point.
void LockedIncrement(std::mutex& m, Counter& c) {
  LockAt("counter_lock", m);
  std::lock_guard<std::mutex> held(m, std::adopt_lock);
  Increment(c);
}

struct ToyRun {
  SchedRun run;
  int value = 0;
};

// `actors` actors, each `ops` increments, each increment after an OpBoundary
// when `boundaries`.
ToyRun RunToy(const std::vector<uint8_t>& schedule, int actors, int ops, bool locked,
              bool boundaries = true) {
  SchedOptions options;
  options.schedule = schedule;
  ControlledScheduler sched(options);
  Counter counter;
  std::mutex m;
  for (int a = 0; a < actors; ++a) {
    sched.AddActor("cpu" + std::to_string(a), [&, ops, locked, boundaries] {
      for (int i = 0; i < ops; ++i) {
        if (boundaries) OpBoundary("inc");
        if (locked) {
          LockedIncrement(m, counter);
        } else {
          Increment(counter);
        }
      }
    });
  }
  ToyRun out;
  out.run = sched.Run();
  out.value = counter.value;
  return out;
}

std::vector<uint8_t> RandomSchedule(std::mt19937& rng) {
  std::vector<uint8_t> s(rng() % 24);
  for (uint8_t& b : s) b = static_cast<uint8_t>(rng());
  return s;
}

TEST(Sched, ProductionPathIsANoOp) {
  YieldPoint("nobody");
  YieldPointNoThrow("nobody");
  OpBoundary("nobody");
  SpinYield("nobody");
  std::mutex m;
  LockAt("m", m);
  EXPECT_FALSE(m.try_lock());
  m.unlock();
  std::shared_mutex s;
  LockSharedAt("s", s);
  EXPECT_FALSE(s.try_lock());
  s.unlock_shared();
  EXPECT_FALSE(OnActorThread());
}

TEST(Sched, DefaultScheduleRunsActorsOneAfterAnother) {
  ToyRun t = RunToy({}, 2, 3, /*locked=*/false);
  ASSERT_TRUE(t.run.completed()) << FormatSchedRun(t.run);
  EXPECT_EQ(t.value, 6);
  EXPECT_EQ(t.run.schedule_used, 0u);
  int last = 0;
  for (const SchedStep& s : t.run.trace) {
    EXPECT_GE(s.actor, last) << FormatSchedRun(t.run);
    last = s.actor;
  }
}

TEST(Sched, SomeScheduleLosesAnUpdate) {
  // cpu0 reads 0 and parks at "read"; cpu1 runs its whole increment; cpu0
  // writes its stale 0 + 1.
  ToyRun t = RunToy({0, 1}, 2, 1, /*locked=*/false, /*boundaries=*/false);
  ASSERT_TRUE(t.run.completed());
  EXPECT_EQ(t.value, 1) << FormatSchedRun(t.run);
  EXPECT_EQ(FormatSchedRun(t.run),
            "   1* cpu0     start > read\n"
            "   2* cpu1     start > read > exit\n"
            "   4  cpu0     read > exit\n"
            "outcome: completed after 4 steps, 2 schedule bytes\n");
}

TEST(Sched, RecordedInterleavingIsTheScheduleSaid) {
  // Each actor: start > inc > read > exit. Decisions: c=1 from no one (p=0):
  // cpu1; c=0: cpu1 again; c=1 from cpu1: cpu0; c=1 from cpu0: cpu1; then
  // cpu1 has exited, so cpu0 alone, and no byte is consumed.
  ToyRun t = RunToy({1, 0, 1, 1, 7, 7}, 2, 1, /*locked=*/false);
  ASSERT_TRUE(t.run.completed());
  struct Want {
    int actor;
    const char* from;
    const char* to;
    bool chosen;
  };
  const std::vector<Want> want = {
      {1, "start", "inc", true}, {1, "inc", "read", true}, {0, "start", "inc", true},
      {1, "read", "exit", true}, {0, "inc", "read", false}, {0, "read", "exit", false},
  };
  ASSERT_EQ(t.run.trace.size(), want.size()) << FormatSchedRun(t.run);
  for (size_t i = 0; i < want.size(); ++i) {
    const SchedStep& s = t.run.trace[i];
    EXPECT_EQ(s.actor, want[i].actor) << "step " << i + 1;
    EXPECT_EQ(s.from, want[i].from) << "step " << i + 1;
    EXPECT_EQ(s.to, want[i].to) << "step " << i + 1;
    EXPECT_EQ(s.chosen, want[i].chosen) << "step " << i + 1;
  }
  EXPECT_EQ(t.run.schedule_used, 4u);
  EXPECT_EQ(t.value, 2);
}

TEST(Sched, BoundariesAreMarked) {
  ToyRun t = RunToy({}, 1, 2, /*locked=*/false);
  ASSERT_EQ(t.run.trace.size(), 5u);  // > inc > read > inc > read > exit
  EXPECT_TRUE(t.run.trace[0].boundary);
  EXPECT_FALSE(t.run.trace[1].boundary);
  EXPECT_TRUE(t.run.trace[2].boundary);
}

TEST(Sched, EveryScheduleTerminates) {
  std::mt19937 rng(7);
  constexpr int kActors = 3;
  constexpr int kOps = 3;
  for (int run = 0; run < 200; ++run) {
    ToyRun t = RunToy(RandomSchedule(rng), kActors, kOps, /*locked=*/false);
    ASSERT_TRUE(t.run.completed()) << FormatSchedRun(t.run);
    // Each actor parks at inc and read per op, then exits: 2 * kOps + 1 steps.
    EXPECT_EQ(t.run.trace.size(), static_cast<size_t>(kActors * (2 * kOps + 1)));
    EXPECT_GE(t.value, 2);  // the classic lower bound of racy increments
    EXPECT_LE(t.value, kActors * kOps);
  }
}

TEST(Sched, LockedCounterNeverLosesAnUpdate) {
  std::mt19937 rng(11);
  bool saw_blocked = false;
  for (int run = 0; run < 200; ++run) {
    ToyRun t = RunToy(RandomSchedule(rng), 3, 3, /*locked=*/true);
    ASSERT_TRUE(t.run.completed()) << FormatSchedRun(t.run);
    ASSERT_EQ(t.value, 9) << FormatSchedRun(t.run);
    for (const SchedStep& s : t.run.trace) saw_blocked = saw_blocked || s.blocked;
  }
  EXPECT_TRUE(saw_blocked) << "no schedule made an actor wait for the lock";
}

TEST(Sched, SharedHoldersDoNotBlockEachOther) {
  SchedOptions options;
  options.schedule = {0, 0, 1, 0};  // cpu0 takes it shared and parks; cpu1 too
  ControlledScheduler sched(options);
  std::shared_mutex s;
  for (int a = 0; a < 2; ++a) {
    sched.AddActor("cpu" + std::to_string(a), [&s] {
      LockSharedAt("sem", s);
      std::shared_lock<std::shared_mutex> held(s, std::adopt_lock);
      YieldPoint("holding");
    });
  }
  SchedRun run = sched.Run();
  ASSERT_TRUE(run.completed()) << FormatSchedRun(run);
  for (const SchedStep& st : run.trace) EXPECT_FALSE(st.blocked) << FormatSchedRun(run);
}

// rapidcheck generates and shrinks the schedule: the lost update shrinks to
// the two bytes of SomeScheduleLosesAnUpdate.
TEST(Sched, RapidcheckShrinksALostUpdateSchedule) {
  std::vector<uint8_t> last_failing;
  auto property = [&last_failing] {
    const auto schedule = *rc::gen::container<std::vector<uint8_t>>(rc::gen::inRange<uint8_t>(0, 4));
    ToyRun t = RunToy(schedule, 2, 1, /*locked=*/false, /*boundaries=*/false);
    if (t.value != 2) last_failing = schedule;
    RC_ASSERT(t.value == 2);
  };
  std::ostringstream sink;
  std::streambuf* old = std::cerr.rdbuf(sink.rdbuf());  // rapidcheck's config line
  rc::detail::configuration();
  std::cerr.rdbuf(old);
  rc::detail::TestParams params;
  params.seed = 5;
  params.maxSuccess = 200;
  struct : rc::detail::TestListener {
    void onTestCaseFinished(const rc::detail::CaseDescription&) override {}
    void onShrinkTried(const rc::detail::CaseDescription&, bool) override {}
    void onTestFinished(const rc::detail::TestMetadata&, const rc::detail::TestResult&) override {}
  } listener;
  rc::detail::TestResult result = rc::detail::checkProperty(
      rc::detail::toProperty(property), rc::detail::TestMetadata{"sched", "sched"}, params,
      listener);
  rc::detail::SuccessResult success;
  EXPECT_FALSE(result.match(success)) << "no schedule lost an update";
  EXPECT_EQ(last_failing, (std::vector<uint8_t>{0, 1}));
}

TEST(Sched, AbbaIsADeadlockNotAHang) {
  auto run_abba = [](const std::vector<uint8_t>& schedule, std::mutex& l1, std::mutex& l2) {
    SchedOptions options;
    options.schedule = schedule;
    ControlledScheduler sched(options);
    auto body = [](std::mutex& first, const char* n1, std::mutex& second, const char* n2) {
      LockAt(n1, first);
      std::lock_guard<std::mutex> a(first, std::adopt_lock);
      YieldPoint("holding one");
      LockAt(n2, second);
      std::lock_guard<std::mutex> b(second, std::adopt_lock);
    };
    sched.AddActor("cpu0", [&] { body(l1, "L1", l2, "L2"); });
    sched.AddActor("cpu1", [&] { body(l2, "L2", l1, "L1"); });
    return sched.Run();
  };
  std::mutex l1, l2;
  // cpu0 takes L1, cpu1 takes L2, then each wants the other's.
  SchedRun run = run_abba({0, 0, 1, 0, 1, 1, 1}, l1, l2);
  EXPECT_EQ(run.outcome, RunOutcome::kDeadlock) << FormatSchedRun(run);
  EXPECT_NE(run.finding.find("cpu0: parked at 'L2' (blocked)"), std::string::npos) << run.finding;
  EXPECT_NE(run.finding.find("cpu1: parked at 'L1' (blocked)"), std::string::npos) << run.finding;
  // The abort unwound both actors: their lock guards let go.
  ASSERT_TRUE(l1.try_lock() && l2.try_lock());
  l1.unlock();
  l2.unlock();
  EXPECT_TRUE(run_abba({}, l1, l2).completed());
  std::mt19937 rng(3);
  for (int i = 0; i < 100; ++i) {
    run = run_abba(RandomSchedule(rng), l1, l2);
    EXPECT_TRUE(run.outcome == RunOutcome::kCompleted || run.outcome == RunOutcome::kDeadlock)
        << FormatSchedRun(run);
  }
}

TEST(Sched, PlainLockBehindTheSchedulersBackIsStuckNotHung) {
  SchedOptions options;
  options.schedule = {0, 1};  // cpu0 holds m and parks; cpu1 blocks in m.lock()
  options.stuck_after = std::chrono::milliseconds(300);
  ControlledScheduler sched(options);
  std::mutex m;
  Counter counter;
  sched.AddActor("cpu0", [&] {
    std::unique_lock<std::mutex> held(m);
    YieldPoint("holding m");
    ++counter.value;
  });
  sched.AddActor("cpu1", [&] {
    std::unique_lock<std::mutex> held(m);
    ++counter.value;
  });
  SchedRun run = sched.Run();
  EXPECT_EQ(run.outcome, RunOutcome::kStuck) << FormatSchedRun(run);
  EXPECT_FALSE(run.finding.empty());
  EXPECT_LE(counter.value, 1);  // cpu0 was aborted at its yield point
}

TEST(Sched, SpinYieldWaitsForProgressAndADeadWaitIsADeadlock) {
  for (bool setter : {true, false}) {
    ControlledScheduler sched(SchedOptions{});
    bool flag = false;
    sched.AddActor("dev0", [&] {
      while (!flag) SpinYield("wait flag");
    });
    sched.AddActor("cpu1", [&, setter] {
      YieldPoint("before set");
      if (setter) flag = true;
    });
    SchedRun run = sched.Run();
    EXPECT_EQ(run.outcome, setter ? RunOutcome::kCompleted : RunOutcome::kDeadlock)
        << FormatSchedRun(run);
  }
}

// An aborted run resumes a wait inside a NoThrowScope by returning (the
// actor runs on, unscheduled), and one outside it by throwing Aborted.
// dev0 finds a flag cpu1 holds, passes a yield point, then waits for it;
// cpu1 lets go after a yield point of its own, or (`releases` false) never.
// With `since`, the wait is SpinYieldSince the try; else a plain SpinYield,
// which wrongly parks blocked when the release came before the wait.
SchedRun RunStaleTry(const std::vector<uint8_t>& schedule, bool since, bool releases) {
  SchedOptions options;
  options.schedule = schedule;
  ControlledScheduler sched(options);
  bool held = true;
  sched.AddActor("dev0", [&] {
    for (;;) {
      const uint64_t mark = ProgressMark();
      if (!held) return;
      YieldPoint("between");
      since ? SpinYieldSince("wait", mark) : SpinYield("wait");
    }
  });
  sched.AddActor("cpu1", [&] {
    YieldPoint("holding");
    if (releases) held = false;
  });
  return sched.Run();
}

TEST(Sched, SpinYieldSinceATryIsRunnableAfterProgressAndStillFindsADeadWait) {
  size_t plain_deadlocks = 0;
  for (uint32_t bits = 0; bits < (1u << 6); ++bits) {
    std::vector<uint8_t> schedule(6);
    for (size_t i = 0; i < schedule.size(); ++i) schedule[i] = (bits >> i) & 1;
    SchedRun run = RunStaleTry(schedule, /*since=*/true, /*releases=*/true);
    EXPECT_EQ(run.outcome, RunOutcome::kCompleted) << FormatSchedRun(run);
    run = RunStaleTry(schedule, /*since=*/true, /*releases=*/false);
    EXPECT_EQ(run.outcome, RunOutcome::kDeadlock) << FormatSchedRun(run);
    if (!RunStaleTry(schedule, /*since=*/false, /*releases=*/true).completed()) ++plain_deadlocks;
  }
  EXPECT_GT(plain_deadlocks, 0u) << "no schedule releases between the try and a plain wait";
  EXPECT_EQ(ProgressMark(), 0u);  // off an actor thread
}

TEST(Sched, NoThrowScopeReturnsFromAnAbortedWait) {
  for (bool scoped : {true, false}) {
    ControlledScheduler sched(SchedOptions{});
    bool after_wait = false;
    sched.AddActor("dev0", [&, scoped] {
      if (scoped) {
        NoThrowScope nothrow;
        SpinYield("never set");
      } else {
        SpinYield("never set");
      }
      after_wait = true;
    });
    SchedRun run = sched.Run();
    EXPECT_EQ(run.outcome, RunOutcome::kDeadlock) << FormatSchedRun(run);
    EXPECT_EQ(after_wait, scoped);
  }
  NoThrowScope off_the_scheduler;  // costs one load, changes nothing
  YieldPoint("nobody");
}

TEST(Sched, StepLimitStopsALivelock) {
  SchedOptions options;
  options.max_steps = 50;
  ControlledScheduler sched(options);
  sched.AddActor("cpu0", [] {
    for (;;) YieldPoint("spin");
  });
  SchedRun run = sched.Run();
  EXPECT_EQ(run.outcome, RunOutcome::kStepLimit);
  EXPECT_EQ(run.trace.size(), 50u);
}

TEST(Sched, AnActorsExceptionIsRethrownAfterTheOthersFinish) {
  ControlledScheduler sched(SchedOptions{});
  Counter counter;
  sched.AddActor("cpu0", [] {
    YieldPoint("before throw");
    throw std::runtime_error("boom");
  });
  sched.AddActor("cpu1", [&] { Increment(counter); });
  EXPECT_THROW(sched.Run(), std::runtime_error);
  EXPECT_EQ(counter.value, 1);
}

}  // namespace
}  // namespace hmm::impl::sched
