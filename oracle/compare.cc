// File: oracle/compare.cc
//
// Comparing the guest runner's results with the model's (oracle/host.h
// ParseResults, CompareTrace; docs/oracle.md): every line the kernel ran,
// its errno, value, counts and bytes, the driver's WARNINGs, and what the
// known divergences explain.

#include <cstdlib>
#include <map>
#include <ostream>
#include <sstream>
#include <string>

#include "model/kernel.h"
#include "oracle/host.h"
#include "props/trace.h"

namespace hmm::oracle {
namespace {

using props::Op;
using props::OpKind;
using props::OpResult;

// The kernel's answer to one line, parsed.
struct KernelResult {
  std::string status;  // "ok", "err", "died", "timeout"
  std::string err;     // "EFAULT"
  std::map<std::string, std::string> fields;  // v, cpages, faults, data, done
};

KernelResult ParseKernel(const std::string& text) {
  KernelResult k;
  std::istringstream in(text);
  in >> k.status;
  if (k.status == "err") in >> k.err;
  std::string w;
  while (in >> w) {
    size_t eq = w.find('=');
    if (eq != std::string::npos) k.fields[w.substr(0, eq)] = w.substr(eq + 1);
  }
  return k;
}

std::string ModelErr(Errno e) {
  static const std::map<Errno, std::string> kNames = {
      {Errno::kOk, "ok"},         {Errno::kInval, "EINVAL"}, {Errno::kFault, "EFAULT"},
      {Errno::kPerm, "EPERM"},    {Errno::kBusy, "EBUSY"},   {Errno::kNoMem, "ENOMEM"},
      {Errno::kNoEnt, "ENOENT"},  {Errno::kRange, "ERANGE"}, {Errno::kSrch, "ESRCH"},
      {Errno::kAgain, "EAGAIN"},  {Errno::kAcces, "EACCES"}, {Errno::kNxio, "ENXIO"}};
  auto it = kNames.find(e);
  return it == kNames.end() ? "E?" : it->second;
}

bool HasValue(OpKind k) { return k == OpKind::kMmap || k == OpKind::kMremap; }
bool HasCounts(OpKind k) {
  return k == OpKind::kDread || k == OpKind::kDwrite || k == OpKind::kSnapshot ||
         k == OpKind::kMigrateToDev || k == OpKind::kMigrateToSys;
}
bool HasData(OpKind k) {
  return k == OpKind::kRead || k == OpKind::kDread || k == OpKind::kSnapshot ||
         k == OpKind::kMigrateToDev;
}

// The model's result in the kernel's terms, for display.
std::string ShowModel(const Op& op, const OpResult& r) {
  if (r.err != Errno::kOk) return "err " + ModelErr(r.err);
  std::string s = "ok";
  if (HasValue(op.kind)) s += " " + Hex(r.value);
  if (HasCounts(op.kind)) s += " cpages=" + std::to_string(r.cpages);
  if (HasCounts(op.kind) && op.kind != OpKind::kSnapshot) s += " faults=" + std::to_string(r.faults);
  if (HasData(op.kind)) s += " " + ShortData(r.data);
  return s;
}

// Compares; returns "" when the same, else what differs.
std::string Differ(const Op& op, const OpResult& m, const KernelResult& k) {
  if (k.status == "died" || k.status == "timeout") return "the process " + k.status;
  const std::string kernel_err = k.status == "ok" ? "ok" : k.err;
  if (kernel_err != ModelErr(m.err)) return "errno";
  if (m.err != Errno::kOk) return "";
  auto field = [&](const char* name) {
    auto it = k.fields.find(name);
    return it == k.fields.end() ? std::string() : it->second;
  };
  if (HasValue(op.kind) && std::strtoull(field("v").c_str(), nullptr, 0) != m.value) return "address";
  if (HasCounts(op.kind)) {
    if (std::strtoull(field("cpages").c_str(), nullptr, 10) != m.cpages) return "cpages";
    if (op.kind != OpKind::kSnapshot &&
        std::strtoull(field("faults").c_str(), nullptr, 10) != m.faults) {
      return "faults";
    }
  }
  if (HasData(op.kind)) {
    std::vector<uint8_t> d = FromRuns(field("data"));
    if (d.size() != m.data.size()) return "data length";
    for (size_t i = 0; i < d.size(); ++i) {
      if (d[i] != m.data[i]) {
        return "data at byte " + Hex(i) + ": kernel " + Hex(d[i]) + ", model " + Hex(m.data[i]);
      }
    }
  }
  return "";
}

std::string ShowKernel(const Op& op, const KernelResult& k) {
  if (k.status != "ok") {
    auto sig = k.fields.find("sig");  // a CPU access: which signal the fault raised
    return k.status + (k.err.empty() ? "" : " " + k.err) +
           (sig == k.fields.end() ? "" : " (" + sig->second + ")");
  }
  std::string s = "ok";
  auto it = k.fields.find("v");
  if (HasValue(op.kind) && it != k.fields.end()) s += " " + it->second;
  for (const char* f : {"cpages", "faults"}) {
    it = k.fields.find(f);
    if (it != k.fields.end()) s += std::string(" ") + f + "=" + it->second;
  }
  it = k.fields.find("data");
  if (it != k.fields.end()) s += " " + ShortData(FromRuns(it->second));
  return s;
}

// Prints a differing line: "known ID" when *known explains it (same line,
// and the kind, if given, begins what differs), else "differs*" after a
// state-changing unsupported line, else "DIFFERS".
void PrintDiffering(const LoweredLine& l, const KernelResult& k, const std::string& diff,
                    int tainted_at, std::map<int, KnownLine>* known, const std::string& at,
                    const std::string& text, std::ostream& out, CompareTally* tally) {
  std::string why = diff;
  if (tainted_at != 0) why += "; after unsupported line " + std::to_string(tainted_at);
  KnownLine* entry = nullptr;
  if (known != nullptr && known->count(l.op.line) != 0) entry = &known->at(l.op.line);
  if (entry != nullptr && diff.rfind(entry->kind, 0) != 0) {
    why += "; not the " + entry->kind + " of known " + entry->id;
    entry = nullptr;
  }
  std::string label;
  if (entry != nullptr) {
    entry->matched = true;
    ++tally->known;
    label = "known " + entry->id;
  } else if (tainted_at != 0) {
    ++tally->after_unsupported;
    label = "differs*";
  } else {
    ++tally->differences;
    tally->unexplained.push_back(l.op.line);
    label = "DIFFERS";
  }
  label += std::string(label.size() < 13 ? 13 - label.size() : 1, ' ');
  const std::string note = l.note.empty() ? "" : "  (" + l.note + ")";
  out << at << label << text << "  (" << why << ")" << note << "\n"
      << "      kernel: " << ShowKernel(l.op, k) << "\n"
      << "      model:  " << ShowModel(l.op, l.model) << "\n";
}

}  // namespace

std::map<std::string, KernelTrace> ParseResults(const std::string& text) {
  std::map<std::string, KernelTrace> out;
  std::istringstream in(text);
  std::string line;
  KernelTrace* cur = nullptr;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() < 2 || line[1] != ' ') continue;
    std::string rest = line.substr(2);
    size_t sp = rest.find(' ');
    std::string first = rest.substr(0, sp), tail = sp == std::string::npos ? "" : rest.substr(sp + 1);
    switch (line[0]) {
      case 'T': cur = &out[first]; *cur = KernelTrace{}; cur->started = true; break;
      case 'E': if (cur != nullptr) cur->finished = true; cur = nullptr; break;
      case 'R': if (cur != nullptr) cur->results[std::atoi(first.c_str())] = tail; break;
      case 'K': if (cur != nullptr) cur->kernel_log[std::atoi(first.c_str())].push_back(tail); break;
      case 'A': if (cur != nullptr) cur->abort = rest; break;
      default: break;
    }
  }
  return out;
}

namespace {

// Whether a kernel log line is the test driver's WARNING (lib/test_hmm.c).
bool DriverWarning(const std::string& msg) {
  return msg.find("WARNING:") != std::string::npos && msg.find("test_hmm") != std::string::npos;
}

// Whether the kernel logged the driver's WARNING during this line.
bool LogsDriverWarning(const KernelTrace& kernel, int line) {
  auto log = kernel.kernel_log.find(line);
  if (log == kernel.kernel_log.end()) return false;
  for (const std::string& msg : log->second) {
    if (DriverWarning(msg)) return true;
  }
  return false;
}

// Whether *known lists a kernel crash at this line.
bool KnownCrash(const std::map<int, KnownLine>* known, int line) {
  if (known == nullptr) return false;
  auto it = known->find(line);
  return it != known->end() && it->second.kind == "crash";
}

}  // namespace

namespace {

// One line's place in the printout: its number right-aligned, and the line.
struct LineText {
  std::string at;    // "   12: "
  std::string text;  // the .hmm line, without its expected result
};

LineText TextOf(const LoweredLine& l) {
  Op shown = l.op;
  shown.expect.reset();
  std::string at = std::to_string(l.op.line) + ": ";
  return {std::string(at.size() < 7 ? 7 - at.size() : 0, ' ') + at, props::FormatOp(shown)};
}

// A line not sent to the kernel: printed and counted. Returns whether it was
// one; *tainted_at becomes the first unsupported line that changed state.
bool PrintSkipped(const LoweredLine& l, const LineText& t, int* tainted_at, std::ostream& out,
                  CompareTally* tally) {
  if (l.fate == LineFate::kUnsupported) {
    if (l.changes_state && *tainted_at == 0) *tainted_at = l.op.line;
    ++tally->unsupported;
    out << t.at << "unsupported  " << t.text << "  (" << l.reason << ")\n";
    return true;
  }
  if (l.fate != LineFate::kNotRun) return false;
  ++tally->not_run;
  out << t.at << "not run      " << t.text << "  (" << l.reason << ")\n";
  return true;
}

// A line sent but with no result: the guest stopped where the profile
// predicts an oops, or where a known divergence says it crashes (both end
// the trace: returns true), else the result is missing.
bool PrintMissing(const LoweredLine& l, const KernelTrace& kernel, const LineText& t,
                  std::map<int, KnownLine>* known, std::ostream& out, CompareTally* tally) {
  if (!kernel.finished && l.expect_oops) {
    ++tally->predicted_oops;
    out << t.at << "same         " << t.text
        << "  -> oops (the guest stopped here, as the linux-6.1 profile predicts: D12)\n";
    return true;
  }
  if (!kernel.finished && KnownCrash(known, l.op.line)) {
    KnownLine& k = known->at(l.op.line);
    k.compared = k.matched = true;
    ++tally->known;
    ++tally->known_crashes;
    out << t.at << "known " << k.id << "     " << t.text
        << "  (the kernel crashed here; the rest of the trace is not run)\n";
    return true;
  }
  ++tally->missing;
  tally->unexplained.push_back(l.op.line);
  out << t.at << "NO RESULT    " << t.text << "  (model: " << ShowModel(l.op, l.model) << ")\n";
  return false;
}

// What differs between the kernel's result and the model's at a line the
// kernel ran ("" when nothing), the predicted oops and WARNING included.
std::string LineDiff(const LoweredLine& l, const KernelResult& k, const KernelTrace& kernel) {
  std::string diff = Differ(l.op, l.model, k);
  if (diff.empty() && l.expect_oops) diff = "the linux-6.1 profile predicts an oops here";
  if (diff.empty() && l.expect_warning && !LogsDriverWarning(kernel, l.op.line)) {
    diff = "the linux-6.1 profile predicts the driver's WARNING here; the kernel logged none";
  }
  return diff;
}

// The kernel's log lines during this line. The driver's WARNING is expected
// where the profile predicts it, or on a line a known divergence explains
// (D13 under --profile trace).
void PrintKernelLog(const LoweredLine& l, const KernelTrace& kernel,
                    const std::map<int, KnownLine>* known, std::ostream& out,
                    CompareTally* tally) {
  auto log = kernel.kernel_log.find(l.op.line);
  if (log == kernel.kernel_log.end()) return;
  const bool known_line = known != nullptr && known->count(l.op.line) != 0 &&
                          known->at(l.op.line).matched;
  for (const std::string& msg : log->second) {
    const bool expected = (l.expect_warning || known_line) && DriverWarning(msg);
    ++(expected ? tally->expected_warnings : tally->warnings);
    out << "      kernel log" << (expected ? " (expected: D13)" : "") << ": " << msg << "\n";
  }
}

}  // namespace

void CompareTrace(const LoweredTrace& trace, const KernelTrace& kernel,
                  std::map<int, KnownLine>* known, std::ostream& out, CompareTally* tally) {
  int tainted_at = 0;  // the first state-changing unsupported line
  for (const LoweredLine& l : trace.lines) {
    const LineText t = TextOf(l);
    if (PrintSkipped(l, t, &tainted_at, out, tally)) continue;
    auto it = kernel.results.find(l.op.line);
    if (it == kernel.results.end()) {
      if (PrintMissing(l, kernel, t, known, out, tally)) break;
      continue;
    }
    ++tally->compared;
    if (known != nullptr && known->count(l.op.line) != 0) known->at(l.op.line).compared = true;
    const KernelResult k = ParseKernel(it->second);
    const std::string diff = LineDiff(l, k, kernel);
    if (diff.empty()) {
      const std::string note = l.note.empty() ? "" : "  (" + l.note + ")";
      out << t.at << "same         " << t.text << "  -> " << ShowKernel(l.op, k) << note << "\n";
    } else {
      PrintDiffering(l, k, diff, tainted_at, known, t.at, t.text, out, tally);
    }
    PrintKernelLog(l, kernel, known, out, tally);
  }
  if (!kernel.abort.empty()) out << "  the runner gave up on this trace at line " << kernel.abort << "\n";
}

}  // namespace hmm::oracle
