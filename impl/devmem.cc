// File: impl/devmem.cc
//
// The device-private region (devmem.h): its on-demand memmap, the lowest-free
// page allocator, the put that calls page_free, and the region table and
// event log.

#include "impl/devmem.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace hmm::impl {

Devmem::Devmem(uint64_t id, DeviceId device, uint64_t first_pfn, uint64_t npages, DevmemOps ops,
               bool dmirror_chunk)
    : id(id),
      device(device),
      first_pfn(first_pfn),
      npages(npages),
      ops(std::move(ops)),
      dmirror_chunk(dmirror_chunk) {}

void Devmem::FreeDeleter::operator()(uint8_t* p) const { std::free(p); }

namespace {

constexpr size_t kBlockBytes = Devmem::kChunkPages * kPageSize;  // 2 MiB

}  // namespace

// A chunk's contents block, left uninitialized (a page's written bit says
// whether its bytes mean anything): the host maps its pages at first touch.
// (Asking for huge pages with madvise(MADV_HUGEPAGE) made first touches
// stall in the host's compaction: ten times slower on a busy machine.)
uint8_t* Devmem::AllocContentsBlock() {
  return static_cast<uint8_t*>(std::malloc(kBlockBytes));
}

DevicePage& Devmem::page(uint64_t pfn) const {
  uint64_t idx = pfn - first_pfn;
  Chunk* const* dir = dir_.load(std::memory_order_acquire);
  return dir[idx / kChunkPages]->pages[idx % kChunkPages];
}

DevicePage* Devmem::FindPage(uint64_t pfn) const {
  uint64_t idx = pfn - first_pfn;
  if (idx >= populated()) return nullptr;
  return &chunks_[idx / kChunkPages]->pages[idx % kChunkPages];
}

bool Devmem::IsFree(uint64_t pfn) const {
  uint64_t idx = pfn - first_pfn;
  if (idx >= populated()) return idx < npages;
  uint64_t bit = idx % kChunkPages;
  return (chunks_[idx / kChunkPages]->free[bit / 64] >> (bit % 64)) & 1;
}

void Devmem::Populate() {
  auto chunk = std::make_unique<Chunk>();
  uint64_t base = populated();
  uint64_t n = std::min(kChunkPages, npages - base);
  for (uint64_t i = 0; i < n; ++i) chunk->free[i / 64] |= uint64_t{1} << (i % 64);
  if (nr_chunks_ == dir_capacity_) {
    // A bigger directory; the old one stays valid for readers that loaded it.
    uint64_t capacity = std::max<uint64_t>(8, 2 * dir_capacity_);
    auto dir = std::make_unique<Chunk*[]>(capacity);
    for (uint64_t i = 0; i < nr_chunks_; ++i) dir[i] = chunks_[i].get();
    dirs_.push_back(std::move(dir));
    dir_capacity_ = capacity;
  }
  dirs_.back()[nr_chunks_] = chunk.get();
  chunks_.push_back(std::move(chunk));
  ++nr_chunks_;
  dir_.store(dirs_.back().get(), std::memory_order_release);
}

uint64_t Devmem::TakePage(uint64_t idx) {
  Chunk& chunk = *chunks_[idx / kChunkPages];
  uint64_t bit = idx % kChunkPages;
  chunk.free[bit / 64] &= ~(uint64_t{1} << (bit % 64));
  DevicePage& pg = chunk.pages[bit];
  pg.flags |= kDevPgHeld;
  ++pg.allocations;
  // +1: the driver's hold (get_page()); 1 -> 2 only under lock.
  pg.refcount.fetch_add(1, std::memory_order_acq_rel);
  hint_ = idx + 1;  // idx was the lowest free page
  chunk.written[bit / 64] &= ~(uint64_t{1} << (bit % 64));  // zero at each allocation
  return first_pfn + idx;
}

void Devmem::ReadContents(uint64_t pfn, uint8_t* out) const {
  uint64_t idx = pfn - first_pfn;
  const Chunk* chunk = idx < populated() ? chunks_[idx / kChunkPages].get() : nullptr;
  uint64_t bit = idx % kChunkPages;
  if (chunk == nullptr || !((chunk->written[bit / 64] >> (bit % 64)) & 1)) {
    std::memset(out, 0, kPageSize);
    return;
  }
  std::memcpy(out, chunk->data.get() + bit * kPageSize, kPageSize);
}

void Devmem::WriteContents(uint64_t pfn, const uint8_t* in) {
  uint64_t idx = pfn - first_pfn;
  Chunk& chunk = *chunks_[idx / kChunkPages];
  if (!chunk.data) chunk.data.reset(AllocContentsBlock());
  uint64_t bit = idx % kChunkPages;
  std::memcpy(chunk.data.get() + bit * kPageSize, in, kPageSize);
  chunk.written[bit / 64] |= uint64_t{1} << (bit % 64);
}

void Devmem::ZeroContents(uint64_t pfn) {
  uint64_t idx = pfn - first_pfn;
  if (idx >= populated()) return;
  uint64_t bit = idx % kChunkPages;
  chunks_[idx / kChunkPages]->written[bit / 64] &= ~(uint64_t{1} << (bit % 64));
}

bool Devmem::TrylockPage(uint64_t pfn) const {
  return (page(pfn).flags.fetch_or(kDevPgLocked, std::memory_order_acquire) & kDevPgLocked) == 0;
}

void Devmem::UnlockPage(uint64_t pfn) const {
  page(pfn).flags.fetch_and(~uint32_t{kDevPgLocked}, std::memory_order_release);
}

bool Devmem::PageLocked(uint64_t pfn) const {
  return page(pfn).flags.load(std::memory_order_acquire) & kDevPgLocked;
}

std::optional<uint64_t> Devmem::AllocPage() {
  // Loop invariant: no populated page below i is free.
  for (uint64_t i = hint_; i < std::min(populated(), npages); i = (i | 63) + 1) {
    uint64_t bit = i % kChunkPages;
    uint64_t word = chunks_[i / kChunkPages]->free[bit / 64] & (~uint64_t{0} << (bit % 64));
    if (word != 0) return TakePage(i - (i % 64) + __builtin_ctzll(word));
  }
  // Is there memmap left to populate? Every populated page is in use.
  if (populated() >= npages) return std::nullopt;
  uint64_t idx = populated();
  Populate();
  return TakePage(idx);
}

void Devmem::NotifyPageFree(uint64_t pfn) {
  ++page_frees_;
  if (ops.free) ops.free(*this, pfn);
}

void Devmem::ReleaseHoldLocked(uint64_t pfn) {
  page(pfn).flags.fetch_and(~uint32_t{kDevPgHeld}, std::memory_order_relaxed);
  PutPageLocked(pfn);  // -1: the hold; at 1, page_free
}

void Devmem::FreePage(uint64_t pfn) {
  uint64_t idx = pfn - first_pfn;
  uint64_t bit = idx % kChunkPages;
  chunks_[idx / kChunkPages]->free[bit / 64] |= uint64_t{1} << (bit % 64);
  hint_ = std::min(hint_, idx);
  NotifyPageFree(pfn);
}

void Devmem::PutPage(uint64_t pfn) {
  std::atomic<uint32_t>& ref = page(pfn).refcount;
  // Fast path, lock-free: a put that leaves more than the free value. Only
  // the lock moves a refcount between 1 and 2, so a value above 2 seen here
  // cannot become free under us.
  uint32_t v = ref.load(std::memory_order_acquire);
  while (v > 2) {
    if (ref.compare_exchange_weak(v, v - 1, std::memory_order_acq_rel)) return;
  }
  std::lock_guard<std::mutex> guard(lock);
  PutPageLocked(pfn);
}

void Devmem::PutPageLocked(uint64_t pfn) {
  // -1; the put that leaves 1 frees the page (2 -> 1 is exactly once per
  // allocation: the page is taken again only by AllocPage, at 1 -> 2).
  if (page(pfn).refcount.fetch_sub(1, std::memory_order_acq_rel) == 2) FreePage(pfn);
}

bool Devmem::Busy() const {
  for (uint64_t c = 0; c < nr_chunks_; ++c) {
    for (const DevicePage& pg : chunks_[c]->pages) {
      if (pg.refcount.load(std::memory_order_acquire) > 1) return true;
    }
  }
  return false;
}

size_t Devmem::MetadataBytes() const {
  size_t bytes = sizeof(*this) + nr_chunks_ * sizeof(Chunk) +
                 chunks_.capacity() * sizeof(chunks_[0]) + dirs_.capacity() * sizeof(dirs_[0]);
  for (uint64_t capacity = dir_capacity_; capacity >= 8; capacity /= 2) {
    bytes += capacity * sizeof(Chunk*);  // every directory published: 8, 16, ..., dir_capacity_
  }
  return bytes;
}

Devmem* DevmemTable::FindById(uint64_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second.get();
}

Devmem* DevmemTable::FindByPfn(uint64_t pfn) const {
  auto it = by_first_pfn_.upper_bound(pfn);
  if (it == by_first_pfn_.begin()) return nullptr;
  Devmem* devmem = std::prev(it)->second;
  return devmem->Contains(pfn) ? devmem : nullptr;
}

void DevmemTable::Insert(std::unique_ptr<Devmem> devmem) {
  by_first_pfn_.emplace(devmem->first_pfn, devmem.get());
  uint64_t id = devmem->id;
  by_id_.emplace(id, std::move(devmem));
}

void DevmemTable::Erase(uint64_t id) {
  auto it = by_id_.find(id);
  by_first_pfn_.erase(it->second->first_pfn);
  by_id_.erase(it);
}

void DeviceEventLog::PageFree(uint64_t devmem, uint64_t pfn) {
  DeviceEventInfo e;
  e.devmem = devmem;
  e.pfn = pfn;
  std::lock_guard<std::mutex> guard(lock_);
  events_.push_back(e);
}

void DeviceEventLog::Fault(uint64_t devmem, uint64_t pfn, uint64_t pid, uint64_t addr) {
  DeviceEventInfo e;
  e.fault = true;
  e.devmem = devmem;
  e.pfn = pfn;
  e.pid = pid;
  e.addr = addr;
  std::lock_guard<std::mutex> guard(lock_);
  events_.push_back(e);
}

std::vector<DeviceEventInfo> DeviceEventLog::Snapshot() const {
  std::lock_guard<std::mutex> guard(lock_);
  return {events_.begin(), events_.end()};
}

}  // namespace hmm::impl
