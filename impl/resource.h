// File: impl/resource.h
//
// The physical address space as kernel/resource.c keeps it (iomem_resource),
// flattened: one ordered map of disjoint [start, end) byte ranges, each System
// RAM (boot or hot-added, mm/memory_hotplug.c add_memory()) or device-private
// (IORES_DESC_DEVICE_PRIVATE_MEMORY, owned by one hmm_devmem). No resource
// nests in another: hmmref has no children below the top level.
//
// The queries are region_intersects()-like (kernel/resource.c): is a window
// disjoint from every resource, which resource blocks it. The two placements
// of docs/devmem.md search for a free window with them:
//   - PlaceAbove: bottom-up from a base (the default profile, above
//     2^max_physmem_bits; kernel/resource.c get_free_mem_region() searches
//     the same way);
//   - PlaceTopDown: the v18 seed's search in mm/hmm.c hmm_devmem_add(), from
//     `top - size` downwards in steps of `size`.
// Both jump over a blocking resource in one step, so a search costs
// O(resources * log resources), not O(windows).
//
// Thread safety
//   Not synchronized. KernelState::resource_lock guards every call
//   (impl/kernel_state.h gives its place in the lock order).
//
// Invariants:
//   1. Resources are pairwise disjoint and start < end. Holds because Insert
//      is only called for a window that Intersects() found free.
//   2. Exactly one boot resource, [0, ram_pages * 4096): inserted by the
//      constructor; Erase is never called on it (RamHotRemove refuses).

#ifndef HMMREF_IMPL_RESOURCE_H_
#define HMMREF_IMPL_RESOURCE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hmm::impl {

// Mirrors: include/linux/ioport.h struct resource, reduced to its range and
// descriptor (IORES_DESC_NONE for System RAM, IORES_DESC_DEVICE_PRIVATE_MEMORY).
struct Resource {
  uint64_t start = 0;   // bytes
  uint64_t end = 0;     // bytes, exclusive
  bool device = false;  // device-private; else System RAM
  bool boot = false;    // System RAM present at boot
  uint64_t devmem = 0;  // device only: the owning hmm_devmem's id
};

class ResourceTree {
 public:
  // The boot System RAM [0, boot_bytes).
  explicit ResourceTree(uint64_t boot_bytes);

  // The resource with the lowest start that intersects [start, end), or
  // nullptr when the window is disjoint from all (region_intersects() ==
  // REGION_DISJOINT). REQUIRES: start < end.
  const Resource* FirstIntersecting(uint64_t start, uint64_t end) const;
  // The resource with the highest start that intersects [start, end), or nullptr.
  const Resource* LastIntersecting(uint64_t start, uint64_t end) const;
  bool Intersects(uint64_t start, uint64_t end) const {
    return FirstIntersecting(start, end) != nullptr;
  }
  // The resource that is exactly [start, end), or nullptr (__release_region()'s match).
  const Resource* FindExact(uint64_t start, uint64_t end) const;

  // The lowest window [s, s + size) with s >= base, s a multiple of `align`,
  // s + size <= ceiling and no resource intersecting it; nullopt when there
  // is none. REQUIRES: base and size multiples of align; align a power of two.
  std::optional<uint64_t> PlaceAbove(uint64_t base, uint64_t size, uint64_t ceiling,
                                     uint64_t align) const;
  // The highest window [s, s + size) with s = top - k * size for k >= 1,
  // s >= 0, and no resource intersecting it; nullopt when there is none.
  // REQUIRES: 0 < size <= top.
  std::optional<uint64_t> PlaceTopDown(uint64_t top, uint64_t size) const;

  // REQUIRES: r is disjoint from every resource (invariant 1).
  void Insert(const Resource& r);
  // Mirrors: kernel/resource.c release_resource(). REQUIRES: a resource starts there.
  void Erase(uint64_t start);

  // Ascending start.
  const std::map<uint64_t, Resource>& all() const { return by_start_; }
  // Checks invariants 1 and 2; appends one line per violation.
  void CheckWellFormed(uint64_t boot_bytes, std::vector<std::string>* out) const;

 private:
  std::map<uint64_t, Resource> by_start_;
};

}  // namespace hmm::impl

#endif  // HMMREF_IMPL_RESOURCE_H_
