// File: props/migrate_checks.h
//
// The transition properties of migration (docs/migrate.md, "Invariants"):
// what every step that moves pages between system and device memory must
// preserve, stated over the model's state just before and just after the
// step. The runner (props/runner.h) keeps a copy of the model's state before
// each migration step (IsMigrationStep) and fails the step with the property's
// name when one is violated. Refinement (Abstract(impl) == model) carries
// them to the impl; these check the model itself.
//
//   InvMigrationPerPageAtomic: every address of every process that had an
//     entry still has one, with the same write bit, naming the old page or a
//     new one (a page that did not exist before the step, a device page the
//     step allocated); all mappings of one old page name the same page after,
//     and no two old pages (or filled empty slots) become one.
//   InvMigrationPreservesBytes: the bytes readable at every address are
//     unchanged (a present page's bytes, a device page's data, the zero page's
//     or, with no entry, zeros or the shared object's page).
//   InvMigrationSkipsPinned: a pinned page stays mapped wherever it was.
//   InvMigrationOnlyPrivateAnonToDevice: no device entry lies in a shared VMA
//     after the step, and every shared object keeps its pages.

#ifndef HMMREF_PROPS_MIGRATE_CHECKS_H_
#define HMMREF_PROPS_MIGRATE_CHECKS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "model/kernel.h"
#include "props/op.h"

namespace hmm::props {

using Violations = std::vector<std::string>;

// The pages of one process that a step stores to or write-faults on its own
// account (a CPU write or pin, a device write, a write fault): there a store
// changes bytes (also at the other mappings of those pages' shared slots) and
// a COW break or a write upgrade changes write bits and page identity, so the
// properties leave those to the step's own contract.
struct StepOwnPages {
  uint64_t pid = 0;
  uint64_t first = 0;  // vpns [first, end); empty when first == end
  uint64_t end = 0;
  bool stores = false;       // bytes change
  bool write_fault = false;  // write bits may change, pages may be replaced

  bool Holds(uint64_t p, uint64_t vpn) const { return p == pid && vpn >= first && vpn < end; }
};

// Whether `op` is a migration step on the model's state `before`:
// migrate_to_dev, migrate_to_sys and release always; a CPU read, write or pin
// or an hmm_fault whose range has a device entry of its process
// (migrate_to_ram); a dread or dwrite whose range has a device entry of
// another device than the mirror's (the dummy device's fault moves it back).
bool IsMigrationStep(const Op& op, const model::State& before);

// The pages `op` stores to or write-faults itself; none for the others.
StepOwnPages OwnPagesOf(const Op& op, const model::State& before);

// Each returns one line per violation, naming the pid and vpn (or the page,
// the object) and both sides; empty when the property holds.
Violations InvMigrationPerPageAtomic(const model::State& before, const model::State& after,
                                     const StepOwnPages& own);
Violations InvMigrationPreservesBytes(const model::State& before, const model::State& after,
                                      const StepOwnPages& own);
Violations InvMigrationSkipsPinned(const model::State& before, const model::State& after);
Violations InvMigrationOnlyPrivateAnonToDevice(const model::State& before,
                                               const model::State& after);

// Every property above for the step `op` took from `before` to `after`, each
// line prefixed with its name ("InvMigrationPreservesBytes: pid 1 vpn ...").
Violations CheckMigrationStep(const Op& op, const model::State& before,
                              const model::State& after);

}  // namespace hmm::props

#endif  // HMMREF_PROPS_MIGRATE_CHECKS_H_
