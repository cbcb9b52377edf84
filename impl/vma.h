// File: impl/vma.h
//
// A process's VMAs (include/linux/mm_types.h struct vm_area_struct) in an
// ordered tree keyed by start address, standing in for the kernel's maple
// tree (lib/maple_tree.c): find, split, first-fit gap search. VMAs are never
// merged (docs/model.md, "VMA").
//
// Thread safety
//   Not synchronized. The owning process's mmap_lock guards every call:
//   read mode for lookups, write mode for Split/Insert/Erase and for changing
//   a VMA's fields.
//
// Invariants:
//   1. VMAs are page aligned, non-empty, below kTaskSize and disjoint; the key
//      of each equals its start. Insert's callers check the range is free.
//   2. A shared VMA holds one nr_vmas count on its object (impl/shmem.h);
//      Split takes one more for the new half, Erase hands the count back to
//      the caller, who puts it.

#ifndef HMMREF_IMPL_VMA_H_
#define HMMREF_IMPL_VMA_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>

#include "impl/shmem.h"

namespace hmm::impl {

struct Vma {
  uint64_t start = 0;  // address, page aligned
  uint64_t end = 0;    // address, exclusive
  uint32_t prot = 0;
  bool shared = false;
  std::shared_ptr<ShmemObject> object;  // shared only
  uint64_t pgoff = 0;                   // shared only: object page at `start`

  // Mirrors: include/linux/mm.h linear_page_index().
  uint64_t PgoffOf(uint64_t addr) const { return pgoff + ((addr - start) >> 12); }
};

class VmaTree {
 public:
  using Map = std::map<uint64_t, Vma>;

  // Mirrors: mm/mmap.c vma_lookup(): the VMA containing addr, or nullptr.
  Vma* Find(uint64_t addr);
  const Vma* Find(uint64_t addr) const;
  // True when no VMA intersects [start, end). REQUIRES: start <= end.
  bool RangeFree(uint64_t start, uint64_t end) const;
  // True when every page of [start, end) lies in some VMA.
  bool RangeCovered(uint64_t start, uint64_t end) const;
  // Mirrors: mm/mmap.c unmapped_area(): the lowest start >= low of a gap of
  // len bytes ending at or below high; nullopt when there is none.
  std::optional<uint64_t> UnmappedArea(uint64_t len, uint64_t low, uint64_t high) const;

  // Mirrors: mm/mmap.c split_vma(): splits the VMA that strictly contains
  // addr into [start, addr) and [addr, end); no-op when addr is on a boundary
  // or unmapped.
  void Split(uint64_t addr);
  // REQUIRES: RangeFree(v.start, v.end); v carries its own nr_vmas count.
  void Insert(Vma v);
  // Removes the VMA starting at start and returns it (with its nr_vmas count).
  Vma Erase(uint64_t start);

  // The first VMA ending after addr (mm/mmap.c find_vma()), for range loops.
  Map::iterator FirstEndingAfter(uint64_t addr);
  Map::const_iterator FirstEndingAfter(uint64_t addr) const;
  Map::iterator end() { return map_.end(); }
  Map::const_iterator begin() const { return map_.begin(); }
  Map::const_iterator end() const { return map_.end(); }
  bool empty() const { return map_.empty(); }

 private:
  Map map_;
};

}  // namespace hmm::impl

#endif  // HMMREF_IMPL_VMA_H_
