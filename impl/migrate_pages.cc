// File: impl/migrate_pages.cc
//
// Migration's phases 5 and 7 (impl/migrate.h): the struct-page move with the
// empty-slot insertion (migrate_vma_pages()), and finalize
// (migrate_vma_finalize()): every migration entry rewritten for the page
// that now holds the bytes, then the locks and the references let go.

#include <mutex>
#include <shared_mutex>

#include "impl/defects.h"
#include "impl/kernel_state.h"
#include "impl/migrate_internal.h"
#include "impl/mirror.h"

namespace hmm::impl {
namespace {

// The new page takes the old one's kind (PageAnon or a shmem page), keeping
// its lock bit. REQUIRES: the caller owns the page (the driver's, locked).
void SetPageKind(PageArray& pages, uint64_t pfn, uint32_t kind) {
  std::atomic<uint32_t>& flags = pages.page(pfn).flags;
  flags.fetch_and(kPgLocked, std::memory_order_relaxed);
  flags.fetch_or(kind, std::memory_order_relaxed);
}

bool Moves(uint64_t src, uint64_t dst) {
  return (src & kMigratePfnMigrate) && (dst & kMigratePfnValid);
}

// The call's addresses whose entries the rest of the call may change: every
// entry still migrating with a destination, but a shmem page headed for
// device memory (refused below). Ascending vpns.
std::vector<uint64_t> ChangingVpns(const MigrationCall& c) {
  std::vector<uint64_t> vpns;
  for (uint64_t i = 0; i < c.npages; ++i) {
    if (!Moves(c.src[i], c.dst[i])) continue;
    const bool to_device = !IsRamPfn(c.ks, MigratePfnToPfn(c.dst[i]));
    if ((c.slots[i] & kSlotShmem) && to_device) continue;
    vpns.push_back(c.Vpn(i));
  }
  return vpns;
}

// Mirrors: mm/migrate_device.c migrate_vma_insert_page(): the new page goes
// into an empty slot that is still none or (default profile) the zero page,
// writable iff the VMA is; false when something got there first. Under v18
// the zero page is no empty slot (collect never selects it), so a CPU read
// that mapped it since collect wins.
bool InsertPage(MigrationCall& c, uint64_t i) {
  const uint64_t pfn = MigratePfnToPfn(c.dst[i]);
  const bool write = c.vma->prot & kProtWrite;
  const bool zero_is_empty = c.ks.config.profile != Profile::kV18;
  PageArray& pages = c.ks.pages;
  std::lock_guard<std::mutex> ptl(c.proc->ptl);
  pte_t* ptep = c.proc->pgtable.WalkAlloc(c.Vpn(i));
  // Is the slot still empty (none, or the zero page, which is uncounted)?
  const bool zero = PtePresent(*ptep) && pages.IsZero(PtePfn(*ptep));
  if (*ptep != 0 && !(zero_is_empty && zero)) return false;
  if (IsRamPfn(c.ks, pfn)) {
    SetPageKind(pages, pfn, kPgAnon);
    pages.GetPage(pfn);  // +1: the PTE's (page_add_new_anon_rmap(), get_page())
    pages.page(pfn).mapcount.fetch_add(1, std::memory_order_acq_rel);
    *ptep = MakePagePte(pfn, write);
    return true;
  }
  std::shared_lock<std::shared_mutex> devmems(c.ks.devmems_lock);
  DevicePage& page = c.ks.devmems.FindByPfn(pfn)->page(pfn);
  page.refcount.fetch_add(1, std::memory_order_acq_rel);  // above 1: the driver holds it
  page.mapcount.fetch_add(1, std::memory_order_acq_rel);
  *ptep = MakeDeviceEntry(pfn, write);
  return true;
}

// Mirrors: mm/migrate.c folio_migrate_mapping() for a shmem page: the object
// now holds the new page at the old one's offset, if nothing but the object
// and the call references the old one (page_ref_freeze()).
bool MoveShmemPage(MigrationCall& c, uint64_t i, uint64_t new_pfn) {
  ShmemObject& obj = *c.vma->object;
  const uint64_t pgoff = c.vma->PgoffOf(c.start + i * kPageSize);
  const uint64_t old = MigratePfnToPfn(c.src[i]);
  PageArray& pages = c.ks.pages;
  std::lock_guard<std::mutex> lock(obj.lock);
  auto it = obj.pages.find(pgoff);
  // Is it still the object's page, with no reference taken since the pin check?
  if (it == obj.pages.end() || it->second != old ||
      pages.page(old).refcount.load(std::memory_order_acquire) != 2) {
    return false;
  }
  SetPageKind(pages, new_pfn, kPgShmem);
  pages.GetPage(new_pfn);  // +1: the object's, moved over
  it->second = new_pfn;
  pages.PutPage(old);  // -1: the object's (the collect's keeps the page)
  return true;
}

// The struct-page move of entry i (a page with a destination).
bool MovePage(MigrationCall& c, uint64_t i) {
  const uint64_t new_pfn = MigratePfnToPfn(c.dst[i]);
  const bool to_device = !IsRamPfn(c.ks, new_pfn);
  if (c.slots[i] & kSlotShmem) {
    // Only private anonymous memory goes to device-private memory (invariant 28).
    if (to_device) return false;
    return MoveShmemPage(c, i, new_pfn);
  }
  if (!to_device) SetPageKind(c.ks.pages, new_pfn, kPgAnon);
  return true;
}

// Mirrors: __migrate_device_pages()'s loop body.
void MigrateOne(MigrationCall& c, uint64_t i) {
  if (!(c.src[i] & kMigratePfnMigrate)) return;
  bool moved;
  if (!(c.dst[i] & kMigratePfnValid)) {
    moved = false;  // the driver declined the page
  } else if (!(c.src[i] & kMigratePfnValid)) {
    moved = InsertPage(c, i);  // an empty slot
  } else {
    moved = MovePage(c, i);
  }
  if (!moved) c.src[i] &= ~uint64_t{kMigratePfnMigrate};
}

// A destination let go: unlocked, and the driver's reference dropped (a
// device page's hold, whose put logs page_free when nothing maps it).
// REQUIRES: devmems_lock (shared); `regions` the call's cursor.
void ReleaseDst(MigrationCall& c, RegionLockCursor& regions, uint64_t dst, bool unused) {
  const uint64_t pfn = MigratePfnToPfn(dst);
  if (IsRamPfn(c.ks, pfn)) {
    if (dst & kMigratePfnLocked) c.ks.pages.UnlockPage(pfn);
    c.ks.pages.PutPage(pfn);
    return;
  }
  Devmem* devmem = regions.Hold(pfn);
  if (dst & kMigratePfnLocked) devmem->UnlockPage(pfn);
  devmem->ReleaseHoldLocked(pfn);
  // Seeded defect: an unused destination's page_free is logged twice.
  if (unused && DefectActive(Defect::kMigratePageFreeTwice)) devmem->NotifyPageFree(pfn);
}

// The old page let go: unlocked, the collect reference dropped (a device
// page nothing maps or holds is freed, page_free). REQUIRES: as ReleaseDst.
void ReleaseSrc(MigrationCall& c, RegionLockCursor& regions, uint64_t src) {
  const uint64_t pfn = MigratePfnToPfn(src);
  if (IsRamPfn(c.ks, pfn)) {
    c.ks.pages.UnlockPage(pfn);
    c.ks.pages.PutPage(pfn);
    return;
  }
  Devmem* devmem = regions.Hold(pfn);
  devmem->UnlockPage(pfn);
  devmem->PutPageLocked(pfn);
}

}  // namespace

void MigratePages(MigrationCall& c) {
  std::vector<uint64_t> vpns;
  if (c.proc != nullptr) vpns = ChangingVpns(c);
  // Every mirror of the process, the owner's included, where entries will
  // change (docs/migrate.md); after this the driver maps its new pages.
  NotifyVpns notify(c.ks, c.hmm, vpns);
  for (uint64_t i = 0; i < c.npages; ++i) MigrateOne(c, i);
}

void Finalize(MigrationCall& c) {
  std::vector<Replacement> reps;
  for (uint64_t i = 0; i < c.npages; ++i) {
    if (!(c.src[i] & kMigratePfnLocked)) continue;
    const uint64_t old_pfn = MigratePfnToPfn(c.src[i]);
    const bool moved = Moves(c.src[i], c.dst[i]);
    reps.push_back(Replacement{old_pfn, moved ? MigratePfnToPfn(c.dst[i]) : old_pfn, i});
  }
  RemoveMigrationPtes(c, reps, /*in_finalize=*/true);
  std::shared_lock<std::shared_mutex> devmems(c.ks.devmems_lock);
  RegionLockCursor regions(c.ks.devmems);
  // Per entry, as migrate_device_finalize(): an unused destination first,
  // then the old page, then the new one.
  for (uint64_t i = 0; i < c.npages; ++i) {
    const uint64_t s = c.src[i], d = c.dst[i];
    const bool moved = Moves(s, d);
    if ((d & kMigratePfnValid) && !moved) ReleaseDst(c, regions, d, /*unused=*/true);
    if (s & kMigratePfnLocked) ReleaseSrc(c, regions, s);
    if (moved) ReleaseDst(c, regions, d, /*unused=*/false);
  }
}

}  // namespace hmm::impl
