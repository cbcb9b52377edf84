// File: model/devmem.cc
//
// ZONE_DEVICE device-private memory (docs/devmem.md): hmm_devmem_add() and
// where it places a region in the physical address space, hmm_devmem_remove(),
// RAM hotplug (modeled for its resource conflicts), the driver's allocation
// and release of device pages, the test-only installation of a device entry,
// and the page_free count. Each operation is a guard ladder in
// docs/devmem.md's order, then the effect.
//
// A device page's refcount is never stored: it is 1 + held + the device
// entries naming it (address_space.h), so page_free is logged exactly when a
// drop leaves it at 1, whichever reference goes last.

#include "model/address_space.h"
#include "model/anon_vma.h"
#include "model/kernel.h"
#include "model/mirror_walk.h"

namespace hmm::model {

// --- Device pages, shared with the CPU paths (address_space.h) ---

uint64_t DevmemOfPfn(const State& s, uint64_t pfn) {
  for (const auto& [id, devmem] : s.devmems) {
    if (devmem.first_pfn <= pfn && pfn - devmem.first_pfn < devmem.npages) return id;
  }
  return 0;
}

uint64_t CountDeviceEntries(const State& s, uint64_t pfn) {
  uint64_t n = 0;
  for (const auto& [pid, proc] : s.procs) {
    for (const auto& [vpn, pte] : proc.ptes) {
      if (pte.device && pte.device_pfn == pfn) ++n;
    }
  }
  return n;
}

namespace {

// Whether some entry maps pfn writable.
bool MappedWritable(const State& s, uint64_t pfn) {
  for (const auto& [pid, proc] : s.procs) {
    for (const auto& [vpn, pte] : proc.ptes) {
      if (pte.device && pte.device_pfn == pfn && pte.write) return true;
    }
  }
  return false;
}

}  // namespace

namespace {

// Whether the driver holds pfn's allocation reference.
bool Held(const Devmem& devmem, uint64_t pfn) {
  auto it = devmem.pages.find(pfn);
  return it != devmem.pages.end() && it->second.held;
}

}  // namespace

uint64_t DevicePageRefcount(const State& s, uint64_t pfn) {
  const Devmem& devmem = s.devmems.at(DevmemOfPfn(s, pfn));
  // 1: the ZONE_DEVICE base reference; +1: the driver's allocation (get_page());
  // +1 per device entry (copy_one_pte() and migration take one each).
  return 1 + (Held(devmem, pfn) ? 1 : 0) + CountDeviceEntries(s, pfn);
}

void PutZoneDevicePage(State& s, uint64_t pfn) {
  // Is the page still referenced?
  if (DevicePageRefcount(s, pfn) > 1) return;
  DeviceEvent event;
  event.kind = DeviceEvent::kPageFree;
  event.devmem = DevmemOfPfn(s, pfn);
  event.pfn = pfn;
  s.events.push_back(event);
  // linux-6.1: the page's backing page is freed (dmirror_devmem_free()): a pt
  // entry still naming it becomes stale, and it belongs to no mirror.
  if (!Linux61(s)) return;
  Pte target;
  target.device = true;
  target.device_pfn = pfn;
  PtMarkFreed(s, target);
  DropAnonRmap(s, target);
  s.device_page_mirror.erase(pfn);
}

namespace {

// 2^max_physmem_bits (MAX_PHYSMEM_BITS): RAM lives below it.
uint64_t PhysmemEnd(const Config& config) { return uint64_t{1} << config.max_physmem_bits; }

// x / m rounded up. REQUIRES: m > 0.
uint64_t CeilDiv(uint64_t x, uint64_t m) { return x / m + (x % m != 0 ? 1 : 0); }

// The resource with the lowest start that intersects [start, end), or null.
// Mirrors: kernel/resource.c region_intersects() (REGION_DISJOINT or not).
const Resource* FirstIntersecting(const State& s, uint64_t start, uint64_t end) {
  for (const auto& [key, res] : s.resources) {
    if (res.start < end && start < res.end) return &res;
  }
  return nullptr;
}

// Profile default: the lowest section-aligned window [*start, *start + size)
// at or above 2^max_physmem_bits that intersects no resource and ends at or
// below 2^(12 + kDevicePfnBits) (the device pfn fits a swap entry's offset).
// Returns false when there is none.
// REQUIRES: size is a positive multiple of section_bytes, <= 2^max_physmem_bits.
// Mirrors: mm/hmm.c hmm_devmem_add() with the seed's announced fix ("use
// physical address above the platform limit"); upstream's MAX_PHYSMEM_BITS clamp.
bool PlaceAbovePhysmem(const State& s, uint64_t size, uint64_t* start) {
  const uint64_t section = s.config.section_bytes;
  const uint64_t limit = uint64_t{1} << (kPageShift + kDevicePfnBits);
  uint64_t candidate = PhysmemEnd(s.config);
  // Loop invariant: candidate is section-aligned and no window starting in
  // [2^max_physmem_bits, candidate) is free. Every window starting before the
  // intersecting resource's end still intersects it, so the search skips there.
  while (candidate <= limit - size) {
    const Resource* res = FirstIntersecting(s, candidate, candidate + size);
    if (res == nullptr) {
      *start = candidate;
      return true;
    }
    candidate = CeilDiv(res->end, section) * section;
  }
  return false;
}

// Profile v18: candidates top - k * size for k = 1, 2, ... (top is
// 2^max_physmem_bits), down to the lowest that is >= 0; the first whose window
// intersects no resource. Returns false when there is none.
// REQUIRES: size is a positive multiple of section_bytes, <= 2^max_physmem_bits.
// Mirrors: mm/hmm.c hmm_devmem_add() (v18: from the top down in steps of size,
// region_intersects() until REGION_DISJOINT).
bool PlaceBelowPhysmem(const State& s, uint64_t size, uint64_t* start) {
  const uint64_t top = PhysmemEnd(s.config);
  // Loop invariant: no window at top - j * size, 1 <= j < k, is free. Every
  // window that reaches above the intersecting resource's start still
  // intersects it, so the search skips to the first that ends at or below it.
  for (uint64_t k = 1; k <= top / size;) {
    const uint64_t candidate = top - k * size;
    const Resource* res = FirstIntersecting(s, candidate, candidate + size);
    if (res == nullptr) {
      *start = candidate;
      return true;
    }
    k = CeilDiv(top - res->start, size) + 1;
  }
  return false;
}

// Whether start and size are section-aligned and size is non-zero.
bool SectionRangeValid(const Config& config, uint64_t start, uint64_t size) {
  return size != 0 && start % config.section_bytes == 0 && size % config.section_bytes == 0;
}

// Whether some page of the devmem is held or mapped (refcount > 1).
bool DevmemBusy(const State& s, uint64_t id) {
  for (const auto& [pfn, page] : s.devmems.at(id).pages) {
    if (page.held) return true;
  }
  for (const auto& [pid, proc] : s.procs) {
    for (const auto& [vpn, pte] : proc.ptes) {
      if (pte.device && DevmemOfPfn(s, pte.device_pfn) == id) return true;
    }
  }
  return false;
}

// Sets *pfn to the lowest free (refcount 1) pfn of the devmem; false when all
// are in use. A pfn without a record was never allocated, hence free.
bool LowestFreePfn(const State& s, const Devmem& devmem, uint64_t* pfn) {
  uint64_t candidate = devmem.first_pfn;
  // Loop invariant: every pfn in [first_pfn, candidate) is in use.
  for (const auto& [recorded, page] : devmem.pages) {
    if (recorded > candidate || DevicePageRefcount(s, recorded) == 1) break;
    candidate = recorded + 1;
  }
  if (candidate - devmem.first_pfn >= devmem.npages) return false;
  *pfn = candidate;
  return true;
}

// Creates devmem next_devmem over [start, start + size): the resource, tagged
// IORES_DESC_DEVICE_PRIVATE_MEMORY, and its pages, all free (no records).
// Returns: the new id.
// Mirrors: mm/hmm.c hmm_devmem_add() (devm_request_mem_region()),
// hmm_devmem_pages_create().
uint64_t CreateDevmem(State& s, DeviceId device, uint64_t start, uint64_t size) {
  const uint64_t id = s.next_devmem++;
  Resource res;
  res.start = start;
  res.end = start + size;
  res.device = true;
  res.devmem = id;
  s.resources.emplace(start, res);
  Devmem devmem;
  devmem.device = device;
  devmem.first_pfn = start >> kPageShift;
  devmem.npages = size >> kPageShift;
  s.devmems.emplace(id, devmem);
  return id;
}

}  // namespace

// Mirrors: mm/hmm.c hmm_devmem_add().
Result<uint64_t> Kernel::HmmDevmemAdd(DeviceId device, uint64_t size) {
  const uint64_t section = s_.config.section_bytes;
  // Is the size non-zero?
  if (size == 0) return Errno::kInval;
  // Does the size, rounded up to whole sections, neither wrap nor exceed
  // 2^max_physmem_bits?
  if (size > UINT64_MAX - (section - 1)) return Errno::kInval;
  size = CeilDiv(size, section) * section;
  if (size > PhysmemEnd(s_.config)) return Errno::kInval;
  // Is there a free window where the profile looks?
  uint64_t start = 0;
  const bool placed = s_.config.profile == Profile::kV18 ? PlaceBelowPhysmem(s_, size, &start)
                                                         : PlaceAbovePhysmem(s_, size, &start);
  if (!placed) return Errno::kRange;
  return CreateDevmem(s_, device, start, size);
}

// Mirrors: mm/hmm.c hmm_devmem_remove() (Deviation: the kernel waits for the
// pgmap reference to drain; hmmref refuses with kBusy instead).
Errno Kernel::HmmDevmemRemove(uint64_t devmem) {
  // Is the devmem live?
  auto it = s_.devmems.find(devmem);
  if (it == s_.devmems.end()) return Errno::kNoEnt;
  // Is every page of it free (refcount 1)?
  if (DevmemBusy(s_, devmem)) return Errno::kBusy;
  s_.resources.erase(it->second.first_pfn << kPageShift);
  s_.devmems.erase(it);
  return Errno::kOk;
}

// Mirrors: mm/memory_hotplug.c add_memory(), register_memory_resource().
Errno Kernel::RamHotAdd(uint64_t start, uint64_t size) {
  // Are start and size section-aligned, and size non-zero?
  if (!SectionRangeValid(s_.config, start, size)) return Errno::kInval;
  // Does the range end at or below 2^max_physmem_bits, without wrapping?
  const uint64_t top = PhysmemEnd(s_.config);
  if (size > top || start > top - size) return Errno::kRange;
  // Is the range clear of every resource (RAM and device memory)?
  if (FirstIntersecting(s_, start, start + size) != nullptr) return Errno::kBusy;
  Resource ram;
  ram.start = start;
  ram.end = start + size;
  s_.resources.emplace(start, ram);
  return Errno::kOk;
}

// Mirrors: mm/memory_hotplug.c remove_memory(), release_mem_region_adjustable().
Errno Kernel::RamHotRemove(uint64_t start, uint64_t size) {
  // Are start and size section-aligned, and size non-zero?
  if (!SectionRangeValid(s_.config, start, size)) return Errno::kInval;
  // Is the range exactly a System RAM resource?
  auto it = s_.resources.find(start);
  if (it == s_.resources.end() || it->second.device || it->second.end - start != size) {
    return Errno::kNoEnt;
  }
  // Is it the boot RAM? It cannot go.
  if (it->second.boot) return Errno::kBusy;
  s_.resources.erase(it);
  return Errno::kOk;
}

// The driver's allocation: a free page of its region, get_page() (refcount 1 -> 2),
// its contents zeroed (docs/mirror.md).
// Mirrors: a driver allocator over hmm_devmem, as lib/test_hmm.c
// dmirror_devmem_alloc_page() (from the free list, then get_page()).
Result<uint64_t> Kernel::DevicePageAlloc(uint64_t devmem) {
  // Is the devmem live?
  auto it = s_.devmems.find(devmem);
  if (it == s_.devmems.end()) return Errno::kNoEnt;
  // Is some page of it free?
  uint64_t pfn = 0;
  if (!LowestFreePfn(s_, it->second, &pfn)) return Errno::kNoMem;
  DevicePage& page = it->second.pages[pfn];
  page.held = true;
  ++page.allocations;
  page.data = Page{};
  return pfn;
}

// The driver drops its allocation reference: put_page().
// Mirrors: kernel/memremap.c put_zone_device_private_or_public_page().
Errno Kernel::DevicePagePut(uint64_t pfn) {
  // Is pfn a page of a live devmem?
  const uint64_t id = DevmemOfPfn(s_, pfn);
  if (id == 0) return Errno::kNoEnt;
  // Does the driver hold it? (The refcount never goes below 1.)
  auto page = s_.devmems.at(id).pages.find(pfn);
  if (page == s_.devmems.at(id).pages.end() || !page->second.held) return Errno::kInval;
  page->second.held = false;
  PutZoneDevicePage(s_, pfn);
  return Errno::kOk;
}

// Test-only: installs a device entry as migration would, without moving data.
// Mirrors: mm/migrate.c migrate_vma_insert_page() (make_device_private_entry(
// page, vma->vm_flags & VM_WRITE), get_page()).
Errno Kernel::DeviceEntryInstall(Pid pid, uint64_t addr, uint64_t pfn, bool write) {
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Is addr page-aligned?
  if (!PageAligned(addr)) return Errno::kInval;
  // Is pfn a page of a live devmem?
  if (DevmemOfPfn(s_, pfn) == 0) return Errno::kNoEnt;
  // Is the page in use (refcount > 1)? A free page belongs to no one.
  if (DevicePageRefcount(s_, pfn) == 1) return Errno::kInval;
  Process& p = s_.procs.at(pid);
  const Vpn vpn = AddrToVpn(addr);
  const Vma* vma = FindVma(p, vpn);
  // Is there a VMA at addr?
  if (vma == nullptr) return Errno::kFault;
  // Is it private? Only anonymous private memory goes to device memory.
  if (vma->shared) return Errno::kInval;
  // Is the slot empty?
  if (p.ptes.count(vpn) != 0) return Errno::kBusy;
  // Does an entry map the page writable? A private page mapped twice is
  // COW-shared and read-only everywhere (as fork leaves it).
  if (MappedWritable(s_, pfn)) return Errno::kBusy;
  Pte entry;
  entry.device = true;
  entry.device_pfn = pfn;
  // A second entry is read-only, whatever was asked.
  entry.write = write && (vma->prot & kProtWrite) != 0 && CountDeviceEntries(s_, pfn) == 0;
  p.ptes[vpn] = entry;
  return Errno::kOk;
}

// A query: how many page_free callbacks the region has had.
// Mirrors: mm/hmm.c hmm_devmem_free() (the callback the log records).
Result<uint64_t> Kernel::PageFrees(uint64_t devmem) {
  // Is the devmem live?
  if (s_.devmems.count(devmem) == 0) return Errno::kNoEnt;
  uint64_t n = 0;
  for (const DeviceEvent& event : s_.events) {
    if (event.kind == DeviceEvent::kPageFree && event.devmem == devmem) ++n;
  }
  return n;
}

}  // namespace hmm::model
