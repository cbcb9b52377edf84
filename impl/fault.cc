// File: impl/fault.cc
//
// The CPU fault path (mm/memory.c handle_mm_fault()) and the user accesses
// built on it, CpuRead and CpuWrite. Every fault runs under the mmap_lock in
// read mode, so faults of one process run in parallel and serialize on its
// ptl; the decision to reuse or copy a COW page is taken under the ptl and
// the page lock, and a copy is made after both are dropped and the mirrors
// told (docs/mirror.md: a COW break notifies its one page), once the ptl is
// back and the PTE found unchanged.

#include <algorithm>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "impl/defects.h"
#include "impl/kernel.h"
#include "impl/kernel_state.h"
#include "impl/mirror.h"

namespace hmm::impl {
namespace {

pte_t MakePagePte(uint64_t pfn, bool write) {
  return MakePresentPte(pfn, write, /*dirty=*/write, /*accessed=*/true, /*special=*/false);
}

// Mirrors: mm/memory.c do_anonymous_page(). A read maps the zero page
// (pte_mkspecial, never writable); a write maps a new zeroed page, writable.
// REQUIRES: ptl; *ptep is none.
Result<uint64_t> DoAnonymousPage(KernelState& ks, pte_t* ptep, bool write) {
  if (!write) {
    *ptep = MakePresentPte(ks.pages.zero_pfn(), false, false, true, /*special=*/true);
    return ks.pages.zero_pfn();
  }
  std::optional<uint64_t> pfn = ks.pages.AllocPage(kPgAnon);
  if (!pfn) return Errno::kNoMem;
  // The allocation's reference becomes the PTE's; +1 mapcount: page_add_new_anon_rmap().
  ks.pages.page(*pfn).mapcount.store(1, std::memory_order_relaxed);
  *ptep = MakePagePte(*pfn, true);
  ks.pages.GetPage(*pfn);  // +1: the caller's
  return *pfn;
}

// A COW copy, decided under the ptl (do_wp_page()) and made once the ptl is
// dropped, so that the mirrors hear of it first (wp_page_copy()).
struct CowCopy {
  bool needed = false;
  pte_t orig = 0;  // the PTE the decision saw; pte_same() checks it again
};

Result<uint64_t> NeedCopy(const pte_t* ptep, CowCopy* cow) {
  cow->needed = true;
  cow->orig = *ptep;
  return uint64_t{0};  // unused: FaultInPage makes the copy
}

// Mirrors: mm/memory.c wp_page_copy()'s replacement: the faulting PTE gets
// the private copy `pfn` of `old` (the zero page reads as zeros, which
// AllocPage already gives). REQUIRES: ptl; `old` locked unless it is the zero
// page; pfn freshly allocated.
void WpPageReplace(KernelState& ks, pte_t* ptep, uint64_t old, uint64_t pfn) {
  if (!ks.pages.IsZero(old)) std::memcpy(ks.pages.data(pfn), ks.pages.data(old), kPageSize);
  ks.pages.page(pfn).mapcount.store(1, std::memory_order_relaxed);  // the new PTE
  *ptep = MakePagePte(pfn, true);
  if (!ks.pages.IsZero(old)) {
    // -1 mapcount: page_remove_rmap(old). The reference goes after unlock.
    ks.pages.page(old).mapcount.fetch_sub(1, std::memory_order_acq_rel);
  }
  ks.pages.GetPage(pfn);  // +1: the caller's
}

// Mirrors: mm/memory.c wp_page_copy(): allocate, tell the mirrors
// (mmu_notifier_invalidate_range_start()), then under the ptl replace the PTE
// if it is still `orig` (pte_same()); else free the page and set *retry (the
// fault runs again, as the kernel returns to user space and re-faults).
// REQUIRES: mmap_lock (read); no ptl or page lock.
Result<uint64_t> WpPageCopy(KernelState& ks, Process& p, uint64_t addr, pte_t orig,
                            bool* retry) {
  std::optional<uint64_t> pfn = ks.pages.AllocPage(kPgAnon);
  if (!pfn) return Errno::kNoMem;
  const uint64_t old = PtePfn(orig);
  const bool zero = ks.pages.IsZero(old);
  MmuNotifierRange notify(ks, p, addr, addr + kPageSize);
  {
    std::lock_guard<std::mutex> ptl(p.ptl);
    pte_t* ptep = p.pgtable.Lookup(AddrVpn(addr));
    // Is the PTE still the one the copy was decided on?
    if (ptep == nullptr || *ptep != orig) {
      ks.pages.PutPage(*pfn);
      *retry = true;
      return Errno::kAgain;
    }
    if (!zero) ks.pages.LockPage(old);
    WpPageReplace(ks, ptep, old, *pfn);
    if (!zero) ks.pages.UnlockPage(old);
  }
  // -1: the old PTE's reference (a free here means the other mapper left meanwhile).
  if (!zero) ks.pages.PutPage(old);
  return *pfn;
}

// Mirrors: mm/memory.c do_wp_page(): a write fault on a present, read-only
// PTE. Shared: made writable (wp_page_shared()). Private: the zero page, or
// a page another PTE maps, is to be copied (*cow); a page this PTE alone maps
// is reused (wp_can_reuse_anon_folio(), decided on mapcount as docs/model.md
// says). REQUIRES: ptl.
Result<uint64_t> DoWpPage(KernelState& ks, const Vma& vma, pte_t* ptep, CowCopy* cow) {
  uint64_t pfn = PtePfn(*ptep);
  if (ks.pages.IsZero(pfn)) {
    if (!DefectActive(Defect::kZeroPageWrittenInPlace)) return NeedCopy(ptep, cow);
    *ptep |= kPteWrite | kPteDirty;
    return pfn;
  }
  if (!vma.shared) {
    // Under the page lock, as the copy's mapcount drop is: two COW breaks of
    // one page never both reuse it.
    ks.pages.LockPage(pfn);
    bool exclusive = ks.pages.page(pfn).mapcount.load(std::memory_order_acquire) == 1;
    ks.pages.UnlockPage(pfn);
    if (!exclusive && !DefectActive(Defect::kCowNotBroken)) return NeedCopy(ptep, cow);
  }
  *ptep |= kPteWrite | kPteDirty | kPteAccessed;  // wp_page_reuse()
  ks.pages.GetPage(pfn);  // +1: the caller's
  return pfn;
}

// Mirrors: mm/memory.c do_shared_fault() / do_read_fault() on shmem: find or
// allocate the object's page without the ptl, then install it under the ptl
// unless another thread did first (finish_fault()'s pte_none recheck).
// REQUIRES: mmap_lock (read).
Result<uint64_t> DoSharedFault(KernelState& ks, Process& p, const Vma& vma, uint64_t addr,
                               bool write, CowCopy* cow) {
  std::optional<uint64_t> pfn = ShmemGetPage(ks.pages, *vma.object, vma.PgoffOf(addr));
  if (!pfn) return Errno::kNoMem;
  std::lock_guard<std::mutex> ptl(p.ptl);
  pte_t* ptep = p.pgtable.WalkAlloc(AddrVpn(addr));
  if (PteNone(*ptep)) {
    // The ShmemGetPage reference becomes the PTE's; +1 mapcount: page_add_file_rmap().
    ks.pages.page(*pfn).mapcount.fetch_add(1, std::memory_order_acq_rel);
    *ptep = MakePagePte(*pfn, vma.prot & kProtWrite);
    ks.pages.GetPage(*pfn);  // +1: the caller's
    return *pfn;
  }
  ks.pages.PutPage(*pfn);  // lost the race: the other thread's PTE stands
  if (write && !PteWrite(*ptep)) return DoWpPage(ks, vma, ptep, cow);
  uint64_t mapped = PtePfn(*ptep);
  ks.pages.GetPage(mapped);  // +1: the caller's
  return mapped;
}

// Mirrors: mm/memory.c handle_mm_fault() up to the decision; a COW copy is
// left in *cow for the caller.
Result<uint64_t> HandleMmFault(KernelState& ks, Process& p, Pid pid, const Vma& vma,
                               uint64_t addr, bool write, CowCopy* cow) {
  {
    std::lock_guard<std::mutex> ptl(p.ptl);
    pte_t* ptep = p.pgtable.Lookup(AddrVpn(addr));
    if (ptep != nullptr && PtePresent(*ptep)) {
      // Mirrors: mm/memory.c handle_pte_fault() on a present PTE.
      if (write && !PteWrite(*ptep)) return DoWpPage(ks, vma, ptep, cow);
      *ptep |= kPteAccessed | (write ? kPteDirty : 0);
      uint64_t pfn = PtePfn(*ptep);
      ks.pages.GetPage(pfn);  // +1: the caller's (follow_page_pte(FOLL_GET))
      return pfn;
    }
    // Is it a non-present entry? (do_swap_page(): only device-private ones exist)
    if (ptep != nullptr && !PteNone(*ptep)) return DeviceEntryFault(ks, pid, addr, *ptep);
    if (!vma.shared) return DoAnonymousPage(ks, p.pgtable.WalkAlloc(AddrVpn(addr)), write);
  }
  return DoSharedFault(ks, p, vma, addr, write, cow);
}

}  // namespace

Result<uint64_t> FaultInPage(KernelState& ks, Process& p, Pid pid, const Vma& vma,
                             uint64_t addr, bool write) {
  // Loop invariant: nothing is held; every earlier round changed nothing.
  for (;;) {
    CowCopy cow;
    Result<uint64_t> r = HandleMmFault(ks, p, pid, vma, addr, write, &cow);
    if (!cow.needed) return r;
    bool retry = false;
    r = WpPageCopy(ks, p, addr, cow.orig, &retry);
    if (!retry) return r;
  }
}

namespace {

// Mirrors: mm/memory.c __access_remote_vm(): page by page in address order,
// fault in (get_user_pages_remote()) and copy under the page lock. On an
// error the pages before the failing one stay faulted in and copied.
// REQUIRES: mmap_lock (read) of process `pid`; [addr, addr + len) below kTaskSize.
Errno AccessVm(KernelState& ks, Process& p, Pid pid, uint64_t addr, uint8_t* buf,
               uint64_t len, bool write) {
  // Loop invariant: bytes [0, done) of buf are copied.
  for (uint64_t done = 0; done < len;) {
    uint64_t at = addr + done;
    const Vma* vma = p.vmas.Find(at);
    // Is there a VMA at this page?
    if (vma == nullptr) return Errno::kFault;
    // Does it allow the access? (x86: write implies read)
    uint32_t need = write ? kProtWrite : (kProtRead | kProtWrite);
    if (!(vma->prot & need)) return Errno::kFault;
    Result<uint64_t> pfn = FaultInPage(ks, p, pid, *vma, at & kPageMask, write);
    if (!pfn.ok()) return pfn.err;
    uint64_t offset = at & (kPageSize - 1);
    uint64_t n = std::min(kPageSize - offset, len - done);
    uint8_t* data = ks.pages.data(pfn.value) + offset;
    ks.pages.LockPage(pfn.value);
    if (write) {
      std::memcpy(data, buf + done, n);
    } else {
      std::memcpy(buf + done, data, n);
    }
    ks.pages.UnlockPage(pfn.value);
    ks.pages.PutPage(pfn.value);  // -1: FaultInPage's reference for us
    done += n;
  }
  return Errno::kOk;
}

}  // namespace

// Mirrors: a user-space load, through mm/memory.c handle_mm_fault().
Result<std::vector<uint8_t>> Kernel::CpuRead(Pid pid, uint64_t addr, uint64_t len) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  MmapLockGuard mm(*st_, pid, MmapLockGuard::kRead);
  Process* p = mm.proc();
  // Is the pid a live process?
  if (p == nullptr) return Errno::kSrch;
  // Is len in (0, kMaxAccess]?
  if (len == 0 || len > kMaxAccess) return Errno::kInval;
  // Does the range end at or below kTaskSize?
  if (RangeOverflows(addr, len)) return Errno::kFault;
  std::vector<uint8_t> bytes(len);
  Errno err = AccessVm(*st_, *p, pid, addr, bytes.data(), len, /*write=*/false);
  if (err != Errno::kOk) return err;
  return bytes;
}

// Mirrors: a user-space store, through mm/memory.c handle_mm_fault().
Errno Kernel::CpuWrite(Pid pid, uint64_t addr, const std::vector<uint8_t>& bytes) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  MmapLockGuard mm(*st_, pid, MmapLockGuard::kRead);
  Process* p = mm.proc();
  // Is the pid a live process?
  if (p == nullptr) return Errno::kSrch;
  // Is len in (0, kMaxAccess]?
  uint64_t len = bytes.size();
  if (len == 0 || len > kMaxAccess) return Errno::kInval;
  // Does the range end at or below kTaskSize?
  if (RangeOverflows(addr, len)) return Errno::kFault;
  // AccessVm only reads the buffer of a write.
  return AccessVm(*st_, *p, pid, addr, const_cast<uint8_t*>(bytes.data()), len,
                  /*write=*/true);
}

}  // namespace hmm::impl
