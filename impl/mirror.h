// File: impl/mirror.h
//
// Address-space mirroring (docs/mirror.md): the per-mm `Hmm` (4.14 mm/hmm.c
// struct hmm: the mirror list and the list of open ranges), the `Mirror` (one
// open dummy-device file, lib/test_hmm.c struct dmirror, with its
// struct hmm_mirror), the `HmmRange` (4.14 include/linux/hmm.h struct
// hmm_range), and the internal entry points the operation files share: the
// mmu notifier (mmu_notifier.cc), the page-table walks (hmm_walk.cc), the
// range registry (hmm_mirror.cc) and the dummy device's pieces (dmirror.cc).
//
// Representation
//   A mirror's device page table `pt` reuses impl/page_table.h with the
//   impl/pte.h encoding: a RAM or zero-page target is a present entry (the
//   zero page's is pte_special), a device target a device-private entry
//   whose offset is the device pfn; the write bit is the device's write
//   permission. Like the kernel's xarray of struct page pointers it holds no
//   page reference and no mapcount. Ranges hold hmm_pfn_t values:
//   pfn << kHmmPfnShift | kHmmPfn* flags.
//
//   An `internal` range is a walk of the dummy device (6.1's
//   dmirror_range_fault() / dmirror_range_snapshot() with their interval
//   notifier): it is marked like any range so that the driver can retry, but
//   it has no id, no entries the notifier zeroes, and it is not in Ranges().
//
// Thread safety (the full order is in impl/kernel_state.h)
//   Hmm::mirrors_sem guards Hmm::mirrors: shared by the notifier while it
//     calls the mirrors, exclusive by register and unregister (so after
//     unregister returns no callback reaches the mirror: invariant 20).
//   Mirror::update_lock is the driver's mutex ("device page-table update
//     lock"): it guards `pt`; the invalidate callback and every commit and
//     copy take it. Taken under mirrors_sem, or under a migration's page
//     locks (its notifier and driver callbacks); never with a ptl held;
//     under it a thread only tries page locks (a copy backs off while a
//     migration holds one) and may take devmems_lock. `flags` is atomic.
//   Hmm::lock guards Hmm::ranges, each registered range's `valid` and `pfns`,
//     and Hmm::active. A leaf: taken under a ptl (a walk fills entries),
//     under update_lock (commit) or under KernelState::mirrors_lock (range
//     registration), and nothing is taken under it.
//   KernelState::mirrors_lock guards the id tables and each Mirror's
//     `registered` and `nr_ranges`; under it only Hmm::lock is taken.
//
// Invariants:
//   1. A Mirror is in KernelState::mirrors iff `registered`, iff it is on its
//      Hmm's `mirrors` list.
//   2. A public range (id != 0) is in KernelState::ranges iff it is on its
//      mirror's Hmm's `ranges` list; its mirror is registered and counts it
//      in nr_ranges; `pfns` has end - start entries.
//   3. `valid` only goes from true to false. An invalidation of [s, e) that
//      began before a range's registration and had not ended then (default
//      profile) leaves it registered invalid (Hmm::active).
//   4. With no operation in flight, no internal range is registered and
//      Hmm::active is empty.

#ifndef HMMREF_IMPL_MIRROR_H_
#define HMMREF_IMPL_MIRROR_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "impl/page_table.h"
#include "impl/pte.h"
#include "impl/sched.h"
#include "model/types.h"

namespace hmm::impl {

class KernelState;
struct Process;
struct Vma;
struct Mirror;
struct HmmRange;

// Mirrors: 4.14 mm/hmm.c struct hmm: one per mm, made on first registration.
struct Hmm {
  mutable std::shared_mutex mirrors_sem;
  std::vector<Mirror*> mirrors;  // guarded by mirrors_sem

  mutable std::mutex lock;
  std::vector<HmmRange*> ranges;  // guarded by lock; public and internal
  // Invalidations between range_start and range_end (vpn intervals, a
  // multiset); default profile only. Guarded by lock.
  std::vector<std::pair<uint64_t, uint64_t>> active;
};

// One open dummy-device file: lib/test_hmm.c struct dmirror with its
// struct hmm_mirror (4.14 include/linux/hmm.h).
struct Mirror {
  Mirror(uint64_t id, DeviceId device, Pid pid, std::shared_ptr<Process> proc,
         std::shared_ptr<Hmm> hmm)
      : id(id), device(device), pid(pid), proc(std::move(proc)), hmm(std::move(hmm)) {}

  const uint64_t id;
  const DeviceId device;
  const Pid pid;
  const std::shared_ptr<Process> proc;  // the mm, kept (not its pages) as mmgrab() does
  const std::shared_ptr<Hmm> hmm;

  mutable std::mutex update_lock;
  PageTable pt;  // guarded by update_lock
  // HMM_DMIRROR_FLAGS (kDmirrorFlagFailAlloc); the driver's allocations
  // test-and-clear it (docs/migrate.md).
  std::atomic<uint64_t> flags{0};

  bool registered = true;  // guarded by KernelState::mirrors_lock
  uint64_t nr_ranges = 0;  // public ranges open; guarded by KernelState::mirrors_lock
};

// Mirrors: 4.14 include/linux/hmm.h struct hmm_range.
struct HmmRange {
  HmmRange(std::shared_ptr<Mirror> mirror, uint64_t start, uint64_t end, bool internal)
      : internal(internal), mirror(std::move(mirror)), start(start), end(end) {}

  const bool internal;  // a dummy-device walk: no id, no entries (impl/mirror.h)
  uint64_t id = 0;      // public only; guarded by KernelState::mirrors_lock
  const std::shared_ptr<Mirror> mirror;  // public only
  const uint64_t start;  // vpn
  const uint64_t end;    // vpn, exclusive
  bool valid = true;     // guarded by the Hmm's lock while registered
  std::unique_ptr<uint64_t[]> pfns;  // public only; guarded by the Hmm's lock while registered

  uint64_t npages() const { return end - start; }
};

// docs/mirror.md's range arguments: is [addr, addr + npages pages) not an
// aligned, non-empty range ending at or below kTaskSize?
constexpr bool BadPageRange(uint64_t addr, uint64_t npages) {
  return (addr & (kPageSize - 1)) != 0 || npages == 0 || npages > kMaxVpn ||
         addr > kTaskSize - (npages << kPageShift);
}

// --- mmu_notifier.cc ---

// Mirrors: include/linux/mmu_notifier.h mmu_notifier_invalidate_range_start()
// and _end() with 4.14 mm/hmm.c's notifier behind them: for every mirror of
// p, the dummy device's invalidate (erase pt in [start, end)), and every open
// range of p overlapping it marked invalid, its overlap zeroed. Default
// profile: at start (the upstream fix); v18: at end (the seed). Start ends
// at the yield point "invalidate_start_done", end begins at "pte_changed"
// (impl/README.md, "Yield points").
// REQUIRES: p's mmap_lock (read or write); no ptl or shmem lock;
// start < end, page-aligned addresses.
void MmuNotifierInvalidateRangeStart(KernelState& ks, Process& p, uint64_t start, uint64_t end);
void MmuNotifierInvalidateRangeEnd(KernelState& ks, Process& p, uint64_t start, uint64_t end);

// 6.1 mmu_notifier_range_init_owner(MMU_NOTIFY_MIGRATE, owner): when `skip`,
// the invalidation passes over the mirrors of device `device` and their
// public ranges (docs/migrate.md: the owner's mirrors are invalidated later,
// where entries change). Internal ranges (walks) are always marked. Ignored
// under profile v18 (the seed had no owner).
struct NotifyOwner {
  bool skip = false;
  DeviceId device;
};

// The same for an Hmm reached without its mm's mmap_lock: a migration's rmap
// walk (impl/migrate.h), which read the pointer under the mm's ptl. A null
// hmm (no mirror ever registered) is a no-op. REQUIRES: no ptl or shmem
// lock; page locks may be held (impl/kernel_state.h).
void HmmInvalidateStart(KernelState& ks, Hmm* hmm, uint64_t start, uint64_t end,
                        const NotifyOwner& owner);
void HmmInvalidateEnd(KernelState& ks, Hmm* hmm, uint64_t start, uint64_t end,
                      const NotifyOwner& owner);

// The start/end bracket around one CPU page-table change (struct
// mmu_notifier_range). Same REQUIRES as the functions above, for its life.
// The end runs in the destructor, so its yield points never throw
// (sched::NoThrowScope).
class MmuNotifierRange {
 public:
  MmuNotifierRange(KernelState& ks, Process& p, uint64_t start, uint64_t end)
      : ks_(ks), p_(p), start_(start), end_(end) {
    if (start_ < end_) MmuNotifierInvalidateRangeStart(ks_, p_, start_, end_);
  }
  ~MmuNotifierRange() {
    sched::NoThrowScope nothrow;
    if (start_ < end_) MmuNotifierInvalidateRangeEnd(ks_, p_, start_, end_);
  }
  MmuNotifierRange(const MmuNotifierRange&) = delete;
  MmuNotifierRange& operator=(const MmuNotifierRange&) = delete;

 private:
  KernelState& ks_;
  Process& p_;
  const uint64_t start_, end_;
};

// --- hmm_mirror.cc (the range registry) ---

// Mirrors: 4.14 mm/hmm.c hmm_vma_get_pfns()'s registration: puts r on its
// Hmm's list, valid unless an overlapping invalidation is in flight.
// REQUIRES: Hmm::lock.
void HmmRangeLinkLocked(Hmm& hmm, HmmRange* r);
// Mirrors: 4.14 mm/hmm.c hmm_vma_range_done() for an internal range: takes r
// off the list and returns its valid flag.
bool HmmRangeUnlinkInternal(Hmm& hmm, HmmRange* r);
// Mirrors: 6.1 mm/mmu_notifier.c mmu_interval_read_begin()'s wait: returns
// once no invalidation overlapping [start, end) (vpns) is between its start
// and its end (Hmm::active; default profile only, v18 keeps none). A waiter
// spins at "interval_read_begin" (impl/sched.h SpinYield), so a walk retried
// under the controlled scheduler waits for the invalidator instead of
// livelocking. REQUIRES: no lock but quiesce.
void HmmWaitInvalidations(Hmm& hmm, uint64_t start, uint64_t end);
// The public range with this id, or nullptr. Takes mirrors_lock.
std::shared_ptr<HmmRange> FindRange(const KernelState& ks, uint64_t id);
// The registered mirror with this id, or nullptr. Takes mirrors_lock.
std::shared_ptr<Mirror> FindMirror(const KernelState& ks, uint64_t id);
// Mirrors: 4.14 mm/hmm.c hmm_vma_range_done(): unregisters the public range
// and returns its valid flag; kNoEnt when it is not registered.
Result<bool> HmmRangeDone(KernelState& ks, uint64_t id);

// --- hmm_walk.cc (the page-table walks) ---

// How a walk treats what it finds: 4.14 hmm_vma_get_pfns()/hmm_vma_fault(),
// or (owner set) 6.1 hmm_range_fault() with dev_private_owner = owner.
struct HmmWalkMode {
  bool write = false;  // ask for write
  bool has_owner = false;
  DeviceId owner;
};

// Mirrors: 4.14 mm/hmm.c hmm_vma_walk_pmd() without faulting: out[i] = the
// entry of vpn start + i by the entry rules, leaf table by leaf table.
// REQUIRES: p's mmap_lock and ptl; [start, end) inside one VMA, whose
// PROT_READ is `vma_read`.
void HmmVmaWalkSnapshot(const Process& p, uint64_t start, uint64_t end, bool vma_read,
                        uint64_t* out);
// Mirrors: 4.14 mm/hmm.c hmm_vma_fault() (mode without owner) or 6.1
// hmm_range_fault() with fault flags (owner set): for each page ascending,
// faults what is needed (through FaultInPage, so a COW break notifies), then
// fills out[i] by the entry rules. On error out[i] is kHmmPfnError and the
// rest 0. `lock` guards out (the Hmm's lock of a public range) or is null.
// REQUIRES: p's mmap_lock (read); no ptl.
Errno HmmRangeFaultWalk(KernelState& ks, Process& p, Pid pid, uint64_t start, uint64_t end,
                        const HmmWalkMode& mode, uint64_t* out, std::mutex* lock);
// Mirrors: 6.1 lib/test_hmm.c dmirror_range_snapshot()'s walk (hmm_range_fault()
// without fault flags) and dmirror_mkentry(): one HMM_DMIRROR_PROT_* byte per
// page. REQUIRES: p's mmap_lock; no ptl.
void DmirrorSnapshotWalk(KernelState& ks, Process& p, uint64_t start, uint64_t end,
                         DeviceId owner, uint8_t* out);

// --- dmirror.cc ---

// Mirrors: 6.1 lib/test_hmm.c dmirror_do_update(): erases pt in [start, end)
// (vpns). REQUIRES: m.update_lock.
void DmirrorInvalidateLocked(Mirror& m, uint64_t start, uint64_t end);

// Mirrors: 6.1 lib/test_hmm.c dmirror_do_read() (write false) and
// dmirror_do_write() (write true) under the driver's mutex: copies pages
// from vpn `from` on while pt maps them (with write, for a write), each
// under its target's page lock; returns how many it copied. A target whose
// page lock is taken (a migration holds it) ends a round: the update_lock is
// dropped, the lock waited for and the copy goes on where it stopped.
// REQUIRES: no lock but mmap_locks and quiesce.
uint64_t DmirrorCopy(KernelState& ks, Mirror& m, uint64_t from, uint64_t end, uint8_t* buf,
                     bool write);
// The ioctls' rungs after the mirror's (docs/mirror.md): the range (kInval),
// the bounce buffer (kNoMem, unless !bounce_limit), the process (kInval).
// Takes the mmap_lock (read) for the last.
Errno DmirrorCheck(const Mirror& m, uint64_t addr, uint64_t npages, bool bounce_limit = true);

// --- device_access.cc ---

// The dynamic form of InvMirrorSubsetOfCpu (docs/invariants.md): the device
// of mirror m accessed (write: wrote) the page its pt entry e at vpn maps;
// reports a DeviceAccessHazard to the installed observer unless the CPU's
// entry there maps the same page (a migration entry of it included), with
// write permission for a write. Callers test KernelState::has_access_observer
// first. REQUIRES: m.update_lock; no ptl.
void CheckDeviceAccess(KernelState& ks, const Mirror& m, uint64_t vpn, pte_t e, bool write);

// --- mirror_rep.cc ---

// Representation invariant of the mirror tables (invariants 1, 2 and 4
// above, and each pt well formed). REQUIRES: every operation excluded.
void CheckMirrorsRep(const KernelState& ks, std::vector<std::string>* out);

}  // namespace hmm::impl

#endif  // HMMREF_IMPL_MIRROR_H_
