// File: props/concurrent_shrink.cc
//
// The race suite's shrinking pass (props/concurrent_shrink.h).

#include "props/concurrent_shrink.h"

#include <algorithm>
#include <utility>

namespace hmm::props {
namespace {

// `op` over one page where it covers two; false when it does not.
bool Halve(Op* op) {
  switch (op->kind) {
    case OpKind::kMunmap:
    case OpKind::kMadviseDontneed:
    case OpKind::kMprotect:
      if (op->len != 2 * kPageSize) return false;
      op->len = kPageSize;
      return true;
    case OpKind::kDwrite:
      if (op->data.size() != 2 * kPageSize) return false;
      op->data.resize(kPageSize);
      return true;
    default:
      if (!IsDeviceOp(op->kind) || op->len != 2) return false;
      op->len = 1;
      return true;
  }
}

class Shrinker {
 public:
  Shrinker(const ConcurrentCase& c, std::string check, uint64_t max_runs)
      : best_(c), check_(std::move(check)), max_runs_(max_runs) {}

  // Keeps `candidate` when it fails the same check.
  bool Try(const ConcurrentCase& candidate) {
    if (runs_ >= max_runs_) return false;
    ++runs_;
    const ConcurrentReport r = RunConcurrent(candidate);
    if (r.ok || r.check != check_) return false;
    best_ = candidate;
    used_ = r.run.schedule_used;
    ++accepted_;
    return true;
  }

  // One pass over every kind of candidate; true when one was kept.
  bool Round() {
    bool progress = DropActors();
    progress = DropOps() || progress;
    progress = DropPrologue() || progress;
    progress = CutSchedule() || progress;
    return HalveOps() || progress;
  }

  const ConcurrentCase& best() const { return best_; }
  uint64_t runs() const { return runs_; }
  uint64_t accepted() const { return accepted_; }

 private:
  // Dropping an actor, or an operation with its yield points, changes what
  // the schedule's bytes pick. So when two actors are left and the old
  // schedule no longer fails, schedules that switch actors at up to three
  // of the first kSearchChoices choices are tried, fewest switches first.
  bool DropActors() {
    bool progress = false;
    for (size_t a = best_.actors.size(); a-- > 0;) {
      ConcurrentCase c = best_;
      c.actors.erase(c.actors.begin() + a);
      progress = TryAnySchedule(c) || progress;
    }
    return progress;
  }

  static constexpr size_t kSearchChoices = 12;

  bool TryAnySchedule(ConcurrentCase c) {
    if (Try(c)) return true;
    if (BusyActorCount(c) != 2) return false;
    c.schedule.clear();
    for (size_t switches = 0; switches <= 3; ++switches) {
      if (SearchSwitches(&c, switches, 0)) return true;
    }
    return false;
  }

  // Schedules of `switches` 1s at positions from `from` on (the rest 0),
  // each tried once all are placed.
  bool SearchSwitches(ConcurrentCase* c, size_t switches, size_t from) {
    if (switches == 0) return Try(*c);
    for (size_t at = from; at < kSearchChoices && runs_ < max_runs_; ++at) {
      ConcurrentCase next = *c;
      if (next.schedule.size() <= at) next.schedule.resize(at + 1, 0);
      std::fill(next.schedule.begin() + from, next.schedule.begin() + at, 0);
      next.schedule[at] = 1;
      next.schedule.resize(at + 1);
      if (SearchSwitches(&next, switches - 1, at + 1)) return true;
    }
    return false;
  }

  bool DropOps() {
    bool progress = false;
    for (size_t a = best_.actors.size(); a-- > 0;) {
      for (size_t i = best_.actors[a].ops.size(); i-- > 1;) {  // the last one: DropActors
        ConcurrentCase c = best_;
        c.actors[a].ops.erase(c.actors[a].ops.begin() + i);
        progress = TryAnySchedule(c) || progress;
      }
      if (best_.actors[a].ops.size() < 2) continue;
      ConcurrentCase c = best_;
      c.actors[a].ops.erase(c.actors[a].ops.begin());
      progress = TryAnySchedule(c) || progress;
    }
    return progress;
  }

  bool DropPrologue() {
    bool progress = false;
    for (size_t i = best_.prologue.size(); i-- > 0;) {
      if (IsSetupKind(best_.prologue[i].kind)) continue;
      ConcurrentCase c = best_;
      c.prologue.erase(c.prologue.begin() + i);
      progress = Try(c) || progress;
    }
    return progress;
  }

  bool CutSchedule() {
    bool progress = false;
    if (used_ < best_.schedule.size()) {
      ConcurrentCase c = best_;
      c.schedule.resize(used_);
      progress = Try(c) || progress;
    }
    for (size_t i = best_.schedule.size(); i-- > 0;) {
      ConcurrentCase c = best_;
      c.schedule.erase(c.schedule.begin() + i);
      if (Try(c)) {
        progress = true;
        continue;
      }
      if (i >= best_.schedule.size() || best_.schedule[i] == 0) continue;
      c = best_;
      --c.schedule[i];
      progress = Try(c) || progress;
    }
    return progress;
  }

  bool HalveOps() {
    bool progress = false;
    for (size_t a = 0; a < best_.actors.size(); ++a) {
      for (size_t i = 0; i < best_.actors[a].ops.size(); ++i) {
        ConcurrentCase c = best_;
        if (Halve(&c.actors[a].ops[i])) progress = Try(c) || progress;
      }
    }
    return progress;
  }

  ConcurrentCase best_;
  std::string check_;
  uint64_t max_runs_;
  uint64_t runs_ = 0;
  uint64_t accepted_ = 0;
  uint64_t used_ = ~uint64_t{0};  // schedule bytes the best case's run used
};

// "cpu0", "dev1": each actor named for its place and its first operation.
void Rename(ConcurrentCase* c) {
  for (size_t a = 0; a < c->actors.size(); ++a) {
    ActorOps& actor = c->actors[a];
    const bool device = !actor.ops.empty() && IsDeviceOp(actor.ops.front().kind);
    actor.name = (device ? "dev" : "cpu") + std::to_string(a);
  }
}

}  // namespace

ConcurrentCase ShrinkCase(const ConcurrentCase& c, const std::string& check, uint64_t max_runs,
                          CaseShrinkStats* stats) {
  Shrinker shrinker(c, check, max_runs);
  // Runs the case once for the schedule bytes it uses; it fails `check`.
  if (shrinker.Try(c)) {
    while (shrinker.Round()) {
    }
  }
  ConcurrentCase best = shrinker.best();
  Rename(&best);
  if (stats != nullptr) {
    stats->runs = shrinker.runs();
    stats->accepted = shrinker.accepted() == 0 ? 0 : shrinker.accepted() - 1;
  }
  return best;
}

}  // namespace hmm::props
