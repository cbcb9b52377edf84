// File: model/anon_vma.h
//
// linux-6.1 only: the part of mm/rmap.c and mm/mmap.c's VMA merging that the
// oracle can observe (docs/divergences.md D16, D17). 6.1 merges a VMA with a
// compatible neighbour after mmap, mprotect and mremap, so a fault that
// faults "the rest of the VMA" (hmm_vma_fault()) reaches across what the
// model's other profiles keep as two VMAs; and migrating a page that is
// mapped elsewhere walks its anon_vma's VMAs (try_to_migrate()), notifying
// every one of them at the page's address, whether it maps the page there or
// not. The other profiles keep no anon_vma: every function here is a no-op
// for them, except TryToMigrateWalk, which is then the page's mappings.
// Private to //model:kernel; defined in anon_vma.cc.

#ifndef HMMREF_MODEL_ANON_VMA_H_
#define HMMREF_MODEL_ANON_VMA_H_

#include <utility>
#include <vector>

#include "model/kernel.h"
#include "model/types.h"

namespace hmm::model {

// Gives the private VMA holding vpn an anon_vma if it has none: a
// compatible neighbour's whose chain is its own only, else a new one.
// Mirrors: mm/rmap.c __anon_vma_prepare(), mm/mmap.c find_mergeable_anon_vma().
void AnonVmaPrepare(State& s, Process& p, Vpn vpn);

// The page `target` names (a page or a device pfn) belongs to the anon_vma of
// the private VMA holding vpn, at vpn's linear page index, exclusively.
// Mirrors: mm/rmap.c __page_set_anon_rmap(), page_move_anon_rmap().
void SetAnonRmap(State& s, const Pte& target, const Process& p, Vpn vpn);

// A migration's new page takes the old page's rmap (folio_migrate_mapping()),
// exclusive as the old page was (the migration entry's type).
void CopyAnonRmap(State& s, const Pte& from, const Pte& to);

// Fork shares the page: it is no longer PageAnonExclusive
// (page_try_dup_anon_rmap()).
void ShareAnonRmap(State& s, const Pte& target);

// Whether the page is an anonymous page no fork shares (PageAnonExclusive).
bool AnonExclusive(const State& s, const Pte& target);

// The page is freed: its rmap goes.
void DropAnonRmap(State& s, const Pte& target);

// The child VMA's anon_vma after fork: none if the parent's has none; else
// the parent's chain plus a new anon_vma of its own.
// Mirrors: mm/rmap.c anon_vma_fork().
void AnonVmaFork(State& s, const Vma& parent, Vma* child);

// The VMA's rmap tree nodes are (re)inserted now: it was created, split,
// merged, grown or moved, or linked to its first anon_vma (vma_adjust()
// removes and re-inserts them). An rmap walk visits VMAs of equal pgoff in
// insertion order.
void RmapRelink(State& s, Vma* vma);

// The (process, address) pairs try_to_migrate() visits for the page, in its
// order, each notified: under linux-6.1 the VMAs linked to an anonymous
// page's anon_vma that cover its index (for a shmem page, those mapping its
// object's offset), by pgoff and then insertion, up to the last one that
// maps it: the walk stops once the page is mapped nowhere (folio_mapped()).
// Not at all if nothing but (pid, collected) maps it, the address
// migrate_vma's collect took it from. Otherwise (and in the other profiles)
// the page's mappings but that one.
// Mirrors: mm/rmap.c try_to_migrate(), rmap_walk_anon(), rmap_walk_file().
std::vector<std::pair<Pid, Vpn>> TryToMigrateWalk(const State& s, const Pte& target, Pid pid,
                                                  Vpn collected);

// How 6.1 merges the VMA [start, end) an operation just made or changed:
// a new mapping checks next, then prev with next's anon_vma if it merges
// with next (__mmap_region()); a changed VMA (mprotect, mremap's move)
// checks both with its own anon_vma and merges all three only if prev's and
// next's may merge (vma_merge()); a VMA mremap grew in place merges its
// extension with next on the same condition.
enum class MergeKind { kNewMapping, kChanged, kExpanded };

// Merges the VMA [start, end) with its neighbours where 6.1 would (same
// flags, same file, contiguous pgoff, compatible anon_vma).
// Mirrors: mm/mmap.c __mmap_region(), vma_merge(), is_mergeable_anon_vma().
void VmaMerge(State& s, Process& p, Vpn start, Vpn end, MergeKind kind);

}  // namespace hmm::model

#endif  // HMMREF_MODEL_ANON_VMA_H_
