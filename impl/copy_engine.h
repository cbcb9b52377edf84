// File: impl/copy_engine.h
//
// The dummy device's copy engine: what a device-private driver programs in
// its alloc_and_copy callback (lib/test_hmm.c uses copy_highpage() and
// clear_highpage() on its backing pages; a GPU driver queues DMA). It moves
// whole 4 KiB pages between system RAM (impl/page.h) and device memory (a
// Devmem's contents, impl/devmem.h), in batches: a driver fills a CopyBatch
// with one op per page of a migrate_vma call, submits it once, and waits on
// the returned fence before the core may look at the destination pages
// (migrate_vma_pages()).
//
// The interface admits an asynchronous engine (Submit queues the batch and
// returns at once; Wait blocks until its fence has signalled, in submission
// order). hmmref ships the synchronous one: Submit copies before it returns,
// so every fence it hands out has already signalled.
//
// Thread safety
//   Submit and Wait may be called from any thread. REQUIRES of a batch: the
//   caller holds every page it names stable for the engine's use, as a
//   migration does (sources locked by the core, destinations allocated and
//   locked by the driver) and keeps them until Wait returns. The engine takes
//   devmems_lock (shared) and one region lock at a time for the device side
//   (impl/kernel_state.h 4a, 4b), and no other lock.

#ifndef HMMREF_IMPL_COPY_ENGINE_H_
#define HMMREF_IMPL_COPY_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <shared_mutex>
#include <vector>

#include "impl/page.h"

namespace hmm::impl {

class DevmemTable;  // impl/devmem.h

// One side of a copy: a RAM pfn, or (device) a device pfn of a live region.
struct PageRef {
  uint64_t pfn = 0;
  bool device = false;
};

// One page of work: copy src into dst, or (zero) fill dst with zeros.
struct CopyOp {
  PageRef src;
  PageRef dst;
  bool zero = false;
};

class CopyBatch {
 public:
  void Copy(PageRef src, PageRef dst) { ops_.push_back({src, dst, false}); }
  void Zero(PageRef dst) { ops_.push_back({PageRef{}, dst, true}); }
  // Empties the batch, keeping its storage (one batch serves many calls).
  void Clear() { ops_.clear(); }
  bool empty() const { return ops_.empty(); }
  const std::vector<CopyOp>& ops() const { return ops_; }

 private:
  std::vector<CopyOp> ops_;
};

// Completion of one submitted batch; fences of one engine grow with
// submission order.
using Fence = uint64_t;

class CopyEngine {
 public:
  virtual ~CopyEngine() = default;
  // Starts the batch's copies; the batch may be reused once this returns.
  virtual Fence Submit(const CopyBatch& batch) = 0;
  // Returns once every op of the batch that returned `fence` is done (its
  // bytes visible to the caller).
  virtual void Wait(Fence fence) = 0;
};

class SyncCopyEngine final : public CopyEngine {
 public:
  SyncCopyEngine(PageArray& pages, std::shared_mutex& devmems_lock, const DevmemTable& devmems)
      : pages_(pages), devmems_lock_(devmems_lock), devmems_(devmems) {}

  // Copies every op, in order, before it returns.
  Fence Submit(const CopyBatch& batch) override;
  // Nothing is ever pending.
  void Wait(Fence fence) override {}

 private:
  PageArray& pages_;
  std::shared_mutex& devmems_lock_;
  const DevmemTable& devmems_;
  std::atomic<Fence> next_{1};
};

}  // namespace hmm::impl

#endif  // HMMREF_IMPL_COPY_ENGINE_H_
