// File: impl/kernel_state.h
//
// Everything behind impl::Kernel: the struct-page array, the process table,
// the shmem object table, the pin registry, device memory (the iomem
// resources, the devmem regions, the callback log) and the mirror and range
// tables (impl/mirror.h) and the copy engine (impl/copy_engine.h), plus the
// internal entry points the operation files (mmap.cc, mremap.cc, fault.cc,
// fork.cc, gup.cc, device_entry.cc, the migration files: impl/migrate.h)
// share. Internal to impl/.
//
// Thread safety
//   Locks, outermost first; a thread takes them only in this order:
//     1. quiesce (shared by every operation; exclusive by RepInvariant and
//        MetadataBytesPerMappedPage: kernel/stop_machine.c stop_machine());
//     2. a process's mmap_lock (read: faults, CpuRead/CpuWrite, pins, a
//        migration's process (impl/migrate.h); write: mmap, munmap, mprotect,
//        mremap, madvise, fork's parent, exit). Fork also write-locks the
//        child's, after the parent's: the child is not yet in the table, so
//        no other thread can hold it (the kernel's dup_mmap() nests the
//        child's mmap_lock the same way). A migration never takes another
//        process's mmap_lock: it reaches other mappings through their ptls;
//     2p. page locks (impl/page.h; a device page's, impl/devmem.h), as the
//         kernel's lock_page() sits below the mmap_lock and above the rest.
//         A migration holds the locks of its pages from collect to finalize
//         while it takes everything below (ptls, the notifier's mirrors_sem
//         and update_locks, shmem locks, devmem locks, the zone lock). A page
//         lock is taken blocking (LockPage) only by a thread holding nothing
//         but quiesce and mmap_locks: a CPU access's copy, the v18 migration's
//         prepare when it holds no other page lock (the seed's lock_page()).
//         Everywhere else, under any lock of 2a..5 or with another page lock
//         held, it is only tried (TrylockPage), and a failure backs off: the
//         fault drops the ptl, waits for the unlock and retries
//         (do_wp_page()), fork drops its ptls and retries, a dmirror copy
//         drops update_lock and retries, a migration gives the page up
//         (4.14's trylock_page(): invariant 31, no ABBA between migrations);
//     2a. the process's Hmm::mirrors_sem (impl/mirror.h: its mirror list):
//         shared by the mmu notifier while it calls the mirrors; exclusive
//         by HmmMirrorRegister (under the mmap_lock, write) and by
//         HmmMirrorUnregister (alone);
//     2b. a Mirror::update_lock (the dummy device's mutex over its pt), one
//         at a time: under mirrors_sem in the notifier, alone in a commit,
//         a dmirror copy and the driver fault's store, under page locks in a
//         migration's driver callbacks;
//     3. a ShmemObject::lock (impl/shmem.h);
//     4. a process's ptl (mm->page_table_lock), parent's before child's;
//        a migration takes one ptl at a time;
//     5. the zone lock (impl/page.h).
//   The mmu notifier (MmuNotifierRange, impl/mirror.h) runs under the
//   mmap_lock (write: munmap, MAP_FIXED, mprotect, madvise, mremap, fork,
//   exit; read: a COW break in a fault, a migration) or, for another
//   process's mappings, under a migration's page locks; never under a ptl or
//   shmem lock: the write fault decides a COW copy under the ptl, drops it,
//   notifies, re-takes the ptl and checks the PTE is unchanged (mm/memory.c
//   wp_page_copy()'s pte_same()), retrying the fault otherwise. So
//   update_lock (2b) is never wanted by a thread holding a ptl, while a
//   dmirror copy holding update_lock only tries page locks (2p) and takes
//   devmems_lock (4a): no cycle.
//   Migration entries (kSwpMigrationRead/Write, impl/migrate.h) exist only
//   while their migration runs, and hold no reference or mapcount: the
//   migration's own reference and page lock keep the page (a migration
//   rewrites its entries before it unlocks). Whoever meets one waits for it
//   to go without holding a ptl (a fault, the fault walks:
//   migration_entry_wait()), waits before copying (fork), or acts on it as
//   on any entry (zap clears it, mprotect downgrades it, mremap moves it).
//   Mirror bookkeeping below those: mirrors_lock (the mirror and range id
//   tables) under update_lock (a commit's range_done) or under mirrors_sem
//   (registration); Hmm::lock (its range list and every range's valid and
//   entries) is a leaf, taken under a ptl (a walk fills a range), under
//   mirrors_lock or under update_lock, and after devmems_lock when both.
//   Device memory (impl/devmem.h) nests below the ptl: a zap, fork, fault or
//   entry install meets a device-private entry with the ptl held:
//     4a. devmems_lock: shared by every user of a device page (a lookup by
//         pfn or id included, and held until the use ends); exclusive by
//         HmmDevmemAdd and HmmDevmemRemove (and the dummy device's chunk
//         add), which so exclude all users at once. Nothing blocks on a page
//         lock while holding it;
//     4b. a Devmem::lock (the region's allocator lock), one at a time;
//     4c. resource_lock (the iomem map): under devmems_lock in HmmDevmemAdd
//         and HmmDevmemRemove, alone in RamHotAdd/RamHotRemove;
//     4d. the DeviceEventLog's lock: page_free is logged under a Devmem::lock,
//         a fault under a ptl and devmems_lock.
//   Leaf locks, under which nothing else is taken: tasklist_lock (process
//   table), objects_lock (object table), pins_lock (pin registry), zone lock,
//   resource_lock, the event log's lock, Hmm::lock.
//
//   Under the controlled scheduler (impl/sched.h; the table of yield points
//   is in impl/README.md) an actor parks only holding quiesce (shared), its
//   mmap_lock(s), page locks (a migration, collect to finalize) and, in the
//   notifier's mirror loop, mirrors_sem (shared); so exactly those are taken
//   at yield points wherever an actor may take them (MmapReadLock,
//   MmapWriteLock, MmapLockGuard, LockPage's wait, the "quiesce" and
//   "mirrors_sem_write" points), and no yield point is reached while a lock
//   of 2b..5, 4a..4d or a leaf is held.
//
//   A Process is shared_ptr-owned: an operation looks it up under
//   tasklist_lock, drops that lock, then takes its mmap_lock and checks
//   `exited` (as the kernel's mmget_not_zero()). Exit unlinks the process
//   first, then tears its mm down under the write lock. A migration's walk
//   over other processes' mappings (the rmap walk, impl/migrate_rmap.cc)
//   holds their shared_ptrs and only their ptls.
//
// Invariants:
//   1. procs.size() + forks_in_flight <= kMaxProcesses.
//   2. Every page a PTE maps (the zero page aside) holds one reference and one
//      mapcount for that PTE; see impl/page.h for the full count.
//   3. pins[id] holds one reference on each of its pages.
//   4. Every device-private entry names a populated page of a live devmem
//      and holds one reference and one mapcount on it (impl/devmem.h).
//   4'. A migration entry exists only while its migration runs: it names a
//      page that migration has locked and holds a reference to.
//   5. Every devmem has its device resource, and the resources are disjoint
//      (impl/resource.h).
//   6. mirrors.size() <= kMaxMirrors; the mirror and range tables agree with
//      the per-process Hmm lists (impl/mirror.h invariants 1, 2, 4).

#ifndef HMMREF_IMPL_KERNEL_STATE_H_
#define HMMREF_IMPL_KERNEL_STATE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <utility>
#include <vector>

#include "impl/copy_engine.h"
#include "impl/devmem.h"
#include "impl/kernel.h"
#include "impl/mirror.h"
#include "impl/page.h"
#include "impl/page_table.h"
#include "impl/resource.h"
#include "impl/sched.h"
#include "impl/shmem.h"
#include "impl/vma.h"
#include "model/types.h"

namespace hmm::impl {

// One address space (struct mm_struct) of one process.
struct Process {
  mutable std::shared_mutex mmap_lock;
  bool exited = false;   // guarded by mmap_lock (set in write mode by Exit)
  VmaTree vmas;          // guarded by mmap_lock
  mutable std::mutex ptl;
  PageTable pgtable;     // guarded by ptl
  // Mirroring (impl/mirror.h): made by the first HmmMirrorRegister, kept
  // until the Process goes. Set under mmap_lock (write) and ptl, so either
  // guards a read (a migration's rmap walk reads it under the ptl).
  std::shared_ptr<Hmm> hmm;
};

class KernelState {
 public:
  explicit KernelState(const Config& c)
      : config(c),
        pages(c.ram_pages),
        resources(c.ram_pages * kPageSize),
        copy_engine(std::make_unique<SyncCopyEngine>(pages, devmems_lock, devmems)) {}

  const Config config;
  PageArray pages;
  mutable std::shared_mutex quiesce;

  mutable std::shared_mutex tasklist_lock;
  std::map<uint64_t, std::shared_ptr<Process>> procs;  // guarded by tasklist_lock
  uint64_t next_pid = 1;                                // guarded by tasklist_lock
  uint64_t forks_in_flight = 0;                         // guarded by tasklist_lock

  mutable std::mutex objects_lock;
  std::map<uint64_t, std::shared_ptr<ShmemObject>> objects;  // guarded by objects_lock
  uint64_t next_object = 1;                                   // guarded by objects_lock

  mutable std::mutex pins_lock;
  std::map<uint64_t, std::vector<uint64_t>> pins;  // guarded by pins_lock
  uint64_t next_pin = 1;                           // guarded by pins_lock

  mutable std::shared_mutex devmems_lock;
  DevmemTable devmems;  // guarded by devmems_lock

  mutable std::mutex resource_lock;
  ResourceTree resources;  // guarded by resource_lock

  DeviceEventLog events;  // its own leaf lock

  // The dummy device's copy engine (impl/copy_engine.h); thread-safe.
  std::unique_ptr<CopyEngine> copy_engine;

  // Mirroring (impl/mirror.h): the id tables of registered mirrors and open
  // public ranges.
  mutable std::mutex mirrors_lock;
  std::map<uint64_t, std::shared_ptr<Mirror>> mirrors;  // guarded by mirrors_lock
  std::map<uint64_t, std::shared_ptr<HmmRange>> ranges;  // guarded by mirrors_lock
  uint64_t next_mirror = 1;                              // guarded by mirrors_lock
  uint64_t next_range = 1;                               // guarded by mirrors_lock

  // The device-access observer (Kernel::SetDeviceAccessObserver,
  // device_access.cc): the flag is the fast path's one relaxed load; the
  // function is swapped whole under its leaf lock and called outside it.
  using AccessObserver = std::function<void(const DeviceAccessHazard&)>;
  std::atomic<bool> has_access_observer{false};
  mutable std::mutex access_observer_lock;
  std::shared_ptr<const AccessObserver> access_observer;  // guarded by access_observer_lock

  // The live process with this pid, or nullptr. Takes tasklist_lock.
  std::shared_ptr<Process> FindProcess(Pid pid) const;
  // Every live process with its pid, ascending. Takes tasklist_lock.
  std::vector<std::pair<uint64_t, std::shared_ptr<Process>>> SnapshotProcs() const;
};

// Looks up a pid and holds its mmap_lock (write or read) for the guard's
// life; proc() is nullptr when the pid is not live (the caller returns kSrch).
class MmapLockGuard {
 public:
  enum Mode { kRead, kWrite };
  MmapLockGuard(const KernelState& ks, Pid pid, Mode mode);
  ~MmapLockGuard();
  MmapLockGuard(const MmapLockGuard&) = delete;
  MmapLockGuard& operator=(const MmapLockGuard&) = delete;

  Process* proc() const { return live_ ? proc_.get() : nullptr; }
  // The same, owned (a mirror keeps its mm).
  std::shared_ptr<Process> shared() const { return live_ ? proc_ : nullptr; }

 private:
  std::shared_ptr<Process> proc_;
  Mode mode_;
  bool live_ = false;
};

// Mirrors: include/linux/mmap_lock.h mmap_read_lock(), mmap_write_lock(),
// each at its yield point (impl/sched.h; impl/README.md, "Yield points"):
// every actor takes the mmap_lock through these, since an operation holds it
// across its other yield points.
inline std::shared_lock<std::shared_mutex> MmapReadLock(const Process& p) {
  sched::LockSharedAt("mmap_read_lock", p.mmap_lock);
  return std::shared_lock<std::shared_mutex>(p.mmap_lock, std::adopt_lock);
}
inline std::unique_lock<std::shared_mutex> MmapWriteLock(const Process& p) {
  sched::LockAt("mmap_write_lock", p.mmap_lock);
  return std::unique_lock<std::shared_mutex>(p.mmap_lock, std::adopt_lock);
}

// --- Address arithmetic shared by the guard ladders (docs/model.md) ---

// Mirrors: include/linux/mm.h PAGE_ALIGN(); wraps to 0 past 2^64 as it does.
constexpr uint64_t PageAlign(uint64_t x) { return (x + kPageSize - 1) & kPageMask; }
// "Overflows": [addr, addr + len) ends past kTaskSize or wraps.
constexpr bool RangeOverflows(uint64_t addr, uint64_t len) {
  return len > kTaskSize || addr > kTaskSize - len;
}
constexpr uint64_t AddrVpn(uint64_t addr) { return addr >> kPageShift; }

// --- mmap.cc ---

// Mirrors: mm/memory.c unmap_page_range() -> zap_pte_range(): clears every
// leaf in [start, end), dropping each PTE's mapcount and reference (unless
// leak_refs: the kMunmapLeaksRef defect). REQUIRES: mmap_lock (write).
void ZapPageRange(KernelState& ks, Process& p, uint64_t start, uint64_t end, bool leak_refs);
// Mirrors: mm/mmap.c do_vmi_munmap(): splits at start and end, zaps the PTEs,
// frees empty tables and removes the VMAs in [start, end).
// REQUIRES: mmap_lock (write); start, end page aligned.
void DoMunmap(KernelState& ks, Process& p, uint64_t start, uint64_t end, bool leak_refs = false);
// Mirrors: mm/mmap.c remove_vma(): drops the VMA's hold on its object.
void RemoveVma(KernelState& ks, Vma& vma);

// --- fault.cc ---

// Mirrors: mm/memory.c handle_mm_fault() for the page at addr in vma, then
// mm/gup.c follow_page_pte(FOLL_GET): returns the pfn mapped there once the
// fault is resolved, with one reference for the caller (none for the zero
// page). Returns kNoMem when an allocation fails. A device-private entry runs
// its region's fault callback (logged), then migrate_to_ram
// (impl/migrate.h MigrateToRam) brings the page back and the fault goes on
// on the system page; kFault (SIGBUS) when it could not (RAM full), the entry
// unchanged. A migration entry is waited for. REQUIRES: mmap_lock (read) of
// process `pid`, no other lock; vma contains addr, page-aligned, and allows
// the access.
Result<uint64_t> FaultInPage(KernelState& ks, Process& p, Pid pid, const Vma& vma,
                             uint64_t addr, bool write);
// One round of it: *again when the round only waited or acted (a migration
// waited for, a COW copy tried, a device page migrated back), holding nothing
// and returning no page: the caller decides anew whether to fault, as
// hmm_range_fault() walks again after handle_mm_fault() (6.1 mm/hmm.c
// hmm_vma_fault() -> -EBUSY). Else as FaultInPage.
Result<uint64_t> FaultInPageRound(KernelState& ks, Process& p, Pid pid, const Vma& vma,
                                  uint64_t addr, bool write, bool* again);

// --- fork.cc ---

// Mirrors: kernel/fork.c dup_mmap(): fills the empty child from the parent;
// on kNoMem leaves both as they were. REQUIRES: both mmap_locks (write).
Errno DupMmap(KernelState& ks, Process& parent, Process& child);

// --- device_entry.cc (device-private entries, docs/devmem.md) ---

// Mirrors: include/linux/swapops.h make_device_private_entry_read(): a write
// entry made read; any other entry unchanged.
pte_t DeviceEntryMakeRead(pte_t e);
// Mirrors: mm/memory.c zap_pte_range()'s device-private branch: clears the
// entry, then drops its mapcount (page_remove_rmap()) and, unless leak_refs,
// its reference; the put that frees the page logs page_free.
// REQUIRES: ptl; *ptep a device-private entry.
void ZapDeviceEntry(KernelState& ks, pte_t* ptep, bool leak_refs);
// Mirrors: mm/memory.c copy_one_pte()'s device-private branch: the child's
// copy of *src, +1 refcount and +1 mapcount; a write entry becomes read in
// parent and child (a private VMA is a COW mapping). REQUIRES: both ptls;
// *src a device-private entry.
pte_t CopyDeviceEntry(KernelState& ks, pte_t* src);
// Mirrors: mm/memory.c do_swap_page()'s device-private branch up to
// pgmap->ops->migrate_to_ram(): runs the region's fault callback (logged) and
// sets *owner to the region's device, for the migration back that follows
// once the ptl is dropped. kFault when no live region holds the page (never,
// by invariant 4). REQUIRES: ptl; e a device-private entry; addr page-aligned.
Errno DeviceEntryFault(KernelState& ks, Pid pid, uint64_t addr, pte_t e, DeviceId* owner);

// --- Non-present entries: device-private and migration entries (pte.h) ---

constexpr unsigned SwpType(pte_t e) {
  return static_cast<unsigned>((e & kSwpTypeMask) >> kSwpTypeShift);
}
// Mirrors: include/linux/swapops.h is_migration_entry().
constexpr bool IsMigrationEntry(pte_t e) {
  return !PtePresent(e) && e != 0 &&
         (SwpType(e) == kSwpMigrationRead || SwpType(e) == kSwpMigrationWrite);
}
// Mirrors: include/linux/swapops.h is_device_private_entry().
constexpr bool IsDeviceEntry(pte_t e) {
  return !PtePresent(e) && e != 0 &&
         (SwpType(e) == kSwpDeviceRead || SwpType(e) == kSwpDeviceWrite);
}
// The write bit of a migration or device-private entry (is_writable_*_entry()).
constexpr bool SwpEntryWrite(pte_t e) {
  return SwpType(e) == kSwpMigrationWrite || SwpType(e) == kSwpDeviceWrite;
}
// The page of a swap-format entry (swp_offset(): the pfn, for both kinds).
constexpr uint64_t SwpEntryPfn(pte_t e) { return (e & kSwpOffsetMask) >> kSwpOffsetShift; }
// Mirrors: include/linux/swapops.h make_writable_migration_entry(),
// make_readable_migration_entry() + swp_entry_to_pte().
constexpr pte_t MakeMigrationEntry(uint64_t pfn, bool write) {
  return MakeSwapPte(write ? kSwpMigrationWrite : kSwpMigrationRead, pfn);
}
// Mirrors: include/linux/swapops.h make_device_private_entry() + swp_entry_to_pte().
constexpr pte_t MakeDeviceEntry(uint64_t pfn, bool write) {
  return MakeSwapPte(write ? kSwpDeviceWrite : kSwpDeviceRead, pfn);
}
// The present PTE of a mapped RAM page: accessed, dirty iff writable (as a
// fault or a migration installs it).
constexpr pte_t MakePagePte(uint64_t pfn, bool write) {
  return MakePresentPte(pfn, write, /*dirty=*/write, /*accessed=*/true, /*special=*/false);
}

// --- hmm_devmem.cc ---

// Mirrors: mm/hmm.c hmm_devmem_add(): the body of HmmDevmemAdd (Errnos
// included), for the dummy device's own chunks too (dmirror_chunk).
// REQUIRES: no lock below quiesce but mmap_locks and page locks.
Result<uint64_t> DevmemAdd(KernelState& ks, DeviceId device, uint64_t size, bool dmirror_chunk);
// Mirrors: mm/hmm.c hmm_devmem_remove(): the body of HmmDevmemRemove.
Errno DevmemRemove(KernelState& ks, uint64_t devmem_id);

}  // namespace hmm::impl

#endif  // HMMREF_IMPL_KERNEL_STATE_H_
