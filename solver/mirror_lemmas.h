// File: solver/mirror_lemmas.h
//
// Lemmas about mirroring (docs/mirror.md), in hyperkernel's style: over the
// whole symbolic mirroring state (mirror_state.h: every process's CPU table,
// every mirror's pt, every open range), the initial state establishes each
// invariant, and for each operation Inv(s) && step(s, s') => Inv(s'), one
// lemma per (operation, invariant). The invariants are the model's
// InvMirrorSubsetOfCpu and InvValidRangeMatchesCpu; both are hypotheses of
// every step lemma (commit needs the second to keep the first). One more
// lemma proves the snapshot protocol: range_done returns true only if no
// overlapping invalidation ran since the range was registered.
//
// Every lemma takes a MirrorSteps; Real() is docs/mirror.md, and each
// negative control passes a copy broken in exactly one place (a missed or
// short notification, a commit that ignores range_done, ...).

#ifndef HMMREF_SOLVER_MIRROR_LEMMAS_H_
#define HMMREF_SOLVER_MIRROR_LEMMAS_H_

#include <string>
#include <vector>

#include "solver/lemma.h"
#include "solver/prove.h"

namespace hmm::solver {

// The operations' rules; each flag breaks one of them.
struct MirrorSteps {
  std::string name;
  bool initial_pt_stale = false;            // a pt starts with one entry
  bool initial_range_open = false;          // a range starts open and valid
  bool munmap_misses_last_page = false;     // notifies [addr, end - 1)
  bool mprotect_skips_downgrade = false;    // notifies only when prot gains a bit
  bool madvise_skips_notify = false;        // DONTNEED zaps without notifying
  bool mremap_skips_old_range = false;      // a move does not notify the old range
  bool fork_skips_notify = false;           // write-protects the parent silently
  bool read_fault_refills = false;          // no pte_none re-check: refills a mapped entry
  bool fault_skips_notify = false;          // a COW break / zero-page copy not notified
  bool install_over_present = false;        // DeviceEntryInstall into an occupied slot
  bool exit_skips_notify = false;           // exit tears down without notifying
  bool get_pfns_write_from_vma = false;     // HMM_PFN_WRITE from PROT_WRITE, not the entry
  bool commit_ignores_valid = false;        // installs whatever range_done returns
  bool commit_rearms_range = false;         // range_done keeps the range, valid again
  bool dmirror_fault_stores_stale = false;  // stores the entries seen before faulting

  static MirrorSteps Real();
};

enum class MirrorInv { kSubset, kValidRange };

enum class MirrorOp {
  kMunmap,
  kMprotect,
  kMadviseDontneed,
  kMremapMove,
  kFork,
  kCpuReadFault,
  kCpuWriteFault,
  kDeviceEntryInstall,
  kExit,
  kGetPfns,
  kHmmFault,
  kDmirrorCommit,
  kDmirrorFault,
};

// "InvMirrorSubsetOfCpu", "InvValidRangeMatchesCpu"; "Munmap", ...
const char* MirrorInvName(MirrorInv inv);
const char* MirrorOpName(MirrorOp op);

// LemmaInitialEstablishes<Inv>: no pt entry and no open range establish it.
LemmaResult LemmaInitialEstablishes(MirrorInv inv, const MirrorSteps& steps);

// Lemma<Op>Preserves<Inv>: both invariants before `op` imply `inv` after it.
LemmaResult LemmaPreserves(MirrorOp op, MirrorInv inv, const MirrorSteps& steps);

// If every open valid range has seen no revoking CPU change since its
// registration (ghost == 0), the same holds after every operation; a range is
// registered valid with ghost 0, and range_done returns `valid`. So range_done
// returns true only if no overlapping invalidation ran.
LemmaResult LemmaRangeDoneTrueImpliesNoOverlappingInvalidation(const MirrorSteps& steps);

// The registry entries of the lemmas above, each with its negative control.
std::vector<LemmaWithControl> MirrorLemmas();

// Issue 7's ordering lemmas (mirror_order_lemmas.cc), small schedules over one
// page. An existence claim, read inverted like LemmaV18PlacementCollides: with
// the mirror callback after a revoking CPU change (`callback_at_end`, v18's
// invalidate_range_end) some schedule has the device access the page through a
// pt entry the CPU entry no longer matches; kProved with the schedule in
// `detail` ("witness ..."), kFailed ("no stale access exists") if none does.
LemmaResult LemmaV18InvalidateAtEndAdmitsStaleDeviceMapping(bool callback_at_end);

// The sequence-count snapshot (mmu_interval_read_begin/read_retry): a commit
// whose seq equals the sample had no invalidation in its window, for any number
// of invalidations. `modulus` 0: the counter is an unbounded Int (no wrap);
// otherwise it wraps mod `modulus` (the negative control: 4, ABA after two).
LemmaResult LemmaSeqcountSnapshotHasNoAba(int modulus);

// Their registry entries (lemma.cc's Registry(), after MirrorLemmas()).
std::vector<LemmaWithControl> MirrorOrderLemmas();

}  // namespace hmm::solver

#endif  // HMMREF_SOLVER_MIRROR_LEMMAS_H_
