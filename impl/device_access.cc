// File: impl/device_access.cc
//
// The device-access hazard detector (issue 7; docs/concurrency.md): the
// dynamic form of InvMirrorSubsetOfCpu (docs/invariants.md). With an
// observer installed (Kernel::SetDeviceAccessObserver), every page the dummy
// device copies through its page table (dmirror.cc DmirrorDoCopy, under the
// mirror's update lock) is compared with the CPU's entry at that address. The
// device may use its entry only while the CPU maps the same page there (a
// migration entry of that page counts: the migration holds the page locked,
// so the copy cannot reach it meanwhile), with write permission for a write.
// Anything else is the invalidate-after-change hazard of the v18 seed: the
// CPU changed its entry and the device was not yet told (v18 tells it at
// invalidate_range_end; the default profile at start, so it never fires).
//
// Thread safety
//   The observer is swapped whole under access_observer_lock (a leaf) and
//   called outside it, on the accessing thread, under the update lock. The
//   CPU's entry is read under the process's ptl, tried (update_lock sits
//   above the ptl); when the ptl is taken and the caller is an actor of the
//   controlled scheduler, its holder is parked, so the read is race-free
//   without it; otherwise the check is skipped (a real-thread run may miss a
//   hazard, never report a false one).

#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "impl/kernel.h"
#include "impl/kernel_state.h"
#include "impl/mirror.h"
#include "impl/sched.h"

namespace hmm::impl {
namespace {

// The page an entry names: a present entry's pfn, or a swap-format entry's
// (migration or device-private) offset.
uint64_t EntryPfn(pte_t e) { return PtePresent(e) ? PtePfn(e) : SwpEntryPfn(e); }

bool EntryWritable(pte_t e) { return PtePresent(e) ? PteWrite(e) : SwpEntryWrite(e); }

// "none", "pfn 0x12 writable", "migration entry pfn 0x12 read-only",
// "device entry pfn 0x100000 writable".
std::string DescribeCpuEntry(pte_t c) {
  if (c == 0) return "none";
  std::string kind;
  if (IsMigrationEntry(c)) {
    kind = "migration entry ";
  } else if (IsDeviceEntry(c)) {
    kind = "device entry ";
  } else if (!PtePresent(c)) {
    kind = "swap entry ";
  }
  return kind + "pfn " + Hex(EntryPfn(c)) + (EntryWritable(c) ? " writable" : " read-only");
}

// Does the CPU's entry c stand behind the device's entry e? The same page
// (a present RAM entry for a present device entry, a device-private entry
// for a device-private one, a migration entry of the page for either), and
// writable for a write.
bool CpuBacksDevice(pte_t e, pte_t c, bool write) {
  bool same = false;  // none, or a swap entry
  if (PtePresent(c)) {
    same = PtePresent(e) && PtePfn(c) == PtePfn(e);
  } else if (IsMigrationEntry(c)) {
    same = SwpEntryPfn(c) == EntryPfn(e);
  } else if (IsDeviceEntry(c)) {
    same = !PtePresent(e) && SwpEntryPfn(c) == EntryPfn(e);
  }
  return same && (!write || EntryWritable(c));
}

// The CPU's entry at vpn, into *c; false when it cannot be read safely.
bool ReadCpuEntry(const Process& p, uint64_t vpn, pte_t* c) {
  std::unique_lock<std::mutex> ptl(p.ptl, std::try_to_lock);
  // Is the ptl taken? Only a parked actor can hold it while an actor runs.
  if (!ptl.owns_lock() && !(sched::Active() && sched::OnActorThread())) return false;
  *c = p.pgtable.Get(vpn);
  return true;
}

}  // namespace

void CheckDeviceAccess(KernelState& ks, const Mirror& m, uint64_t vpn, pte_t e, bool write) {
  pte_t c = 0;
  if (!ReadCpuEntry(*m.proc, vpn, &c)) return;
  if (CpuBacksDevice(e, c, write)) return;
  std::shared_ptr<const KernelState::AccessObserver> observer;
  {
    std::lock_guard<std::mutex> lock(ks.access_observer_lock);
    observer = ks.access_observer;
  }
  // Was it removed meanwhile?
  if (observer == nullptr) return;
  DeviceAccessHazard h;
  h.mirror = m.id;
  h.device = m.device;
  h.pid = m.pid;
  h.addr = vpn << kPageShift;
  h.write = write;
  h.device_pfn = EntryPfn(e);
  h.cpu = DescribeCpuEntry(c);
  (*observer)(h);
}

void Kernel::SetDeviceAccessObserver(std::function<void(const DeviceAccessHazard&)> observer) {
  std::shared_ptr<const KernelState::AccessObserver> fn;
  if (observer) fn = std::make_shared<const KernelState::AccessObserver>(std::move(observer));
  std::lock_guard<std::mutex> lock(st_->access_observer_lock);
  st_->has_access_observer.store(fn != nullptr, std::memory_order_relaxed);
  st_->access_observer = std::move(fn);
}

}  // namespace hmm::impl
