// File: props/concurrent_coverage.cc
//
// The race suite's coverage (props/concurrent_coverage.h).

#include "props/concurrent_coverage.h"

#include <algorithm>
#include <string>

namespace hmm::props {
namespace {

enum RaceClassId : size_t {
  kOverlap,
  kDeviceMeetsCpu,
  kMigrationMeetsOther,
  kInsideCpuChange,
  kBlocked,
  kUndecided,  // not in RaceCoverageClasses()
  kRaceClassIds,
};

const char kUndecidedName[] = "linearizability left undecided (search bound)";

bool IsMigration(OpKind k) { return k == OpKind::kMigrateToDev || k == OpKind::kMigrateToSys; }

// Classes over pairs of operations that overlapped in time.
void ClassifyHistory(const std::vector<HistoryOp>& h, std::vector<uint64_t>* steps) {
  for (size_t i = 0; i < h.size(); ++i) {
    bool overlapped = false;
    for (size_t j = 0; j < h.size(); ++j) {
      if (!OverlapInTime(h[i], h[j])) continue;
      overlapped = true;
      if (!TouchSamePages(h[i].op, h[j].op) || j < i) continue;
      const bool dev_i = IsDeviceOp(h[i].op.kind), dev_j = IsDeviceOp(h[j].op.kind);
      if (dev_i != dev_j) ++(*steps)[kDeviceMeetsCpu];
      if (IsMigration(h[i].op.kind) || IsMigration(h[j].op.kind)) ++(*steps)[kMigrationMeetsOther];
    }
    if (overlapped) ++(*steps)[kOverlap];
  }
}

// Classes over the interleaving.
void ClassifyRun(const impl::sched::SchedRun& run, std::vector<uint64_t>* steps) {
  const auto& t = run.trace;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i].blocked) ++(*steps)[kBlocked];
    if (t[i].to == "pte_changed" && i + 1 < t.size() && t[i + 1].actor != t[i].actor) {
      ++(*steps)[kInsideCpuChange];
    }
  }
}

}  // namespace

const std::vector<CoverageClass>& RaceCoverageClasses() {
  // Minimums, of kCoverageBudget sequences: about a third of what seed 1
  // reaches in the default profile (87%, 66%, 39%, 36% and 59% of its
  // sequences).
  static const std::vector<CoverageClass> kClasses = {
      {"operations overlapped in time",
       "an actor's operation was invoked before another actor's responded", 580},
      {"a device operation overlapped a CPU operation on the same pages",
       "a device thread's and a CPU thread's operations overlapped in time and in pages", 440},
      {"a migration overlapped another operation on the same pages",
       "a migrate_to_dev or migrate_to_sys overlapped another actor's operation in time and "
       "in pages",
       250},
      {"an actor ran inside another's CPU page-table change (parked at pte_changed)",
       "the scheduler switched away from an actor parked at pte_changed: its CPU change was "
       "made, invalidate_range_end not yet run",
       230},
      {"an actor waited for a lock or page another held",
       "an actor parked blocked: a failed lock try or a wait (impl/sched.h)", 390},
  };
  return kClasses;
}

std::vector<uint64_t> ClassifyRace(const ConcurrentReport& r) {
  std::vector<uint64_t> steps(kRaceClassIds);
  ClassifyHistory(r.history, &steps);
  ClassifyRun(r.run, &steps);
  if (r.undecided) steps[kUndecided] = 1;
  return steps;
}

void RaceCoverage::Add(const ConcurrentReport& r) {
  ++sequences_;
  steps_ += r.steps;
  for (const StepRecord& s : r.prologue.steps) ++commands_[{s.op.kind, s.model.err}];
  for (const HistoryOp& h : r.history) ++commands_[{h.op.kind, h.result.err}];
  const std::vector<uint64_t> steps = ClassifyRace(r);
  for (size_t k = 0; k < steps.size(); ++k) {
    class_steps_[k] += steps[k];
    if (steps[k] != 0) ++class_sequences_[k];
  }
}

Coverage RaceCoverage::Result() const {
  Coverage out;
  out.suite = "race";
  out.sequences = sequences_;
  out.steps = steps_;
  for (const auto& [key, n] : commands_) out.commands.push_back({key.first, key.second, n});
  const std::vector<CoverageClass>& goals = RaceCoverageClasses();
  for (size_t k = 0; k < kRaceClassIds; ++k) {
    const bool goal = k < goals.size();
    out.classes.push_back({goal ? goals[k].name : kUndecidedName, class_sequences_[k],
                           class_steps_[k], goal ? goals[k].minimum : 0});
  }
  return out;
}

}  // namespace hmm::props
