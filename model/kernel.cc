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
#include "model/anon_vma.h"
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

// linux-6.1: whether Linux takes the flags of an anonymous mapping. Bits the
// model does not name reach Linux as they are (docs/oracle.md), so MAP_TYPE
// (0xf) is kMapShared, kMapPrivate and bit 0x8; it must be MAP_SHARED or
// MAP_PRIVATE, and a shared mapping cannot be MAP_GROWSDOWN (0x100). Other
// bits are ignored (D2).
// Mirrors: mm/mmap.c do_mmap() (the !file switch on flags & MAP_TYPE).
bool LinuxMapTypeValid(uint32_t flags) {
  constexpr uint32_t kLinuxMapType = kMapShared | kMapPrivate | 0x8;
  constexpr uint32_t kLinuxMapGrowsdown = 0x100;
  const uint32_t type = flags & kLinuxMapType;
  if (type == kMapShared) return (flags & kLinuxMapGrowsdown) == 0;
  return type == kMapPrivate;
}

// The prot bits a VMA keeps: read and write; under linux-6.1 exec too (on
// x86 an executable page is readable; D3). Other bits are dropped, as
// calc_vm_prot_bits() drops PROT_SEM.
uint32_t VmaProt(const State& s, uint32_t prot) {
  return prot & (Linux61(s) ? uint32_t{kProtMask | kProtExec} : kProtMask);
}

// Where a mapping without kMapFixed goes: the hint, rounded down as
// mm/mmap.c round_hint_to_min() does, when the range there is free; else the
// first fit. Returns false when there is no room.
// Mirrors: mm/mmap.c get_unmapped_area(), generic_get_unmapped_area().
bool ChooseAddress(const State& s, const Process& p, uint64_t hint, uint64_t npages, Vpn* start) {
  const Vpn at = AddrToVpn(hint & kPageMask);
  const uint64_t max_vpn = MaxVpn(s);
  if (at.value != 0 && at.value <= max_vpn - npages &&
      RangeFree(p, at, VpnAdd(at, npages), max_vpn)) {
    *start = at;
    return true;
  }
  return FirstFit(p, npages, start, max_vpn);
}

// Maps [start, start + npages) afresh: what was there is unmapped first; a
// shared mapping gets a new, empty object at pgoff 0 (under linux-6.1 of
// npages pages: shmem_zero_setup() sizes the file as the mapping, D7).
// Mirrors: mm/mmap.c mmap_region(), mm/shmem.c shmem_zero_setup().
void MapRegion(State& s, Pid pid, Vpn start, uint64_t npages, uint32_t prot, bool shared) {
  UnmapRange(s, pid, start, VpnAdd(start, npages));
  Vma vma;
  vma.start = start;
  vma.end = VpnAdd(start, npages);
  vma.prot = prot;
  vma.shared = shared;
  if (shared) {
    vma.object = s.next_object++;
    s.objects[vma.object] = SharedObject{};
    if (Linux61(s)) s.objects[vma.object].size = npages;
  }
  // linux-6.1: pgoff = addr >> PAGE_SHIFT, VM_ACCOUNT if private and writable
  // (accountable_mapping()), then merged with its neighbours (D16).
  if (!shared && Linux61(s)) {
    vma.vm_pgoff = start.value;
    vma.account = (prot & kProtWrite) != 0;
  }
  RmapRelink(s, &vma);
  s.procs.at(pid).vmas.emplace(start, vma);
  VmaMerge(s, s.procs.at(pid), start, vma.end, MergeKind::kNewMapping);
}

}  // namespace

// Mirrors: mm/mmap.c do_mmap(), get_unmapped_area().
Result<uint64_t> Kernel::Mmap(Pid pid, uint64_t addr, uint64_t len, uint32_t prot, uint32_t flags) {
  const bool linux61 = Linux61(s_);
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Do the flags name exactly one of shared/private, and prot only known bits?
  // (linux-6.1: prot is never checked, the flags last; D2, D3.)
  if (!linux61 && (!MapFlagsValid(flags) || (prot & ~kProtMask) != 0)) return Errno::kInval;
  // Is the length non-zero?
  if (len == 0) return Errno::kInval;
  // Does the rounded length neither wrap nor exceed TASK_SIZE?
  const uint64_t npages = PageAlign(len) >> kPageShift;
  if (npages == 0 || npages > MaxVpn(s_)) return Errno::kNoMem;
  const bool fixed = (flags & kMapFixed) != 0;
  // Fixed: is addr page-aligned? (linux-6.1: after the next rung.)
  if (!linux61 && fixed && !PageAligned(addr)) return Errno::kInval;
  // Fixed: does the range end at or below TASK_SIZE?
  if (fixed && addr > TaskSize(s_) - npages * kPageSize) return Errno::kNoMem;
  if (linux61 && fixed && !PageAligned(addr)) return Errno::kInval;
  Vpn start = AddrToVpn(addr);
  // Not fixed: is there room at the hint or in a gap?
  if (!fixed && !ChooseAddress(s_, s_.procs.at(pid), addr, npages, &start)) return Errno::kNoMem;
  // linux-6.1: is MAP_TYPE shared or private (and a shared one not GROWSDOWN)?
  if (linux61 && !LinuxMapTypeValid(flags)) return Errno::kInval;
  MapRegion(s_, pid, start, npages, VmaProt(s_, prot), (flags & kMapShared) != 0);
  return VpnToAddr(start);
}

// Mirrors: mm/mmap.c do_munmap().
Errno Kernel::Munmap(Pid pid, uint64_t addr, uint64_t len) {
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // The rest of the ladder (alignment, length, TASK_SIZE) is DoMunmap's.
  return DoMunmap(s_, pid, addr, len);
}

namespace {

// linux-6.1: whether a read-only private PTE of a VMA made writable becomes
// writable at once: a dirty PTE of an anonymous page no fork shares (D20).
// Mirrors: mm/mprotect.c can_change_pte_writable() (6.1).
bool CanChangePteWritable(const State& s, const Pte& pte) {
  return Linux61(s) && !pte.zero && !pte.device && pte.dirty && AnonExclusive(s, pte);
}

// Sets the prot of every VMA of [start, end) (already split at the edges) and
// adjusts their PTEs: without write every PTE loses it, device entries
// included (SWP_DEVICE_WRITE becomes SWP_DEVICE_READ); with write only PTEs
// of shared VMAs gain it (a private PTE waits for its write fault: COW; device
// entries live only in private VMAs). Under linux-6.1 a private entry is
// writable afterwards only if CanChangePteWritable() (change_pte_range()
// applies the VMA's new page protection, read-only for a private VMA, and
// makes every writable device-private entry readable), and a private VMA
// made writable gains VM_ACCOUNT.
// Mirrors: mm/mprotect.c mprotect_fixup(), change_pte_range().
void ChangeProtection(State& s, Process& p, Vpn start, Vpn end, uint32_t prot) {
  const bool write = (prot & kProtWrite) != 0;
  for (auto it = p.vmas.lower_bound(start); it != p.vmas.lower_bound(end); ++it) {
    it->second.prot = prot;
    if (Linux61(s) && !it->second.shared && write) it->second.account = true;
  }
  for (auto it = p.ptes.lower_bound(start); it != p.ptes.lower_bound(end); ++it) {
    Pte& pte = it->second;
    const bool shared = FindVma(p, it->first)->shared;
    if (!write) {
      pte.write = false;
    } else if (shared) {
      pte.write = true;
    } else if (Linux61(s)) {
      // linux-6.1 rewrites every private entry with the VMA's new page
      // protection, which never writes (COW), then makes writable what
      // CanChangePteWritable(); a device-private entry never (D20, D21).
      pte.write = CanChangePteWritable(s, pte);
    }
  }
}

// Applies prot to the VMAs of [start, end) in address order, as the loop of
// do_mprotect_pkey() calls mprotect_fixup(): a VMA whose prot changes notifies
// pid's mirrors of its part first (mprotect_fixup() returns early on an
// unchanged VMA, before change_protection() calls the notifier); each part is
// split off and changed. Returns kNoMem at the first hole; the VMAs before it
// keep their new prot (linux-6.1's D5; the default profile checked for holes
// first).
// Mirrors: mm/mprotect.c do_mprotect_pkey(), mprotect_fixup(), change_protection().
Errno MprotectVmas(State& s, Pid pid, Vpn start, Vpn end, uint32_t prot) {
  Process& p = s.procs.at(pid);
  // Loop invariant: the VMAs of [start, cursor) have prot.
  for (Vpn cursor = start; cursor < end;) {
    const Vma* vma = FindVma(p, cursor);
    // Is there a hole at cursor?
    if (vma == nullptr) return Errno::kNoMem;
    const Vpn from = cursor;
    const Vpn to = std::min(end, vma->end);
    const bool changes = vma->prot != prot;
    cursor = to;
    // linux-6.1: an unchanged VMA is not even split (mprotect_fixup()).
    if (!changes && Linux61(s)) continue;
    if (changes) MmuNotifierInvalidate(s, pid, from, to);
    SplitVmaAt(s, p, from);
    SplitVmaAt(s, p, to);
    ChangeProtection(s, p, from, to, prot);
    // linux-6.1: the changed part merges with its neighbours (vma_merge()).
    if (changes) VmaMerge(s, p, from, to, MergeKind::kChanged);
  }
  return Errno::kOk;
}

}  // namespace

// Mirrors: mm/mprotect.c do_mprotect_pkey().
Errno Kernel::Mprotect(Pid pid, uint64_t addr, uint64_t len, uint32_t prot) {
  const bool linux61 = Linux61(s_);
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Is addr page-aligned?
  if (!PageAligned(addr)) return Errno::kInval;
  // Is there nothing to do?
  if (len == 0) return Errno::kOk;
  // Does the rounded range not wrap?
  const uint64_t end_addr = addr + PageAlign(len);
  if (end_addr <= addr) return Errno::kNoMem;
  // Does prot name only known bits? (Last, as arch_validate_prot() is; under
  // linux-6.1 PROT_EXEC and PROT_SEM are known, D3/D4.)
  const uint32_t known = linux61 ? uint32_t{kProtMask | kProtExec | kProtSem} : kProtMask;
  if ((prot & ~known) != 0) return Errno::kInval;
  // Is every page of the range inside a VMA? (Deviation: all or nothing;
  // linux-6.1 checks the first page only, and stops at a hole, D5.)
  Process& p = s_.procs.at(pid);
  const Vpn start = AddrToVpn(addr);
  const Vpn end = AddrToVpn(end_addr);
  if (!linux61 && !RangeCovered(p, start, end)) return Errno::kNoMem;
  if (linux61 && FindVma(p, start) == nullptr) return Errno::kNoMem;
  return MprotectVmas(s_, pid, start, end, VmaProt(s_, prot));
}

// Mirrors: mm/madvise.c madvise_walk_vmas(), madvise_dontneed_single_vma().
Errno Kernel::MadviseDontneed(Pid pid, uint64_t addr, uint64_t len) {
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Is addr page-aligned?
  if (!PageAligned(addr)) return Errno::kInval;
  // Does the rounded length neither wrap to 0 nor exceed kTaskSize, and the
  // range not wrap? (linux-6.1 has no kTaskSize rung.)
  const uint64_t rounded = PageAlign(len);
  const bool too_long = !Linux61(s_) && rounded > kTaskSize;
  if (len != 0 && (rounded == 0 || too_long || addr + rounded < addr)) {
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

// Mirrors: kernel/exit.c do_exit() (exit_mm(), then exit_files()), mm/mmap.c exit_mmap().
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
  // linux-6.1: then its files close (exit_files() after exit_mm()), each
  // mirror's release evicting its device's memory (docs/migrate.md).
  std::vector<uint64_t> files;
  for (const auto& [id, mirror] : s_.mirrors) {
    if (Linux61(s_) && mirror.pid == pid) files.push_back(id);
  }
  for (uint64_t id : files) (void)HmmMirrorUnregister(id);
  return Errno::kOk;
}

}  // namespace hmm::model
