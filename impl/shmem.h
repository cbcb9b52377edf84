// File: impl/shmem.h
//
// Shared objects: the anonymous shmem file behind every MAP_SHARED mapping
// (mm/shmem.c shmem_zero_setup()). An object maps page offsets to pages of
// impl/page.h and holds one reference on each (the page cache's reference).
// VMAs hold the object like a struct file: nr_vmas counts them (f_count),
// and the object is released, with its page references, when the last VMA
// that maps it goes (mm/mmap.c remove_vma() -> fput()).
//
// Thread safety
//   `pages` is guarded by `lock` (the mapping's xa_lock / i_rwsem). nr_vmas
//   is atomic: VMAs of different processes (after fork) share one object and
//   change it under their own mmap_locks. The object table of KernelState has
//   its own lock (objects_lock), a leaf lock.
//   Lock order: mmap_lock -> ShmemObject::lock -> zone lock (impl/page.h).
//
// Invariants:
//   1. Every pfn in `pages` is in use, flagged kPgShmem, and this object holds
//      exactly one reference on it (ShmemGetPage adds it when it inserts).
//   2. nr_vmas == number of VMAs, over all processes, whose object is this.
//      Holds because every VMA copy (split, fork, move) calls ShmemGetObject
//      and every VMA removal calls ShmemPutObject.
//   3. An object is in KernelState::objects iff nr_vmas > 0; the last
//      ShmemPutObject unlinks it and drops its page references. No VMA can be
//      created on an object with nr_vmas == 0, so it never comes back.

#ifndef HMMREF_IMPL_SHMEM_H_
#define HMMREF_IMPL_SHMEM_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

namespace hmm::impl {

class KernelState;
class PageArray;

struct ShmemObject {
  explicit ShmemObject(uint64_t object_id) : id(object_id) {}

  const uint64_t id;                     // impl's numbering, for introspection
  std::atomic<uint64_t> nr_vmas{0};      // f_count: VMAs mapping this object
  mutable std::mutex lock;               // guards pages
  std::map<uint64_t, uint64_t> pages;    // pgoff -> pfn; each holds +1 refcount
};

// Mirrors: mm/shmem.c shmem_zero_setup(): a new, empty object, registered in
// the object table, with nr_vmas == 1 for the VMA the caller is creating.
std::shared_ptr<ShmemObject> ShmemNewObject(KernelState& ks);

// Mirrors: include/linux/fs.h get_file(): one more VMA maps the object.
void ShmemGetObject(ShmemObject& obj);

// Mirrors: fs/file_table.c fput() -> mm/shmem.c shmem_evict_inode(): one VMA
// fewer; the last one unlinks the object and drops its page references (a
// page survives while PTEs or pins still hold it).
void ShmemPutObject(KernelState& ks, ShmemObject& obj);

// Mirrors: mm/shmem.c shmem_get_folio_gfp(SGP_CACHE): the object's page at
// pgoff, allocated zero-filled if absent (the object's reference). Returns it
// with one more reference for the caller; nullopt when RAM is exhausted.
std::optional<uint64_t> ShmemGetPage(PageArray& pages, ShmemObject& obj, uint64_t pgoff);

}  // namespace hmm::impl

#endif  // HMMREF_IMPL_SHMEM_H_
