// File: solver/migrate_state.h
//
// The symbolic state of the migration lemmas (docs/migrate.md), internal to
// //solver:lemmas:
//
// - the CPU entries: address -> {kind, page, write}, where an address is any
//   entry of any process (an opaque (pid, vpn) key) and the kind is none,
//   present (a system page or the zero page), device-private or migration;
// - per page: the page lock, whether the call collected it (holds its
//   reference and lock) and its src entry's MIGRATE flag (a page is collected
//   once, by its trylock, so MIGRATE is a per-page flag);
// - per address: a collected empty slot whose MIGRATE survives.
//
// What no phase changes is the World: per page is_device, shared (shmem or
// any page with a mapping), pinned (GUP) and owned (by the call's `owner`);
// per address whether it is in [start, end) and its VMA's write and private
// anonymous bits; the call's selection; and every choice the kernel or the
// driver makes, as arrays: which pages collect takes (trylock), the driver's
// destinations, a failed struct-page move. A phase's after-state is lambdas
// over the before-state (mirror_state.h's encoding: claims are simplified,
// which beta-reduces every lambda to an ite).

#ifndef HMMREF_SOLVER_MIGRATE_STATE_H_
#define HMMREF_SOLVER_MIGRATE_STATE_H_

#include <z3++.h>

#include <cstdint>
#include <string>
#include <vector>

#include "solver/migrate_lemmas.h"
#include "solver/prove.h"

namespace hmm::solver::migrate {

constexpr unsigned kAddrBits = 64;  // an opaque (pid, vpn) key
constexpr unsigned kPageBits = 64;  // page ids and device pfns
constexpr unsigned kKindBits = 2;

enum class Kind : unsigned { kNone = 0, kPresent = 1, kDevicePrivate = 2, kMigration = 3 };

// array[index]: a table's entry, a page's or an address's fact.
z3::expr Has(const z3::expr& array, const z3::expr& index);
z3::expr KindVal(z3::context& c, Kind k);
z3::expr IsKind(const z3::expr& kind, Kind k);

// A CPU entry; as a table, each field is an array over addresses.
struct SymEntry {
  z3::expr kind, page, write;
};
SymEntry At(const SymEntry& table, const z3::expr& addr);

// What the phases change.
struct MigState {
  SymEntry cpu;        // address -> entry
  z3::expr locked;     // page -> its lock is held
  z3::expr collected;  // page -> the call holds it
  z3::expr migrate;    // page -> its src entry has MIGRATE
  z3::expr slot;       // address -> a collected empty slot with MIGRATE
};

struct World {
  z3::expr is_device, shared, pinned, owned;  // page -> bool
  z3::expr zero_page;
  z3::expr in_range, vma_write, vma_anon;  // address -> bool
  z3::expr select_system, select_device;
  z3::expr took;                      // page -> collect selects it and its trylock succeeds
  z3::expr dst, dst_valid;            // page -> alloc_and_copy's destination
  z3::expr slot_dst, slot_dst_valid;  // address -> an empty slot's destination
  z3::expr move_fails;                // page -> migrate_page() fails (refcount freeze)
  z3::expr a, p;                      // bound: any address, any page
  z3::expr x, q;                      // free: the address and the page a claim is about
};
World MakeWorld(z3::context& c);

// Any state, its arrays named "<prefix>.*".
MigState FreeState(z3::context& c, const std::string& prefix);
// Outside a call: `s`'s entries and locks; nothing collected, no MIGRATE, no slot.
MigState Idle(const World& w, const MigState& s);

// The entry finalize (or an insertion, or a restore) builds for `page`: a
// device-private entry for a device page, else a present PTE.
SymEntry Mapped(const World& w, const z3::expr& page, const z3::expr& write);
// The entry maps a page collect could take (not the zero page); or it is an
// empty slot (none or the zero page).
z3::expr MapsPage(const World& w, const SymEntry& e);
z3::expr EmptySlot(const World& w, const SymEntry& e);

enum class Phase { kCollect, kUnmap, kPinCheck, kPages, kInsertEmptySlots, kFinalize };
constexpr Phase kPhases[] = {Phase::kCollect,          Phase::kUnmap,
                             Phase::kPinCheck,         Phase::kPages,
                             Phase::kInsertEmptySlots, Phase::kFinalize};
const char* PhaseName(Phase phase);   // "Collect", ...
const char* PhaseLabel(Phase phase);  // "collect", ...: a state's name in counterexamples

MigState After(Phase phase, const World& w, const MigState& s, const MigrateSteps& steps);
// What the arrays of choices may hold, for a call that collects from `before`.
std::vector<Named> CallHypotheses(const World& w, const MigState& before);
// The whole call: [before, after collect, ..., after finalize].
std::vector<MigState> Call(const World& w, const MigState& before, const MigrateSteps& steps);

// The CPU fault's migrate_to_ram on the device-private entry at `addr`.
struct Fault {
  z3::expr addr, new_page, alloc_ok;
};
Fault MakeFault(z3::context& c);
std::vector<Named> FaultHypotheses(const World& w, const MigState& before, const Fault& f);
MigState AfterMigrateToRam(const World& w, const MigState& s, const Fault& f,
                           const MigrateSteps& steps);

// The invariants at one address or page, and as foralls named for `state`.
z3::expr DevicePageNeverPresentAt(const World& w, const MigState& s, const z3::expr& addr);
z3::expr NoMigrationEntryAt(const MigState& s, const z3::expr& addr);
// A migration entry's page is collected and locked; a collected page is locked.
z3::expr EntryHeldAt(const MigState& s, const z3::expr& addr);
z3::expr CollectedLockedAt(const MigState& s, const z3::expr& page);
Named InvDevicePageNeverPresent(const World& w, const MigState& s, const std::string& state);
Named InvNoMigrationEntry(const World& w, const MigState& s, const std::string& state);
Named InvMigrationEntriesHeld(const World& w, const MigState& s, const std::string& state);

// "field = value" lines: an entry (and whether its page is a device page); a page's fixed facts and
// the driver's choices for it; its lock, collected and MIGRATE bits in `s`; an address's facts; the
// call's arguments.
std::string KindName(uint64_t kind);
std::string RenderEntry(const std::string& name, const World& w, const SymEntry& e,
                        const z3::model& m);
std::string RenderPage(const std::string& name, const World& w, const z3::expr& page,
                       const z3::model& m);
std::string RenderPageState(const std::string& name, const MigState& s, const z3::expr& page,
                            const z3::model& m);
std::string RenderAddress(const std::string& name, const World& w, const z3::expr& addr,
                          const z3::model& m);
std::string RenderArguments(const World& w, const z3::model& m);

}  // namespace hmm::solver::migrate

#endif  // HMMREF_SOLVER_MIGRATE_STATE_H_
