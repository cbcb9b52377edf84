// File: props/runner.cc

#include "props/runner.h"

#include <optional>
#include <sstream>

#include "impl/kernel.h"
#include "impl/pte.h"
#include "model/invariants.h"
#include "model/kernel.h"
#include "props/abstract.h"
#include "props/apply.h"
#include "props/migrate_checks.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

static_assert(model::kMaxProcesses == impl::kMaxProcesses, "limits differ");
static_assert(model::kMaxAccess == impl::kMaxAccess, "limits differ");
static_assert(model::kMaxPinPages == impl::kMaxPinPages, "limits differ");
static_assert(model::kDefaultRamPages == impl::kDefaultRamPages, "limits differ");
static_assert(kDevicePfnBits == impl::kSwpOffsetBits,
              "device pfns must fit the device-private swap entry's offset field");

}  // namespace

// Everything a result holds, as FormatOutcome prints an expectation: the
// value when not 0, cpages and faults when either is not 0 (a dummy-device
// ioctl's success), the bytes when there are any. An error result prints its
// errno, then whatever else it (wrongly) holds: "kFault cpages=2 faults=0".
std::string FormatResult(const OpResult& r) {
  Expect e;  // kOk: every part prints
  if (r.value != 0) e.value = r.value;
  if (r.cpages != 0 || r.faults != 0) {
    e.cpages = r.cpages;
    e.faults = r.faults;
  }
  if (!r.data.empty()) e.data = r.data;
  const std::string text = FormatOutcome(e);  // "ok ..."
  return r.err == Errno::kOk ? text : ErrnoName(r.err) + text.substr(2);
}

namespace {

// Step check 1: equal results, and the line's expectation if it has one.
bool CheckResults(const StepRecord& step, bool check_expect, RunReport* report) {
  if (!(step.model == step.impl)) {
    report->check = "result";
    report->problems.push_back("results differ: model=" + FormatResult(step.model) +
                              " impl=" + FormatResult(step.impl));
    return false;
  }
  if (!check_expect || !step.op.expect) return true;
  const Expect& e = *step.op.expect;
  const OpResult& got = step.model;
  bool same = e.err == got.err && (!e.value || *e.value == got.value) &&
              (!e.data || *e.data == got.data) && (!e.cpages || *e.cpages == got.cpages) &&
              (!e.faults || *e.faults == got.faults);
  if (same) return true;
  report->check = "expect";
  report->problems.push_back("expected " + FormatOutcome(e) + ", both sides gave " +
                            FormatResult(got));
  return false;
}

// True when `violations` ("Name: ..." lines) is empty; else the step fails
// the check named by the first line's name, with every line as a problem.
bool NoViolation(std::vector<std::string> violations, RunReport* report) {
  if (violations.empty()) return true;
  report->check = violations.front().substr(0, violations.front().find(':'));
  report->problems = std::move(violations);
  return false;
}

// Step checks 2-4: abstraction, representation invariant, model invariants.
bool CheckStates(const model::Kernel& m, const impl::Kernel& i, RunReport* report) {
  std::vector<std::string> diff =
      DiffStates(model::Canonicalize(m.state()), model::Canonicalize(Abstract(i)));
  if (!diff.empty()) {
    report->check = "abstract";
    report->problems = std::move(diff);
    return false;
  }
  std::vector<std::string> rep = i.RepInvariant();
  if (!rep.empty()) {
    report->check = "rep";
    report->problems = std::move(rep);
    return false;
  }
  return NoViolation(model::CheckAllInvariants(m.state(), m.ram_pages()), report);
}

// Step check 5: a migration step's transition properties on the model
// (props/migrate_checks.h); `before` is the model's state before the step.
bool CheckTransition(const Op& op, const model::State& before, const model::State& after,
                     RunReport* report) {
  return NoViolation(CheckMigrationStep(op, before, after), report);
}

// The machine: the leading set-up lines over the options over the defaults.
Config ConfigOf(const std::vector<Op>& ops, const RunOptions& options) {
  Config config;
  if (options.ram_pages != 0) config.ram_pages = options.ram_pages;
  for (const Op& op : ops) {
    if (!IsSetupKind(op.kind)) break;
    ApplySetup(op, &config);
  }
  return config;
}

// A set-up line after an operation (only a hand-built vector can have one; the
// parser refuses it) would be silently meaningless: report it instead.
bool CheckSetupPlacement(const StepRecord& step, bool seen_operation, RunReport* report) {
  if (!IsSetupKind(step.op.kind) || !seen_operation) return true;
  report->check = "trace";
  report->problems.push_back("set-up line '" + OpName(step.op.kind) +
                             "' must come before every operation");
  return false;
}

// The linux-6.1 profile is the model's alone (the kernel oracle's,
// docs/oracle.md): impl/ implements default and v18 and would run such a trace
// as default, so the pair is refused at the `profile` line, before any step.
bool RefuseModelOnlyProfile(const std::vector<Op>& ops, const Config& config, RunReport* report) {
  if (config.profile != Profile::kLinux61) return false;
  StepRecord step;
  for (const Op& op : ops) {
    ++step.index;
    if (op.kind == OpKind::kProfile) break;
  }
  step.op = ops.at(step.index - 1);
  report->ok = false;
  report->failing_step = step.index;
  report->steps.push_back(step);
  report->check = "profile";
  report->problems.push_back(
      "profile linux-6.1 is model-only (Linux 6.1 as the kernel oracle replays it: "
      "./hmmref oracle run); the implementation runs default and v18, so model and "
      "implementation cannot be compared on this trace");
  return true;
}

}  // namespace

RunReport RunTrace(const std::vector<Op>& ops, const RunOptions& options) {
  const Config config = ConfigOf(ops, options);
  RunReport refused;
  if (RefuseModelOnlyProfile(ops, config, &refused)) return refused;
  model::Kernel m(config);
  impl::Kernel i(config);
  RunReport report;
  bool seen_operation = false;
  for (const Op& op : ops) {
    StepRecord step;
    step.index = report.steps.size() + 1;
    step.op = op;
    if (options.observer != nullptr) options.observer->BeforeStep(op, m.state());
    std::optional<model::State> before;  // kept only for a migration step
    if (options.check_states && IsMigrationStep(op, m.state())) before = m.state();
    step.model = Apply(m, op);
    step.impl = Apply(i, op);
    if (options.observer != nullptr) options.observer->AfterStep(step, m.state());
    report.steps.push_back(step);
    report.steps_run = step.index;
    const bool misplaced = !CheckSetupPlacement(step, seen_operation, &report);
    seen_operation = seen_operation || !IsSetupKind(op.kind);
    if (misplaced || !CheckResults(step, options.check_expect, &report) ||
        (options.check_states && !CheckStates(m, i, &report)) ||
        (before && !CheckTransition(op, *before, m.state(), &report))) {
      report.ok = false;
      report.failing_step = step.index;
      return report;
    }
  }
  return report;
}

std::string FormatReport(const RunReport& report) {
  std::ostringstream os;
  for (const StepRecord& s : report.steps) {
    bool failing = s.index == report.failing_step;
    os << (failing ? "=> " : "   ") << "step " << s.index;
    if (s.op.line > 0) os << " (line " << s.op.line << ")";
    os << ": " << FormatOp(s.op) << "\n";
    os << "      model: " << FormatResult(s.model) << "   impl: " << FormatResult(s.impl) << "\n";
  }
  if (report.ok) {
    os << "all " << report.steps_run << " steps agree\n";
    return os.str();
  }
  os << "step " << report.failing_step << " fails check '" << report.check << "':\n";
  for (const std::string& p : report.problems) os << "  " << p << "\n";
  return os.str();
}

}  // namespace hmm::props
