// File: impl/page.cc

#include "impl/page.h"

#include <cassert>
#include <cstdlib>
#include <cstring>

#include "impl/sched.h"

namespace hmm::impl {

void PageArray::FreeDeleter::operator()(uint8_t* p) const { std::free(p); }

PageArray::PageArray(uint64_t ram_pages)
    : ram_pages_(ram_pages),
      pages_(new Page[ram_pages + 1]),
      data_(static_cast<uint8_t*>(std::calloc(ram_pages + 1, kBytesPerPage))) {
  assert(ram_pages < kNoPage && data_ != nullptr);
  pages_[zero_pfn()].flags.store(kPgReserved, std::memory_order_relaxed);
  // Free list in ascending pfn order, so a fresh kernel hands out 0, 1, 2, ...
  std::lock_guard<std::mutex> zone(zone_lock_);
  for (uint64_t pfn = ram_pages; pfn-- > 0;) {
    pages_[pfn].flags.store(kPgBuddy, std::memory_order_relaxed);
    pages_[pfn].next_free = free_head_;
    free_head_ = static_cast<uint32_t>(pfn);
  }
  nr_free_ = ram_pages;
}

std::optional<uint64_t> PageArray::AllocPage(uint32_t kind, bool zero) {
  uint64_t pfn;
  {
    std::lock_guard<std::mutex> zone(zone_lock_);
    // Is any page free?
    if (free_head_ == kNoPage) return std::nullopt;
    pfn = free_head_;
    free_head_ = pages_[pfn].next_free;
    --nr_free_;
    pages_[pfn].flags.store(kind, std::memory_order_relaxed);
  }
  // The page is ours until published: safe to zero without its lock (the
  // zone lock ordered the previous owner's last access before this one).
  if (zero) std::memset(data(pfn), 0, kBytesPerPage);
  // +1: the caller's reference (mm/page_alloc.c set_page_refcounted()).
  pages_[pfn].refcount.store(1, std::memory_order_release);
  return pfn;
}

void PageArray::GetPage(uint64_t pfn) {
  if (IsZero(pfn)) return;
  uint32_t old = pages_[pfn].refcount.fetch_add(1, std::memory_order_relaxed);
  assert(old > 0 && "get_page on a free page");
  (void)old;
}

void PageArray::PutPage(uint64_t pfn) {
  if (IsZero(pfn)) return;
  uint32_t old = pages_[pfn].refcount.fetch_sub(1, std::memory_order_acq_rel);
  assert(old > 0 && "put_page underflow");
  if (old == 1) FreePage(pfn);
}

// Mirrors: mm/page_alloc.c free_unref_page(), __free_one_page().
void PageArray::FreePage(uint64_t pfn) {
  Page& p = pages_[pfn];
  assert(p.mapcount.load(std::memory_order_relaxed) == 0 && "freeing a mapped page");
  std::lock_guard<std::mutex> zone(zone_lock_);
  p.flags.store(kPgBuddy, std::memory_order_relaxed);
  p.next_free = free_head_;
  free_head_ = static_cast<uint32_t>(pfn);
  ++nr_free_;
}

void PageArray::LockPage(uint64_t pfn) {
  std::atomic<uint32_t>& f = pages_[pfn].flags;
  while (f.fetch_or(kPgLocked, std::memory_order_acquire) & kPgLocked) {
    // The holder (a copy, or a migration from collect to finalize) ends: wait, then retry.
    while (f.load(std::memory_order_relaxed) & kPgLocked) sched::SpinYield("lock_page");
  }
}

void PageArray::WaitPageUnlocked(uint64_t pfn) const {
  while (pages_[pfn].flags.load(std::memory_order_acquire) & kPgLocked) {
    sched::SpinYield("wait_on_page_locked");
  }
}

bool PageArray::TrylockPage(uint64_t pfn) {
  return (pages_[pfn].flags.fetch_or(kPgLocked, std::memory_order_acquire) & kPgLocked) == 0;
}

void PageArray::UnlockPage(uint64_t pfn) {
  uint32_t old = pages_[pfn].flags.fetch_and(~uint32_t{kPgLocked}, std::memory_order_release);
  assert((old & kPgLocked) && "unlock_page of an unlocked page");
  (void)old;
}

std::vector<uint64_t> PageArray::InUse() const {
  std::vector<uint64_t> out;
  std::lock_guard<std::mutex> zone(zone_lock_);
  for (uint64_t pfn = 0; pfn < ram_pages_; ++pfn) {
    if (!(pages_[pfn].flags.load(std::memory_order_relaxed) & kPgBuddy)) out.push_back(pfn);
  }
  return out;
}

uint64_t PageArray::nr_free() const {
  std::lock_guard<std::mutex> zone(zone_lock_);
  return nr_free_;
}

void PageArray::CheckFreeList(std::vector<std::string>* out) const {
  std::lock_guard<std::mutex> zone(zone_lock_);
  std::vector<bool> listed(ram_pages_, false);
  uint64_t length = 0;
  for (uint32_t pfn = free_head_; pfn != kNoPage; pfn = pages_[pfn].next_free) {
    // Is the link a RAM pfn, seen once (no cycle)?
    if (pfn >= ram_pages_ || listed[pfn]) {
      out->push_back("InvFreeListWellFormed: bad or repeated pfn " + std::to_string(pfn));
      return;
    }
    listed[pfn] = true;
    ++length;
  }
  if (length != nr_free_) {
    out->push_back("InvFreeListWellFormed: length=" + std::to_string(length) +
                   " nr_free=" + std::to_string(nr_free_));
  }
  for (uint64_t pfn = 0; pfn < ram_pages_; ++pfn) {
    const Page& p = pages_[pfn];
    bool buddy = p.flags.load(std::memory_order_relaxed) & kPgBuddy;
    if (buddy != listed[pfn]) {
      out->push_back("InvFreeListMatchesBuddyFlag: pfn " + std::to_string(pfn) +
                     " listed=" + std::to_string(listed[pfn]) + " buddy=" + std::to_string(buddy));
    }
    if (buddy && (p.refcount.load() != 0 || p.mapcount.load() != 0)) {
      out->push_back("InvFreePageUnreferenced: pfn " + std::to_string(pfn) +
                     " refcount=" + std::to_string(p.refcount.load()) +
                     " mapcount=" + std::to_string(p.mapcount.load()));
    }
  }
}

}  // namespace hmm::impl
