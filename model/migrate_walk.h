// File: model/migrate_walk.h
//
// What the migration core (migrate.cc) and the dummy device's migration
// (dmirror_migrate.cc) share: a page named as a CPU entry's target, the
// mappings of a page over every process, and remove_migration_ptes(). The
// model has no migration-entry kind: while a migration runs, nothing but the
// driver's callbacks runs, so a page's "migration entries" are simply its
// mappings, rewritten at the end. Private to //model:kernel; defined in
// migrate.cc.

#ifndef HMMREF_MODEL_MIGRATE_WALK_H_
#define HMMREF_MODEL_MIGRATE_WALK_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "model/kernel.h"
#include "model/types.h"

namespace hmm::model {

// A system page as the target of an entry (write false).
Pte PageTarget(PageId page);

// A device page as the target of an entry (write false).
Pte DeviceTarget(uint64_t pfn);

// Every CPU entry, over all processes in pid order and each in vpn order,
// that names target's page or device pfn.
std::vector<std::pair<Pid, Vpn>> MappingsOf(const State& s, const Pte& target);

// Every CPU entry naming old_target's page or device pfn names new_target's
// instead, with its write bit kept: a device-private entry if the new page is
// a device page, else a present PTE (invariant 21).
// Mirrors: mm/migrate.c remove_migration_ptes(), remove_migration_pte().
void RemoveMigrationPtes(State& s, const Pte& old_target, const Pte& new_target);

}  // namespace hmm::model

#endif  // HMMREF_MODEL_MIGRATE_WALK_H_
