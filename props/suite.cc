// File: props/suite.cc
//
// Drives rapidcheck programmatically (rc::detail::checkProperty), so the seed,
// the number of runs and the length bound come from the caller, progress is
// reported through a listener, and the minimized trace comes back as data
// rather than as rapidcheck's printout. The race suite's cases are not
// traces (props/concurrent.h): its property and its result have their own
// path below, sharing the rest.

#include "props/suite.h"

#include <chrono>
#include <functional>
#include <iostream>
#include <sstream>

#include <rapidcheck.h>

#include "props/concurrent_coverage.h"
#include "props/concurrent_shrink.h"
#include "props/generators.h"
#include "props/generators_race.h"
#include "props/runner.h"
#include "props/trace_shrink.h"

namespace hmm::props {
namespace {

// What the property saw across all its invocations during one RunSuite.
struct Observed {
  explicit Observed(const std::string& suite) : coverage(suite) {}
  uint64_t steps = 0;
  CoverageObserver coverage;  // fed until the first failure: generation, not shrinking
  RaceCoverage race_coverage;  // the race suite's, fed the same way
  bool failed = false;
  std::vector<Op> first_failing;  // the first failing trace, before shrinking
  std::vector<Op> last_failing;   // the last failing trace: the minimized one
  // The race suite's first and last failing cases.
  ConcurrentCase race_first;
  ConcurrentCase race_last;
};

class ProgressListener : public rc::detail::TestListener {
 public:
  ProgressListener(const SuiteOptions& options, const Observed& seen)
      : options_(options), seen_(seen) {}

  void onTestCaseFinished(const rc::detail::CaseDescription&) override {
    ++progress_.sequences;
    Report();
  }
  void onShrinkTried(const rc::detail::CaseDescription&, bool accepted) override {
    progress_.shrinking = true;
    if (accepted) ++progress_.shrinks;
    Report();
  }
  void onTestFinished(const rc::detail::TestMetadata&, const rc::detail::TestResult&) override {}

  const SuiteProgress& progress() const { return progress_; }

 private:
  void Report() {
    progress_.steps = seen_.steps;
    if (options_.progress) options_.progress(progress_);
  }

  const SuiteOptions& options_;
  const Observed& seen_;
  SuiteProgress progress_;
};

// rapidcheck loads its global configuration (RC_PARAMS) on first use and
// prints "Using configuration: seed=<random>" to stderr. The suites pass their
// own seed, so that line would name a seed that was never used: load it once
// with stderr silenced.
void LoadRapidcheckConfigurationQuietly() {
  static const bool loaded = [] {
    std::ostringstream sink;
    std::streambuf* old = std::cerr.rdbuf(sink.rdbuf());
    rc::detail::configuration();
    std::cerr.rdbuf(old);
    return true;
  }();
  (void)loaded;
}

// Runs one generated trace and records a failure; shared by every suite.
void CheckTrace(std::vector<Op> ops, Observed* seen) {
  // rapidcheck stops generating at the first failure; every later call shrinks.
  const bool generating = !seen->failed;
  RunOptions options;
  if (generating) {
    options.observer = &seen->coverage;
    seen->coverage.BeginSequence();
  }
  RunReport report = RunTrace(ops, options);
  if (generating) seen->coverage.EndSequence();
  seen->steps += report.steps_run;
  if (report.ok) return;
  // Drop the steps after the failing one: they were never run.
  ops.resize(report.failing_step);
  if (!seen->failed) seen->first_failing = ops;
  seen->failed = true;
  seen->last_failing = ops;
  RC_FAIL("step " + std::to_string(report.failing_step) + " fails check '" + report.check + "'");
}

std::vector<Op> Concat(std::vector<Op> head, const std::vector<Op>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

// The machine a suite's sequence runs on: `drawn`, its profile forced when
// the options name one.
Config Forced(Config drawn, const SuiteOptions& options) {
  Profile forced;
  if (ParseProfileName(options.profile, &forced)) drawn.profile = forced;
  return drawn;
}

// The properties: a generated trace, after its prologue, runs clean.
std::function<void()> CpuProperty(const SuiteOptions& options, Observed* seen) {
  const uint64_t max_steps = options.max_steps;
  const Config machine = Forced(Config(), options);
  return [max_steps, machine, seen] {
    std::vector<Op> ops = *GenCpuPrologue();
    if (machine.profile != Profile::kDefault) {  // a set-up line, before the rest
      Op profile;
      profile.kind = OpKind::kProfile;
      profile.flags = static_cast<uint32_t>(machine.profile);
      ops.insert(ops.begin(), profile);
    }
    CheckTrace(Concat(std::move(ops), *GenCpuTrace(max_steps)), seen);
  };
}

// The device suites: a devmem machine, its prologue, then the suite's trace.
using Prologue = std::vector<Op> (*)(const Config&);
using TraceGen = rc::Gen<std::vector<Op>> (*)(const Config&, uint64_t);

std::function<void()> DeviceProperty(const SuiteOptions& options, Observed* seen,
                                     Prologue prologue, TraceGen trace) {
  return [options, seen, prologue, trace] {
    const Config config = Forced(*GenDevmemConfig(), options);
    CheckTrace(Concat(prologue(config), *trace(config, options.max_steps)), seen);
  };
}

std::function<void()> DevmemProperty(const SuiteOptions& options, Observed* seen) {
  return DeviceProperty(options, seen, &DevmemPrologue, &GenDevmemTrace);
}

std::function<void()> MirrorProperty(const SuiteOptions& options, Observed* seen) {
  return DeviceProperty(options, seen, &MirrorPrologue, &GenMirrorTrace);
}

std::function<void()> MigrateProperty(const SuiteOptions& options, Observed* seen) {
  return DeviceProperty(options, seen, &MigratePrologue, &GenMigrateTrace);
}

// The race suite: a generated case (props/generators_race.h) runs clean
// under its own schedule.
void CheckRaceCase(const ConcurrentCase& c, Observed* seen) {
  const ConcurrentReport report = RunConcurrent(c);
  if (!seen->failed) seen->race_coverage.Add(report);
  seen->steps += report.steps;
  if (report.ok) return;
  if (!seen->failed) seen->race_first = c;
  seen->failed = true;
  seen->race_last = c;
  RC_FAIL("check '" + report.check + "' fails");
}

std::function<void()> RaceProperty(const SuiteOptions& options, Observed* seen) {
  const Profile profile = Forced(Config(), options).profile;
  return [profile, seen] { CheckRaceCase(*GenRaceCase(profile), seen); };
}

using PropertyMaker = std::function<void()> (*)(const SuiteOptions&, Observed*);

struct Suite {
  SuiteInfo info;
  PropertyMaker property;
};

const std::vector<Suite>& AllSuites() {
  static const std::vector<Suite> kSuites = {
      {{"cpu", "the CPU address space: mmap, munmap, mprotect, mremap, fork, madvise, "
               "read/write faults, pin/unpin, exit"},
       &CpuProperty},
      {{"devmem", "ZONE_DEVICE device-private memory: placement, RAM hot-add, device page "
                  "refcounts and page_free, device-private entries under fork, munmap, "
                  "mprotect and CPU access"},
       &DevmemProperty},
      {{"mirror", "address-space mirroring: hmm_mirror register/unregister, mmu-notifier "
                  "invalidation from every CPU page-table change, the snapshot/fault/commit "
                  "protocol, and the dummy device's read, write and snapshot on 1-3 devices"},
       &MirrorProperty},
      {{"migrate", "migration between system and device memory: the dummy device's "
                   "migrate_to_dev, migrate_to_sys, release and fail_alloc, CPU faults that "
                   "move device pages back, pins, shared VMAs, fork, other devices' reads, "
                   "RAM running out"},
       &MigrateProperty},
      {{"race", "concurrency: 2-3 actors (CPU threads: read, write, munmap, mprotect, madvise, "
                "fork; device threads: dread, dwrite, snapshot, migrations) on the same pages "
                "under a controlled schedule; device accesses through entries the CPU already "
                "changed, deadlocks, linearizability against the model, invariants at the end "
                "(docs/concurrency.md)"},
       &RaceProperty},
  };
  return kSuites;
}

const Suite* FindSuite(const std::string& name) {
  for (const Suite& s : AllSuites()) {
    if (s.info.name == name) return &s;
  }
  return nullptr;
}

}  // namespace

const std::vector<SuiteInfo>& Suites() {
  static const std::vector<SuiteInfo> kInfos = [] {
    std::vector<SuiteInfo> infos;
    for (const Suite& s : AllSuites()) infos.push_back(s.info);
    return infos;
  }();
  return kInfos;
}

namespace {

// After a failing trace suite: the trace-level pass (props/trace_shrink.h),
// same check, maybe earlier; then the final report.
void FinishTraceFailure(const Observed& seen, SuiteResult* result) {
  result->original_length = seen.first_failing.size();
  result->rc_shrunk_length = seen.last_failing.size();
  const auto pass_start = std::chrono::steady_clock::now();
  ShrinkStats stats;
  result->counterexample =
      ShrinkTrace(seen.last_failing, SameFailurePrefix(seen.last_failing), ShrinkLimits{}, &stats);
  result->trace_shrink_runs = stats.runs;
  result->trace_shrink_accepted = stats.accepted;
  result->trace_shrink_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - pass_start).count();
  const RunReport replay = RunTrace(result->counterexample);
  result->failed_check = replay.check;
  result->failure = FormatReport(replay);
}

// After a failing race suite: the case-level pass (props/concurrent_shrink.h)
// on rapidcheck's minimized case, then its replay for the report.
void FinishRaceFailure(const Observed& seen, SuiteResult* result) {
  result->original_length = ActorOpCount(seen.race_first);
  result->rc_shrunk_length = ActorOpCount(seen.race_last);
  const auto pass_start = std::chrono::steady_clock::now();
  CaseShrinkStats stats;
  result->race_case = ShrinkCase(seen.race_last, RunConcurrent(seen.race_last).check,
                                 /*max_runs=*/400, &stats);
  result->trace_shrink_runs = stats.runs;
  result->trace_shrink_accepted = stats.accepted;
  result->trace_shrink_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - pass_start).count();
  const ConcurrentReport replay = RunConcurrent(result->race_case);
  result->failed_check = replay.check;
  result->failure = FormatConcurrentReport(result->race_case, replay);
}

}  // namespace

bool ParseProfileName(const std::string& name, Profile* out) {
  if (name == "default") {
    *out = Profile::kDefault;
  } else if (name == "v18") {
    *out = Profile::kV18;
  } else {
    return false;
  }
  return true;
}

SuiteResult RunSuite(const SuiteOptions& options) {
  SuiteResult result;
  result.name = options.name;
  const Suite* suite = FindSuite(options.name);
  Profile unused;
  result.unknown_suite = suite == nullptr;
  result.unknown_profile = !options.profile.empty() && !ParseProfileName(options.profile, &unused);
  if (result.unknown_suite || result.unknown_profile) return result;
  LoadRapidcheckConfigurationQuietly();
  Observed seen(options.name);
  ProgressListener listener(options, seen);
  rc::detail::TestParams params;
  params.seed = options.seed;
  params.maxSuccess = static_cast<int>(options.runs);
  // GenCpuTrace sizes itself from max_steps; rapidcheck's own size stays at its
  // default (<= 100 avoids a BitStream bug of the bookworm snapshot, #289).
  rc::detail::TestMetadata metadata{"hmmref/" + options.name, options.name};
  auto start = std::chrono::steady_clock::now();
  rc::detail::TestResult outcome = rc::detail::checkProperty(
      rc::detail::toProperty(suite->property(options, &seen)), metadata, params, listener);
  const bool race = options.name == "race";
  result.steps = seen.steps;
  result.sequences = listener.progress().sequences;
  result.shrinks = listener.progress().shrinks;
  result.coverage = race ? seen.race_coverage.Result() : seen.coverage.Result();
  rc::detail::SuccessResult success;
  result.passed = outcome.match(success) && !seen.failed;
  if (seen.failed && race) FinishRaceFailure(seen, &result);
  if (seen.failed && !race) FinishTraceFailure(seen, &result);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace hmm::props
