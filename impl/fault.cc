// File: impl/fault.cc
//
// The CPU fault path (mm/memory.c handle_mm_fault()) and the user accesses
// built on it, CpuRead and CpuWrite. Every fault runs under the mmap_lock in
// read mode, so faults of one process run in parallel and serialize on its
// ptl; the decision to reuse or copy a COW page is taken under the ptl and
// the page lock (tried: a migration may hold it), and a copy is made after
// both are dropped and the mirrors told (docs/mirror.md: a COW break
// notifies its one page), once the ptl is back and the PTE found unchanged.
// A migration entry is waited for, and a device-private entry's page
// migrated back (docs/migrate.md, migrate_to_ram), each with the ptl
// dropped, before the fault tries again.

#include <algorithm>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "impl/defects.h"
#include "impl/kernel.h"
#include "impl/kernel_state.h"
#include "impl/migrate_internal.h"
#include "impl/mirror.h"
#include "impl/sched.h"

namespace hmm::impl {
namespace {

// What a fault attempt left for FaultInPage to do once the ptl is dropped,
// before it tries again.
struct FaultRetry {
  enum Kind : uint8_t {
    kNone,           // done: the attempt's result stands
    kCowCopy,        // wp_page_copy() of `orig`
    kWaitMigration,  // migration_entry_wait() on `orig` at the address
    kWaitPageLock,   // the page `pfn` is locked (a migration holds it)
    kMigrateToRam,   // the device page `pfn` of `owner` comes back first
  };
  Kind kind = kNone;
  pte_t orig = 0;    // the entry the decision saw
  uint64_t pfn = 0;
  DeviceId owner;
};

Result<uint64_t> Retry(FaultRetry* retry, FaultRetry::Kind kind, pte_t orig, uint64_t pfn) {
  retry->kind = kind;
  retry->orig = orig;
  retry->pfn = pfn;
  return uint64_t{0};  // unused: FaultInPage acts and tries again
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
// if it is still `orig` (pte_same()) and the old page's lock is free (a
// migration may hold it: only tried under the ptl); else free the page and
// set *retry (the fault runs again, as the kernel returns to user space and
// re-faults). REQUIRES: mmap_lock (read); no ptl or page lock.
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
    // Is the PTE still the one the copy was decided on, its page free to lock?
    if (ptep != nullptr && *ptep == orig && (zero || ks.pages.TrylockPage(old))) {
      WpPageReplace(ks, ptep, old, *pfn);
      if (!zero) ks.pages.UnlockPage(old);
      *retry = false;
    } else {
      *retry = true;
    }
  }
  if (*retry) {
    ks.pages.PutPage(*pfn);
    if (!zero) ks.pages.WaitPageUnlocked(old);
    return Errno::kAgain;
  }
  // -1: the old PTE's reference (a free here means the other mapper left meanwhile).
  if (!zero) ks.pages.PutPage(old);
  return *pfn;
}

// Mirrors: mm/memory.c do_wp_page(): a write fault on a present, read-only
// PTE. Shared: made writable (wp_page_shared()). Private: the zero page, or
// a page another PTE maps, is to be copied (*retry); a page this PTE alone
// maps is reused (wp_can_reuse_anon_folio(), decided on mapcount as
// docs/model.md says, under the page lock, tried: a page a migration holds
// is waited for outside the ptl). REQUIRES: ptl.
Result<uint64_t> DoWpPage(KernelState& ks, const Vma& vma, pte_t* ptep, FaultRetry* retry) {
  uint64_t pfn = PtePfn(*ptep);
  if (ks.pages.IsZero(pfn)) {
    if (!DefectActive(Defect::kZeroPageWrittenInPlace)) {
      return Retry(retry, FaultRetry::kCowCopy, *ptep, pfn);
    }
    *ptep |= kPteWrite | kPteDirty;
    return pfn;
  }
  if (!vma.shared) {
    // Under the page lock, as the copy's mapcount drop is: two COW breaks of
    // one page never both reuse it.
    if (!ks.pages.TrylockPage(pfn)) return Retry(retry, FaultRetry::kWaitPageLock, *ptep, pfn);
    bool exclusive = ks.pages.page(pfn).mapcount.load(std::memory_order_acquire) == 1;
    ks.pages.UnlockPage(pfn);
    if (!exclusive && !DefectActive(Defect::kCowNotBroken)) {
      return Retry(retry, FaultRetry::kCowCopy, *ptep, pfn);
    }
  }
  *ptep |= kPteWrite | kPteDirty | kPteAccessed;  // wp_page_reuse()
  ks.pages.GetPage(pfn);  // +1: the caller's
  return pfn;
}

// Mirrors: mm/memory.c do_swap_page(): the non-present entries there are. A
// migration entry is waited for (migration_entry_wait()); a device-private
// entry runs its region's fault callback and comes back to RAM first
// (migrate_to_ram). REQUIRES: ptl; e non-present and not none.
Result<uint64_t> DoSwapPage(KernelState& ks, Pid pid, uint64_t addr, pte_t e, FaultRetry* retry) {
  if (IsMigrationEntry(e)) return Retry(retry, FaultRetry::kWaitMigration, e, SwpEntryPfn(e));
  Errno err = DeviceEntryFault(ks, pid, addr, e, &retry->owner);
  if (err != Errno::kOk) return err;
  return Retry(retry, FaultRetry::kMigrateToRam, e, SwpEntryPfn(e));
}

// Mirrors: mm/memory.c do_shared_fault() / do_read_fault() on shmem: find or
// allocate the object's page without the ptl, then install it under the ptl
// unless another thread did first (finish_fault()'s pte_none recheck), or a
// migration is moving that slot (its entry is waited for).
// REQUIRES: mmap_lock (read).
Result<uint64_t> DoSharedFault(KernelState& ks, Process& p, const Vma& vma, uint64_t addr,
                               bool write, FaultRetry* retry) {
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
  if (IsMigrationEntry(*ptep)) return Retry(retry, FaultRetry::kWaitMigration, *ptep, 0);
  if (write && !PteWrite(*ptep)) return DoWpPage(ks, vma, ptep, retry);
  uint64_t mapped = PtePfn(*ptep);
  ks.pages.GetPage(mapped);  // +1: the caller's
  return mapped;
}

// Mirrors: mm/memory.c handle_mm_fault() up to the decision; what needs the
// ptl dropped first is left in *retry for the caller.
Result<uint64_t> HandleMmFault(KernelState& ks, Process& p, Pid pid, const Vma& vma,
                               uint64_t addr, bool write, FaultRetry* retry) {
  {
    std::lock_guard<std::mutex> ptl(p.ptl);
    pte_t* ptep = p.pgtable.Lookup(AddrVpn(addr));
    if (ptep != nullptr && PtePresent(*ptep)) {
      // Mirrors: mm/memory.c handle_pte_fault() on a present PTE.
      if (write && !PteWrite(*ptep)) return DoWpPage(ks, vma, ptep, retry);
      *ptep |= kPteAccessed | (write ? kPteDirty : 0);
      uint64_t pfn = PtePfn(*ptep);
      ks.pages.GetPage(pfn);  // +1: the caller's (follow_page_pte(FOLL_GET))
      return pfn;
    }
    // Is it a non-present entry (a device-private or a migration entry)?
    if (ptep != nullptr && !PteNone(*ptep)) return DoSwapPage(ks, pid, addr, *ptep, retry);
    if (!vma.shared) return DoAnonymousPage(ks, p.pgtable.WalkAlloc(AddrVpn(addr)), write);
  }
  return DoSharedFault(ks, p, vma, addr, write, retry);
}

// Is the page of a migration entry still locked? A migration replaces its
// entries before it unlocks the page, so an entry whose page is unlocked has
// no migration behind it (only the seeded defect kMigrateLeavesMigrationEntry
// leaves one). REQUIRES: ptl.
bool MigrationInFlight(const KernelState& ks, pte_t e) {
  const uint64_t pfn = SwpEntryPfn(e);
  if (ks.pages.Valid(pfn)) return ks.pages.page(pfn).flags.load(std::memory_order_acquire) & kPgLocked;
  std::shared_lock<std::shared_mutex> devmems(ks.devmems_lock);
  const Devmem* devmem = ks.devmems.FindByPfn(pfn);
  if (devmem == nullptr) return false;
  std::lock_guard<std::mutex> region(devmem->lock);
  return devmem->FindPage(pfn) != nullptr && devmem->PageLocked(pfn);
}

// Mirrors: mm/migrate.c migration_entry_wait(): returns once the entry at
// addr is no longer `orig` (the migration's finalize replaced it), true; or
// false, SIGBUS, for an entry no migration will replace.
// REQUIRES: mmap_lock (read); no ptl.
bool WaitMigrationEntry(const KernelState& ks, Process& p, uint64_t addr, pte_t orig) {
  for (;;) {
    {
      std::lock_guard<std::mutex> ptl(p.ptl);
      if (p.pgtable.Get(AddrVpn(addr)) != orig) return true;
      if (!MigrationInFlight(ks, orig)) return false;
    }
    sched::SpinYield("migration_entry_wait");
  }
}

// Does what the attempt asked for with the ptl dropped. *done (with *r) when
// the fault is over; else the caller tries again.
void ActOnRetry(KernelState& ks, Process& p, Pid pid, uint64_t addr, const FaultRetry& retry,
                Result<uint64_t>* r, bool* done) {
  *done = false;
  switch (retry.kind) {
    case FaultRetry::kNone:
      *done = true;
      return;
    case FaultRetry::kCowCopy: {
      bool again = false;
      *r = WpPageCopy(ks, p, addr, retry.orig, &again);
      *done = !again;
      return;
    }
    case FaultRetry::kWaitMigration:
      if (!WaitMigrationEntry(ks, p, addr, retry.orig)) {
        *r = Errno::kFault;
        *done = true;
      }
      return;
    case FaultRetry::kWaitPageLock:
      ks.pages.WaitPageUnlocked(retry.pfn);
      return;
    case FaultRetry::kMigrateToRam: {
      Errno err = MigrateToRam(ks, p, pid, addr, retry.pfn, retry.owner);
      // Could the page not come back (RAM full)? SIGBUS: the entry stays.
      if (err != Errno::kOk) {
        *r = err;
        *done = true;
      }
      return;
    }
  }
}

}  // namespace

Result<uint64_t> FaultInPageRound(KernelState& ks, Process& p, Pid pid, const Vma& vma,
                                  uint64_t addr, bool write, bool* again) {
  FaultRetry retry;
  Result<uint64_t> r = HandleMmFault(ks, p, pid, vma, addr, write, &retry);
  bool done = false;
  ActOnRetry(ks, p, pid, addr, retry, &r, &done);
  *again = !done;
  return r;
}

Result<uint64_t> FaultInPage(KernelState& ks, Process& p, Pid pid, const Vma& vma,
                             uint64_t addr, bool write) {
  // Loop invariant: nothing is held; every earlier round changed nothing the
  // fault depends on, or moved it closer (a COW copy made, a page migrated back).
  for (;;) {
    bool again = false;
    Result<uint64_t> r = FaultInPageRound(ks, p, pid, vma, addr, write, &again);
    if (!again) return r;
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
