// File: impl/mmap.cc
//
// The VMA operations that take the mmap_lock in write mode and may change
// many PTEs: Mmap, Munmap, Mprotect, MadviseDontneed, and the unmap path
// (DoMunmap, ZapPageRange) that Mremap, Fork's undo and Exit reuse. The mmu
// notifier hooks (docs/mirror.md): ZapPageRange brackets every zap (munmap,
// MAP_FIXED, madvise, mremap's unmaps, exit); Mprotect brackets each VMA
// whose protection changes.

#include <algorithm>
#include <mutex>
#include <optional>
#include <shared_mutex>

#include "impl/defects.h"
#include "impl/kernel.h"
#include "impl/kernel_state.h"
#include "impl/mirror.h"

namespace hmm::impl {
namespace {

constexpr uint32_t kMapKnown = kMapShared | kMapPrivate | kMapFixed;

// Mirrors: mm/mmap.c get_unmapped_area() -> arch_get_unmapped_area(): the
// hint, rounded down (round_hint_to_min()), when its whole range is free,
// else the lowest gap at or above kMmapBase (docs/model.md: bottom-up from a
// fixed base).
std::optional<uint64_t> GetUnmappedArea(const VmaTree& vmas, uint64_t hint, uint64_t len) {
  uint64_t addr = hint & kPageMask;
  if (addr != 0 && !RangeOverflows(addr, len) && vmas.RangeFree(addr, addr + len)) return addr;
  return vmas.UnmappedArea(len, kMmapBase, kTaskSize);
}

// Mirrors: mm/mprotect.c change_pte_range(). Without write every PTE loses
// its write bit and every write device-private entry becomes read; with
// write, PTEs of shared VMAs gain it (a shmem mapping needs no write
// notification), private PTEs and device entries keep theirs: the next write
// fault decides between reuse and COW. A migration entry (of another
// process's migration) changes like the PTE it stands for.
// REQUIRES: mmap_lock (write).
void ChangePteRange(Process& p, const Vma& vma) {
  bool write = vma.prot & kProtWrite;
  if (write && !vma.shared) return;
  if (!write && DefectActive(Defect::kMprotectKeepsWrite)) return;
  std::lock_guard<std::mutex> ptl(p.ptl);
  p.pgtable.ForEachLeaf(AddrVpn(vma.start), AddrVpn(vma.end), [write](uint64_t, pte_t& e) {
    // Is it a migration entry (another process's migration in flight)? It
    // takes the write bit its page will be mapped with (change_pte_range()).
    if (IsMigrationEntry(e)) {
      e = MakeMigrationEntry(SwpEntryPfn(e), write);
      return;
    }
    // Is it a device-private entry? (Only private VMAs hold them, so only
    // the downgrade reaches one.)
    if (!PtePresent(e)) {
      if (!write) e = DeviceEntryMakeRead(e);
      return;
    }
    e = write ? (e | kPteWrite) : (e & ~kPteWrite);
  });
}

}  // namespace

void ZapPageRange(KernelState& ks, Process& p, uint64_t start, uint64_t end, bool leak_refs) {
  // Mirrors: mm/memory.c zap_page_range_single()'s mmu_notifier_invalidate_range_start()/_end().
  MmuNotifierRange notify(ks, p, start, end);
  std::lock_guard<std::mutex> ptl(p.ptl);
  // In ascending address order, so a zap's page_free events are too.
  p.pgtable.ForEachLeaf(AddrVpn(start), AddrVpn(end), [&](uint64_t, pte_t& e) {
    // Is it a migration entry? It holds no count: the migration, which
    // keeps the page, will not find it again.
    if (IsMigrationEntry(e)) {
      e = 0;
      return;
    }
    // Is it a device-private entry? (zap_pte_range() always zaps those)
    if (!PtePresent(e)) {
      ZapDeviceEntry(ks, &e, leak_refs);
      return;
    }
    uint64_t pfn = PtePfn(e);
    // The PTE goes before its counts, so a concurrent do_wp_page() elsewhere
    // never sees a mapcount lower than the PTEs that still map the page.
    e = 0;
    if (ks.pages.IsZero(pfn)) return;
    // -1 mapcount: page_remove_rmap().
    ks.pages.page(pfn).mapcount.fetch_sub(1, std::memory_order_acq_rel);
    // -1 refcount: the PTE's reference; no TLB to flush, so it goes at once
    // rather than through an mmu_gather batch.
    if (!leak_refs) ks.pages.PutPage(pfn);
  });
}

void RemoveVma(KernelState& ks, Vma& vma) {
  if (vma.shared) ShmemPutObject(ks, *vma.object);
  vma.object.reset();
}

void DoMunmap(KernelState& ks, Process& p, uint64_t start, uint64_t end, bool leak_refs) {
  p.vmas.Split(start);
  p.vmas.Split(end);
  ZapPageRange(ks, p, start, end, leak_refs);
  {
    std::lock_guard<std::mutex> ptl(p.ptl);
    p.pgtable.FreeEmptyTables(AddrVpn(start), AddrVpn(end));
  }
  // Loop invariant: every VMA inside [start, end) before `it` is removed.
  auto it = p.vmas.FirstEndingAfter(start);
  while (it != p.vmas.end() && it->second.start < end) {
    uint64_t vma_start = it->second.start;
    ++it;
    Vma vma = p.vmas.Erase(vma_start);
    RemoveVma(ks, vma);
  }
}

// Mirrors: mm/mmap.c do_mmap() -> mmap_region().
Result<uint64_t> Kernel::Mmap(Pid pid, uint64_t addr, uint64_t len, uint32_t prot,
                              uint32_t flags) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  MmapLockGuard mm(*st_, pid, MmapLockGuard::kWrite);
  Process* p = mm.proc();
  // Is the pid a live process?
  if (p == nullptr) return Errno::kSrch;
  // Is exactly one of kMapShared, kMapPrivate set, and no unknown flag?
  bool shared = flags & kMapShared;
  if ((flags & ~kMapKnown) || shared == bool(flags & kMapPrivate)) return Errno::kInval;
  // Does prot name only known bits?
  if (prot & ~kProtMask) return Errno::kInval;
  // Is len non-zero?
  if (len == 0) return Errno::kInval;
  // Does the rounded len fit in the address space?
  uint64_t rlen = PageAlign(len);
  if (rlen == 0 || rlen > kTaskSize) return Errno::kNoMem;
  uint64_t start = addr;
  if (flags & kMapFixed) {
    // Is the fixed address page aligned?
    if (!PageAligned(addr)) return Errno::kInval;
    // Does the fixed range end at or below kTaskSize?
    if (RangeOverflows(addr, rlen)) return Errno::kNoMem;
    DoMunmap(*st_, *p, start, start + rlen);
  } else {
    std::optional<uint64_t> found = GetUnmappedArea(p->vmas, addr, rlen);
    // Is there a free gap?
    if (!found) return Errno::kNoMem;
    start = *found;
  }
  Vma vma;
  vma.start = start;
  vma.end = start + rlen;
  vma.prot = prot;
  vma.shared = shared;
  if (shared) vma.object = ShmemNewObject(*st_);  // shmem_zero_setup(), pgoff 0
  p->vmas.Insert(std::move(vma));
  return start;
}

// Mirrors: mm/mmap.c __vm_munmap() -> do_vmi_munmap().
Errno Kernel::Munmap(Pid pid, uint64_t addr, uint64_t len) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  MmapLockGuard mm(*st_, pid, MmapLockGuard::kWrite);
  Process* p = mm.proc();
  // Is the pid a live process?
  if (p == nullptr) return Errno::kSrch;
  // Is addr page aligned and len non-zero?
  if (!PageAligned(addr) || len == 0) return Errno::kInval;
  // Does the rounded range end at or below kTaskSize?
  uint64_t rlen = PageAlign(len);
  if (rlen == 0 || RangeOverflows(addr, rlen)) return Errno::kInval;
  DoMunmap(*st_, *p, addr, addr + rlen, DefectActive(Defect::kMunmapLeaksRef));
  return Errno::kOk;
}

// Mirrors: mm/mprotect.c do_mprotect_pkey() -> mprotect_fixup().
Errno Kernel::Mprotect(Pid pid, uint64_t addr, uint64_t len, uint32_t prot) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  MmapLockGuard mm(*st_, pid, MmapLockGuard::kWrite);
  Process* p = mm.proc();
  // Is the pid a live process?
  if (p == nullptr) return Errno::kSrch;
  // Is addr page aligned?
  if (!PageAligned(addr)) return Errno::kInval;
  // Is there anything to do?
  if (len == 0) return Errno::kOk;
  // Does the rounded range wrap?
  uint64_t rlen = PageAlign(len);
  uint64_t end = addr + rlen;
  if (rlen == 0 || end < addr) return Errno::kNoMem;
  // Does prot name only known bits? (Last, as arch_validate_prot() is.)
  if (prot & ~kProtMask) return Errno::kInval;
  // Is every page of the range in a VMA? (hmmref checks before changing any.)
  if (!p->vmas.RangeCovered(addr, end)) return Errno::kNoMem;
  p->vmas.Split(addr);
  p->vmas.Split(end);
  for (auto it = p->vmas.FirstEndingAfter(addr); it != p->vmas.end() && it->second.start < end;
       ++it) {
    Vma& vma = it->second;
    // Is the protection unchanged? (mprotect_fixup() returns early)
    if (vma.prot == prot) continue;
    // Mirrors: mm/mprotect.c change_protection()'s mmu notifier bracket.
    bool notify = !DefectActive(Defect::kNoInvalidateOnMprotect);
    MmuNotifierRange range(*st_, *p, notify ? vma.start : 0, notify ? vma.end : 0);
    vma.prot = prot;
    ChangePteRange(*p, vma);
  }
  return Errno::kOk;
}

// Mirrors: mm/madvise.c madvise_dontneed_single_vma() over madvise_walk_vmas().
Errno Kernel::MadviseDontneed(Pid pid, uint64_t addr, uint64_t len) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  MmapLockGuard mm(*st_, pid, MmapLockGuard::kWrite);
  Process* p = mm.proc();
  // Is the pid a live process?
  if (p == nullptr) return Errno::kSrch;
  // Is addr page aligned?
  if (!PageAligned(addr)) return Errno::kInval;
  // Does a non-zero len round to a length in (0, kTaskSize], without the
  // range wrapping past 2^64 (the kernel's end < start)?
  uint64_t rlen = PageAlign(len);
  if (len != 0 && (rlen == 0 || rlen > kTaskSize || addr + rlen < addr)) return Errno::kInval;
  // Is there anything to do?
  if (len == 0) return Errno::kOk;
  // A range ending past kTaskSize has a hole there.
  uint64_t end = std::min(addr + rlen, kTaskSize);
  bool hole = addr + rlen > kTaskSize || !p->vmas.RangeCovered(addr, end);
  // PTEs exist only inside VMAs, so zapping the whole range zaps the mapped
  // parts; shared objects keep their own references.
  if (addr < end) ZapPageRange(*st_, *p, addr, end, /*leak_refs=*/false);
  // Did some page of the range have no VMA? (madvise_walk_vmas() unmapped_error)
  return hole ? Errno::kNoMem : Errno::kOk;
}

}  // namespace hmm::impl
