// File: model/mremap.cc
//
// mremap: shrink in place, grow in place, move to the first fit, or move to
// a fixed address. Kept in the shape of mm/mremap.c (mremap() dispatching to
// mremap_to() and move_vma()) so the two read side by side; the differences
// (no old_len == 0 duplication, the VMA lookup before any unmap) are the
// Deviations of docs/model.md "Mremap". The linux-6.1 profile has neither
// (D6): it looks up only the VMA at old_addr first, checks the old range when
// growing (vma_to_resize()), after a fixed move's unmaps, and duplicates a
// shared mapping for old_len == 0.

#include <algorithm>

#include "model/address_space.h"
#include "model/anon_vma.h"
#include "model/kernel.h"

namespace hmm::model {
namespace {

// Whether a kMremapFixed destination is aligned, ends at or below TASK_SIZE
// and stays clear of the old range (ranges taken as mathematical integers).
// Mirrors: mm/mremap.c mremap_to() argument checks.
bool FixedTargetValid(const State& s, uint64_t old_addr, uint64_t old_len, uint64_t new_addr,
                      uint64_t new_len) {
  // Is new_addr page-aligned?
  if (!PageAligned(new_addr)) return false;
  // Does the new range end at or below TASK_SIZE?
  if (new_len > TaskSize(s) || new_addr > TaskSize(s) - new_len) return false;
  // Is the new range apart from the old one?
  const bool overlap = new_addr < SaturatingAdd(old_addr, old_len) && old_addr < new_addr + new_len;
  return !overlap;
}

// The old range's checks before it moves or grows: kInval for an old_len of
// 0 on a private mapping (only a shared one can be duplicated), kFault unless
// the VMA at old_addr holds the whole old range. The default profile checked
// both before anything else, so they pass there.
// Mirrors: mm/mremap.c vma_to_resize().
Errno VmaToResize(const State& s, Pid pid, uint64_t old_addr, uint64_t old_len) {
  const Vma* vma = FindVma(s.procs.at(pid), AddrToVpn(old_addr));
  // Is there a VMA at old_addr?
  if (vma == nullptr) return Errno::kFault;
  // Is it a duplication (old_len 0) of a private mapping?
  if (old_len == 0 && !vma->shared) return Errno::kInval;
  // Does the VMA hold the whole old range?
  if (SaturatingAdd(old_addr, old_len) > VpnToAddr(vma->end)) return Errno::kFault;
  return Errno::kOk;
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
  if (!moved.shared && Linux61(s)) moved.vm_pgoff += old_start.value - moved.start.value;
  // linux-6.1: an anonymous VMA never faulted in takes the new place's pgoff,
  // the better to merge (copy_vma()).
  if (!moved.shared && Linux61(s) && moved.anon_vma == 0) moved.vm_pgoff = new_start.value;
  moved.start = new_start;
  moved.end = VpnAdd(new_start, new_npages);
  RmapRelink(s, &moved);
  p.vmas.emplace(new_start, moved);
  // linux-6.1: copy_vma() merges it with the new place's neighbours (D16).
  VmaMerge(s, p, new_start, moved.end, MergeKind::kChanged);
  for (uint64_t i = 0; i < old_npages; ++i) {
    auto pte = p.ptes.find(VpnAdd(old_start, i));
    if (pte != p.ptes.end()) p.ptes[VpnAdd(new_start, i)] = pte->second;
  }
  UnmapRange(s, pid, old_start, VpnAdd(old_start, old_npages));
}

// Unmaps the destination, drops the old range's tail when shrinking, checks
// what is left of the old range (vma_to_resize()), then moves it there. A
// failure after the destination was unmapped leaves it unmapped (linux-6.1;
// the default profile's guards make every rung pass).
// REQUIRES: the Mremap guards passed with kMremapFixed.
// Mirrors: mm/mremap.c mremap_to().
Result<uint64_t> MremapTo(State& s, Pid pid, uint64_t old_addr, uint64_t old_len,
                          uint64_t new_addr, uint64_t new_len) {
  UnmapRange(s, pid, AddrToVpn(new_addr), AddrToVpn(new_addr + new_len));
  // Shrinking: the tail of the old range goes first, as mremap_to() does.
  if (new_len < old_len) {
    const Errno err = DoMunmap(s, pid, old_addr + new_len, old_len - new_len);
    if (err != Errno::kOk) return err;
    old_len = new_len;
  }
  const Errno err = VmaToResize(s, pid, old_addr, old_len);
  if (err != Errno::kOk) return err;
  MoveVma(s, pid, AddrToVpn(old_addr), old_len >> kPageShift, AddrToVpn(new_addr),
          new_len >> kPageShift);
  return new_addr;
}

// Grows in place when the old range ends its VMA and the pages behind it are
// free; else moves to the first fit when allowed. A shared VMA's object does
// not grow with it under linux-6.1 (D7: its size stays).
// REQUIRES: the Mremap guards and VmaToResize passed, not fixed, new_len > old_len.
// Mirrors: mm/mremap.c mremap() growing path, vma_expandable().
Result<uint64_t> MremapGrow(State& s, Pid pid, uint64_t old_addr, uint64_t old_len,
                            uint64_t new_len, uint32_t flags) {
  Process& p = s.procs.at(pid);
  Vma& vma = p.vmas.at(FindVma(p, AddrToVpn(old_addr))->start);
  const uint64_t old_end = old_addr + old_len;
  const uint64_t new_end = SaturatingAdd(old_addr, new_len);
  // Does the range end at its VMA's end, with free room behind it?
  if (old_end == VpnToAddr(vma.end) && new_end <= TaskSize(s) &&
      RangeFree(p, AddrToVpn(old_end), AddrToVpn(new_end), MaxVpn(s))) {
    vma.end = AddrToVpn(new_end);
    RmapRelink(s, &vma);
    // linux-6.1: the extension merges with the next VMA (vma_merge(); D16).
    VmaMerge(s, p, vma.start, vma.end, MergeKind::kExpanded);
    return old_addr;
  }
  // May it move?
  if ((flags & kMremapMaymove) == 0) return Errno::kNoMem;
  // Is there a gap for the whole new length?
  Vpn dst;
  if (!FirstFit(p, new_len >> kPageShift, &dst, MaxVpn(s))) return Errno::kNoMem;
  MoveVma(s, pid, AddrToVpn(old_addr), old_len >> kPageShift, dst, new_len >> kPageShift);
  return VpnToAddr(dst);
}

}  // namespace

// Mirrors: mm/mremap.c mremap().
Result<uint64_t> Kernel::Mremap(Pid pid, uint64_t old_addr, uint64_t old_len, uint64_t new_len,
                                uint32_t flags, uint64_t new_addr) {
  const bool linux61 = Linux61(s_);
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Are the flags known, kMremapFixed only with kMremapMaymove, old_addr aligned?
  const bool fixed = (flags & kMremapFixed) != 0;
  if ((flags & ~uint32_t{kMremapMaymove | kMremapFixed}) != 0) return Errno::kInval;
  if (fixed && (flags & kMremapMaymove) == 0) return Errno::kInval;
  if (!PageAligned(old_addr)) return Errno::kInval;
  // Are both rounded lengths non-zero (after wrap)? (linux-6.1: old_len 0
  // asks to duplicate a shared mapping.)
  old_len = PageAlign(old_len);
  new_len = PageAlign(new_len);
  if (new_len == 0 || (!linux61 && old_len == 0)) return Errno::kInval;
  // linux-6.1: is there a VMA at old_addr? (vma_lookup(), first; D6)
  if (linux61 && FindVma(s_.procs.at(pid), AddrToVpn(old_addr)) == nullptr) return Errno::kFault;
  // Fixed: is the destination aligned, below TASK_SIZE and apart from the old range?
  if (fixed && !FixedTargetValid(s_, old_addr, old_len, new_addr, new_len)) return Errno::kInval;
  // Does one VMA hold the whole old range? (linux-6.1: only when it moves or
  // grows, in MremapTo and below.)
  if (!linux61 && VmaToResize(s_, pid, old_addr, old_len) != Errno::kOk) return Errno::kFault;
  if (fixed) return MremapTo(s_, pid, old_addr, old_len, new_addr, new_len);
  // Shrinking: the tail is unmapped in place (linux-6.1: whatever it holds);
  // the same size changes nothing.
  if (new_len < old_len) {
    const Errno err = DoMunmap(s_, pid, old_addr + new_len, old_len - new_len);
    if (err != Errno::kOk) return err;
  }
  if (new_len <= old_len) return old_addr;
  // linux-6.1: does the VMA at old_addr hold the old range, and is a
  // duplication shared? (vma_to_resize(), for growing only)
  const Errno err = VmaToResize(s_, pid, old_addr, old_len);
  if (err != Errno::kOk) return err;
  return MremapGrow(s_, pid, old_addr, old_len, new_len, flags);
}

}  // namespace hmm::model
