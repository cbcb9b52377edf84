// File: model/devmem_invariants.cc
//
// The device-memory invariants of model/invariants.h (docs/devmem.md; research
// invariants 1-10): resources, devmem placement, device entries and the
// page_free log.

#include <map>
#include <string>
#include <utility>

#include "model/address_space.h"
#include "model/invariant_walk.h"
#include "model/invariants.h"

namespace hmm::model {

Violations InvResourcesDisjoint(const State& s) {
  Violations v;
  // Loop invariant: prev_end is the highest end of the resources before.
  uint64_t prev_end = 0;
  for (const auto& [key, res] : s.resources) {
    const std::string at = "resource [" + Hex(res.start) + ", " + Hex(res.end) + "): ";
    if (key != res.start) v.push_back(at + "key " + Hex(key) + " != start");
    if (res.end <= res.start) v.push_back(at + "empty");
    if (res.start < prev_end) v.push_back(at + "overlaps a resource ending " + Hex(prev_end));
    if (prev_end < res.end) prev_end = res.end;
  }
  return v;
}

Violations InvDevmemMatchesResource(const State& s) {
  Violations v;
  std::map<uint64_t, uint64_t> resources_of;  // devmem id -> device resources naming it
  for (const auto& [key, res] : s.resources) {
    if (!res.device) continue;
    ++resources_of[res.devmem];
    auto devmem = s.devmems.find(res.devmem);
    const std::string at = "resource [" + Hex(res.start) + ", " + Hex(res.end) + "): ";
    if (devmem == s.devmems.end()) {
      v.push_back(at + "devmem " + std::to_string(res.devmem) + " is not live");
    } else if (res.start != devmem->second.first_pfn << kPageShift ||
               res.end != (devmem->second.first_pfn + devmem->second.npages) << kPageShift) {
      v.push_back(at + "devmem " + std::to_string(res.devmem) + " has first_pfn " +
                  Hex(devmem->second.first_pfn) + " npages " + Hex(devmem->second.npages));
    }
  }
  for (const auto& [id, devmem] : s.devmems) {
    if (resources_of[id] != 1) {
      v.push_back("devmem " + std::to_string(id) + ": " + std::to_string(resources_of[id]) +
                  " device resources, expected 1");
    }
  }
  return v;
}

Violations InvDeviceRangePlacement(const State& s) {
  Violations v;
  const uint64_t physmem_end = uint64_t{1} << s.config.max_physmem_bits;
  const uint64_t pfn_limit = uint64_t{1} << (kPageShift + kDevicePfnBits);
  const bool v18 = s.config.profile == Profile::kV18;
  for (const auto& [key, res] : s.resources) {
    if (!res.device) continue;
    const std::string at = "resource [" + Hex(res.start) + ", " + Hex(res.end) + "): ";
    if (res.start % s.config.section_bytes != 0 || res.end % s.config.section_bytes != 0) {
      v.push_back(at + "not aligned to section_bytes " + Hex(s.config.section_bytes));
    }
    if (v18 && res.end > physmem_end) {
      v.push_back(at + "profile v18, ends above 2^max_physmem_bits " + Hex(physmem_end));
    }
    if (!v18 && (res.start < physmem_end || res.end > pfn_limit)) {
      v.push_back(at + "profile default, expected within [" + Hex(physmem_end) + ", " +
                  Hex(pfn_limit) + ")");
    }
  }
  return v;
}

Violations InvDeviceEntryTargetsLivePage(const State& s) {
  Violations v;
  ForEachDeviceEntry(s, [&](Pid pid, Vpn vpn, const Pte& pte, const Vma*) {
    const std::string at = Where(pid, vpn) + " " + Describe(pte) + ": ";
    if (pte.zero || pte.page != 0) v.push_back(at + "also names page " + std::to_string(pte.page));
    const uint64_t id = DevmemOfPfn(s, pte.device_pfn);
    if (id == 0) {
      v.push_back(at + "no live devmem holds the pfn");
      return;
    }
    auto page = s.devmems.at(id).pages.find(pte.device_pfn);
    if (page == s.devmems.at(id).pages.end() || page->second.allocations == 0) {
      v.push_back(at + "page of devmem " + std::to_string(id) + " never allocated");
    }
  });
  return v;
}

Violations InvDeviceEntryPrivateVma(const State& s) {
  Violations v;
  ForEachDeviceEntry(s, [&](Pid pid, Vpn vpn, const Pte& pte, const Vma* vma) {
    if (vma == nullptr) v.push_back(Where(pid, vpn) + " " + Describe(pte) + ": no VMA holds it");
    if (vma != nullptr && vma->shared) {
      v.push_back(Where(pid, vpn) + " " + Describe(pte) + ": in a shared VMA, object " +
                  std::to_string(vma->object));
    }
  });
  return v;
}

Violations InvDeviceEntryWriteImpliesVmaWrite(const State& s) {
  Violations v;
  ForEachDeviceEntry(s, [&](Pid pid, Vpn vpn, const Pte& pte, const Vma* vma) {
    if (pte.write && vma != nullptr && (vma->prot & kProtWrite) == 0) {
      v.push_back(Where(pid, vpn) + " " + Describe(pte) +
                  ": entry.write=1 vma.prot=" + std::to_string(vma->prot));
    }
  });
  return v;
}

Violations InvDevicePageNeverPresent(const State& s) {
  Violations v;
  ForEachPte(s, [&](Pid pid, Vpn vpn, const Pte& pte, const Vma*) {
    if (pte.device_pfn != 0) {
      v.push_back(Where(pid, vpn) + " " + Describe(pte) + ": present, names device pfn " +
                  Hex(pte.device_pfn));
    }
  });
  return v;
}

namespace {

// What the page_free rule compares, for one page.
struct PageLedger {
  uint64_t frees = 0;  // its page_free events in the log
  bool busy = false;   // held, or named by a device entry
};

// The ledger of every (devmem, pfn) of a live devmem that has a record, an
// event or an entry.
std::map<std::pair<uint64_t, uint64_t>, PageLedger> Ledgers(const State& s) {
  std::map<std::pair<uint64_t, uint64_t>, PageLedger> ledgers;
  for (const DeviceEvent& event : s.events) {
    if (event.kind == DeviceEvent::kPageFree && s.devmems.count(event.devmem) != 0) {
      ++ledgers[{event.devmem, event.pfn}].frees;
    }
  }
  ForEachDeviceEntry(s, [&](Pid, Vpn, const Pte& pte, const Vma*) {
    const uint64_t id = DevmemOfPfn(s, pte.device_pfn);
    if (id != 0) ledgers[{id, pte.device_pfn}].busy = true;
  });
  for (const auto& [id, devmem] : s.devmems) {
    for (const auto& [pfn, page] : devmem.pages) {
      PageLedger& ledger = ledgers[{id, pfn}];
      ledger.busy = ledger.busy || page.held;
    }
  }
  return ledgers;
}

}  // namespace

Violations InvPageFreeOncePerAllocation(const State& s) {
  Violations v;
  for (const auto& [key, ledger] : Ledgers(s)) {
    const auto& [id, pfn] = key;
    const std::map<uint64_t, DevicePage>& pages = s.devmems.at(id).pages;
    const uint64_t allocations = pages.count(pfn) == 0 ? 0 : pages.at(pfn).allocations;
    // One page_free per allocation, except the current one while the page is in use.
    if (ledger.frees + (ledger.busy ? 1 : 0) != allocations) {
      v.push_back("devmem " + std::to_string(id) + " pfn " + Hex(pfn) + ": " +
                  std::to_string(ledger.frees) + " page_free, allocations " +
                  std::to_string(allocations) + ", held or mapped " + std::to_string(ledger.busy));
    }
  }
  return v;
}

}  // namespace hmm::model
