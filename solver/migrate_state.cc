// File: solver/migrate_state.cc
//
// The symbolic migration state (migrate_state.h): the arrays, the phases of
// migrate_vma and the CPU fault's migrate_to_ram as transitions, the
// invariants at one address or page, and the counterexample lines.

#include "solver/migrate_state.h"

#include <utility>

#include "solver/lemma_text.h"

namespace hmm::solver::migrate {
namespace {

using text::Line;
using text::RenderBool;
using text::RenderNum;
using text::U64;

z3::expr AddrArray(z3::context& c, const std::string& name, const z3::sort& to) {
  return c.constant(name.c_str(), c.array_sort(c.bv_sort(kAddrBits), to));
}

z3::expr PageArray(z3::context& c, const std::string& name, const z3::sort& to) {
  return c.constant(name.c_str(), c.array_sort(c.bv_sort(kPageBits), to));
}

SymEntry Entry(Kind kind, const z3::expr& page, const z3::expr& write) {
  return {KindVal(page.ctx(), kind), page, write};
}

SymEntry IteEntry(const z3::expr& cond, const SymEntry& a, const SymEntry& b) {
  return {z3::ite(cond, a.kind, b.kind), z3::ite(cond, a.page, b.page),
          z3::ite(cond, a.write, b.write)};
}

SymEntry LambdaEntry(const z3::expr& addr, const SymEntry& e) {
  return {z3::lambda(addr, e.kind), z3::lambda(addr, e.page), z3::lambda(addr, e.write)};
}

// The array false at every index of `bound`'s sort (a constant array: a
// lambda with a constant body makes Z3 4.8.12 corrupt its term table).
z3::expr Nowhere(const z3::expr& bound) {
  return z3::const_array(bound.get_sort(), bound.ctx().bool_val(false));
}

// `s` with the entry at every address `a` replaced by `to` where `cond` holds.
MigState Rewritten(const World& w, const MigState& s, const z3::expr& cond, const SymEntry& to) {
  MigState out = s;
  out.cpu = LambdaEntry(w.a, IteEntry(cond, to, At(s.cpu, w.a)));
  return out;
}

// Mirrors: mm/migrate_device.c migrate_vma_collect_pmd() (6.1; 4.14
// mm/migrate.c): a taken page's entry in the range becomes a migration entry
// with its write bit (the fast path: trylock, unmap, LOCKED), and the page is
// collected with MIGRATE; an empty slot (none or the zero page) of a private
// anonymous VMA is taken with MIGRATE and no page.
MigState Collect(const World& w, const MigState& s, const MigrateSteps& steps) {
  const SymEntry e = At(s.cpu, w.a);
  const z3::expr in = Has(w.in_range, w.a);
  const z3::expr takes = in && MapsPage(w, e) && Has(w.took, e.page);
  MigState out = Rewritten(w, s, takes, Entry(Kind::kMigration, e.page, e.write));
  const z3::expr took = Has(w.took, w.p);
  out.collected = z3::lambda(w.p, Has(s.collected, w.p) || took);
  if (!steps.collect_skips_lock) out.locked = z3::lambda(w.p, Has(s.locked, w.p) || took);
  out.migrate = z3::lambda(w.p, Has(s.migrate, w.p) || took);
  const z3::expr empty = in && w.select_system && Has(w.vma_anon, w.a) && EmptySlot(w, e);
  out.slot = z3::lambda(w.a, Has(s.slot, w.a) || empty);
  return out;
}

// Mirrors: migrate_vma_unmap() -> try_to_migrate() (4.14: try_to_unmap(
// TTU_MIGRATION)): every other mapping of a collected page with MIGRATE, in
// any process, becomes a migration entry.
MigState Unmap(const World& w, const MigState& s, const MigrateSteps& steps) {
  const SymEntry e = At(s.cpu, w.a);
  const z3::expr held =
      steps.unmap_ignores_collected ? w.a.ctx().bool_val(true) : Has(s.collected, e.page);
  const z3::expr unmaps = MapsPage(w, e) && held && Has(s.migrate, e.page);
  return Rewritten(w, s, unmaps, Entry(Kind::kMigration, e.page, e.write));
}

// Mirrors: migrate_vma_unmap()'s migrate_vma_check_page() (a device-private
// page always passes, 4.14's special case): a collected system page with a
// GUP pin loses MIGRATE, remove_migration_ptes(page, page) restores every
// migration entry of it, and it is unlocked and released.
MigState PinCheck(const World& w, const MigState& s, const MigrateSteps& steps) {
  z3::context& c = w.a.ctx();
  const auto fails = [&](const z3::expr& page) {
    if (steps.pin_check_ignores_pins) return c.bool_val(false);
    return Has(s.collected, page) && Has(s.migrate, page) && Has(w.pinned, page) &&
           !Has(w.is_device, page);
  };
  const SymEntry e = At(s.cpu, w.a);
  const z3::expr restores = IsKind(e.kind, Kind::kMigration) && fails(e.page) &&
                            c.bool_val(!steps.pin_check_keeps_entries);
  MigState out = Rewritten(w, s, restores, Mapped(w, e.page, e.write));
  const auto released = [&](const z3::expr& table) {
    return z3::lambda(w.p, Has(table, w.p) && !fails(w.p));
  };
  out.collected = released(s.collected);
  out.locked = released(s.locked);
  out.migrate = released(s.migrate);
  return out;
}

// Mirrors: migrate_vma_pages(): no destination, a failed migrate_page(), or
// a page with a mapping (shmem) headed for device-private memory clears
// MIGRATE; no entry changes.
MigState Pages(const World& w, const MigState& s, const MigrateSteps& steps) {
  z3::expr ok = Has(w.dst_valid, w.p) && !Has(w.move_fails, w.p);
  if (!steps.pages_ignores_shared)
    ok = ok && !(Has(w.shared, w.p) && Has(w.is_device, Has(w.dst, w.p)));
  MigState out = s;
  out.migrate = z3::lambda(w.p, Has(s.migrate, w.p) && ok);
  return out;
}

// Mirrors: migrate_vma_pages() -> migrate_vma_insert_page(): an empty slot
// with a destination, in an anonymous VMA, whose entry is still none or the
// zero page, maps the new page writable iff the VMA is; any other loses MIGRATE.
MigState InsertEmptySlots(const World& w, const MigState& s, const MigrateSteps& steps) {
  const SymEntry e = At(s.cpu, w.a);
  const z3::expr inserts =
      Has(s.slot, w.a) && Has(w.slot_dst_valid, w.a) && Has(w.vma_anon, w.a) && EmptySlot(w, e);
  const z3::expr page = Has(w.slot_dst, w.a), write = Has(w.vma_write, w.a);
  const SymEntry fresh =
      steps.insert_maps_present ? Entry(Kind::kPresent, page, write) : Mapped(w, page, write);
  MigState out = Rewritten(w, s, inserts, fresh);
  out.slot = z3::lambda(w.a, inserts);
  return out;
}

// Mirrors: migrate_vma_finalize(): a collected page's new page is its
// destination if MIGRATE survived, else the page itself;
// remove_migration_ptes(page, newpage) rewrites every migration entry of it
// to an entry for the new page with the same write bit; the page is
// unlocked and released.
MigState Finalize(const World& w, const MigState& s, const MigrateSteps& steps) {
  z3::context& c = w.a.ctx();
  const SymEntry e = At(s.cpu, w.a);
  z3::expr rewrites = IsKind(e.kind, Kind::kMigration) && Has(s.collected, e.page);
  if (steps.finalize_skips_failed) rewrites = rewrites && Has(s.migrate, e.page);
  const z3::expr moved = Has(s.migrate, e.page) && Has(w.dst_valid, e.page);
  const z3::expr page = z3::ite(moved, Has(w.dst, e.page), e.page);
  const z3::expr write = steps.finalize_sets_write ? c.bool_val(true) : e.write;
  const SymEntry fresh =
      steps.finalize_maps_present ? Entry(Kind::kPresent, page, write) : Mapped(w, page, write);
  MigState out = Rewritten(w, s, rewrites, fresh);
  out.collected = Nowhere(w.p);
  out.locked = z3::lambda(w.p, Has(s.locked, w.p) && !Has(s.collected, w.p));
  return out;
}

// An address's entries hold at every address: a forall that fires on `s`'s kind.
z3::expr EveryAddress(const World& w, const MigState& s, const z3::expr& body) {
  return ForallWhere({w.a}, {Has(s.cpu.kind, w.a)}, body);
}

}  // namespace

z3::expr Has(const z3::expr& array, const z3::expr& index) { return z3::select(array, index); }

z3::expr KindVal(z3::context& c, Kind k) { return c.bv_val(static_cast<unsigned>(k), kKindBits); }

z3::expr IsKind(const z3::expr& kind, Kind k) { return kind == KindVal(kind.ctx(), k); }

SymEntry At(const SymEntry& t, const z3::expr& addr) {
  return {Has(t.kind, addr), Has(t.page, addr), Has(t.write, addr)};
}

World MakeWorld(z3::context& c) {
  const auto page_bits = [&c](const std::string& name) {
    return PageArray(c, name, c.bool_sort());
  };
  const auto addr_bits = [&c](const std::string& name) {
    return AddrArray(c, name, c.bool_sort());
  };
  const z3::sort page = c.bv_sort(kPageBits);
  return {page_bits("page.is_device"),
          page_bits("page.shared"),
          page_bits("page.pinned"),
          page_bits("page.owned"),
          c.bv_const("zero_page", kPageBits),
          addr_bits("addr.in_range"),
          addr_bits("vma.write"),
          addr_bits("vma.private_anon"),
          c.bool_const("select.system"),
          c.bool_const("select.device_private"),
          page_bits("collect.took"),
          PageArray(c, "driver.dst", page),
          page_bits("driver.dst_valid"),
          AddrArray(c, "driver.slot_dst", page),
          addr_bits("driver.slot_dst_valid"),
          page_bits("pages.move_fails"),
          c.bv_const("a", kAddrBits),
          c.bv_const("p", kPageBits),
          c.bv_const("entry.addr", kAddrBits),
          c.bv_const("q", kPageBits)};
}

MigState FreeState(z3::context& c, const std::string& prefix) {
  return {{AddrArray(c, prefix + ".cpu.kind", c.bv_sort(kKindBits)),
           AddrArray(c, prefix + ".cpu.page", c.bv_sort(kPageBits)),
           AddrArray(c, prefix + ".cpu.write", c.bool_sort())},
          PageArray(c, prefix + ".locked", c.bool_sort()),
          PageArray(c, prefix + ".collected", c.bool_sort()),
          PageArray(c, prefix + ".migrate", c.bool_sort()),
          AddrArray(c, prefix + ".slot", c.bool_sort())};
}

MigState Idle(const World& w, const MigState& s) {
  MigState out = s;
  out.collected = Nowhere(w.p);
  out.migrate = Nowhere(w.p);
  out.slot = Nowhere(w.a);
  return out;
}

SymEntry Mapped(const World& w, const z3::expr& page, const z3::expr& write) {
  return IteEntry(Has(w.is_device, page), Entry(Kind::kDevicePrivate, page, write),
                  Entry(Kind::kPresent, page, write));
}

z3::expr MapsPage(const World& w, const SymEntry& e) {
  return (IsKind(e.kind, Kind::kPresent) && e.page != w.zero_page) ||
         IsKind(e.kind, Kind::kDevicePrivate);
}

z3::expr EmptySlot(const World& w, const SymEntry& e) {
  return IsKind(e.kind, Kind::kNone) || (IsKind(e.kind, Kind::kPresent) && e.page == w.zero_page);
}

const char* PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kCollect: return "Collect";
    case Phase::kUnmap: return "Unmap";
    case Phase::kPinCheck: return "PinCheck";
    case Phase::kPages: return "Pages";
    case Phase::kInsertEmptySlots: return "InsertEmptySlots";
    case Phase::kFinalize: return "Finalize";
  }
  return "?";
}

const char* PhaseLabel(Phase phase) {
  switch (phase) {
    case Phase::kCollect: return "collect";
    case Phase::kUnmap: return "unmap";
    case Phase::kPinCheck: return "pin_check";
    case Phase::kPages: return "pages";
    case Phase::kInsertEmptySlots: return "insert";
    case Phase::kFinalize: return "finalize";
  }
  return "?";
}

MigState After(Phase phase, const World& w, const MigState& s, const MigrateSteps& steps) {
  switch (phase) {
    case Phase::kCollect: return Collect(w, s, steps);
    case Phase::kUnmap: return Unmap(w, s, steps);
    case Phase::kPinCheck: return PinCheck(w, s, steps);
    case Phase::kPages: return Pages(w, s, steps);
    case Phase::kInsertEmptySlots: return InsertEmptySlots(w, s, steps);
    case Phase::kFinalize: return Finalize(w, s, steps);
  }
  return s;
}

std::vector<Named> CallHypotheses(const World& w, const MigState& before) {
  const z3::expr took = Has(w.took, w.p);
  const z3::expr selected =
      w.p != w.zero_page &&
      z3::ite(Has(w.is_device, w.p), w.select_device && Has(w.owned, w.p), w.select_system);
  return {{"collect takes only pages it selects (System; DevicePrivate of the owner; never the "
           "zero page) and whose trylock succeeds",
           ForallWhere({w.p}, {took}, z3::implies(took, selected && !Has(before.locked, w.p)))},
          {"the zero page is a system page, not shmem",
           !Has(w.is_device, w.zero_page) && !Has(w.shared, w.zero_page)}};
}

std::vector<MigState> Call(const World& w, const MigState& before, const MigrateSteps& steps) {
  std::vector<MigState> out = {before};
  for (Phase phase : kPhases) {
    MigState next = After(phase, w, out.back(), steps);
    out.push_back(std::move(next));
  }
  return out;
}

Fault MakeFault(z3::context& c) {
  return {c.bv_const("fault.addr", kAddrBits), c.bv_const("fault.new_page", kPageBits),
          c.bool_const("fault.alloc_ok")};
}

std::vector<Named> FaultHypotheses(const World& w, const MigState& before, const Fault& f) {
  const SymEntry e = At(before.cpu, f.addr);
  return {{"the fault reaches a device-private entry of a device page",
           IsKind(e.kind, Kind::kDevicePrivate) && Has(w.is_device, e.page)},
          {"migrate_to_ram's destination is a system page", !Has(w.is_device, f.new_page)}};
}

// Mirrors: lib/test_hmm.c dmirror_devmem_fault() (6.1): migrate_vma_setup(),
// _pages(), _finalize() over the faulting page (DevicePrivate of its device)
// with a system destination. Every device-private entry of the page, in any
// process, becomes a present PTE of the new page with the same write bit; if
// the allocation failed nothing changes (SIGBUS).
MigState AfterMigrateToRam(const World& w, const MigState& s, const Fault& f,
                           const MigrateSteps& steps) {
  const SymEntry e = At(s.cpu, w.a);
  const z3::expr device_page = At(s.cpu, f.addr).page;
  const z3::expr moves =
      f.alloc_ok && IsKind(e.kind, Kind::kDevicePrivate) && e.page == device_page;
  const z3::expr page = steps.migrate_to_ram_maps_device ? e.page : f.new_page;
  return Rewritten(w, s, moves, Entry(Kind::kPresent, page, e.write));
}

z3::expr DevicePageNeverPresentAt(const World& w, const MigState& s, const z3::expr& addr) {
  const SymEntry e = At(s.cpu, addr);
  return z3::implies(IsKind(e.kind, Kind::kPresent), !Has(w.is_device, e.page));
}

z3::expr NoMigrationEntryAt(const MigState& s, const z3::expr& addr) {
  return !IsKind(Has(s.cpu.kind, addr), Kind::kMigration);
}

z3::expr EntryHeldAt(const MigState& s, const z3::expr& addr) {
  const SymEntry e = At(s.cpu, addr);
  return z3::implies(IsKind(e.kind, Kind::kMigration),
                     Has(s.collected, e.page) && Has(s.locked, e.page));
}

z3::expr CollectedLockedAt(const MigState& s, const z3::expr& page) {
  return z3::implies(Has(s.collected, page), Has(s.locked, page));
}

Named InvDevicePageNeverPresent(const World& w, const MigState& s, const std::string& state) {
  return {"InvDevicePageNeverPresent(" + state + ")",
          EveryAddress(w, s, DevicePageNeverPresentAt(w, s, w.a))};
}

Named InvNoMigrationEntry(const World& w, const MigState& s, const std::string& state) {
  return {"InvNoMigrationEntry(" + state + ")", EveryAddress(w, s, NoMigrationEntryAt(s, w.a))};
}

Named InvMigrationEntriesHeld(const World& w, const MigState& s, const std::string& state) {
  return {"every migration entry's page is collected and locked, every collected page locked (" +
              state + ")",
          EveryAddress(w, s, EntryHeldAt(s, w.a)) &&
              ForallWhere({w.p}, {Has(s.collected, w.p)}, CollectedLockedAt(s, w.p))};
}

std::string KindName(uint64_t kind) {
  switch (static_cast<Kind>(kind)) {
    case Kind::kNone: return "kNone";
    case Kind::kPresent: return "kPresent";
    case Kind::kDevicePrivate: return "kDevicePrivate";
    case Kind::kMigration: return "kMigration";
  }
  return std::to_string(kind);
}

std::string RenderEntry(const std::string& name, const World& w, const SymEntry& e,
                        const z3::model& m) {
  return Line(name + ".kind", KindName(U64(m, e.kind))) + RenderNum(name + ".page", e.page, m) +
         RenderBool(name + ".write", e.write, m) +
         RenderBool(name + ".device", Has(w.is_device, e.page), m);
}

std::string RenderPage(const std::string& name, const World& w, const z3::expr& page,
                       const z3::model& m) {
  const std::pair<const char*, z3::expr> facts[] = {
      {".device", w.is_device},     {".shared", w.shared}, {".pinned", w.pinned},
      {".owned", w.owned},          {".took", w.took},     {".dst_valid", w.dst_valid},
      {".move_fails", w.move_fails}};
  std::string out = RenderNum(name + ".id", page, m);
  for (const auto& [field, array] : facts) out += RenderBool(name + field, Has(array, page), m);
  return out + RenderNum(name + ".dst", Has(w.dst, page), m) +
         RenderBool(name + ".dst.device", Has(w.is_device, Has(w.dst, page)), m);
}

std::string RenderPageState(const std::string& name, const MigState& s, const z3::expr& page,
                            const z3::model& m) {
  return RenderBool(name + ".locked", Has(s.locked, page), m) +
         RenderBool(name + ".collected", Has(s.collected, page), m) +
         RenderBool(name + ".migrate", Has(s.migrate, page), m);
}

std::string RenderAddress(const std::string& name, const World& w, const z3::expr& addr,
                          const z3::model& m) {
  return RenderNum(name + ".addr", addr, m) +
         RenderBool(name + ".in_range", Has(w.in_range, addr), m) +
         RenderBool(name + ".vma_write", Has(w.vma_write, addr), m) +
         RenderBool(name + ".vma_private_anon", Has(w.vma_anon, addr), m) +
         RenderNum(name + ".slot_dst", Has(w.slot_dst, addr), m) +
         RenderBool(name + ".slot_dst_valid", Has(w.slot_dst_valid, addr), m);
}

std::string RenderArguments(const World& w, const z3::model& m) {
  return RenderBool("select.system", w.select_system, m) +
         RenderBool("select.device_private", w.select_device, m) +
         RenderNum("zero_page", w.zero_page, m);
}

}  // namespace hmm::solver::migrate
