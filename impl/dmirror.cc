// File: impl/dmirror.cc
//
// The dummy device (docs/mirror.md, "The dummy device"; Linux 6.1
// lib/test_hmm.c): its invalidate callback, the v18 driver's commit, and the
// READ, WRITE and SNAPSHOT ioctls with the driver's own fault
// (dmirror_fault(): chunks of kDmirrorFaultChunk pages, each an internal
// range walked with dev_private_owner = this device, validated and stored
// under the mirror's update lock, retried when invalidated).
//
// The device page table holds no page reference; a copy reads or writes the
// target under its page lock, tried (RAM, or a device page's, with its
// region's lock around the contents), and backs off while a migration holds it.
// With a device-access observer installed, every page copied is checked
// against the CPU's entry (device_access.cc). The update lock is taken at a
// yield point in each of the driver's paths, and the copy's back-off and the
// walks' wait for an invalidation are scheduler-aware waits (impl/sched.h).

#include <algorithm>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_state.h"
#include "impl/mirror.h"
#include "impl/sched.h"

namespace hmm::impl {

void DmirrorInvalidateLocked(Mirror& m, uint64_t start, uint64_t end) {
  m.pt.ForEachLeaf(start, end, [](uint64_t, pte_t& e) { e = 0; });
  m.pt.FreeEmptyTables(start, end);
}

namespace {

// The pt entry for a VALID hmm_pfn_t: a device-private entry for a device
// pfn, else a present entry (pte_special for the zero page); write iff WRITE.
pte_t DevicePtEntry(const KernelState& ks, uint64_t v) {
  const uint64_t pfn = v >> kHmmPfnShift;
  const bool write = v & kHmmPfnWrite;
  if (v & kHmmPfnDeviceUnaddressable) {
    return MakeSwapPte(write ? kSwpDeviceWrite : kSwpDeviceRead, pfn);
  }
  const bool zero = ks.pages.IsZero(pfn);
  return MakePresentPte(pfn, write && !zero, false, false, zero);
}

bool PtEntryWrite(pte_t e) {
  return PtePresent(e) ? PteWrite(e) : DecodePte(e).kind == PteKind::kDevicePrivateWrite;
}

// The copy of one page between `buf` and a RAM target, under the page's
// lock, tried only (a migration may hold it: impl/kernel_state.h 2p).
// Returns false, copying nothing, when the lock is taken.
bool CopyRamTarget(KernelState& ks, uint64_t pfn, uint8_t* buf, bool to_device) {
  if (!ks.pages.TrylockPage(pfn)) return false;
  if (to_device) {
    std::memcpy(ks.pages.data(pfn), buf, kPageSize);
  } else {
    std::memcpy(buf, ks.pages.data(pfn), kPageSize);
  }
  ks.pages.UnlockPage(pfn);
  return true;
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_do_read()/dmirror_do_write()'s kmap +
// memcpy of one page: to_device copies `buf` into the target, else the
// target into `buf`; false (nothing copied) when the target's page lock is
// taken. REQUIRES: the mirror's update_lock.
bool CopyTarget(KernelState& ks, pte_t e, uint8_t* buf, bool to_device) {
  if (PtePresent(e)) return CopyRamTarget(ks, PtePfn(e), buf, to_device);
  const uint64_t pfn = DecodePte(e).pfn;
  std::shared_lock<std::shared_mutex> devmems(ks.devmems_lock);
  Devmem* devmem = ks.devmems.FindByPfn(pfn);
  std::unique_lock<std::mutex> region;
  if (devmem != nullptr) region = std::unique_lock<std::mutex>(devmem->lock);
  if (devmem == nullptr || devmem->FindPage(pfn) == nullptr) {
    // Only a seed-profile window reaches a region removed under the device.
    if (!to_device) std::memset(buf, 0, kPageSize);
    return true;
  }
  if (!devmem->TrylockPage(pfn)) return false;
  if (to_device) {
    devmem->WriteContents(pfn, buf);
  } else {
    devmem->ReadContents(pfn, buf);
  }
  devmem->UnlockPage(pfn);
  return true;
}

// One round of DmirrorCopy under the update lock: copies from vpn `from`
// while pt maps the pages (with write, for a write); *busy when it stopped
// at a page whose lock is taken. REQUIRES: m.update_lock.
uint64_t DmirrorDoCopy(KernelState& ks, Mirror& m, uint64_t from, uint64_t end, uint8_t* buf,
                       bool write, bool* busy) {
  uint64_t n = 0;
  for (uint64_t vpn = from; vpn < end; ++vpn, ++n) {
    const pte_t e = m.pt.Get(vpn);
    // Does the device map the page (writable, for a write)?
    if (e == 0 || (write && !PtEntryWrite(e))) break;
    if (!CopyTarget(ks, e, buf + n * kPageSize, write)) {
      *busy = true;
      break;
    }
    if (ks.has_access_observer.load(std::memory_order_relaxed)) {
      CheckDeviceAccess(ks, m, vpn, e, write);
    }
  }
  return n;
}

}  // namespace

uint64_t DmirrorCopy(KernelState& ks, Mirror& m, uint64_t from, uint64_t end, uint8_t* buf,
                     bool write) {
  uint64_t n = 0;
  // Loop invariant: pages [from, from + n) are copied.
  for (;;) {
    bool busy = false;
    {
      sched::LockAt("dmirror_copy_lock", m.update_lock);
      std::lock_guard<std::mutex> update(m.update_lock, std::adopt_lock);
      n += DmirrorDoCopy(ks, m, from + n, end, buf + n * kPageSize, write, &busy);
    }
    if (!busy) return n;
    sched::SpinYield("dmirror_copy_busy");  // the migration holding the page ends, then retry
  }
}

namespace {

// Mirrors: 6.1 lib/test_hmm.c dmirror_do_fault(): stores a walked chunk in
// pt. REQUIRES: m.update_lock.
Errno DmirrorDoFault(KernelState& ks, Mirror& m, uint64_t start, const uint64_t* pfns,
                     uint64_t n, bool write) {
  for (uint64_t i = 0; i < n; ++i) {
    // Did the walk leave a page unfaulted, or without write for a write?
    // (The driver's WARN_ON()s; -EFAULT.)
    if (!(pfns[i] & kHmmPfnValid) || (write && !(pfns[i] & kHmmPfnWrite))) {
      return Errno::kFault;
    }
    *m.pt.WalkAlloc(start + i) = DevicePtEntry(ks, pfns[i]);
  }
  return Errno::kOk;
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_range_fault(): walk and fault the
// chunk [start, end) under the mmap_lock, then under the update lock store it
// unless an invalidation hit it meanwhile (mmu_interval_read_retry()), in
// which case walk again.
Errno DmirrorRangeFault(KernelState& ks, Mirror& m, uint64_t start, uint64_t end, bool write) {
  HmmWalkMode mode;
  mode.write = write;
  mode.has_owner = true;
  mode.owner = m.device;
  std::vector<uint64_t> pfns(end - start);
  // Loop invariant: pt is unchanged by this chunk.
  for (;;) {
    HmmRange range(nullptr, start, end, /*internal=*/true);
    Errno err;
    HmmWaitInvalidations(*m.hmm, start, end);  // mmu_interval_read_begin()
    {
      std::shared_lock<std::shared_mutex> mmap_lock = MmapReadLock(*m.proc);
      // Did the process exit meanwhile? (mmget_not_zero())
      if (m.proc->exited) return Errno::kInval;
      {
        std::lock_guard<std::mutex> lock(m.hmm->lock);
        HmmRangeLinkLocked(*m.hmm, &range);  // mmu_interval_read_begin()
      }
      err = HmmRangeFaultWalk(ks, *m.proc, m.pid, start, end, mode, pfns.data(), nullptr);
    }
    // Between the walk and its validation.
    sched::LockAt("dmirror_fault_lock", m.update_lock);
    std::lock_guard<std::mutex> update(m.update_lock, std::adopt_lock);
    const bool valid = HmmRangeUnlinkInternal(*m.hmm, &range);
    if (err != Errno::kOk) return err;
    // Was the chunk invalidated since its walk began?
    if (!valid) continue;
    return DmirrorDoFault(ks, m, start, pfns.data(), end - start, write);
  }
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_fault(): [start, end) in chunks.
Errno DmirrorFault(KernelState& ks, Mirror& m, uint64_t start, uint64_t end, bool write) {
  for (uint64_t at = start; at < end; at += kDmirrorFaultChunk) {
    Errno err = DmirrorRangeFault(ks, m, at, std::min(end, at + kDmirrorFaultChunk), write);
    if (err != Errno::kOk) return err;
  }
  return Errno::kOk;
}

}  // namespace

Errno DmirrorCheck(const Mirror& m, uint64_t addr, uint64_t npages, bool bounce_limit) {
  // Is [addr, addr + npages pages) aligned, non-empty and below kTaskSize?
  if (BadPageRange(addr, npages)) return Errno::kInval;
  // Does it fit the bounce buffer?
  if (bounce_limit && npages > kMaxDmirrorPages) return Errno::kNoMem;
  std::shared_lock<std::shared_mutex> mmap_lock = MmapReadLock(*m.proc);
  // Is the process alive? (mmget_not_zero())
  if (m.proc->exited) return Errno::kInval;
  return Errno::kOk;
}

namespace {

// Mirrors: 6.1 lib/test_hmm.c dmirror_read() (write false) and
// dmirror_write() (write true): copy from pt until a page is missing, fault
// from there to the end, repeat.
Result<DmirrorResult> DmirrorCopyLoop(KernelState& ks, Mirror& m, uint64_t addr,
                                      uint64_t npages, uint8_t* buf, bool write) {
  DmirrorResult res;
  const uint64_t start = AddrVpn(addr), end = start + npages;
  // Loop invariant: pages [start, start + res.cpages) are copied.
  for (;;) {
    uint64_t from = start + res.cpages;
    res.cpages += DmirrorCopy(ks, m, from, end, buf + res.cpages * kPageSize, write);
    // Is every page copied?
    if (res.cpages == npages) return res;
    Errno err = DmirrorFault(ks, m, start + res.cpages, end, write);
    if (err != Errno::kOk) return err;
    ++res.faults;
  }
}

}  // namespace

// Mirrors: 4.14 include/linux/hmm.h's driver protocol (take the update lock,
// hmm_vma_range_done(), commit when it says valid) with the dummy device's pt.
Result<bool> Kernel::DmirrorCommit(uint64_t range) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_ptr<HmmRange> r = FindRange(*st_, range);
  // Is the range open?
  if (r == nullptr) return Errno::kNoEnt;
  Mirror& m = *r->mirror;
  sched::LockAt("dmirror_commit_lock", m.update_lock);
  std::lock_guard<std::mutex> update(m.update_lock, std::adopt_lock);
  Result<bool> valid = HmmRangeDone(*st_, range);
  // Was it done meanwhile? Was it invalidated?
  if (!valid.ok() || !valid.value) return valid;
  std::shared_lock<std::shared_mutex> devmems(st_->devmems_lock);  // device targets' owners
  for (uint64_t i = 0; i < r->npages(); ++i) {
    const uint64_t v = r->pfns[i];
    if (!(v & kHmmPfnValid) || !(v & kHmmPfnRead)) continue;
    if (v & kHmmPfnDeviceUnaddressable) {
      const Devmem* devmem = st_->devmems.FindByPfn(v >> kHmmPfnShift);
      // Another device's memory: this device cannot map it.
      if (devmem == nullptr || devmem->device != m.device) continue;
    }
    *m.pt.WalkAlloc(r->start + i) = DevicePtEntry(*st_, v);
  }
  return valid;
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_fault(), behind dmirror_read()'s checks.
Errno Kernel::DmirrorFaultRange(uint64_t mirror, uint64_t addr, uint64_t npages, bool write) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_ptr<Mirror> m = FindMirror(*st_, mirror);
  // Is the mirror registered?
  if (m == nullptr) return Errno::kNoEnt;
  Errno err = DmirrorCheck(*m, addr, npages);
  if (err != Errno::kOk) return err;
  const uint64_t start = AddrVpn(addr);
  return DmirrorFault(*st_, *m, start, start + npages, write);
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_read().
Result<DmirrorResult> Kernel::DmirrorRead(uint64_t mirror, uint64_t addr, uint64_t npages) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_ptr<Mirror> m = FindMirror(*st_, mirror);
  // Is the mirror registered?
  if (m == nullptr) return Errno::kNoEnt;
  Errno err = DmirrorCheck(*m, addr, npages);
  if (err != Errno::kOk) return err;
  std::vector<uint8_t> bounce(npages * kPageSize);
  Result<DmirrorResult> res = DmirrorCopyLoop(*st_, *m, addr, npages, bounce.data(), false);
  if (res.ok()) res.value.data = std::move(bounce);
  return res;
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_write().
Result<DmirrorResult> Kernel::DmirrorWrite(uint64_t mirror, uint64_t addr,
                                           const std::vector<uint8_t>& data) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_ptr<Mirror> m = FindMirror(*st_, mirror);
  // Is the mirror registered?
  if (m == nullptr) return Errno::kNoEnt;
  // Is the data whole pages, at least one?
  if (data.empty() || data.size() % kPageSize != 0) return Errno::kInval;
  const uint64_t npages = data.size() / kPageSize;
  Errno err = DmirrorCheck(*m, addr, npages);
  if (err != Errno::kOk) return err;
  std::vector<uint8_t> bounce = data;
  return DmirrorCopyLoop(*st_, *m, addr, npages, bounce.data(), true);
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_snapshot() -> dmirror_range_snapshot():
// walk without faulting, retried while an invalidation hits the range.
Result<DmirrorResult> Kernel::DmirrorSnapshot(uint64_t mirror, uint64_t addr, uint64_t npages) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_ptr<Mirror> m = FindMirror(*st_, mirror);
  // Is the mirror registered?
  if (m == nullptr) return Errno::kNoEnt;
  Errno err = DmirrorCheck(*m, addr, npages);
  if (err != Errno::kOk) return err;
  DmirrorResult res;
  res.cpages = npages;
  res.data.resize(npages);
  const uint64_t start = AddrVpn(addr);
  // Loop invariant: nothing changed; res.data is overwritten by each round.
  for (;;) {
    HmmRange range(nullptr, start, start + npages, /*internal=*/true);
    HmmWaitInvalidations(*m->hmm, start, start + npages);  // mmu_interval_read_begin()
    {
      std::shared_lock<std::shared_mutex> mmap_lock = MmapReadLock(*m->proc);
      // Did the process exit meanwhile?
      if (m->proc->exited) return Errno::kInval;
      {
        std::lock_guard<std::mutex> lock(m->hmm->lock);
        HmmRangeLinkLocked(*m->hmm, &range);
      }
      DmirrorSnapshotWalk(*st_, *m->proc, start, start + npages, m->device, res.data.data());
    }
    sched::YieldPoint("snapshot_walked");  // between the walk and its validation
    // Did no invalidation hit it? (mmu_interval_read_retry())
    if (HmmRangeUnlinkInternal(*m->hmm, &range)) return res;
  }
}

}  // namespace hmm::impl
