// File: impl/introspect.cc
//
// Read-only views of the state for props/abstract.cc. Each takes the locks
// the operations take for the data it reads, so it may run concurrently with
// them; a caller that wants one consistent snapshot across calls (the
// abstraction function) runs it while no operation is in flight.
// MetadataBytesPerDevicePage is here too: it reads what Devmems reads.

#include <mutex>
#include <shared_mutex>

#include "impl/kernel.h"
#include "impl/kernel_state.h"

namespace hmm::impl {

std::vector<Pid> Kernel::Pids() const {
  std::vector<Pid> out;
  std::shared_lock<std::shared_mutex> tasklist(st_->tasklist_lock);
  for (const auto& [pid, proc] : st_->procs) out.push_back(Pid(pid));
  return out;
}

std::vector<VmaInfo> Kernel::Vmas(Pid pid) const {
  std::vector<VmaInfo> out;
  MmapLockGuard mm(*st_, pid, MmapLockGuard::kRead);
  if (mm.proc() == nullptr) return out;
  const VmaTree& vmas = mm.proc()->vmas;
  for (const auto& [start, vma] : vmas) {
    VmaInfo info;
    info.start = vma.start;
    info.end = vma.end;
    info.prot = vma.prot;
    info.shared = vma.shared;
    info.object = vma.shared ? vma.object->id : 0;
    info.pgoff = vma.shared ? vma.pgoff : 0;
    out.push_back(info);
  }
  return out;
}

std::vector<PteInfo> Kernel::Ptes(Pid pid) const {
  std::vector<PteInfo> out;
  MmapLockGuard mm(*st_, pid, MmapLockGuard::kRead);
  const Process* p = mm.proc();
  if (p == nullptr) return out;
  std::lock_guard<std::mutex> ptl(p->ptl);
  p->pgtable.ForEachLeaf(0, kMaxVpn, [&](uint64_t vpn, pte_t e) {
    // A migration entry (only while its migration runs) is neither.
    if (IsMigrationEntry(e)) return;
    PteInfo info;
    info.vpn = vpn;
    if (PtePresent(e)) {
      info.pfn = PtePfn(e);
      info.write = PteWrite(e);
      info.zero = st_->pages.IsZero(info.pfn);
    } else {
      info.pfn = SwpEntryPfn(e);  // a device-private entry (the only other kind)
      info.write = SwpEntryWrite(e);
      info.device = true;
    }
    out.push_back(info);
  });
  return out;
}

std::vector<ResourceInfo> Kernel::Resources() const {
  std::vector<ResourceInfo> out;
  std::lock_guard<std::mutex> resources(st_->resource_lock);
  for (const auto& [start, r] : st_->resources.all()) {
    ResourceInfo info;
    info.start = r.start;
    info.end = r.end;
    info.device = r.device;
    info.boot = r.boot;
    info.devmem = r.devmem;
    out.push_back(info);
  }
  return out;
}

namespace {

// The pages of one region that are held or were ever allocated, ascending.
// REQUIRES: devmem.lock.
std::vector<DevicePageInfo> DevmemPages(const Devmem& devmem) {
  std::vector<DevicePageInfo> out;
  for (uint64_t pfn = devmem.first_pfn; pfn - devmem.first_pfn < devmem.npages; ++pfn) {
    const DevicePage* page = devmem.FindPage(pfn);
    if (page == nullptr) break;  // the rest were never allocated
    bool held = page->flags & kDevPgHeld;
    if (!held && page->allocations == 0) continue;
    DevicePageInfo info;
    info.pfn = pfn;
    info.held = held;
    info.allocations = page->allocations;
    out.push_back(info);
  }
  return out;
}

}  // namespace

std::vector<DevmemInfo> Kernel::Devmems() const {
  std::vector<DevmemInfo> out;
  std::shared_lock<std::shared_mutex> devmems(st_->devmems_lock);
  for (const auto& [id, devmem] : st_->devmems.all()) {
    DevmemInfo info;
    info.id = id;
    info.device = devmem->device.value;
    info.dmirror_chunk = devmem->dmirror_chunk;
    info.first_pfn = devmem->first_pfn;
    info.npages = devmem->npages;
    std::lock_guard<std::mutex> region(devmem->lock);
    info.pages = DevmemPages(*devmem);
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<DeviceEventInfo> Kernel::DeviceEvents() const { return st_->events.Snapshot(); }

double Kernel::MetadataBytesPerDevicePage() const {
  // An rb-tree node's colour word and three links, beside its key and value.
  constexpr size_t kMapNode = 4 * sizeof(void*);
  std::shared_lock<std::shared_mutex> devmems(st_->devmems_lock);
  size_t bytes = 0;
  uint64_t npages = 0;
  for (const auto& [id, devmem] : st_->devmems.all()) {
    std::lock_guard<std::mutex> region(devmem->lock);
    bytes += devmem->MetadataBytes();
    // Its two table entries (by id, by first pfn) and its resource.
    bytes += 2 * (kMapNode + 2 * sizeof(uint64_t)) + kMapNode + sizeof(uint64_t) + sizeof(Resource);
    npages += devmem->npages;
  }
  return npages == 0 ? 0.0 : static_cast<double>(bytes) / static_cast<double>(npages);
}

std::vector<uint64_t> Kernel::Objects() const {
  std::vector<uint64_t> out;
  std::lock_guard<std::mutex> objects(st_->objects_lock);
  for (const auto& [id, obj] : st_->objects) out.push_back(id);
  return out;
}

std::vector<std::pair<uint64_t, uint64_t>> Kernel::ObjectPages(uint64_t object) const {
  std::shared_ptr<ShmemObject> obj;
  {
    std::lock_guard<std::mutex> objects(st_->objects_lock);
    auto it = st_->objects.find(object);
    if (it == st_->objects.end()) return {};
    obj = it->second;
  }
  std::lock_guard<std::mutex> lock(obj->lock);
  return {obj->pages.begin(), obj->pages.end()};
}

std::vector<std::pair<PinId, std::vector<uint64_t>>> Kernel::Pins() const {
  std::vector<std::pair<PinId, std::vector<uint64_t>>> out;
  std::lock_guard<std::mutex> pins(st_->pins_lock);
  for (const auto& [id, pfns] : st_->pins) out.emplace_back(PinId(id), pfns);
  return out;
}

std::vector<uint64_t> Kernel::PagesInUse() const { return st_->pages.InUse(); }

std::vector<uint8_t> Kernel::PageData(uint64_t pfn) const {
  PageArray& pages = st_->pages;
  if (!pages.Valid(pfn)) return std::vector<uint8_t>(kPageSize, 0);
  pages.LockPage(pfn);
  std::vector<uint8_t> out(pages.data(pfn), pages.data(pfn) + kPageSize);
  pages.UnlockPage(pfn);
  return out;
}

}  // namespace hmm::impl
