// File: model/canonical.cc
//
// Value semantics of the state: page contents, equality, and Canonicalize(),
// which renames page and object ids so that two states equal up to naming
// become equal. The order of first use is:
//   1. processes by pid ascending; in each, the PTEs' pages by vpn ascending,
//      then the objects of its shared VMAs by start ascending (naming an
//      object names its pages at once, by pgoff ascending);
//   2. objects no VMA reached, by old id (only a broken state has them);
//   3. pins by id, each pin's pages in order;
//   4. mirrors by id, each mirror's pt pages by vpn; then open ranges by id,
//      each range's VALID page entries (not the zero page, not a device pfn)
//      by index (in a reachable state all of these are PTE pages already);
//   5. pages nothing reached, by old id (only a broken state has them).
// Ids are decided by structure alone (the old ids only order the unreached
// leftovers), so equal-up-to-renaming states canonicalize identically.
// Device entries name no page: their device pfns, like devmem ids, resources
// and the event log, are physical identities and are never renamed. Mirror
// and range ids are kept too (handed out 1, 2, ..., never reused).

#include <cassert>
#include <map>
#include <vector>

#include "model/address_space.h"
#include "model/kernel.h"

namespace hmm::model {

uint8_t Page::At(uint64_t offset) const {
  assert(offset < kPageSize);
  auto it = bytes.find(static_cast<uint16_t>(offset));
  return it == bytes.end() ? 0 : it->second;
}

void Page::Set(uint64_t offset, uint8_t value) {
  assert(offset < kPageSize);
  // Only non-zero bytes are stored, so equal contents compare equal.
  if (value == 0) {
    bytes.erase(static_cast<uint16_t>(offset));
  } else {
    bytes[static_cast<uint16_t>(offset)] = value;
  }
}

bool Vma::operator==(const Vma& o) const {
  return start == o.start && end == o.end && prot == o.prot && shared == o.shared &&
         object == o.object && pgoff == o.pgoff && vm_pgoff == o.vm_pgoff &&
         account == o.account && anon_vma == o.anon_vma && anon_chain == o.anon_chain &&
         rmap_seq == o.rmap_seq;
}

bool Pte::operator==(const Pte& o) const {
  return zero == o.zero && page == o.page && write == o.write && device == o.device &&
         device_pfn == o.device_pfn && dirty == o.dirty;
}

bool Resource::operator==(const Resource& o) const {
  return start == o.start && end == o.end && device == o.device && boot == o.boot &&
         devmem == o.devmem;
}

bool Devmem::operator==(const Devmem& o) const {
  return device == o.device && first_pfn == o.first_pfn && npages == o.npages && pages == o.pages &&
         dmirror_chunk == o.dmirror_chunk;
}

bool DeviceEvent::operator==(const DeviceEvent& o) const {
  return kind == o.kind && devmem == o.devmem && pfn == o.pfn && pid == o.pid && addr == o.addr;
}

bool State::operator==(const State& o) const {
  return procs == o.procs && pages == o.pages && objects == o.objects && pins == o.pins &&
         next_pid == o.next_pid && next_pin == o.next_pin && next_page == o.next_page &&
         next_object == o.next_object && config == o.config && resources == o.resources &&
         devmems == o.devmems && events == o.events && next_devmem == o.next_devmem &&
         mirrors == o.mirrors && ranges == o.ranges && next_mirror == o.next_mirror &&
         next_range == o.next_range && coherent == o.coherent &&
         device_page_mirror == o.device_page_mirror && anon_rmap == o.anon_rmap &&
         next_anon_vma == o.next_anon_vma && next_rmap_seq == o.next_rmap_seq;
}

namespace {

// New ids, 1, 2, 3, ..., handed out in order of first use.
struct Renaming {
  std::map<PageId, PageId> pages;
  std::map<ObjectId, ObjectId> objects;

  void NamePage(PageId old) {
    const PageId next = pages.size() + 1;
    pages.emplace(old, next);  // no-op when already named
  }

  // Names the object and then its pages (by pgoff).
  void NameObject(const State& s, ObjectId old) {
    const ObjectId next = objects.size() + 1;
    if (!objects.emplace(old, next).second) return;
    auto it = s.objects.find(old);
    if (it == s.objects.end()) return;
    for (const auto& [pgoff, page] : it->second.pages) NamePage(page);
  }
};

// Whether a range entry names a RAM page (VALID, not the zero page, not a device pfn).
bool NamesPage(const HmmPfn& entry) {
  return (entry.flags & kHmmPfnValid) != 0 && !entry.zero &&
         (entry.flags & kHmmPfnDeviceUnaddressable) == 0;
}

// Steps 1-5 of the file comment.
Renaming NameInOrderOfFirstUse(const State& s) {
  Renaming r;
  for (const auto& [pid, proc] : s.procs) {
    for (const auto& [vpn, pte] : proc.ptes) {
      if (MapsPage(pte)) r.NamePage(pte.page);
    }
    for (const auto& [start, vma] : proc.vmas) {
      if (vma.shared) r.NameObject(s, vma.object);
    }
  }
  for (const auto& [id, obj] : s.objects) r.NameObject(s, id);
  for (const auto& [pin, pages] : s.pins) {
    for (PageId page : pages) r.NamePage(page);
  }
  for (const auto& [id, mirror] : s.mirrors) {
    for (const auto& [vpn, mapping] : mirror.pt) {
      if (MapsPage(mapping)) r.NamePage(mapping.page);
    }
  }
  for (const auto& [id, range] : s.ranges) {
    for (const HmmPfn& entry : range.pfns) {
      if (NamesPage(entry)) r.NamePage(entry.page);
    }
  }
  for (const auto& [id, page] : s.pages) r.NamePage(id);
  return r;
}

// The process with its PTEs' pages and its VMAs' objects renamed.
Process RenameProcess(const Process& proc, const Renaming& r) {
  Process out;
  for (auto [start, vma] : proc.vmas) {
    if (vma.shared) vma.object = r.objects.at(vma.object);
    out.vmas.emplace(start, vma);
  }
  for (auto [vpn, pte] : proc.ptes) {
    if (MapsPage(pte)) pte.page = r.pages.at(pte.page);
    out.ptes.emplace(vpn, pte);
  }
  return out;
}

// The mirror with its pt's pages renamed.
Mirror RenameMirror(const Mirror& mirror, const Renaming& r) {
  Mirror out = mirror;
  for (auto& [vpn, mapping] : out.pt) {
    if (MapsPage(mapping)) mapping.page = r.pages.at(mapping.page);
  }
  return out;
}

// The range with its VALID page entries renamed.
Range RenameRange(const Range& range, const Renaming& r) {
  Range out = range;
  for (HmmPfn& entry : out.pfns) {
    if (NamesPage(entry)) entry.page = r.pages.at(entry.page);
  }
  return out;
}

}  // namespace

State Canonicalize(const State& s) {
  const Renaming r = NameInOrderOfFirstUse(s);
  State out;
  for (const auto& [pid, proc] : s.procs) out.procs.emplace(pid, RenameProcess(proc, r));
  for (const auto& [id, page] : s.pages) out.pages.emplace(r.pages.at(id), page);
  for (const auto& [id, obj] : s.objects) {
    SharedObject& renamed = out.objects[r.objects.at(id)];
    for (const auto& [pgoff, page] : obj.pages) renamed.pages.emplace(pgoff, r.pages.at(page));
    renamed.size = obj.size;
  }
  for (const auto& [pin, pages] : s.pins) {
    std::vector<PageId>& renamed = out.pins[pin];
    for (PageId page : pages) renamed.push_back(r.pages.at(page));
  }
  out.next_pid = s.next_pid;
  out.next_pin = s.next_pin;
  out.next_page = r.pages.size() + 1;
  out.next_object = r.objects.size() + 1;
  // Device memory is physical identity: resources, devmems, device pfns (in
  // the PTEs above) and the event log are kept as they are.
  out.config = s.config;
  out.resources = s.resources;
  out.devmems = s.devmems;
  out.events = s.events;
  out.next_devmem = s.next_devmem;
  // Mirroring: pages renamed, ids kept.
  for (const auto& [id, mirror] : s.mirrors) out.mirrors.emplace(id, RenameMirror(mirror, r));
  for (const auto& [id, range] : s.ranges) out.ranges.emplace(id, RenameRange(range, r));
  out.next_mirror = s.next_mirror;
  out.next_range = s.next_range;
  // linux-6.1: coherent pages renamed; device pages' mirrors kept.
  for (const auto& [page, device] : s.coherent) out.coherent.emplace(r.pages.at(page), device);
  out.device_page_mirror = s.device_page_mirror;
  for (const auto& [key, rmap] : s.anon_rmap) {
    const uint64_t id = key.first ? key.second : r.pages.at(key.second);
    out.anon_rmap.emplace(std::make_pair(key.first, id), rmap);
  }
  out.next_anon_vma = s.next_anon_vma;
  out.next_rmap_seq = s.next_rmap_seq;
  return out;
}

}  // namespace hmm::model
