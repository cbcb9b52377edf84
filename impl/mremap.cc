// File: impl/mremap.cc
//
// Mremap: shrink, grow in place, or move a range of one VMA, carrying its
// PTEs along (same page, same write bit).

#include <mutex>
#include <shared_mutex>
#include <utility>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_state.h"
#include "impl/mirror.h"

namespace hmm::impl {
namespace {

constexpr uint32_t kMremapKnown = kMremapMaymove | kMremapFixed;

// Mirrors: mm/mremap.c move_page_tables() -> move_ptes(): every PTE of
// [old_start, old_start + len) moves to the same offset at new_start; the
// counts stay, since each page keeps exactly one PTE for the one it lost.
// REQUIRES: mmap_lock (write).
void MovePtes(Process& p, uint64_t old_start, uint64_t len, uint64_t new_start) {
  std::lock_guard<std::mutex> ptl(p.ptl);
  std::vector<std::pair<uint64_t, pte_t>> moved;
  p.pgtable.ForEachLeaf(AddrVpn(old_start), AddrVpn(old_start + len),
                        [&moved](uint64_t vpn, pte_t& e) {
                          moved.emplace_back(vpn, e);
                          e = 0;
                        });
  uint64_t delta = AddrVpn(new_start) - AddrVpn(old_start);  // modular: works downward too
  for (const auto& [vpn, e] : moved) *p.pgtable.WalkAlloc(vpn + delta) = e;
  p.pgtable.FreeEmptyTables(AddrVpn(old_start), AddrVpn(old_start + len));
}

// Mirrors: mm/mremap.c move_vma(): a VMA like the one holding [old_addr,
// old_addr + old_len) (same prot, kind, object; pgoff advanced) is created at
// [new_addr, new_addr + new_len), the PTEs move, and the old range is
// unmapped. The grown tail, if any, has no PTEs. REQUIRES: mmap_lock (write);
// the old range lies in one VMA; the new range is free.
void MoveVma(KernelState& ks, Process& p, uint64_t old_addr, uint64_t old_len, uint64_t new_addr,
             uint64_t new_len) {
  const Vma* src = p.vmas.Find(old_addr);
  Vma dst;
  dst.start = new_addr;
  dst.end = new_addr + new_len;
  dst.prot = src->prot;
  dst.shared = src->shared;
  if (src->shared) {
    dst.object = src->object;
    dst.pgoff = src->PgoffOf(old_addr);
    ShmemGetObject(*dst.object);  // +1: the new VMA, before the old one goes
  }
  p.vmas.Insert(std::move(dst));
  // Mirrors: mm/mremap.c move_page_tables()'s mmu notifier bracket over the
  // old range (the unmap after it notifies again: nothing is left to tell).
  MmuNotifierRange notify(ks, p, old_addr, old_addr + old_len);
  MovePtes(p, old_addr, old_len, new_addr);
  DoMunmap(ks, p, old_addr, old_addr + old_len);
}

// Mirrors: mm/mremap.c mremap_to(): unmap the destination, cut the old range
// to new_len, then move. REQUIRES: mmap_lock (write); the guards passed.
uint64_t MremapTo(KernelState& ks, Process& p, uint64_t old_addr, uint64_t old_len,
                  uint64_t new_len, uint64_t new_addr) {
  DoMunmap(ks, p, new_addr, new_addr + new_len);
  if (new_len < old_len) {
    DoMunmap(ks, p, old_addr + new_len, old_addr + old_len);
    old_len = new_len;
  }
  MoveVma(ks, p, old_addr, old_len, new_addr, new_len);
  return new_addr;
}

// Mirrors: mm/mremap.c mremap()'s paths without MREMAP_FIXED: shrink in
// place, grow in place (vma_expandable()), or move to the first fit.
// REQUIRES: mmap_lock (write); the guards passed.
Result<uint64_t> MremapResize(KernelState& ks, Process& p, uint64_t old_addr, uint64_t old_len,
                              uint64_t new_len, bool may_move) {
  // Is it a shrink (or no change)?
  if (new_len <= old_len) {
    if (new_len < old_len) DoMunmap(ks, p, old_addr + new_len, old_addr + old_len);
    return old_addr;
  }
  Vma* vma = p.vmas.Find(old_addr);
  // Does the old range end its VMA, with free space behind it below kTaskSize?
  if (old_addr + old_len == vma->end && !RangeOverflows(old_addr, new_len) &&
      p.vmas.RangeFree(vma->end, old_addr + new_len)) {
    vma->end = old_addr + new_len;
    return old_addr;
  }
  // May it move?
  if (!may_move) return Errno::kNoMem;
  std::optional<uint64_t> dst = p.vmas.UnmappedArea(new_len, kMmapBase, kTaskSize);
  // Is there a free gap?
  if (!dst) return Errno::kNoMem;
  MoveVma(ks, p, old_addr, old_len, *dst, new_len);
  return *dst;
}

}  // namespace

// Mirrors: mm/mremap.c SYSCALL_DEFINE5(mremap).
Result<uint64_t> Kernel::Mremap(Pid pid, uint64_t old_addr, uint64_t old_len, uint64_t new_len,
                                uint32_t flags, uint64_t new_addr) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  MmapLockGuard mm(*st_, pid, MmapLockGuard::kWrite);
  Process* p = mm.proc();
  // Is the pid a live process?
  if (p == nullptr) return Errno::kSrch;
  // Are the flags known, with kMremapFixed only beside kMremapMaymove?
  bool fixed = flags & kMremapFixed;
  if ((flags & ~kMremapKnown) || (fixed && !(flags & kMremapMaymove))) return Errno::kInval;
  // Is old_addr page aligned?
  if (!PageAligned(old_addr)) return Errno::kInval;
  // Are the rounded lengths non-zero (after wrap)?
  uint64_t rold = PageAlign(old_len);
  uint64_t rnew = PageAlign(new_len);
  if (rnew == 0 || rold == 0) return Errno::kInval;
  if (fixed) {
    // Is new_addr page aligned, with the new range below kTaskSize?
    if (!PageAligned(new_addr) || RangeOverflows(new_addr, rnew)) return Errno::kInval;
    // Does the new range stay clear of the old one? (mremap_to()'s test, on
    // mathematical integers: the old range may run past 2^64.)
    using u128 = unsigned __int128;
    if (u128{old_addr} + rold > new_addr && u128{new_addr} + rnew > old_addr) {
      return Errno::kInval;
    }
  }
  const Vma* vma = p->vmas.Find(old_addr);
  // Does a VMA contain old_addr, and the whole old range? (vma_to_resize())
  if (vma == nullptr || rold > vma->end - old_addr) return Errno::kFault;
  if (fixed) return MremapTo(*st_, *p, old_addr, rold, rnew, new_addr);
  return MremapResize(*st_, *p, old_addr, rold, rnew, flags & kMremapMaymove);
}

}  // namespace hmm::impl

