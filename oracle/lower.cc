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

}  // namespace hmm::oracle
