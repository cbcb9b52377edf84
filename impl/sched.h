// File: impl/sched.h
//
// A controlled scheduler for the concurrency suites (issue 7): the impl marks
// its real yield points (a lock acquisition or release, between migration
// phases, between a snapshot and its commit, between an mmu notifier's start
// and end) with YieldPoint(name), and a test runs two or three actors (CPU
// threads, device threads), each a std::function on its own std::thread, of
// which exactly ONE runs at any time. Which one runs next is read from a
// schedule, a std::vector<uint8_t> that rapidcheck generates and shrinks;
// every step is recorded as (actor, point it resumed at, point it stopped at)
// so a minimized interleaving can be printed.
//
// Production cost
//   YieldPoint() is inline: one relaxed load of a global counter of running
//   schedulers. Only when some scheduler runs does it look at a thread_local
//   (is the calling thread an actor?). A thread that is not an actor never
//   parks, even while a scheduler runs. LockAt()/AcquireAt()/SpinYield() cost
//   the same check and then take the lock (or yield) as before.
//
// Protocol (all of it under the scheduler's one mutex `mu_`)
//   Each actor is in one state: starting, parked (at a named point), running
//   or exited. At most one actor is running. An actor parks:
//     - at its start ("start"), before its body runs;
//     - at each YieldPoint(name) and OpBoundary(name) it calls;
//     - in AcquireAt(name, ...) (LockAt, LockSharedAt): first at an ordinary
//       yield point `name`, right BEFORE the acquisition; when resumed it
//       TRIES the lock; when the try fails it parks again, now *blocked*;
//     - in SpinYield(name) (a spin loop's wait), blocked; in
//       SpinYieldSince(name, mark), blocked only when no other actor made
//       progress since ProgressMark() returned `mark` (the wait's condition
//       was tried then, and the actor parked at ordinary points since).
//   A blocked actor is not runnable until some actor makes progress: parks
//   at an ordinary point, exits, or parks blocked for the first time since
//   it last ran code (a blocked park right after a blocked park at the same
//   name means the actor only re-tried, so it changed nothing). Progress
//   clears every other actor's blocked mark. Tries have no side effect when
//   they fail, so when every actor that has not exited is blocked, nothing
//   can ever change: the run is a DEADLOCK, found without any timing.
//   The controller (the thread in Run()) loops: wait until no actor runs and
//   none is starting; take the runnable actors (parked, not blocked) in
//   index order; none runnable: done when all exited, else deadlock; else
//   pick one (below), record the step, and let it run to its next park.
//
// The schedule
//   A decision with two or more runnable actors consumes the next schedule
//   byte c (a decision with one does not): with R the runnable actors in index
//   order and p the position in R of the actor that ran last (if it is not
//   runnable, of the first after it in cyclic index order), the pick is
//   R[(p + c) % |R|]. So 0 means "keep running the same actor" (or "the next
//   one round", which keeps a spinning actor from starving the one it waits
//   for), and rapidcheck, which shrinks bytes toward 0 and vectors toward
//   short, shrinks toward fewer context switches. When the schedule runs out
//   every further choice is 0: the default schedule runs the current actor
//   until it exits or blocks, then the next runnable one (actor 0's
//   whole body first, then actor 1's, unless a lock blocks one).
//
// Deadlock and stuck actors
//   A lock taken through LockAt/AcquireAt, and a wait written with SpinYield,
//   cannot hang a run: see the protocol. A lock taken blocking behind the
//   scheduler's back (a plain m.lock() while another actor, parked, holds m)
//   stops the running actor without a park: after SchedOptions::stuck_after
//   without a park the controller declares the run STUCK (a finding, like a
//   deadlock). Either way the controller then aborts the run: every parked
//   actor resumes by throwing sched::Aborted (not a std::exception), which
//   unwinds its body and releases its RAII lock guards; an actor that was
//   stuck gets its lock from that unwinding and throws at its next yield
//   point. Hence: a yield point must not sit in a noexcept function or a
//   destructor, except YieldPointNoThrow(), which instead returns (the actor
//   then runs free, unscheduled, to its next point), or inside a
//   NoThrowScope, which makes every yield point of its thread do the same
//   (a destructor that takes locks at yield points: the mmu notifier's
//   end). Run() waits a further stuck_after for the actors to exit; if they
//   do not (an ABBA cycle of plain locks), it prints the run to stderr and
//   calls std::abort(): a hang is never the outcome. The kernel's state after an aborted run is
//   unspecified: only destroy it.
//   A run also stops at SchedOptions::max_steps steps (a livelock: actors
//   that keep making progress without finishing), aborted the same way. A
//   wait loop that passes an ordinary yield point between its checks (a
//   SpinYield, then LockAt of the ptl, then the check) counts as progress
//   each round, so a genuine deadlock that involves one ends there, as
//   kStepLimit, rather than as kDeadlock.
//   Which locks need LockAt: every lock some actor may hold while parked
//   (one held across a yield point) must be taken through LockAt or
//   LockSharedAt everywhere an actor takes it; a lock never held across a
//   yield point may stay a plain lock (nobody can find it held).
//
// Thread safety
//   YieldPoint, OpBoundary, LockAt, LockSharedAt, AcquireAt and SpinYield may
//   be called from any thread at any time. A ControlledScheduler is built,
//   given its actors and Run() once, all on one thread; Run() starts and
//   joins the actor threads. Every handoff between actors goes through
//   `mu_`, so an actor sees all memory written by the actors that ran before
//   it (a toy's unlocked counter is not a data race under TSan: the lost
//   update it shows is an interleaving at yield-point granularity). Several
//   schedulers may run at once (parallel tests); each actor belongs to one.

#ifndef HMMREF_IMPL_SCHED_H_
#define HMMREF_IMPL_SCHED_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

namespace hmm::impl::sched {

// The number of ControlledSchedulers inside Run(): the fast path's only load.
extern std::atomic<int> g_running_schedulers;

// Thrown from a yield point of an actor whose run was aborted (deadlock,
// stuck, step limit). Deliberately not a std::exception.
struct Aborted {};

// Out-of-line halves, for actor threads only (no-ops on other threads).
void ParkAt(const char* name, bool boundary, bool may_throw);
void ParkBlocked(const char* name);
bool OnActorThread();
void EnterNoThrow();
void LeaveNoThrow();

inline bool Active() { return g_running_schedulers.load(std::memory_order_relaxed) != 0; }

// A point where another actor may run. `name` must outlive the run (a
// string literal). May throw Aborted (see the header comment).
inline void YieldPoint(const char* name) {
  if (Active()) ParkAt(name, /*boundary=*/false, /*may_throw=*/true);
}

// The same, for destructors and noexcept code: never throws; on an aborted
// run it returns and the actor runs on unscheduled.
inline void YieldPointNoThrow(const char* name) {
  if (Active()) ParkAt(name, /*boundary=*/false, /*may_throw=*/false);
}

// For its life, every yield point of the calling thread (LockAt, SpinYield
// and the rest included) never throws: on an aborted run it returns and the
// actor runs on unscheduled. For destructors whose work passes yield points.
// Costs one relaxed load when no scheduler runs.
class NoThrowScope {
 public:
  NoThrowScope() : armed_(Active()) {
    if (armed_) EnterNoThrow();
  }
  ~NoThrowScope() {
    if (armed_) LeaveNoThrow();
  }
  NoThrowScope(const NoThrowScope&) = delete;
  NoThrowScope& operator=(const NoThrowScope&) = delete;

 private:
  const bool armed_;
};

// An operation boundary of the test's actor body (recorded as such).
inline void OpBoundary(const char* name) {
  if (Active()) ParkAt(name, /*boundary=*/true, /*may_throw=*/true);
}

// A wait inside a spin loop, instead of std::this_thread::yield(): the actor
// parks blocked until another makes progress. REQUIRES: between two calls
// with the same name the loop only re-checks a condition, or passes another
// yield point.
inline void SpinYield(const char* name) {
  if (Active() && OnActorThread()) {
    ParkBlocked(name);
  } else {
    std::this_thread::yield();
  }
}

// A mark of the progress other actors made so far, as the calling actor
// sees it (0 off an actor thread): taken where a wait's condition is tried,
// for SpinYieldSince. Costs one relaxed load when no scheduler runs.
uint64_t ActorProgressMark();
inline uint64_t ProgressMark() { return Active() ? ActorProgressMark() : 0; }
void ParkBlockedSince(const char* name, uint64_t since);

// SpinYield for a condition last tried when ProgressMark() returned `since`,
// with yield points in between (a migration that found the page held, then
// finished its other phases): parks blocked only when no other actor made
// progress since; else at an ordinary yield point (the holder may be gone).
inline void SpinYieldSince(const char* name, uint64_t since) {
  if (Active() && OnActorThread()) {
    ParkBlockedSince(name, since);
  } else {
    std::this_thread::yield();
  }
}

// Acquires something at a yield point: off the scheduler, lock(); on an
// actor, a yield point `name`, then try_lock() until it succeeds, parking
// blocked after each failure. try_lock must have no effect when it fails.
template <typename TryLock, typename Lock>
void AcquireAt(const char* name, TryLock try_lock, Lock lock) {
  if (!Active() || !OnActorThread()) {
    lock();
    return;
  }
  ParkAt(name, /*boundary=*/false, /*may_throw=*/true);
  while (!try_lock()) ParkBlocked(name);
}

// m.lock() at a yield point; adopt it afterwards:
//   sched::LockAt("ptl", p.ptl);
//   std::lock_guard<std::mutex> ptl(p.ptl, std::adopt_lock);
template <typename Mutex>
void LockAt(const char* name, Mutex& m) {
  AcquireAt(name, [&m] { return m.try_lock(); }, [&m] { m.lock(); });
}
// m.lock_shared() at a yield point; adopt with std::shared_lock(m, std::adopt_lock).
template <typename SharedMutex>
void LockSharedAt(const char* name, SharedMutex& m) {
  AcquireAt(name, [&m] { return m.try_lock_shared(); }, [&m] { m.lock_shared(); });
}

// --- The controller ---

enum class RunOutcome : uint8_t {
  kCompleted,  // every actor's body returned
  kDeadlock,   // every actor left was blocked in AcquireAt or SpinYield
  kStuck,      // the running actor reached no yield point within stuck_after
  kStepLimit,  // max_steps steps without finishing
};

const char* RunOutcomeName(RunOutcome o);

// One step: `actor` resumed at `from` and ran until it parked at `to`.
struct SchedStep {
  int actor = 0;
  std::string from;     // "start", a point's name
  std::string to;       // a point's name, "exit", or "(stuck)" / "(aborted)"
  bool chosen = false;  // two or more were runnable (a schedule byte or its default)
  bool retry = false;   // resumed blocked: it re-tried its acquisition or wait
  bool boundary = false;  // `to` is an OpBoundary
  bool blocked = false;   // it parked blocked at `to` (a failed try, a spin wait)
};

struct SchedRun {
  RunOutcome outcome = RunOutcome::kCompleted;
  std::vector<std::string> actor_names;
  std::vector<SchedStep> trace;
  uint64_t schedule_used = 0;  // schedule bytes consumed
  std::string finding;         // kDeadlock/kStuck/kStepLimit: who was where
  bool completed() const { return outcome == RunOutcome::kCompleted; }
};

struct SchedOptions {
  std::vector<uint8_t> schedule;
  std::chrono::milliseconds stuck_after{10000};
  uint64_t max_steps = 100000;
};

class ControlledScheduler {
 public:
  explicit ControlledScheduler(SchedOptions options);
  ~ControlledScheduler();
  ControlledScheduler(const ControlledScheduler&) = delete;
  ControlledScheduler& operator=(const ControlledScheduler&) = delete;

  // Before Run(): one actor; returns its index (0, 1, ...).
  int AddActor(std::string name, std::function<void()> body);

  // Runs every actor to the end (or to a finding) and joins them. Once.
  // Rethrows the first exception an actor's body threw (Aborted aside).
  SchedRun Run();

  struct Actor;  // sched.cc

 private:
  friend void ParkAt(const char*, bool, bool);
  friend void ParkBlocked(const char*);
  friend uint64_t ActorProgressMark();
  friend void ParkBlockedSince(const char*, uint64_t);

  void ActorMain(Actor* a);
  uint64_t MarkOf(const Actor* a);
  void Park(Actor* a, const char* name, bool blocked, bool boundary, bool may_throw);
  void Exit(Actor* a);
  bool WaitQuiet(std::unique_lock<std::mutex>& l);
  RunOutcome Decide(std::unique_lock<std::mutex>& l, SchedRun* run);
  int Pick(const std::vector<int>& runnable, bool* chosen);
  void Grant(int actor, bool chosen);
  void Progress(const Actor* by);
  std::string Where() const;
  void AbortAndJoin(std::unique_lock<std::mutex>& l, const SchedRun& run);

  SchedOptions options_;
  std::vector<std::unique_ptr<Actor>> actors_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable actor_cv_;       // an actor waits for its grant
  std::condition_variable controller_cv_;  // the controller waits for a park
  int running_ = -1;     // guarded by mu_: the actor granted, or -1
  int last_ = -1;        // guarded by mu_: the actor granted last
  bool aborting_ = false;  // guarded by mu_
  size_t cursor_ = 0;      // guarded by mu_: next schedule byte
  std::vector<SchedStep> trace_;  // guarded by mu_
  std::exception_ptr error_;      // guarded by mu_
  bool ran_ = false;
};

// The run, one line per stretch of one actor (consecutive steps merged):
// "  3* dev1    start .. dmirror_commit", '*' where a schedule byte chose;
// then the outcome and the finding.
std::string FormatSchedRun(const SchedRun& run);

}  // namespace hmm::impl::sched

#endif  // HMMREF_IMPL_SCHED_H_
