// File: props/runner.cc

#include "props/runner.h"

#include <sstream>

#include "impl/kernel.h"
#include "model/invariants.h"
#include "model/kernel.h"
#include "props/abstract.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

static_assert(model::kMaxProcesses == impl::kMaxProcesses, "limits differ");
static_assert(model::kMaxAccess == impl::kMaxAccess, "limits differ");
static_assert(model::kMaxPinPages == impl::kMaxPinPages, "limits differ");
static_assert(model::kDefaultRamPages == impl::kDefaultRamPages, "limits differ");

template <typename T>
OpResult FromResult(const Result<T>& r, uint64_t value) {
  OpResult out;
  out.err = r.err;
  if (r.ok()) out.value = value;
  return out;
}

OpResult FromErrno(Errno e) {
  OpResult out;
  out.err = e;
  return out;
}

// One Op on one side. model::Kernel and impl::Kernel have the same signatures,
// so this is the only place that maps trace lines onto operations.
template <typename Kernel>
OpResult Apply(Kernel& k, const Op& op) {
  const Pid pid(op.pid);
  switch (op.kind) {
    case OpKind::kCreateProcess: {
      auto r = k.CreateProcess();
      return FromResult(r, r.value.value);
    }
    case OpKind::kExit:
      return FromErrno(k.Exit(pid));
    case OpKind::kMmap: {
      auto r = k.Mmap(pid, op.addr, op.len, op.prot, op.flags);
      return FromResult(r, r.value);
    }
    case OpKind::kMunmap:
      return FromErrno(k.Munmap(pid, op.addr, op.len));
    case OpKind::kMprotect:
      return FromErrno(k.Mprotect(pid, op.addr, op.len, op.prot));
    case OpKind::kMadviseDontneed:
      return FromErrno(k.MadviseDontneed(pid, op.addr, op.len));
    case OpKind::kRead: {
      auto r = k.CpuRead(pid, op.addr, op.len);
      OpResult out = FromErrno(r.err);
      if (r.ok()) out.data = r.value;
      return out;
    }
    case OpKind::kWrite:
      return FromErrno(k.CpuWrite(pid, op.addr, op.data));
    case OpKind::kPin: {
      auto r = k.PinUserPages(pid, op.addr, op.len);
      return FromResult(r, r.value.value);
    }
    case OpKind::kUnpin:
      return FromErrno(k.UnpinUserPages(PinId(op.pin)));
    case OpKind::kFork: {
      auto r = k.Fork(pid);
      return FromResult(r, r.value.value);
    }
    case OpKind::kMremap: {
      auto r = k.Mremap(pid, op.addr, op.len, op.new_len, op.flags, op.new_addr);
      return FromResult(r, r.value);
    }
    case OpKind::kRam:  // consumed by RunTrace before the kernels exist
      return FromErrno(Errno::kOk);
  }
  return FromErrno(Errno::kInval);
}

std::string Hex(uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

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

// The RAM size: a leading `ram` line, else the options, else the default.
uint64_t RamPages(const std::vector<Op>& ops, const RunOptions& options) {
  if (!ops.empty() && ops.front().kind == OpKind::kRam) return ops.front().len;
  return options.ram_pages ? options.ram_pages : model::kDefaultRamPages;
}

// A `ram` line anywhere but first (only a hand-built vector can have one; the
// parser refuses it) would be silently meaningless: report it instead.
bool CheckPlacement(const StepRecord& step, RunReport* report) {
  if (step.op.kind != OpKind::kRam || step.index == 1) return true;
  report->check = "trace";
  report->problems.push_back("'ram' must be the first line of a trace");
  return false;
}

}  // namespace

RunReport RunTrace(const std::vector<Op>& ops, const RunOptions& options) {
  const uint64_t ram = RamPages(ops, options);
  model::Kernel m(ram);
  impl::Kernel i(ram);
  RunReport report;
  for (const Op& op : ops) {
    StepRecord step;
    step.index = report.steps.size() + 1;
    step.op = op;
    step.model = Apply(m, op);
    step.impl = Apply(i, op);
    report.steps.push_back(step);
    report.steps_run = step.index;
    if (!CheckPlacement(step, &report) || !CheckResults(step, options.check_expect, &report) ||
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
