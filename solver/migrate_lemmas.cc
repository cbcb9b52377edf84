// File: solver/migrate_lemmas.cc
//
// The migration lemmas (migrate_lemmas.h) over the phases of
// migrate_state.cc: two inductive ones (a claim per phase, from any state
// that satisfies the invariant), three about the whole call (the phases
// composed from any idle state), and the registry with their controls.

#include "solver/migrate_lemmas.h"

#include <functional>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "solver/lemma_text.h"
#include "solver/migrate_state.h"

namespace hmm::solver {
namespace {

using migrate::Has;
using migrate::Kind;
using migrate::MigState;
using migrate::Phase;
using migrate::SymEntry;
using migrate::World;
using text::Line;

z3::expr Same(const SymEntry& a, const SymEntry& b) {
  return a.kind == b.kind && a.page == b.page && a.write == b.write;
}

z3::expr MapsAnything(const SymEntry& e) {
  return migrate::IsKind(e.kind, Kind::kPresent) || migrate::IsKind(e.kind, Kind::kDevicePrivate);
}

// ---- Inductive lemmas: one claim per transition, from any state `before`. ----

// A claim and the state after its transition (the counterexample shows the
// states whose claim the model breaks).
struct Checked {
  std::string op;
  z3::expr holds;
  MigState after;
};

// The address `entry` and page `q` the claims are about, before; then each
// transition whose claim `m` breaks, with the entry and both pages after it.
std::string RenderSteps(const World& w, const MigState& before, const std::vector<Checked>& checked,
                        const z3::model& m) {
  const SymEntry e = migrate::At(before.cpu, w.x);
  std::string out =
      migrate::RenderAddress("entry", w, w.x, m) + migrate::RenderEntry("before.entry", w, e, m) +
      migrate::RenderPage("page", w, e.page, m) +
      migrate::RenderPageState("before.page", before, e.page, m) +
      migrate::RenderPage("q", w, w.q, m) + migrate::RenderPageState("before.q", before, w.q, m);
  for (const Checked& c : checked) {
    if (!m.eval(c.holds, true).is_false()) continue;
    out += Line("op", c.op) +
           migrate::RenderEntry("after.entry", w, migrate::At(c.after.cpu, w.x), m) +
           migrate::RenderPageState("after.page", c.after, e.page, m) +
           migrate::RenderPageState("after.q", c.after, w.q, m);
  }
  return out + migrate::RenderArguments(w, m);
}

// An inductive lemma's goal: its hypotheses, a claim per transition (each
// simplified), and a counterexample that shows the transitions it breaks.
class StepClaims {
 public:
  StepClaims(const World& w, const MigState& before) : w_(w), before_(before) {}

  void Hypothesis(Named h) { goal_.hypotheses.push_back(std::move(h)); }
  void Hypotheses(const std::vector<Named>& hs) {
    goal_.hypotheses = text::Concat(goal_.hypotheses, hs);
  }
  void Claim(const std::string& name, const std::string& op, const z3::expr& holds,
             const MigState& after) {
    const z3::expr simple = holds.simplify();
    goal_.claims.push_back({name, simple});
    checked_.push_back({op, simple, after});
  }
  // The goal; `extra` adds the transition's own parameters to a counterexample.
  Goal Done(std::function<std::string(const z3::model&)> extra = nullptr) {
    goal_.render = [w = w_, before = before_, checked = checked_, extra](const z3::model& m) {
      return RenderSteps(w, before, checked, m) + (extra ? extra(m) : "");
    };
    return goal_;
  }

 private:
  World w_;
  MigState before_;
  Goal goal_;
  std::vector<Checked> checked_;
};

Goal VmaPreservesDevicePageNeverPresent(z3::context& c, const MigrateSteps& steps) {
  const World w = migrate::MakeWorld(c);
  const MigState before = migrate::FreeState(c, "before");
  StepClaims claims(w, before);
  claims.Hypothesis(migrate::InvDevicePageNeverPresent(w, before, "before"));
  claims.Hypotheses(migrate::CallHypotheses(w, before));
  for (Phase phase : migrate::kPhases) {
    const MigState after = migrate::After(phase, w, before, steps);
    claims.Claim(
        std::string(migrate::PhaseName(phase)) + " keeps InvDevicePageNeverPresent at entry",
        migrate::PhaseName(phase), migrate::DevicePageNeverPresentAt(w, after, w.x), after);
  }
  return claims.Done();
}

Goal ToRamPreservesDevicePageNeverPresent(z3::context& c, const MigrateSteps& steps) {
  const World w = migrate::MakeWorld(c);
  const MigState before = migrate::FreeState(c, "before");
  const migrate::Fault f = migrate::MakeFault(c);
  const MigState after = migrate::AfterMigrateToRam(w, before, f, steps);
  StepClaims claims(w, before);
  claims.Hypothesis(migrate::InvDevicePageNeverPresent(w, before, "before"));
  claims.Hypotheses(migrate::FaultHypotheses(w, before, f));
  claims.Claim("MigrateToRam keeps InvDevicePageNeverPresent at entry", "MigrateToRam",
               migrate::DevicePageNeverPresentAt(w, after, w.x), after);
  return claims.Done([f](const z3::model& m) {
    return text::RenderNum("fault.addr", f.addr, m) +
           text::RenderNum("fault.new_page", f.new_page, m) +
           text::RenderBool("fault.alloc_ok", f.alloc_ok, m);
  });
}

// Outside a call nothing is collected and (InvNoMigrationEntry) no entry is a
// migration entry, so every migration entry is held; collect through the
// insertion keep that; finalize, from it, leaves no migration entry.
Goal VmaPreservesNoMigrationEntry(z3::context& c, const MigrateSteps& steps) {
  const World w = migrate::MakeWorld(c);
  const MigState before = migrate::FreeState(c, "before");
  const auto held = [&w](const MigState& s) {
    return migrate::EntryHeldAt(s, w.x) && migrate::CollectedLockedAt(s, w.q);
  };
  StepClaims claims(w, before);
  claims.Hypothesis(migrate::InvMigrationEntriesHeld(w, before, "before"));
  claims.Hypotheses(migrate::CallHypotheses(w, before));
  const MigState idle = migrate::Idle(w, before);
  claims.Claim("outside a call, InvNoMigrationEntry means every migration entry is held", "Idle",
               z3::implies(migrate::NoMigrationEntryAt(before, w.x), held(idle)), idle);
  for (Phase phase : migrate::kPhases) {
    const MigState after = migrate::After(phase, w, before, steps);
    if (phase == Phase::kFinalize) {
      claims.Claim("Finalize leaves no migration entry (InvNoMigrationEntry after)", "Finalize",
                   migrate::NoMigrationEntryAt(after, w.x), after);
    } else {
      claims.Claim(std::string(migrate::PhaseName(phase)) + " keeps every migration entry held",
                   migrate::PhaseName(phase), held(after), after);
    }
  }
  return claims.Done();
}

// ---- Lemmas about the whole call: the phases composed from an idle state. ----

// The entry at `entry` in every state of the call, the facts of the page it
// maps before (and its lock, collected and MIGRATE bits as the call goes),
// and of page `q`.
std::string RenderCall(const World& w, const std::vector<MigState>& states, const z3::model& m) {
  const SymEntry before = migrate::At(states.front().cpu, w.x);
  std::string out = migrate::RenderAddress("entry", w, w.x, m) +
                    migrate::RenderEntry("before.entry", w, before, m);
  for (size_t i = 0; i < std::size(migrate::kPhases); ++i) {
    const std::string label = migrate::PhaseLabel(migrate::kPhases[i]);
    const MigState& s = states[i + 1];
    out += migrate::RenderEntry(label + ".entry", w, migrate::At(s.cpu, w.x), m) +
           migrate::RenderPageState(label + ".page", s, before.page, m) +
           text::RenderBool(label + ".slot", Has(s.slot, w.x), m);
  }
  return out + migrate::RenderPage("page", w, before.page, m) +
         migrate::RenderPage("q", w, w.q, m) +
         migrate::RenderPageState("finalize.q", states.back(), w.q, m) +
         migrate::RenderArguments(w, m);
}

using CallClaims = std::function<std::vector<Named>(const World&, const std::vector<MigState>&)>;

// From any idle state (InvNoMigrationEntry, InvDevicePageNeverPresent,
// nothing collected), the whole call; `claims` relate its states.
Goal CallGoal(z3::context& c, const MigrateSteps& steps, const CallClaims& claims) {
  const World w = migrate::MakeWorld(c);
  const MigState before = migrate::Idle(w, migrate::FreeState(c, "before"));
  const std::vector<MigState> states = migrate::Call(w, before, steps);
  Goal g;
  g.hypotheses = text::Concat({migrate::InvNoMigrationEntry(w, before, "before"),
                               migrate::InvDevicePageNeverPresent(w, before, "before")},
                              migrate::CallHypotheses(w, before));
  for (const Named& claim : claims(w, states))
    g.claims.push_back({claim.name, claim.holds.simplify()});
  g.render = [w, states](const z3::model& m) { return RenderCall(w, states, m); };
  return g;
}

std::vector<Named> PerPageAtomicClaims(const World& w, const std::vector<MigState>& s) {
  const SymEntry old = migrate::At(s.front().cpu, w.x), now = migrate::At(s.back().cpu, w.x);
  const MigState& last = s[s.size() - 2];  // what finalize sees
  const z3::expr moved =
      Has(last.collected, old.page) && Has(last.migrate, old.page) && Has(w.dst_valid, old.page);
  const z3::expr page = z3::ite(moved, Has(w.dst, old.page), old.page);
  const z3::expr inserted = Has(s.back().slot, w.x) && MapsAnything(now) &&
                            now.page == Has(w.slot_dst, w.x) && now.write == Has(w.vma_write, w.x);
  return {{"an address that mapped a page maps exactly one page, the old one or its "
           "destination, with the same write bit",
           z3::implies(migrate::MapsPage(w, old),
                       MapsAnything(now) && now.page == page && now.write == old.write)},
          {"an empty slot keeps its entry or maps its destination, writable iff the VMA is",
           z3::implies(migrate::EmptySlot(w, old), Same(now, old) || inserted)}};
}

std::vector<Named> SkipsPinnedClaims(const World& w, const std::vector<MigState>& s) {
  const SymEntry old = migrate::At(s.front().cpu, w.x), now = migrate::At(s.back().cpu, w.x);
  const auto pinned_system = [&w](const z3::expr& page) {
    return Has(w.pinned, page) && !Has(w.is_device, page);
  };
  return {{"an address that maps a GUP-pinned system page maps it unchanged at the end",
           z3::implies(migrate::IsKind(old.kind, Kind::kPresent) && migrate::MapsPage(w, old) &&
                           pinned_system(old.page),
                       Same(now, old))},
          {"a GUP-pinned system page's src entry ends without MIGRATE",
           z3::implies(pinned_system(w.q), !Has(s.back().migrate, w.q))}};
}

std::vector<Named> OnlyPrivateAnonToDeviceClaims(const World& w, const std::vector<MigState>& s) {
  const SymEntry old = migrate::At(s.front().cpu, w.x), now = migrate::At(s.back().cpu, w.x);
  const z3::expr on_device = migrate::IsKind(now.kind, Kind::kDevicePrivate);
  return {{"no address that mapped a shmem page maps device memory at the end",
           z3::implies(migrate::IsKind(old.kind, Kind::kPresent) && Has(w.shared, old.page),
                       !on_device)},
          {"an empty slot gets device memory only in a private anonymous VMA",
           z3::implies(migrate::EmptySlot(w, old) && on_device, Has(w.vma_anon, w.x))},
          {"a shmem page with a device destination ends without MIGRATE",
           z3::implies(Has(w.shared, w.q) && Has(w.is_device, Has(w.dst, w.q)),
                       !Has(s.back().migrate, w.q))}};
}

// ---- The registry. ----

using MigrateBreak = Break<MigrateSteps>;

Goal PerPageAtomic(z3::context& c, const MigrateSteps& steps) {
  return CallGoal(c, steps, PerPageAtomicClaims);
}

Goal SkipsPinned(z3::context& c, const MigrateSteps& steps) {
  return CallGoal(c, steps, SkipsPinnedClaims);
}

Goal OnlyPrivateAnonToDevice(z3::context& c, const MigrateSteps& steps) {
  return CallGoal(c, steps, OnlyPrivateAnonToDeviceClaims);
}

struct LemmaInfo {
  MigrateLemma which;
  const char* name;
  const char* invariant;
  const char* statement;
  Goal (*build)(z3::context&, const MigrateSteps&);
  MigrateBreak control;
};

constexpr LemmaInfo kLemmas[] = {
    {MigrateLemma::kVmaPreservesDevicePageNeverPresent,
     "LemmaMigrateVmaPreservesInvDevicePageNeverPresent",
     "InvDevicePageNeverPresent",
     "InvDevicePageNeverPresent (no present CPU entry names a device page) is inductive over "
     "every phase of migrate_vma: collect and unmap install migration entries, the pin check "
     "restores a pinned page's entries, the pages phase changes no entry, and an inserted "
     "empty slot and finalize map a device page by a device-private entry. Mirrors: "
     "mm/migrate_device.c migrate_vma_collect_pmd(), migrate_vma_unmap(), migrate_vma_pages(), "
     "migrate_vma_insert_page(), migrate_vma_finalize() -> remove_migration_ptes().",
     VmaPreservesDevicePageNeverPresent,
     {&MigrateSteps::finalize_maps_present,
      "a finalize that maps every new page by a present PTE, a device page too"}},
    {MigrateLemma::kToRamPreservesDevicePageNeverPresent,
     "LemmaMigrateToRamPreservesInvDevicePageNeverPresent",
     "InvDevicePageNeverPresent",
     "InvDevicePageNeverPresent is kept by the CPU fault's migrate_to_ram: every "
     "device-private entry of the faulting page, in every process, becomes a present PTE of "
     "a new system page with the same write bit, or nothing changes (SIGBUS). Mirrors: "
     "lib/test_hmm.c dmirror_devmem_fault(), mm/memory.c do_swap_page().",
     ToRamPreservesDevicePageNeverPresent,
     {&MigrateSteps::migrate_to_ram_maps_device,
      "a migrate-back that maps the device page itself present"}},
    {MigrateLemma::kVmaPreservesNoMigrationEntry,
     "LemmaMigrateVmaPreservesInvNoMigrationEntry",
     "InvNoMigrationEntry",
     "InvNoMigrationEntry before migrate_vma implies it after: every migration entry's page is "
     "collected and locked (and every collected page locked) outside a call, after collect, "
     "unmap, the pin check, the pages phase and the insertion; finalize rewrites every "
     "migration entry of every collected page, MIGRATE or not. Mirrors: mm/migrate_device.c "
     "migrate_vma_collect_pmd(), migrate_vma_unmap(), migrate_vma_finalize().",
     VmaPreservesNoMigrationEntry,
     {&MigrateSteps::finalize_skips_failed,
      "a finalize that rewrites only the pages whose MIGRATE survived (skips the failed "
      "ones)"}},
    {MigrateLemma::kVmaPerPageAtomic,
     "LemmaMigrateVmaSatisfiesInvMigrationPerPageAtomic",
     "InvMigrationPerPageAtomic",
     "InvMigrationPerPageAtomic: after the whole call, from any idle state, every address that "
     "mapped a page maps exactly one page, the old one or its destination (if MIGRATE "
     "survived), with the same write bit; an empty slot keeps its entry or maps its "
     "destination, writable iff the VMA is. Mirrors: mm/migrate_device.c "
     "migrate_vma_insert_page(), migrate_vma_finalize() -> remove_migration_pte().",
     PerPageAtomic,
     {&MigrateSteps::finalize_sets_write, "a finalize that maps every new page writable"}},
    {MigrateLemma::kVmaSkipsPinned,
     "LemmaMigrateVmaSatisfiesInvMigrationSkipsPinned",
     "InvMigrationSkipsPinned",
     "InvMigrationSkipsPinned: a GUP-pinned system page fails the pin check, so its src entry "
     "ends without MIGRATE and every address that mapped it maps it unchanged at the end. "
     "Mirrors: mm/migrate_device.c migrate_vma_check_page(), migrate_vma_unmap().",
     SkipsPinned,
     {&MigrateSteps::pin_check_ignores_pins, "a pin check that ignores GUP pins"}},
    {MigrateLemma::kVmaOnlyPrivateAnonToDevice,
     "LemmaMigrateVmaSatisfiesInvMigrationOnlyPrivateAnonToDevice",
     "InvMigrationOnlyPrivateAnonToDevice",
     "InvMigrationOnlyPrivateAnonToDevice: a shmem page headed for a device page loses "
     "MIGRATE, so no address that mapped a shmem page maps device memory at the end; an empty "
     "slot gets device memory only in a private anonymous VMA. Mirrors: mm/migrate_device.c "
     "migrate_vma_pages(), migrate_vma_insert_page().",
     OnlyPrivateAnonToDevice,
     {&MigrateSteps::pages_ignores_shared,
      "a pages phase that lets a shmem page move to a device page"}},
};

const LemmaInfo& Info(MigrateLemma which) {
  for (const LemmaInfo& info : kLemmas) {
    if (info.which == which) return info;
  }
  return kLemmas[0];
}

}  // namespace

MigrateSteps MigrateSteps::Real() { return {"docs/migrate.md"}; }

const char* MigrateLemmaName(MigrateLemma which) { return Info(which).name; }

LemmaResult LemmaMigrate(MigrateLemma which, const MigrateSteps& steps) {
  const LemmaInfo& info = Info(which);
  return Prove(info.name, [&](z3::context& c) { return info.build(c, steps); });
}

std::vector<LemmaWithControl> MigrateLemmas() {
  std::vector<LemmaWithControl> out;
  for (const LemmaInfo& info : kLemmas) {
    out.push_back(EntryWithBreak<MigrateSteps>(
        info.name, info.statement, info.invariant,
        [which = info.which](const MigrateSteps& s) { return LemmaMigrate(which, s); },
        info.control));
  }
  return out;
}

}  // namespace hmm::solver
