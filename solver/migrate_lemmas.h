// File: solver/migrate_lemmas.h
//
// Lemmas about migrate_vma (docs/migrate.md), over a symbolic world of CPU
// entries (migrate_state.h): every address of every process maps none, a
// present page, a device-private entry or a migration entry {page, write};
// every page is or is not a device page, shmem, GUP-pinned, locked; the call
// holds a collected set of pages, each with its src entry's MIGRATE flag, and
// its collected empty slots. The phases (collect, unmap, pin check, pages,
// insertion of empty slots, finalize) are transitions of that state, and the
// CPU fault's migrate_to_ram is one more.
//
// Two lemmas are inductive in hyperkernel's style, one claim per phase over
// any state that satisfies the invariant: InvDevicePageNeverPresent, and the
// strengthening of InvNoMigrationEntry (every migration entry's page is
// collected and locked; finalize rewrites them all). The other three are
// transition properties of the whole call, the phases composed from any idle
// state: InvMigrationPerPageAtomic, InvMigrationSkipsPinned and
// InvMigrationOnlyPrivateAnonToDevice.
//
// Every lemma takes a MigrateSteps; Real() is docs/migrate.md, and each
// negative control passes a copy broken in exactly one place.

#ifndef HMMREF_SOLVER_MIGRATE_LEMMAS_H_
#define HMMREF_SOLVER_MIGRATE_LEMMAS_H_

#include <string>
#include <vector>

#include "solver/lemma.h"
#include "solver/prove.h"

namespace hmm::solver {

// The phases' rules; each flag breaks one of them.
struct MigrateSteps {
  std::string name;
  bool collect_skips_lock = false;          // collected pages are not locked
  bool unmap_ignores_collected = false;     // unmaps any page with MIGRATE, collected or not
  bool pin_check_ignores_pins = false;      // a GUP-pinned page passes the pin check
  bool pin_check_keeps_entries = false;     // a pinned page is released, its entries left
  bool pages_ignores_shared = false;        // shmem may move to a device page
  bool insert_maps_present = false;         // an empty slot gets a present PTE, device page or not
  bool finalize_maps_present = false;       // every new page mapped by a present PTE
  bool finalize_skips_failed = false;       // only pages whose MIGRATE survived are rewritten
  bool finalize_sets_write = false;         // every rewritten entry is writable
  bool migrate_to_ram_maps_device = false;  // the fault maps the device page present

  static MigrateSteps Real();
};

enum class MigrateLemma {
  kVmaPreservesDevicePageNeverPresent,
  kToRamPreservesDevicePageNeverPresent,
  kVmaPreservesNoMigrationEntry,
  kVmaPerPageAtomic,
  kVmaSkipsPinned,
  kVmaOnlyPrivateAnonToDevice,
};

// "LemmaMigrateVmaPreservesInvDevicePageNeverPresent", ...
const char* MigrateLemmaName(MigrateLemma which);

// Runs lemma `which` over `steps`.
LemmaResult LemmaMigrate(MigrateLemma which, const MigrateSteps& steps);

// The registry entries of the lemmas above, each with its negative control
// (lemma.cc's Registry(), after MirrorOrderLemmas()).
std::vector<LemmaWithControl> MigrateLemmas();

}  // namespace hmm::solver

#endif  // HMMREF_SOLVER_MIGRATE_LEMMAS_H_
