// File: model/invariant_walk.h
//
// What invariants.cc and devmem_invariants.cc share: walks over every present
// PTE or every device entry with the VMA that holds it, and the wording of a
// violation line ("pid 1 vpn 0x10000 device pfn 0x400000000: ..."). Private
// to //model:kernel.

#ifndef HMMREF_MODEL_INVARIANT_WALK_H_
#define HMMREF_MODEL_INVARIANT_WALK_H_

#include <cstdint>
#include <functional>
#include <string>

#include "model/address_space.h"
#include "model/kernel.h"

namespace hmm::model {

inline std::string Where(Pid pid, Vpn vpn) {
  return "pid " + std::to_string(pid.value) + " vpn " + Hex(vpn.value);
}

inline std::string Describe(const Pte& pte) {
  if (pte.device) return "device pfn " + Hex(pte.device_pfn);
  return pte.zero ? "zero page" : "page " + std::to_string(pte.page);
}

using EntryFn = std::function<void(Pid, Vpn, const Pte&, const Vma*)>;

// Calls fn(pid, vpn, pte, vma) for every entry of the kind asked for (device
// entries, or present PTEs); vma is null when none holds it.
inline void ForEachEntry(const State& s, bool device, const EntryFn& fn) {
  for (const auto& [pid, proc] : s.procs) {
    for (const auto& [vpn, pte] : proc.ptes) {
      if (pte.device == device) fn(pid, vpn, pte, FindVma(proc, vpn));
    }
  }
}

// Every present PTE (a page or the zero page).
inline void ForEachPte(const State& s, const EntryFn& fn) { ForEachEntry(s, false, fn); }

// Every device entry.
inline void ForEachDeviceEntry(const State& s, const EntryFn& fn) { ForEachEntry(s, true, fn); }

}  // namespace hmm::model

#endif  // HMMREF_MODEL_INVARIANT_WALK_H_
