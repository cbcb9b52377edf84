// File: impl/copy_engine.cc
//
// The synchronous copy engine (copy_engine.h): a batch runs in order, each
// device-side op under its region's lock, the lock kept across consecutive
// ops of one region (RegionLockCursor) so that a batch of a migrate_vma call
// (pages of one region, mostly) takes it once.

#include "impl/copy_engine.h"

#include <cstring>
#include <mutex>

#include "impl/devmem.h"
#include "model/types.h"

namespace hmm::impl {
namespace {

// Reads the page into out: RAM straight from its frame, device memory from
// its region (zeros for a page of no live region).
void ReadPage(PageArray& pages, RegionLockCursor& regions, PageRef src, uint8_t* out) {
  if (!src.device) {
    std::memcpy(out, pages.data(src.pfn), kPageSize);
    return;
  }
  Devmem* devmem = regions.Hold(src.pfn);
  if (devmem == nullptr) {
    std::memset(out, 0, kPageSize);
    return;
  }
  devmem->ReadContents(src.pfn, out);
}

// Mirrors: include/linux/highmem.h copy_highpage() / clear_highpage() onto
// a RAM frame or (device) a device page's contents.
void RunOp(PageArray& pages, RegionLockCursor& regions, const CopyOp& op) {
  if (!op.dst.device) {
    uint8_t* to = pages.data(op.dst.pfn);
    if (op.zero) {
      std::memset(to, 0, kPageSize);
    } else {
      ReadPage(pages, regions, op.src, to);
    }
    return;
  }
  if (op.zero) {
    if (Devmem* devmem = regions.Hold(op.dst.pfn)) devmem->ZeroContents(op.dst.pfn);
    return;
  }
  if (!op.src.device) {
    if (Devmem* devmem = regions.Hold(op.dst.pfn)) devmem->WriteContents(op.dst.pfn, pages.data(op.src.pfn));
    return;
  }
  // Device to device: through a bounce page, one region lock at a time.
  uint8_t bounce[kPageSize];
  ReadPage(pages, regions, op.src, bounce);
  if (Devmem* devmem = regions.Hold(op.dst.pfn)) devmem->WriteContents(op.dst.pfn, bounce);
}

}  // namespace

Fence SyncCopyEngine::Submit(const CopyBatch& batch) {
  {
    std::shared_lock<std::shared_mutex> devmems(devmems_lock_);
    RegionLockCursor regions(devmems_);
    for (const CopyOp& op : batch.ops()) RunOp(pages_, regions, op);
  }
  return next_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace hmm::impl
