// File: solver/pte_lemmas.cc
//
// Every number here comes from impl/pte.h. Shifts are z3::shl/z3::lshr (never
// `expr << k`, which is an integer shift), and 64-bit literals are uint64_t.

#include "solver/pte_lemmas.h"


#include "model/types.h"

namespace hmm::solver {

using impl::DecodedPte;
using impl::pte_t;
using impl::PteKind;

namespace {

z3::expr Word(z3::context& c, uint64_t v) { return c.bv_val(v, kPteBits); }

z3::expr KindVal(z3::context& c, PteKind kind) {
  return c.bv_val(static_cast<unsigned>(kind), kKindBits);
}

z3::expr HasBits(const z3::expr& pte, pte_t bits) {
  return (pte & Word(pte.ctx(), bits)) != Word(pte.ctx(), 0);
}

z3::expr Flag(const z3::expr& on, pte_t bit) {
  return z3::ite(on, Word(on.ctx(), bit), Word(on.ctx(), 0));
}

// The `bits`-wide field at `shift`, shifted down.
z3::expr Field(const z3::expr& pte, unsigned shift, unsigned bits) {
  z3::context& c = pte.ctx();
  return z3::lshr(pte & Word(c, impl::FieldMask(bits) << shift), Word(c, shift));
}

// Mirrors impl/pte.h MakePresentPte().
z3::expr SymMakePresentPte(const SymPte& x, const PteLayout& layout) {
  z3::context& c = x.pfn.ctx();
  return Word(c, impl::kPtePresent | impl::kPteUser) | z3::shl(x.pfn, Word(c, layout.pfn_shift)) |
         Flag(x.write, impl::kPteWrite) | Flag(x.dirty, impl::kPteDirty) |
         Flag(x.accessed, impl::kPteAccessed) | Flag(x.special, impl::kPteSpecial);
}

// Mirrors impl/pte.h MakeSwapPte(); `type` is kSwapTypeBits wide.
z3::expr SymMakeSwapPte(const z3::expr& type, const z3::expr& offset, const PteLayout& layout) {
  z3::context& c = offset.ctx();
  return Word(c, layout.swp_marker) |
         z3::shl(z3::zext(type, kPteBits - kSwapTypeBits), Word(c, impl::kSwpTypeShift)) |
         z3::shl(offset, Word(c, impl::kSwpOffsetShift));
}

bool IsDevicePrivate(PteKind kind) {
  return kind == PteKind::kDevicePrivateRead || kind == PteKind::kDevicePrivateWrite;
}

// ---- The specification side: which entries a lemma quantifies over. ----

z3::expr InFamily(const SymPte& x, const std::vector<PteKind>& kinds) {
  z3::expr any = x.kind.ctx().bool_val(false);
  for (PteKind kind : kinds) any = any || IsKind(x, kind);
  return any;
}

std::string FamilyName(const std::vector<PteKind>& kinds) {
  std::string out = "{";
  for (PteKind kind : kinds) out += (out.size() > 1 ? ", " : "") + std::string(PteKindName(kind));
  return out + "}";
}

z3::expr IsPteKind(const SymPte& x) {
  return z3::ule(x.kind, KindVal(x.kind.ctx(), PteKind::kDeviceExclusiveWrite));
}

z3::expr IsSwapFormat(const SymPte& x) {
  return !IsKind(x, PteKind::kNone) && !IsKind(x, PteKind::kPresent);
}

// The used fields are in range (EncodePte's REQUIRES).
z3::expr InRange(const SymPte& x) {
  z3::context& c = x.kind.ctx();
  return z3::implies(IsKind(x, PteKind::kPresent), z3::ule(x.pfn, Word(c, impl::kMaxPtePfn))) &&
         z3::implies(IsKind(x, PteKind::kSwap),
                     z3::ult(x.swap_type, c.bv_val(impl::kMaxSwapfiles, kSwapTypeBits))) &&
         z3::implies(IsSwapFormat(x), z3::ule(x.pfn, Word(c, impl::kMaxSwpOffset)));
}

// The unused fields are zero, as DecodePte leaves them.
z3::expr Canonical(const SymPte& x) {
  z3::context& c = x.kind.ctx();
  const z3::expr no_flags = !x.write && !x.dirty && !x.accessed && !x.special;
  const z3::expr no_swap_type = x.swap_type == c.bv_val(0u, kSwapTypeBits);
  return z3::implies(IsKind(x, PteKind::kNone), x.pfn == Word(c, 0) && no_flags) &&
         z3::implies(IsSwapFormat(x), no_flags) &&
         z3::implies(!IsKind(x, PteKind::kSwap), no_swap_type);
}

// ---- Counterexamples: one "field = value" line per field. ----

std::string Line(const std::string& field, const std::string& value) {
  return field + " = " + value + "\n";
}

// The fields x's kind uses, plus any other that is not zero.
std::string FormatPte(const std::string& name, const DecodedPte& x) {
  const bool present = x.kind == PteKind::kPresent;
  std::string out = Line(name + ".kind", PteKindName(x.kind)) + Line(name + ".pfn", Hex(x.pfn));
  const std::pair<const char*, bool> flags[] = {
      {".write", x.write}, {".dirty", x.dirty}, {".accessed", x.accessed}, {".special", x.special}};
  for (const auto& [field, on] : flags) {
    if (present || on) out += Line(name + field, on ? "true" : "false");
  }
  if (x.kind == PteKind::kSwap || x.swap_type != 0) {
    out += Line(name + ".swap_type", std::to_string(x.swap_type));
  }
  return out;
}

std::function<z3::expr(const z3::expr&)> ModelEval(const z3::model& m) {
  return [&m](const z3::expr& e) { return m.eval(e, /*model_completion=*/true); };
}

// ---- One entry, its encoding and the decoding of that. ----

struct EntryTerms {
  std::string x_name, encoded_name, decoded_name;
  SymPte x;
  z3::expr encoded;
  SymPte decoded;
};

EntryTerms MakeEntryTerms(z3::context& c, const std::string& x_name,
                          const std::string& encoded_name, const std::string& decoded_name) {
  return {x_name,
          encoded_name,
          decoded_name,
          SymPteConst(c, x_name),
          c.bv_const(encoded_name.c_str(), kPteBits),
          SymPteConst(c, decoded_name)};
}

// The hypotheses that tie `encoded` and `decoded` to x.
std::vector<Named> Definitions(const EntryTerms& t, const PteLayout& layout) {
  return {{t.encoded_name + " = EncodePte(" + t.x_name + ")",
           t.encoded == SymEncodePte(t.x, layout)},
          {t.decoded_name + " = DecodePte(" + t.encoded_name + ")",
           SymPteEq(t.decoded, SymDecodePte(t.encoded, layout))}};
}

std::string Render(const EntryTerms& t, const z3::model& m) {
  const auto eval = ModelEval(m);
  return FormatPte(t.x_name, ConcretePte(t.x, eval)) +
         Line(t.encoded_name, Hex(eval(t.encoded).get_numeral_uint64())) +
         FormatPte(t.decoded_name, ConcretePte(t.decoded, eval));
}

std::vector<Named> Concat(std::vector<Named> a, const std::vector<Named>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// decode(encode(x)) == x for every canonical, in-range x of `kinds`, one claim
// per field so a failure names the field.
LemmaResult RoundTrip(const std::string& name, const std::vector<PteKind>& kinds,
                      const PteLayout& layout) {
  return Prove(name, [&](z3::context& c) {
    const EntryTerms t = MakeEntryTerms(c, "x", "encoded", "decoded");
    Goal g;
    g.hypotheses = Concat({{"x.kind in " + FamilyName(kinds), InFamily(t.x, kinds)},
                           {"x in range", InRange(t.x)},
                           {"x canonical", Canonical(t.x)}},
                          Definitions(t, layout));
    const SymPte& d = t.decoded;
    g.claims = {{"decoded.kind == x.kind", d.kind == t.x.kind},
                {"decoded.pfn == x.pfn", d.pfn == t.x.pfn},
                {"decoded.write == x.write", d.write == t.x.write},
                {"decoded.dirty == x.dirty", d.dirty == t.x.dirty},
                {"decoded.accessed == x.accessed", d.accessed == t.x.accessed},
                {"decoded.special == x.special", d.special == t.x.special},
                {"decoded.swap_type == x.swap_type", d.swap_type == t.x.swap_type}};
    g.render = [t](const z3::model& m) { return Render(t, m); };
    return g;
  });
}

// A copy of the real layout under `name`, changed by `edit`.
PteLayout Broken(const std::string& name, const std::function<void(PteLayout&)>& edit) {
  PteLayout layout = PteLayout::Real();
  layout.name = name;
  edit(layout);
  return layout;
}

PteLayout WithSwapType(const std::string& name, PteKind kind, unsigned type) {
  return Broken(name, [&](PteLayout& l) {
    for (auto& sk : l.swap_kinds) {
      if (sk.kind == kind) sk.type = type;
    }
  });
}

LemmaWithControl Entry(const std::string& name, const std::string& statement,
                       const std::string& invariant, LemmaResult (*lemma)(const PteLayout&),
                       const PteLayout& broken) {
  const std::string control = name + "NegativeControl";
  return {{name, statement, invariant, [lemma] { return lemma(PteLayout::Real()); }},
          {control, statement + " Negative control over a broken layout (" + broken.name +
                        "); must fail.",
           invariant, [lemma, broken, control] {
             LemmaResult r = lemma(broken);
             r.name = control;
             return r;
           }}};
}

}  // namespace

PteLayout PteLayout::Real() {
  return {"impl/pte.h",
          impl::kPtePfnShift,
          impl::kPteSwpMarker,
          {{{PteKind::kMigrationRead, impl::kSwpMigrationRead},
            {PteKind::kMigrationWrite, impl::kSwpMigrationWrite},
            {PteKind::kDevicePrivateRead, impl::kSwpDeviceRead},
            {PteKind::kDevicePrivateWrite, impl::kSwpDeviceWrite},
            {PteKind::kDeviceExclusiveRead, impl::kSwpDeviceExclusiveRead},
            {PteKind::kDeviceExclusiveWrite, impl::kSwpDeviceExclusiveWrite}}},
          0};
}

SymPte SymPteConst(z3::context& c, const std::string& prefix) {
  const auto name = [&](const char* field) { return prefix + "." + field; };
  return {c.bv_const(name("kind").c_str(), kKindBits),
          c.bv_const(name("pfn").c_str(), kPteBits),
          c.bool_const(name("write").c_str()),
          c.bool_const(name("dirty").c_str()),
          c.bool_const(name("accessed").c_str()),
          c.bool_const(name("special").c_str()),
          c.bv_const(name("swap_type").c_str(), kSwapTypeBits)};
}

SymPte SymPteVal(z3::context& c, const DecodedPte& d) {
  return {KindVal(c, d.kind),          Word(c, d.pfn),
          c.bool_val(d.write),         c.bool_val(d.dirty),
          c.bool_val(d.accessed),      c.bool_val(d.special),
          c.bv_val(d.swap_type, kSwapTypeBits)};
}

z3::expr IsKind(const SymPte& x, PteKind kind) { return x.kind == KindVal(x.kind.ctx(), kind); }

z3::expr SymPteEq(const SymPte& a, const SymPte& b) {
  return a.kind == b.kind && a.pfn == b.pfn && a.write == b.write && a.dirty == b.dirty &&
         a.accessed == b.accessed && a.special == b.special && a.swap_type == b.swap_type;
}

// Mirrors impl/pte.cc EncodePte(): an ite over the kinds; 0 for a value that
// is not a PteKind.
z3::expr SymEncodePte(const SymPte& x, const PteLayout& layout) {
  z3::context& c = x.kind.ctx();
  z3::expr pte = Word(c, 0);
  for (const auto& sk : layout.swap_kinds) {
    z3::expr word = SymMakeSwapPte(c.bv_val(sk.type, kSwapTypeBits), x.pfn, layout);
    if (IsDevicePrivate(sk.kind)) word = word | Word(c, layout.device_private_extra);
    pte = z3::ite(IsKind(x, sk.kind), word, pte);
  }
  pte = z3::ite(IsKind(x, PteKind::kSwap), SymMakeSwapPte(x.swap_type, x.pfn, layout), pte);
  pte = z3::ite(IsKind(x, PteKind::kPresent), SymMakePresentPte(x, layout), pte);
  return z3::ite(IsKind(x, PteKind::kNone), Word(c, 0), pte);
}

// Mirrors impl/pte.cc DecodePte(): none, else present, else the swap format
// with the kind chosen by the type (the first match in layout.swap_kinds;
// kSwap if none matches).
SymPte SymDecodePte(const z3::expr& pte, const PteLayout& layout) {
  z3::context& c = pte.ctx();
  const z3::expr none = pte == Word(c, 0);
  const z3::expr present = HasBits(pte, impl::kPtePresent);
  const z3::expr type =
      Field(pte, impl::kSwpTypeShift, impl::kSwpTypeBits).extract(kSwapTypeBits - 1, 0);
  z3::expr swap_kind = KindVal(c, PteKind::kSwap);
  for (auto sk = layout.swap_kinds.rbegin(); sk != layout.swap_kinds.rend(); ++sk) {
    swap_kind = z3::ite(type == c.bv_val(sk->type, kSwapTypeBits), KindVal(c, sk->kind), swap_kind);
  }
  const z3::expr is_swap = !none && !present && swap_kind == KindVal(c, PteKind::kSwap);
  return {z3::ite(none, KindVal(c, PteKind::kNone),
                  z3::ite(present, KindVal(c, PteKind::kPresent), swap_kind)),
          z3::ite(present, Field(pte, layout.pfn_shift, impl::kPtePfnBits),
                  Field(pte, impl::kSwpOffsetShift, impl::kSwpOffsetBits)),
          present && HasBits(pte, impl::kPteWrite),
          present && HasBits(pte, impl::kPteDirty),
          present && HasBits(pte, impl::kPteAccessed),
          present && HasBits(pte, impl::kPteSpecial),
          z3::ite(is_swap, type, c.bv_val(0u, kSwapTypeBits))};
}

DecodedPte ConcretePte(const SymPte& x, const std::function<z3::expr(const z3::expr&)>& eval) {
  DecodedPte d;
  d.kind = static_cast<PteKind>(eval(x.kind).get_numeral_uint64());
  d.pfn = eval(x.pfn).get_numeral_uint64();
  d.write = eval(x.write).is_true();
  d.dirty = eval(x.dirty).is_true();
  d.accessed = eval(x.accessed).is_true();
  d.special = eval(x.special).is_true();
  d.swap_type = static_cast<unsigned>(eval(x.swap_type).get_numeral_uint64());
  return d;
}

LemmaResult LemmaPteRoundTripPresent(const PteLayout& layout) {
  return RoundTrip("LemmaPteRoundTripPresent", {PteKind::kPresent}, layout);
}

LemmaResult LemmaPteRoundTripNoneAndSwap(const PteLayout& layout) {
  return RoundTrip("LemmaPteRoundTripNoneAndSwap", {PteKind::kNone, PteKind::kSwap}, layout);
}

LemmaResult LemmaPteRoundTripMigration(const PteLayout& layout) {
  return RoundTrip("LemmaPteRoundTripMigration",
                   {PteKind::kMigrationRead, PteKind::kMigrationWrite}, layout);
}

LemmaResult LemmaPteRoundTripDevicePrivate(const PteLayout& layout) {
  return RoundTrip("LemmaPteRoundTripDevicePrivate",
                   {PteKind::kDevicePrivateRead, PteKind::kDevicePrivateWrite}, layout);
}

LemmaResult LemmaPteRoundTripDeviceExclusive(const PteLayout& layout) {
  return RoundTrip("LemmaPteRoundTripDeviceExclusive",
                   {PteKind::kDeviceExclusiveRead, PteKind::kDeviceExclusiveWrite}, layout);
}

LemmaResult LemmaPteKindsDisjoint(const PteLayout& layout) {
  return Prove("LemmaPteKindsDisjoint", [&](z3::context& c) {
    const EntryTerms a = MakeEntryTerms(c, "a", "encoded_a", "decoded_a");
    const EntryTerms b = MakeEntryTerms(c, "b", "encoded_b", "decoded_b");
    Goal g;
    for (const EntryTerms* t : {&a, &b}) {
      g.hypotheses = Concat(g.hypotheses, {{t->x_name + ".kind is a PteKind", IsPteKind(t->x)},
                                           {t->x_name + " in range", InRange(t->x)},
                                           {t->x_name + " canonical", Canonical(t->x)}});
      g.hypotheses = Concat(g.hypotheses, Definitions(*t, layout));
    }
    const z3::expr kind_a = a.x.kind, dkind_a = a.decoded.kind;
    const auto kind = [&](PteKind k) { return KindVal(c, k); };
    g.claims = {
        {"a.kind != b.kind implies encoded_a != encoded_b",
         z3::implies(kind_a != b.x.kind, a.encoded != b.encoded)},
        {"a.kind != kPresent implies decoded_a.kind != kPresent",
         z3::implies(kind_a != kind(PteKind::kPresent), dkind_a != kind(PteKind::kPresent))},
        {"a.kind != kNone implies encoded_a != 0 and decoded_a.kind != kNone",
         z3::implies(kind_a != kind(PteKind::kNone),
                     a.encoded != Word(c, 0) && dkind_a != kind(PteKind::kNone))}};
    g.render = [a, b](const z3::model& m) { return Render(a, m) + Render(b, m); };
    return g;
  });
}

LemmaResult LemmaDevicePrivateNeverPresent(const PteLayout& layout) {
  return Prove("LemmaDevicePrivateNeverPresent", [&](z3::context& c) {
    const std::vector<PteKind> kinds = {PteKind::kDevicePrivateRead, PteKind::kDevicePrivateWrite};
    const EntryTerms t = MakeEntryTerms(c, "x", "encoded", "decoded");
    Goal g;
    // No range hypothesis: the claim holds for every 64-bit offset.
    g.hypotheses = Concat({{"x.kind in " + FamilyName(kinds), InFamily(t.x, kinds)},
                           {"x canonical", Canonical(t.x)}},
                          Definitions(t, layout));
    g.claims = {{"encoded & kPtePresent == 0", !HasBits(t.encoded, impl::kPtePresent)},
                {"decoded.kind != kPresent", !IsKind(t.decoded, PteKind::kPresent)}};
    g.render = [t](const z3::model& m) { return Render(t, m); };
    return g;
  });
}

std::vector<LemmaWithControl> PteLemmas() {
  const std::string max_type = std::to_string(impl::kMaxSwapfiles - 1);
  return {
      Entry("LemmaPteRoundTripPresent",
            "DecodePte(EncodePte(x)) == x for every present x: pfn <= kMaxPtePfn, any "
            "write/dirty/accessed/special.",
            "InvPteEncodingRoundTrip", &LemmaPteRoundTripPresent,
            Broken("present pfn field at kPteBitWrite, overlapping the write bit",
                   [](PteLayout& l) { l.pfn_shift = impl::kPteBitWrite; })),
      Entry("LemmaPteRoundTripNoneAndSwap",
            "DecodePte(EncodePte(x)) == x for the none entry and every swap entry: swap_type < "
            "kMaxSwapfiles, offset <= kMaxSwpOffset.",
            "InvPteEncodingRoundTrip", &LemmaPteRoundTripNoneAndSwap,
            Broken("swap entries without kPteSwpMarker", [](PteLayout& l) { l.swp_marker = 0; })),
      Entry("LemmaPteRoundTripMigration",
            "DecodePte(EncodePte(x)) == x for every migration read/write entry: offset <= "
            "kMaxSwpOffset.",
            "InvPteEncodingRoundTrip", &LemmaPteRoundTripMigration,
            WithSwapType("migration write entries typed kSwpMigrationRead",
                         PteKind::kMigrationWrite, impl::kSwpMigrationRead)),
      Entry("LemmaPteRoundTripDevicePrivate",
            "DecodePte(EncodePte(x)) == x for every device-private read/write entry: offset <= "
            "kMaxSwpOffset.",
            "InvPteEncodingRoundTrip", &LemmaPteRoundTripDevicePrivate,
            WithSwapType("device-private write entries typed kSwpDeviceRead",
                         PteKind::kDevicePrivateWrite, impl::kSwpDeviceRead)),
      Entry("LemmaPteRoundTripDeviceExclusive",
            "DecodePte(EncodePte(x)) == x for every device-exclusive read/write entry: offset "
            "<= kMaxSwpOffset.",
            "InvPteEncodingRoundTrip", &LemmaPteRoundTripDeviceExclusive,
            WithSwapType("device-exclusive write entries typed kSwpDeviceExclusiveRead",
                         PteKind::kDeviceExclusiveWrite, impl::kSwpDeviceExclusiveRead)),
      Entry("LemmaPteKindsDisjoint",
            "Over all canonical in-range entries: entries of different kinds encode "
            "differently, no non-present kind decodes as present, and only the none entry "
            "encodes or decodes as none.",
            "InvPteKindsDisjoint", &LemmaPteKindsDisjoint,
            WithSwapType("device-private write entries typed " + max_type +
                             " (kMaxSwapfiles - 1), a real swap file's type",
                         PteKind::kDevicePrivateWrite, impl::kMaxSwapfiles - 1)),
      Entry("LemmaDevicePrivateNeverPresent",
            "No device-private entry (read or write, any 64-bit offset) has bit kPteBitPresent "
            "set or decodes as present.",
            "InvDevicePageNeverPresent", &LemmaDevicePrivateNeverPresent,
            Broken("device-private entries set kPtePresent",
                   [](PteLayout& l) { l.device_private_extra = impl::kPtePresent; })),
  };
}

}  // namespace hmm::solver
