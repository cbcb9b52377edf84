// File: model/mremap.cc
//
// mremap: shrink in place, grow in place, move to the first fit, or move to
// a fixed address. Kept in the shape of mm/mremap.c (mremap() dispatching to
// mremap_to() and move_vma()) so the two read side by side; the differences
// (no old_len == 0 duplication, the VMA lookup before any unmap) are the
// Deviations of docs/model.md "Mremap".

#include <algorithm>

#include "model/address_space.h"
#include "model/kernel.h"

namespace hmm::model {
namespace {

// Whether a kMremapFixed destination is aligned, ends at or below kTaskSize
// and stays clear of the old range (ranges taken as mathematical integers).
// Mirrors: mm/mremap.c mremap_to() argument checks.
bool FixedTargetValid(uint64_t old_addr, uint64_t old_len, uint64_t new_addr, uint64_t new_len) {
  // Is new_addr page-aligned?
  if (!PageAligned(new_addr)) return false;
  // Does the new range end at or below kTaskSize?
  if (new_len > kTaskSize || new_addr > kTaskSize - new_len) return false;
  // Is the new range apart from the old one?
  const bool overlap = new_addr < SaturatingAdd(old_addr, old_len) && old_addr < new_addr + new_len;
  return !overlap;
}

// Creates, at [new_start, new_start + new_npages), a VMA like the one holding
// old_start (same prot, kind and object; pgoff advanced by the offset of
// old_start in it), moves every PTE of the old range to the same offset (same
// page, same write bit) and unmaps the old range. The grown tail has no PTEs.
// REQUIRES: one VMA holds the old range; the new range is free;
//           old_npages <= new_npages.
// Mirrors: mm/mremap.c move_vma(), move_page_tables().
void MoveVma(State& s, Pid pid, Vpn old_start, uint64_t old_npages, Vpn new_start,
             uint64_t new_npages) {
  Process& p = s.procs.at(pid);
  Vma moved = *FindVma(p, old_start);
  if (moved.shared) moved.pgoff += old_start.value - moved.start.value;
  moved.start = new_start;
  moved.end = VpnAdd(new_start, new_npages);
  p.vmas.emplace(new_start, moved);
  for (uint64_t i = 0; i < old_npages; ++i) {
    auto pte = p.ptes.find(VpnAdd(old_start, i));
    if (pte != p.ptes.end()) p.ptes[VpnAdd(new_start, i)] = pte->second;
  }
  UnmapRange(s, pid, old_start, VpnAdd(old_start, old_npages));
}

// Unmaps the destination, drops the old range's tail when shrinking, then
// moves what is left of the old range there.
// REQUIRES: the Mremap guards passed with kMremapFixed.
// Mirrors: mm/mremap.c mremap_to().
uint64_t MremapTo(State& s, Pid pid, uint64_t old_addr, uint64_t old_len, uint64_t new_addr,
                  uint64_t new_len) {
  UnmapRange(s, pid, AddrToVpn(new_addr), AddrToVpn(new_addr + new_len));
  // Shrinking: the tail of the old range goes first, as mremap_to() does.
  if (new_len < old_len) {
    UnmapRange(s, pid, AddrToVpn(old_addr + new_len), AddrToVpn(old_addr + old_len));
  }
  const uint64_t moved = std::min(old_len, new_len) >> kPageShift;
  MoveVma(s, pid, AddrToVpn(old_addr), moved, AddrToVpn(new_addr), new_len >> kPageShift);
  return new_addr;
}

// Grows in place when the old range ends its VMA and the pages behind it are
// free; else moves to the first fit when allowed.
// REQUIRES: the Mremap guards passed, not fixed, new_len > old_len.
// Mirrors: mm/mremap.c mremap() growing path, vma_expandable().
Result<uint64_t> MremapGrow(State& s, Pid pid, uint64_t old_addr, uint64_t old_len,
                            uint64_t new_len, uint32_t flags) {
  Process& p = s.procs.at(pid);
  Vma& vma = p.vmas.at(FindVma(p, AddrToVpn(old_addr))->start);
  const uint64_t old_end = old_addr + old_len;
  const uint64_t new_end = SaturatingAdd(old_addr, new_len);
  // Does the range end at its VMA's end, with free room behind it?
  if (old_end == VpnToAddr(vma.end) && new_end <= kTaskSize &&
      RangeFree(p, AddrToVpn(old_end), AddrToVpn(new_end))) {
    vma.end = AddrToVpn(new_end);
    return old_addr;
  }
  // May it move?
  if ((flags & kMremapMaymove) == 0) return Errno::kNoMem;
  // Is there a gap for the whole new length?
  Vpn dst;
  if (!FirstFit(p, new_len >> kPageShift, &dst)) return Errno::kNoMem;
  MoveVma(s, pid, AddrToVpn(old_addr), old_len >> kPageShift, dst, new_len >> kPageShift);
  return VpnToAddr(dst);
}

}  // namespace

// Mirrors: mm/mremap.c mremap().
Result<uint64_t> Kernel::Mremap(Pid pid, uint64_t old_addr, uint64_t old_len, uint64_t new_len,
                                uint32_t flags, uint64_t new_addr) {
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Are the flags known, kMremapFixed only with kMremapMaymove, old_addr aligned?
  const bool fixed = (flags & kMremapFixed) != 0;
  if ((flags & ~uint32_t{kMremapMaymove | kMremapFixed}) != 0) return Errno::kInval;
  if (fixed && (flags & kMremapMaymove) == 0) return Errno::kInval;
  if (!PageAligned(old_addr)) return Errno::kInval;
  // Are both rounded lengths non-zero (after wrap)?
  old_len = PageAlign(old_len);
  new_len = PageAlign(new_len);
  if (new_len == 0 || old_len == 0) return Errno::kInval;
  // Fixed: is the destination aligned, below kTaskSize and apart from the old range?
  if (fixed && !FixedTargetValid(old_addr, old_len, new_addr, new_len)) return Errno::kInval;
  // Does one VMA hold the whole old range?
  const Vma* vma = FindVma(s_.procs.at(pid), AddrToVpn(old_addr));
  if (vma == nullptr || SaturatingAdd(old_addr, old_len) > VpnToAddr(vma->end)) {
    return Errno::kFault;
  }
  if (fixed) return MremapTo(s_, pid, old_addr, old_len, new_addr, new_len);
  // Shrinking: the tail is unmapped in place; the same size changes nothing.
  if (new_len < old_len) {
    UnmapRange(s_, pid, AddrToVpn(old_addr + new_len), AddrToVpn(old_addr + old_len));
  }
  if (new_len <= old_len) return old_addr;
  return MremapGrow(s_, pid, old_addr, old_len, new_len, flags);
}

}  // namespace hmm::model
