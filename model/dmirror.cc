// File: model/dmirror.cc
//
// The dummy device (docs/mirror.md) with the behaviour of Linux 6.1's
// lib/test_hmm.c: one mirror is one open /dev/hmm_dmirrorN, its pt the
// driver's xarray of vpn -> page. The v18 driver's commit of a range, and the
// ioctls READ, WRITE and SNAPSHOT with the driver's exact cpages and faults.
// The driver's fault walks like 6.1's hmm_range_fault() with
// dev_private_owner = this device: every page asks for a fault
// (HMM_PFN_REQ_FAULT), and another device's entry always needs one.

#include <algorithm>
#include <vector>

#include "model/address_space.h"
#include "model/kernel.h"
#include "model/mirror_walk.h"

namespace hmm::model {
namespace {

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

}  // namespace

// --- Shared with dmirror_migrate.cc (mirror_walk.h) ---

Errno DmirrorGuards(const State& s, uint64_t mirror, uint64_t addr, uint64_t npages,
                    bool length_ok) {
  // Is the mirror registered (the file open)?
  auto it = s.mirrors.find(mirror);
  if (it == s.mirrors.end()) return Errno::kNoEnt;
  // Is addr page-aligned, and the length non-zero (whole pages, for WRITE)?
  if (!PageAligned(addr) || !length_ok) return Errno::kInval;
  // Does the range end at or below kTaskSize?
  if (EndsAboveTaskSize(addr, npages)) return Errno::kInval;
  // Does it fit the bounce buffer (HMM_BUFFER_SIZE)?
  if (npages > kMaxDmirrorPages) return Errno::kNoMem;
  // Is the mirrored process live? (mmget_not_zero())
  if (!IsLive(s, it->second.pid)) return Errno::kInval;
  return Errno::kOk;
}

bool DmirrorDoRead(const State& s, const Mirror& m, Vpn start, Vpn end, DmirrorResult* out) {
  // Loop invariant: out->data holds the first out->cpages pages of [start, end).
  for (Vpn vpn = VpnAdd(start, out->cpages); vpn < end; vpn = VpnAdd(vpn, 1)) {
    auto it = m.pt.find(vpn);
    // Is the entry missing?
    if (it == m.pt.end()) return false;
    const Page& page = Contents(s, it->second);
    for (uint64_t off = 0; off < kPageSize; ++off) out->data.push_back(page.At(off));
    ++out->cpages;
  }
  return true;
}

namespace {

// Writes data into the targets of the pt entries of [start, end), from page
// *cpages on, until an entry is missing or read-only. Returns whether every
// page was written.
// Mirrors: lib/test_hmm.c dmirror_do_write().
bool DmirrorDoWrite(State& s, const Mirror& m, Vpn start, Vpn end,
                    const std::vector<uint8_t>& data, uint64_t* cpages) {
  // Loop invariant: the first *cpages pages of [start, end) are written.
  for (Vpn vpn = VpnAdd(start, *cpages); vpn < end; vpn = VpnAdd(vpn, 1)) {
    auto it = m.pt.find(vpn);
    // Is the entry missing, or read-only?
    if (it == m.pt.end() || !it->second.write) return false;
    Page& page = WritableContents(s, it->second);
    const uint64_t base = *cpages * kPageSize;
    for (uint64_t off = 0; off < kPageSize; ++off) page.Set(off, data[base + off]);
    ++*cpages;
  }
  return true;
}

// Whether vpn holds a device entry of a device other than `device`.
bool ForeignDeviceEntry(const State& s, const Process& p, Vpn vpn, DeviceId device) {
  auto it = p.ptes.find(vpn);
  return it != p.ptes.end() && it->second.device &&
         OwnerOfDevicePfn(s, it->second.device_pfn) != device;
}

// The byte SNAPSHOT reports for vpn (HMM_DMIRROR_PROT_*).
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
  return access;
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
    m.pt[VpnAdd(seen.start, i)] = DeviceMapping(entry);
  }
  return true;
}

// One page of the driver's fault: what 6.1's hmm_range_fault() does at vpn
// with HMM_PFN_REQ_FAULT (and REQ_WRITE when write) and dev_private_owner =
// device. Returns kFault (no VMA, no PROT_READ, a device page that cannot
// migrate back, RAM full) or kPerm (a write to a VMA without PROT_WRITE).
// REQUIRES: pid is live.
// Mirrors: mm/hmm.c hmm_vma_walk_hole(), hmm_vma_walk_test(),
// hmm_vma_handle_pte() (6.1).
Errno Kernel::DmirrorFaultPage(Pid pid, DeviceId device, Vpn vpn, bool write) {
  const Process& p = s_.procs.at(pid);
  const Vma* vma = FindVma(p, vpn);
  // Is there no VMA at vpn?
  if (vma == nullptr) return Errno::kFault;
  // Does the VMA lack PROT_READ? Every page asks for a fault, so the VMA is
  // refused whatever its entries hold (hmm_vma_walk_test()).
  if ((vma->prot & kProtRead) == 0) return Errno::kFault;
  // Does the entry serve as it is: present, writable if asked, and not another
  // device's memory?
  if (!NeedsFault(p, vpn, write) && !ForeignDeviceEntry(s_, p, vpn, device)) return Errno::kOk;
  return HmmDoFault(pid, vpn, write);
}

// One chunk: every page faulted as needed, then, all having succeeded, the
// chunk stored in pt. A chunk whose own fault notified (a COW break) is walked
// again by the driver (mmu_interval_read_retry()) and finds every page in
// place: so what is stored is each page's entry as it is now.
// Mirrors: lib/test_hmm.c dmirror_range_fault(), dmirror_do_fault().
Errno Kernel::DmirrorRangeFault(uint64_t mirror, Vpn start, Vpn end, bool write) {
  const Pid pid = s_.mirrors.at(mirror).pid;
  const DeviceId device = s_.mirrors.at(mirror).device;
  // Loop invariant: the pages of [start, vpn) have entries that serve the access.
  for (Vpn vpn = start; vpn < end; vpn = VpnAdd(vpn, 1)) {
    const Errno err = DmirrorFaultPage(pid, device, vpn, write);
    if (err != Errno::kOk) return err;
  }
  const Process& p = s_.procs.at(pid);
  Mirror& m = s_.mirrors.at(mirror);
  for (Vpn vpn = start; vpn < end; vpn = VpnAdd(vpn, 1)) {
    m.pt[vpn] = DeviceMapping(HmmPfnOf(p, *FindVma(p, vpn), vpn));
  }
  return Errno::kOk;
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
  while (!DmirrorDoRead(s_, s_.mirrors.at(mirror), start, end, &out)) {
    const Errno fault = DmirrorFault(mirror, VpnAdd(start, out.cpages), end, /*write=*/false);
    if (fault != Errno::kOk) return fault;
    ++out.faults;
  }
  return out;
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
  while (!DmirrorDoWrite(s_, s_.mirrors.at(mirror), start, end, data, &out.cpages)) {
    const Errno fault = DmirrorFault(mirror, VpnAdd(start, out.cpages), end, /*write=*/true);
    if (fault != Errno::kOk) return fault;
    ++out.faults;
  }
  return out;
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
