// File: model/kernel.cc
//
// The address-space system calls of model::Kernel: process creation and exit,
// mmap, munmap, mprotect, madvise(MADV_DONTNEED) and unpin. Mremap, fork and
// the fault paths (CPU access, pin) live in mremap.cc, fork.cc and fault.cc;
// the device-memory operations in devmem.cc.
// Every guard ladder follows docs/model.md rung by rung: pid, then arguments,
// then state. Page-table changes notify the process's mirrors first
// (docs/mirror.md's table; munmap and MAP_FIXED through UnmapRange).

#include "model/kernel.h"

#include <algorithm>

#include "model/address_space.h"
#include "model/mirror_walk.h"

namespace hmm::model {

namespace {

// The default Config with `ram_pages` of boot RAM.
Config WithRamPages(uint64_t ram_pages) {
  Config config;
  config.ram_pages = ram_pages;
  return config;
}

}  // namespace

Kernel::Kernel(uint64_t ram_pages) : Kernel(WithRamPages(ram_pages)) {}

// Boot: System RAM [0, ram_pages * 4096) is the one resource.
// Mirrors: arch/x86/kernel/e820.c e820__reserve_resources().
Kernel::Kernel(const Config& config) : ram_pages_(config.ram_pages) {
  s_.config = config;
  Resource ram;
  ram.end = config.ram_pages << kPageShift;
  ram.boot = true;
  s_.resources.emplace(ram.start, ram);
}

// Mirrors: kernel/fork.c copy_process() for a process with an empty mm.
Result<Pid> Kernel::CreateProcess() {
  // Is there room for one more live process?
  if (s_.procs.size() >= kMaxProcesses) return Errno::kAgain;
  const Pid pid(s_.next_pid++);
  s_.procs[pid] = Process{};
  return pid;
}

namespace {

// Whether flags hold exactly one of kMapShared, kMapPrivate and no unknown bit.
bool MapFlagsValid(uint32_t flags) {
  if ((flags & ~uint32_t{kMapShared | kMapPrivate | kMapFixed}) != 0) return false;
  const bool shared = (flags & kMapShared) != 0;
  const bool priv = (flags & kMapPrivate) != 0;
  return shared != priv;
}

// Where a mapping without kMapFixed goes: the hint, rounded down as
// mm/mmap.c round_hint_to_min() does, when the range there is free; else the
// first fit. Returns false when there is no room.
// Mirrors: mm/mmap.c get_unmapped_area(), generic_get_unmapped_area().
bool ChooseAddress(const Process& p, uint64_t hint, uint64_t npages, Vpn* start) {
  const Vpn at = AddrToVpn(hint & kPageMask);
  if (at.value != 0 && at.value <= kMaxVpn - npages && RangeFree(p, at, VpnAdd(at, npages))) {
    *start = at;
    return true;
  }
  return FirstFit(p, npages, start);
}

// Maps [start, start + npages) afresh: what was there is unmapped first; a
// shared mapping gets a new, empty object at pgoff 0.
// Mirrors: mm/mmap.c mmap_region(), mm/shmem.c shmem_zero_setup().
void MapRegion(State& s, Pid pid, Vpn start, uint64_t npages, uint32_t prot, bool shared) {
  UnmapRange(s, pid, start, VpnAdd(start, npages));
  Vma vma{start, VpnAdd(start, npages), prot, shared, 0, 0};
  if (shared) {
    vma.object = s.next_object++;
    s.objects[vma.object] = SharedObject{};
  }
  s.procs.at(pid).vmas.emplace(start, vma);
}

}  // namespace

// Mirrors: mm/mmap.c do_mmap(), get_unmapped_area().
Result<uint64_t> Kernel::Mmap(Pid pid, uint64_t addr, uint64_t len, uint32_t prot, uint32_t flags) {
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Do the flags name exactly one of shared/private, and prot only known bits?
  if (!MapFlagsValid(flags) || (prot & ~kProtMask) != 0) return Errno::kInval;
  // Is the length non-zero?
  if (len == 0) return Errno::kInval;
  // Does the rounded length neither wrap nor exceed kTaskSize?
  const uint64_t npages = PageAlign(len) >> kPageShift;
  if (npages == 0 || npages > kMaxVpn) return Errno::kNoMem;
  const bool fixed = (flags & kMapFixed) != 0;
  // Fixed: is addr page-aligned?
  if (fixed && !PageAligned(addr)) return Errno::kInval;
  // Fixed: does the range end at or below kTaskSize?
  if (fixed && AddrToVpn(addr).value > kMaxVpn - npages) return Errno::kNoMem;
  Vpn start = AddrToVpn(addr);
  // Not fixed: is there room at the hint or in a gap?
  if (!fixed && !ChooseAddress(s_.procs.at(pid), addr, npages, &start)) return Errno::kNoMem;
  MapRegion(s_, pid, start, npages, prot, (flags & kMapShared) != 0);
  return VpnToAddr(start);
}

// Mirrors: mm/mmap.c do_munmap().
Errno Kernel::Munmap(Pid pid, uint64_t addr, uint64_t len) {
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Is addr page-aligned?
  if (!PageAligned(addr)) return Errno::kInval;
  // Is the length non-zero?
  if (len == 0) return Errno::kInval;
  // Does the rounded range neither wrap nor pass kTaskSize?
  const uint64_t npages = PageAlign(len) >> kPageShift;
  if (npages == 0 || addr > kTaskSize || npages > kMaxVpn - AddrToVpn(addr).value) {
    return Errno::kInval;
  }
  UnmapRange(s_, pid, AddrToVpn(addr), VpnAdd(AddrToVpn(addr), npages));
  return Errno::kOk;
}

namespace {

// Sets the prot of every VMA of [start, end) (already split at the edges) and
// adjusts their PTEs: without write every PTE loses it, device entries
// included (SWP_DEVICE_WRITE becomes SWP_DEVICE_READ); with write only PTEs
// of shared VMAs gain it (a private PTE waits for its write fault: COW; device
// entries live only in private VMAs).
// Mirrors: mm/mprotect.c mprotect_fixup(), change_pte_range().
void ChangeProtection(Process& p, Vpn start, Vpn end, uint32_t prot) {
  for (auto it = p.vmas.lower_bound(start); it != p.vmas.lower_bound(end); ++it) {
    it->second.prot = prot;
  }
  for (auto it = p.ptes.lower_bound(start); it != p.ptes.lower_bound(end); ++it) {
    const bool shared = FindVma(p, it->first)->shared;
    if ((prot & kProtWrite) == 0) it->second.write = false;
    if ((prot & kProtWrite) != 0 && shared) it->second.write = true;
  }
}

// Notifies pid's mirrors of every page of [start, end) inside a VMA whose prot
// is not `prot` already (mprotect_fixup() returns early on an unchanged VMA,
// before change_protection() calls the notifier).
// Mirrors: mm/mprotect.c mprotect_fixup(), change_protection().
void NotifyProtectionChange(State& s, Pid pid, Vpn start, Vpn end, uint32_t prot) {
  for (const auto& [key, vma] : s.procs.at(pid).vmas) {
    if (vma.start < end && start < vma.end && vma.prot != prot) {
      MmuNotifierInvalidate(s, pid, std::max(start, vma.start), std::min(end, vma.end));
    }
  }
}

}  // namespace

// Mirrors: mm/mprotect.c do_mprotect_pkey().
Errno Kernel::Mprotect(Pid pid, uint64_t addr, uint64_t len, uint32_t prot) {
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Is addr page-aligned?
  if (!PageAligned(addr)) return Errno::kInval;
  // Is there nothing to do?
  if (len == 0) return Errno::kOk;
  // Does the rounded range not wrap?
  const uint64_t end_addr = addr + PageAlign(len);
  if (end_addr <= addr) return Errno::kNoMem;
  // Does prot name only known bits? (Last, as arch_validate_prot() is.)
  if ((prot & ~kProtMask) != 0) return Errno::kInval;
  // Is every page of the range inside a VMA? (Deviation: all or nothing.)
  Process& p = s_.procs.at(pid);
  const Vpn start = AddrToVpn(addr);
  const Vpn end = AddrToVpn(end_addr);
  if (!RangeCovered(p, start, end)) return Errno::kNoMem;
  NotifyProtectionChange(s_, pid, start, end, prot);
  SplitVmaAt(p, start);
  SplitVmaAt(p, end);
  ChangeProtection(p, start, end, prot);
  return Errno::kOk;
}

// Mirrors: mm/madvise.c madvise_walk_vmas(), madvise_dontneed_single_vma().
Errno Kernel::MadviseDontneed(Pid pid, uint64_t addr, uint64_t len) {
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Is addr page-aligned?
  if (!PageAligned(addr)) return Errno::kInval;
  // Does the rounded length neither wrap to 0 nor exceed kTaskSize, and the
  // range not wrap?
  const uint64_t rounded = PageAlign(len);
  if (len != 0 && (rounded == 0 || rounded > kTaskSize || addr + rounded < addr)) {
    return Errno::kInval;
  }
  // Is there nothing to do?
  if (len == 0) return Errno::kOk;
  // PTEs exist only inside VMAs, so zapping the whole range zaps exactly the
  // mapped parts; a hole is still reported after the zap (unmapped_error).
  Process& p = s_.procs.at(pid);
  const Vpn start = AddrToVpn(addr);
  const Vpn end = AddrToVpn(addr + rounded);
  MmuNotifierInvalidateMapped(s_, pid, start, end);
  ZapPtes(s_, pid, start, end);
  ReleaseUnreferenced(s_);
  return RangeCovered(p, start, end) ? Errno::kOk : Errno::kNoMem;
}

// Mirrors: mm/gup.c unpin_user_pages().
Errno Kernel::UnpinUserPages(PinId pin) {
  // Is the pin held?
  if (s_.pins.count(pin) == 0) return Errno::kNoEnt;
  s_.pins.erase(pin);
  ReleaseUnreferenced(s_);
  return Errno::kOk;
}

// Mirrors: kernel/exit.c do_exit(), mm/mmap.c exit_mmap().
Errno Kernel::Exit(Pid pid) {
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Every PTE goes in vpn order (exit_mmap() unmaps the VMAs in address
  // order), so device pages log their page_free in that order; then dropping
  // the process unmaps the VMAs. Pins outlive it. PTEs lie below kMaxVpn
  // (InvPteInsideVma, InvDeviceEntryPrivateVma). The mirrors are notified of
  // every VMA first; they stay registered, their pt empty.
  MmuNotifierInvalidateMapped(s_, pid, Vpn(0), Vpn(kMaxVpn));
  ZapPtes(s_, pid, Vpn(0), Vpn(kMaxVpn));
  s_.procs.erase(pid);
  ReleaseUnreferenced(s_);
  return Errno::kOk;
}

}  // namespace hmm::model
