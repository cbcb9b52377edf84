// File: props/runner.cc

#include "props/runner.h"

#include <sstream>

#include "impl/kernel.h"
#include "impl/pte.h"
#include "model/invariants.h"
#include "model/kernel.h"
#include "props/abstract.h"
#include "props/apply.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

static_assert(model::kMaxProcesses == impl::kMaxProcesses, "limits differ");
static_assert(model::kMaxAccess == impl::kMaxAccess, "limits differ");
static_assert(model::kMaxPinPages == impl::kMaxPinPages, "limits differ");
static_assert(model::kDefaultRamPages == impl::kDefaultRamPages, "limits differ");
static_assert(kDevicePfnBits == impl::kSwpOffsetBits,
              "device pfns must fit the device-private swap entry's offset field");

std::string BytesString(const std::vector<uint8_t>& data) {
  static const char* kDigits = "0123456789abcdef";
  std::string s = "hex:";
  for (uint8_t b : data) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

}  // namespace

std::string FormatResult(const OpResult& r) {
  if (r.err != Errno::kOk) return ErrnoName(r.err);
  if (!r.data.empty()) return "ok " + BytesString(r.data);
  if (r.value != 0) return "ok " + Hex(r.value);
  return "ok";
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
  bool same = e.err == step.model.err && (!e.value || *e.value == step.model.value) &&
              (!e.data || *e.data == step.model.data);
  if (same) return true;
  report->check = "expect";
  OpResult want;
  want.err = e.err;
  want.value = e.value.value_or(0);
  want.data = e.data.value_or(std::vector<uint8_t>());
  report->problems.push_back("expected " + FormatResult(want) + ", both sides gave " +
                            FormatResult(step.model));
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
  std::vector<std::string> inv = model::CheckAllInvariants(m.state(), m.ram_pages());
  if (!inv.empty()) {
    report->check = inv.front().substr(0, inv.front().find(':'));
    report->problems = std::move(inv);
    return false;
  }
  return true;
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

}  // namespace

RunReport RunTrace(const std::vector<Op>& ops, const RunOptions& options) {
  const Config config = ConfigOf(ops, options);
  model::Kernel m(config);
  impl::Kernel i(config);
  RunReport report;
  bool seen_operation = false;
  for (const Op& op : ops) {
    StepRecord step;
    step.index = report.steps.size() + 1;
    step.op = op;
    if (options.observer != nullptr) options.observer->BeforeStep(op, m.state());
    step.model = Apply(m, op);
    step.impl = Apply(i, op);
    if (options.observer != nullptr) options.observer->AfterStep(step, m.state());
    report.steps.push_back(step);
    report.steps_run = step.index;
    const bool misplaced = !CheckSetupPlacement(step, seen_operation, &report);
    seen_operation = seen_operation || !IsSetupKind(op.kind);
    if (misplaced || !CheckResults(step, options.check_expect, &report) ||
        (options.check_states && !CheckStates(m, i, &report))) {
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
    os << (failing ? "=> " : "   ") << "step " << s.index << ": " << FormatOp(s.op) << "\n";
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
