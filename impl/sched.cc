// File: impl/sched.cc
//
// The controlled scheduler (impl/sched.h has the protocol). Everything below
// the fast path runs under ControlledScheduler::mu_.

#include "impl/sched.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <utility>

namespace hmm::impl::sched {

std::atomic<int> g_running_schedulers{0};

struct ControlledScheduler::Actor {
  enum State : uint8_t { kStarting, kParked, kRunning, kExited };
  ControlledScheduler* sched = nullptr;
  int id = 0;
  std::string name;
  std::function<void()> body;
  State state = kStarting;  // guarded by sched->mu_ (all below too)
  const char* at = "start";  // the point it is parked at, or last parked at
  bool blocked = false;      // parked blocked, and no progress since
  bool parked_blocked = false;  // its last park was a blocked one
  uint64_t others_progress = 0;  // progress others made (ProgressMark)
};

namespace {

thread_local ControlledScheduler::Actor* t_actor = nullptr;
thread_local int t_nothrow = 0;  // NoThrowScopes open on this thread

bool SameName(const char* a, const char* b) { return a == b || std::strcmp(a, b) == 0; }

// An aborted run resumes a parked actor here: throw, unless the point may not
// (YieldPointNoThrow) or the actor is already unwinding; then run on free.
void ResumeAborted(bool may_throw) {
  if (may_throw && t_nothrow == 0 && std::uncaught_exceptions() == 0) throw Aborted{};
  std::this_thread::yield();
}

}  // namespace

const char* RunOutcomeName(RunOutcome o) {
  switch (o) {
    case RunOutcome::kCompleted: return "completed";
    case RunOutcome::kDeadlock: return "deadlock";
    case RunOutcome::kStuck: return "stuck";
    case RunOutcome::kStepLimit: return "step limit";
  }
  return "?";
}

bool OnActorThread() { return t_actor != nullptr; }

void EnterNoThrow() { ++t_nothrow; }

void LeaveNoThrow() { --t_nothrow; }

void ParkAt(const char* name, bool boundary, bool may_throw) {
  ControlledScheduler::Actor* a = t_actor;
  if (a == nullptr) return;
  a->sched->Park(a, name, /*blocked=*/false, boundary, may_throw);
}

void ParkBlocked(const char* name) {
  ControlledScheduler::Actor* a = t_actor;
  if (a == nullptr) {
    std::this_thread::yield();
    return;
  }
  a->sched->Park(a, name, /*blocked=*/true, /*boundary=*/false, /*may_throw=*/true);
}

uint64_t ActorProgressMark() {
  ControlledScheduler::Actor* a = t_actor;
  if (a == nullptr) return 0;
  return a->sched->MarkOf(a);
}

void ParkBlockedSince(const char* name, uint64_t since) {
  ControlledScheduler::Actor* a = t_actor;
  if (a == nullptr) {
    std::this_thread::yield();
    return;
  }
  const bool blocked = a->sched->MarkOf(a) == since;
  a->sched->Park(a, name, blocked, /*boundary=*/false, /*may_throw=*/true);
}

uint64_t ControlledScheduler::MarkOf(const Actor* a) {
  std::lock_guard<std::mutex> l(mu_);
  return a->others_progress;
}

ControlledScheduler::ControlledScheduler(SchedOptions options) : options_(std::move(options)) {}

ControlledScheduler::~ControlledScheduler() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

int ControlledScheduler::AddActor(std::string name, std::function<void()> body) {
  auto a = std::make_unique<Actor>();
  a->sched = this;
  a->id = static_cast<int>(actors_.size());
  a->name = std::move(name);
  a->body = std::move(body);
  actors_.push_back(std::move(a));
  return actors_.back()->id;
}

void ControlledScheduler::ActorMain(Actor* a) {
  t_actor = a;
  try {
    Park(a, "start", /*blocked=*/false, /*boundary=*/false, /*may_throw=*/true);
    a->body();
  } catch (const Aborted&) {
    // The run was aborted; the unwinding released this actor's locks.
  } catch (...) {
    std::lock_guard<std::mutex> l(mu_);
    if (!error_) error_ = std::current_exception();
  }
  t_actor = nullptr;
  Exit(a);
}

// Progress by `by`: every other actor's failed try may succeed now.
void ControlledScheduler::Progress(const Actor* by) {
  for (auto& other : actors_) {
    if (other.get() == by) continue;
    other->blocked = false;
    ++other->others_progress;
  }
}

void ControlledScheduler::Park(Actor* a, const char* name, bool blocked, bool boundary,
                               bool may_throw) {
  std::unique_lock<std::mutex> l(mu_);
  if (aborting_) {
    l.unlock();
    ResumeAborted(may_throw);
    return;
  }
  if (running_ == a->id && !trace_.empty()) {
    trace_.back().to = name;
    trace_.back().boundary = boundary;
    trace_.back().blocked = blocked;
  }
  // A blocked park right after one at the same point: only a failed re-try ran.
  const bool retried = blocked && a->parked_blocked && SameName(a->at, name);
  if (!retried) Progress(a);
  a->blocked = blocked;
  a->parked_blocked = blocked;
  a->at = name;
  a->state = Actor::kParked;
  if (running_ == a->id) running_ = -1;
  controller_cv_.notify_all();
  actor_cv_.wait(l, [&] { return running_ == a->id || aborting_; });
  if (running_ != a->id) {
    a->state = Actor::kRunning;  // unscheduled from now on
    l.unlock();
    ResumeAborted(may_throw);
    return;
  }
}

void ControlledScheduler::Exit(Actor* a) {
  std::lock_guard<std::mutex> l(mu_);
  if (running_ == a->id && !aborting_ && !trace_.empty()) trace_.back().to = "exit";
  Progress(a);
  a->state = Actor::kExited;
  if (running_ == a->id) running_ = -1;
  controller_cv_.notify_all();
}

// Waits until no actor runs and none is starting; false after stuck_after.
bool ControlledScheduler::WaitQuiet(std::unique_lock<std::mutex>& l) {
  return controller_cv_.wait_for(l, options_.stuck_after, [&] {
    if (running_ >= 0) return false;
    for (auto& a : actors_) {
      if (a->state == Actor::kStarting) return false;
    }
    return true;
  });
}

int ControlledScheduler::Pick(const std::vector<int>& runnable, bool* chosen) {
  *chosen = runnable.size() >= 2;
  if (!*chosen) return runnable.front();
  // The last actor's position, or the first after it (cyclically).
  size_t p = 0;
  for (size_t i = 0; i < runnable.size(); ++i) {
    if (runnable[i] >= last_) {
      p = i;
      break;
    }
  }
  uint8_t c = 0;
  if (cursor_ < options_.schedule.size()) c = options_.schedule[cursor_++];
  return runnable[(p + c) % runnable.size()];
}

void ControlledScheduler::Grant(int actor, bool chosen) {
  Actor& a = *actors_[actor];
  SchedStep step;
  step.actor = actor;
  step.from = a.at;
  step.chosen = chosen;
  step.retry = a.parked_blocked;
  trace_.push_back(std::move(step));
  a.state = Actor::kRunning;
  running_ = actor;
  last_ = actor;
  actor_cv_.notify_all();
}

std::string ControlledScheduler::Where() const {
  std::ostringstream os;
  for (const auto& a : actors_) {
    os << "\n  " << a->name << ": ";
    switch (a->state) {
      case Actor::kStarting: os << "not started"; break;
      case Actor::kParked: os << "parked at '" << a->at << "'" << (a->blocked ? " (blocked)" : ""); break;
      case Actor::kRunning: os << "running since '" << a->at << "'"; break;
      case Actor::kExited: os << "exited"; break;
    }
  }
  return os.str();
}

// One decision after another until every actor exited or a finding.
RunOutcome ControlledScheduler::Decide(std::unique_lock<std::mutex>& l, SchedRun* run) {
  for (;;) {
    if (!WaitQuiet(l)) {
      if (!trace_.empty() && running_ >= 0) trace_.back().to = "(stuck)";
      run->finding = "no yield point reached within " +
                     std::to_string(options_.stuck_after.count()) +
                     " ms (a lock taken behind the scheduler's back?):" + Where();
      return RunOutcome::kStuck;
    }
    std::vector<int> runnable;
    bool all_exited = true;
    for (const auto& a : actors_) {
      if (a->state == Actor::kParked && !a->blocked) runnable.push_back(a->id);
      if (a->state != Actor::kExited) all_exited = false;
    }
    if (runnable.empty()) {
      if (all_exited) return RunOutcome::kCompleted;
      run->finding = "deadlock: every actor left is blocked:" + Where();
      return RunOutcome::kDeadlock;
    }
    if (trace_.size() >= options_.max_steps) {
      run->finding = std::to_string(options_.max_steps) + " steps without finishing:" + Where();
      return RunOutcome::kStepLimit;
    }
    bool chosen = false;
    const int pick = Pick(runnable, &chosen);
    Grant(pick, chosen);
  }
}

// Resumes every parked actor into Aborted and waits for all to exit; a
// cycle of plain locks that never lets them is fatal (never a hang).
void ControlledScheduler::AbortAndJoin(std::unique_lock<std::mutex>& l, const SchedRun& run) {
  aborting_ = true;
  actor_cv_.notify_all();
  const bool exited = controller_cv_.wait_for(l, options_.stuck_after, [&] {
    for (auto& a : actors_) {
      if (a->state != Actor::kExited) return false;
    }
    return true;
  });
  if (!exited) {
    SchedRun copy = run;
    copy.trace = trace_;
    std::fprintf(stderr, "%s\nactors did not exit after the abort (a cycle of plain locks):%s\n",
                 FormatSchedRun(copy).c_str(), Where().c_str());
    std::abort();
  }
}

SchedRun ControlledScheduler::Run() {
  SchedRun run;
  if (ran_) return run;
  ran_ = true;
  for (const auto& a : actors_) run.actor_names.push_back(a->name);
  g_running_schedulers.fetch_add(1, std::memory_order_relaxed);
  for (auto& a : actors_) {
    Actor* actor = a.get();
    threads_.emplace_back([this, actor] { ActorMain(actor); });
  }
  {
    std::unique_lock<std::mutex> l(mu_);
    run.outcome = Decide(l, &run);
    if (run.outcome != RunOutcome::kCompleted) AbortAndJoin(l, run);
  }
  for (std::thread& t : threads_) t.join();
  g_running_schedulers.fetch_sub(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> l(mu_);
  run.trace = trace_;
  run.schedule_used = cursor_;
  if (error_) std::rethrow_exception(error_);
  return run;
}

namespace {

std::string PointText(const std::string& name, bool blocked) {
  return blocked ? name + "[blocked]" : name;
}

}  // namespace

std::string FormatSchedRun(const SchedRun& run) {
  std::ostringstream os;
  int actor = -1;
  for (size_t i = 0; i < run.trace.size(); ++i) {
    const SchedStep& s = run.trace[i];
    if (s.actor != actor) {
      if (actor >= 0) os << "\n";
      actor = s.actor;
      const std::string& name =
          static_cast<size_t>(actor) < run.actor_names.size() ? run.actor_names[actor] : "?";
      char head[32];
      std::snprintf(head, sizeof head, "%4zu%c %-8s ", i + 1, s.chosen ? '*' : ' ',
                    name.c_str());
      os << head << s.from;
    }
    os << " > " << PointText(s.to.empty() ? "?" : s.to, s.blocked);
  }
  if (actor >= 0) os << "\n";
  os << "outcome: " << RunOutcomeName(run.outcome) << " after " << run.trace.size()
     << " steps, " << run.schedule_used << " schedule bytes\n";
  if (!run.finding.empty()) os << run.finding << "\n";
  return os.str();
}

}  // namespace hmm::impl::sched
