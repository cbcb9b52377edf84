// File: oracle/lower.cc
//
// Lowering .hmm lines for the guest runner (oracle/host.h Lower,
// FormatLowered; docs/oracle.md): each line runs on the model first, and
// the lowering follows the model's results (pids, mirrors, addresses).

#include <map>
#include <set>
#include <string>

#include "model/kernel.h"
#include "oracle/host.h"
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

// The state the lowering follows, from the model's results; One() lowers a
// line.
class Lowering {
 public:
  explicit Lowering(bool linux61) : linux61_(linux61) {}
  uint64_t max_pid() const { return max_pid_; }

  // Fills l->fate, l->lowered and l->reason, and follows the model's result.
  void One(LoweredLine* l) {
    const Op& op = l->op;
    if (props::IsSetupKind(op.kind)) return Unsupported(l, "a set-up line: the guest machine is fixed");
    if (op.kind == OpKind::kCreateProcess) return Spawn(l);
    // Lines addressed to a mirror go to the process that opened it.
    uint64_t pid = op.pid;
    if (MirrorLine(op.kind)) {
      auto it = mirrors_.find(op.mirror);
      if (it == mirrors_.end()) return NotRun(l, "no mirror " + std::to_string(op.mirror));
      pid = it->second;
    } else if (!PidLine(op.kind)) {
      return Unsupported(l, "no user-space interface of Linux 6.1 does " + props::OpName(op.kind));
    }
    if (alive_.count(pid) == 0) return NotRun(l, "no process " + std::to_string(pid));
    if (LowerProcess(l, pid) || LowerMapping(l, pid) || LowerRange(l, pid) || LowerAccess(l, pid) ||
        LowerMirror(l, pid) || LowerIoctl(l, pid)) {
      return;
    }
    Unsupported(l, "not lowered");
  }

 private:
  static std::string Line(const Op& op, uint64_t pid, const std::string& rest) {
    return std::to_string(op.line) + " " + std::to_string(pid) + " " + rest;
  }

  static bool MirrorLine(OpKind k) {
    return k == OpKind::kUnmirror || k == OpKind::kDread || k == OpKind::kDwrite ||
           k == OpKind::kSnapshot || k == OpKind::kMigrateToDev || k == OpKind::kMigrateToSys ||
           k == OpKind::kRelease;
  }

  static bool PidLine(OpKind k) {
    return k == OpKind::kExit || k == OpKind::kMmap || k == OpKind::kMunmap ||
           k == OpKind::kMprotect || k == OpKind::kMadviseDontneed || k == OpKind::kRead ||
           k == OpKind::kWrite || k == OpKind::kFork || k == OpKind::kMremap ||
           k == OpKind::kMirror;
  }

  void Unsupported(LoweredLine* l, const std::string& why) const {
    const Op& op = l->op;
    const Errno err = l->model.err;
    l->fate = LineFate::kUnsupported;
    l->reason = why;
    // A line the model refused changed nothing there either (a failed
    // hmm_fault may have faulted pages in before failing).
    // Nor did a failed mprotect, madvise or mremap, except under
    // linux-6.1, where they may fail after changing something (D5, D6).
    const bool partial = linux61_ && (op.kind == OpKind::kMprotect ||
                                      op.kind == OpKind::kMadviseDontneed ||
                                      op.kind == OpKind::kMremap);
    l->changes_state = !Inert(op.kind) &&
                       (err == Errno::kOk || partial ||
                        (op.kind == OpKind::kHmmFault && err != Errno::kNoEnt &&
                         err != Errno::kInval));
  }

  static void NotRun(LoweredLine* l, const std::string& why) {
    l->fate = LineFate::kNotRun;
    l->reason = why + " (model: " + ErrnoName(l->model.err) + ")";
  }

  static void Emit(LoweredLine* l, uint64_t pid, const std::string& rest) {
    l->lowered = Line(l->op, pid, rest);
  }

  // Whether [addr, +len) stays off the runner's own mappings; else the line
  // is unsupported.
  bool InWindow(LoweredLine* l, uint64_t addr, uint64_t len) const {
    if (Safe(addr, len)) return true;
    Unsupported(l, "the range [" + Hex(addr) + ", +" + Hex(len) + ") overlaps the runner's own mappings");
    return false;
  }

  // A range that reaches past the trace window but meets it (a munmap the
  // model accepted, a madvise, which zaps what it meets and reports holes
  // after): lowered as its part inside the window, which leaves the runner's
  // own mappings alone and changes what the model changed. Returns whether
  // it lowered the line.
  static bool Clip(uint64_t addr, uint64_t len, const std::string& verb, const std::string& rest,
                   LoweredLine* l) {
    if (Safe(addr, len)) return false;
    const uint64_t end = addr + len < addr ? ~uint64_t{0} : addr + len;
    const uint64_t lo = std::max(addr, kTraceLow), hi = std::min(end, kTraceHigh);
    if (lo >= hi) return false;
    l->note = "clipped to the trace window [" + Hex(lo) + ", " + Hex(hi) + ")";
    l->lowered = Line(l->op, l->op.pid, verb + " " + Hex(lo) + " " + Hex(hi - lo) + rest);
    return true;
  }

  void Spawn(LoweredLine* l) {
    const OpResult& r = l->model;
    if (r.err != Errno::kOk) {
      return Unsupported(l, "the model refused to create a process; the guest would not");
    }
    alive_.insert(r.value);
    max_pid_ = std::max(max_pid_, r.value);
    l->lowered = Line(l->op, r.value, "spawn");
  }

  // exit, fork. Returns whether it took the line (as for each Lower* below).
  bool LowerProcess(LoweredLine* l, uint64_t pid) {
    const OpResult& r = l->model;
    switch (l->op.kind) {
      case OpKind::kExit:
        alive_.erase(pid);
        for (auto it = mirrors_.begin(); it != mirrors_.end();) {
          it = it->second == pid ? mirrors_.erase(it) : std::next(it);
        }
        Emit(l, pid, "exit");
        return true;
      case OpKind::kFork:
        if (r.err != Errno::kOk) {
          Unsupported(l, "the model refused the fork; the guest would not");
          return true;
        }
        alive_.insert(r.value);
        max_pid_ = std::max(max_pid_, r.value);
        Emit(l, pid, "fork " + std::to_string(r.value));
        return true;
      default:
        return false;
    }
  }

  // mmap, mremap: where the model placed the mapping, so that addresses agree.
  bool LowerMapping(LoweredLine* l, uint64_t pid) {
    const Op& op = l->op;
    const OpResult& r = l->model;
    const bool ok = r.err == Errno::kOk;
    if (op.kind == OpKind::kMmap) {
      uint64_t flags = LinuxMapFlags(op.flags), addr = op.addr;
      if (op.flags & kMapFixed) {
        if (!InWindow(l, op.addr, op.len)) return true;
      } else if (ok) {
        addr = r.value;
        flags |= kLinuxMapFixedNoreplace;
        if (!InWindow(l, addr, op.len)) return true;
      }
      Emit(l, pid, "mmap " + Hex(addr) + " " + Hex(op.len) + " " + Hex(op.prot) + " " + Hex(flags));
      return true;
    }
    if (op.kind != OpKind::kMremap) return false;
    uint64_t flags = op.flags, new_addr = op.new_addr;
    if (!InWindow(l, op.addr, op.len)) return true;
    if (ok && !(op.flags & kMremapFixed) && (op.flags & kMremapMaymove) && r.value != op.addr) {
      flags |= kMremapFixed;  // where the model moved it
      new_addr = r.value;
    }
    if ((flags & kMremapFixed) && !InWindow(l, new_addr, op.new_len)) return true;
    Emit(l, pid, "mremap " + Hex(op.addr) + " " + Hex(op.len) + " " + Hex(op.new_len) + " " +
                     Hex(flags) + " " + Hex(new_addr));
    return true;
  }

  // munmap, mprotect, madvise: clipped to the trace window where the model
  // changed only what lies inside it.
  bool LowerRange(LoweredLine* l, uint64_t pid) {
    const Op& op = l->op;
    const Errno err = l->model.err;
    const bool changed = err == Errno::kOk || err == Errno::kNoMem;  // kNoMem: a hole after it
    std::string verb, rest;
    switch (op.kind) {
      case OpKind::kMunmap:
        // Everything the model had there lies in the trace window.
        if (err == Errno::kOk && Clip(op.addr, op.len, "munmap", "", l)) return true;
        verb = "munmap";
        break;
      case OpKind::kMprotect:
        // Past the window from inside it, without wrapping: 6.1 stops at the
        // first hole, which lies inside the window.
        rest = " " + Hex(op.prot);
        if (op.addr >= kTraceLow && op.addr + ((op.len + 4095) & ~uint64_t{4095}) > op.addr &&
            changed && Clip(op.addr, op.len, "mprotect", rest, l)) {
          return true;
        }
        verb = "mprotect";
        break;
      case OpKind::kMadviseDontneed:
        rest = " " + std::to_string(kLinuxMadvDontneed);
        if (changed && Clip(op.addr, op.len, "madvise", rest, l)) return true;
        verb = "madvise";
        break;
      default:
        return false;
    }
    if (InWindow(l, op.addr, op.len)) Emit(l, pid, verb + " " + Hex(op.addr) + " " + Hex(op.len) + rest);
    return true;
  }

  // A CPU read or write.
  bool LowerAccess(LoweredLine* l, uint64_t pid) {
    const Op& op = l->op;
    const bool read = op.kind == OpKind::kRead;
    if (!read && op.kind != OpKind::kWrite) return false;
    const uint64_t len = read ? op.len : op.data.size();
    if (len == 0 || len > model::kMaxAccess) {
      Unsupported(l, kAccessBound);
      return true;
    }
    if (!InWindow(l, op.addr, len)) return true;
    Emit(l, pid, read ? "read " + Hex(op.addr) + " " + Hex(op.len)
                      : "write " + Hex(op.addr) + " " + Runs(op.data));
    return true;
  }

  // mirror, unmirror, release: the device file.
  bool LowerMirror(LoweredLine* l, uint64_t pid) {
    const Op& op = l->op;
    const OpResult& r = l->model;
    switch (op.kind) {
      case OpKind::kMirror:
        if (r.err == Errno::kOk) mirrors_[r.value] = pid;
        Emit(l, pid, "mirror " + std::to_string(r.err == Errno::kOk ? r.value : 0) + " " +
                         std::to_string(op.device));
        return true;
      case OpKind::kUnmirror:
        if (r.err != Errno::kOk) {
          Unsupported(l, "the model refused unmirror; close() cannot fail that way");
          return true;
        }
        mirrors_.erase(op.mirror);
        Emit(l, pid, "unmirror " + std::to_string(op.mirror));
        return true;
      case OpKind::kRelease:  // the ioctl checks addr and npages: any page, one
        Emit(l, pid, "release " + std::to_string(op.mirror) + " " + Hex(kTraceLow) + " 1");
        return true;
      default:
        return false;
    }
  }

  // The dummy device's ioctls over a range.
  bool LowerIoctl(LoweredLine* l, uint64_t pid) {
    const Op& op = l->op;
    const bool dwrite = op.kind == OpKind::kDwrite;
    if (!dwrite && op.kind != OpKind::kDread && op.kind != OpKind::kSnapshot &&
        op.kind != OpKind::kMigrateToDev && op.kind != OpKind::kMigrateToSys) {
      return false;
    }
    if (dwrite && op.data.size() % 4096 != 0) {
      Unsupported(l, "DATA is not whole pages; the ioctl takes a page count");
      return true;
    }
    const uint64_t npages = dwrite ? op.data.size() / 4096 : op.len;
    if (linux61_ && l->model.err == Errno::kNoMem && npages > kLinux61MaxDmirrorPages) {
      Unsupported(l, kModelBound);
      return true;
    }
    const uint64_t bytes = dwrite ? op.data.size() : npages > (kUserTop >> 12) ? kUserTop : npages << 12;
    if (!InWindow(l, op.addr, bytes)) return true;
    const std::string head = std::to_string(op.mirror) + " " + Hex(op.addr) + " " + std::to_string(npages);
    Emit(l, pid, dwrite ? "dwrite " + head + " " + Runs(op.data) : props::OpName(op.kind) + " " + head);
    return true;
  }

  const bool linux61_;                      // the model runs the linux-6.1 profile
  std::set<uint64_t> alive_;                // trace pids
  std::map<uint64_t, uint64_t> mirrors_;    // mirror id -> owner pid
  uint64_t max_pid_ = 0;
};

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

LoweredTrace Lower(const std::vector<Op>& ops, OracleProfile profile) {
  Config config;
  for (const Op& op : ops) props::ApplySetup(op, &config);
  if (profile == OracleProfile::kLinux61) config.profile = Profile::kLinux61;
  model::Kernel model(config);
  Lowering lowering(config.profile == Profile::kLinux61);
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
  out.max_pid = lowering.max_pid();
  return out;
}

std::string FormatLowered(const LoweredTrace& trace, const std::string& name) {
  std::string s = "trace " + name + " " + std::to_string(trace.max_pid) + "\n";
  for (const LoweredLine& l : trace.lines) {
    if (l.fate == LineFate::kRun) s += l.lowered + "\n";
  }
  return s + "end\n";
}

}  // namespace hmm::oracle
