// File: impl/devmem.h
//
// ZONE_DEVICE device-private memory (docs/devmem.md): one Devmem is one
// hmm_devmem region (mm/hmm.c struct hmm_devmem with its struct dev_pagemap,
// include/linux/memremap.h), with the struct pages of its device memory and
// the dummy driver's page allocator; the DevmemTable finds a region by id or
// by pfn (kernel/memremap.c get_dev_pagemap()); the DeviceEventLog records
// the driver callbacks in the order they ran.
//
// Struct pages: 16 bytes each (DevicePage), against the kernel's 64: an
// atomic refcount, an atomic mapcount, atomic flags (the driver's hold and the
// page lock, include/linux/pagemap.h lock_page(), which migration takes) and
// `allocations`. There is no
// pgmap back pointer: a DevicePage lives in its region's memmap and is only
// ever reached through the region (pfn_to_page() needs the region here, as
// there is no global vmemmap), so the pointer would be redundant.
//
// The memmap is populated on demand, 512 pages (one chunk, a 2 MiB span) at
// a time, up to the highest page ever allocated, as the kernel's deferred
// struct page init (mm/page_alloc.c deferred_init_memmap()) does for boot
// memory. A page past the populated prefix is free and was never allocated,
// which is exactly what a fresh struct page says; since the allocator hands
// out the lowest free pfn, the populated prefix only grows when every page
// below it is in use. So HmmDevmemAdd costs O(1) whatever the size (a valid
// region can span 2^40 pages), and memory follows the pages in use.
//
// `allocations` counts the times the allocator handed the page out. It is
// instrumentation, not kernel state: RepInvariant checks with it that
// page_free ran exactly once per allocation (InvDevicePageFreeOncePerAllocation),
// and Devmems() reports it as the model's DevicePage::allocations.
//
// Device memory contents (4 KiB a page; docs/mirror.md): what the dummy
// device reads and writes through a mirror's device page table and what
// migration copies (impl/copy_engine.h). Stored per memmap chunk, in one
// 2 MiB block allocated at the chunk's first write, with a
// per-page `written` bit: a page whose bit is clear reads as zeros, and
// every allocation clears it, so a page reads as zeros after DevicePageAlloc
// without a 4 KiB clear and without a heap allocation per page. Not
// metadata: MetadataBytes() leaves the blocks out.
//
// Thread safety
//   id, device, first_pfn, npages, dmirror_chunk and ops are constant. `lock`
//   (the driver's allocator lock) guards the free bitmap, the memmap's growth,
//   the hold flag, allocations, page_frees and the contents, and every
//   refcount move between 1 and 2 (allocation 1 -> 2; the put that frees,
//   2 -> 1). The page lock bit (kDevPgLocked) is taken and dropped lock-free
//   by whoever holds a reference to the page (TrylockPage/UnlockPage); it
//   orders a migration's copy of the contents against the dummy device's
//   copies through a mirror, which try it too (impl/kernel_state.h). Other refcount and
//   mapcount changes are lock-free atomics on a page the caller holds a
//   reference to (an entry or the driver's hold), which keeps the page
//   populated and the region alive. page() reads the memmap directory
//   lock-free: directories are replaced, never freed, while the region lives
//   (fs/file.c expand_fdtable()'s scheme without RCU's grace period).
//   The DevmemTable is guarded by KernelState::devmems_lock; the event log
//   has its own leaf lock. Order: impl/kernel_state.h.
//
// Invariants:
//   1. refcount == 1 + (held ? 1 : 0) + device entries naming the page, and
//      mapcount == those entries; refcount never drops below 1.
//   2. A populated page's free bit is set iff its refcount is 1; pages past
//      npages in the last chunk are never free (never handed out).
//   3. page_frees == sum of allocations - pages with refcount > 1: every
//      allocation ends in exactly one page_free, once its page is free again.
//   4. hint_ <= the lowest free populated page (the search starts there).

#ifndef HMMREF_IMPL_DEVMEM_H_
#define HMMREF_IMPL_DEVMEM_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "impl/kernel.h"
#include "model/types.h"

namespace hmm::impl {

enum DevicePageFlag : uint32_t {
  kDevPgHeld = 1u << 0,    // the driver holds its allocation reference
  kDevPgLocked = 1u << 1,  // PG_locked: the page lock (a migration's, or a copy's)
};

// 16 bytes per device page (the kernel's struct page is 64).
struct DevicePage {
  std::atomic<uint32_t> refcount{1};  // _refcount: 1 is free (the 2017 rule)
  std::atomic<uint32_t> mapcount{0};  // device-private entries naming the page
  std::atomic<uint32_t> flags{0};     // DevicePageFlag bits; kDevPgHeld changes under Devmem::lock
  uint32_t allocations = 0;           // instrumentation; guarded by Devmem::lock
};
static_assert(sizeof(DevicePage) == 16, "device struct page grew");

class Devmem;

// Mirrors: include/linux/hmm.h struct hmm_devmem_ops (free, fault): the
// driver's callbacks. hmmref's dummy driver logs them (DeviceEventLog).
struct DevmemOps {
  // page_free: the page's refcount went 2 -> 1. Called under Devmem::lock.
  std::function<void(const Devmem&, uint64_t pfn)> free;
  // page_fault: a CPU access met a device-private entry of the region.
  std::function<void(const Devmem&, uint64_t pfn, uint64_t pid, uint64_t addr)> fault;
};

class Devmem {
 public:
  static constexpr uint64_t kChunkPages = 512;

  Devmem(uint64_t id, DeviceId device, uint64_t first_pfn, uint64_t npages, DevmemOps ops,
         bool dmirror_chunk = false);
  Devmem(const Devmem&) = delete;
  Devmem& operator=(const Devmem&) = delete;

  const uint64_t id;
  const DeviceId device;
  const uint64_t first_pfn;
  const uint64_t npages;
  const DevmemOps ops;
  const bool dmirror_chunk;  // added by the dummy device's allocator (docs/migrate.md)
  mutable std::mutex lock;

  bool Contains(uint64_t pfn) const { return pfn >= first_pfn && pfn - first_pfn < npages; }

  // The struct page of pfn, lock-free. REQUIRES: the caller holds a
  // reference to it (a device entry, or the driver's hold), so it is populated.
  DevicePage& page(uint64_t pfn) const;
  // The struct page of pfn, or nullptr when the memmap does not reach it yet
  // (then it is free and was never allocated). REQUIRES: lock; Contains(pfn).
  DevicePage* FindPage(uint64_t pfn) const;

  // The driver's allocation (docs/devmem.md DevicePageAlloc): the lowest free
  // pfn, now held, allocations + 1, refcount 1 -> 2; nullopt when every page
  // is in use. REQUIRES: lock.
  std::optional<uint64_t> AllocPage();
  // Mirrors: include/linux/mm.h put_page() ->
  // kernel/memremap.c put_zone_device_private_or_public_page(): drops one
  // reference; the put that leaves 1 frees the page and calls ops.free.
  // REQUIRES: the caller owns the reference; lock not held.
  void PutPage(uint64_t pfn);
  // The same. REQUIRES: lock.
  void PutPageLocked(uint64_t pfn);
  // Counts a page_free and calls ops.free. Only FreePage calls it, and the
  // seeded defects kPageFreeTwice and kMigratePageFreeTwice (impl/defects.h).
  // REQUIRES: lock.
  void NotifyPageFree(uint64_t pfn);
  // The driver drops its allocation reference (put_page() of its hold):
  // held cleared, refcount - 1, page_free at 1. REQUIRES: lock; the page held.
  void ReleaseHoldLocked(uint64_t pfn);

  // Mirrors: include/linux/pagemap.h trylock_page(), unlock_page() of a
  // device page. Lock-free. REQUIRES: the caller holds a reference, or the
  // page is populated and the region alive (lock or devmems_lock held).
  bool TrylockPage(uint64_t pfn) const;
  void UnlockPage(uint64_t pfn) const;
  bool PageLocked(uint64_t pfn) const;

  // REQUIRES: lock, or every operation excluded (RepInvariant).
  uint64_t page_frees() const { return page_frees_; }
  uint64_t populated() const { return nr_chunks_ * kChunkPages; }
  bool IsFree(uint64_t pfn) const;
  // Is some page held or mapped (refcount > 1)? (hmm_devmem_remove()'s wait
  // for the pgmap ref, as a refusal.) REQUIRES: lock, or no page user runs.
  bool Busy() const;
  // Bytes of metadata: the struct pages populated, bitmaps, directories and
  // this object. REQUIRES: lock.
  size_t MetadataBytes() const;

  // The page's 4 KiB of contents (zeros if never written since its last
  // allocation). REQUIRES: lock; Contains(pfn).
  void ReadContents(uint64_t pfn, uint8_t* out) const;
  // REQUIRES: lock; the page populated (it was allocated once).
  void WriteContents(uint64_t pfn, const uint8_t* in);
  // The page reads as zeros from now on. REQUIRES: lock; Contains(pfn).
  void ZeroContents(uint64_t pfn);

 private:
  static constexpr uint64_t kChunkWords = kChunkPages / 64;
  struct FreeDeleter {
    void operator()(uint8_t* p) const;
  };
  struct Chunk {
    DevicePage pages[kChunkPages];
    uint64_t free[kChunkWords] = {};     // bit set: the page is free; guarded by lock
    uint64_t written[kChunkWords] = {};  // bit set: data holds the page; guarded by lock
    std::unique_ptr<uint8_t, FreeDeleter> data;  // kChunkPages * 4 KiB, on first write
  };

  // The next chunk of the memmap, every page in range free. REQUIRES: lock;
  // populated() < npages.
  void Populate();
  // A chunk's 2 MiB contents block (devmem.cc); nullptr if the host has none.
  static uint8_t* AllocContentsBlock();
  // A refcount that just went 2 -> 1: the page is free. REQUIRES: lock.
  void FreePage(uint64_t pfn);
  // Takes the free page at index idx (pfn - first_pfn). REQUIRES: lock.
  uint64_t TakePage(uint64_t idx);

  std::atomic<Chunk* const*> dir_{nullptr};      // chunks [0, nr_chunks_); lock-free readers
  std::vector<std::unique_ptr<Chunk*[]>> dirs_;  // every directory published; guarded by lock
  std::vector<std::unique_ptr<Chunk>> chunks_;   // guarded by lock
  uint64_t nr_chunks_ = 0;                       // guarded by lock
  uint64_t dir_capacity_ = 0;                    // guarded by lock
  uint64_t hint_ = 0;                            // guarded by lock (invariant 4)
  uint64_t page_frees_ = 0;                      // guarded by lock
};

// The live regions (mm/hmm.c's devmems, plus kernel/memremap.c's pgmap_radix
// for lookups by pfn). Not synchronized: KernelState::devmems_lock guards it.
class DevmemTable {
 public:
  Devmem* FindById(uint64_t id) const;
  // Mirrors: kernel/memremap.c get_dev_pagemap(): the region holding pfn, or nullptr.
  Devmem* FindByPfn(uint64_t pfn) const;
  void Insert(std::unique_ptr<Devmem> devmem);
  void Erase(uint64_t id);
  const std::map<uint64_t, std::unique_ptr<Devmem>>& all() const { return by_id_; }

  uint64_t next_id = 1;  // ids are never reused

 private:
  std::map<uint64_t, std::unique_ptr<Devmem>> by_id_;
  std::map<uint64_t, Devmem*> by_first_pfn_;
};

// The lock of one region at a time, for a loop over device pages (a copy
// batch, a migration's finalize): Hold(pfn) keeps the lock it has while pfn
// lies in the same region, else switches. REQUIRES: KernelState::devmems_lock
// (shared) over its life.
class RegionLockCursor {
 public:
  explicit RegionLockCursor(const DevmemTable& devmems) : devmems_(devmems) {}

  // The region of pfn, its lock held; nullptr (no lock) if no live region holds it.
  Devmem* Hold(uint64_t pfn) {
    if (held_ == nullptr || !held_->Contains(pfn)) {
      if (guard_.owns_lock()) guard_.unlock();
      held_ = devmems_.FindByPfn(pfn);
      if (held_ != nullptr) guard_ = std::unique_lock<std::mutex>(held_->lock);
    }
    return held_;
  }

 private:
  const DevmemTable& devmems_;
  Devmem* held_ = nullptr;
  std::unique_lock<std::mutex> guard_;
};

// Every page_free and fault callback, in the order they ran. Thread-safe: its
// lock is a leaf (taken under a Devmem::lock, or under a ptl for a fault).
class DeviceEventLog {
 public:
  void PageFree(uint64_t devmem, uint64_t pfn);
  void Fault(uint64_t devmem, uint64_t pfn, uint64_t pid, uint64_t addr);
  std::vector<DeviceEventInfo> Snapshot() const;

 private:
  mutable std::mutex lock_;
  // A deque: a migration of 64K device pages back logs 64K page_frees, and
  // appending never moves the ones logged.
  std::deque<DeviceEventInfo> events_;  // guarded by lock_
};

}  // namespace hmm::impl

#endif  // HMMREF_IMPL_DEVMEM_H_
