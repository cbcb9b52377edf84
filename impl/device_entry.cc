// File: impl/device_entry.cc
//
// Device-private entries in the CPU page tables: non-present leaves of swap
// type SWP_DEVICE_READ or SWP_DEVICE_WRITE whose offset is the device pfn
// (include/linux/swapops.h make_device_private_entry(); impl/pte.h encodes
// them). What core mm does on meeting one (docs/devmem.md): zap drops it,
// fork copies it read-only, a CPU access runs the region's fault callback
// and then migrates the page back (fault.cc, impl/migrate.h), mprotect
// downgrades it (DeviceEntryMakeRead, called from mmap.cc); and
// DeviceEntryInstall, the test-only install without migration.
//
// Every entry holds one reference and one mapcount on its device page, so a
// page with an entry is populated and its region cannot be removed; the
// counts change lock-free, except a put that frees (devmem.h).

#include <cassert>
#include <mutex>
#include <shared_mutex>

#include "impl/defects.h"
#include "impl/kernel.h"
#include "impl/kernel_state.h"

namespace hmm::impl {

pte_t DeviceEntryMakeRead(pte_t e) {
  DecodedPte d = DecodePte(e);
  return d.kind == PteKind::kDevicePrivateWrite ? MakeDeviceEntry(d.pfn, false) : e;
}

void ZapDeviceEntry(KernelState& ks, pte_t* ptep, bool leak_refs) {
  uint64_t pfn = DecodePte(*ptep).pfn;
  *ptep = 0;
  std::shared_lock<std::shared_mutex> devmems(ks.devmems_lock);
  Devmem* devmem = ks.devmems.FindByPfn(pfn);
  assert(devmem != nullptr && "kernel_state.h invariant 4: the entry keeps its region");
  if (devmem == nullptr) return;
  // -1 mapcount: page_remove_rmap().
  devmem->page(pfn).mapcount.fetch_sub(1, std::memory_order_acq_rel);
  // -1 refcount: the entry's reference (put_page()); the put that leaves 1
  // logs page_free.
  if (!leak_refs) devmem->PutPage(pfn);
}

pte_t CopyDeviceEntry(KernelState& ks, pte_t* src) {
  uint64_t pfn = DecodePte(*src).pfn;
  {
    std::shared_lock<std::shared_mutex> devmems(ks.devmems_lock);
    Devmem* devmem = ks.devmems.FindByPfn(pfn);
    assert(devmem != nullptr && "kernel_state.h invariant 4: the entry keeps its region");
    DevicePage& page = devmem->page(pfn);
    // +1 refcount, +1 mapcount: the child's entry (get_page(), page_dup_rmap()).
    // Lock-free: the parent's entry holds a reference, so the count is at
    // least 2 and goes up, never through the 1 <-> 2 moves the lock guards.
    page.refcount.fetch_add(1, std::memory_order_acq_rel);
    page.mapcount.fetch_add(1, std::memory_order_acq_rel);
  }
  // A private VMA is a COW mapping: a write entry becomes read on both sides,
  // so the first CPU write in either process faults.
  if (!DefectActive(Defect::kForkKeepsDeviceWrite)) *src = DeviceEntryMakeRead(*src);
  return *src;
}

Errno DeviceEntryFault(KernelState& ks, Pid pid, uint64_t addr, pte_t e, DeviceId* owner) {
  uint64_t pfn = SwpEntryPfn(e);
  std::shared_lock<std::shared_mutex> devmems(ks.devmems_lock);
  const Devmem* devmem = ks.devmems.FindByPfn(pfn);
  assert(devmem != nullptr && "kernel_state.h invariant 4: the entry keeps its region");
  if (devmem == nullptr) return Errno::kFault;
  // page->pgmap->ops->migrate_to_ram(): the driver's callback (logged) runs
  // the migration back (impl/migrate.h MigrateToRam) once the ptl is dropped.
  if (devmem->ops.fault) devmem->ops.fault(*devmem, pfn, pid.value, addr);
  *owner = devmem->device;
  return Errno::kOk;
}

namespace {

// Does some entry, in any process, map device page pfn writable? Asked only
// when the page has entries; each process's table is walked under its ptl, one
// at a time (there is no reverse map). REQUIRES: no ptl, no devmem lock.
bool MappedWritable(const KernelState& ks, uint64_t pfn) {
  {
    std::shared_lock<std::shared_mutex> devmems(ks.devmems_lock);
    const Devmem* devmem = ks.devmems.FindByPfn(pfn);
    if (devmem == nullptr) return false;
    std::lock_guard<std::mutex> region(devmem->lock);
    const DevicePage* page = devmem->FindPage(pfn);
    if (page == nullptr || page->mapcount.load(std::memory_order_acquire) == 0) return false;
  }
  const pte_t writable = MakeDeviceEntry(pfn, true);
  for (const auto& [pid, q] : ks.SnapshotProcs()) {
    bool found = false;
    std::lock_guard<std::mutex> ptl(q->ptl);
    q->pgtable.ForEachLeaf(0, kMaxVpn, [&](uint64_t, pte_t e) { found |= e == writable; });
    if (found) return true;
  }
  return false;
}

// The VMA and PTE rungs of DeviceEntryInstall, then the install; `mapped_writable`:
// MappedWritable() as asked before the locks. REQUIRES: mmap_lock, ptl, the
// page's Devmem::lock; the page is allocated.
Errno SetDeviceEntry(Process& p, uint64_t addr, DevicePage& page, uint64_t pfn, bool write,
                     bool mapped_writable) {
  const Vma* vma = p.vmas.Find(addr);
  // Is there a VMA at addr?
  if (vma == nullptr) return Errno::kFault;
  // Is it private? (Only anonymous private memory moves to device memory.)
  if (vma->shared) return Errno::kInval;
  // Is the PTE none?
  const pte_t* ptep = p.pgtable.Lookup(AddrVpn(addr));
  if (ptep != nullptr && !PteNone(*ptep)) return Errno::kBusy;
  // Does an entry map the page writable? (A private page mapped twice is
  // COW-shared, read-only everywhere, as fork leaves it.)
  if (mapped_writable) return Errno::kBusy;
  // Only a first entry may be writable.
  write = write && (vma->prot & kProtWrite) && page.mapcount.load(std::memory_order_acquire) == 0;
  // +1 refcount, +1 mapcount: the entry's. Never from 1: only a put under the
  // region lock, which we hold, moves a refcount to 1.
  page.refcount.fetch_add(1, std::memory_order_acq_rel);
  page.mapcount.fetch_add(1, std::memory_order_acq_rel);
  *p.pgtable.WalkAlloc(AddrVpn(addr)) = MakeDeviceEntry(pfn, write);
  return Errno::kOk;
}

}  // namespace

// Mirrors: mm/migrate.c migrate_vma_pages()'s install of a device page
// (migrate_vma_insert_page(), remove_migration_pte() making a device-private
// entry), without moving data (docs/devmem.md: a test-only operation).
Errno Kernel::DeviceEntryInstall(Pid pid, uint64_t addr, uint64_t pfn, bool write) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  MmapLockGuard mm(*st_, pid, MmapLockGuard::kRead);
  Process* p = mm.proc();
  // Is the pid a live process?
  if (p == nullptr) return Errno::kSrch;
  // Is addr page aligned?
  if (!PageAligned(addr)) return Errno::kInval;
  const bool mapped_writable = MappedWritable(*st_, pfn);
  std::lock_guard<std::mutex> ptl(p->ptl);
  std::shared_lock<std::shared_mutex> devmems(st_->devmems_lock);
  Devmem* devmem = st_->devmems.FindByPfn(pfn);
  // Is pfn a page of a live devmem?
  if (devmem == nullptr) return Errno::kNoEnt;
  std::lock_guard<std::mutex> region(devmem->lock);
  DevicePage* page = devmem->FindPage(pfn);
  // Is the page allocated (refcount above the free value 1)?
  if (page == nullptr || page->refcount.load(std::memory_order_acquire) == 1) {
    return Errno::kInval;
  }
  return SetDeviceEntry(*p, addr, *page, pfn, write, mapped_writable);
}

}  // namespace hmm::impl
