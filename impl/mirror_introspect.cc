// File: impl/mirror_introspect.cc
//
// Read-only views of mirroring for props/abstract.cc (Mirrors, Ranges,
// DevicePageData), each taking the locks the operations take, and the
// mirror part of the representation invariant (impl/mirror.h invariants 1,
// 2 and 4; kernel_state.h invariant 6).

#include <algorithm>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_state.h"
#include "impl/mirror.h"

namespace hmm::impl {
namespace {

std::vector<std::shared_ptr<Mirror>> SnapshotMirrors(const KernelState& ks) {
  std::vector<std::shared_ptr<Mirror>> out;
  std::lock_guard<std::mutex> tables(ks.mirrors_lock);
  for (const auto& [id, m] : ks.mirrors) out.push_back(m);
  return out;
}

std::vector<std::shared_ptr<HmmRange>> SnapshotRanges(const KernelState& ks) {
  std::vector<std::shared_ptr<HmmRange>> out;
  std::lock_guard<std::mutex> tables(ks.mirrors_lock);
  for (const auto& [id, r] : ks.ranges) out.push_back(r);
  return out;
}

// A pt entry as a PteInfo (the shape Ptes() uses). REQUIRES: update_lock.
PteInfo PtEntryInfo(const KernelState& ks, uint64_t vpn, pte_t e) {
  PteInfo info;
  info.vpn = vpn;
  if (PtePresent(e)) {
    info.pfn = PtePfn(e);
    info.write = PteWrite(e);
    info.zero = ks.pages.IsZero(info.pfn);
  } else {
    DecodedPte d = DecodePte(e);
    info.pfn = d.pfn;
    info.write = d.kind == PteKind::kDevicePrivateWrite;
    info.device = true;
  }
  return info;
}

}  // namespace

std::vector<MirrorInfo> Kernel::Mirrors() const {
  std::vector<MirrorInfo> out;
  for (const std::shared_ptr<Mirror>& m : SnapshotMirrors(*st_)) {
    MirrorInfo info;
    info.id = m->id;
    info.device = m->device.value;
    info.pid = m->pid.value;
    info.flags = m->flags.load(std::memory_order_relaxed);
    std::lock_guard<std::mutex> update(m->update_lock);
    m->pt.ForEachLeaf(0, kMaxVpn, [&](uint64_t vpn, pte_t e) {
      info.pt.push_back(PtEntryInfo(*st_, vpn, e));
    });
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<RangeInfo> Kernel::Ranges() const {
  std::vector<RangeInfo> out;
  for (const std::shared_ptr<HmmRange>& r : SnapshotRanges(*st_)) {
    RangeInfo info;
    info.id = r->id;  // set before publication, never again
    info.mirror = r->mirror->id;
    info.start_vpn = r->start;
    info.end_vpn = r->end;
    std::lock_guard<std::mutex> lock(r->mirror->hmm->lock);
    info.valid = r->valid;
    info.pfns.assign(r->pfns.get(), r->pfns.get() + r->npages());
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<uint8_t> Kernel::DevicePageData(uint64_t pfn) const {
  std::vector<uint8_t> out(kPageSize, 0);
  std::shared_lock<std::shared_mutex> devmems(st_->devmems_lock);
  const Devmem* devmem = st_->devmems.FindByPfn(pfn);
  if (devmem == nullptr) return out;
  std::lock_guard<std::mutex> region(devmem->lock);
  devmem->ReadContents(pfn, out.data());
  return out;
}

namespace {

// What the id tables say, copied under mirrors_lock so that the checks
// below take the other locks in the documented order.
struct TableView {
  std::vector<std::shared_ptr<Mirror>> mirrors;
  std::vector<std::shared_ptr<HmmRange>> ranges;
};

// The rungs that read only mirrors_lock's fields. REQUIRES: operations excluded.
TableView CheckTables(const KernelState& ks, std::vector<std::string>* out) {
  TableView view;
  std::lock_guard<std::mutex> tables(ks.mirrors_lock);
  // Are at most kMaxMirrors registered?
  if (ks.mirrors.size() > kMaxMirrors) {
    out->push_back("InvMirrorCount: " + std::to_string(ks.mirrors.size()));
  }
  for (const auto& [id, m] : ks.mirrors) {
    uint64_t open = 0;
    for (const auto& [rid, r] : ks.ranges) open += r->mirror == m;
    // Is it keyed by its id, registered, of a dummy device, counting its ranges?
    if (m->id != id || !m->registered || m->device.value >= kMaxDevices || m->nr_ranges != open) {
      out->push_back("InvMirrorTableWellFormed: mirror " + std::to_string(id) + " id=" +
                     std::to_string(m->id) + " registered=" + std::to_string(m->registered) +
                     " device=" + std::to_string(m->device.value) + " nr_ranges=" +
                     std::to_string(m->nr_ranges) + " open=" + std::to_string(open));
    }
    view.mirrors.push_back(m);
  }
  for (const auto& [id, r] : ks.ranges) {
    // Is it a public range, keyed by its id, sized to its non-empty span?
    if (r->internal || r->id != id || r->end <= r->start || r->pfns == nullptr ||
        r->mirror == nullptr) {
      out->push_back("InvRangeWellFormed: range " + std::to_string(id));
      continue;
    }
    // Is its mirror registered?
    if (!r->mirror->registered) {
      out->push_back("InvRangeOfRegisteredMirror: range " + std::to_string(id) + " mirror " +
                     std::to_string(r->mirror->id));
    }
    view.ranges.push_back(r);
  }
  return view;
}

// Invariant 1 from the list's side, and each pt's shape. REQUIRES: operations excluded.
void CheckMirror(const KernelState& ks, const Mirror& m, std::vector<std::string>* out) {
  const std::string who = "mirror " + std::to_string(m.id);
  {
    std::shared_lock<std::shared_mutex> mmap_lock(m.proc->mmap_lock);
    std::shared_lock<std::shared_mutex> sem(m.hmm->mirrors_sem);
    const std::vector<Mirror*>& list = m.hmm->mirrors;
    // Is it on its process's mirror list, and is that the process's Hmm?
    if (std::count(list.begin(), list.end(), &m) != 1 || m.proc->hmm != m.hmm) {
      out->push_back("InvMirrorOnItsMmList: " + who + " pid " + std::to_string(m.pid.value));
    }
  }
  std::lock_guard<std::mutex> update(m.update_lock);
  m.pt.CheckWellFormed(who + " pt", out);
  m.pt.ForEachLeaf(0, kMaxVpn, [&](uint64_t vpn, pte_t e) {
    PteKind kind = DecodePte(e).kind;
    // Does the device map a page, the zero page or a device page, nothing else?
    if (kind != PteKind::kPresent && kind != PteKind::kDevicePrivateRead &&
        kind != PteKind::kDevicePrivateWrite) {
      out->push_back("InvMirrorPtEntryKind: " + who + " vpn " + Hex(vpn) +
                     " kind=" + PteKindName(kind));
    }
  });
}

// Invariants 2 (from the list's side) and 4 for one mm: its list holds
// exactly its open public ranges, and no walk or invalidation is in flight.
void CheckHmm(const Hmm& hmm, uint64_t table_ranges, const std::string& who,
              std::vector<std::string>* out) {
  {
    std::shared_lock<std::shared_mutex> sem(hmm.mirrors_sem);
    for (const Mirror* m : hmm.mirrors) {
      if (!m->registered) out->push_back("InvMirrorOnItsMmList: " + who + " lists unregistered");
    }
  }
  std::lock_guard<std::mutex> lock(hmm.lock);
  uint64_t internal = 0;
  for (const HmmRange* r : hmm.ranges) internal += r->internal;
  // Is every range on the list public? (Walks end with their operation.)
  if (internal != 0) out->push_back("InvNoWalkAtRest: " + who);
  // Does the list hold exactly the mm's open ranges?
  if (hmm.ranges.size() - internal != table_ranges) {
    out->push_back("InvRangeOnItsMmList: " + who + " listed=" +
                   std::to_string(hmm.ranges.size() - internal) +
                   " open=" + std::to_string(table_ranges));
  }
  if (!hmm.active.empty()) {
    out->push_back("InvNoInvalidationAtRest: " + who + " active=" +
                   std::to_string(hmm.active.size()));
  }
}

}  // namespace

void CheckMirrorsRep(const KernelState& ks, std::vector<std::string>* out) {
  TableView view = CheckTables(ks, out);
  for (const std::shared_ptr<Mirror>& m : view.mirrors) CheckMirror(ks, *m, out);
  // Every mm with a Hmm: the live processes' and those mirrors keep.
  std::map<const Hmm*, std::string> hmms;
  for (const auto& [pid, p] : ks.SnapshotProcs()) {
    std::shared_lock<std::shared_mutex> mmap_lock(p->mmap_lock);
    if (p->hmm) hmms.emplace(p->hmm.get(), "pid " + std::to_string(pid));
  }
  for (const std::shared_ptr<Mirror>& m : view.mirrors) {
    hmms.emplace(m->hmm.get(), "pid " + std::to_string(m->pid.value));
  }
  for (const auto& [hmm, who] : hmms) {
    uint64_t open = 0;
    for (const std::shared_ptr<HmmRange>& r : view.ranges) open += r->mirror->hmm.get() == hmm;
    CheckHmm(*hmm, open, who, out);
  }
}

}  // namespace hmm::impl
