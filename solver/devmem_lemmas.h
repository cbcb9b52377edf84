// File: solver/devmem_lemmas.h
//
// Lemmas about ZONE_DEVICE device-private memory (docs/devmem.md), in three
// groups, each over a variant struct whose Real()/Default() is the contract
// and whose other values are the negative controls' one-place breaks:
//
// - Placement (PlacementPolicy): over 64-bit bit-vectors, for every
//   max_physmem_bits, section size, region size and candidate start a policy
//   may choose, against every RAM range hot-add's range checks accept.
// - The 2017 refcount rule (RefcountRule): over Ints, refcount = 1 + held +
//   entries, page_free when a put moves it 2 -> 1.
// - InvDevicePageNeverPresent as an inductive invariant of an abstract page
//   table (PteSteps), one lemma per operation plus the initial state, in
//   hyperkernel's style: Inv(s) && step(s, s') => Inv(s')
//   (devmem_table_lemmas.cc; the other two are in devmem_lemmas.cc).
//
// LemmaV18PlacementCollides is an existence claim and reads inverted; see its
// comment.

#ifndef HMMREF_SOLVER_DEVMEM_LEMMAS_H_
#define HMMREF_SOLVER_DEVMEM_LEMMAS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "solver/lemma.h"
#include "solver/prove.h"

namespace hmm::solver {

// Where HmmDevmemAdd may put a region of `size` bytes (a positive multiple of
// the section size), relative to limit = 2^max_physmem_bits.
struct PlacementPolicy {
  enum class Start {
    kAtOrAboveLimit,        // default: any section-aligned s >= limit
    kOneSectionBelowLimit,  // a defect: s = limit - section
    kTopDownBelowLimit,     // v18's first candidate: s = limit - size
  };
  std::string name;
  Start start;
  unsigned end_bits;  // every device range ends at or below 2^end_bits

  // kAtOrAboveLimit, end_bits = kPageShift + kDevicePfnBits.
  static PlacementPolicy Default();
  // kTopDownBelowLimit, end_bits as Default().
  static PlacementPolicy V18();
};

// The RAM range [a, a + n) and the device range [s, s + size) are disjoint,
// for every n accepted by hot-add's range checks and every s the policy
// chooses. Invariant InvDeviceRangePlacement.
LemmaResult LemmaDefaultPlacementNeverCollides(const PlacementPolicy& policy);

// Every device pfn of a placed range survives EncodePte/DecodePte as the
// offset of a device-private entry (pte_lemmas.h's terms, impl/pte.h's
// kSwpOffsetShift/kSwpOffsetBits). Invariant InvDeviceRangePlacement.
LemmaResult LemmaDevicePfnFitsSwapOffset(const PlacementPolicy& policy);

// An existence claim, proved by a witness: "some RAM range that passes
// hot-add's range checks overlaps the device range the policy chose". Z3 is
// asked whether every such range is disjoint; sat (a collision) makes this
// lemma kProved with the collision in `detail` (counterexample stays empty);
// unsat makes it kFailed with "no collision exists" in `detail` and no
// counterexample, as there is no model to print.
LemmaResult LemmaV18PlacementCollides(const PlacementPolicy& policy);

// When a put is allowed and at which count it calls page_free. Real() is the
// 2017 rule: put needs refcount >= 2, page_free when it moves 2 -> 1.
struct RefcountRule {
  std::string name;
  int64_t put_min;  // the least refcount a put is allowed at
  int64_t free_at;  // the refcount a put calls page_free at

  static RefcountRule Real();
};

// From every state with refcount >= 1 and page_free counted once per
// allocation, each allowed alloc, get or put keeps refcount >= 1, calls
// page_free exactly when a put moves 2 -> 1, and keeps the count.
// Invariant InvPageFreeOncePerAllocation.
LemmaResult LemmaDevicePageRefcountRule(const RefcountRule& rule);

// The abstract page table's operations; Real() is docs/devmem.md. Each flag
// breaks one operation so that it can create a present entry of a device pfn.
struct PteSteps {
  std::string name;
  bool initial_maps_device = false;     // boot maps one device pfn present
  bool fork_makes_present = false;      // the child gets a device entry as present
  bool munmap_makes_present = false;    // zap leaves device entries behind as present
  bool mprotect_makes_present = false;  // mprotect rebuilds device entries as present
  bool fault_may_alloc_device = false;  // the fault's allocation may be a device pfn

  static PteSteps Real();
};

// Invariant InvDevicePageNeverPresent: every present entry's pfn is not a
// device pfn (is_device: any predicate over pfns). The initial lemma proves it
// of the empty table; each other lemma proves Inv(s) && step(s, s') => Inv(s').
LemmaResult LemmaInitialInvDevicePageNeverPresent(const PteSteps& steps);
LemmaResult LemmaForkPreservesInvDevicePageNeverPresent(const PteSteps& steps);
LemmaResult LemmaMunmapPreservesInvDevicePageNeverPresent(const PteSteps& steps);
LemmaResult LemmaMprotectPreservesInvDevicePageNeverPresent(const PteSteps& steps);
LemmaResult LemmaCpuFaultPreservesInvDevicePageNeverPresent(const PteSteps& steps);

// The registry entries of the lemmas above, each with its negative control.
std::vector<LemmaWithControl> DevmemLemmas();

}  // namespace hmm::solver

#endif  // HMMREF_SOLVER_DEVMEM_LEMMAS_H_
