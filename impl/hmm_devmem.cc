// File: impl/hmm_devmem.cc
//
// The device-memory operations of docs/devmem.md that act on regions and
// their pages: HmmDevmemAdd (and its two placements), HmmDevmemRemove, the
// dummy driver's DevicePageAlloc and DevicePagePut, and the PageFrees query.
// Entries in page tables are device_entry.cc's; RAM hotplug is resource.cc's.

#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>

#include "impl/defects.h"
#include "impl/kernel.h"
#include "impl/kernel_state.h"

namespace hmm::impl {
namespace {

// Device memory ends where a device pfn stops fitting the offset field of a
// device-private swap entry.
constexpr uint64_t kDeviceEnd = uint64_t{1} << (kPageShift + kDevicePfnBits);

// The dummy driver's callbacks (lib/test_hmm.c plays this role upstream):
// each logs itself.
DevmemOps LoggingOps(DeviceEventLog* log) {
  DevmemOps ops;
  ops.free = [log](const Devmem& devmem, uint64_t pfn) { log->PageFree(devmem.id, pfn); };
  ops.fault = [log](const Devmem& devmem, uint64_t pfn, uint64_t pid, uint64_t addr) {
    log->Fault(devmem.id, pfn, pid, addr);
  };
  return ops;
}

// The window for a region of `size` bytes (docs/devmem.md, "Placement"), or
// nullopt. REQUIRES: resource_lock; size a non-zero multiple of the section,
// at most 2^max_physmem_bits.
std::optional<uint64_t> PlaceDevmem(const KernelState& ks, uint64_t size) {
  const Config& c = ks.config;
  uint64_t limit = uint64_t{1} << c.max_physmem_bits;
  // Mirrors: mm/hmm.c hmm_devmem_add() as posted: top-down from the limit.
  if (c.profile == Profile::kV18) return ks.resources.PlaceTopDown(limit, size);
  // The announced fix: the lowest free window above the limit, where RAM
  // hot-add never goes.
  uint64_t base = limit;
  if (DefectActive(Defect::kPlacementOverlapsRam)) base -= c.section_bytes;
  return ks.resources.PlaceAbove(base, size, kDeviceEnd, c.section_bytes);
}

}  // namespace

Result<uint64_t> DevmemAdd(KernelState& ks, DeviceId device, uint64_t size, bool dmirror_chunk) {
  const Config& c = ks.config;
  const uint64_t section = c.section_bytes;
  // Is size non-zero, and does it round up to whole sections without
  // overflow, to at most 2^max_physmem_bits?
  if (size == 0 || size > ~uint64_t{0} - (section - 1)) return Errno::kInval;
  uint64_t rsize = (size + section - 1) & ~(section - 1);
  if (rsize > (uint64_t{1} << c.max_physmem_bits)) return Errno::kInval;
  std::unique_lock<std::shared_mutex> devmems(ks.devmems_lock);
  std::lock_guard<std::mutex> resources(ks.resource_lock);
  std::optional<uint64_t> start = PlaceDevmem(ks, rsize);
  // Is there a free window?
  if (!start) return Errno::kRange;
  uint64_t id = ks.devmems.next_id++;
  Resource res;  // devm_request_mem_region(), desc IORES_DESC_DEVICE_PRIVATE_MEMORY
  res.start = *start;
  res.end = *start + rsize;
  res.device = true;
  res.devmem = id;
  ks.resources.Insert(res);
  // Every page free (refcount 1); the memmap itself comes on demand (devmem.h).
  ks.devmems.Insert(std::make_unique<Devmem>(id, device, *start >> kPageShift, rsize >> kPageShift,
                                             LoggingOps(&ks.events), dmirror_chunk));
  return id;
}

Errno DevmemRemove(KernelState& ks, uint64_t devmem_id) {
  // Exclusive: no user of any device page runs while we look.
  std::unique_lock<std::shared_mutex> devmems(ks.devmems_lock);
  Devmem* devmem = ks.devmems.FindById(devmem_id);
  // Is it a live devmem?
  if (devmem == nullptr) return Errno::kNoEnt;
  // Is every page of it free (no hold, no entry: refcount 1)?
  if (devmem->Busy()) return Errno::kBusy;
  {
    std::lock_guard<std::mutex> resources(ks.resource_lock);
    ks.resources.Erase(devmem->first_pfn << kPageShift);  // devm_release_mem_region()
  }
  ks.devmems.Erase(devmem_id);
  return Errno::kOk;
}

// Mirrors: mm/hmm.c hmm_devmem_add() -> hmm_devmem_pages_create().
Result<uint64_t> Kernel::HmmDevmemAdd(DeviceId device, uint64_t size) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  return DevmemAdd(*st_, device, size, /*dmirror_chunk=*/false);
}

// Mirrors: mm/hmm.c hmm_devmem_remove(); its wait for the pgmap's references
// to drain is a refusal here.
Errno Kernel::HmmDevmemRemove(uint64_t devmem_id) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  return DevmemRemove(*st_, devmem_id);
}

// The driver's allocation: the lowest free page of the region, get_page()
// (lib/test_hmm.c dmirror_devmem_alloc_page() upstream).
Result<uint64_t> Kernel::DevicePageAlloc(uint64_t devmem_id) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_lock<std::shared_mutex> devmems(st_->devmems_lock);
  Devmem* devmem = st_->devmems.FindById(devmem_id);
  // Is it a live devmem?
  if (devmem == nullptr) return Errno::kNoEnt;
  std::lock_guard<std::mutex> region(devmem->lock);
  std::optional<uint64_t> pfn = devmem->AllocPage();
  // Is a page free?
  if (!pfn) return Errno::kNoMem;
  return *pfn;
}

// The driver drops its allocation reference: put_page().
Errno Kernel::DevicePagePut(uint64_t pfn) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_lock<std::shared_mutex> devmems(st_->devmems_lock);
  Devmem* devmem = st_->devmems.FindByPfn(pfn);
  // Is pfn a page of a live devmem?
  if (devmem == nullptr) return Errno::kNoEnt;
  std::lock_guard<std::mutex> region(devmem->lock);
  DevicePage* page = devmem->FindPage(pfn);
  // Does the driver hold it? (Else the count would go below 1.)
  if (page == nullptr || !(page->flags & kDevPgHeld)) return Errno::kInval;
  bool frees = page->refcount.load(std::memory_order_acquire) == 2;
  devmem->ReleaseHoldLocked(pfn);
  // Seeded defect kPageFreeTwice: the driver's put logs page_free although
  // entries still map the page; the zap that frees it logs it again.
  if (!frees && DefectActive(Defect::kPageFreeTwice)) devmem->NotifyPageFree(pfn);
  return Errno::kOk;
}

Result<uint64_t> Kernel::PageFrees(uint64_t devmem_id) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_lock<std::shared_mutex> devmems(st_->devmems_lock);
  const Devmem* devmem = st_->devmems.FindById(devmem_id);
  // Is it a live devmem?
  if (devmem == nullptr) return Errno::kNoEnt;
  std::lock_guard<std::mutex> region(devmem->lock);
  return devmem->page_frees();
}

}  // namespace hmm::impl
