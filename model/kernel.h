// File: model/kernel.h
//
// The abstract state machine of the CPU side of the system: processes, VMAs,
// PTEs (present, or device-private entries), pages as plain bytes, shared
// objects and pins, and device memory (resources, devmems, the callback log),
// on std::map with value semantics. It is the specification: docs/model.md and
// docs/devmem.md state the same contract in prose. impl/kernel.h exposes the
// same operations with the same signatures, so props/ drives both with one
// command.
//
// Nothing here is optimized, and nothing may be: where the impl is clever, the
// model stays obvious, and props/ checks that the two agree.

#ifndef HMMREF_MODEL_KERNEL_H_
#define HMMREF_MODEL_KERNEL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "model/types.h"

namespace hmm::model {

// A page's identity. Ids mean nothing outside one State: states are compared
// after Canonicalize() renames pages and objects in order of first use.
using PageId = uint64_t;
using ObjectId = uint64_t;

struct Vma {
  Vpn start;
  Vpn end;  // exclusive
  uint32_t prot = kProtNone;
  bool shared = false;
  ObjectId object = 0;  // shared only: the shmem object mapped
  uint64_t pgoff = 0;   // shared only: object page mapped at `start`
  // linux-6.1 only (0, false, empty otherwise; model/anon_vma.cc): a private
  // VMA's vm_pgoff (its linear page index at start), VM_ACCOUNT (it was
  // writable once), its anon_vma and every anon_vma it is linked to (its own
  // and its fork ancestors'), and when its rmap tree nodes were last
  // inserted. They decide which VMAs 6.1 merges, and which VMAs an rmap walk
  // visits in which order.
  uint64_t vm_pgoff = 0;
  bool account = false;
  uint64_t anon_vma = 0;
  std::set<uint64_t> anon_chain;
  uint64_t rmap_seq = 0;

  bool operator==(const Vma& o) const;
};

struct Pte {
  bool zero = false;  // maps the shared zero page (then page == 0, write == false)
  PageId page = 0;
  bool write = false;
  // A device-private entry (SWP_DEVICE_READ/WRITE, docs/devmem.md): not present;
  // names device_pfn (a physical identity, never renamed); page == 0, zero == false.
  bool device = false;
  uint64_t device_pfn = 0;
  // linux-6.1 only (false otherwise): the present PTE's dirty bit, set by a
  // write fault and by every CPU store through it; with the page's
  // PageAnonExclusive it lets mprotect() make the PTE writable (D20).
  bool dirty = false;

  bool operator==(const Pte& o) const;
};

// 4 KiB of contents; only non-zero bytes are stored (offset -> byte).
struct Page {
  std::map<uint16_t, uint8_t> bytes;

  uint8_t At(uint64_t offset) const;
  void Set(uint64_t offset, uint8_t value);
  bool operator==(const Page& o) const { return bytes == o.bytes; }
};

struct Process {
  std::map<Vpn, Vma> vmas;  // keyed by start
  std::map<Vpn, Pte> ptes;  // present entries and device-private entries

  bool operator==(const Process& o) const { return vmas == o.vmas && ptes == o.ptes; }
};

struct SharedObject {
  std::map<uint64_t, PageId> pages;  // pgoff -> page
  // linux-6.1: the shmem file's size in pages (a fault at or past it is
  // SIGBUS, D7); 0 in the other profiles, whose objects grow with their VMAs.
  uint64_t size = 0;

  bool operator==(const SharedObject& o) const { return pages == o.pages && size == o.size; }
};

// One range of the physical address space (kernel/resource.c iomem_resource).
struct Resource {
  uint64_t start = 0;  // bytes
  uint64_t end = 0;    // bytes, exclusive
  bool device = false; // device-private (IORES_DESC_DEVICE_PRIVATE_MEMORY); else System RAM
  bool boot = false;   // System RAM present at boot (cannot be hot-removed)
  uint64_t devmem = 0; // device only: the owning region

  bool operator==(const Resource& o) const;
};

// A device page that is not free, or was ever allocated (absent: never allocated).
struct DevicePage {
  bool held = false;         // the driver holds its allocation reference
  uint64_t allocations = 0;  // times DevicePageAlloc handed it out
  Page data;                 // its contents (zeroed by each DevicePageAlloc; docs/mirror.md)

  bool operator==(const DevicePage& o) const {
    return held == o.held && allocations == o.allocations && data == o.data;
  }
};

// One hmm_devmem region (mm/hmm.c struct hmm_devmem).
struct Devmem {
  DeviceId device;
  uint64_t first_pfn = 0;
  uint64_t npages = 0;
  std::map<uint64_t, DevicePage> pages;  // pfn -> page, sparse
  bool dmirror_chunk = false;  // added by the dummy device's allocator (docs/migrate.md)

  bool operator==(const Devmem& o) const;
};

// A devmem callback, in the order they ran.
struct DeviceEvent {
  enum Kind : uint8_t { kPageFree, kFault };
  Kind kind = kPageFree;
  uint64_t devmem = 0;
  uint64_t pfn = 0;
  uint64_t pid = 0;   // kFault only
  uint64_t addr = 0;  // kFault only

  bool operator==(const DeviceEvent& o) const;
};

// One registered mirror = one open dummy-device file (docs/mirror.md). Its
// device page table maps vpn -> a mapping of the same shape as a PTE (page,
// zero page or device pfn, and write).
struct Mirror {
  DeviceId device;
  Pid pid;
  std::map<Vpn, Pte> pt;
  uint64_t flags = 0;  // HMM_DMIRROR_FLAGS: kDmirrorFlagFailAlloc (docs/migrate.md)
  // linux-6.1 only (empty otherwise; docs/divergences.md): pt entries that hold
  // the device-private struct page itself, as 6.1's fault stores an owner's
  // page (reading one oopses, D12), and entries whose page was freed while
  // the entry stayed (6.1 skips the owner device's mirrors on migration:
  // reading one reads freed memory, D15).
  std::set<Vpn> unbacked;
  std::set<Vpn> stale;

  bool operator==(const Mirror& o) const {
    return device == o.device && pid == o.pid && pt == o.pt && flags == o.flags &&
           unbacked == o.unbacked && stale == o.stale;
  }
};

// One entry of a snapshot or fault range: HMM_PFN_* flags (hmm::kHmmPfn*) and,
// when kHmmPfnValid is set, the target: the zero page, a page, or (with
// kHmmPfnDeviceUnaddressable) a device pfn. Unused target fields are 0/false.
struct HmmPfn {
  uint64_t flags = 0;
  bool zero = false;
  PageId page = 0;
  uint64_t device_pfn = 0;

  bool operator==(const HmmPfn& o) const {
    return flags == o.flags && zero == o.zero && page == o.page && device_pfn == o.device_pfn;
  }
};

// One open range (HmmVmaGetPfns / HmmVmaFault until HmmVmaRangeDone).
struct Range {
  uint64_t mirror = 0;
  Vpn start;
  Vpn end;  // exclusive
  bool valid = true;
  std::vector<HmmPfn> pfns;  // one per page of [start, end)

  bool operator==(const Range& o) const {
    return mirror == o.mirror && start == o.start && end == o.end && valid == o.valid &&
           pfns == o.pfns;
  }
};

// linux-6.1: where an anonymous page sits in the rmap (model/anon_vma.cc).
struct AnonRmap {
  uint64_t anon_vma = 0;   // page->mapping
  uint64_t index = 0;      // page->index: the linear page index it was created at
  bool exclusive = false;  // PageAnonExclusive: no fork shares it (D20)

  bool operator==(const AnonRmap& o) const {
    return anon_vma == o.anon_vma && index == o.index && exclusive == o.exclusive;
  }
};

struct State {
  std::map<Pid, Process> procs;  // live processes
  std::map<PageId, Page> pages;  // every page that exists (zero page excluded)
  std::map<ObjectId, SharedObject> objects;
  std::map<PinId, std::vector<PageId>> pins;
  uint64_t next_pid = 1;
  uint64_t next_pin = 1;
  uint64_t next_page = 1;
  uint64_t next_object = 1;
  // Device memory (docs/devmem.md).
  Config config;
  std::map<uint64_t, Resource> resources;  // keyed by start
  std::map<uint64_t, Devmem> devmems;      // keyed by id
  std::vector<DeviceEvent> events;
  uint64_t next_devmem = 1;
  // Mirroring (docs/mirror.md).
  std::map<uint64_t, Mirror> mirrors;  // keyed by id
  std::map<uint64_t, Range> ranges;    // open ranges, keyed by id
  uint64_t next_mirror = 1;
  uint64_t next_range = 1;
  // linux-6.1 only (empty otherwise; docs/divergences.md D14): the pages that
  // live in a device-coherent device's memory (devices 2 and 3), by device.
  // The CPU maps them like system pages; only migration and eviction treat
  // them as device memory. And the mirror whose MIGRATE_TO_DEV allocated each
  // device-private page (the driver's rpage->zone_device_data), which the CPU
  // fault's migration back updates.
  std::map<PageId, DeviceId> coherent;
  std::map<uint64_t, uint64_t> device_page_mirror;  // device pfn -> mirror id
  // linux-6.1 only: each anonymous page's rmap, page->mapping's anon_vma and
  // page->index, by page: {false, page id} or {true, device pfn}.
  std::map<std::pair<bool, uint64_t>, AnonRmap> anon_rmap;
  uint64_t next_anon_vma = 1;
  uint64_t next_rmap_seq = 1;

  bool operator==(const State& o) const;
};

// One migrate_vma call's arguments and arrays (docs/migrate.md; 6.1 struct
// migrate_vma). src/dst pfn fields: a PageId for a system page, the device pfn
// for a device page.
struct MigrateVma {
  Pid pid;
  uint64_t start = 0;  // address
  uint64_t end = 0;    // address, exclusive
  uint32_t select = 0;  // kMigrateVmaSelect*
  DeviceId owner;       // pgmap_owner: device-private pages of this device only
  uint64_t fault_page = 0;  // the CPU fault path's device pfn, 0 if none
  std::vector<uint64_t> src;  // kMigratePfn* | pfn << kMigratePfnShift, by MigrateVma
  std::vector<uint64_t> dst;  // by the driver's alloc_and_copy
  uint64_t cpages = 0;        // entries collected
};

// What Linux 6.1 does at an operation beyond its result (linux-6.1 profile
// only; docs/divergences.md): its driver's WARNING (D13), an oops (D12), or
// a read or write through a page table entry whose page it freed (D15). The
// kernel oracle expects the warning in the kernel's log, and compares nothing
// of a trace from an oops or a use-after-free on. The model's own result for
// such an operation is kFault.
struct KernelSplat {
  enum Kind : uint8_t { kWarning, kOops, kUseAfterFree };
  Kind kind = kWarning;
  std::string where;  // the kernel function, e.g. "lib/test_hmm.c dmirror_do_fault()"
};

class Kernel;

// The driver's callbacks (struct migrate_vma_ops). alloc_and_copy may set
// dst[i] only where src[i] has kMigratePfnMigrate; finalize_and_map sees the
// outcome. `private` is what the callbacks capture.
struct MigrateVmaOps {
  std::function<void(MigrateVma&)> alloc_and_copy;
  std::function<void(const MigrateVma&)> finalize_and_map;
};

// Renames pages and objects in order of first use (processes by pid; in each,
// PTEs by vpn, then its shared VMAs' objects by start, an object's pages by
// pgoff; then unreached objects; then pins; then mirrors' pt entries by mirror
// id and vpn; then open ranges' VALID page entries by range id and index) and
// resets next_page/next_object to one past the last name, so two states that
// differ only in naming compare equal. next_pid and next_pin are kept, and so
// is all of device memory (device pfns, resources, devmems, events,
// next_devmem) and the mirror and range ids (next_mirror, next_range). See
// model/canonical.cc.
State Canonicalize(const State& s);

// Limits shared with impl (docs/model.md).
constexpr uint64_t kMaxProcesses = 64;
constexpr uint64_t kMaxAccess = 64 * 1024;
constexpr uint64_t kMaxPinPages = 512;
constexpr uint64_t kDefaultRamPages = 1024;

class Kernel {
 public:
  explicit Kernel(uint64_t ram_pages = kDefaultRamPages);
  explicit Kernel(const Config& config);

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

  // Device-private memory (docs/devmem.md; model/devmem.cc).
  Result<uint64_t> HmmDevmemAdd(DeviceId device, uint64_t size);
  Errno HmmDevmemRemove(uint64_t devmem);
  Errno RamHotAdd(uint64_t start, uint64_t size);
  Errno RamHotRemove(uint64_t start, uint64_t size);
  Result<uint64_t> DevicePageAlloc(uint64_t devmem);
  Errno DevicePagePut(uint64_t pfn);
  Errno DeviceEntryInstall(Pid pid, uint64_t addr, uint64_t pfn, bool write);
  Result<uint64_t> PageFrees(uint64_t devmem);

  // Mirroring: the seed's kernel API (docs/mirror.md; model/mirror.cc).
  Result<uint64_t> HmmMirrorRegister(DeviceId device, Pid pid);
  Errno HmmMirrorUnregister(uint64_t mirror);
  Result<uint64_t> HmmVmaGetPfns(uint64_t mirror, uint64_t addr, uint64_t npages);
  Result<uint64_t> HmmVmaFault(uint64_t mirror, uint64_t addr, uint64_t npages, bool write);
  Result<bool> HmmVmaRangeDone(uint64_t range);
  // The dummy device, lib/test_hmm.c (docs/mirror.md; model/dmirror.cc).
  Result<bool> DmirrorCommit(uint64_t range);
  Result<DmirrorResult> DmirrorRead(uint64_t mirror, uint64_t addr, uint64_t npages);
  Result<DmirrorResult> DmirrorWrite(uint64_t mirror, uint64_t addr,
                                     const std::vector<uint8_t>& data);
  Result<DmirrorResult> DmirrorSnapshot(uint64_t mirror, uint64_t addr, uint64_t npages);
  // The fault a READ (write false) or WRITE takes before it copies, alone:
  // dmirror_fault() of the range, its pages faulted and stored in the
  // mirror's pt, nothing copied. The guards are READ's. No ioctl of the 6.1
  // driver does only this (the race suite's checker uses it; docs/mirror.md).
  Errno DmirrorFaultRange(uint64_t mirror, uint64_t addr, uint64_t npages, bool write);

  // Migration (docs/migrate.md; model/migrate.cc, model/dmirror_migrate.cc).
  Errno MigrateVma(const MigrateVmaOps& ops, MigrateVma* args);
  Result<DmirrorResult> DmirrorMigrateToDev(uint64_t mirror, uint64_t addr, uint64_t npages);
  Result<DmirrorResult> DmirrorMigrateToSys(uint64_t mirror, uint64_t addr, uint64_t npages);
  Errno DmirrorRelease(uint64_t mirror);
  Errno DmirrorFlags(uint64_t mirror, uint64_t flags);

  const State& state() const { return s_; }
  uint64_t ram_pages() const { return ram_pages_; }
  // linux-6.1: every KernelSplat so far, in order (empty in other profiles).
  const std::vector<KernelSplat>& splats() const { return splats_; }

 private:
  // The fault path shared by CpuRead, CpuWrite and PinUserPages (fault.cc):
  // faults vpn in for a read or a write; a device entry migrates back to
  // system memory first (docs/migrate.md). Returns kFault (no VMA, the VMA
  // forbids the access, or a device page that cannot move) or kNoMem (RAM full).
  Errno FaultIn(Pid pid, Vpn vpn, bool write);

  // A fault a range walk found needed at vpn (mirror.cc): kFault when the VMA
  // lacks PROT_READ, kPerm for a write when it lacks PROT_WRITE, else FaultIn,
  // any failure of which (a device page that cannot move, RAM full) is kFault.
  Errno HmmDoFault(Pid pid, Vpn vpn, bool write);
  // The dummy device's fault (dmirror.cc): one page as 6.1's hmm_range_fault()
  // with dev_private_owner = device; one chunk, stored in the mirror's pt only
  // if every page succeeds; and [start, end) in chunks of kDmirrorFaultChunk.
  Errno DmirrorFaultPage(Pid pid, DeviceId device, Vpn vpn, Vpn chunk_end, bool write);
  Errno DmirrorRangeFault(uint64_t mirror, Vpn start, Vpn end, bool write);
  Errno DmirrorFault(uint64_t mirror, Vpn start, Vpn end, bool write);
  // linux-6.1: hmm_vma_fault() faults every page from vpn to the end of its
  // unit: the chunk, the VMA and the 2 MiB page table (an owner's device page
  // there migrates back too). kPerm for a write to a VMA without PROT_WRITE,
  // kFault when a page's fault fails.
  Errno HmmVmaFaultUnit(Pid pid, Vpn vpn, Vpn chunk_end, bool write);
  // The dummy device's dmirror_do_fault(): stores [start, end)'s entries in
  // order; under linux-6.1 a read-only entry for a write is the driver's
  // WARNING and kFault (D13), the entries before it stored.
  Errno DmirrorDoFault(uint64_t mirror, Vpn start, Vpn end, bool write);
  // Records a KernelSplat and answers kFault (a linux-6.1 oops or use-after-free).
  Errno Splat(KernelSplat::Kind kind, const char* where);

  // Migration (docs/migrate.md). Inside Kernel, `MigrateVma` names the
  // operation, so the struct is `struct MigrateVma`.
  // migrate_vma_finalize() (migrate.cc): each page's entries follow it or stay,
  // the old pages' collect references and the destinations' allocation
  // references go (DevicePagePut), unused pages are freed.
  void MigrateVmaFinalize(const struct MigrateVma& args);
  // The dummy device (dmirror_migrate.cc): its allocator (FAIL_ALLOC, then the
  // lowest free page of its devmems, then a new chunk); its alloc_and_copy to
  // device memory; MIGRATE_TO_DEV's and MIGRATE_TO_SYS's guards and loop over
  // pieces, returning how many pages moved; and migrate_to_ram, the CPU fault on a
  // device entry (kFault when the page stays on the device).
  Result<uint64_t> DmirrorDevmemAllocPage(uint64_t mirror);
  void DmirrorMigrateAllocAndCopy(uint64_t mirror, struct MigrateVma& args);
  Result<uint64_t> DmirrorMigrate(uint64_t mirror, uint64_t addr, uint64_t npages, bool to_device);
  Errno DmirrorDevmemFault(Pid pid, Vpn vpn, uint64_t pfn);
  // Evicts all of device's memory to system memory, in pieces (RELEASE, and
  // under linux-6.1 a mirror's close): kNoMem when RAM runs out.
  Errno DmirrorDeviceEvict(DeviceId device);

  State s_;
  uint64_t ram_pages_;
  std::vector<KernelSplat> splats_;
};

}  // namespace hmm::model

#endif  // HMMREF_MODEL_KERNEL_H_
