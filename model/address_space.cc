// File: model/address_space.cc

#include "model/address_space.h"

#include <algorithm>
#include <set>
#include <vector>

#include "model/anon_vma.h"
#include "model/mirror_walk.h"

namespace hmm::model {

bool IsLive(const State& s, Pid pid) { return s.procs.count(pid) != 0; }

const Vma* FindVma(const Process& p, Vpn vpn) {
  for (const auto& [start, vma] : p.vmas) {
    if (vma.start <= vpn && vpn < vma.end) return &vma;
  }
  return nullptr;
}

bool RangeFree(const Process& p, Vpn start, Vpn end, uint64_t max_vpn) {
  if (end.value > max_vpn) return false;
  for (const auto& [key, vma] : p.vmas) {
    if (vma.start < end && start < vma.end) return false;
  }
  return true;
}

bool RangeCovered(const Process& p, Vpn start, Vpn end) {
  // Loop invariant: [start, cursor) is covered.
  Vpn cursor = start;
  while (cursor < end) {
    const Vma* vma = FindVma(p, cursor);
    if (vma == nullptr) return false;
    cursor = vma->end;
  }
  return true;
}

bool FirstFit(const Process& p, uint64_t npages, Vpn* start, uint64_t max_vpn) {
  // Loop invariant: no gap of npages starts in [kMmapBase, candidate).
  uint64_t candidate = AddrToVpn(kMmapBase).value;
  for (const auto& [key, vma] : p.vmas) {
    if (vma.start.value >= candidate + npages) break;
    candidate = std::max(candidate, vma.end.value);
  }
  if (candidate + npages > max_vpn) return false;
  *start = Vpn(candidate);
  return true;
}

void SplitVmaAt(State& s, Process& p, Vpn vpn) {
  const Vma* found = FindVma(p, vpn);
  if (found == nullptr || found->start == vpn) return;
  Vma tail = *found;
  Vma& head = p.vmas.at(found->start);
  head.end = vpn;
  if (tail.shared) tail.pgoff += vpn.value - tail.start.value;
  if (!tail.shared && Linux61(s)) tail.vm_pgoff += vpn.value - tail.start.value;
  RmapRelink(s, &tail);
  RmapRelink(s, &head);
  tail.start = vpn;
  p.vmas.emplace(vpn, tail);
}

void ZapPtes(State& s, Pid pid, Vpn start, Vpn end) {
  Process& p = s.procs.at(pid);
  // Loop invariant: the PTEs of [start, it) are gone, and every device page
  // whose last reference went with them has had its page_free logged.
  for (auto it = p.ptes.lower_bound(start); it != p.ptes.end() && it->first < end;) {
    const Pte pte = it->second;
    it = p.ptes.erase(it);
    if (pte.device) PutZoneDevicePage(s, pte.device_pfn);
  }
}

Errno DoMunmap(State& s, Pid pid, uint64_t addr, uint64_t len) {
  // Is addr page-aligned?
  if (!PageAligned(addr)) return Errno::kInval;
  // Is the length non-zero?
  if (len == 0) return Errno::kInval;
  // Does the rounded range neither wrap nor pass TASK_SIZE?
  const uint64_t npages = PageAlign(len) >> kPageShift;
  if (npages == 0 || addr > TaskSize(s) || npages > MaxVpn(s) - AddrToVpn(addr).value) {
    return Errno::kInval;
  }
  UnmapRange(s, pid, AddrToVpn(addr), VpnAdd(AddrToVpn(addr), npages));
  return Errno::kOk;
}

namespace {

// Whether some VMA of p meets [start, end).
bool RangeMapped(const Process& p, Vpn start, Vpn end) {
  for (const auto& [key, vma] : p.vmas) {
    if (vma.start < end && start < vma.end) return true;
  }
  return false;
}

}  // namespace

void UnmapRange(State& s, Pid pid, Vpn start, Vpn end) {
  Process& p = s.procs.at(pid);
  if (!Linux61(s)) MmuNotifierInvalidateMapped(s, pid, start, end);
  if (Linux61(s) && RangeMapped(p, start, end)) MmuNotifierInvalidate(s, pid, start, end);
  SplitVmaAt(s, p, start);
  SplitVmaAt(s, p, end);
  p.vmas.erase(p.vmas.lower_bound(start), p.vmas.lower_bound(end));
  ZapPtes(s, pid, start, end);
  ReleaseUnreferenced(s);
}

uint64_t CountPtes(const State& s, PageId page) {
  uint64_t n = 0;
  for (const auto& [pid, proc] : s.procs) {
    for (const auto& [vpn, pte] : proc.ptes) {
      if (MapsPage(pte) && pte.page == page) ++n;
    }
  }
  return n;
}

bool IsPinned(const State& s, PageId page) {
  for (const auto& [pin, pages] : s.pins) {
    if (std::count(pages.begin(), pages.end(), page) != 0) return true;
  }
  return false;
}

Result<PageId> AllocPage(State& s, uint64_t ram_pages, const Page& contents) {
  // Is RAM full? (A coherent device's pages are not RAM.)
  if (s.pages.size() - s.coherent.size() >= ram_pages) return Errno::kNoMem;
  const PageId id = s.next_page++;
  s.pages.emplace(id, contents);
  return id;
}

PageId AllocCoherentPage(State& s, DeviceId device, const Page& contents) {
  const PageId id = s.next_page++;
  s.pages.emplace(id, contents);
  s.coherent.emplace(id, device);
  return id;
}

namespace {

// Erases the objects that no VMA of any process maps.
void ReleaseUnmappedObjects(State& s) {
  std::set<ObjectId> mapped;
  for (const auto& [pid, proc] : s.procs) {
    for (const auto& [start, vma] : proc.vmas) {
      if (vma.shared) mapped.insert(vma.object);
    }
  }
  for (auto it = s.objects.begin(); it != s.objects.end();) {
    it = mapped.count(it->first) != 0 ? std::next(it) : s.objects.erase(it);
  }
}

// The pages some PTE, object or pin refers to.
std::set<PageId> ReferencedPages(const State& s) {
  std::set<PageId> used;
  for (const auto& [pid, proc] : s.procs) {
    for (const auto& [vpn, pte] : proc.ptes) {
      if (MapsPage(pte)) used.insert(pte.page);
    }
  }
  for (const auto& [id, obj] : s.objects) {
    for (const auto& [pgoff, page] : obj.pages) used.insert(page);
  }
  for (const auto& [pin, pages] : s.pins) used.insert(pages.begin(), pages.end());
  return used;
}

}  // namespace

void ReleaseUnreferenced(State& s) {
  ReleaseUnmappedObjects(s);
  const std::set<PageId> used = ReferencedPages(s);
  for (auto it = s.pages.begin(); it != s.pages.end();) {
    if (used.count(it->first) != 0) {
      ++it;
      continue;
    }
    // linux-6.1: a pt entry still naming the page becomes stale; a coherent
    // page returns to its device.
    if (Linux61(s)) PtMarkFreed(s, Pte{false, it->first, false});
    DropAnonRmap(s, Pte{false, it->first, false});
    s.coherent.erase(it->first);
    it = s.pages.erase(it);
  }
}

}  // namespace hmm::model
