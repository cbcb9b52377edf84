// File: props/concurrent_residue.cc
//
// ForgetRaceResidue (props/concurrent.h): what an operation that lost a race
// may leave behind, removed from both states before they are compared at
// the quiescent end.

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "props/concurrent.h"

namespace hmm::props {
namespace {


using model::PageId;

struct PageUse {
  std::set<PageId> in_objects;  // in a shared object's page cache
  std::set<PageId> held;        // pinned, or named by a device's entry
};

PageUse UsesOf(const model::State& s) {
  PageUse use;
  for (const auto& object : s.objects) {
    for (const auto& page : object.second.pages) use.in_objects.insert(page.second);
  }
  for (const auto& pin : s.pins) use.held.insert(pin.second.begin(), pin.second.end());
  for (const auto& mirror : s.mirrors) {
    for (const auto& entry : mirror.second.pt) use.held.insert(entry.second.page);
  }
  return use;
}

// All zero and neither pinned nor named by a device's entry.
bool Blank(const model::State& s, const PageUse& use, PageId id) {
  const auto page = s.pages.find(id);
  return use.held.count(id) == 0 && (page == s.pages.end() || page->second.bytes.empty());
}

// Drops the CPU entries a reader cannot tell from none: the zero page, and
// an entry of a page of zeros. Returns the pages still mapped.
std::set<PageId> ForgetBlankEntries(model::State* s, const PageUse& use) {
  std::set<PageId> mapped;
  for (auto& proc : s->procs) {
    auto& ptes = proc.second.ptes;
    for (auto it = ptes.begin(); it != ptes.end();) {
      const model::Pte& e = it->second;
      if (e.zero || (!e.device && Blank(*s, use, e.page))) {
        it = ptes.erase(it);
        continue;
      }
      mapped.insert(e.page);
      ++it;
    }
  }
  return mapped;
}

// Drops the page-cache pages of zeros that nothing maps.
void ForgetBlankCachePages(model::State* s, const PageUse& use, const std::set<PageId>& mapped) {
  for (auto& object : s->objects) {
    auto& pages = object.second.pages;
    for (auto it = pages.begin(); it != pages.end();) {
      const bool blank = mapped.count(it->second) == 0 && Blank(*s, use, it->second);
      it = blank ? pages.erase(it) : std::next(it);
    }
  }
}

// Maps every read-only private entry to the first page (by pid, then
// address) with the same bytes: whether two processes share a page or each
// has a copy depends on whether a COW break came before or after a fork.
void MergeReadOnlyCopies(model::State* s, const PageUse& use) {
  std::vector<std::pair<const model::Page*, PageId>> firsts;
  for (auto& proc : s->procs) {
    for (auto& entry : proc.second.ptes) {
      model::Pte& e = entry.second;
      if (e.device || e.zero || e.write || use.in_objects.count(e.page) != 0 ||
          use.held.count(e.page) != 0 || s->pages.count(e.page) == 0) {
        continue;
      }
      const model::Page& bytes = s->pages.at(e.page);
      auto same = std::find_if(firsts.begin(), firsts.end(),
                               [&bytes](const auto& f) { return *f.first == bytes; });
      if (same == firsts.end()) {
        firsts.emplace_back(&bytes, e.page);
      } else {
        e.page = same->second;
      }
    }
  }
}

// Drops the pages nothing refers to any more.
void DropUnreferencedPages(model::State* s) {
  const PageUse use = UsesOf(*s);
  std::set<PageId> refs = use.in_objects;
  refs.insert(use.held.begin(), use.held.end());
  for (const auto& proc : s->procs) {
    for (const auto& entry : proc.second.ptes) refs.insert(entry.second.page);
  }
  for (auto it = s->pages.begin(); it != s->pages.end();) {
    it = refs.count(it->first) == 0 ? s->pages.erase(it) : std::next(it);
  }
}

// Device pfns that a CPU entry or a device's entry names.
std::set<uint64_t> NamedDevicePfns(const model::State& s) {
  std::set<uint64_t> named;
  for (const auto& proc : s.procs) {
    for (const auto& entry : proc.second.ptes) {
      if (entry.second.device) named.insert(entry.second.device_pfn);
    }
  }
  for (const auto& mirror : s.mirrors) {
    for (const auto& entry : mirror.second.pt) {
      if (entry.second.device) named.insert(entry.second.device_pfn);
    }
  }
  return named;
}

// Drops the device pages nothing holds or names and every callback event
// (a migration that lost a race allocated and freed a page; a CPU fault that
// lost one ran the fault callback for nothing); counts each page's
// allocations as one.
void ForgetDevicePageTurnover(model::State* s) {
  const std::set<uint64_t> named = NamedDevicePfns(*s);
  for (auto& devmem : s->devmems) {
    auto& pages = devmem.second.pages;
    for (auto it = pages.begin(); it != pages.end();) {
      if (!it->second.held && named.count(it->first) == 0) {
        it = pages.erase(it);
        continue;
      }
      it->second.allocations = std::min<uint64_t>(it->second.allocations, 1);
      ++it;
    }
  }
  s->events.clear();
}

// Drops the dummy device's chunks with no page left, and their resources:
// a migration that lost its page may have added one.
void ForgetEmptyChunks(model::State* s) {
  for (auto it = s->devmems.begin(); it != s->devmems.end();) {
    if (!it->second.dmirror_chunk || !it->second.pages.empty()) {
      ++it;
      continue;
    }
    for (auto r = s->resources.begin(); r != s->resources.end();) {
      r = r->second.device && r->second.devmem == it->first ? s->resources.erase(r) : std::next(r);
    }
    it = s->devmems.erase(it);
  }
}

// Chunks placed canonically: the other regions keep their ids and pfns; the
// dummy device's chunks, by device and then in the order they were added,
// get the ids after theirs and consecutive ranges from kChunkPfnBase (far
// above any region the kernel places). Returns each moved pfn range's shift:
// old first pfn -> (npages, new first pfn).
constexpr uint64_t kChunkPfnBase = uint64_t{1} << 40;

std::map<uint64_t, std::pair<uint64_t, uint64_t>> PlaceChunks(model::State* s) {
  std::vector<std::pair<DeviceId, uint64_t>> chunks;  // (device, old id)
  uint64_t next_id = 1;
  for (const auto& [id, devmem] : s->devmems) {
    if (devmem.dmirror_chunk) chunks.emplace_back(devmem.device, id);
    if (!devmem.dmirror_chunk) next_id = id + 1;
  }
  std::sort(chunks.begin(), chunks.end());
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> moved;
  std::map<uint64_t, model::Devmem> devmems;
  std::map<uint64_t, model::Resource> resources;
  uint64_t first_pfn = kChunkPfnBase;
  for (const auto& [device, old_id] : chunks) {
    model::Devmem devmem = std::move(s->devmems.at(old_id));
    s->devmems.erase(old_id);
    moved[devmem.first_pfn] = {devmem.npages, first_pfn};
    for (auto r = s->resources.begin(); r != s->resources.end();) {
      if (!r->second.device || r->second.devmem != old_id) {
        ++r;
        continue;
      }
      model::Resource res = r->second;
      res.devmem = next_id;
      res.end = first_pfn * kPageSize + (res.end - res.start);
      res.start = first_pfn * kPageSize;
      resources[res.start] = res;
      r = s->resources.erase(r);
    }
    std::map<uint64_t, model::DevicePage> pages;
    for (auto& [pfn, page] : devmem.pages) pages[pfn - devmem.first_pfn + first_pfn] = page;
    devmem.pages = std::move(pages);
    devmem.first_pfn = first_pfn;
    first_pfn += devmem.npages;
    devmems[next_id++] = std::move(devmem);
  }
  s->devmems.insert(devmems.begin(), devmems.end());
  s->resources.insert(resources.begin(), resources.end());
  return moved;
}

// `pfn` after PlaceChunks moved the ranges `moved`.
uint64_t MovedPfn(const std::map<uint64_t, std::pair<uint64_t, uint64_t>>& moved, uint64_t pfn) {
  auto it = moved.upper_bound(pfn);
  if (it == moved.begin()) return pfn;
  --it;
  const auto& [npages, to] = it->second;
  return pfn - it->first < npages ? pfn - it->first + to : pfn;
}

// Which slot (id, physical range) each of the dummy device's chunks took
// depends on which device allocated first, a migration that lost its page
// included: PlaceChunks, and every device pfn a CPU entry or the state's
// maps name follows its chunk.
void RelocateChunks(model::State* s) {
  const auto moved = PlaceChunks(s);
  for (auto& proc : s->procs) {
    for (auto& entry : proc.second.ptes) {
      if (entry.second.device) entry.second.device_pfn = MovedPfn(moved, entry.second.device_pfn);
    }
  }
  std::map<uint64_t, uint64_t> owners;
  for (const auto& [pfn, mirror] : s->device_page_mirror) owners[MovedPfn(moved, pfn)] = mirror;
  s->device_page_mirror = std::move(owners);
  std::map<std::pair<bool, uint64_t>, model::AnonRmap> rmap;
  for (const auto& [key, r] : s->anon_rmap) {
    rmap[{key.first, key.first ? MovedPfn(moved, key.second) : key.second}] = r;
  }
  s->anon_rmap = std::move(rmap);
}

// Device pfns renamed in order of first use, each within its region: CPU
// entries by pid and address, then each region's other pages by pfn.
std::map<uint64_t, uint64_t> DevicePfnNames(const model::State& s) {
  std::map<uint64_t, uint64_t> to;
  std::map<uint64_t, uint64_t> used;  // devmem id -> pfns named so far
  auto name = [&](uint64_t pfn) {
    if (to.count(pfn) != 0) return;
    to[pfn] = pfn;  // outside every region: kept
    for (const auto& [id, devmem] : s.devmems) {
      if (pfn >= devmem.first_pfn && pfn - devmem.first_pfn < devmem.npages) {
        to[pfn] = devmem.first_pfn + used[id]++;
      }
    }
  };
  for (const auto& proc : s.procs) {
    for (const auto& entry : proc.second.ptes) {
      if (entry.second.device) name(entry.second.device_pfn);
    }
  }
  for (const auto& devmem : s.devmems) {
    for (const auto& page : devmem.second.pages) name(page.first);
  }
  return to;
}

// Which free device page a migration took depends on who allocated first.
void RenameDevicePfns(model::State* s) {
  const std::map<uint64_t, uint64_t> to = DevicePfnNames(*s);
  for (auto& proc : s->procs) {
    for (auto& entry : proc.second.ptes) {
      if (entry.second.device) entry.second.device_pfn = to.at(entry.second.device_pfn);
    }
  }
  for (auto& devmem : s->devmems) {
    std::map<uint64_t, model::DevicePage> renamed;
    for (auto& page : devmem.second.pages) renamed[to.at(page.first)] = std::move(page.second);
    devmem.second.pages = std::move(renamed);
  }
}

}  // namespace

model::State ForgetRaceResidue(model::State s) {
  // Which pages a device's page table caches depends on which fault or
  // invalidation came last, not on the order of whole operations.
  for (auto& mirror : s.mirrors) mirror.second.pt.clear();
  const PageUse use = UsesOf(s);
  const std::set<PageId> mapped = ForgetBlankEntries(&s, use);
  ForgetBlankCachePages(&s, use, mapped);
  MergeReadOnlyCopies(&s, use);
  DropUnreferencedPages(&s);
  ForgetDevicePageTurnover(&s);
  ForgetEmptyChunks(&s);
  RelocateChunks(&s);
  RenameDevicePfns(&s);
  return model::Canonicalize(s);
}

}  // namespace hmm::props
