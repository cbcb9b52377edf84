// File: impl/hmm_mirror.cc
//
// The seed's kernel API for mirroring (docs/mirror.md, "The kernel API";
// 4.14 mm/hmm.c): HmmMirrorRegister and HmmMirrorUnregister, the snapshot
// HmmVmaGetPfns, the device fault HmmVmaFault, HmmVmaRangeDone, and the
// range registry they share with the dummy device (dmirror.cc).

#include <algorithm>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include "impl/defects.h"
#include "impl/kernel.h"
#include "impl/kernel_state.h"
#include "impl/mirror.h"
#include "impl/sched.h"

namespace hmm::impl {

void HmmRangeLinkLocked(Hmm& hmm, HmmRange* r) {
  r->valid = true;
  // Does an invalidation that began before us still run over the range?
  for (const auto& [s, e] : hmm.active) {
    if (s < r->end && r->start < e) r->valid = false;
  }
  hmm.ranges.push_back(r);
}

namespace {

// Takes r off its Hmm's list; returns its valid flag. REQUIRES: hmm.lock.
bool UnlinkLocked(Hmm& hmm, HmmRange* r) {
  auto it = std::find(hmm.ranges.begin(), hmm.ranges.end(), r);
  if (it != hmm.ranges.end()) hmm.ranges.erase(it);
  return r->valid;
}

// Gives the linked public range r its id. kNoEnt (and r unlinked) when its
// mirror was unregistered meanwhile: the call then ran after the unregister.
Result<uint64_t> PublishRange(KernelState& ks, const std::shared_ptr<HmmRange>& r) {
  Mirror& m = *r->mirror;
  std::lock_guard<std::mutex> tables(ks.mirrors_lock);
  if (!m.registered) {
    std::lock_guard<std::mutex> lock(m.hmm->lock);
    UnlinkLocked(*m.hmm, r.get());
    return Errno::kNoEnt;
  }
  r->id = ks.next_range++;
  ks.ranges.emplace(r->id, r);
  ++m.nr_ranges;
  return r->id;
}

// The shared rungs of HmmVmaGetPfns and HmmVmaFault after the mirror's:
// the range arguments, the pfns array's size, then (mmap_lock held) the
// process and the VMA.
// Returns the VMA holding the range, or sets *err.
const Vma* CheckVmaRange(const Mirror& m, uint64_t addr, uint64_t npages, Errno* err) {
  *err = Errno::kInval;
  // Is [addr, addr + npages pages) aligned, non-empty and below kTaskSize?
  if (BadPageRange(addr, npages)) return nullptr;
  // Can the caller's pfns array be allocated?
  if (npages > kMaxRangePages) {
    *err = Errno::kNoMem;
    return nullptr;
  }
  *err = Errno::kInval;
  // Is the mirrored process alive? (4.14 has no VMA to walk)
  if (m.proc->exited) return nullptr;
  const Vma* vma = m.proc->vmas.Find(addr);
  // Does one VMA hold the whole range?
  if (vma == nullptr || npages > (vma->end - addr) >> kPageShift) return nullptr;
  *err = Errno::kOk;
  return vma;
}

}  // namespace

bool HmmRangeUnlinkInternal(Hmm& hmm, HmmRange* r) {
  std::lock_guard<std::mutex> lock(hmm.lock);
  return UnlinkLocked(hmm, r);
}

void HmmWaitInvalidations(Hmm& hmm, uint64_t start, uint64_t end) {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(hmm.lock);
      // Does an invalidation still run over [start, end)?
      if (std::none_of(hmm.active.begin(), hmm.active.end(),
                       [&](const auto& a) { return a.first < end && start < a.second; })) {
        return;
      }
    }
    sched::SpinYield("interval_read_begin");
  }
}

std::shared_ptr<HmmRange> FindRange(const KernelState& ks, uint64_t id) {
  std::lock_guard<std::mutex> tables(ks.mirrors_lock);
  auto it = ks.ranges.find(id);
  return it == ks.ranges.end() ? nullptr : it->second;
}

std::shared_ptr<Mirror> FindMirror(const KernelState& ks, uint64_t id) {
  std::lock_guard<std::mutex> tables(ks.mirrors_lock);
  auto it = ks.mirrors.find(id);
  return it == ks.mirrors.end() ? nullptr : it->second;
}

Result<bool> HmmRangeDone(KernelState& ks, uint64_t id) {
  bool valid;
  {
    std::lock_guard<std::mutex> tables(ks.mirrors_lock);
    auto it = ks.ranges.find(id);
    // Is the range open? (Not done yet, and not a failed fault.)
    if (it == ks.ranges.end()) return Errno::kNoEnt;
    std::shared_ptr<HmmRange> r = std::move(it->second);
    ks.ranges.erase(it);
    --r->mirror->nr_ranges;
    std::lock_guard<std::mutex> lock(r->mirror->hmm->lock);
    valid = UnlinkLocked(*r->mirror->hmm, r.get());
  }
  // Seeded defect: an invalidated range reads as valid.
  if (DefectActive(Defect::kRangeDoneAlwaysValid)) return true;
  return valid;
}

// Mirrors: 4.14 mm/hmm.c hmm_mirror_register() (mmap_sem held for write) +
// 6.1 lib/test_hmm.c dmirror_fops_open().
Result<uint64_t> Kernel::HmmMirrorRegister(DeviceId device, Pid pid) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  MmapLockGuard mm(*st_, pid, MmapLockGuard::kWrite);
  Process* p = mm.proc();
  // Is the pid a live process?
  if (p == nullptr) return Errno::kSrch;
  // Is it one of the dummy devices?
  if (device.value >= kMaxDevices) return Errno::kInval;
  if (!p->hmm) {
    // hmm_register(): the mm's first mirror; under the ptl too, for a
    // migration's rmap walk, which reads it without the mmap_lock.
    auto hmm = std::make_shared<Hmm>();
    std::lock_guard<std::mutex> ptl(p->ptl);
    p->hmm = std::move(hmm);
  }
  sched::LockAt("mirrors_sem_write", p->hmm->mirrors_sem);
  std::unique_lock<std::shared_mutex> sem(p->hmm->mirrors_sem, std::adopt_lock);
  std::lock_guard<std::mutex> tables(st_->mirrors_lock);
  // Is there room for one more mirror?
  if (st_->mirrors.size() >= kMaxMirrors) return Errno::kNoMem;
  uint64_t id = st_->next_mirror++;
  auto m = std::make_shared<Mirror>(id, device, pid, mm.shared(), p->hmm);
  st_->mirrors.emplace(id, m);
  p->hmm->mirrors.push_back(m.get());
  return id;
}

// Mirrors: 4.14 mm/hmm.c hmm_mirror_unregister() + 6.1 lib/test_hmm.c
// dmirror_fops_release().
Errno Kernel::HmmMirrorUnregister(uint64_t mirror) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_ptr<Mirror> m = FindMirror(*st_, mirror);
  // Is the mirror registered?
  if (m == nullptr) return Errno::kNoEnt;
  // Exclusive: every callback in flight to the mirror has returned.
  sched::LockAt("mirrors_sem_write", m->hmm->mirrors_sem);
  std::unique_lock<std::shared_mutex> sem(m->hmm->mirrors_sem, std::adopt_lock);
  {
    std::lock_guard<std::mutex> tables(st_->mirrors_lock);
    // Did a concurrent unregister win?
    if (!m->registered) return Errno::kNoEnt;
    // Has it open ranges? (range_done must come first, once per range)
    if (m->nr_ranges != 0) return Errno::kBusy;
    m->registered = false;
    st_->mirrors.erase(m->id);
  }
  std::vector<Mirror*>& list = m->hmm->mirrors;
  list.erase(std::find(list.begin(), list.end(), m.get()));
  std::lock_guard<std::mutex> update(m->update_lock);
  DmirrorInvalidateLocked(*m, 0, kMaxVpn);  // drops the pt
  return Errno::kOk;
}

// Mirrors: 4.14 mm/hmm.c hmm_vma_get_pfns(): registers the range, then walks
// the page table without faulting, both under the ptl and the hmm lock, so
// no notifier sees the range half filled.
Result<uint64_t> Kernel::HmmVmaGetPfns(uint64_t mirror, uint64_t addr, uint64_t npages) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_ptr<Mirror> m = FindMirror(*st_, mirror);
  // Is the mirror registered?
  if (m == nullptr) return Errno::kNoEnt;
  Process& p = *m->proc;
  std::shared_lock<std::shared_mutex> mmap_lock = MmapReadLock(p);
  Errno err;
  const Vma* vma = CheckVmaRange(*m, addr, npages, &err);
  if (vma == nullptr) return err;
  auto r = std::make_shared<HmmRange>(m, AddrVpn(addr), AddrVpn(addr) + npages, false);
  r->pfns.reset(new uint64_t[npages]);  // every entry written by the walk
  {
    std::lock_guard<std::mutex> ptl(p.ptl);
    std::lock_guard<std::mutex> lock(m->hmm->lock);
    HmmRangeLinkLocked(*m->hmm, r.get());
    HmmVmaWalkSnapshot(p, r->start, r->end, vma->prot & kProtRead, r->pfns.get());
  }
  return PublishRange(*st_, r);
}

// Mirrors: 4.14 mm/hmm.c hmm_vma_fault() with block = true: the range is
// registered first, so a COW break of the fault itself invalidates it; on
// error it is already unregistered.
Result<uint64_t> Kernel::HmmVmaFault(uint64_t mirror, uint64_t addr, uint64_t npages,
                                     bool write) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_ptr<Mirror> m = FindMirror(*st_, mirror);
  // Is the mirror registered?
  if (m == nullptr) return Errno::kNoEnt;
  Process& p = *m->proc;
  std::shared_lock<std::shared_mutex> mmap_lock = MmapReadLock(p);
  Errno err;
  if (CheckVmaRange(*m, addr, npages, &err) == nullptr) return err;
  auto r = std::make_shared<HmmRange>(m, AddrVpn(addr), AddrVpn(addr) + npages, false);
  r->pfns.reset(new uint64_t[npages]());  // 0 until walked
  {
    std::lock_guard<std::mutex> lock(m->hmm->lock);
    HmmRangeLinkLocked(*m->hmm, r.get());
  }
  Result<uint64_t> id = PublishRange(*st_, r);
  if (!id.ok()) return id;
  HmmWalkMode mode;
  mode.write = write;
  err = HmmRangeFaultWalk(*st_, p, m->pid, r->start, r->end, mode, r->pfns.get(), &m->hmm->lock);
  if (err == Errno::kOk) return id;
  (void)HmmRangeDone(*st_, id.value);  // the failed fault unregisters its range
  return err;
}

// Mirrors: 4.14 mm/hmm.c hmm_vma_range_done().
Result<bool> Kernel::HmmVmaRangeDone(uint64_t range) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  return HmmRangeDone(*st_, range);
}

}  // namespace hmm::impl
