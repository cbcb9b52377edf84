// File: solver/mirror_table_lemmas.cc
//
// The CPU operations of the mirroring lemmas (mirror_state.h). Each changes
// the CPU tables as docs/model.md and model/*.cc do, and notifies the pages
// docs/mirror.md's invalidation table names; AfterCpuChange then applies that
// notification to every mirror and open range. A MirrorSteps flag breaks one
// operation's notification (or, for the fills that notify nothing, the check
// that makes silence safe).

#include <stdexcept>
#include <string>

#include "solver/mirror_state.h"

namespace hmm::solver::mirror {
namespace {

SymEntry PageEntry(z3::context& c, const z3::expr& id, const z3::expr& write) {
  return {TargetVal(c, Target::kPage), id, write};
}

SymEntry ZeroPageEntry(z3::context& c) {
  return {TargetVal(c, Target::kZero), c.bv_val(0, kWordBits), c.bool_val(false)};
}

// munmap and madvise(DONTNEED): every entry of the range becomes none (munmap
// drops the VMAs too); `notified` is told.
Step ZapStep(const World& w, const PageRange& range, bool drops_vma, const Notified& notified) {
  z3::context& c = w.i.ctx();
  const z3::expr in = range.Contains(w.i, w.v);
  const SymEntry cpu = LambdaEntry(w.i, w.v, IteEntry(in, NoEntry(c), At(w.before.cpu, w.i, w.v)));
  const SymVma vma = drops_vma
                         ? LambdaVma(w.i, w.v, IteVma(in, NoVma(c), VmaAt(w.before.vma, w.i, w.v)))
                         : w.before.vma;
  return Described(AfterCpuChange(w, w.before, cpu, vma, notified, range.op), {range.NonEmpty()},
                   [range](const z3::model& m) { return range.Render(m); });
}

// A read fault: an empty entry of a readable VMA gets the zero page (private)
// or the object's page, writable iff the VMA is (shared). Anything else stays.
// Mirrors: mm/memory.c do_anonymous_page(), do_read_fault().
SymEntry ReadFaultAt(const SymEntry& old, const SymVma& vma, const z3::expr& new_id, bool refills) {
  z3::context& c = old.kind.ctx();
  const SymEntry fill = IteEntry(vma.priv, ZeroPageEntry(c), PageEntry(c, new_id, vma.write));
  // Is the entry still none (the pte_none() re-check under the PTE lock)?
  const z3::expr empty =
      refills ? old.kind != TargetVal(c, Target::kDevice) : old.kind == TargetVal(c, Target::kNone);
  return IteEntry(vma.read && empty, fill, old);
}

struct FaultEffect {
  SymEntry entry;
  z3::expr replaced;  // the entry now names a new page: notified
};

// A write fault in a writable VMA: an empty entry gets a new page; the zero
// page and a read-only private page that may not be reused are copied; a
// read-only page that may be reused, or of a shared VMA, becomes writable in
// place; a device entry's callback answers SIGBUS (unchanged).
// Mirrors: mm/memory.c do_wp_page(): wp_page_copy() (notifies),
// wp_page_reuse(), wp_page_shared() (do not); do_anonymous_page().
FaultEffect WriteFaultAt(const SymEntry& old, const SymVma& vma, const z3::expr& reuse,
                         const z3::expr& new_id) {
  z3::context& c = old.kind.ctx();
  const z3::expr ro_page = old.kind == TargetVal(c, Target::kPage) && !old.write;
  const z3::expr copies =
      old.kind == TargetVal(c, Target::kZero) || (ro_page && vma.priv && !reuse);
  const z3::expr fresh = old.kind == TargetVal(c, Target::kNone) || copies;
  const SymEntry entry = IteEntry(fresh, PageEntry(c, new_id, c.bool_val(true)),
                                  IteEntry(ro_page, PageEntry(c, old.id, c.bool_val(true)), old));
  return {IteEntry(vma.write, entry, old), vma.write && copies};
}

FaultEffect FaultAt(const MirrorState& s, const z3::expr& pid, const z3::expr& vpn,
                    const z3::expr& write, const z3::expr& reuse, const z3::expr& new_id,
                    bool refills) {
  const SymEntry old = At(s.cpu, pid, vpn);
  const SymVma vma = VmaAt(s.vma, pid, vpn);
  const z3::expr id = Select(new_id, pid, vpn);
  const FaultEffect wr = WriteFaultAt(old, vma, Select(reuse, pid, vpn), id);
  const SymEntry rd = ReadFaultAt(old, vma, id, refills);
  return {IteEntry(write, wr.entry, rd), write && wr.replaced};
}

// CpuRead / CpuWrite (and pin) at one page: model/fault.cc FaultIn().
Step OnePageFaultStep(const World& w, const std::string& op, bool write, const MirrorSteps& steps) {
  z3::context& c = w.i.ctx();
  const z3::expr pid = c.bv_const((op + ".pid").c_str(), kIdBits);
  const z3::expr vpn = c.bv_const((op + ".vpn").c_str(), kVpnBits);
  const Notified faulted = [pid, vpn](const z3::expr& p, const z3::expr& v) {
    return p == pid && v == vpn;
  };
  const z3::expr reuse = PageArray(c, op + ".reuse", c.bool_sort());
  return Described(AfterFault(w, w.before, faulted, c.bool_val(write), op, steps), {},
                   [op, pid, vpn, reuse](const z3::model& m) {
                     return RenderNum(op + ".pid", pid, m) + RenderNum(op + ".vpn", vpn, m) +
                            RenderBool(op + ".reuse", Select(reuse, pid, vpn), m);
                   });
}

// Mirrors: mm/mmap.c do_munmap() -> unmap_region() (mmu_notifier_invalidate_range_start()
// and _end() around unmap_vmas()).
Step MunmapStep(const World& w, const MirrorSteps& steps) {
  const PageRange range = MakePageRange(w.i.ctx(), "munmap");
  PageRange told = range;
  if (steps.munmap_misses_last_page) told.end = range.end - 1;
  return ZapStep(w, range, /*drops_vma=*/true, told.AsNotified());
}

// Mirrors: mm/madvise.c madvise_dontneed_single_vma() -> zap_page_range().
Step MadviseDontneedStep(const World& w, const MirrorSteps& steps) {
  const PageRange range = MakePageRange(w.i.ctx(), "madvise");
  return ZapStep(w, range, /*drops_vma=*/false,
                 steps.madvise_skips_notify ? NotifiesNothing() : range.AsNotified());
}

// Without write every entry loses it; with write a shared VMA's pages gain it
// (model/kernel.cc ChangeProtection). Notified where the prot changes.
// Mirrors: mm/mprotect.c mprotect_fixup() (an unchanged VMA returns early),
// change_protection() -> change_pmd_range() (mmu_notifier_invalidate_range_start()).
Step MprotectStep(const World& w, const MirrorSteps& steps) {
  z3::context& c = w.i.ctx();
  const PageRange range = MakePageRange(c, "mprotect");
  const z3::expr read = c.bool_const("mprotect.read"), write = c.bool_const("mprotect.write");
  const SymEntry old = At(w.before.cpu, w.i, w.v);
  const SymVma vma = VmaAt(w.before.vma, w.i, w.v);
  const z3::expr shared_page = !vma.priv && old.kind == TargetVal(c, Target::kPage);
  const z3::expr in = range.Contains(w.i, w.v);
  const SymEntry cpu = LambdaEntry(
      w.i, w.v, IteEntry(in, {old.kind, old.id, write && (old.write || shared_page)}, old));
  const SymVma vma_after = LambdaVma(w.i, w.v, IteVma(in, {read, write, vma.priv}, vma));
  const SymVma prot = w.before.vma;
  const bool upgrades_only = steps.mprotect_skips_downgrade;
  const Notified notified = [=](const z3::expr& pid, const z3::expr& vpn) {
    const SymVma at = VmaAt(prot, pid, vpn);
    const z3::expr changed = upgrades_only ? (read && !at.read) || (write && !at.write)
                                           : at.read != read || at.write != write;
    return range.Contains(pid, vpn) && changed;
  };
  return Described(AfterCpuChange(w, w.before, cpu, vma_after, notified, range.op),
                   {range.NonEmpty()}, [range, read, write](const z3::model& m) {
                     return range.Render(m) + RenderBool("mprotect.read", read, m) +
                            RenderBool("mprotect.write", write, m);
                   });
}

// mremap's hypotheses: a non-empty old range, a new range that does not wrap
// and does not overlap it, and (without MREMAP_FIXED) lies on unmapped pages.
std::vector<Named> MoveHypotheses(const World& w, const PageRange& from, const PageRange& to,
                                  const z3::expr& fixed) {
  const SymEntry at = At(w.before.cpu, to.pid, w.v);
  const z3::expr unmapped = ForallWhere(
      {w.v}, {at.kind},
      z3::implies(to.Contains(to.pid, w.v), at.kind == TargetVal(w.v.ctx(), Target::kNone)));
  return {
      from.NonEmpty(),
      to.NonEmpty(),
      {"old and new ranges disjoint", z3::ule(from.end, to.start) || z3::ule(to.end, from.start)},
      {"without MREMAP_FIXED the new range is unmapped", z3::implies(!fixed, unmapped)}};
}

// Moves the entries and VMAs of [old, old + len) to [new, new + len).
// Mirrors: mm/mremap.c move_vma() -> move_page_tables() (the old range is
// notified); mremap_to() (MREMAP_FIXED unmaps the new range first).
Step MremapMoveStep(const World& w, const MirrorSteps& steps) {
  z3::context& c = w.i.ctx();
  const PageRange from = MakePageRange(c, "mremap.old");
  const z3::expr new_start = c.bv_const("mremap.new_start", kVpnBits);
  const PageRange to{"mremap.new", from.pid, new_start, new_start + (from.end - from.start)};
  const z3::expr fixed = c.bool_const("mremap.fixed");
  const z3::expr src = w.v - to.start + from.start;
  const z3::expr in_new = to.Contains(w.i, w.v), in_old = from.Contains(w.i, w.v);
  const SymEntry cpu =
      LambdaEntry(w.i, w.v,
                  IteEntry(in_new, At(w.before.cpu, from.pid, src),
                           IteEntry(in_old, NoEntry(c), At(w.before.cpu, w.i, w.v))));
  const SymVma vma = LambdaVma(w.i, w.v,
                               IteVma(in_new, VmaAt(w.before.vma, from.pid, src),
                                      IteVma(in_old, NoVma(c), VmaAt(w.before.vma, w.i, w.v))));
  const bool skips_old = steps.mremap_skips_old_range;
  const Notified notified = [=](const z3::expr& pid, const z3::expr& vpn) {
    const z3::expr told_new = fixed && to.Contains(pid, vpn);
    return skips_old ? told_new : from.Contains(pid, vpn) || told_new;
  };
  return Described(AfterCpuChange(w, w.before, cpu, vma, notified, "mremap"),
                   MoveHypotheses(w, from, to, fixed),
                   [from, new_start, fixed](const z3::model& m) {
                     return from.Render(m) + RenderNum("mremap.new_start", new_start, m) +
                            RenderBool("mremap.fixed", fixed, m);
                   });
}

// The parent's private entries lose write (a pinned page keeps it: the child
// gets a copy); the child gets the parent's private entries read-only. The
// child is new, so no mirror mirrors it.
// Mirrors: mm/memory.c copy_page_range() (mmu_notifier_invalidate_range_start()
// on the parent when is_cow_mapping()), copy_present_pte(), copy_one_pte().
Step ForkStep(const World& w, const MirrorSteps& steps) {
  z3::context& c = w.i.ctx();
  const z3::expr parent = c.bv_const("fork.parent", kIdBits);
  const z3::expr child = c.bv_const("fork.child", kIdBits);
  const z3::expr pinned = PageArray(c, "fork.pinned", c.bool_sort());
  const SymEntry old = At(w.before.cpu, w.i, w.v), from = At(w.before.cpu, parent, w.v);
  const SymVma vma = VmaAt(w.before.vma, w.i, w.v), from_vma = VmaAt(w.before.vma, parent, w.v);
  const SymEntry copy =
      IteEntry(from_vma.priv, {from.kind, from.id, c.bool_val(false)}, NoEntry(c));
  const SymEntry kept{old.kind, old.id, old.write && (!vma.priv || Select(pinned, w.i, w.v))};
  const SymEntry cpu =
      LambdaEntry(w.i, w.v, IteEntry(w.i == child, copy, IteEntry(w.i == parent, kept, old)));
  const SymVma vma_after = LambdaVma(w.i, w.v, IteVma(w.i == child, from_vma, vma));
  const z3::expr priv = w.before.vma.priv;
  Notified notified = [parent, priv](const z3::expr& pid, const z3::expr& vpn) {
    return pid == parent && Select(priv, pid, vpn);
  };
  if (steps.fork_skips_notify) notified = NotifiesNothing();
  const std::vector<Named> hypotheses = {
      {"fork.child != fork.parent", child != parent},
      {"no mirror mirrors the new child",
       ForallWhere({w.m}, {z3::select(w.before.mirror_pid, w.m)},
                   z3::select(w.before.mirror_pid, w.m) != child)}};
  return Described(AfterCpuChange(w, w.before, cpu, vma_after, notified, "fork"), hypotheses,
                   [parent, child](const z3::model& m) {
                     return RenderNum("fork.parent", parent, m) + RenderNum("fork.child", child, m);
                   });
}

// An empty slot of a private VMA gets a device entry, writable iff asked and
// the VMA is; notifies nothing.
// Mirrors: mm/migrate.c migrate_vma_insert_page() (make_device_private_entry()).
Step DeviceEntryInstallStep(const World& w, const MirrorSteps& steps) {
  z3::context& c = w.i.ctx();
  const z3::expr pid = c.bv_const("install.pid", kIdBits);
  const z3::expr vpn = c.bv_const("install.vpn", kVpnBits);
  const z3::expr pfn = c.bv_const("install.pfn", kWordBits);
  const z3::expr write = c.bool_const("install.write");
  const SymEntry old = At(w.before.cpu, w.i, w.v);
  const SymVma vma = VmaAt(w.before.vma, w.i, w.v);
  // Is the slot empty (kBusy otherwise)?
  const z3::expr empty = steps.install_over_present || old.kind == TargetVal(c, Target::kNone);
  const SymEntry entry{TargetVal(c, Target::kDevice), pfn, write && vma.write};
  const z3::expr here = w.i == pid && w.v == vpn && vma.priv && empty;
  const SymEntry cpu = LambdaEntry(w.i, w.v, IteEntry(here, entry, old));
  return Described(AfterCpuChange(w, w.before, cpu, w.before.vma, NotifiesNothing(), "install"), {},
                   [pid, vpn, pfn](const z3::model& m) {
                     return RenderNum("install.pid", pid, m) + RenderNum("install.vpn", vpn, m) +
                            RenderNum("install.pfn", pfn, m);
                   });
}

// Every entry and VMA of the process goes; every page is notified.
// Mirrors: mm/mmap.c exit_mmap() -> mmu_notifier_release().
Step ExitStep(const World& w, const MirrorSteps& steps) {
  z3::context& c = w.i.ctx();
  const z3::expr pid = c.bv_const("exit.pid", kIdBits);
  const z3::expr gone = w.i == pid;
  const SymEntry cpu =
      LambdaEntry(w.i, w.v, IteEntry(gone, NoEntry(c), At(w.before.cpu, w.i, w.v)));
  const SymVma vma = LambdaVma(w.i, w.v, IteVma(gone, NoVma(c), VmaAt(w.before.vma, w.i, w.v)));
  Notified notified = [pid](const z3::expr& p, const z3::expr&) { return p == pid; };
  if (steps.exit_skips_notify) notified = NotifiesNothing();
  return Described(AfterCpuChange(w, w.before, cpu, vma, notified, "exit"), {},
                   [pid](const z3::model& m) { return RenderNum("exit.pid", pid, m); });
}

}  // namespace

Step AfterFault(const World& w, const MirrorState& s, const Notified& faulted,
                const z3::expr& write, const std::string& op, const MirrorSteps& steps) {
  z3::context& c = w.i.ctx();
  const z3::expr reuse = PageArray(c, op + ".reuse", c.bool_sort());
  const z3::expr new_id = PageArray(c, op + ".new_id", c.bv_sort(kWordBits));
  const bool refills = steps.read_fault_refills;
  const FaultEffect here = FaultAt(s, w.i, w.v, write, reuse, new_id, refills);
  const SymEntry cpu =
      LambdaEntry(w.i, w.v, IteEntry(faulted(w.i, w.v), here.entry, At(s.cpu, w.i, w.v)));
  Notified notified = [=](const z3::expr& pid, const z3::expr& vpn) {
    return faulted(pid, vpn) && FaultAt(s, pid, vpn, write, reuse, new_id, refills).replaced;
  };
  if (steps.fault_skips_notify) notified = NotifiesNothing();
  return AfterCpuChange(w, s, cpu, s.vma, notified, op);
}

Step CpuStep(MirrorOp op, const World& w, const MirrorSteps& steps) {
  switch (op) {
    case MirrorOp::kMunmap: return MunmapStep(w, steps);
    case MirrorOp::kMprotect: return MprotectStep(w, steps);
    case MirrorOp::kMadviseDontneed: return MadviseDontneedStep(w, steps);
    case MirrorOp::kMremapMove: return MremapMoveStep(w, steps);
    case MirrorOp::kFork: return ForkStep(w, steps);
    case MirrorOp::kCpuReadFault: return OnePageFaultStep(w, "read_fault", false, steps);
    case MirrorOp::kCpuWriteFault: return OnePageFaultStep(w, "write_fault", true, steps);
    case MirrorOp::kDeviceEntryInstall: return DeviceEntryInstallStep(w, steps);
    case MirrorOp::kExit: return ExitStep(w, steps);
    default: break;
  }
  throw std::invalid_argument(std::string("not a CPU operation: ") + MirrorOpName(op));
}

}  // namespace hmm::solver::mirror
