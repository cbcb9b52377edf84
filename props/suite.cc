// File: props/suite.cc
//
// Drives rapidcheck programmatically (rc::detail::checkProperty), so the seed,
// the number of runs and the length bound come from the caller, progress is
// reported through a listener, and the minimized trace comes back as data
// rather than as rapidcheck's printout.

#include "props/suite.h"

#include <chrono>
#include <functional>
#include <iostream>
#include <sstream>

#include <rapidcheck.h>

#include "props/generators.h"
#include "props/runner.h"
#include "props/trace_shrink.h"

namespace hmm::props {
namespace {

// What the property saw across all its invocations during one RunSuite.
struct Observed {
  explicit Observed(const std::string& suite) : coverage(suite) {}
  uint64_t steps = 0;
  CoverageObserver coverage;  // fed until the first failure: generation, not shrinking
  bool failed = false;
  std::vector<Op> first_failing;  // the first failing trace, before shrinking
  std::vector<Op> last_failing;   // the last failing trace: the minimized one
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

// The properties: a generated trace, after its prologue, runs clean.
std::function<void()> CpuProperty(uint64_t max_steps, Observed* seen) {
  return [max_steps, seen] { CheckTrace(Concat(*GenCpuPrologue(), *GenCpuTrace(max_steps)), seen); };
}

// The device suites: a devmem machine, its prologue, then the suite's trace.
using Prologue = std::vector<Op> (*)(const Config&);
using TraceGen = rc::Gen<std::vector<Op>> (*)(const Config&, uint64_t);

std::function<void()> DeviceProperty(uint64_t max_steps, Observed* seen, Prologue prologue,
                                     TraceGen trace) {
  return [=] {
    const Config config = *GenDevmemConfig();
    CheckTrace(Concat(prologue(config), *trace(config, max_steps)), seen);
  };
}

std::function<void()> DevmemProperty(uint64_t max_steps, Observed* seen) {
  return DeviceProperty(max_steps, seen, &DevmemPrologue, &GenDevmemTrace);
}

std::function<void()> MirrorProperty(uint64_t max_steps, Observed* seen) {
  return DeviceProperty(max_steps, seen, &MirrorPrologue, &GenMirrorTrace);
}

std::function<void()> MigrateProperty(uint64_t max_steps, Observed* seen) {
  return DeviceProperty(max_steps, seen, &MigratePrologue, &GenMigrateTrace);
}

using PropertyMaker = std::function<void()> (*)(uint64_t, Observed*);

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

SuiteResult RunSuite(const SuiteOptions& options) {
  SuiteResult result;
  result.name = options.name;
  const Suite* suite = FindSuite(options.name);
  if (suite == nullptr) {
    result.unknown_suite = true;
    return result;
  }
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
      rc::detail::toProperty(suite->property(options.max_steps, &seen)), metadata, params, listener);
  result.steps = seen.steps;
  result.sequences = listener.progress().sequences;
  result.shrinks = listener.progress().shrinks;
  result.coverage = seen.coverage.Result();
  rc::detail::SuccessResult success;
  result.passed = outcome.match(success) && !seen.failed;
  if (!seen.failed) {
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  }
  result.original_length = seen.first_failing.size();
  result.rc_shrunk_length = seen.last_failing.size();
  // Then the trace-level pass (props/trace_shrink.h): same check, maybe earlier.
  const auto pass_start = std::chrono::steady_clock::now();
  ShrinkStats stats;
  result.counterexample =
      ShrinkTrace(seen.last_failing, SameFailurePrefix(seen.last_failing), ShrinkLimits{}, &stats);
  const auto end = std::chrono::steady_clock::now();
  result.trace_shrink_runs = stats.runs;
  result.trace_shrink_accepted = stats.accepted;
  result.trace_shrink_seconds = std::chrono::duration<double>(end - pass_start).count();
  result.seconds = std::chrono::duration<double>(end - start).count();
  result.failure = FormatReport(RunTrace(result.counterexample));
  return result;
}

}  // namespace hmm::props
