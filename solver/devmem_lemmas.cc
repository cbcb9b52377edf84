// File: solver/devmem_lemmas.cc
//
// Device placement and the refcount rule (the page-table lemmas are in
// devmem_table_lemmas.cc), and the registry entries of both. Every bound comes
// from model/types.h (Config's bounds, kDevicePfnBits) or impl/pte.h (through
// pte_lemmas.h's terms). Shifts are z3::shl/z3::lshr (never `expr << k`, an
// integer shift), and 64-bit literals are uint64_t.

#include "solver/devmem_lemmas.h"

#include <string>
#include <vector>

#include "impl/pte.h"
#include "model/types.h"
#include "solver/lemma_text.h"
#include "solver/pte_lemmas.h"

namespace hmm::solver {
namespace {

using text::Concat;
using text::Hex;
using text::Line;
using text::U64;

constexpr unsigned kWordBits = 64;
// log2 of Config's section-size bounds.
constexpr unsigned kMinSectionShift = kPageShift;
constexpr unsigned kMaxSectionShift = 30;
static_assert(kMinSectionBytes == uint64_t{1} << kMinSectionShift, "section bounds");
static_assert(kMaxSectionBytes == uint64_t{1} << kMaxSectionShift, "section bounds");
// Where v18's first window must start to be free: boot RAM at its largest.
constexpr uint64_t kBootRamEnd = kMaxRamPages * kPageSize;

z3::expr Word(z3::context& c, uint64_t v) { return c.bv_val(v, kWordBits); }
z3::expr Pow2(const z3::expr& exp) { return z3::shl(Word(exp.ctx(), 1), exp); }
z3::expr Aligned(const z3::expr& x, const z3::expr& section) {
  return (x & (section - Word(x.ctx(), 1))) == Word(x.ctx(), 0);
}

// ---- Placement: one device range, one RAM range, 64-bit addresses. ----

struct PlacementTerms {
  z3::expr bits, section_shift, section, size, dev_start, dev_end, ram_start, ram_size, ram_end;
};

PlacementTerms MakePlacementTerms(z3::context& c) {
  const auto bv = [&c](const char* name) { return c.bv_const(name, kWordBits); };
  const z3::expr section_shift = bv("section_shift");
  return {bv("bits"),         section_shift,      Pow2(section_shift),
          bv("size"),         bv("device.start"), bv("device.end"),
          bv("ram.start"),    bv("ram.size"),     bv("ram.end")};
}

// Config's bounds, and the region size HmmDevmemAdd has rounded to sections.
std::vector<Named> ConfigHypotheses(const PlacementTerms& t) {
  z3::context& c = t.bits.ctx();
  return {{"kMinPhysmemBits <= bits <= kMaxPhysmemBits",
           z3::uge(t.bits, Word(c, kMinPhysmemBits)) && z3::ule(t.bits, Word(c, kMaxPhysmemBits))},
          {"section == 2^section_shift, kMinSectionBytes <= section <= kMaxSectionBytes",
           z3::uge(t.section_shift, Word(c, kMinSectionShift)) &&
               z3::ule(t.section_shift, Word(c, kMaxSectionShift))},
          {"size is a positive multiple of section, at most 2^bits (HmmDevmemAdd)",
           t.size != Word(c, 0) && Aligned(t.size, t.section) && z3::ule(t.size, Pow2(t.bits))}};
}

// Where `policy` puts [device.start, device.end).
std::vector<Named> PlacementHypotheses(const PlacementTerms& t, const PlacementPolicy& policy) {
  z3::context& c = t.bits.ctx();
  const z3::expr limit = Pow2(t.bits);
  Named start{"", c.bool_val(true)};
  switch (policy.start) {
    case PlacementPolicy::Start::kAtOrAboveLimit:
      start = {"device.start >= 2^bits, section-aligned",
               z3::uge(t.dev_start, limit) && Aligned(t.dev_start, t.section)};
      break;
    case PlacementPolicy::Start::kOneSectionBelowLimit:
      start = {"device.start == 2^bits - section", t.dev_start == limit - t.section};
      break;
    case PlacementPolicy::Start::kTopDownBelowLimit:
      start = {"device.start == 2^bits - size (v18's first candidate)",
               t.dev_start == limit - t.size};
      break;
  }
  return {start,
          {"device.end == device.start + size, no wrap",
           t.dev_end == t.dev_start + t.size && z3::ult(t.dev_start, t.dev_end)},
          {"device.end <= 2^" + std::to_string(policy.end_bits),
           z3::ule(t.dev_end, Word(c, uint64_t{1} << policy.end_bits))}};
}

// The range checks RamHotAdd makes before it looks for conflicts.
std::vector<Named> HotAddHypotheses(const PlacementTerms& t) {
  z3::context& c = t.bits.ctx();
  return {{"ram.start, ram.size section-aligned, ram.size > 0",
           Aligned(t.ram_start, t.section) && Aligned(t.ram_size, t.section) &&
               t.ram_size != Word(c, 0)},
          {"ram.end == ram.start + ram.size, no wrap",
           t.ram_end == t.ram_start + t.ram_size && z3::ult(t.ram_start, t.ram_end)},
          {"ram.end <= 2^bits", z3::ule(t.ram_end, Pow2(t.bits))}};
}

Named RangesDisjoint(const PlacementTerms& t) {
  return {"[ram.start, ram.end) and [device.start, device.end) are disjoint",
          z3::ule(t.ram_end, t.dev_start) || z3::ule(t.dev_end, t.ram_start)};
}

std::string RenderPlacement(const PlacementTerms& t, const z3::model& m, bool with_ram) {
  std::string out = Line("bits", std::to_string(U64(m, t.bits))) +
                    Line("section", Hex(U64(m, t.section)) + " (2^" +
                                        std::to_string(U64(m, t.section_shift)) + ")") +
                    Line("size", Hex(U64(m, t.size))) +
                    Line("device.start", Hex(U64(m, t.dev_start))) +
                    Line("device.end", Hex(U64(m, t.dev_end)));
  if (with_ram) {
    out += Line("ram.start", Hex(U64(m, t.ram_start))) + Line("ram.end", Hex(U64(m, t.ram_end)));
  }
  return out;
}

// An existence claim's result: Prove() found the claimed object as the model
// of a failed "none exists" claim. Swaps kFailed and kProved.
LemmaResult AsWitness(LemmaResult r) {
  if (r.status == LemmaStatus::kFailed) {
    r.status = LemmaStatus::kProved;
    r.detail = "witness (the collision Z3 found):\n" + r.counterexample;
    r.counterexample.clear();
  } else if (r.status == LemmaStatus::kProved) {
    r.status = LemmaStatus::kFailed;
    r.detail = "no collision exists: every RAM range hot-add's range checks accept is disjoint "
               "from the device range (unsat; " + r.detail + ")";
  }
  return r;
}

// ---- The refcount rule, over Ints. ----

enum RefOp : int { kRefAlloc = 0, kRefGet = 1, kRefPut = 2 };

struct RefTerms {
  z3::expr op, r, allocs, frees, r2, allocs2, frees2, page_free;
};

// "page_free once per allocation": a free page (refcount 1) has had as many
// page_free calls as allocations; a page in use, one fewer.
z3::expr FreesMatchAllocations(const z3::expr& r, const z3::expr& allocs, const z3::expr& frees) {
  return z3::ite(r == 1, frees == allocs, frees + 1 == allocs);
}

std::vector<Named> RefStep(const RefTerms& t, const RefcountRule& rule) {
  z3::context& c = t.r.ctx();
  const z3::expr same_counts = t.allocs2 == t.allocs && t.frees2 == t.frees && !t.page_free;
  const z3::expr put_frees = t.page_free == (t.r == c.int_val(rule.free_at));
  return {{"op is alloc, get or put", t.op >= kRefAlloc && t.op <= kRefPut},
          {"alloc (DevicePageAlloc): only at r == 1; r' = 2, allocations + 1",
           z3::implies(t.op == kRefAlloc, t.r == 1 && t.r2 == 2 && t.allocs2 == t.allocs + 1 &&
                                              t.frees2 == t.frees && !t.page_free)},
          {"get (an entry installed, or copied by fork): only at r >= 2; r' = r + 1",
           z3::implies(t.op == kRefGet, t.r >= 2 && t.r2 == t.r + 1 && same_counts)},
          {"put (DevicePagePut, an entry zapped): allowed at r >= " +
               std::to_string(rule.put_min) + "; r' = r - 1; page_free iff r == " +
               std::to_string(rule.free_at),
           z3::implies(t.op == kRefPut,
                       t.r >= c.int_val(rule.put_min) && t.r2 == t.r - 1 &&
                           t.allocs2 == t.allocs && put_frees &&
                           t.frees2 == t.frees + z3::ite(t.page_free, c.int_val(1), c.int_val(0)))}};
}

std::string RenderRef(const RefTerms& t, const z3::model& m) {
  const auto num = [&m](const z3::expr& e) {
    return std::to_string(m.eval(e, true).get_numeral_int64());
  };
  static const char* const kOps[] = {"alloc", "get", "put"};
  const int64_t op = m.eval(t.op, true).get_numeral_int64();
  return Line("op", op >= 0 && op <= 2 ? kOps[op] : std::to_string(op)) +
         Line("before.refcount", num(t.r)) + Line("before.allocations", num(t.allocs)) +
         Line("before.frees", num(t.frees)) + Line("after.refcount", num(t.r2)) +
         Line("after.allocations", num(t.allocs2)) + Line("after.frees", num(t.frees2)) +
         Line("page_free", text::Bool(m.eval(t.page_free, true).is_true()));
}

}  // namespace

PlacementPolicy PlacementPolicy::Default() {
  return {"the default placement (device.start >= 2^bits)", Start::kAtOrAboveLimit,
          kPageShift + kDevicePfnBits};
}

PlacementPolicy PlacementPolicy::V18() {
  return {"v18's placement (device.start == 2^bits - size)", Start::kTopDownBelowLimit,
          kPageShift + kDevicePfnBits};
}

RefcountRule RefcountRule::Real() { return {"the 2017 rule", 2, 2}; }

LemmaResult LemmaDefaultPlacementNeverCollides(const PlacementPolicy& policy) {
  return Prove("LemmaDefaultPlacementNeverCollides", [&](z3::context& c) {
    const PlacementTerms t = MakePlacementTerms(c);
    Goal g;
    g.hypotheses = Concat(Concat(ConfigHypotheses(t), PlacementHypotheses(t, policy)),
                          HotAddHypotheses(t));
    g.claims = {RangesDisjoint(t)};
    g.render = [t](const z3::model& m) { return RenderPlacement(t, m, /*with_ram=*/true); };
    return g;
  });
}

LemmaResult LemmaDevicePfnFitsSwapOffset(const PlacementPolicy& policy) {
  return Prove("LemmaDevicePfnFitsSwapOffset", [&](z3::context& c) {
    const PlacementTerms t = MakePlacementTerms(c);
    const z3::expr pfn = c.bv_const("pfn", kPteBits);
    const z3::expr encoded = c.bv_const("encoded", kPteBits);
    const z3::expr no = c.bool_val(false);
    const SymPte entry{c.bv_const("entry.kind", kKindBits), pfn, no, no, no, no,
                       c.bv_val(0u, kSwapTypeBits)};
    const SymPte decoded = SymDecodePte(encoded, PteLayout::Real());
    const z3::expr page_shift = Word(c, kPageShift);
    Goal g;
    g.hypotheses = Concat(
        Concat(ConfigHypotheses(t), PlacementHypotheses(t, policy)),
        {{"device.start >> kPageShift <= pfn < device.end >> kPageShift",
          z3::uge(pfn, z3::lshr(t.dev_start, page_shift)) &&
              z3::ult(pfn, z3::lshr(t.dev_end, page_shift))},
         {"entry.kind in {kDevicePrivateRead, kDevicePrivateWrite}",
          IsKind(entry, impl::PteKind::kDevicePrivateRead) ||
              IsKind(entry, impl::PteKind::kDevicePrivateWrite)},
         {"encoded = EncodePte(entry)", encoded == SymEncodePte(entry, PteLayout::Real())}});
    g.claims = {{"DecodePte(encoded).kind == entry.kind", decoded.kind == entry.kind},
                {"DecodePte(encoded).pfn == pfn", decoded.pfn == pfn}};
    g.render = [t, entry, encoded, decoded](const z3::model& m) {
      const auto kind = static_cast<impl::PteKind>(U64(m, entry.kind));
      return RenderPlacement(t, m, /*with_ram=*/false) + Line("pfn", Hex(U64(m, entry.pfn))) +
             Line("entry.kind", impl::PteKindName(kind)) + Line("encoded", Hex(U64(m, encoded))) +
             Line("decoded.pfn", Hex(U64(m, decoded.pfn)));
    };
    return g;
  });
}

LemmaResult LemmaV18PlacementCollides(const PlacementPolicy& policy) {
  return AsWitness(Prove("LemmaV18PlacementCollides", [&](z3::context& c) {
    const PlacementTerms t = MakePlacementTerms(c);
    const z3::expr boot_end = Word(c, kBootRamEnd);
    Goal g;
    g.hypotheses = Concat(
        Concat(Concat(ConfigHypotheses(t), PlacementHypotheses(t, policy)), HotAddHypotheses(t)),
        {{"device.start >= kMaxRamPages * kPageSize: the window misses boot RAM",
          z3::uge(t.dev_start, boot_end)},
         {"ram.start >= kMaxRamPages * kPageSize: boot RAM does not refuse the hot-add",
          z3::uge(t.ram_start, boot_end)}});
    g.claims = {RangesDisjoint(t)};
    g.render = [t](const z3::model& m) { return RenderPlacement(t, m, /*with_ram=*/true); };
    return g;
  }));
}

LemmaResult LemmaDevicePageRefcountRule(const RefcountRule& rule) {
  return Prove("LemmaDevicePageRefcountRule", [&](z3::context& c) {
    const auto i = [&c](const char* name) { return c.int_const(name); };
    const RefTerms t{i("op"),
                     i("before.refcount"),
                     i("before.allocations"),
                     i("before.frees"),
                     i("after.refcount"),
                     i("after.allocations"),
                     i("after.frees"),
                     c.bool_const("page_free")};
    Goal g;
    g.hypotheses = Concat({{"Inv: before.refcount >= 1", t.r >= 1},
                           {"Inv: frees == allocations at refcount 1, one fewer above",
                            FreesMatchAllocations(t.r, t.allocs, t.frees)}},
                          RefStep(t, rule));
    g.claims = {{"after.refcount >= 1", t.r2 >= 1},
                {"page_free iff a put moves 2 -> 1", t.page_free == (t.op == kRefPut && t.r == 2)},
                {"after: frees == allocations at refcount 1, one fewer above",
                 FreesMatchAllocations(t.r2, t.allocs2, t.frees2)}};
    g.render = [t](const z3::model& m) { return RenderRef(t, m); };
    return g;
  });
}

namespace {

template <typename Variant>
LemmaWithControl Entry(const std::string& name, const std::string& statement,
                       const std::string& invariant, LemmaResult (*lemma)(const Variant&),
                       const Variant& real, const Variant& broken) {
  const std::string control = name + "NegativeControl";
  return {{name, statement, invariant, [lemma, real] { return lemma(real); }},
          {control, statement + " Negative control over " + broken.name + "; must fail.",
           invariant, [lemma, broken, control] {
             LemmaResult r = lemma(broken);
             r.name = control;
             return r;
           }}};
}

PteSteps BrokenSteps(const std::string& name, bool PteSteps::*flag) {
  PteSteps steps;
  steps.name = name;
  steps.*flag = true;
  return steps;
}

}  // namespace

std::vector<LemmaWithControl> DevmemLemmas() {
  const PlacementPolicy def = PlacementPolicy::Default();
  PlacementPolicy one_below = def;
  one_below.name = "a start one section below the limit (device.start == 2^bits - section)";
  one_below.start = PlacementPolicy::Start::kOneSectionBelowLimit;
  PlacementPolicy one_bit_higher = def;
  one_bit_higher.name = "a limit one bit higher (device.end <= 2^(kPageShift + kDevicePfnBits + 1))";
  one_bit_higher.end_bits = kPageShift + kDevicePfnBits + 1;
  const std::string inv_never_present = "InvDevicePageNeverPresent";
  const PteSteps real = PteSteps::Real();
  return {
      Entry("LemmaDefaultPlacementNeverCollides",
            "For every max_physmem_bits in [32, 52], section 2^k (12 <= k <= 30), size (a "
            "positive multiple of section) and start the default policy may choose (>= "
            "2^bits, section-aligned, end <= 2^(kPageShift + kDevicePfnBits), no wrap), every "
            "RAM range hot-add's range checks accept (section-aligned, non-empty, end <= "
            "2^bits, no wrap) is disjoint from the device range.",
            "InvDeviceRangePlacement", &LemmaDefaultPlacementNeverCollides, def, one_below),
      Entry("LemmaDevicePfnFitsSwapOffset",
            "Every pfn of a default-placed device range, as the offset of a device-private "
            "read or write entry, comes back from DecodePte(EncodePte(entry)) unchanged, kind "
            "and pfn (impl/pte.h's kSwpOffsetShift, kSwpOffsetBits).",
            "InvDeviceRangePlacement", &LemmaDevicePfnFitsSwapOffset, def, one_bit_higher),
      Entry("LemmaV18PlacementCollides",
            "An existence claim, proved by a witness: under v18's placement (first candidate "
            "2^bits - size, clear of boot RAM) some RAM range that passes hot-add's range checks "
            "and misses boot RAM overlaps the device range, so only the kBusy conflict check "
            "keeps them apart. Z3 is asked whether every such range is disjoint; sat proves the "
            "lemma and `detail` holds the collision; the control asks the same of the default "
            "placement, where it is unsat (\"no collision exists\").",
            "", &LemmaV18PlacementCollides, PlacementPolicy::V18(), def),
      Entry("LemmaDevicePageRefcountRule",
            "With refcount = 1 + held + entries, from every state with refcount >= 1 and "
            "page_free calls == allocations (one fewer while in use), an alloc (only at 1), a "
            "get (only at >= 2) or a put (only at >= 2) keeps refcount >= 1, calls page_free "
            "exactly when a put moves 2 -> 1, and keeps the page_free count.",
            "InvPageFreeOncePerAllocation", &LemmaDevicePageRefcountRule, RefcountRule::Real(),
            RefcountRule{"the modern rule mis-applied (put allowed at 1, page_free at 1 -> 0)", 1,
                         1}),
      Entry("LemmaInitialInvDevicePageNeverPresent",
            "The initial page tables (every entry none) map no device pfn present.",
            inv_never_present, &LemmaInitialInvDevicePageNeverPresent, real,
            BrokenSteps("a boot that maps one device pfn present",
                        &PteSteps::initial_maps_device)),
      Entry("LemmaForkPreservesInvDevicePageNeverPresent",
            "If no present entry maps a device pfn, none does after fork (device entries copied "
            "as device entries, write cleared in parent and child; present entries copied as "
            "present, any write bit).",
            inv_never_present, &LemmaForkPreservesInvDevicePageNeverPresent, real,
            BrokenSteps("a fork that gives the child a device entry as a present entry",
                        &PteSteps::fork_makes_present)),
      Entry("LemmaMunmapPreservesInvDevicePageNeverPresent",
            "If no present entry maps a device pfn, none does after munmap (every entry of the "
            "range becomes none).",
            inv_never_present, &LemmaMunmapPreservesInvDevicePageNeverPresent, real,
            BrokenSteps("a zap that leaves device entries behind as present entries",
                        &PteSteps::munmap_makes_present)),
      Entry("LemmaMprotectPreservesInvDevicePageNeverPresent",
            "If no present entry maps a device pfn, none does after mprotect without write "
            "(write cleared in the range; kinds and pfns unchanged).",
            inv_never_present, &LemmaMprotectPreservesInvDevicePageNeverPresent, real,
            BrokenSteps("an mprotect that rebuilds device entries as present entries",
                        &PteSteps::mprotect_makes_present)),
      Entry("LemmaCpuFaultPreservesInvDevicePageNeverPresent",
            "If no present entry maps a device pfn, none does after a CPU fault (none, or "
            "present with COW broken: present of a newly allocated RAM pfn; device-private: "
            "unchanged, the fault callback answers SIGBUS).",
            inv_never_present, &LemmaCpuFaultPreservesInvDevicePageNeverPresent, real,
            BrokenSteps("a fault whose page allocation may return a device pfn",
                        &PteSteps::fault_may_alloc_device)),
  };
}

}  // namespace hmm::solver
