// File: impl/kernel_sched_util.h
//
// The harness of kernel_sched_test.cc: operations of an impl::Kernel run as
// actors of the controlled scheduler (impl/sched.h), and the enumeration of
// schedules with a bounded number of context switches (preemption bounding,
// as CHESS does): every schedule whose nonzero bytes, at most `bound` of
// them, each fall on a decision the run actually makes. With two actors a
// nonzero byte is a switch to the other one; with three, each of the two
// others is tried. Every such schedule is run exactly once.

#ifndef HMMREF_IMPL_KERNEL_SCHED_UTIL_H_
#define HMMREF_IMPL_KERNEL_SCHED_UTIL_H_

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "impl/sched.h"

namespace hmm::impl::sched_test {

using Schedule = std::vector<uint8_t>;
using Actors = std::vector<std::pair<std::string, std::function<void()>>>;

// Runs the actors under `schedule`: a livelock ends after max_steps, a
// plain lock taken behind the scheduler's back after stuck_after.
inline sched::SchedRun RunActors(const Schedule& schedule, const Actors& actors) {
  sched::SchedOptions options;
  options.schedule = schedule;
  options.max_steps = 20000;
  sched::ControlledScheduler scheduler(options);
  for (const auto& [name, body] : actors) scheduler.AddActor(name, body);
  return scheduler.Run();
}

// What an enumeration saw.
struct Explored {
  uint64_t runs = 0;
  uint64_t completed = 0;
  std::set<std::string> interleavings;  // distinct (actor, point) sequences
  std::set<std::string> points;         // "actor@point" for every park seen
  std::string first_failure;            // the first run that did not complete
};

namespace internal {

inline uint64_t Decisions(const sched::SchedRun& run) {
  uint64_t n = 0;
  for (const sched::SchedStep& s : run.trace) n += s.chosen;
  return n;
}

inline void Record(const sched::SchedRun& run, Explored* ex) {
  ++ex->runs;
  std::string key;
  for (const sched::SchedStep& s : run.trace) {
    const std::string& name = run.actor_names[s.actor];
    key += name + ">" + s.to + " ";
    ex->points.insert(name + "@" + s.to);
  }
  ex->interleavings.insert(key);
  if (run.completed()) {
    ++ex->completed;
  } else if (ex->first_failure.empty()) {
    ex->first_failure = sched::FormatSchedRun(run);
  }
}

// Runs `prefix` (its last byte nonzero, or empty), then every extension by
// one more nonzero byte at a later decision, while `left` allows.
inline void Explore(const Schedule& prefix, int actors, int left,
                    const std::function<sched::SchedRun(const Schedule&)>& run_one,
                    Explored* ex) {
  const sched::SchedRun run = run_one(prefix);
  Record(run, ex);
  if (left == 0) return;
  const uint64_t decisions = Decisions(run);
  for (uint64_t at = prefix.size(); at < decisions; ++at) {
    for (int v = 1; v < actors; ++v) {
      Schedule next = prefix;
      next.resize(at, 0);
      next.push_back(static_cast<uint8_t>(v));
      Explore(next, actors, left - 1, run_one, ex);
    }
  }
}

}  // namespace internal

// Every schedule of `actors` actors with at most `bound` context switches;
// run_one builds a fresh kernel, runs the actors under the schedule, checks
// the quiescent state, and returns the run.
inline Explored ExploreSchedules(int actors, int bound,
                                 const std::function<sched::SchedRun(const Schedule&)>& run_one) {
  Explored ex;
  internal::Explore({}, actors, bound, run_one, &ex);
  return ex;
}

}  // namespace hmm::impl::sched_test

#endif  // HMMREF_IMPL_KERNEL_SCHED_UTIL_H_
