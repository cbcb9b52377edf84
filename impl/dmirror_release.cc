// File: impl/dmirror_release.cc
//
// The dummy device's RELEASE (docs/migrate.md): every device page of the
// device that a CPU entry maps goes back to a new system page, in pfn order,
// in batches of kDmirrorMigrateChunk pages, each a migration by pfn with no
// process of its own (6.1 mm/migrate_device.c migrate_device_range(),
// migrate_device_pages(), migrate_device_finalize()): the unmap phase finds
// every mapping through the rmap walk and tells each process's mirrors at
// each address; then the driver's unused chunks go.

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "impl/kernel_state.h"
#include "impl/migrate.h"
#include "impl/migrate_internal.h"
#include "impl/sched.h"

namespace hmm::impl {
namespace {

// The device's pages a CPU entry maps, ascending pfn.
std::vector<uint64_t> MappedDevicePages(KernelState& ks, DeviceId device) {
  std::vector<uint64_t> pfns;
  std::shared_lock<std::shared_mutex> devmems(ks.devmems_lock);
  for (const auto& [id, devmem] : ks.devmems.all()) {
    if (devmem->device != device) continue;
    std::lock_guard<std::mutex> region(devmem->lock);
    for (uint64_t pfn = devmem->first_pfn; pfn - devmem->first_pfn < devmem->npages; ++pfn) {
      const DevicePage* page = devmem->FindPage(pfn);
      if (page == nullptr) break;  // the rest were never allocated
      if (page->mapcount.load(std::memory_order_acquire) > 0) pfns.push_back(pfn);
    }
  }
  std::sort(pfns.begin(), pfns.end());
  return pfns;
}

// Mirrors: mm/migrate_device.c migrate_device_range(): each page still in
// use and mapped gets a reference (get_page_unless_zero(); free is 1 here)
// and, if it can be had at once, its lock.
void CollectDevicePfns(MigrationCall& c, const uint64_t* pfns) {
  std::shared_lock<std::shared_mutex> devmems(c.ks.devmems_lock);
  for (uint64_t i = 0; i < c.npages; ++i) {
    Devmem* devmem = c.ks.devmems.FindByPfn(pfns[i]);
    if (devmem == nullptr) continue;
    {
      std::lock_guard<std::mutex> region(devmem->lock);
      DevicePage* page = devmem->FindPage(pfns[i]);
      if (page == nullptr || page->refcount.load(std::memory_order_acquire) <= 1 ||
          page->mapcount.load(std::memory_order_acquire) == 0) {
        continue;
      }
      page->refcount.fetch_add(1, std::memory_order_acq_rel);  // +1: the collect reference
    }
    if (!devmem->TrylockPage(pfns[i])) {
      devmem->PutPage(pfns[i]);
      continue;
    }
    c.src[i] = MigratePfn(pfns[i]) | kMigratePfnDevice | kMigratePfnMigrate | kMigratePfnLocked;
  }
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_device_evict_chunk()'s copy loop: a
// system page for each, copied; once RAM runs out, the rest stays.
void EvictAllocAndCopy(MigrationCall& c, bool* no_memory) {
  CopyBatch batch;
  for (uint64_t i = 0; i < c.npages && !*no_memory; ++i) {
    const uint64_t s = c.src[i];
    if (!(s & kMigratePfnValid) || !(s & kMigratePfnMigrate)) continue;
    const uint64_t d = MigrateAllocSystemDst(c.ks);
    if (d == 0) {
      *no_memory = true;
      break;
    }
    batch.Copy(MigratePageRef(c.ks, s), MigratePageRef(c.ks, d));
    c.dst[i] = d | (s & kMigratePfnWrite);
  }
  CopyEngine& engine = MigrateCopyEngine(c.ks);
  engine.Wait(engine.Submit(batch));
}

// One batch, pfns[0, n): the phases of a migration without a process.
void EvictBatch(KernelState& ks, const uint64_t* pfns, uint64_t n, bool* no_memory) {
  std::vector<uint64_t> src(n, 0), dst(n, 0);
  MigrationCall c(ks);
  c.npages = n;
  c.src = src.data();
  c.dst = dst.data();
  c.slots.assign(n, 0);
  CollectDevicePfns(c, pfns);
  sched::YieldPoint("migrate_collected");
  UnmapOthers(c);
  CheckPinsAndRestore(c);
  sched::YieldPoint("migrate_unmapped");
  EvictAllocAndCopy(c, no_memory);
  sched::YieldPoint("migrate_copied");
  MigratePages(c);
  sched::YieldPoint("migrate_finalize");
  Finalize(c);
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_device_remove_chunks(): the driver's
// chunks of the device that nothing holds or maps now (a page the trace
// holds keeps its chunk).
void RemoveUnusedChunks(KernelState& ks, DeviceId device) {
  std::vector<uint64_t> ids;
  {
    std::shared_lock<std::shared_mutex> devmems(ks.devmems_lock);
    for (const auto& [id, devmem] : ks.devmems.all()) {
      if (devmem->device == device && devmem->dmirror_chunk) ids.push_back(id);
    }
  }
  for (uint64_t id : ids) (void)DevmemRemove(ks, id);  // kBusy: still in use
}

}  // namespace

Errno DmirrorEvict(KernelState& ks, DeviceId device) {
  const std::vector<uint64_t> pfns = MappedDevicePages(ks, device);
  bool no_memory = false;
  for (size_t from = 0; from < pfns.size() && !no_memory; from += kDmirrorMigrateChunk) {
    const size_t n = std::min<size_t>(kDmirrorMigrateChunk, pfns.size() - from);
    EvictBatch(ks, pfns.data() + from, n, &no_memory);
  }
  RemoveUnusedChunks(ks, device);
  return no_memory ? Errno::kNoMem : Errno::kOk;
}

}  // namespace hmm::impl
