// File: impl/vma.cc

#include "impl/vma.h"

#include <cassert>

namespace hmm::impl {

VmaTree::Map::iterator VmaTree::FirstEndingAfter(uint64_t addr) {
  auto it = map_.upper_bound(addr);
  if (it != map_.begin()) {
    auto prev = std::prev(it);
    if (prev->second.end > addr) return prev;
  }
  return it;
}

VmaTree::Map::const_iterator VmaTree::FirstEndingAfter(uint64_t addr) const {
  auto it = map_.upper_bound(addr);
  if (it != map_.begin()) {
    auto prev = std::prev(it);
    if (prev->second.end > addr) return prev;
  }
  return it;
}

Vma* VmaTree::Find(uint64_t addr) {
  auto it = FirstEndingAfter(addr);
  return it != map_.end() && it->second.start <= addr ? &it->second : nullptr;
}

const Vma* VmaTree::Find(uint64_t addr) const {
  auto it = FirstEndingAfter(addr);
  return it != map_.end() && it->second.start <= addr ? &it->second : nullptr;
}

bool VmaTree::RangeFree(uint64_t start, uint64_t end) const {
  auto it = FirstEndingAfter(start);
  return it == map_.end() || it->second.start >= end;
}

bool VmaTree::RangeCovered(uint64_t start, uint64_t end) const {
  uint64_t covered = start;  // loop invariant: [start, covered) lies in VMAs
  for (auto it = FirstEndingAfter(start); covered < end; ++it) {
    if (it == map_.end() || it->second.start > covered) return false;
    covered = it->second.end;
  }
  return true;
}

std::optional<uint64_t> VmaTree::UnmappedArea(uint64_t len, uint64_t low, uint64_t high) const {
  // Loop invariant: no gap of len starts in [low, gap_start), and no VMA
  // before `it` intersects [gap_start, ...).
  uint64_t gap_start = low;
  for (auto it = FirstEndingAfter(low); it != map_.end(); ++it) {
    if (it->second.start >= gap_start && it->second.start - gap_start >= len) break;
    if (it->second.end > gap_start) gap_start = it->second.end;
  }
  if (gap_start > high || high - gap_start < len) return std::nullopt;
  return gap_start;
}

void VmaTree::Split(uint64_t addr) {
  Vma* v = Find(addr);
  // Is addr strictly inside a VMA?
  if (v == nullptr || v->start == addr) return;
  Vma upper = *v;
  upper.start = addr;
  if (upper.shared) {
    upper.pgoff = v->PgoffOf(addr);
    ShmemGetObject(*upper.object);  // +1: the new half maps the object too
  }
  v->end = addr;
  map_.emplace(addr, std::move(upper));
}

void VmaTree::Insert(Vma v) {
  assert(v.start < v.end && RangeFree(v.start, v.end));
  uint64_t start = v.start;
  map_.emplace(start, std::move(v));
}

Vma VmaTree::Erase(uint64_t start) {
  auto it = map_.find(start);
  assert(it != map_.end());
  Vma v = std::move(it->second);
  map_.erase(it);
  return v;
}

}  // namespace hmm::impl
