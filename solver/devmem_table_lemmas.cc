// File: solver/devmem_table_lemmas.cc
//
// InvDevicePageNeverPresent as an inductive invariant of an abstract page
// table, in hyperkernel's style: the initial tables satisfy it, and for each
// operation Inv(before) && step(before, after) => Inv(after). The tables are
// three arrays (kind, pfn, write) over key = pid ++ vpn; is_device is any
// predicate over pfns. Inv(before) is a forall; the tables after a step are a
// lambda (or a store); the claim is Inv(after) at one free key, `entry`, so a
// counterexample shows that entry before and after.

#include "solver/devmem_lemmas.h"

#include <functional>
#include <string>
#include <vector>

#include "model/types.h"
#include "solver/lemma_text.h"

namespace hmm::solver {
namespace {

using text::Bool;
using text::Concat;
using text::Hex;
using text::Line;
using text::U64;

constexpr unsigned kWordBits = 64;

z3::expr Word(z3::context& c, uint64_t v) { return c.bv_val(v, kWordBits); }

// ---- The abstract page table: arrays from key = pid ++ vpn to an entry. ----

enum class EntryKind : unsigned { kNone = 0, kPresent = 1, kDevicePrivate = 2 };
constexpr unsigned kEntryKindBits = 2;
constexpr unsigned kVpnBits = kUserVaBits - kPageShift;  // vpn < kMaxVpn
constexpr unsigned kPidBits = kWordBits - kVpnBits;

z3::expr KindVal(z3::context& c, EntryKind k) {
  return c.bv_val(static_cast<unsigned>(k), kEntryKindBits);
}

std::string KindName(uint64_t k) {
  switch (static_cast<EntryKind>(k)) {
    case EntryKind::kNone: return "kNone";
    case EntryKind::kPresent: return "kPresent";
    case EntryKind::kDevicePrivate: return "kDevicePrivate";
  }
  return std::to_string(k);
}

z3::expr Key(const z3::expr& pid, const z3::expr& vpn) { return z3::concat(pid, vpn); }
z3::expr PidOf(const z3::expr& key) { return key.extract(kWordBits - 1, kVpnBits); }
z3::expr VpnOf(const z3::expr& key) { return key.extract(kVpnBits - 1, 0); }

// One entry; as tables, each field is an array over keys.
struct SymEntry {
  z3::expr kind, pfn, write;
};

SymEntry At(const SymEntry& tables, const z3::expr& key) {
  return {z3::select(tables.kind, key), z3::select(tables.pfn, key),
          z3::select(tables.write, key)};
}

SymEntry TablesConst(z3::context& c, const std::string& prefix) {
  const z3::sort key = c.bv_sort(kWordBits);
  return {c.constant((prefix + ".kind").c_str(), c.array_sort(key, c.bv_sort(kEntryKindBits))),
          c.constant((prefix + ".pfn").c_str(), c.array_sort(key, c.bv_sort(kWordBits))),
          c.constant((prefix + ".write").c_str(), c.array_sort(key, c.bool_sort()))};
}

// The tables whose entry at `k` is `e` (a term over the bound key `k`).
SymEntry Lambda(const z3::expr& k, const SymEntry& e) {
  return {z3::lambda(k, e.kind), z3::lambda(k, e.pfn), z3::lambda(k, e.write)};
}

struct PteWorld {
  z3::func_decl is_device;  // any set of device pfns
  SymEntry before;             // the tables before the step
  z3::expr k;               // the key lambdas and the invariant bind
  z3::expr entry;           // the key the claim is about (any key)
};

PteWorld MakePteWorld(z3::context& c) {
  return {c.function("is_device", c.bv_sort(kWordBits), c.bool_sort()), TablesConst(c, "before"),
          c.bv_const("k", kWordBits), c.bv_const("entry", kWordBits)};
}

z3::expr InvAt(const PteWorld& w, const SymEntry& tables, const z3::expr& key) {
  const SymEntry e = At(tables, key);
  return z3::implies(e.kind == KindVal(key.ctx(), EntryKind::kPresent), !w.is_device(e.pfn));
}

Named Inv(const PteWorld& w, const SymEntry& tables, const std::string& state) {
  return {"InvDevicePageNeverPresent(" + state + ")", z3::forall(w.k, InvAt(w, tables, w.k))};
}

std::string RenderEntry(const std::string& name, const PteWorld& w, const SymEntry& tables,
                        const z3::expr& key, const z3::model& m) {
  const SymEntry e = At(tables, key);
  const uint64_t pfn = U64(m, e.pfn);
  return Line(name + ".kind", KindName(U64(m, e.kind))) + Line(name + ".pfn", Hex(pfn)) +
         Line(name + ".write", Bool(m.eval(e.write, true).is_true())) +
         Line("is_device(" + name + ".pfn)",
              Bool(m.eval(w.is_device(e.pfn), true).is_true()));
}

// One step of the abstract page table: its hypotheses, the tables after it,
// and its parameters as "field = value" lines.
struct PteStep {
  std::vector<Named> hypotheses;
  SymEntry after;
  std::function<std::string(const z3::model&)> render;
};

// Inv(before) && step(before, after) => Inv(after) at every key.
LemmaResult PreservesInv(const std::string& name,
                         const std::function<PteStep(z3::context&, const PteWorld&)>& make) {
  return Prove(name, [&](z3::context& c) {
    const PteWorld w = MakePteWorld(c);
    const PteStep step = make(c, w);
    Goal g;
    g.hypotheses = Concat({Inv(w, w.before, "before")}, step.hypotheses);
    g.claims = {{"InvDevicePageNeverPresent(after) at entry", InvAt(w, step.after, w.entry)}};
    g.render = [w, step](const z3::model& m) {
      return step.render(m) + Line("entry.pid", Hex(U64(m, PidOf(w.entry)))) +
             Line("entry.vpn", Hex(U64(m, VpnOf(w.entry)))) +
             RenderEntry("before", w, w.before, w.entry, m) +
             RenderEntry("after", w, step.after, w.entry, m);
    };
    return g;
  });
}

// pid, [start_vpn, end_vpn): the range munmap and mprotect take.
struct VpnRange {
  z3::expr pid, start, end;
  z3::expr Contains(const z3::expr& key) const {
    return PidOf(key) == pid && z3::uge(VpnOf(key), start) && z3::ult(VpnOf(key), end);
  }
  Named NonEmpty(const std::string& op) const {
    return {op + ".start_vpn < " + op + ".end_vpn", z3::ult(start, end)};
  }
  std::string Render(const std::string& op, const z3::model& m) const {
    return Line(op + ".pid", Hex(U64(m, pid))) + Line(op + ".start_vpn", Hex(U64(m, start))) +
           Line(op + ".end_vpn", Hex(U64(m, end)));
  }
};

VpnRange MakeVpnRange(z3::context& c, const std::string& op) {
  return {c.bv_const((op + ".pid").c_str(), kPidBits),
          c.bv_const((op + ".start_vpn").c_str(), kVpnBits),
          c.bv_const((op + ".end_vpn").c_str(), kVpnBits)};
}

}  // namespace

PteSteps PteSteps::Real() { return {"docs/devmem.md"}; }

LemmaResult LemmaInitialInvDevicePageNeverPresent(const PteSteps& steps) {
  return Prove("LemmaInitialInvDevicePageNeverPresent", [&](z3::context& c) {
    const PteWorld w = MakePteWorld(c);
    const z3::sort key = c.bv_sort(kWordBits);
    SymEntry init{z3::const_array(key, KindVal(c, EntryKind::kNone)),
               z3::const_array(key, Word(c, 0)), z3::const_array(key, c.bool_val(false))};
    Goal g;
    if (steps.initial_maps_device) {
      const z3::expr boot_key = c.bv_const("boot.key", kWordBits);
      const z3::expr boot_pfn = c.bv_const("boot.pfn", kWordBits);
      init.kind = z3::store(init.kind, boot_key, KindVal(c, EntryKind::kPresent));
      init.pfn = z3::store(init.pfn, boot_key, boot_pfn);
      g.hypotheses = {{"is_device(boot.pfn)", w.is_device(boot_pfn)}};
    }
    g.claims = {{"InvDevicePageNeverPresent(initial) at entry", InvAt(w, init, w.entry)}};
    g.render = [w, init](const z3::model& m) {
      return Line("entry.pid", Hex(U64(m, PidOf(w.entry)))) +
             Line("entry.vpn", Hex(U64(m, VpnOf(w.entry)))) +
             RenderEntry("initial", w, init, w.entry, m);
    };
    return g;
  });
}

LemmaResult LemmaForkPreservesInvDevicePageNeverPresent(const PteSteps& steps) {
  return PreservesInv("LemmaForkPreservesInvDevicePageNeverPresent",
                      [&](z3::context& c, const PteWorld& w) {
    const z3::expr parent = c.bv_const("fork.parent", kPidBits);
    const z3::expr child = c.bv_const("fork.child", kPidBits);
    // The write bit COW leaves on present entries: any (fork's policy is open).
    const z3::expr cow_write =
        c.constant("fork.cow_write", c.array_sort(c.bv_sort(kWordBits), c.bool_sort()));
    const SymEntry old = At(w.before, w.k);
    const SymEntry from = At(w.before, Key(parent, VpnOf(w.k)));  // the parent's entry
    const z3::expr device = from.kind == KindVal(c, EntryKind::kDevicePrivate);
    const z3::expr copied = steps.fork_makes_present
                                ? z3::ite(device, KindVal(c, EntryKind::kPresent), from.kind)
                                : from.kind;
    const z3::expr in_child = PidOf(w.k) == child;
    const z3::expr in_fork = in_child || PidOf(w.k) == parent;
    const SymEntry after = Lambda(
        w.k, {z3::ite(in_child, copied, old.kind), z3::ite(in_child, from.pfn, old.pfn),
              z3::ite(in_fork, !device && z3::select(cow_write, w.k), old.write)});
    return PteStep{{{"fork.child != fork.parent", child != parent}},
                   after,
                   [w, parent, child](const z3::model& m) {
                     return Line("fork.parent", Hex(U64(m, parent))) +
                            Line("fork.child", Hex(U64(m, child))) +
                            RenderEntry("parent", w, w.before, Key(parent, VpnOf(w.entry)), m);
                   }};
  });
}

LemmaResult LemmaMunmapPreservesInvDevicePageNeverPresent(const PteSteps& steps) {
  return PreservesInv("LemmaMunmapPreservesInvDevicePageNeverPresent",
                      [&](z3::context& c, const PteWorld& w) {
    const VpnRange range = MakeVpnRange(c, "munmap");
    const SymEntry old = At(w.before, w.k);
    SymEntry zapped{KindVal(c, EntryKind::kNone), Word(c, 0), c.bool_val(false)};
    if (steps.munmap_makes_present) {
      const z3::expr device = old.kind == KindVal(c, EntryKind::kDevicePrivate);
      zapped.kind = z3::ite(device, KindVal(c, EntryKind::kPresent), zapped.kind);
      zapped.pfn = z3::ite(device, old.pfn, zapped.pfn);
    }
    const z3::expr in = range.Contains(w.k);
    const SymEntry after = Lambda(w.k, {z3::ite(in, zapped.kind, old.kind),
                                     z3::ite(in, zapped.pfn, old.pfn),
                                     z3::ite(in, zapped.write, old.write)});
    return PteStep{{range.NonEmpty("munmap")}, after,
                   [range](const z3::model& m) { return range.Render("munmap", m); }};
  });
}

LemmaResult LemmaMprotectPreservesInvDevicePageNeverPresent(const PteSteps& steps) {
  return PreservesInv("LemmaMprotectPreservesInvDevicePageNeverPresent",
                      [&](z3::context& c, const PteWorld& w) {
    const VpnRange range = MakeVpnRange(c, "mprotect");
    const SymEntry old = At(w.before, w.k);
    const z3::expr in = range.Contains(w.k);
    z3::expr kind = old.kind;
    if (steps.mprotect_makes_present) {
      const z3::expr device = old.kind == KindVal(c, EntryKind::kDevicePrivate);
      kind = z3::ite(in && device, KindVal(c, EntryKind::kPresent), old.kind);
    }
    const SymEntry after = Lambda(w.k, {kind, old.pfn, !in && old.write});
    return PteStep{{range.NonEmpty("mprotect")}, after,
                   [range](const z3::model& m) { return range.Render("mprotect", m); }};
  });
}

LemmaResult LemmaCpuFaultPreservesInvDevicePageNeverPresent(const PteSteps& steps) {
  return PreservesInv("LemmaCpuFaultPreservesInvDevicePageNeverPresent",
                      [&](z3::context& c, const PteWorld& w) {
    const z3::expr pid = c.bv_const("fault.pid", kPidBits);
    const z3::expr vpn = c.bv_const("fault.vpn", kVpnBits);
    const z3::expr new_pfn = c.bv_const("fault.new_pfn", kWordBits);
    const z3::expr cow = c.bool_const("fault.cow");  // a write fault breaking COW
    const z3::expr write = c.bool_const("fault.write");
    const z3::expr key = Key(pid, vpn);
    const SymEntry old = At(w.before, key);
    // None, or present and COW broken: a new page. Device-private: the devmem
    // fault callback answers SIGBUS and the entry stays.
    const z3::expr installs = old.kind == KindVal(c, EntryKind::kNone) ||
                              (old.kind == KindVal(c, EntryKind::kPresent) && cow);
    const SymEntry after{
        z3::store(w.before.kind, key,
                  z3::ite(installs, KindVal(c, EntryKind::kPresent), old.kind)),
        z3::store(w.before.pfn, key, z3::ite(installs, new_pfn, old.pfn)),
        z3::store(w.before.write, key, z3::ite(installs, write, old.write))};
    std::vector<Named> hypotheses;
    if (!steps.fault_may_alloc_device) {
      hypotheses.push_back({"the page allocator returns a RAM pfn: !is_device(fault.new_pfn)",
                            !w.is_device(new_pfn)});
    }
    return PteStep{hypotheses, after, [pid, vpn, new_pfn, cow](const z3::model& m) {
                     return Line("fault.pid", Hex(U64(m, pid))) +
                            Line("fault.vpn", Hex(U64(m, vpn))) +
                            Line("fault.new_pfn", Hex(U64(m, new_pfn))) +
                            Line("fault.cow", Bool(m.eval(cow, true).is_true()));
                   }};
  });
}

}  // namespace hmm::solver
