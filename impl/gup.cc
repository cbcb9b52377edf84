// File: impl/gup.cc
//
// Long-term pins (mm/gup.c pin_user_pages() with FOLL_WRITE |
// FOLL_LONGTERM): each page is write-faulted exclusive, then held by one
// reference per pin until UnpinUserPages, across munmap, madvise and exit.
// The fault brings a device-private page back to RAM first (migrate_to_ram),
// so a pin never holds a device page; a pinned page fails migration's pin
// check and stays where it is.

#include <mutex>
#include <shared_mutex>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_state.h"

namespace hmm::impl {

// Mirrors: mm/gup.c pin_user_pages() -> __get_user_pages().
Result<PinId> Kernel::PinUserPages(Pid pid, uint64_t addr, uint64_t npages) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  MmapLockGuard mm(*st_, pid, MmapLockGuard::kRead);
  Process* p = mm.proc();
  // Is the pid a live process?
  if (p == nullptr) return Errno::kSrch;
  // Is addr page aligned?
  if (!PageAligned(addr)) return Errno::kInval;
  // Is npages in [1, kMaxPinPages]?
  if (npages == 0 || npages > kMaxPinPages) return Errno::kInval;
  // Does the range end at or below kTaskSize?
  if (RangeOverflows(addr, npages * kPageSize)) return Errno::kFault;
  std::vector<uint64_t> pfns;
  Errno err = Errno::kOk;
  // Loop invariant: pfns holds one pin reference per page before `at`.
  for (uint64_t at = addr; at < addr + npages * kPageSize; at += kPageSize) {
    const Vma* vma = p->vmas.Find(at);
    // Is there a writable VMA at this page? (check_vma_flags())
    if (vma == nullptr || !(vma->prot & kProtWrite)) {
      err = Errno::kFault;
      break;
    }
    // +1: FaultInPage's reference becomes the pin's (FOLL_PIN).
    Result<uint64_t> pfn = FaultInPage(*st_, *p, pid, *vma, at, /*write=*/true);
    if (!pfn.ok()) {
      err = pfn.err;
      break;
    }
    pfns.push_back(pfn.value);
  }
  if (err != Errno::kOk) {
    // -1 each: unpin_user_pages() of the pins taken so far; the faults stay.
    for (uint64_t pfn : pfns) st_->pages.PutPage(pfn);
    return err;
  }
  std::lock_guard<std::mutex> pins(st_->pins_lock);
  uint64_t id = st_->next_pin++;
  st_->pins.emplace(id, std::move(pfns));
  return PinId(id);
}

// Mirrors: mm/gup.c unpin_user_pages().
Errno Kernel::UnpinUserPages(PinId pin) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::vector<uint64_t> pfns;
  {
    std::lock_guard<std::mutex> pins(st_->pins_lock);
    auto it = st_->pins.find(pin.value);
    // Is the pin known and still held?
    if (it == st_->pins.end()) return Errno::kNoEnt;
    pfns = std::move(it->second);
    st_->pins.erase(it);
  }
  // -1 each: the pin's reference; a page nothing else holds is freed.
  for (uint64_t pfn : pfns) st_->pages.PutPage(pfn);
  return Errno::kOk;
}

}  // namespace hmm::impl
