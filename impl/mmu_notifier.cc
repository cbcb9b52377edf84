// File: impl/mmu_notifier.cc
//
// The mmu notifier as HMM uses it (docs/mirror.md, "Invalidation"): every
// CPU page-table change of a mirrored mm brackets itself with
// MmuNotifierInvalidateRangeStart/End; HMM then marks the overlapping open
// ranges invalid (zeroing their overlap) and calls each mirror's
// sync_cpu_device_pagetables(), which is the dummy device's invalidate.
//
// Where: the 4.14 seed (Profile::kV18) did both in invalidate_range_end,
// after the CPU change (mm/hmm.c hmm_invalidate_range_end() ->
// hmm_invalidate_range()); upstream moved them to invalidate_range_start
// (the default profile), before the change, and from then a range
// registered while an invalidation is in flight cannot be trusted: it is
// registered invalid when it overlaps one (Hmm::active), as later kernels'
// hmm->notifiers count made it wait. Sequentially the two give the same
// results.
//
// A migration's collect passes over the owner device's mirrors and their
// public ranges (6.1 MMU_NOTIFY_MIGRATE with pgmap_owner; NotifyOwner),
// default profile only; its other brackets reach every mirror. The Hmm*
// entry points serve a migration's rmap walk, which reaches another mm
// without its mmap_lock.
//
// Yield points (impl/sched.h), in both profiles and with or without a
// mirror: "invalidate_start_done" once start's work is done, before the CPU
// change, and "pte_changed" once the change is made, before end's work (the
// window in which v18 mirrors still map what the CPU no longer does); the
// mirror loop takes mirrors_sem and each update_lock at yield points.

#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "impl/defects.h"
#include "impl/kernel_state.h"
#include "impl/mirror.h"
#include "impl/sched.h"

namespace hmm::impl {
namespace {

bool Overlaps(uint64_t s, uint64_t e, uint64_t start, uint64_t end) {
  return s < end && start < e;
}

// Does the invalidation pass over this mirror? (6.1 dmirror_interval_invalidate()'s
// MMU_NOTIFY_MIGRATE owner test; never under v18.)
bool Skips(const NotifyOwner& owner, const Mirror* m) {
  return owner.skip && m != nullptr && m->device == owner.device;
}

// Mirrors: 4.14 mm/hmm.c hmm_invalidate_range()'s range loop: every open
// range overlapping [s, e) (vpns, strictly) becomes invalid and, if public,
// loses its entries in the overlap. REQUIRES: hmm.lock.
void MarkRangesLocked(Hmm& hmm, uint64_t s, uint64_t e, const NotifyOwner& owner) {
  for (HmmRange* r : hmm.ranges) {
    if (!Overlaps(s, e, r->start, r->end) || Skips(owner, r->mirror.get())) continue;
    r->valid = false;
    if (r->internal) continue;  // a walk's entries are its own
    uint64_t from = std::max(s, r->start) - r->start;
    uint64_t to = std::min(e, r->end) - r->start;
    std::fill(r->pfns.get() + from, r->pfns.get() + to, 0);
  }
}

// Mirrors: 4.14 mm/hmm.c hmm_invalidate_range()'s mirror loop:
// mirror->ops->sync_cpu_device_pagetables(HMM_UPDATE_INVALIDATE) for every
// mirror, under mirrors_sem (read).
void SyncMirrors(Hmm& hmm, uint64_t s, uint64_t e, const NotifyOwner& owner) {
  sched::LockSharedAt("mirrors_sem", hmm.mirrors_sem);
  std::shared_lock<std::shared_mutex> sem(hmm.mirrors_sem, std::adopt_lock);
  for (Mirror* m : hmm.mirrors) {
    if (Skips(owner, m)) continue;
    sched::LockAt("invalidate_update_lock", m->update_lock);
    std::lock_guard<std::mutex> update(m->update_lock, std::adopt_lock);
    DmirrorInvalidateLocked(*m, s, e);
  }
}

// Mirrors: 4.14 mm/hmm.c hmm_invalidate_range().
void HmmInvalidateRange(Hmm& hmm, uint64_t s, uint64_t e, const NotifyOwner& owner) {
  {
    std::lock_guard<std::mutex> lock(hmm.lock);
    MarkRangesLocked(hmm, s, e, owner);
  }
  SyncMirrors(hmm, s, e, owner);
}

// Are mirrors invalidated at invalidate_range_end, after the CPU change (the
// seed), rather than at its start? Seeded defect kDefaultInvalidatesAtEnd
// does it in the default profile too: no sequential run can tell.
bool InvalidatesAtEnd(const KernelState& ks) {
  return ks.config.profile == Profile::kV18 || DefectActive(Defect::kDefaultInvalidatesAtEnd);
}

// Mirrors: 4.14 mm/hmm.c hmm_invalidate_range_start() (v18: nothing) or
// the later one (default: mark, then call the mirrors).
void InvalidateStartMirrors(KernelState& ks, Hmm* hmm, uint64_t start, uint64_t end,
                            const NotifyOwner& owner) {
  // Has the mm a notifier? (mm_has_notifiers(): none before the first mirror)
  if (hmm == nullptr) return;
  // The seed does everything at end (its range_start only bumps a sequence).
  if (InvalidatesAtEnd(ks)) return;
  uint64_t s = AddrVpn(start), e = AddrVpn(end);
  {
    std::lock_guard<std::mutex> lock(hmm->lock);
    hmm->active.emplace_back(s, e);
    MarkRangesLocked(*hmm, s, e, owner);
  }
  SyncMirrors(*hmm, s, e, owner);
}

// Mirrors: 4.14 mm/hmm.c hmm_invalidate_range_end() (v18: mark, then call
// the mirrors) or the later one (default: the invalidation is over).
void InvalidateEndMirrors(KernelState& ks, Hmm* hmm, uint64_t start, uint64_t end,
                          const NotifyOwner& owner) {
  if (hmm == nullptr) return;
  uint64_t s = AddrVpn(start), e = AddrVpn(end);
  // Mirrors: 4.14 mm/hmm.c hmm_invalidate_range_end(): the seed's only call,
  // with no owner to skip.
  if (InvalidatesAtEnd(ks)) {
    const bool v18 = ks.config.profile == Profile::kV18;
    HmmInvalidateRange(*hmm, s, e, v18 ? NotifyOwner{} : owner);
    return;
  }
  std::lock_guard<std::mutex> lock(hmm->lock);
  auto it = std::find(hmm->active.begin(), hmm->active.end(), std::make_pair(s, e));
  if (it != hmm->active.end()) hmm->active.erase(it);
}

}  // namespace

void HmmInvalidateStart(KernelState& ks, Hmm* hmm, uint64_t start, uint64_t end,
                        const NotifyOwner& owner) {
  InvalidateStartMirrors(ks, hmm, start, end, owner);
  sched::YieldPoint("invalidate_start_done");
}

void HmmInvalidateEnd(KernelState& ks, Hmm* hmm, uint64_t start, uint64_t end,
                      const NotifyOwner& owner) {
  // The CPU change is made; under v18 the mirrors still map the old pages.
  sched::YieldPoint("pte_changed");
  InvalidateEndMirrors(ks, hmm, start, end, owner);
}

void MmuNotifierInvalidateRangeStart(KernelState& ks, Process& p, uint64_t start, uint64_t end) {
  HmmInvalidateStart(ks, p.hmm.get(), start, end, NotifyOwner{});
}

void MmuNotifierInvalidateRangeEnd(KernelState& ks, Process& p, uint64_t start, uint64_t end) {
  HmmInvalidateEnd(ks, p.hmm.get(), start, end, NotifyOwner{});
}

}  // namespace hmm::impl
