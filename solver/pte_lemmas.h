// File: solver/pte_lemmas.h
//
// impl/pte.h's packed 64-bit PTE encoding as Z3 bit-vector terms, and the
// lemmas about it. SymEncodePte/SymDecodePte restate impl/pte.cc's
// EncodePte/DecodePte line for line, built only from impl/pte.h's constants;
// pte_lemmas_test.cc checks on concrete samples that the two agree, which ties
// the proofs to the real code.
//
// The terms take a PteLayout. PteLayout::Real() is impl/pte.h; each negative
// control runs the same lemma over a layout broken in one place.

#ifndef HMMREF_SOLVER_PTE_LEMMAS_H_
#define HMMREF_SOLVER_PTE_LEMMAS_H_

#include <z3++.h>

#include <array>
#include <functional>
#include <string>
#include <vector>

#include "impl/pte.h"
#include "solver/lemma.h"
#include "solver/prove.h"

namespace hmm::solver {

// Bit widths of the terms: kind holds the PteKind value (its underlying
// uint8_t), pfn and the encoded word are 64 bits, swap_type is an unsigned.
constexpr unsigned kKindBits = 8;
constexpr unsigned kPteBits = 64;
constexpr unsigned kSwapTypeBits = 32;

// An impl::DecodedPte as Z3 terms: bit-vectors of the widths above; the four
// flags are Bools.
struct SymPte {
  z3::expr kind;
  z3::expr pfn;
  z3::expr write;
  z3::expr dirty;
  z3::expr accessed;
  z3::expr special;
  z3::expr swap_type;
};

// The encoding the terms follow. Real() takes every value from impl/pte.h.
struct PteLayout {
  struct SwapKindType {
    impl::PteKind kind;
    unsigned type;
  };
  std::string name;
  unsigned pfn_shift;                        // of the present pfn field (kPtePfnBits wide)
  impl::pte_t swp_marker;                    // set in every swap-format entry
  std::array<SwapKindType, 6> swap_kinds;    // the special swap kinds and their types
  impl::pte_t device_private_extra;          // bits OR-ed into device-private entries

  static PteLayout Real();
};

// Fresh constants "<prefix>.kind", "<prefix>.pfn", ...
SymPte SymPteConst(z3::context& c, const std::string& prefix);
// Numerals holding d's fields.
SymPte SymPteVal(z3::context& c, const impl::DecodedPte& d);
// The term of x.kind == kind.
z3::expr IsKind(const SymPte& x, impl::PteKind kind);
// The term of a == b, field by field (DecodedPte::operator==).
z3::expr SymPteEq(const SymPte& a, const SymPte& b);

// Mirrors impl/pte.cc EncodePte(), DecodePte() under `layout`.
z3::expr SymEncodePte(const SymPte& x, const PteLayout& layout);
SymPte SymDecodePte(const z3::expr& pte, const PteLayout& layout);

// x's fields as a DecodedPte, each field evaluated by `eval` (a model's
// eval(e, true), or simplify() for terms over numerals) to a numeral.
impl::DecodedPte ConcretePte(const SymPte& x, const std::function<z3::expr(const z3::expr&)>& eval);

// The lemmas. Each proves its claim over `layout`; with PteLayout::Real() it is
// the claim about impl/pte.h.

// DecodePte(EncodePte(x)) == x for every canonical present x, pfn <= kMaxPtePfn.
LemmaResult LemmaPteRoundTripPresent(const PteLayout& layout);
// The same for the none entry and every swap entry, type < kMaxSwapfiles,
// offset <= kMaxSwpOffset.
LemmaResult LemmaPteRoundTripNoneAndSwap(const PteLayout& layout);
// The same for migration read/write entries, offset <= kMaxSwpOffset.
LemmaResult LemmaPteRoundTripMigration(const PteLayout& layout);
// The same for device-private read/write entries, offset <= kMaxSwpOffset.
LemmaResult LemmaPteRoundTripDevicePrivate(const PteLayout& layout);
// The same for device-exclusive read/write entries, offset <= kMaxSwpOffset.
LemmaResult LemmaPteRoundTripDeviceExclusive(const PteLayout& layout);
// Entries of different kinds encode differently; no non-present kind decodes
// as present; only the none entry encodes as (or decodes as) none.
LemmaResult LemmaPteKindsDisjoint(const PteLayout& layout);
// No device-private entry, for any 64-bit offset, has bit 0 set or decodes as
// present. Invariant InvDevicePageNeverPresent.
LemmaResult LemmaDevicePrivateNeverPresent(const PteLayout& layout);

// The registry entries of the lemmas above, each with its negative control.
std::vector<LemmaWithControl> PteLemmas();

}  // namespace hmm::solver

#endif  // HMMREF_SOLVER_PTE_LEMMAS_H_
