// File: impl/kernel.h
//
// The optimized implementation of the CPU address space: a struct-page array
// for system RAM, 4-level page tables of packed 64-bit entries (impl/pte.h),
// VMAs in an ordered tree, and kernel-like locks. Same operations, same
// signatures and same Errno results as model/kernel.h, so props/ drives both.
// It never includes model logic: only model/types.h.
//
// The read-only introspection at the bottom exists for props/abstract.cc
// (the abstraction function) and the report; it takes the same locks as the
// operations and returns plain values.
//
// Thread safety
//   Every method may be called from any thread at any time. Operations take
//   kernel-like locks (impl/kernel_state.h gives the order): a process's
//   mmap_lock (read for faults, CpuRead/CpuWrite, pins and DeviceEntryInstall;
//   write for the VMA operations, fork and exit), its page-table lock, page
//   locks, shmem object locks and the zone lock; device memory adds the devmem
//   table lock, per-region allocator locks, the resource lock and the event
//   log's lock, all below the page-table lock; mirroring adds each process's
//   mirror-list lock and each mirror's update lock (between the mmap_lock
//   and the page-table lock: CPU operations call the mirrors under the
//   mmap_lock, never under the page-table lock), the id tables' lock and
//   each process's range lock (a leaf). RepInvariant() and
//   MetadataBytesPerMappedPage() wait until no operation is in flight
//   (stop_machine()), so they see one consistent state; the other
//   introspection calls are each consistent on their own, and consistent
//   with each other when no operation runs.

#ifndef HMMREF_IMPL_KERNEL_H_
#define HMMREF_IMPL_KERNEL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/types.h"

namespace hmm::impl {

// Limits, identical to model/kernel.h (docs/model.md); props/ asserts they agree.
constexpr uint64_t kMaxProcesses = 64;
constexpr uint64_t kMaxAccess = 64 * 1024;
constexpr uint64_t kMaxPinPages = 512;
constexpr uint64_t kDefaultRamPages = 1024;

struct VmaInfo {
  uint64_t start = 0;  // address, page-aligned
  uint64_t end = 0;    // address, exclusive
  uint32_t prot = 0;
  bool shared = false;
  uint64_t object = 0;  // shared only: shmem object id (impl's own numbering)
  uint64_t pgoff = 0;   // shared only
};

struct PteInfo {
  uint64_t vpn = 0;
  uint64_t pfn = 0;     // RAM pfn, the zero page's, or (device) the device pfn
  bool write = false;
  bool zero = false;    // maps the zero page
  bool device = false;  // a device-private entry (not present)
};

// Device memory (docs/devmem.md).
struct ResourceInfo {
  uint64_t start = 0;
  uint64_t end = 0;  // exclusive
  bool device = false;
  bool boot = false;
  uint64_t devmem = 0;
};

struct DevicePageInfo {
  uint64_t pfn = 0;
  bool held = false;
  uint64_t allocations = 0;
};

struct DevmemInfo {
  uint64_t id = 0;
  bool dmirror_chunk = false;  // added by the dummy device's allocator
  uint64_t device = 0;
  uint64_t first_pfn = 0;
  uint64_t npages = 0;
  std::vector<DevicePageInfo> pages;  // ascending pfn; only pages held or ever allocated
};

struct DeviceEventInfo {
  bool fault = false;  // else page_free
  uint64_t devmem = 0;
  uint64_t pfn = 0;
  uint64_t pid = 0;
  uint64_t addr = 0;
};

// Mirroring (docs/mirror.md).
struct MirrorInfo {
  uint64_t id = 0;
  uint64_t flags = 0;  // HMM_DMIRROR_FLAGS
  uint64_t device = 0;
  uint64_t pid = 0;
  std::vector<PteInfo> pt;  // ascending vpn; pfn/zero/device/write as a PTE's
};

struct RangeInfo {
  uint64_t id = 0;
  uint64_t mirror = 0;
  uint64_t start_vpn = 0;
  uint64_t end_vpn = 0;  // exclusive
  bool valid = false;
  std::vector<uint64_t> pfns;  // hmm_pfn_t: pfn << kHmmPfnShift | kHmmPfn* flags
};

// A device access through the device's own page table to a page the CPU no
// longer maps at that address as the device's entry says (another pfn, no
// page, or no write permission for a write): the invalidate-after-change
// hazard of the v18 seed (docs/concurrency.md). Reported to the observer of
// Kernel::SetDeviceAccessObserver, never an error of the operation.
struct DeviceAccessHazard {
  uint64_t mirror = 0;
  DeviceId device{};
  Pid pid{};
  uint64_t addr = 0;        // page-aligned
  bool write = false;       // the device wrote (else read)
  uint64_t device_pfn = 0;  // the pfn the device's entry maps
  std::string cpu;          // what the CPU's entry holds: "none", "pfn 0x12 read-only", ...
};

class KernelState;  // impl/kernel_state.h: everything behind the API

class Kernel {
 public:
  explicit Kernel(uint64_t ram_pages = kDefaultRamPages);
  explicit Kernel(const Config& config);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  Result<Pid> CreateProcess();
  Result<uint64_t> Mmap(Pid pid, uint64_t addr, uint64_t len, uint32_t prot, uint32_t flags);
  Errno Munmap(Pid pid, uint64_t addr, uint64_t len);
  Errno Mprotect(Pid pid, uint64_t addr, uint64_t len, uint32_t prot);
  Result<uint64_t> Mremap(Pid pid, uint64_t old_addr, uint64_t old_len, uint64_t new_len,
                          uint32_t flags, uint64_t new_addr);
  Result<Pid> Fork(Pid pid);
  Errno MadviseDontneed(Pid pid, uint64_t addr, uint64_t len);
  Result<std::vector<uint8_t>> CpuRead(Pid pid, uint64_t addr, uint64_t len);
  Errno CpuWrite(Pid pid, uint64_t addr, const std::vector<uint8_t>& bytes);
  Result<PinId> PinUserPages(Pid pid, uint64_t addr, uint64_t npages);
  Errno UnpinUserPages(PinId pin);
  Errno Exit(Pid pid);

  // Device-private memory (docs/devmem.md).
  Result<uint64_t> HmmDevmemAdd(DeviceId device, uint64_t size);
  Errno HmmDevmemRemove(uint64_t devmem);
  Errno RamHotAdd(uint64_t start, uint64_t size);
  Errno RamHotRemove(uint64_t start, uint64_t size);
  Result<uint64_t> DevicePageAlloc(uint64_t devmem);
  Errno DevicePagePut(uint64_t pfn);
  Errno DeviceEntryInstall(Pid pid, uint64_t addr, uint64_t pfn, bool write);
  Result<uint64_t> PageFrees(uint64_t devmem);

  // Mirroring: the seed's kernel API and the dummy device (docs/mirror.md).
  Result<uint64_t> HmmMirrorRegister(DeviceId device, Pid pid);
  Errno HmmMirrorUnregister(uint64_t mirror);
  Result<uint64_t> HmmVmaGetPfns(uint64_t mirror, uint64_t addr, uint64_t npages);
  Result<uint64_t> HmmVmaFault(uint64_t mirror, uint64_t addr, uint64_t npages, bool write);
  Result<bool> HmmVmaRangeDone(uint64_t range);
  Result<bool> DmirrorCommit(uint64_t range);
  Result<DmirrorResult> DmirrorRead(uint64_t mirror, uint64_t addr, uint64_t npages);
  Result<DmirrorResult> DmirrorWrite(uint64_t mirror, uint64_t addr,
                                     const std::vector<uint8_t>& data);
  Result<DmirrorResult> DmirrorSnapshot(uint64_t mirror, uint64_t addr, uint64_t npages);
  // READ's fault alone (model/kernel.h): dmirror_fault() of the range.
  Errno DmirrorFaultRange(uint64_t mirror, uint64_t addr, uint64_t npages, bool write);

  // Migration (docs/migrate.md; impl/migrate*.cc, impl/dmirror_migrate.cc).
  // The core MigrateVma(ops, args) with driver callbacks is declared in
  // impl/migrate.h (it needs KernelState); these are the dummy device's.
  Result<DmirrorResult> DmirrorMigrateToDev(uint64_t mirror, uint64_t addr, uint64_t npages);
  Result<DmirrorResult> DmirrorMigrateToSys(uint64_t mirror, uint64_t addr, uint64_t npages);
  Errno DmirrorRelease(uint64_t mirror);
  Errno DmirrorFlags(uint64_t mirror, uint64_t flags);
  // The migration loop of MIGRATE_TO_DEV (to_device) or MIGRATE_TO_SYS without
  // the guards' bounce-buffer limit and without MIGRATE_TO_DEV's read-back:
  // returns the pages that moved. For bench/ (64K pages per call).
  // REQUIRES: as DmirrorMigrateToSys's guards, except npages may exceed
  // kMaxDmirrorPages.
  Result<uint64_t> DmirrorMigrateRange(uint64_t mirror, uint64_t addr, uint64_t npages,
                                       bool to_device);

  // --- Hazard detection (issue 7; for the concurrency suite) ---
  // Installs `observer` (an empty function removes it). Every device access
  // through a mirror's page table is then compared with the CPU's entry at
  // that address; a mismatch calls `observer` on the accessing thread, under
  // the mirror's update lock: it must not call into this Kernel. With none
  // installed the check costs one relaxed load per access.
  void SetDeviceAccessObserver(std::function<void(const DeviceAccessHazard&)> observer);

  // --- Introspection (read-only; for the abstraction function) ---
  std::vector<Pid> Pids() const;                       // live, ascending
  std::vector<VmaInfo> Vmas(Pid pid) const;            // ascending start
  std::vector<PteInfo> Ptes(Pid pid) const;            // present and device leaves, ascending vpn
  std::vector<uint64_t> Objects() const;               // live shmem object ids, ascending
  std::vector<std::pair<uint64_t, uint64_t>> ObjectPages(uint64_t object) const;  // (pgoff, pfn)
  std::vector<std::pair<PinId, std::vector<uint64_t>>> Pins() const;  // ascending id; pfns
  std::vector<uint64_t> PagesInUse() const;            // allocated pfns, zero page excluded
  std::vector<uint8_t> PageData(uint64_t pfn) const;   // 4096 bytes
  uint64_t ZeroPfn() const;
  uint64_t ram_pages() const;
  Config config() const;
  std::vector<ResourceInfo> Resources() const;        // ascending start
  std::vector<DevmemInfo> Devmems() const;            // ascending id
  std::vector<DeviceEventInfo> DeviceEvents() const;  // in order
  std::vector<uint8_t> DevicePageData(uint64_t pfn) const;  // 4096 bytes; zeros if never written
  std::vector<MirrorInfo> Mirrors() const;            // ascending id
  std::vector<RangeInfo> Ranges() const;              // open ranges, ascending id

  // Impl-only facts (refcount = mappings + pins + holders, mapcount consistent,
  // free list disjoint from mapped pages, page tables well formed). Returns one
  // line per violation, naming the fact, the pfn or address, and both values.
  std::vector<std::string> RepInvariant() const;

  // Metadata bytes the impl spends per mapped page (struct page plus this page's
  // share of page-table pages), for bench/.
  double MetadataBytesPerMappedPage() const;
  // Metadata bytes per device page (struct page plus its share of the pgmap and
  // the region's bookkeeping), over every live devmem; 0 when there is none.
  double MetadataBytesPerDevicePage() const;

 private:
  // impl/migrate.h: the drivers' helpers and MigrateVma reach the state.
  friend KernelState& StateOf(Kernel& k);

  std::unique_ptr<KernelState> st_;
};

}  // namespace hmm::impl

#endif  // HMMREF_IMPL_KERNEL_H_
