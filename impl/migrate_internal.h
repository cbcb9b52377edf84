// File: impl/migrate_internal.h
//
// What the migration files share (impl/migrate.h has the design): the state
// of one call in flight (MigrationCall), its phases, and the entry points
// the fault path and the dummy device use. Internal to impl/.
//
// A MigrationCall is one migrate_vma call (a process, a VMA, [start, end))
// or one batch of the dummy device's eviction (DmirrorRelease: device pfns,
// no process, like 6.1's migrate_device_range()). Its src/dst arrays hold
// the driver-visible flags; `slots` what only the core needs.
//
// Where migration entries live: at the collect addresses of the call's
// process (slot kSlotAtCollect: known without a walk, and fixed there since
// the process's mmap_lock is held), and in the processes the unmap phase
// reached (`touched`), anywhere in their tables (their own mremap may move
// them, their munmap or exit zap them, their mprotect downgrade them; fork
// waits until they are gone). Finalize and every restore visit exactly those.

#ifndef HMMREF_IMPL_MIGRATE_INTERNAL_H_
#define HMMREF_IMPL_MIGRATE_INTERNAL_H_

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "impl/kernel_state.h"
#include "impl/migrate.h"
#include "impl/mirror.h"

namespace hmm::impl {

// Per entry, beside src/dst.
enum MigrateSlot : uint8_t {
  kSlotAtCollect = 1u << 0,  // collect made this address's entry a migration entry
  kSlotShmem = 1u << 1,      // the source is a shmem page (its object holds it)
};

struct MigrationCall {
  explicit MigrationCall(KernelState& k) : ks(k) {}

  KernelState& ks;
  Process* proc = nullptr;   // the collecting process (mmap_lock read held); null: eviction
  Hmm* hmm = nullptr;        // proc's
  const Vma* vma = nullptr;  // proc's VMA holding the range
  uint64_t start = 0;        // address of entry 0 (proc only)
  DeviceId owner;            // pgmap_owner
  uint64_t npages = 0;
  uint64_t* src = nullptr;   // npages entries
  uint64_t* dst = nullptr;   // npages entries
  std::vector<uint8_t> slots;  // MigrateSlot bits
  // Processes whose tables the unmap phase gave migration entries.
  std::vector<std::shared_ptr<Process>> touched;

  uint64_t Vpn(uint64_t i) const { return AddrVpn(start) + i; }
};

// A RAM pfn (else a device pfn; the zero page never appears in the arrays).
inline bool IsRamPfn(const KernelState& ks, uint64_t pfn) { return pfn < ks.pages.ram_pages(); }

// --- migrate_rmap.cc ---

// Old page -> new page for remove_migration_ptes(): every migration entry
// naming old_pfn becomes an entry for new_pfn with its write bit.
struct Replacement {
  uint64_t old_pfn = 0;
  uint64_t new_pfn = 0;
  uint64_t index = 0;  // the entry of the call
};

// Mirrors: mm/migrate_device.c migrate_device_unmap()'s try_to_migrate():
// every other mapping of each locked, migrating page becomes a migration
// entry, its process's mirrors told at those addresses first. REQUIRES: the
// call's page locks; no ptl.
void UnmapOthers(MigrationCall& c);
// Mirrors: migrate_device_unmap()'s page_mapped() || !migrate_vma_check_page()
// and its restore loop: a page still mapped, or a pinned system page, loses
// kMigratePfnMigrate and kMigratePfnLocked, gets its entries back, is
// unlocked and its collect reference dropped.
void CheckPinsAndRestore(MigrationCall& c);
// Mirrors: mm/migrate.c remove_migration_ptes() for each replacement, at the
// call's collect addresses and in every touched process. `restore_defect`:
// finalize (the kMigrateLeavesMigrationEntry defect skips restores there).
// REQUIRES: the call's page locks; no ptl.
void RemoveMigrationPtes(MigrationCall& c, const std::vector<Replacement>& reps,
                         bool in_finalize);
// Puts the collect reference of entry i's page (system or device).
// REQUIRES: no ptl (a device page's put may take its region lock).
void PutCollectRef(MigrationCall& c, uint64_t i);

// --- migrate_pages.cc ---

// Mirrors: mm/migrate_device.c migrate_vma_pages().
void MigratePages(MigrationCall& c);
// Mirrors: mm/migrate_device.c migrate_vma_finalize().
void Finalize(MigrationCall& c);

// The start/end brackets of an invalidation over a set of vpns (ascending),
// one per run of consecutive vpns.
class NotifyVpns {
 public:
  NotifyVpns(KernelState& ks, Hmm* hmm, const std::vector<uint64_t>& vpns);
  ~NotifyVpns();
  NotifyVpns(const NotifyVpns&) = delete;
  NotifyVpns& operator=(const NotifyVpns&) = delete;

 private:
  KernelState& ks_;
  Hmm* const hmm_;
  std::vector<std::pair<uint64_t, uint64_t>> runs_;  // addresses [start, end)
};

// --- migrate_driver.cc ---

// Mirrors: 6.1 lib/test_hmm.c dmirror_devmem_fault() (pgmap->ops->migrate_to_ram):
// migrates the device page pfn mapped at addr back to a new system page,
// with all its mappings. kOk when the caller should retry the access (the
// page moved, or something else changed the entry meanwhile); kFault when it
// could not move for want of RAM. REQUIRES: p's mmap_lock (read); no other lock.
Errno MigrateToRam(KernelState& ks, Process& p, Pid pid, uint64_t addr, uint64_t pfn,
                   DeviceId owner);

// --- dmirror_migrate.cc / dmirror_release.cc ---

// Mirrors: 6.1 lib/test_hmm.c dmirror_devmem_alloc_page() with the later
// FLAGS ioctl: kDmirrorFlagFailAlloc fails it once; else the lowest free page
// of m's device's regions in id order; else a new chunk's first page. Its dst
// entry (held, locked), or 0. REQUIRES: no ptl, no devmem lock.
uint64_t DmirrorAllocDeviceDst(KernelState& ks, Mirror& m);
// Mirrors: 6.1 lib/test_hmm.c dmirror_device_evict_chunk() over every chunk,
// then dmirror_device_remove_chunks() for the unused driver chunks. kNoMem
// when RAM ran out (the rest stays). REQUIRES: quiesce shared; no other lock.
Errno DmirrorEvict(KernelState& ks, DeviceId device);

}  // namespace hmm::impl

#endif  // HMMREF_IMPL_MIGRATE_INTERNAL_H_
