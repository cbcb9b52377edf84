// File: impl/resource.cc
//
// The iomem resource map (resource.h) and the two operations that touch only
// it: RAM hot-add and hot-remove (docs/devmem.md). Device ranges are added
// and released by hmm_devmem.cc, under the devmem table's lock.

#include "impl/resource.h"

#include <iterator>
#include <mutex>
#include <shared_mutex>

#include "impl/kernel.h"
#include "impl/kernel_state.h"

namespace hmm::impl {

ResourceTree::ResourceTree(uint64_t boot_bytes) {
  Resource boot;
  boot.end = boot_bytes;
  boot.boot = true;
  by_start_.emplace(0, boot);
}

const Resource* ResourceTree::FirstIntersecting(uint64_t start, uint64_t end) const {
  // Disjoint and sorted by start, so sorted by end too: the only resource
  // starting at or before `start` that can reach past it is the last such.
  auto it = by_start_.upper_bound(start);
  if (it != by_start_.begin() && std::prev(it)->second.end > start) return &std::prev(it)->second;
  if (it != by_start_.end() && it->second.start < end) return &it->second;
  return nullptr;
}

const Resource* ResourceTree::LastIntersecting(uint64_t start, uint64_t end) const {
  auto it = by_start_.lower_bound(end);  // the first resource starting at or past end
  if (it == by_start_.begin()) return nullptr;
  const Resource& r = std::prev(it)->second;
  return r.end > start ? &r : nullptr;
}

const Resource* ResourceTree::FindExact(uint64_t start, uint64_t end) const {
  auto it = by_start_.find(start);
  return it != by_start_.end() && it->second.end == end ? &it->second : nullptr;
}

std::optional<uint64_t> ResourceTree::PlaceAbove(uint64_t base, uint64_t size, uint64_t ceiling,
                                                 uint64_t align) const {
  // Loop invariant: no window starting in [base, s) at a multiple of align is free.
  for (uint64_t s = base;;) {
    if (size > ceiling || s > ceiling - size) return std::nullopt;
    const Resource* r = FirstIntersecting(s, s + size);
    if (r == nullptr) return s;
    // Every window starting before r->end intersects r.
    if (r->end > ceiling) return std::nullopt;
    s = (r->end + align - 1) & ~(align - 1);
  }
}

std::optional<uint64_t> ResourceTree::PlaceTopDown(uint64_t top, uint64_t size) const {
  // Loop invariant: s = top - k * size, and no candidate above s is free.
  for (uint64_t s = top - size;;) {
    const Resource* r = LastIntersecting(s, s + size);
    if (r == nullptr) return s;
    // Every candidate whose window ends past r->start still intersects r (it
    // starts below s < r->end), so the next one to try ends at or below r->start.
    if (r->start < size) return std::nullopt;
    uint64_t highest = r->start - size;
    uint64_t k = (top - highest + size - 1) / size;
    if (k > top / size) return std::nullopt;
    s = top - k * size;
  }
}

void ResourceTree::Insert(const Resource& r) { by_start_.emplace(r.start, r); }

void ResourceTree::Erase(uint64_t start) { by_start_.erase(start); }

void ResourceTree::CheckWellFormed(uint64_t boot_bytes, std::vector<std::string>* out) const {
  uint64_t prev_end = 0, boots = 0;
  for (const auto& [key, r] : by_start_) {
    // Is it keyed by its start, non-empty, and clear of the one before?
    if (key != r.start || r.start >= r.end || r.start < prev_end) {
      out->push_back("InvResourcesDisjoint: [" + std::to_string(r.start) + ", " +
                     std::to_string(r.end) + ") prev_end=" + std::to_string(prev_end));
    }
    prev_end = r.end;
    if (r.boot) ++boots;
  }
  const Resource* boot = FindExact(0, boot_bytes);
  // Is there one boot resource, the System RAM [0, ram_pages * 4096)?
  if (boots != 1 || boot == nullptr || !boot->boot || boot->device) {
    out->push_back("InvBootRamResource: boot resources=" + std::to_string(boots));
  }
}

namespace {

bool SectionAligned(const Config& c, uint64_t x) { return (x & (c.section_bytes - 1)) == 0; }

}  // namespace

// Mirrors: mm/memory_hotplug.c add_memory() -> register_memory_resource().
Errno Kernel::RamHotAdd(uint64_t start, uint64_t size) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  const Config& c = st_->config;
  // Are start and size section-aligned, and size non-zero?
  if (!SectionAligned(c, start) || !SectionAligned(c, size) || size == 0) return Errno::kInval;
  // Does the range end at or below 2^max_physmem_bits, without wrapping?
  uint64_t limit = uint64_t{1} << c.max_physmem_bits;
  if (start + size < start || start + size > limit) return Errno::kRange;
  std::lock_guard<std::mutex> resources(st_->resource_lock);
  // Is the range clear of every resource? (v18's device ranges included:
  // the conflict is reported, never silent.)
  if (st_->resources.Intersects(start, start + size)) return Errno::kBusy;
  Resource ram;
  ram.start = start;
  ram.end = start + size;
  st_->resources.Insert(ram);
  return Errno::kOk;
}

// Mirrors: mm/memory_hotplug.c remove_memory() -> release_mem_region_adjustable().
Errno Kernel::RamHotRemove(uint64_t start, uint64_t size) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  const Config& c = st_->config;
  // Are start and size section-aligned, and size non-zero?
  if (!SectionAligned(c, start) || !SectionAligned(c, size) || size == 0) return Errno::kInval;
  std::lock_guard<std::mutex> resources(st_->resource_lock);
  const Resource* r = st_->resources.FindExact(start, start + size);
  // Is it exactly a System RAM resource?
  if (r == nullptr || r->device) return Errno::kNoEnt;
  // Is it the boot RAM?
  if (r->boot) return Errno::kBusy;
  st_->resources.Erase(start);
  return Errno::kOk;
}

}  // namespace hmm::impl
