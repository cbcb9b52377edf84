// File: oracle/host.cc
//
// Lowering .hmm lines for the guest runner, and comparing its results with
// the model's (oracle/host.h, docs/oracle.md).

#include "oracle/host.h"

#include <cstdlib>
#include <map>
#include <ostream>
#include <set>
#include <sstream>

#include "model/kernel.h"
#include "props/apply.h"
#include "props/trace.h"

namespace hmm::oracle {
namespace {

using props::Op;
using props::OpKind;
using props::OpResult;

// Linux's values (include/uapi/asm-generic/mman*.h).
constexpr uint64_t kLinuxMapShared = 0x1, kLinuxMapPrivate = 0x2, kLinuxMapFixed = 0x10;
constexpr uint64_t kLinuxMapAnonymous = 0x20, kLinuxMapFixedNoreplace = 0x100000;
constexpr uint64_t kLinuxMadvDontneed = 4;

// The guest runner's own mappings (binary and heap below, stack, vdso and
// its buffers above; the guest boots with norandmaps) are outside
// [kTraceLow, kTraceHigh); a line that could touch them is not lowered.
constexpr uint64_t kTraceLow = 0x10000000;
constexpr uint64_t kTraceHigh = 0x7f0000000000;
constexpr uint64_t kUserTop = 0x800000000000;  // x86-64 TASK_SIZE (4-level), rounded up

bool Safe(uint64_t addr, uint64_t len) {
  if (len == 0 || addr >= kUserTop) return true;  // the kernel touches nothing
  uint64_t end = addr + len < addr ? ~uint64_t{0} : addr + len;
  return addr >= kTraceLow && end <= kTraceHigh;
}

// Bytes in the runner's run notation: "5a*24576" for 8 or more equal bytes,
// hex otherwise, joined by ','.
std::string Runs(const std::vector<uint8_t>& d) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out, raw;
  auto flush = [&] {
    if (raw.empty()) return;
    out += (out.empty() ? "" : ",") + raw;
    raw.clear();
  };
  for (size_t i = 0; i < d.size();) {
    size_t j = i;
    while (j < d.size() && d[j] == d[i]) ++j;
    if (j - i >= 8) {
      flush();
      out += std::string(out.empty() ? "" : ",") + kDigits[d[i] >> 4] + kDigits[d[i] & 15] + "*" +
             std::to_string(j - i);
    } else {
      for (size_t k = i; k < j; ++k) raw += std::string(1, kDigits[d[k] >> 4]) + kDigits[d[k] & 15];
    }
    i = j;
  }
  flush();
  return out;
}

std::vector<uint8_t> FromRuns(const std::string& s) {
  std::vector<uint8_t> out;
  std::stringstream in(s);
  std::string seg;
  while (std::getline(in, seg, ',')) {
    size_t star = seg.find('*');
    if (star != std::string::npos) {
      out.insert(out.end(), std::strtoull(seg.c_str() + star + 1, nullptr, 10),
                 static_cast<uint8_t>(std::strtoul(seg.substr(0, star).c_str(), nullptr, 16)));
      continue;
    }
    for (size_t i = 0; i + 1 < seg.size(); i += 2) {
      out.push_back(static_cast<uint8_t>(std::strtoul(seg.substr(i, 2).c_str(), nullptr, 16)));
    }
  }
  return out;
}

uint64_t LinuxMapFlags(uint32_t f) {
  uint64_t out = f & ~uint32_t{kMapShared | kMapPrivate | kMapFixed};  // unknown bits as they are
  if (f & kMapShared) out |= kLinuxMapShared;
  if (f & kMapPrivate) out |= kLinuxMapPrivate;
  if (f & kMapFixed) out |= kLinuxMapFixed;
  return out | kLinuxMapAnonymous;
}

// Lines whose skipping cannot change what a kernel-side line returns: device
// memory bookkeeping and the 4.14 range protocol's queries.
bool Inert(OpKind k) {
  return k == OpKind::kPhysmemBits || k == OpKind::kSection || k == OpKind::kPageFrees ||
         k == OpKind::kDevmemAdd || k == OpKind::kDevmemRemove || k == OpKind::kDevPageAlloc ||
         k == OpKind::kDevPagePut || k == OpKind::kGetPfns || k == OpKind::kRangeDone;
}

constexpr char kModelBound[] =
    "beyond the linux-6.1 profile's bound of 65536 pages on one dummy-device ioctl "
    "(the kernel has none, D10; the model keeps every byte)";

constexpr char kAccessBound[] =
    "the model's own bound on one CPU access (1 byte to 64 KiB); loads and stores have no errno";

// The linux-6.1 profile's bound on one dummy-device ioctl's pages (model/dmirror.cc).
constexpr uint64_t kLinux61MaxDmirrorPages = uint64_t{1} << 16;

// The state the lowering follows, from the model's results.
struct Lowering {
  std::set<uint64_t> alive;               // trace pids
  std::map<uint64_t, uint64_t> mirrors;   // mirror id -> owner pid
  uint64_t max_pid = 0;
  bool linux61 = false;                   // the model runs the linux-6.1 profile

  static std::string Line(const Op& op, uint64_t pid, const std::string& rest) {
    return std::to_string(op.line) + " " + std::to_string(pid) + " " + rest;
  }

  // A range that reaches past the trace window but meets it (a munmap the
  // model accepted, a madvise, which zaps what it meets and reports holes
  // after): lowered as its part inside the window, which leaves the runner's
  // own mappings alone and changes what the model changed. Returns whether
  // it lowered the line.
  bool Clip(uint64_t addr, uint64_t len, const std::string& verb, const std::string& rest,
            LoweredLine* l) {
    if (Safe(addr, len)) return false;
    const uint64_t end = addr + len < addr ? ~uint64_t{0} : addr + len;
    const uint64_t lo = std::max(addr, kTraceLow), hi = std::min(end, kTraceHigh);
    if (lo >= hi) return false;
    l->note = "clipped to the trace window [" + Hex(lo) + ", " + Hex(hi) + ")";
    l->lowered = Line(l->op, l->op.pid, verb + " " + Hex(lo) + " " + Hex(hi - lo) + rest);
    return true;
  }

  // Fills l->fate, l->lowered and l->reason, and follows the model's result.
  void One(LoweredLine* l) {
    const Op& op = l->op;
    const OpResult& r = l->model;
    const bool ok = r.err == Errno::kOk;
    auto unsupported = [&](const std::string& why) {
      l->fate = LineFate::kUnsupported;
      l->reason = why;
      // A line the model refused changed nothing there either (a failed
      // hmm_fault may have faulted pages in before failing).
      // Nor did a failed mprotect, madvise or mremap, except under
      // linux-6.1, where they may fail after changing something (D5, D6).
      const bool partial = linux61 && (op.kind == OpKind::kMprotect ||
                                       op.kind == OpKind::kMadviseDontneed ||
                                       op.kind == OpKind::kMremap);
      l->changes_state = !Inert(op.kind) &&
                         (ok || partial ||
                          (op.kind == OpKind::kHmmFault && r.err != Errno::kNoEnt &&
                           r.err != Errno::kInval));
    };
    auto not_run = [&](const std::string& why) {
      l->fate = LineFate::kNotRun;
      l->reason = why + " (model: " + ErrnoName(r.err) + ")";
    };
    if (props::IsSetupKind(op.kind)) return unsupported("a set-up line: the guest machine is fixed");
    if (op.kind == OpKind::kCreateProcess) {
      if (!ok) return unsupported("the model refused to create a process; the guest would not");
      alive.insert(r.value);
      max_pid = std::max(max_pid, r.value);
      l->lowered = Line(op, r.value, "spawn");
      return;
    }
    // Lines addressed to a mirror go to the process that opened it.
    const bool mirror_line = op.kind == OpKind::kUnmirror || op.kind == OpKind::kDread ||
                             op.kind == OpKind::kDwrite || op.kind == OpKind::kSnapshot ||
                             op.kind == OpKind::kMigrateToDev ||
                             op.kind == OpKind::kMigrateToSys || op.kind == OpKind::kRelease;
    uint64_t pid = op.pid;
    if (mirror_line) {
      auto it = mirrors.find(op.mirror);
      if (it == mirrors.end()) return not_run("no mirror " + std::to_string(op.mirror));
      pid = it->second;
    }
    const bool pid_line = mirror_line || op.kind == OpKind::kExit || op.kind == OpKind::kMmap ||
                          op.kind == OpKind::kMunmap || op.kind == OpKind::kMprotect ||
                          op.kind == OpKind::kMadviseDontneed || op.kind == OpKind::kRead ||
                          op.kind == OpKind::kWrite || op.kind == OpKind::kFork ||
                          op.kind == OpKind::kMremap || op.kind == OpKind::kMirror;
    if (!pid_line) return unsupported("no user-space interface of Linux 6.1 does " + props::OpName(op.kind));
    if (alive.count(pid) == 0) return not_run("no process " + std::to_string(pid));
    auto emit = [&](const std::string& rest) { l->lowered = Line(op, pid, rest); };
    auto range = [&](uint64_t addr, uint64_t len) {
      if (Safe(addr, len)) return true;
      unsupported("the range [" + Hex(addr) + ", +" + Hex(len) + ") overlaps the runner's own mappings");
      return false;
    };
    switch (op.kind) {
      case OpKind::kExit:
        alive.erase(pid);
        for (auto it = mirrors.begin(); it != mirrors.end();) {
          it = it->second == pid ? mirrors.erase(it) : std::next(it);
        }
        return emit("exit");
      case OpKind::kFork:
        if (!ok) return unsupported("the model refused the fork; the guest would not");
        alive.insert(r.value);
        max_pid = std::max(max_pid, r.value);
        return emit("fork " + std::to_string(r.value));
      case OpKind::kMmap: {
        uint64_t flags = LinuxMapFlags(op.flags), addr = op.addr;
        if (op.flags & kMapFixed) {
          if (!range(op.addr, op.len)) return;
        } else if (ok) {  // the model's choice, so that addresses agree
          addr = r.value;
          flags |= kLinuxMapFixedNoreplace;
          if (!range(addr, op.len)) return;
        }
        return emit("mmap " + Hex(addr) + " " + Hex(op.len) + " " + Hex(op.prot) + " " + Hex(flags));
      }
      case OpKind::kMremap: {
        uint64_t flags = op.flags, new_addr = op.new_addr;
        if (!range(op.addr, op.len)) return;
        if (ok && !(op.flags & kMremapFixed) && (op.flags & kMremapMaymove) && r.value != op.addr) {
          flags |= kMremapFixed;  // where the model moved it
          new_addr = r.value;
        }
        if ((flags & kMremapFixed) && !range(new_addr, op.new_len)) return;
        return emit("mremap " + Hex(op.addr) + " " + Hex(op.len) + " " + Hex(op.new_len) + " " +
                    Hex(flags) + " " + Hex(new_addr));
      }
      case OpKind::kMunmap:
        // Everything the model had there lies in the trace window: unmap
        // that part only, which leaves the runner's own mappings alone.
        if (ok && Clip(op.addr, op.len, "munmap", "", l)) return;
        if (!range(op.addr, op.len)) return;
        return emit("munmap " + Hex(op.addr) + " " + Hex(op.len));
      case OpKind::kMprotect:
        // Past the window from inside it, without wrapping: 6.1 stops at
        // the first hole, which lies inside the window (ok, or kNoMem after
        // the change).
        if (op.addr >= kTraceLow && op.addr + ((op.len + 4095) & ~uint64_t{4095}) > op.addr &&
            (ok || r.err == Errno::kNoMem) &&
            Clip(op.addr, op.len, "mprotect", " " + Hex(op.prot), l)) {
          return;
        }
        if (!range(op.addr, op.len)) return;
        return emit("mprotect " + Hex(op.addr) + " " + Hex(op.len) + " " + Hex(op.prot));
      case OpKind::kMadviseDontneed:
        // Only when the model zapped (ok, or kNoMem for a hole after the zap).
        if ((ok || r.err == Errno::kNoMem) &&
            Clip(op.addr, op.len, "madvise", " " + std::to_string(kLinuxMadvDontneed), l)) {
          return;
        }
        if (!range(op.addr, op.len)) return;
        return emit("madvise " + Hex(op.addr) + " " + Hex(op.len) + " " +
                    std::to_string(kLinuxMadvDontneed));
      case OpKind::kRead:
        if (op.len == 0 || op.len > model::kMaxAccess) return unsupported(kAccessBound);
        if (!range(op.addr, op.len)) return;
        return emit("read " + Hex(op.addr) + " " + Hex(op.len));
      case OpKind::kWrite:
        if (op.data.empty() || op.data.size() > model::kMaxAccess) return unsupported(kAccessBound);
        if (!range(op.addr, op.data.size())) return;
        return emit("write " + Hex(op.addr) + " " + Runs(op.data));
      case OpKind::kMirror:
        if (ok) mirrors[r.value] = pid;
        return emit("mirror " + std::to_string(ok ? r.value : 0) + " " + std::to_string(op.device));
      case OpKind::kUnmirror:
        if (!ok) return unsupported("the model refused unmirror; close() cannot fail that way");
        mirrors.erase(op.mirror);
        return emit("unmirror " + std::to_string(op.mirror));
      case OpKind::kDread:
      case OpKind::kSnapshot:
      case OpKind::kMigrateToDev:
      case OpKind::kMigrateToSys:
        if (linux61 && r.err == Errno::kNoMem && op.len > kLinux61MaxDmirrorPages) {
          return unsupported(kModelBound);
        }
        if (!range(op.addr, op.len > (kUserTop >> 12) ? kUserTop : op.len << 12)) return;
        return emit(props::OpName(op.kind) + " " + std::to_string(op.mirror) + " " +
                    Hex(op.addr) + " " + std::to_string(op.len));
      case OpKind::kRelease:  // the ioctl checks addr and npages: any page, one
        return emit("release " + std::to_string(op.mirror) + " " + Hex(kTraceLow) + " 1");
      case OpKind::kDwrite:
        if (op.data.size() % 4096 != 0) {
          return unsupported("DATA is not whole pages; the ioctl takes a page count");
        }
        if (linux61 && r.err == Errno::kNoMem && op.data.size() / 4096 > kLinux61MaxDmirrorPages) {
          return unsupported(kModelBound);
        }
        if (!range(op.addr, op.data.size())) return;
        return emit("dwrite " + std::to_string(op.mirror) + " " + Hex(op.addr) + " " +
                    std::to_string(op.data.size() / 4096) + " " + Runs(op.data));
      default:
        return unsupported("not lowered");
    }
  }
};

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

// What the model predicts of Linux 6.1 at a line (its KernelSplats from
// index `from` on): a WARNING is expected in the kernel's log; an oops is
// expected (the line is sent, the guest stops there); a use-after-free is
// not sent (a write there corrupts the guest). Returns why the lines after
// it are not sent ("" when they are).
std::string Splats(const std::vector<model::KernelSplat>& splats, size_t from, LoweredLine* l) {
  std::string stop;
  for (size_t i = from; i < splats.size(); ++i) {
    const model::KernelSplat& splat = splats[i];
    const std::string at = "line " + std::to_string(l->op.line);
    if (splat.kind == model::KernelSplat::kWarning) l->expect_warning = true;
    if (splat.kind == model::KernelSplat::kOops) {
      l->expect_oops = l->fate == LineFate::kRun;
      stop = "after the oops the linux-6.1 profile predicts at " + at + " (D12)";
    }
    if (splat.kind == model::KernelSplat::kUseAfterFree && stop.empty()) {
      l->fate = LineFate::kNotRun;
      l->reason = "Linux 6.1 reads or writes a page its driver freed here (" + splat.where +
                  ", D15): not sent";
      stop = "after " + at + ", where Linux 6.1 uses freed memory (D15)";
    }
  }
  return stop;
}

}  // namespace

std::string ShortData(const std::vector<uint8_t>& data) {
  if (data.empty()) return "hex:";
  bool uniform = true;
  for (uint8_t b : data) uniform = uniform && b == data[0];
  if (uniform && data.size() >= 8) return "fill:" + Hex(data[0]) + "*" + std::to_string(data.size());
  if (data.size() <= 32) {
    std::string s = "hex:";
    for (uint8_t b : data) s += Hex(b + 0x100).substr(3);
    return s;
  }
  std::string runs = Runs(data);
  if (runs.size() > 72) runs = runs.substr(0, 72) + "...";
  return "runs:" + runs + " (" + std::to_string(data.size()) + " bytes)";
}

LoweredTrace Lower(const std::vector<Op>& ops, OracleProfile profile) {
  Config config;
  for (const Op& op : ops) props::ApplySetup(op, &config);
  if (profile == OracleProfile::kLinux61) config.profile = Profile::kLinux61;
  model::Kernel model(config);
  Lowering lowering;
  lowering.linux61 = config.profile == Profile::kLinux61;
  LoweredTrace out;
  std::string stopped;  // why nothing more is sent, once something is not
  for (const Op& op : ops) {
    LoweredLine l;
    l.op = op;
    const size_t splats = model.splats().size();
    l.model = props::IsSetupKind(op.kind) ? OpResult{} : props::Apply(model, op);
    lowering.One(&l);
    if (!stopped.empty()) {
      l.fate = LineFate::kNotRun;
      l.reason = stopped;
    }
    if (stopped.empty()) stopped = Splats(model.splats(), splats, &l);
    out.lines.push_back(std::move(l));
  }
  out.max_pid = lowering.max_pid;
  return out;
}

std::string FormatLowered(const LoweredTrace& trace, const std::string& name) {
  std::string s = "trace " + name + " " + std::to_string(trace.max_pid) + "\n";
  for (const LoweredLine& l : trace.lines) {
    if (l.fate == LineFate::kRun) s += l.lowered + "\n";
  }
  return s + "end\n";
}

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

void CompareTrace(const LoweredTrace& trace, const KernelTrace& kernel,
                  std::map<int, KnownLine>* known, std::ostream& out, CompareTally* tally) {
  int tainted_at = 0;  // the first state-changing unsupported line
  for (const LoweredLine& l : trace.lines) {
    Op shown = l.op;
    shown.expect.reset();
    const std::string text = props::FormatOp(shown);
    std::string at = std::to_string(l.op.line) + ": ";
    at = std::string(at.size() < 7 ? 7 - at.size() : 0, ' ') + at;
    if (l.fate == LineFate::kUnsupported) {
      if (l.changes_state && tainted_at == 0) tainted_at = l.op.line;
      ++tally->unsupported;
      out << at << "unsupported  " << text << "  (" << l.reason << ")\n";
      continue;
    }
    if (l.fate == LineFate::kNotRun) {
      ++tally->not_run;
      out << at << "not run      " << text << "  (" << l.reason << ")\n";
      continue;
    }
    auto it = kernel.results.find(l.op.line);
    if (it == kernel.results.end() && !kernel.finished && l.expect_oops) {
      ++tally->predicted_oops;
      out << at << "same         " << text
          << "  -> oops (the guest stopped here, as the linux-6.1 profile predicts: D12)\n";
      break;
    }
    if (it == kernel.results.end() && !kernel.finished && KnownCrash(known, l.op.line)) {
      KnownLine& k = known->at(l.op.line);
      k.compared = k.matched = true;
      ++tally->known;
      ++tally->known_crashes;
      out << at << "known " << k.id << "     " << text << "  (the kernel crashed here; the rest of the trace is not run)\n";
      break;
    }
    if (it == kernel.results.end()) {
      ++tally->missing;
      tally->unexplained.push_back(l.op.line);
      out << at << "NO RESULT    " << text << "  (model: " << ShowModel(l.op, l.model) << ")\n";
      continue;
    }
    ++tally->compared;
    if (known != nullptr && known->count(l.op.line) != 0) known->at(l.op.line).compared = true;
    KernelResult k = ParseKernel(it->second);
    std::string diff = Differ(l.op, l.model, k);
    if (diff.empty() && l.expect_oops) diff = "the linux-6.1 profile predicts an oops here";
    if (diff.empty() && l.expect_warning && !LogsDriverWarning(kernel, l.op.line)) {
      diff = "the linux-6.1 profile predicts the driver's WARNING here; the kernel logged none";
    }
    if (diff.empty()) {
      const std::string note = l.note.empty() ? "" : "  (" + l.note + ")";
      out << at << "same         " << text << "  -> " << ShowKernel(l.op, k) << note << "\n";
    } else {
      PrintDiffering(l, k, diff, tainted_at, known, at, text, out, tally);
    }
    auto log = kernel.kernel_log.find(l.op.line);
    if (log == kernel.kernel_log.end()) continue;
    // The driver's WARNING is expected where the profile predicts it, or on a
    // line a known divergence explains (D13 under --profile trace).
    const bool known_line = known != nullptr && known->count(l.op.line) != 0 &&
                            known->at(l.op.line).matched;
    for (const std::string& msg : log->second) {
      const bool expected = (l.expect_warning || known_line) && DriverWarning(msg);
      ++(expected ? tally->expected_warnings : tally->warnings);
      out << "      kernel log" << (expected ? " (expected: D13)" : "") << ": " << msg << "\n";
    }
  }
  if (!kernel.abort.empty()) out << "  the runner gave up on this trace at line " << kernel.abort << "\n";
}

}  // namespace hmm::oracle
