// File: impl/shmem.cc

#include "impl/shmem.h"

#include <cassert>
#include <vector>

#include "impl/kernel_state.h"

namespace hmm::impl {

std::shared_ptr<ShmemObject> ShmemNewObject(KernelState& ks) {
  std::lock_guard<std::mutex> objects(ks.objects_lock);
  auto obj = std::make_shared<ShmemObject>(ks.next_object++);
  obj->nr_vmas.store(1, std::memory_order_relaxed);  // +1: the VMA being created
  ks.objects.emplace(obj->id, obj);
  return obj;
}

void ShmemGetObject(ShmemObject& obj) {
  uint64_t old = obj.nr_vmas.fetch_add(1, std::memory_order_relaxed);
  assert(old > 0 && "get_file on a released object");
  (void)old;
}

void ShmemPutObject(KernelState& ks, ShmemObject& obj) {
  // Is this the last VMA? Only a VMA's holder can add a VMA (split, fork,
  // move), so a count that reached 0 stays 0.
  if (obj.nr_vmas.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  {
    std::lock_guard<std::mutex> objects(ks.objects_lock);
    ks.objects.erase(obj.id);
  }
  std::vector<uint64_t> held;
  {
    std::lock_guard<std::mutex> lock(obj.lock);
    for (const auto& [pgoff, pfn] : obj.pages) held.push_back(pfn);
    obj.pages.clear();
  }
  // -1 each: the object's reference (mm/shmem.c shmem_undo_range()); pinned
  // or still-mapped pages survive on their other references.
  for (uint64_t pfn : held) ks.pages.PutPage(pfn);
}

std::optional<uint64_t> ShmemGetPage(PageArray& pages, ShmemObject& obj, uint64_t pgoff) {
  std::lock_guard<std::mutex> lock(obj.lock);
  auto it = obj.pages.find(pgoff);
  if (it == obj.pages.end()) {
    // +1: the object's own reference (shmem_add_to_page_cache()).
    std::optional<uint64_t> pfn = pages.AllocPage(kPgShmem);
    if (!pfn) return std::nullopt;
    it = obj.pages.emplace(pgoff, *pfn).first;
  }
  // +1: the caller's reference; safe under obj.lock, which keeps the
  // object's own reference from going away meanwhile.
  pages.GetPage(it->second);
  return it->second;
}

}  // namespace hmm::impl
