// File: impl/migrate.h
//
// migrate_vma (docs/migrate.md): the core that moves the pages of one VMA's
// range between system memory and device-private memory with a driver's two
// callbacks, as the seed's single call migrate_vma(ops, vma, start, end, src,
// dst, private) with 6.1's selection arguments (struct migrate_vma's flags
// and pgmap_owner, and fault_page). Also the pieces a driver's callbacks use
// to allocate and fill destination pages.
//
// How it works (mm/migrate_device.c, 4.14 mm/migrate.c migrate_vma()):
//   1. collect (migrate.cc), inside one mmu-notifier bracket over the range
//      that skips the owner device's mirrors (default profile): under the
//      process's ptl, each selected page gets a reference and, if its lock
//      can be taken at once (trylock_page(), the 4.14 fast path), its entry
//      becomes a migration entry (impl/kernel_state.h) with the old write
//      bit, its mapcount and the entry's reference gone;
//   2. prepare (migrate.cc): pages collect could not lock are tried again
//      (v18: locked blocking when the call holds no other page lock);
//   3. unmap (migrate_rmap.cc): a page still mapped elsewhere (mapcount > 0:
//      other processes after fork, other addresses of a shmem object) is
//      found by an rmap-like walk over every process's page table under its
//      ptl; each mapping becomes a migration entry, after its process's
//      mirrors are told at that address. Then the pin check: a system page
//      with references beyond the collect's (and its shmem object's) is
//      pinned, and a page still mapped fails; both get their entries back;
//   4. the driver's alloc_and_copy;
//   5. pages (migrate_pages.cc): empty slots get the new page inserted, the
//      struct page moves (a shmem page's object now holds the new page),
//      inside a bracket over the addresses that change that reaches every
//      mirror (the owner's too);
//   6. the driver's finalize_and_map;
//   7. finalize (migrate_pages.cc): every migration entry becomes an entry
//      for the new page (moved) or the old (not), same write bit; pages are
//      unlocked and the collect's and the driver's references dropped.
//
// Thread safety
//   Locks (impl/kernel_state.h, 2p): the process's mmap_lock (read) for the
//   whole call; the collected pages' locks from collect to finalize, taken
//   by trylock under the ptl; below them, one ptl at a time, the notifier's
//   locks, shmem and devmem locks. The callbacks run with those page locks
//   and the mmap_lock held, and no other lock: they may take update_locks,
//   devmem locks and the zone lock, never a page lock other than trylock of
//   their own fresh pages, and never call a Kernel method.

#ifndef HMMREF_IMPL_MIGRATE_H_
#define HMMREF_IMPL_MIGRATE_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "impl/copy_engine.h"
#include "model/types.h"

namespace hmm::impl {

class Kernel;
class KernelState;
struct Process;

// Mirrors: 6.1 include/linux/migrate.h struct migrate_vma (the vma named by
// pid and start). src/dst entries are hmm::kMigratePfn* flags |
// physical pfn << kMigratePfnShift: a RAM pfn (below ram_pages) or a device pfn.
struct MigrateVmaArgs {
  Pid pid;
  uint64_t start = 0;       // address, page aligned
  uint64_t end = 0;         // address, exclusive
  uint32_t select = 0;      // kMigrateVmaSelect*
  DeviceId owner;           // pgmap_owner
  uint64_t fault_page = 0;  // the CPU fault path's device pfn, 0 if none
  std::vector<uint64_t> src;  // one per page of [start, end), by MigrateVma
  std::vector<uint64_t> dst;  // by alloc_and_copy, where src has kMigratePfnMigrate
  uint64_t cpages = 0;        // entries collected
};

// Mirrors: 4.14 include/linux/migrate.h struct migrate_vma_ops. Neither may
// resize src or dst; alloc_and_copy writes dst only, finalize_and_map neither.
struct MigrateVmaOps {
  std::function<void(MigrateVmaArgs&)> alloc_and_copy;
  std::function<void(const MigrateVmaArgs&)> finalize_and_map;
};

// Mirrors: 4.14 mm/migrate.c migrate_vma() with 6.1's migrate_vma_setup()
// guards: kSrch (pid), kInval (range, VMA, select) in docs/migrate.md's order,
// else kOk however many pages moved. Takes the pid's mmap_lock (read).
// REQUIRES: quiesce held shared; no other lock.
Errno MigrateVma(KernelState& ks, const MigrateVmaOps& ops, MigrateVmaArgs* args);
// The same under the caller's mmap_lock (read) of p, the process of
// args->pid (the dummy device's loop, the fault path): the pid guard is the
// caller's. REQUIRES: that mmap_lock; no other lock.
Errno MigrateVmaLocked(KernelState& ks, Process& p, const MigrateVmaOps& ops,
                       MigrateVmaArgs* args);
// The same on a whole Kernel, quiesce included (tests, and props/ when it
// drives migrate_vma itself).
Errno MigrateVma(Kernel& k, const MigrateVmaOps& ops, MigrateVmaArgs* args);
// The state behind a Kernel, for the drivers' helpers below.
KernelState& StateOf(Kernel& k);

// --- For a driver's callbacks (they run inside MigrateVma) ---

// A destination system page: allocated without zeroing (the driver fills it
// whole), locked, holding the driver's reference; its dst entry
// (MigratePfn | kMigratePfnLocked), or 0 when RAM is full.
uint64_t MigrateAllocSystemDst(KernelState& ks);
// A destination device page of region devmem: its lowest free page, held by
// the driver, locked, reading as zeros; its dst entry, or 0 when the region
// is full or not live.
uint64_t MigrateAllocDeviceDst(KernelState& ks, uint64_t devmem);
// The page an entry (src or dst, kMigratePfnValid) names, for a copy batch.
PageRef MigratePageRef(const KernelState& ks, uint64_t entry);
// The dummy device's copy engine (impl/copy_engine.h).
CopyEngine& MigrateCopyEngine(KernelState& ks);

}  // namespace hmm::impl

#endif  // HMMREF_IMPL_MIGRATE_H_
