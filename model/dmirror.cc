// File: model/dmirror.cc
//
// The dummy device (docs/mirror.md) with the behaviour of Linux 6.1's
// lib/test_hmm.c: one mirror is one open /dev/hmm_dmirrorN, its pt the
// driver's xarray of vpn -> page. The v18 driver's commit of a range, and the
// ioctls READ, WRITE and SNAPSHOT with the driver's exact cpages and faults.
// The driver's fault walks like 6.1's hmm_range_fault() with
// dev_private_owner = this device: every page asks for a fault
// (HMM_PFN_REQ_FAULT), and another device's entry always needs one. Under the
// linux-6.1 profile (docs/divergences.md) the ioctls have 6.1's bounds (D9,
// D10), the owner's device-private entry is reported as it stands (D13), a
// fault faults the rest of its page table (hmm_vma_fault()), and reading an
// entry that holds a device-private page itself oopses (D12).

#include <algorithm>
#include <vector>

#include "model/address_space.h"
#include "model/kernel.h"
#include "model/mirror_walk.h"

namespace hmm::model {
namespace {

// linux-6.1: the model's bound on one ioctl's pages (256 MiB, the oracle
// runner's largest buffer): the kernel has none (D10), but the model keeps
// every byte; the oracle does not send a line past it.
constexpr uint64_t kLinux61MaxDmirrorPages = uint64_t{1} << 16;

// The contents a pt entry lets the device read: the zero page's, a page's, or
// (a device entry) the device page's own.
const Page& Contents(const State& s, const Pte& target) {
  static const Page kZeroPage;
  if (target.zero) return kZeroPage;
  if (target.device) return DevicePageContents(s, target.device_pfn);
  return s.pages.at(target.page);
}

// The contents a write through a pt entry changes. REQUIRES: target.write
// (so never the zero page).
Page& WritableContents(State& s, const Pte& target) {
  if (target.device) return DevicePageContents(s, target.device_pfn);
  return s.pages.at(target.page);
}

// What the driver finds at vpn before it copies: a missing entry (for a write,
// also a read-only one), or under linux-6.1 an entry it cannot use.
PtAccess PtCheck(const Mirror& m, Vpn vpn, bool write) {
  auto it = m.pt.find(vpn);
  if (it == m.pt.end() || (write && !it->second.write)) return PtAccess::kMissing;
  if (m.unbacked.count(vpn) != 0) return PtAccess::kUnbacked;
  if (m.stale.count(vpn) != 0) return PtAccess::kStale;
  return PtAccess::kDone;
}

}  // namespace

// --- Shared with dmirror_migrate.cc (mirror_walk.h) ---

Errno DmirrorGuards(const State& s, uint64_t mirror, uint64_t addr, uint64_t npages,
                    bool length_ok) {
  const bool linux61 = Linux61(s);
  // Is the mirror registered (the file open)?
  auto it = s.mirrors.find(mirror);
  if (it == s.mirrors.end()) return Errno::kNoEnt;
  // Is addr page-aligned, and the length non-zero (whole pages, for WRITE)?
  if (!PageAligned(addr) || !length_ok) return Errno::kInval;
  // Does the range end at or below kTaskSize? (linux-6.1: does it not wrap,
  // npages << PAGE_SHIFT taken modulo 2^64; D9)
  if (!linux61 && EndsAboveTaskSize(addr, npages)) return Errno::kInval;
  if (linux61 && addr >= addr + (npages << kPageShift)) return Errno::kInval;
  // Does it fit the bounce buffer (HMM_BUFFER_SIZE)? (linux-6.1: the model's
  // own bound; D10)
  if (npages > (linux61 ? kLinux61MaxDmirrorPages : kMaxDmirrorPages)) return Errno::kNoMem;
  // Is the mirrored process live? (mmget_not_zero())
  if (!IsLive(s, it->second.pid)) return Errno::kInval;
  return Errno::kOk;
}

PtAccess DmirrorDoRead(const State& s, const Mirror& m, Vpn start, Vpn end, DmirrorResult* out) {
  // Loop invariant: out->data holds the first out->cpages pages of [start, end).
  for (Vpn vpn = VpnAdd(start, out->cpages); vpn < end; vpn = VpnAdd(vpn, 1)) {
    // Is the entry missing, or (linux-6.1) one the driver cannot read?
    const PtAccess access = PtCheck(m, vpn, /*write=*/false);
    if (access != PtAccess::kDone) return access;
    const Page& page = Contents(s, m.pt.at(vpn));
    for (uint64_t off = 0; off < kPageSize; ++off) out->data.push_back(page.At(off));
    ++out->cpages;
  }
  return PtAccess::kDone;
}

namespace {

// Writes data into the targets of the pt entries of [start, end), from page
// *cpages on, until an entry is missing or read-only (or, under linux-6.1,
// one the driver cannot write).
// Mirrors: lib/test_hmm.c dmirror_do_write().
PtAccess DmirrorDoWrite(State& s, const Mirror& m, Vpn start, Vpn end,
                        const std::vector<uint8_t>& data, uint64_t* cpages) {
  // Loop invariant: the first *cpages pages of [start, end) are written.
  for (Vpn vpn = VpnAdd(start, *cpages); vpn < end; vpn = VpnAdd(vpn, 1)) {
    // Is the entry missing or read-only, or (linux-6.1) unusable?
    const PtAccess access = PtCheck(m, vpn, /*write=*/true);
    if (access != PtAccess::kDone) return access;
    Page& page = WritableContents(s, m.pt.at(vpn));
    const uint64_t base = *cpages * kPageSize;
    for (uint64_t off = 0; off < kPageSize; ++off) page.Set(off, data[base + off]);
    ++*cpages;
  }
  return PtAccess::kDone;
}

// Whether vpn holds a device entry of a device other than `device`.
bool ForeignDeviceEntry(const State& s, const Process& p, Vpn vpn, DeviceId device) {
  auto it = p.ptes.find(vpn);
  return it != p.ptes.end() && it->second.device &&
         OwnerOfDevicePfn(s, it->second.device_pfn) != device;
}

// Whether vpn holds a device entry of `device` itself.
bool OwnDeviceEntry(const State& s, const Process& p, Vpn vpn, DeviceId device) {
  auto it = p.ptes.find(vpn);
  return it != p.ptes.end() && it->second.device &&
         OwnerOfDevicePfn(s, it->second.device_pfn) == device;
}

// The byte SNAPSHOT reports for vpn (HMM_DMIRROR_PROT_*). Under linux-6.1 a
// coherent device's page is HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL (0x40) or
// _REMOTE (0x50) (D14).
// Mirrors: lib/test_hmm.c dmirror_mkentry(); mm/hmm.c hmm_range_fault() (6.1)
// without fault flags.
uint8_t SnapshotByte(const State& s, const Process& p, DeviceId device, Vpn vpn) {
  const Vma* vma = FindVma(p, vpn);
  // No VMA, or one without PROT_READ? HMM_PFN_ERROR.
  if (vma == nullptr || (vma->prot & kProtRead) == 0) return kDmirrorProtError;
  auto it = p.ptes.find(vpn);
  // No entry?
  if (it == p.ptes.end()) return kDmirrorProtNone;
  const Pte& pte = it->second;
  // Another device's entry? Not valid when no fault is asked.
  if (pte.device && OwnerOfDevicePfn(s, pte.device_pfn) != device) return kDmirrorProtNone;
  const uint8_t access = pte.write ? kDmirrorProtWrite : kDmirrorProtRead;
  if (pte.zero) return kDmirrorProtZero | access;
  if (pte.device) return kDmirrorProtDevPrivateLocal | access;
  auto coherent = s.coherent.find(pte.page);
  if (coherent == s.coherent.end()) return access;
  const bool local = coherent->second == device;
  return (local ? kDmirrorProtDevCoherentLocal : kDmirrorProtDevCoherentRemote) | access;
}

// The first vpn past `vpn` where a 2 MiB page table (a PMD's worth) ends.
Vpn PmdEnd(Vpn vpn) {
  constexpr uint64_t kPtrsPerPte = 512;
  return Vpn((vpn.value / kPtrsPerPte + 1) * kPtrsPerPte);
}

}  // namespace

// The v18 driver's commit, under the mirror's update lock (the lock its
// invalidate callback takes): range_done, and only if it says valid, install
// every VALID|READ entry, write iff WRITE, except another device's memory.
// Mirrors: the protocol of mm/hmm.c hmm_vma_range_done()'s comment (4.14);
// installed as lib/test_hmm.c dmirror_do_fault() stores.
Result<bool> Kernel::DmirrorCommit(uint64_t range) {
  // Is the range open?
  auto it = s_.ranges.find(range);
  if (it == s_.ranges.end()) return Errno::kNoEnt;
  const Range seen = it->second;
  // Did an invalidation overlap it since it was registered? Nothing installed.
  if (!HmmVmaRangeDone(range).value) return false;
  Mirror& m = s_.mirrors.at(seen.mirror);
  constexpr uint64_t kUsable = kHmmPfnValid | kHmmPfnRead;
  for (uint64_t i = 0; i < seen.pfns.size(); ++i) {
    const HmmPfn& entry = seen.pfns[i];
    // Is it not both VALID and READ?
    if ((entry.flags & kUsable) != kUsable) continue;
    // Is it a device entry of another device's memory?
    const bool device = (entry.flags & kHmmPfnDeviceUnaddressable) != 0;
    if (device && OwnerOfDevicePfn(s_, entry.device_pfn) != m.device) continue;
    PtStore(m, VpnAdd(seen.start, i), DeviceMapping(entry));
  }
  return true;
}

Errno Kernel::Splat(KernelSplat::Kind kind, const char* where) {
  splats_.push_back(KernelSplat{kind, where});
  return Errno::kFault;
}

// Mirrors: mm/hmm.c hmm_vma_fault() (6.1).
Errno Kernel::HmmVmaFaultUnit(Pid pid, Vpn vpn, Vpn chunk_end, bool write) {
  const Vma& vma = *FindVma(s_.procs.at(pid), vpn);
  // Is it a write, and does the VMA lack PROT_WRITE?
  if (write && (vma.prot & kProtWrite) == 0) return Errno::kPerm;
  const Vpn end = std::min({chunk_end, vma.end, PmdEnd(vpn)});
  // Loop invariant: the pages of [vpn, q) are faulted in (handle_mm_fault()).
  for (Vpn q = vpn; q < end; q = VpnAdd(q, 1)) {
    if (FaultIn(pid, q, write) != Errno::kOk) return Errno::kFault;
  }
  return Errno::kOk;
}

// One page of the driver's fault: what 6.1's hmm_range_fault() does at vpn
// with HMM_PFN_REQ_FAULT (and REQ_WRITE when write) and dev_private_owner =
// device. Returns kFault (no VMA, no PROT_READ, a device page that cannot
// migrate back, RAM full) or kPerm (a write to a VMA without PROT_WRITE).
// REQUIRES: pid is live; vpn < chunk_end.
// Mirrors: mm/hmm.c hmm_vma_walk_hole(), hmm_vma_walk_test(),
// hmm_vma_handle_pte() (6.1).
Errno Kernel::DmirrorFaultPage(Pid pid, DeviceId device, Vpn vpn, Vpn chunk_end, bool write) {
  const Process& p = s_.procs.at(pid);
  const Vma* vma = FindVma(p, vpn);
  // Is there no VMA at vpn?
  if (vma == nullptr) return Errno::kFault;
  // Does the VMA lack PROT_READ? Every page asks for a fault, so the VMA is
  // refused whatever its entries hold (hmm_vma_walk_test()).
  if ((vma->prot & kProtRead) == 0) return Errno::kFault;
  // linux-6.1: is it the owner's device-private entry? Reported as it stands,
  // writable or not (D13).
  if (Linux61(s_) && OwnDeviceEntry(s_, p, vpn, device)) return Errno::kOk;
  // Does the entry serve as it is: present, writable if asked, and not another
  // device's memory?
  if (!NeedsFault(p, vpn, write) && !ForeignDeviceEntry(s_, p, vpn, device)) return Errno::kOk;
  // linux-6.1: the rest of the page table is faulted too.
  if (Linux61(s_)) return HmmVmaFaultUnit(pid, vpn, chunk_end, write);
  return HmmDoFault(pid, vpn, write);
}

// Mirrors: lib/test_hmm.c dmirror_do_fault() (6.1).
Errno Kernel::DmirrorDoFault(uint64_t mirror, Vpn start, Vpn end, bool write) {
  const Pid pid = s_.mirrors.at(mirror).pid;
  const DeviceId device = s_.mirrors.at(mirror).device;
  const Process& p = s_.procs.at(pid);
  Mirror& m = s_.mirrors.at(mirror);
  for (Vpn vpn = start; vpn < end; vpn = VpnAdd(vpn, 1)) {
    const HmmPfn entry = HmmPfnOf(p, *FindVma(p, vpn), vpn);
    // linux-6.1: a read-only entry for a write? WARN_ON, -EFAULT (D13).
    if (Linux61(s_) && write && (entry.flags & kHmmPfnWrite) == 0) {
      splats_.push_back(KernelSplat{KernelSplat::kWarning, "lib/test_hmm.c dmirror_do_fault()"});
      return Errno::kFault;
    }
    // linux-6.1 stores the owner's device-private page itself, not its backing page.
    PtStore(m, vpn, DeviceMapping(entry), Linux61(s_) && OwnDeviceEntry(s_, p, vpn, device));
  }
  return Errno::kOk;
}

// One chunk: every page faulted as needed, then, all having succeeded, the
// chunk stored in pt. A chunk whose own fault notified (a COW break) is walked
// again by the driver (mmu_interval_read_retry()) and finds every page in
// place: so what is stored is each page's entry as it is now.
// Mirrors: lib/test_hmm.c dmirror_range_fault().
Errno Kernel::DmirrorRangeFault(uint64_t mirror, Vpn start, Vpn end, bool write) {
  const Pid pid = s_.mirrors.at(mirror).pid;
  const DeviceId device = s_.mirrors.at(mirror).device;
  // Loop invariant: the pages of [start, vpn) have entries that serve the access.
  for (Vpn vpn = start; vpn < end; vpn = VpnAdd(vpn, 1)) {
    const Errno err = DmirrorFaultPage(pid, device, vpn, end, write);
    if (err != Errno::kOk) return err;
  }
  return DmirrorDoFault(mirror, start, end, write);
}

// [start, end) in chunks of kDmirrorFaultChunk pages from start; a failing
// chunk stores nothing and ends the fault, earlier chunks stay stored.
// Mirrors: lib/test_hmm.c dmirror_fault() (6.1).
Errno Kernel::DmirrorFault(uint64_t mirror, Vpn start, Vpn end, bool write) {
  // Loop invariant: the chunks of [start, chunk) are stored in pt.
  for (Vpn chunk = start; chunk < end; chunk = VpnAdd(chunk, kDmirrorFaultChunk)) {
    const Vpn chunk_end = std::min(end, VpnAdd(chunk, kDmirrorFaultChunk));
    const Errno err = DmirrorRangeFault(mirror, chunk, chunk_end, write);
    if (err != Errno::kOk) return err;
  }
  return Errno::kOk;
}

// Mirrors: lib/test_hmm.c dmirror_fault() (6.1), behind dmirror_read()'s guards.
Errno Kernel::DmirrorFaultRange(uint64_t mirror, uint64_t addr, uint64_t npages, bool write) {
  const Errno err = DmirrorGuards(s_, mirror, addr, npages, npages != 0);
  if (err != Errno::kOk) return err;
  const Vpn start = AddrToVpn(addr);
  return DmirrorFault(mirror, start, VpnAdd(start, npages), write);
}

// Mirrors: lib/test_hmm.c dmirror_read() (6.1).
Result<DmirrorResult> Kernel::DmirrorRead(uint64_t mirror, uint64_t addr, uint64_t npages) {
  const Errno err = DmirrorGuards(s_, mirror, addr, npages, npages != 0);
  if (err != Errno::kOk) return err;
  const Vpn start = AddrToVpn(addr);
  const Vpn end = VpnAdd(start, npages);
  DmirrorResult out;
  // Loop invariant: out holds the first cpages pages. A successful fault
  // stores every page from the first missing one to the end, and later
  // chunks' faults notify only their own pages, so the next round copies the
  // rest: there is at most one fault round.
  for (;;) {
    const PtAccess access = DmirrorDoRead(s_, s_.mirrors.at(mirror), start, end, &out);
    if (access == PtAccess::kDone) return out;
    if (access != PtAccess::kMissing) return Splat(SplatKindOf(access), SplatWhere(access));
    const Errno fault = DmirrorFault(mirror, VpnAdd(start, out.cpages), end, /*write=*/false);
    if (fault != Errno::kOk) return fault;
    ++out.faults;
  }
}

// Mirrors: lib/test_hmm.c dmirror_write() (6.1).
Result<DmirrorResult> Kernel::DmirrorWrite(uint64_t mirror, uint64_t addr,
                                           const std::vector<uint8_t>& data) {
  const uint64_t npages = data.size() / kPageSize;
  const bool whole_pages = !data.empty() && data.size() % kPageSize == 0;
  const Errno err = DmirrorGuards(s_, mirror, addr, npages, whole_pages);
  if (err != Errno::kOk) return err;
  const Vpn start = AddrToVpn(addr);
  const Vpn end = VpnAdd(start, npages);
  DmirrorResult out;
  // Loop invariant: the first cpages pages are written (and stay written if a
  // later fault fails); as in DmirrorRead, there is at most one fault round.
  for (;;) {
    const PtAccess access =
        DmirrorDoWrite(s_, s_.mirrors.at(mirror), start, end, data, &out.cpages);
    if (access == PtAccess::kDone) return out;
    if (access != PtAccess::kMissing) return Splat(SplatKindOf(access), SplatWhere(access));
    const Errno fault = DmirrorFault(mirror, VpnAdd(start, out.cpages), end, /*write=*/true);
    if (fault != Errno::kOk) return fault;
    ++out.faults;
  }
}

// Mirrors: lib/test_hmm.c dmirror_snapshot() (6.1).
Result<DmirrorResult> Kernel::DmirrorSnapshot(uint64_t mirror, uint64_t addr, uint64_t npages) {
  const Errno err = DmirrorGuards(s_, mirror, addr, npages, npages != 0);
  if (err != Errno::kOk) return err;
  const Mirror& m = s_.mirrors.at(mirror);
  const Process& p = s_.procs.at(m.pid);
  DmirrorResult out;
  out.cpages = npages;
  for (uint64_t i = 0; i < npages; ++i) {
    out.data.push_back(SnapshotByte(s_, p, m.device, VpnAdd(AddrToVpn(addr), i)));
  }
  return out;
}

}  // namespace hmm::model
