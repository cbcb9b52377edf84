// File: impl/migrate_rmap.cc
//
// Migration's reverse-map work (impl/migrate.h, phases 3 and 7): finding the
// other mappings of the pages a call has locked, making them migration
// entries (try_to_migrate()), the pin check, and turning migration entries
// back into entries for the old or the new page (remove_migration_ptes()).
//
// hmmref keeps no reverse map. A page's mapcount says whether it has
// mappings besides the collect's; only then is every live process's table
// walked, under its ptl (one at a time, below the call's page locks), for
// entries naming one of those pages. A mapping the walk misses (a fork
// child not yet in the process table, an entry installed between the walk's
// two passes) keeps the mapcount above 0, and the page does not migrate.
// The processes the walk changed are remembered (MigrationCall::touched):
// their migration entries are found again by walking them, since their own
// mremap may move an entry meanwhile.

#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "impl/defects.h"
#include "impl/kernel_state.h"
#include "impl/migrate_internal.h"
#include "impl/mirror.h"
#include "impl/sched.h"

namespace hmm::impl {
namespace {

constexpr uint64_t kMigrating = kMigratePfnLocked | kMigratePfnMigrate;

// The device page pfn's struct page. REQUIRES: devmems_lock; a reference held.
DevicePage& DevicePageOf(const KernelState& ks, uint64_t pfn) {
  return ks.devmems.FindByPfn(pfn)->page(pfn);
}

// REQUIRES: devmems_lock (shared).
uint32_t Mapcount(const KernelState& ks, uint64_t pfn) {
  const std::atomic<uint32_t>& mapcount = IsRamPfn(ks, pfn) ? ks.pages.page(pfn).mapcount
                                                           : DevicePageOf(ks, pfn).mapcount;
  return mapcount.load(std::memory_order_acquire);
}

// The pages of the call, locked and migrating, that are still mapped
// somewhere, ascending.
std::vector<uint64_t> MappedElsewhere(const MigrationCall& c) {
  std::vector<uint64_t> pfns;
  std::shared_lock<std::shared_mutex> devmems(c.ks.devmems_lock);
  for (uint64_t i = 0; i < c.npages; ++i) {
    if ((c.src[i] & kMigrating) != kMigrating) continue;
    const uint64_t pfn = MigratePfnToPfn(c.src[i]);
    if (Mapcount(c.ks, pfn) > 0) pfns.push_back(pfn);
  }
  std::sort(pfns.begin(), pfns.end());
  return pfns;
}

// Does e map (present or device-private) one of pfns (ascending)?
bool MapsOneOf(const PageArray& pages, pte_t e, const std::vector<uint64_t>& pfns) {
  uint64_t pfn;
  if (PtePresent(e)) {
    pfn = PtePfn(e);
    if (pages.IsZero(pfn)) return false;
  } else if (IsDeviceEntry(e)) {
    pfn = SwpEntryPfn(e);
  } else {
    return false;
  }
  return std::binary_search(pfns.begin(), pfns.end(), pfn);
}

// Mirrors: mm/rmap.c try_to_migrate_one(): the mapping becomes a migration
// entry with its write bit; its mapcount and reference go (the call's
// collect reference keeps the page). REQUIRES: ptl, devmems_lock; the page
// locked by the call.
void MigrateMapping(KernelState& ks, pte_t* ptep) {
  const pte_t e = *ptep;
  if (PtePresent(e)) {
    const uint64_t pfn = PtePfn(e);
    *ptep = MakeMigrationEntry(pfn, PteWrite(e));
    ks.pages.page(pfn).mapcount.fetch_sub(1, std::memory_order_acq_rel);
    ks.pages.PutPage(pfn);
    return;
  }
  const uint64_t pfn = SwpEntryPfn(e);
  *ptep = MakeMigrationEntry(pfn, SwpEntryWrite(e));
  DevicePage& page = DevicePageOf(ks, pfn);
  page.mapcount.fetch_sub(1, std::memory_order_acq_rel);
  page.refcount.fetch_sub(1, std::memory_order_acq_rel);  // stays above 1: the collect's
}

// Mirrors: mm/rmap.c rmap_walk_anon() -> try_to_migrate_one() over one mm:
// find p's mappings of pfns, tell p's mirrors at those addresses (every
// mirror: MMU_NOTIFY_CLEAR has no owner), then migrate the ones still there.
void UnmapIn(MigrationCall& c, const std::shared_ptr<Process>& p,
             const std::vector<uint64_t>& pfns) {
  std::vector<uint64_t> vpns;
  Hmm* hmm;
  {
    std::lock_guard<std::mutex> ptl(p->ptl);
    hmm = p->hmm.get();
    p->pgtable.ForEachLeaf(0, kMaxVpn, [&](uint64_t vpn, pte_t e) {
      if (MapsOneOf(c.ks.pages, e, pfns)) vpns.push_back(vpn);
    });
  }
  if (vpns.empty()) return;
  NotifyVpns notify(c.ks, hmm, vpns);
  std::lock_guard<std::mutex> ptl(p->ptl);
  std::shared_lock<std::shared_mutex> devmems(c.ks.devmems_lock);
  bool changed = false;
  for (uint64_t vpn : vpns) {
    pte_t* ptep = p->pgtable.Lookup(vpn);
    // Does it still map one of the pages? (The walk's two passes are apart.)
    if (ptep == nullptr || !MapsOneOf(c.ks.pages, *ptep, pfns)) continue;
    MigrateMapping(c.ks, ptep);
    changed = true;
  }
  if (changed) c.touched.push_back(p);
}

// Mirrors: mm/migrate_device.c migrate_vma_check_page() and page_mapped():
// may entry i's page move? A device page always passes the pin check (4.14:
// a thread waiting on its migration entry holds a reference). REQUIRES:
// devmems_lock; the page locked, its mappings migrated.
bool Movable(const MigrationCall& c, uint64_t i) {
  const uint64_t pfn = MigratePfnToPfn(c.src[i]);
  // Is it still mapped somewhere?
  if (Mapcount(c.ks, pfn) > 0) return false;
  if (!IsRamPfn(c.ks, pfn) || DefectActive(Defect::kMigratePinnedPage)) return true;
  // Expected references: the collect's, and its shmem object's (page_mapping()).
  const uint32_t extra = 1 + ((c.slots[i] & kSlotShmem) ? 1 : 0);
  // Does anything else hold it (a GUP pin, an access in flight)?
  return c.ks.pages.page(pfn).refcount.load(std::memory_order_acquire) <= extra;
}

// Mirrors: mm/migrate.c remove_migration_pte(): the entry for the new page
// with the migration entry's write bit, +1 reference and mapcount.
// REQUIRES: devmems_lock; both pages referenced by the call.
pte_t NewEntry(KernelState& ks, const Replacement& r, bool write) {
  if (!IsRamPfn(ks, r.new_pfn)) {
    DevicePage& page = DevicePageOf(ks, r.new_pfn);
    page.refcount.fetch_add(1, std::memory_order_acq_rel);
    page.mapcount.fetch_add(1, std::memory_order_acq_rel);
    return MakeDeviceEntry(r.new_pfn, write);
  }
  // Seeded defect: a page back from the device comes back writable.
  const bool back = r.new_pfn != r.old_pfn && !IsRamPfn(ks, r.old_pfn);
  if (back && DefectActive(Defect::kMigrateBackGainsWrite)) write = true;
  ks.pages.GetPage(r.new_pfn);
  ks.pages.page(r.new_pfn).mapcount.fetch_add(1, std::memory_order_acq_rel);
  return MakePagePte(r.new_pfn, write);
}

// The call's own collect addresses. REQUIRES: no ptl.
void ReplaceAtCollect(MigrationCall& c, const std::vector<Replacement>& reps) {
  std::lock_guard<std::mutex> ptl(c.proc->ptl);
  std::shared_lock<std::shared_mutex> devmems(c.ks.devmems_lock);
  for (const Replacement& r : reps) {
    if (!(c.slots[r.index] & kSlotAtCollect)) continue;
    pte_t* ptep = c.proc->pgtable.Lookup(c.Vpn(r.index));
    // Is it still our migration entry? (A touched-process walk may have done it.)
    if (ptep == nullptr || !IsMigrationEntry(*ptep) || SwpEntryPfn(*ptep) != r.old_pfn) continue;
    *ptep = NewEntry(c.ks, r, SwpEntryWrite(*ptep));
  }
}

// Every migration entry of p naming a replaced page. reps ascending by old_pfn.
void ReplaceIn(KernelState& ks, Process& p, const std::vector<Replacement>& reps) {
  std::lock_guard<std::mutex> ptl(p.ptl);
  std::shared_lock<std::shared_mutex> devmems(ks.devmems_lock);
  p.pgtable.ForEachLeaf(0, kMaxVpn, [&](uint64_t, pte_t& e) {
    if (!IsMigrationEntry(e)) return;
    const uint64_t pfn = SwpEntryPfn(e);
    auto it = std::lower_bound(reps.begin(), reps.end(), pfn,
                               [](const Replacement& r, uint64_t v) { return r.old_pfn < v; });
    if (it != reps.end() && it->old_pfn == pfn) e = NewEntry(ks, *it, SwpEntryWrite(e));
  });
}

void UnlockPageOf(KernelState& ks, uint64_t pfn) {
  if (IsRamPfn(ks, pfn)) {
    ks.pages.UnlockPage(pfn);
    return;
  }
  std::shared_lock<std::shared_mutex> devmems(ks.devmems_lock);
  ks.devmems.FindByPfn(pfn)->UnlockPage(pfn);
}

}  // namespace

void PutCollectRef(MigrationCall& c, uint64_t i) {
  const uint64_t pfn = MigratePfnToPfn(c.src[i]);
  if (IsRamPfn(c.ks, pfn)) {
    c.ks.pages.PutPage(pfn);
    return;
  }
  std::shared_lock<std::shared_mutex> devmems(c.ks.devmems_lock);
  c.ks.devmems.FindByPfn(pfn)->PutPage(pfn);  // the put that leaves 1 logs page_free
}

void UnmapOthers(MigrationCall& c) {
  const std::vector<uint64_t> pfns = MappedElsewhere(c);
  if (pfns.empty()) return;
  for (const auto& [pid, p] : c.ks.SnapshotProcs()) UnmapIn(c, p, pfns);
}

void CheckPinsAndRestore(MigrationCall& c) {
  std::vector<Replacement> restore;
  {
    std::shared_lock<std::shared_mutex> devmems(c.ks.devmems_lock);
    for (uint64_t i = 0; i < c.npages; ++i) {
      if ((c.src[i] & kMigrating) != kMigrating || Movable(c, i)) continue;
      const uint64_t pfn = MigratePfnToPfn(c.src[i]);
      restore.push_back(Replacement{pfn, pfn, i});
    }
  }
  if (restore.empty()) return;
  RemoveMigrationPtes(c, restore, /*in_finalize=*/false);
  for (const Replacement& r : restore) {
    UnlockPageOf(c.ks, r.old_pfn);
    PutCollectRef(c, r.index);
    c.src[r.index] &= ~kMigrating;
  }
}

void RemoveMigrationPtes(MigrationCall& c, const std::vector<Replacement>& reps,
                         bool in_finalize) {
  std::vector<Replacement> live;
  live.reserve(reps.size());
  for (const Replacement& r : reps) {
    // Seeded defect: finalize forgets a page that did not move.
    if (in_finalize && r.new_pfn == r.old_pfn &&
        DefectActive(Defect::kMigrateLeavesMigrationEntry)) {
      continue;
    }
    live.push_back(r);
  }
  if (c.proc != nullptr) ReplaceAtCollect(c, live);
  if (c.touched.empty()) return;
  std::sort(live.begin(), live.end(),
            [](const Replacement& a, const Replacement& b) { return a.old_pfn < b.old_pfn; });
  for (const std::shared_ptr<Process>& p : c.touched) ReplaceIn(c.ks, *p, live);
}

NotifyVpns::NotifyVpns(KernelState& ks, Hmm* hmm, const std::vector<uint64_t>& vpns)
    : ks_(ks), hmm_(hmm) {
  if (hmm_ == nullptr) return;
  for (uint64_t vpn : vpns) {
    if (!runs_.empty() && runs_.back().second == vpn << kPageShift) {
      runs_.back().second += kPageSize;
    } else {
      runs_.emplace_back(vpn << kPageShift, (vpn + 1) << kPageShift);
    }
  }
  for (const auto& [s, e] : runs_) HmmInvalidateStart(ks_, hmm_, s, e, NotifyOwner{});
}

NotifyVpns::~NotifyVpns() {
  sched::NoThrowScope nothrow;  // the end's yield points, in a destructor
  for (const auto& [s, e] : runs_) HmmInvalidateEnd(ks_, hmm_, s, e, NotifyOwner{});
}

}  // namespace hmm::impl
