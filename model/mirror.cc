// File: model/mirror.cc
//
// Mirroring, the seed's kernel API (docs/mirror.md): hmm_mirror_register() and
// hmm_mirror_unregister(), the snapshot hmm_vma_get_pfns() closed by
// hmm_vma_range_done(), and the device fault hmm_vma_fault(); and what every
// CPU path shares with them (mirror_walk.h): the mmu notifier and the walk's
// entry rule. Ranges stay open between calls, so a trace can put CPU
// operations between a snapshot and its commit: the race the protocol is for.

#include <algorithm>
#include <cassert>
#include <utility>

#include "model/address_space.h"
#include "model/kernel.h"
#include "model/mirror_walk.h"

namespace hmm::model {

// --- Shared with the CPU paths (mirror_walk.h) ---

void MmuNotifierInvalidate(State& s, Pid pid, Vpn start, Vpn end) {
  MmuNotifierInvalidateIf(s, pid, start, end, [](const Mirror&) { return true; });
}

void MmuNotifierInvalidateIf(State& s, Pid pid, Vpn start, Vpn end, const MirrorFilter& pick) {
  // The device side: each mirror's sync_cpu_device_pagetables(). Under
  // linux-6.1 the dummy device erases [start, end] page-inclusive (D1).
  const Vpn pt_end = Linux61(s) ? VpnAdd(end, 1) : end;
  for (auto& [id, mirror] : s.mirrors) {
    if (mirror.pid != pid || !pick(mirror)) continue;
    PtErase(mirror, start, pt_end);
  }
  // The snapshot side: the overlapping open ranges lose their validity for good.
  for (auto& [id, range] : s.ranges) {
    // Is the range of another process or a skipped mirror, or apart from [start, end)?
    auto mirror = s.mirrors.find(range.mirror);
    if (mirror == s.mirrors.end() || mirror->second.pid != pid) continue;
    if (!pick(mirror->second)) continue;
    if (!(start < range.end && range.start < end)) continue;
    range.valid = false;
    const Vpn from = std::max(start, range.start);
    const Vpn to = std::min(end, range.end);
    for (Vpn vpn = from; vpn < to; vpn = VpnAdd(vpn, 1)) {
      range.pfns[vpn.value - range.start.value] = HmmPfn{};
    }
  }
}

void MmuNotifierInvalidateMapped(State& s, Pid pid, Vpn start, Vpn end) {
  for (const auto& [key, vma] : s.procs.at(pid).vmas) {
    if (vma.start < end && start < vma.end) {
      MmuNotifierInvalidate(s, pid, std::max(start, vma.start), std::min(end, vma.end));
    }
  }
}

void PtStore(Mirror& m, Vpn vpn, const Pte& entry, bool unbacked) {
  m.pt[vpn] = entry;
  m.stale.erase(vpn);
  if (unbacked) m.unbacked.insert(vpn);
  if (!unbacked) m.unbacked.erase(vpn);
}

void PtErase(Mirror& m, Vpn start, Vpn end) {
  m.pt.erase(m.pt.lower_bound(start), m.pt.lower_bound(end));
  m.unbacked.erase(m.unbacked.lower_bound(start), m.unbacked.lower_bound(end));
  m.stale.erase(m.stale.lower_bound(start), m.stale.lower_bound(end));
}

void PtMarkFreed(State& s, const Pte& target) {
  for (auto& [id, mirror] : s.mirrors) {
    for (const auto& [vpn, entry] : mirror.pt) {
      if (SameTarget(entry, target)) mirror.stale.insert(vpn);
    }
  }
}

HmmPfn HmmPfnOf(const Process& p, const Vma& vma, Vpn vpn) {
  HmmPfn entry;
  auto it = p.ptes.find(vpn);
  // Is there no entry (pte_none)?
  if (it == p.ptes.end()) {
    entry.flags = kHmmPfnEmpty;
    return entry;
  }
  const Pte& pte = it->second;
  entry.flags = kHmmPfnValid;
  if ((vma.prot & kProtRead) != 0) entry.flags |= kHmmPfnRead;
  if (pte.write) entry.flags |= kHmmPfnWrite;  // never the zero page's
  if (pte.device) entry.flags |= kHmmPfnDeviceUnaddressable;
  entry.zero = pte.zero;
  entry.page = pte.page;
  entry.device_pfn = pte.device_pfn;
  return entry;
}

bool NeedsFault(const Process& p, Vpn vpn, bool write) {
  auto it = p.ptes.find(vpn);
  // Is there no entry?
  if (it == p.ptes.end()) return true;
  // Is a write asked of a read-only entry?
  return write && !it->second.write;
}

Pte DeviceMapping(const HmmPfn& entry) {
  assert((entry.flags & kHmmPfnValid) != 0);
  Pte mapping;
  mapping.zero = entry.zero;
  mapping.page = entry.page;
  mapping.write = (entry.flags & kHmmPfnWrite) != 0;
  mapping.device = (entry.flags & kHmmPfnDeviceUnaddressable) != 0;
  mapping.device_pfn = entry.device_pfn;
  return mapping;
}

DeviceId OwnerOfDevicePfn(const State& s, uint64_t pfn) {
  return s.devmems.at(DevmemOfPfn(s, pfn)).device;
}

namespace {

// The guards HmmVmaGetPfns and HmmVmaFault share, in docs/mirror.md's order.
// Mirrors: mm/hmm.c hmm_vma_get_pfns(), hmm_vma_fault() argument checks (4.14).
Errno RangeGuards(const State& s, uint64_t mirror, uint64_t addr, uint64_t npages) {
  // Is the mirror registered?
  auto it = s.mirrors.find(mirror);
  if (it == s.mirrors.end()) return Errno::kNoEnt;
  // Is addr page-aligned and npages non-zero?
  if (!PageAligned(addr) || npages == 0) return Errno::kInval;
  // Does the range end at or below kTaskSize?
  if (EndsAboveTaskSize(addr, npages)) return Errno::kInval;
  // Can the caller's pfns array be allocated?
  if (npages > kMaxRangePages) return Errno::kNoMem;
  // Is the mirrored process live? (4.14 has no VMA to walk.)
  if (!IsLive(s, it->second.pid)) return Errno::kInval;
  // Does one VMA hold the whole range?
  const Vpn start = AddrToVpn(addr);
  const Vma* vma = FindVma(s.procs.at(it->second.pid), start);
  if (vma == nullptr || vma->end.value - start.value < npages) return Errno::kInval;
  return Errno::kOk;
}

// Registers a valid range of `mirror` over [start, start + npages), every
// entry 0. Returns: its id.
// Mirrors: mm/hmm.c hmm_vma_get_pfns() (list_add_rcu(&range->list, &hmm->ranges)).
uint64_t RegisterRange(State& s, uint64_t mirror, Vpn start, uint64_t npages) {
  Range range;
  range.mirror = mirror;
  range.start = start;
  range.end = VpnAdd(start, npages);
  range.valid = true;
  range.pfns.assign(npages, HmmPfn{});
  const uint64_t id = s.next_range++;
  s.ranges.emplace(id, std::move(range));
  return id;
}

}  // namespace

// --- The kernel API ---

// Mirrors: mm/hmm.c hmm_mirror_register() + lib/test_hmm.c dmirror_fops_open().
Result<uint64_t> Kernel::HmmMirrorRegister(DeviceId device, Pid pid) {
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Is the device one of /dev/hmm_dmirror0..3? (linux-6.1: there is no such
  // file to open, kNoEnt; D8)
  if (device.value >= kMaxDevices) return Linux61(s_) ? Errno::kNoEnt : Errno::kInval;
  // Is there room for one more mirror? (linux-6.1 has no limit; D11)
  if (!Linux61(s_) && s_.mirrors.size() >= kMaxMirrors) return Errno::kNoMem;
  const uint64_t id = s_.next_mirror++;
  Mirror m;
  m.device = device;
  m.pid = pid;
  s_.mirrors.emplace(id, m);
  return id;
}

// Mirrors: mm/hmm.c hmm_mirror_unregister() + lib/test_hmm.c dmirror_fops_release()
// (6.1: the last close also evicts all of the device's memory, for every
// process; docs/migrate.md).
Errno Kernel::HmmMirrorUnregister(uint64_t mirror) {
  // Is the mirror registered?
  if (s_.mirrors.count(mirror) == 0) return Errno::kNoEnt;
  // Has it an open range? The driver must call range_done once for each first.
  for (const auto& [id, range] : s_.ranges) {
    if (range.mirror == mirror) return Errno::kBusy;
  }
  const DeviceId device = s_.mirrors.at(mirror).device;
  s_.mirrors.erase(mirror);
  // linux-6.1: the release evicts the device's memory (RAM full is the
  // model's bound: the kernel's allocation cannot fail there).
  if (Linux61(s_)) (void)DmirrorDeviceEvict(device);
  return Errno::kOk;
}

// Mirrors: mm/hmm.c hmm_vma_get_pfns() (4.14).
Result<uint64_t> Kernel::HmmVmaGetPfns(uint64_t mirror, uint64_t addr, uint64_t npages) {
  const Errno err = RangeGuards(s_, mirror, addr, npages);
  if (err != Errno::kOk) return err;
  const Vpn start = AddrToVpn(addr);
  const uint64_t id = RegisterRange(s_, mirror, start, npages);
  const Process& p = s_.procs.at(s_.mirrors.at(mirror).pid);
  const Vma& vma = *FindVma(p, start);
  Range& range = s_.ranges.at(id);
  for (uint64_t i = 0; i < npages; ++i) range.pfns[i] = HmmPfnOf(p, vma, VpnAdd(start, i));
  return id;
}

// A fault the walk found needed at vpn, checked in docs/mirror.md's order.
// Returns kFault (no PROT_READ; a device page that cannot migrate back; RAM
// full) or kPerm (a write to a VMA without PROT_WRITE).
// REQUIRES: pid is live and a VMA holds vpn.
// Mirrors: mm/hmm.c hmm_vma_walk_test() and hmm_vma_fault() (the VM_READ and
// VM_WRITE checks of later kernels), hmm_vma_do_fault() (4.14 handle_mm_fault()).
Errno Kernel::HmmDoFault(Pid pid, Vpn vpn, bool write) {
  const Vma& vma = *FindVma(s_.procs.at(pid), vpn);
  // Does the VMA lack PROT_READ?
  if ((vma.prot & kProtRead) == 0) return Errno::kFault;
  // Is it a write, and does the VMA lack PROT_WRITE?
  if (write && (vma.prot & kProtWrite) == 0) return Errno::kPerm;
  // The CPU fault path: on a device entry the owner's devmem callback runs
  // (logged) and migrates the page back, which notifies (docs/migrate.md), or
  // answers SIGBUS; then the page is faulted in, which may break COW and so
  // notify (the faulting range included); RAM full is kNoMem.
  return FaultIn(pid, vpn, write) == Errno::kOk ? Errno::kOk : Errno::kFault;
}

// Mirrors: mm/hmm.c hmm_vma_fault() (4.14).
Result<uint64_t> Kernel::HmmVmaFault(uint64_t mirror, uint64_t addr, uint64_t npages, bool write) {
  const Errno err = RangeGuards(s_, mirror, addr, npages);
  if (err != Errno::kOk) return err;
  const Pid pid = s_.mirrors.at(mirror).pid;
  const Vpn start = AddrToVpn(addr);
  const uint64_t id = RegisterRange(s_, mirror, start, npages);
  // Loop invariant: entries [0, i) are filled by the entry rule; their pages
  // were faulted in where needed. A fault's notification may have marked the
  // range invalid (its own COW break); the walk goes on regardless.
  for (uint64_t i = 0; i < npages; ++i) {
    const Vpn vpn = VpnAdd(start, i);
    if (NeedsFault(s_.procs.at(pid), vpn, write)) {
      const Errno fault = HmmDoFault(pid, vpn, write);
      // Did it fail? The driver's array gets ERROR here and 0 after, and the
      // range is unregistered already (range_done must not be called); the
      // pages before stay faulted in. hmmref keeps no array of a gone range.
      if (fault != Errno::kOk) {
        s_.ranges.erase(id);
        return fault;
      }
    }
    const Process& p = s_.procs.at(pid);
    s_.ranges.at(id).pfns[i] = HmmPfnOf(p, *FindVma(p, vpn), vpn);
  }
  return id;
}

// Mirrors: mm/hmm.c hmm_vma_range_done() (4.14).
Result<bool> Kernel::HmmVmaRangeDone(uint64_t range) {
  // Is the range open?
  auto it = s_.ranges.find(range);
  if (it == s_.ranges.end()) return Errno::kNoEnt;
  const bool valid = it->second.valid;
  s_.ranges.erase(it);
  return valid;
}

}  // namespace hmm::model
