// File: impl/dmirror_migrate.cc
//
// The dummy device's migration ioctls (docs/migrate.md, "The dummy device";
// 6.1 lib/test_hmm.c): MIGRATE_TO_DEV with its read-back, MIGRATE_TO_SYS,
// FLAGS, RELEASE (dmirror_release.cc does the eviction), the bench's loop
// without the bounce buffer (DmirrorMigrateRange), and the driver's device
// page allocator. Each ioctl holds the mirrored process's mmap_lock (read)
// over its loop of migrate_vma calls, one per piece of at most
// kDmirrorMigrateChunk pages inside one VMA; the callbacks batch their
// copies through the copy engine (impl/copy_engine.h).

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "impl/defects.h"
#include "impl/kernel.h"
#include "impl/kernel_state.h"
#include "impl/migrate.h"
#include "impl/migrate_internal.h"
#include "impl/mirror.h"
#include "impl/sched.h"

namespace hmm::impl {
namespace {

// Does the FLAGS ioctl make this allocation fail? (It fails once.)
bool TakeFailAlloc(Mirror& m) {
  return (m.flags.load(std::memory_order_relaxed) & kDmirrorFlagFailAlloc) &&
         (m.flags.fetch_and(~kDmirrorFlagFailAlloc) & kDmirrorFlagFailAlloc);
}

// The lowest free page of the device's regions, in id order; held, locked.
uint64_t AllocFromDevice(KernelState& ks, DeviceId device) {
  std::shared_lock<std::shared_mutex> devmems(ks.devmems_lock);
  for (const auto& [id, devmem] : ks.devmems.all()) {
    if (devmem->device != device) continue;
    std::lock_guard<std::mutex> region(devmem->lock);
    std::optional<uint64_t> pfn = devmem->AllocPage();
    if (!pfn) continue;
    devmem->TrylockPage(*pfn);  // a free page is never locked: this takes it
    return MigratePfn(*pfn) | kMigratePfnLocked;
  }
  return 0;
}

// The driver's side of one ioctl's loop: lib/test_hmm.c's callbacks with
// the mirror as `private`.
class DmirrorMigrator {
 public:
  DmirrorMigrator(KernelState& ks, Mirror& m, bool to_device)
      : ks_(ks), m_(m), to_device_(to_device) {
    if (to_device_) {
      ops_.alloc_and_copy = [this](MigrateVmaArgs& a) { AllocAndCopyToDev(a); };
      ops_.finalize_and_map = [this](const MigrateVmaArgs& a) { FinalizeAndMapToDev(a); };
    } else {
      ops_.alloc_and_copy = [this](MigrateVmaArgs& a) { AllocAndCopyToSys(a); };
      ops_.finalize_and_map = [this](const MigrateVmaArgs& a) { CountToSys(a); };
    }
  }

  // Mirrors: 6.1 dmirror_migrate_to_device()/_to_system()'s loop. REQUIRES:
  // the process's mmap_lock (read); [addr, addr + npages pages) a checked range.
  Errno Run(uint64_t addr, uint64_t npages);
  uint64_t moved() const { return moved_; }

 private:
  void AllocAndCopyToDev(MigrateVmaArgs& a);
  void FinalizeAndMapToDev(const MigrateVmaArgs& a);
  void AllocAndCopyToSys(MigrateVmaArgs& a);
  void CountToSys(const MigrateVmaArgs& a);
  void Copy() {
    CopyEngine& engine = MigrateCopyEngine(ks_);
    engine.Wait(engine.Submit(batch_));
  }

  KernelState& ks_;
  Mirror& m_;
  const bool to_device_;
  bool vma_write_ = false;  // the piece's VMA has PROT_WRITE
  MigrateVmaOps ops_;
  MigrateVmaArgs args_;  // reused by every piece: no allocation per piece
  CopyBatch batch_;
  std::vector<uint64_t> erase_;  // to_sys: vpns to drop from pt
  uint64_t moved_ = 0;
};

Errno DmirrorMigrator::Run(uint64_t addr, uint64_t npages) {
  const uint64_t end = addr + npages * kPageSize;
  for (uint64_t a = addr; a < end;) {
    const Vma* vma = m_.proc->vmas.Find(a);
    // Is there a readable VMA here? (Earlier pieces stay migrated.)
    if (vma == nullptr || !(vma->prot & kProtRead)) return Errno::kInval;
    const uint64_t next = std::min({end, a + kDmirrorMigrateChunk * kPageSize, vma->end});
    vma_write_ = vma->prot & kProtWrite;
    args_.pid = m_.pid;
    args_.start = a;
    args_.end = next;
    args_.select = to_device_ ? kMigrateVmaSelectSystem : kMigrateVmaSelectDevicePrivate;
    args_.owner = m_.device;
    args_.fault_page = 0;
    Errno err = MigrateVmaLocked(ks_, *m_.proc, ops_, &args_);
    if (err != Errno::kOk) return err;
    a = next;
  }
  return Errno::kOk;
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_migrate_alloc_and_copy().
void DmirrorMigrator::AllocAndCopyToDev(MigrateVmaArgs& a) {
  batch_.Clear();
  for (size_t i = 0; i < a.src.size(); ++i) {
    const uint64_t s = a.src[i];
    // Selected, and not device memory already (the driver's WARN)?
    if (!(s & kMigratePfnMigrate) || (s & kMigratePfnDevice)) continue;
    const uint64_t d = DmirrorAllocDeviceDst(ks_, m_);
    if (d == 0) continue;
    const PageRef to = MigratePageRef(ks_, d);
    // An empty slot stays zero; seeded defect: so does every page.
    if ((s & kMigratePfnValid) && !DefectActive(Defect::kMigrateLosesDirtyData)) {
      batch_.Copy(MigratePageRef(ks_, s), to);
    } else {
      batch_.Zero(to);
    }
    const bool write = (s & kMigratePfnWrite) || (!(s & kMigratePfnValid) && vma_write_);
    a.dst[i] = d | (write ? uint64_t{kMigratePfnWrite} : 0);
  }
  Copy();
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_migrate_finalize_and_map().
void DmirrorMigrator::FinalizeAndMapToDev(const MigrateVmaArgs& a) {
  sched::LockAt("dmirror_migrate_map_lock", m_.update_lock);
  std::lock_guard<std::mutex> update(m_.update_lock, std::adopt_lock);
  for (size_t i = 0; i < a.src.size(); ++i) {
    if (!(a.src[i] & kMigratePfnMigrate) || !(a.dst[i] & kMigratePfnValid)) continue;
    const bool write = a.dst[i] & kMigratePfnWrite;
    *m_.pt.WalkAlloc(AddrVpn(a.start) + i) = MakeDeviceEntry(MigratePfnToPfn(a.dst[i]), write);
    ++moved_;
  }
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_devmem_fault_alloc_and_copy() as
// dmirror_migrate_to_system() uses it, with the FLAGS ioctl's failure.
void DmirrorMigrator::AllocAndCopyToSys(MigrateVmaArgs& a) {
  batch_.Clear();
  erase_.clear();
  for (size_t i = 0; i < a.src.size(); ++i) {
    const uint64_t s = a.src[i];
    if (!(s & kMigratePfnValid) || !(s & kMigratePfnMigrate)) continue;
    if (TakeFailAlloc(m_)) continue;
    const uint64_t d = MigrateAllocSystemDst(ks_);
    // Is RAM full?
    if (d == 0) continue;
    erase_.push_back(AddrVpn(a.start) + i);
    batch_.Copy(MigratePageRef(ks_, s), MigratePageRef(ks_, d));
    a.dst[i] = d | (s & kMigratePfnWrite);
  }
  if (!erase_.empty()) {
    sched::LockAt("dmirror_migrate_erase_lock", m_.update_lock);
    std::lock_guard<std::mutex> update(m_.update_lock, std::adopt_lock);
    for (uint64_t vpn : erase_) {
      if (pte_t* e = m_.pt.Lookup(vpn)) *e = 0;  // xa_erase()
    }
    m_.pt.FreeEmptyTables(AddrVpn(a.start), AddrVpn(a.end));
  }
  Copy();
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_successful_migrated_pages().
void DmirrorMigrator::CountToSys(const MigrateVmaArgs& a) {
  for (uint64_t s : a.src) {
    moved_ += (s & kMigratePfnValid) && (s & kMigratePfnMigrate);
  }
}

// What one migration ioctl names: the mirror, a range and the direction.
struct MigrateIoctl {
  uint64_t mirror = 0;
  uint64_t addr = 0;
  uint64_t npages = 0;
  bool to_device = false;
  bool bounce_limit = true;  // MIGRATE_TO_DEV/TO_SYS; not the bench's loop
};

// The ioctl's guards (the mirror's, then DmirrorCheck's), then its loop under
// the mmap_lock: the pages that moved; *m the mirror. REQUIRES: quiesce.
Result<uint64_t> RunMigrateIoctl(KernelState& ks, const MigrateIoctl& io,
                                 std::shared_ptr<Mirror>* m) {
  *m = FindMirror(ks, io.mirror);
  // Is the mirror registered?
  if (*m == nullptr) return Errno::kNoEnt;
  Errno err = DmirrorCheck(**m, io.addr, io.npages, io.bounce_limit);
  if (err != Errno::kOk) return err;
  std::shared_lock<std::shared_mutex> mmap_lock = MmapReadLock(*(*m)->proc);
  // Did the process exit since the guards? (mmget_not_zero())
  if ((*m)->proc->exited) return Errno::kInval;
  DmirrorMigrator migrator(ks, **m, io.to_device);
  err = migrator.Run(io.addr, io.npages);
  if (err != Errno::kOk) return err;
  return migrator.moved();
}

}  // namespace

uint64_t DmirrorAllocDeviceDst(KernelState& ks, Mirror& m) {
  if (TakeFailAlloc(m)) return 0;
  if (uint64_t d = AllocFromDevice(ks, m.device)) return d;
  // None free: a chunk of the driver's own (dmirror_allocate_chunk()), then
  // its first page.
  if (!DevmemAdd(ks, m.device, kDmirrorChunkBytes, /*dmirror_chunk=*/true).ok()) return 0;
  return AllocFromDevice(ks, m.device);
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_migrate_to_device(), then its read-back.
Result<DmirrorResult> Kernel::DmirrorMigrateToDev(uint64_t mirror, uint64_t addr,
                                                  uint64_t npages) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_ptr<Mirror> m;
  Result<uint64_t> moved = RunMigrateIoctl(*st_, {mirror, addr, npages, true}, &m);
  if (!moved.ok()) return moved.err;
  DmirrorResult res;
  res.data.resize(npages * kPageSize);
  const uint64_t start = AddrVpn(addr);
  // Is every page in pt now? (dmirror_do_read(): -ENOENT at the first missing one)
  if (DmirrorCopy(*st_, *m, start, start + npages, res.data.data(), false) != npages) {
    return Errno::kNoEnt;
  }
  res.cpages = npages;
  return res;
}

// Mirrors: 6.1 lib/test_hmm.c dmirror_migrate_to_system().
Result<DmirrorResult> Kernel::DmirrorMigrateToSys(uint64_t mirror, uint64_t addr,
                                                  uint64_t npages) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_ptr<Mirror> m;
  Result<uint64_t> moved = RunMigrateIoctl(*st_, {mirror, addr, npages, false}, &m);
  if (!moved.ok()) return moved.err;
  DmirrorResult res;
  res.cpages = moved.value;
  return res;
}

Result<uint64_t> Kernel::DmirrorMigrateRange(uint64_t mirror, uint64_t addr, uint64_t npages,
                                             bool to_device) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_ptr<Mirror> m;
  return RunMigrateIoctl(*st_, {mirror, addr, npages, to_device, false}, &m);
}

// Mirrors: lib/test_hmm.c's HMM_DMIRROR_FLAGS (later kernels).
Errno Kernel::DmirrorFlags(uint64_t mirror, uint64_t flags) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_ptr<Mirror> m = FindMirror(*st_, mirror);
  // Is the mirror registered?
  if (m == nullptr) return Errno::kNoEnt;
  // Does it name only known flags?
  if (flags & ~kDmirrorFlagFailAlloc) return Errno::kInval;
  m->flags.store(flags, std::memory_order_relaxed);
  return Errno::kOk;
}

// Mirrors: 6.1 lib/test_hmm.c's HMM_DMIRROR_RELEASE.
Errno Kernel::DmirrorRelease(uint64_t mirror) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_ptr<Mirror> m = FindMirror(*st_, mirror);
  // Is the mirror registered?
  if (m == nullptr) return Errno::kNoEnt;
  return DmirrorEvict(*st_, m->device);
}

}  // namespace hmm::impl
