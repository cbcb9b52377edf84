// File: props/runner.h
//
// Runs a trace (a vector of Op) against model::Kernel and impl::Kernel in lock
// step. After every step it checks, in this order:
//   1. the results are equal (errno, returned value, bytes read), and equal to
//      the line's expectation when it has one;
//   2. Abstract(impl) == model, both canonicalized (props/abstract.h);
//   3. RepInvariant(impl) holds;
//   4. every named model invariant holds (model/invariants.h);
//   5. for a migration step, its transition properties hold on the model's
//      states before and after it (props/migrate_checks.h).
// The first step that fails stops the run; the report names the step, the
// check, and both sides. Property suites and `hmmref run` share this code.

#ifndef HMMREF_PROPS_RUNNER_H_
#define HMMREF_PROPS_RUNNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "props/op.h"

namespace hmm::model {
struct State;
}  // namespace hmm::model

namespace hmm::props {

struct StepRecord {
  size_t index = 0;  // 1-based step number
  Op op;
  OpResult model;
  OpResult impl;
};

struct RunReport {
  bool ok = true;
  size_t steps_run = 0;
  size_t failing_step = 0;           // 1-based; 0 when ok
  std::string check;                 // "result", "expect", "abstract", "rep", or the invariant or property name
  std::vector<std::string> problems; // one line each: what differs, with both values
  std::vector<StepRecord> steps;     // every step run, in order (the last is the failing one)
};

// Watches the steps of a run (props/coverage.h classifies them). It is given
// the model's state by reference, never a copy; it must not keep the
// reference past the call.
class StepObserver {
 public:
  virtual ~StepObserver() = default;
  // Before both sides apply `op`: the model's state after the previous step.
  virtual void BeforeStep(const Op& op, const model::State& before) {}
  // After both sides applied the step and before its checks (so the failing
  // step is seen too): `step.model` is the model's result, `after` its state.
  virtual void AfterStep(const StepRecord& step, const model::State& after) {}
};

struct RunOptions {
  uint64_t ram_pages = 0;      // 0: the default
  bool check_expect = true;    // compare with the lines' "-> ..." expectations
  bool check_states = true;    // checks 2-5; false leaves only results (bench's bound)
  StepObserver* observer = nullptr;  // not owned; may be null
};

// A trace whose `profile` line names linux-6.1 (model-only: the kernel
// oracle's) runs no step: the report fails check "profile" at that line.
RunReport RunTrace(const std::vector<Op>& ops, const RunOptions& options = {});

// "ok", "ok 0x10000000", "ok hex:6869", "ok cpages=4 faults=1 fill:0x0*16384" or the
// errno name ("kFault"): everything the result holds, so it replays as an expectation.
std::string FormatResult(const OpResult& result);

// A step-indexed rendering of a report, for a reviewer: each step with both
// results, and the problems at the failing step.
std::string FormatReport(const RunReport& report);

}  // namespace hmm::props

#endif  // HMMREF_PROPS_RUNNER_H_
