// File: model/invariants.h
//
// The named invariants of the model state, Inv<Subject><Property>, one
// property each. Every model::Kernel operation preserves all of them; props/
// checks them after every step and solver/ names its lemmas after them.
//
// Each invariant returns its violations, one line each, naming the pid, vpn,
// page or object and both values that disagree ("pid 1 vpn 0x10000 page 3:
// pte.write=1 vma.prot=r"); an empty vector means it holds.
// CheckAllInvariants() prefixes each line with the invariant's name.
//
// "PTE" below means a present entry (a page or the zero page); a device-private
// entry is a "device entry" and has invariants of its own (docs/devmem.md).

#ifndef HMMREF_MODEL_INVARIANTS_H_
#define HMMREF_MODEL_INVARIANTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "model/kernel.h"

namespace hmm::model {

using Violations = std::vector<std::string>;

// Each process's VMAs are keyed by their start, non-empty, end at or below
// kMaxVpn and pairwise disjoint.
Violations InvVmaSortedDisjoint(const State& s);
// A shared VMA maps an existing object; a private VMA has object 0, pgoff 0.
Violations InvVmaObjectExists(const State& s);
// Every PTE lies inside a VMA of its process.
Violations InvPteInsideVma(const State& s);
// A writable PTE lies in a VMA with kProtWrite.
Violations InvPteWriteImpliesVmaWrite(const State& s);
// A zero-page PTE is never writable and names no page (page 0).
Violations InvZeroPageNeverWritable(const State& s);
// A private page mapped by two or more PTEs is writable through none of them.
Violations InvCowSharedPageReadOnly(const State& s);
// A PTE of a shared VMA maps the object's page at pgoff + offset, never the
// zero page.
Violations InvSharedPteMatchesObject(const State& s);
// No page is both held by a shared object and mapped by a private VMA's PTE.
Violations InvPrivateAndSharedPagesDisjoint(const State& s);
// A page fills at most one slot (object, pgoff) over all shared objects.
Violations InvObjectPageUnique(const State& s);
// Every page in `pages` is referenced by a PTE, an object or a pin, and every
// referenced page exists.
Violations InvPageReachable(const State& s);
// A pinned page is mapped by at most one PTE of a private VMA.
Violations InvPinnedPrivatePageExclusive(const State& s);
// Each pin holds between 1 and kMaxPinPages pages.
Violations InvPinWithinLimit(const State& s);
// Every shared object is mapped by some VMA: objects with no VMA do not exist.
Violations InvObjectMapped(const State& s);
// At most ram_pages pages exist (the zero page excluded).
Violations InvRamWithinCapacity(const State& s, uint64_t ram_pages);
// At most kMaxProcesses processes are live.
Violations InvProcessCountWithinLimit(const State& s);
// Every pid, pin, page, object, devmem, mirror and range id in use (devmem ids
// in the event log included) is non-zero and below its next_* counter, so a
// new id never names an existing thing.
Violations InvIdsBelowNext(const State& s);

// --- Device memory (docs/devmem.md; research invariants 1-10) ---

// Resources are keyed by start, non-empty and pairwise disjoint (invariant 9).
Violations InvResourcesDisjoint(const State& s);
// Each live devmem has exactly one device resource, [first_pfn, first_pfn +
// npages) in bytes, and each device resource belongs to a live devmem.
Violations InvDevmemMatchesResource(const State& s);
// A device resource is section-aligned and lies where its profile places it:
// default, in [2^max_physmem_bits, 2^(12 + kDevicePfnBits)); v18, below
// 2^max_physmem_bits.
Violations InvDeviceRangePlacement(const State& s);
// A device entry names no RAM page, and a page of a live devmem that has been
// allocated; so a device page outlives its entries (refcount > 1).
Violations InvDeviceEntryTargetsLivePage(const State& s);
// A device entry lies inside a private VMA of its process (invariant 28: only
// anonymous private memory goes to device memory).
Violations InvDeviceEntryPrivateVma(const State& s);
// A writable device entry lies in a VMA with kProtWrite (invariant 2).
Violations InvDeviceEntryWriteImpliesVmaWrite(const State& s);
// For every page of a live devmem: page_free events == allocations - 1 while
// the page is held or mapped, == allocations when it is free (invariant 6).
Violations InvPageFreeOncePerAllocation(const State& s);
// No present PTE names a device pfn: a device page is mapped only by device
// entries, never present to the CPU (invariant 1; migration keeps it,
// docs/migrate.md). The model has no migration-entry kind, so it needs no
// InvNoMigrationEntry.
Violations InvDevicePageNeverPresent(const State& s);

// --- Mirroring (docs/mirror.md; research invariants 11-20) ---

// A mirror's pid was handed out; the pt of a mirror of an exited process is
// empty (11, 20).
Violations InvMirrorOfLiveProcess(const State& s);
// Every pt entry's target is what the CPU maps at that address (page, zero
// page or device pfn), and it is writable only if the CPU entry is (11).
Violations InvMirrorSubsetOfCpu(const State& s);
// Every VALID entry of a valid range names what the CPU maps at that address,
// with WRITE only if the CPU entry is writable (14, 16).
Violations InvValidRangeMatchesCpu(const State& s);
// A valid range lies inside one VMA of its process (14). One VMA as the kernel
// has it: hmmref's adjacent pieces that an unchanged mprotect split off (same
// prot and kind, a shared piece continuing its object) count as one.
Violations InvRangeWithinOneVma(const State& s);
// Every open range belongs to a registered mirror (15).
Violations InvRangeOfLiveMirror(const State& s);

// One line per violation of any invariant: "InvName: detail".
std::vector<std::string> CheckAllInvariants(const State& s, uint64_t ram_pages);

struct InvariantInfo {
  const char* name;       // "InvPteInsideVma"
  const char* statement;  // one sentence
  const char* source;     // the kernel file:function it comes from
};

// Every invariant above, in the order CheckAllInvariants checks them.
const std::vector<InvariantInfo>& AllInvariants();

}  // namespace hmm::model

#endif  // HMMREF_MODEL_INVARIANTS_H_
