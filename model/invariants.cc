// File: model/invariants.cc
//
// The invariants of the CPU address space and the table of all of them
// (AllInvariants); the device-memory invariants are in devmem_invariants.cc,
// the mirroring ones in mirror_invariants.cc.

#include "model/invariants.h"

#include <functional>
#include <map>
#include <set>

#include "model/address_space.h"
#include "model/invariant_walk.h"

namespace hmm::model {
namespace {

// How many PTEs of private VMAs map each page.
std::map<PageId, uint64_t> PrivateMapCounts(const State& s) {
  std::map<PageId, uint64_t> counts;
  ForEachPte(s, [&](Pid, Vpn, const Pte& pte, const Vma* vma) {
    if (!pte.zero && vma != nullptr && !vma->shared) ++counts[pte.page];
  });
  return counts;
}

// The pages held by some shared object.
std::set<PageId> ObjectPages(const State& s) {
  std::set<PageId> pages;
  for (const auto& [id, obj] : s.objects) {
    for (const auto& [pgoff, page] : obj.pages) pages.insert(page);
  }
  return pages;
}

}  // namespace

Violations InvVmaSortedDisjoint(const State& s) {
  Violations v;
  for (const auto& [pid, proc] : s.procs) {
    // Loop invariant: prev_end is the highest end of the VMAs before.
    Vpn prev_end(0);
    for (const auto& [key, vma] : proc.vmas) {
      const std::string at = Where(pid, key) + ": ";
      if (key != vma.start) v.push_back(at + "key != vma.start " + Hex(vma.start.value));
      if (vma.end <= vma.start) v.push_back(at + "empty, end " + Hex(vma.end.value));
      if (vma.end.value > kMaxVpn) v.push_back(at + "end " + Hex(vma.end.value) + " > kMaxVpn");
      if (vma.start < prev_end) {
        v.push_back(at + "overlaps previous VMA ending " + Hex(prev_end.value));
      }
      if (prev_end < vma.end) prev_end = vma.end;
    }
  }
  return v;
}

Violations InvVmaObjectExists(const State& s) {
  Violations v;
  for (const auto& [pid, proc] : s.procs) {
    for (const auto& [start, vma] : proc.vmas) {
      const std::string at = Where(pid, start) + ": ";
      if (vma.shared && s.objects.count(vma.object) == 0) {
        v.push_back(at + "shared VMA maps object " + std::to_string(vma.object) +
                    ", which does not exist");
      }
      if (!vma.shared && (vma.object != 0 || vma.pgoff != 0)) {
        v.push_back(at + "private VMA has object " + std::to_string(vma.object) + " pgoff " +
                    std::to_string(vma.pgoff) + ", expected 0 0");
      }
    }
  }
  return v;
}

Violations InvPteInsideVma(const State& s) {
  Violations v;
  ForEachPte(s, [&](Pid pid, Vpn vpn, const Pte& pte, const Vma* vma) {
    if (vma == nullptr) v.push_back(Where(pid, vpn) + " " + Describe(pte) + ": no VMA holds it");
  });
  return v;
}

Violations InvPteWriteImpliesVmaWrite(const State& s) {
  Violations v;
  ForEachPte(s, [&](Pid pid, Vpn vpn, const Pte& pte, const Vma* vma) {
    if (pte.write && vma != nullptr && (vma->prot & kProtWrite) == 0) {
      v.push_back(Where(pid, vpn) + " " + Describe(pte) +
                  ": pte.write=1 vma.prot=" + std::to_string(vma->prot));
    }
  });
  return v;
}

Violations InvZeroPageNeverWritable(const State& s) {
  Violations v;
  ForEachPte(s, [&](Pid pid, Vpn vpn, const Pte& pte, const Vma*) {
    if (pte.zero && (pte.write || pte.page != 0)) {
      v.push_back(Where(pid, vpn) + " zero page: write=" + std::to_string(pte.write) +
                  " page=" + std::to_string(pte.page) + ", expected write=0 page=0");
    }
  });
  return v;
}

Violations InvCowSharedPageReadOnly(const State& s) {
  Violations v;
  const std::map<PageId, uint64_t> counts = PrivateMapCounts(s);
  ForEachPte(s, [&](Pid pid, Vpn vpn, const Pte& pte, const Vma* vma) {
    if (pte.zero || !pte.write || vma == nullptr || vma->shared) return;
    const uint64_t n = counts.at(pte.page);
    if (n > 1) {
      v.push_back(Where(pid, vpn) + " " + Describe(pte) + ": write=1 but mapped by " +
                  std::to_string(n) + " private PTEs");
    }
  });
  return v;
}

Violations InvSharedPteMatchesObject(const State& s) {
  Violations v;
  ForEachPte(s, [&](Pid pid, Vpn vpn, const Pte& pte, const Vma* vma) {
    if (vma == nullptr || !vma->shared) return;
    auto obj = s.objects.find(vma->object);
    if (obj == s.objects.end()) return;  // InvVmaObjectExists reports it
    const uint64_t pgoff = vma->pgoff + (vpn.value - vma->start.value);
    auto slot = obj->second.pages.find(pgoff);
    const std::string want = slot == obj->second.pages.end()
                                 ? std::string("none")
                                 : "page " + std::to_string(slot->second);
    if (pte.zero || slot == obj->second.pages.end() || slot->second != pte.page) {
      v.push_back(Where(pid, vpn) + ": pte maps " + Describe(pte) + ", object " +
                  std::to_string(vma->object) + " pgoff " + std::to_string(pgoff) + " holds " +
                  want);
    }
  });
  return v;
}

Violations InvPrivateAndSharedPagesDisjoint(const State& s) {
  Violations v;
  const std::set<PageId> shared = ObjectPages(s);
  ForEachPte(s, [&](Pid pid, Vpn vpn, const Pte& pte, const Vma* vma) {
    if (!pte.zero && vma != nullptr && !vma->shared && shared.count(pte.page) != 0) {
      v.push_back(Where(pid, vpn) + " " + Describe(pte) +
                  ": private PTE maps a page a shared object holds");
    }
  });
  return v;
}

Violations InvObjectPageUnique(const State& s) {
  Violations v;
  std::map<PageId, std::string> owner;
  for (const auto& [id, obj] : s.objects) {
    for (const auto& [pgoff, page] : obj.pages) {
      const std::string slot = "object " + std::to_string(id) + " pgoff " + std::to_string(pgoff);
      auto [it, fresh] = owner.emplace(page, slot);
      if (!fresh) {
        v.push_back("page " + std::to_string(page) + ": in " + it->second + " and " + slot);
      }
    }
  }
  return v;
}

Violations InvPageReachable(const State& s) {
  Violations v;
  std::set<PageId> used = ObjectPages(s);
  for (const auto& [pin, pages] : s.pins) used.insert(pages.begin(), pages.end());
  ForEachPte(s, [&](Pid, Vpn, const Pte& pte, const Vma*) {
    if (!pte.zero) used.insert(pte.page);
  });
  for (const auto& [id, page] : s.pages) {
    if (used.count(id) == 0) {
      v.push_back("page " + std::to_string(id) + ": exists, nothing refers to it");
    }
  }
  for (PageId id : used) {
    if (s.pages.count(id) == 0) {
      v.push_back("page " + std::to_string(id) + ": referred to, does not exist");
    }
  }
  return v;
}

Violations InvPinnedPrivatePageExclusive(const State& s) {
  Violations v;
  const std::map<PageId, uint64_t> counts = PrivateMapCounts(s);
  for (const auto& [pin, pages] : s.pins) {
    for (PageId page : pages) {
      auto it = counts.find(page);
      if (it != counts.end() && it->second > 1) {
        v.push_back("pin " + std::to_string(pin.value) + " page " + std::to_string(page) +
                    ": mapped by " + std::to_string(it->second) + " private PTEs, expected <= 1");
      }
    }
  }
  return v;
}

Violations InvPinWithinLimit(const State& s) {
  Violations v;
  for (const auto& [pin, pages] : s.pins) {
    if (pages.empty() || pages.size() > kMaxPinPages) {
      v.push_back("pin " + std::to_string(pin.value) + ": holds " + std::to_string(pages.size()) +
                  " pages, expected 1.." + std::to_string(kMaxPinPages));
    }
  }
  return v;
}

Violations InvObjectMapped(const State& s) {
  Violations v;
  std::set<ObjectId> mapped;
  for (const auto& [pid, proc] : s.procs) {
    for (const auto& [start, vma] : proc.vmas) {
      if (vma.shared) mapped.insert(vma.object);
    }
  }
  for (const auto& [id, obj] : s.objects) {
    if (mapped.count(id) == 0) v.push_back("object " + std::to_string(id) + ": no VMA maps it");
  }
  return v;
}

Violations InvRamWithinCapacity(const State& s, uint64_t ram_pages) {
  if (s.pages.size() <= ram_pages) return {};
  return {std::to_string(s.pages.size()) + " pages exist, ram_pages " + std::to_string(ram_pages)};
}

Violations InvProcessCountWithinLimit(const State& s) {
  if (s.procs.size() <= kMaxProcesses) return {};
  return {std::to_string(s.procs.size()) + " live processes, kMaxProcesses " +
          std::to_string(kMaxProcesses)};
}

Violations InvIdsBelowNext(const State& s) {
  Violations v;
  auto check = [&v](const char* what, uint64_t id, uint64_t next) {
    if (id == 0 || id >= next) {
      v.push_back(std::string(what) + " " + std::to_string(id) + ": expected in 1.." +
                  std::to_string(next) + ")");
    }
  };
  for (const auto& [pid, proc] : s.procs) check("pid", pid.value, s.next_pid);
  for (const auto& [pin, pages] : s.pins) check("pin", pin.value, s.next_pin);
  for (const auto& [id, page] : s.pages) check("page", id, s.next_page);
  for (const auto& [id, obj] : s.objects) check("object", id, s.next_object);
  for (const auto& [id, devmem] : s.devmems) check("devmem", id, s.next_devmem);
  for (const DeviceEvent& event : s.events) check("event devmem", event.devmem, s.next_devmem);
  for (const auto& [id, mirror] : s.mirrors) check("mirror", id, s.next_mirror);
  for (const auto& [id, range] : s.ranges) check("range", id, s.next_range);
  return v;
}

namespace {

struct Entry {
  InvariantInfo info;
  std::function<Violations(const State&, uint64_t)> check;
};

// Wraps an invariant that does not look at ram_pages.
std::function<Violations(const State&, uint64_t)> StateOnly(Violations (*inv)(const State&)) {
  return [inv](const State& s, uint64_t) { return inv(s); };
}

const std::vector<Entry>& Entries() {
  static const std::vector<Entry> kEntries = {
      {{"InvVmaSortedDisjoint",
        "Each process's VMAs are keyed by start, non-empty, below kMaxVpn and pairwise disjoint.",
        "mm/mmap.c:validate_mm()"},
       StateOnly(InvVmaSortedDisjoint)},
      {{"InvVmaObjectExists",
        "A shared VMA maps an existing object; a private VMA has object 0 and pgoff 0.",
        "mm/shmem.c:shmem_zero_setup()"},
       StateOnly(InvVmaObjectExists)},
      {{"InvPteInsideVma", "Every PTE lies inside a VMA of its process.",
        "mm/mmap.c:unmap_region()"},
       StateOnly(InvPteInsideVma)},
      {{"InvPteWriteImpliesVmaWrite", "A writable PTE lies in a VMA with kProtWrite.",
        "mm/mprotect.c:change_pte_range()"},
       StateOnly(InvPteWriteImpliesVmaWrite)},
      {{"InvZeroPageNeverWritable", "A zero-page PTE is never writable and names no page.",
        "mm/memory.c:do_anonymous_page()"},
       StateOnly(InvZeroPageNeverWritable)},
      {{"InvCowSharedPageReadOnly",
        "A private page mapped by two or more PTEs is writable through none of them.",
        "mm/memory.c:copy_present_pte()"},
       StateOnly(InvCowSharedPageReadOnly)},
      {{"InvSharedPteMatchesObject",
        "A PTE of a shared VMA maps the object's page at pgoff + offset, never the zero page.",
        "mm/shmem.c:shmem_fault()"},
       StateOnly(InvSharedPteMatchesObject)},
      {{"InvPrivateAndSharedPagesDisjoint",
        "No page is both held by a shared object and mapped by a private VMA's PTE.",
        "mm/memory.c:wp_page_copy()"},
       StateOnly(InvPrivateAndSharedPagesDisjoint)},
      {{"InvObjectPageUnique", "A page fills at most one (object, pgoff) slot.",
        "mm/shmem.c:shmem_add_to_page_cache()"},
       StateOnly(InvObjectPageUnique)},
      {{"InvPageReachable",
        "Every page that exists is referenced by a PTE, object or pin, and every referenced "
        "page exists.",
        "mm/swap.c:folio_put()"},
       StateOnly(InvPageReachable)},
      {{"InvPinnedPrivatePageExclusive", "A pinned page is mapped by at most one private PTE.",
        "include/linux/mm.h:page_needs_cow_for_dma()"},
       StateOnly(InvPinnedPrivatePageExclusive)},
      {{"InvPinWithinLimit", "Each pin holds between 1 and kMaxPinPages pages.",
        "mm/gup.c:pin_user_pages()"},
       StateOnly(InvPinWithinLimit)},
      {{"InvObjectMapped", "Every shared object is mapped by some VMA.", "mm/mmap.c:remove_vma()"},
       StateOnly(InvObjectMapped)},
      {{"InvRamWithinCapacity", "At most ram_pages pages exist (the zero page excluded).",
        "mm/page_alloc.c:__alloc_pages()"},
       InvRamWithinCapacity},
      {{"InvProcessCountWithinLimit", "At most kMaxProcesses processes are live.",
        "kernel/fork.c:copy_process()"},
       StateOnly(InvProcessCountWithinLimit)},
      {{"InvIdsBelowNext", "Every id in use is non-zero and below its next_* counter.",
        "kernel/pid.c:alloc_pid()"},
       StateOnly(InvIdsBelowNext)},
      {{"InvResourcesDisjoint", "Resources are keyed by start, non-empty and pairwise disjoint.",
        "kernel/resource.c:__request_resource()"},
       StateOnly(InvResourcesDisjoint)},
      {{"InvDevmemMatchesResource",
        "Each live devmem has exactly one device resource with its range, and each device "
        "resource belongs to a live devmem.",
        "mm/hmm.c:hmm_devmem_pages_create()"},
       StateOnly(InvDevmemMatchesResource)},
      {{"InvDeviceRangePlacement",
        "A device resource is section-aligned and lies in [2^max_physmem_bits, "
        "2^(12 + kDevicePfnBits)) under profile default, below 2^max_physmem_bits under v18.",
        "mm/hmm.c:hmm_devmem_add()"},
       StateOnly(InvDeviceRangePlacement)},
      {{"InvDeviceEntryTargetsLivePage",
        "A device entry names no RAM page, and an allocated page of a live devmem.",
        "include/linux/swapops.h:device_private_entry_to_page()"},
       StateOnly(InvDeviceEntryTargetsLivePage)},
      {{"InvDeviceEntryPrivateVma", "A device entry lies inside a private VMA of its process.",
        "mm/migrate.c:migrate_vma_insert_page()"},
       StateOnly(InvDeviceEntryPrivateVma)},
      {{"InvDeviceEntryWriteImpliesVmaWrite",
        "A writable device entry lies in a VMA with kProtWrite.",
        "mm/mprotect.c:change_pte_range()"},
       StateOnly(InvDeviceEntryWriteImpliesVmaWrite)},
      {{"InvPageFreeOncePerAllocation",
        "Every page of a live devmem has had one page_free per allocation, less one while it "
        "is held or mapped.",
        "kernel/memremap.c:put_zone_device_private_or_public_page()"},
       StateOnly(InvPageFreeOncePerAllocation)},
      {{"InvDevicePageNeverPresent", "No present PTE names a device pfn.",
        "mm/migrate_device.c:migrate_vma_insert_page()"},
       StateOnly(InvDevicePageNeverPresent)},
      {{"InvMirrorOfLiveProcess",
        "A mirror's pid was handed out, and a mirror of an exited process has an empty pt.",
        "mm/mmap.c:exit_mmap()"},
       StateOnly(InvMirrorOfLiveProcess)},
      {{"InvMirrorSubsetOfCpu",
        "Every pt entry of a mirror maps what the CPU maps at that address, writable only if "
        "the CPU entry is.",
        "mm/hmm.c:hmm_invalidate_range()"},
       StateOnly(InvMirrorSubsetOfCpu)},
      {{"InvValidRangeMatchesCpu",
        "Every VALID entry of a valid range names what the CPU maps at that address, with "
        "WRITE only if the CPU entry is writable.",
        "mm/hmm.c:hmm_vma_range_done()"},
       StateOnly(InvValidRangeMatchesCpu)},
      {{"InvRangeWithinOneVma", "A valid range lies inside one VMA of its process.",
        "mm/hmm.c:hmm_vma_get_pfns()"},
       StateOnly(InvRangeWithinOneVma)},
      {{"InvRangeOfLiveMirror", "Every open range belongs to a registered mirror.",
        "mm/hmm.c:hmm_mirror_unregister()"},
       StateOnly(InvRangeOfLiveMirror)},
  };
  return kEntries;
}

}  // namespace

std::vector<std::string> CheckAllInvariants(const State& s, uint64_t ram_pages) {
  std::vector<std::string> lines;
  for (const Entry& e : Entries()) {
    for (const std::string& detail : e.check(s, ram_pages)) {
      lines.push_back(std::string(e.info.name) + ": " + detail);
    }
  }
  return lines;
}

const std::vector<InvariantInfo>& AllInvariants() {
  static const std::vector<InvariantInfo> kInfos = [] {
    std::vector<InvariantInfo> infos;
    for (const Entry& e : Entries()) infos.push_back(e.info);
    return infos;
  }();
  return kInfos;
}

}  // namespace hmm::model
