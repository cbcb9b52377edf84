// File: impl/migrate.cc
//
// MigrateVma (impl/migrate.h): the guards, the collect walk with the 4.14
// fast path (trylock_page() under the ptl, the entry made a migration entry
// at once), prepare's second chance at the locks, and the order of the
// phases. The unmap phase and the pin check are migrate_rmap.cc's, the
// pages phase and finalize migrate_pages.cc's. Between the phases, a yield
// point each (impl/sched.h): "migrate_collected", "migrate_unmapped",
// "migrate_copied", "migrate_finalize".

#include <mutex>
#include <shared_mutex>

#include "impl/kernel.h"
#include "impl/kernel_state.h"
#include "impl/migrate.h"
#include "impl/migrate_internal.h"
#include "impl/mirror.h"
#include "impl/sched.h"

namespace hmm::impl {
namespace {

constexpr uint64_t kWriteIf(bool write) { return write ? uint64_t{kMigratePfnWrite} : 0; }

// Mirrors: mm/migrate_device.c migrate_vma_collect_pmd() on a present RAM
// page: a reference, then (trylock_page()) the migration entry with the PTE's
// write bit, the mapcount and the PTE's reference gone. REQUIRES: ptl.
uint64_t CollectRamPage(MigrationCall& c, uint64_t i, pte_t* ptep, uint64_t pfn, bool write) {
  PageArray& pages = c.ks.pages;
  const uint64_t entry = MigratePfn(pfn) | kMigratePfnMigrate | kWriteIf(write);
  if (pages.page(pfn).flags.load(std::memory_order_relaxed) & kPgShmem) c.slots[i] |= kSlotShmem;
  pages.GetPage(pfn);  // +1: the collect reference, which keeps the page from here on
  // Is the lock free now? Else prepare tries again (no waiting under the ptl).
  if (!pages.TrylockPage(pfn)) return entry;
  *ptep = MakeMigrationEntry(pfn, write);
  pages.page(pfn).mapcount.fetch_sub(1, std::memory_order_acq_rel);  // page_remove_rmap()
  pages.PutPage(pfn);  // -1: the PTE's reference
  c.slots[i] |= kSlotAtCollect;
  return entry | kMigratePfnLocked;
}

// The same on a device-private entry of the owner's memory.
// REQUIRES: ptl, devmems_lock (shared).
uint64_t CollectDevicePage(MigrationCall& c, uint64_t i, pte_t* ptep, pte_t e) {
  const uint64_t pfn = SwpEntryPfn(e);
  Devmem* devmem = c.ks.devmems.FindByPfn(pfn);
  // Is it the owner's memory? (page->pgmap->owner == pgmap_owner)
  if (devmem == nullptr || devmem->device != c.owner) return 0;
  const bool write = SwpEntryWrite(e);
  const uint64_t entry = MigratePfn(pfn) | kMigratePfnDevice | kMigratePfnMigrate | kWriteIf(write);
  DevicePage& page = devmem->page(pfn);
  // +1: the collect reference; lock-free, as the entry keeps the count above 1.
  page.refcount.fetch_add(1, std::memory_order_acq_rel);
  if (!devmem->TrylockPage(pfn)) return entry;
  *ptep = MakeMigrationEntry(pfn, write);
  page.mapcount.fetch_sub(1, std::memory_order_acq_rel);
  page.refcount.fetch_sub(1, std::memory_order_acq_rel);  // -1: the entry's
  c.slots[i] |= kSlotAtCollect;
  return entry | kMigratePfnLocked;
}

// Mirrors: migrate_vma_collect_pmd()'s per-PTE decision (docs/migrate.md,
// collect). REQUIRES: ptl, devmems_lock (shared).
uint64_t CollectEntry(MigrationCall& c, uint64_t i, pte_t* ptep, uint32_t select) {
  const pte_t e = ptep != nullptr ? *ptep : 0;
  const bool system = select & kMigrateVmaSelectSystem;
  // No entry: an empty slot, in private anonymous memory only.
  if (e == 0) return system && !c.vma->shared ? uint64_t{kMigratePfnMigrate} : 0;
  if (PtePresent(e)) {
    if (!system) return 0;
    const uint64_t pfn = PtePfn(e);
    // The zero page: an empty slot (the seed's vm_normal_page() said no page).
    if (c.ks.pages.IsZero(pfn)) {
      return c.ks.config.profile == Profile::kV18 ? 0 : uint64_t{kMigratePfnMigrate};
    }
    return CollectRamPage(c, i, ptep, pfn, PteWrite(e));
  }
  // Only device-private entries migrate (not another migration's entries).
  if (!IsDeviceEntry(e) || !(select & kMigrateVmaSelectDevicePrivate)) return 0;
  return CollectDevicePage(c, i, ptep, e);
}

// Mirrors: mm/migrate_device.c migrate_vma_collect(): the walk inside an
// MMU_NOTIFY_MIGRATE bracket that passes over the owner's mirrors (their
// turn comes in the pages phase). Returns the entries collected.
uint64_t Collect(MigrationCall& c, uint32_t select) {
  const uint64_t end = c.start + c.npages * kPageSize;
  NotifyOwner owner;
  owner.skip = true;
  owner.device = c.owner;
  HmmInvalidateStart(c.ks, c.hmm, c.start, end, owner);
  uint64_t cpages = 0;
  {
    std::lock_guard<std::mutex> ptl(c.proc->ptl);
    std::shared_lock<std::shared_mutex> devmems(c.ks.devmems_lock);
    pte_t* ptep = nullptr;
    for (uint64_t i = 0; i < c.npages; ++i) {
      const uint64_t vpn = c.Vpn(i);
      // The next slot of the same leaf table, or a walk from the top.
      ptep = ptep != nullptr && vpn % kPtrsPerTable != 0 ? ptep + 1 : c.proc->pgtable.Lookup(vpn);
      c.src[i] = CollectEntry(c, i, ptep, select);
      cpages += (c.src[i] & kMigratePfnMigrate) != 0;
    }
  }
  HmmInvalidateEnd(c.ks, c.hmm, c.start, end, owner);
  return cpages;
}

bool HoldsPageLock(const MigrationCall& c) {
  for (uint64_t i = 0; i < c.npages; ++i) {
    if (c.src[i] & kMigratePfnLocked) return true;
  }
  return false;
}

// Locks entry i's page for prepare: tried (4.14), or under v18 taken
// blocking (the seed's lock_page()) when the call holds no other page lock,
// so that no two migrations ever wait on each other (invariant 31).
bool LockForPrepare(MigrationCall& c, uint64_t i, bool may_block) {
  const uint64_t pfn = MigratePfnToPfn(c.src[i]);
  if (IsRamPfn(c.ks, pfn)) {
    if (!may_block) return c.ks.pages.TrylockPage(pfn);
    c.ks.pages.LockPage(pfn);
    return true;
  }
  std::shared_lock<std::shared_mutex> devmems(c.ks.devmems_lock);
  Devmem* devmem = c.ks.devmems.FindByPfn(pfn);  // live: the collect reference keeps it
  // The device page lock has no waiters' queue: spin, as LockPage does.
  while (!devmem->TrylockPage(pfn)) {
    if (!may_block) return false;
    sched::SpinYield("lock_device_page");
  }
  return true;
}

// Mirrors: 4.14 mm/migrate.c migrate_vma_prepare(): pages collect could not
// lock get a second try; a page that still cannot be locked is given up.
void Prepare(MigrationCall& c) {
  for (uint64_t i = 0; i < c.npages; ++i) {
    const uint64_t s = c.src[i];
    if (!(s & kMigratePfnValid) || !(s & kMigratePfnMigrate) || (s & kMigratePfnLocked)) continue;
    const bool may_block = c.ks.config.profile == Profile::kV18 && !HoldsPageLock(c);
    if (LockForPrepare(c, i, may_block)) {
      c.src[i] |= kMigratePfnLocked;  // its entries become migration entries in unmap
      continue;
    }
    c.src[i] &= ~uint64_t{kMigratePfnMigrate};
    PutCollectRef(c, i);
  }
}

// Guards 2-4 of docs/migrate.md (the pid's is the caller's). *vma: the VMA
// holding the range. REQUIRES: p's mmap_lock.
Errno CheckArgs(const Process& p, const MigrateVmaArgs& a, const Vma** vma) {
  // Is [start, end) aligned, non-empty and below kTaskSize?
  if (!PageAligned(a.start) || !PageAligned(a.end) || a.start >= a.end || a.end > kTaskSize) {
    return Errno::kInval;
  }
  *vma = p.vmas.Find(a.start);
  // Does one VMA hold all of it?
  if (*vma == nullptr || a.end > (*vma)->end) return Errno::kInval;
  // Is anything selected?
  if (a.select == 0) return Errno::kInval;
  return Errno::kOk;
}

// The driver's callback, with the call's view of the arrays kept in step.
template <typename F>
void RunCallback(MigrationCall& c, MigrateVmaArgs* args, const F& callback) {
  if (callback) callback(*args);
  c.src = args->src.data();
  c.dst = args->dst.data();
}

}  // namespace

Errno MigrateVmaLocked(KernelState& ks, Process& p, const MigrateVmaOps& ops,
                       MigrateVmaArgs* args) {
  const Vma* vma = nullptr;
  Errno err = CheckArgs(p, *args, &vma);
  if (err != Errno::kOk) return err;
  MigrationCall c(ks);
  c.proc = &p;
  c.hmm = p.hmm.get();
  c.vma = vma;
  c.start = args->start;
  c.owner = args->owner;
  c.npages = (args->end - args->start) >> kPageShift;
  args->src.assign(c.npages, 0);
  args->dst.assign(c.npages, 0);
  c.src = args->src.data();
  c.dst = args->dst.data();
  c.slots.assign(c.npages, 0);
  args->cpages = Collect(c, args->select);
  sched::YieldPoint("migrate_collected");
  Prepare(c);
  UnmapOthers(c);
  CheckPinsAndRestore(c);
  sched::YieldPoint("migrate_unmapped");  // every entry of a locked page is a migration entry
  RunCallback(c, args, ops.alloc_and_copy);
  sched::YieldPoint("migrate_copied");
  MigratePages(c);
  RunCallback(c, args, ops.finalize_and_map);
  sched::YieldPoint("migrate_finalize");
  Finalize(c);
  return Errno::kOk;
}

Errno MigrateVma(KernelState& ks, const MigrateVmaOps& ops, MigrateVmaArgs* args) {
  MmapLockGuard mm(ks, args->pid, MmapLockGuard::kRead);
  // Is the pid a live process?
  if (mm.proc() == nullptr) return Errno::kSrch;
  return MigrateVmaLocked(ks, *mm.proc(), ops, args);
}

}  // namespace hmm::impl
