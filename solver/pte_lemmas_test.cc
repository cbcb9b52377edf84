// File: solver/pte_lemmas_test.cc
//
// One test per lemma (it is proved) and per negative control (it fails with a
// readable counterexample), plus the tie between the Z3 terms and the C++
// encoding: on thousands of concrete samples, SymEncodePte/SymDecodePte
// evaluate to exactly what impl/pte.cc's EncodePte/DecodePte return.

#include "solver/pte_lemmas.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "impl/pte.h"
#include "solver/lemma.h"
#include "solver/lemma_test_util.h"

namespace hmm::solver {
namespace {

using impl::DecodedPte;
using impl::pte_t;
using impl::PteKind;

// The PTE lemmas only: other *_lemmas_test.cc check their own entries.
const std::vector<LemmaWithControl>& PteEntries() {
  static const auto* entries = new std::vector<LemmaWithControl>(PteLemmas());
  return *entries;
}

std::string LemmaName(const testing::TestParamInfo<size_t>& info) {
  return PteEntries()[info.param].lemma.name;
}

class LemmaTest : public testing::TestWithParam<size_t> {};

TEST_P(LemmaTest, Proved) {
  const Lemma& lemma = PteEntries()[GetParam()].lemma;
  const LemmaResult r = lemma.run();
  std::printf("%s\n", Describe(r).c_str());
  EXPECT_EQ(r.name, lemma.name);
  EXPECT_EQ(r.status, LemmaStatus::kProved) << Describe(r);
  EXPECT_GT(r.rlimit, 0u);
  EXPECT_TRUE(r.counterexample.empty());
}

TEST_P(LemmaTest, NegativeControlFailsWithCounterexample) {
  const Lemma& control = PteEntries()[GetParam()].control;
  ASSERT_EQ(control.name, PteEntries()[GetParam()].lemma.name + "NegativeControl");
  const LemmaResult r = control.run();
  std::printf("%s\n", Describe(r).c_str());
  EXPECT_EQ(r.name, control.name);
  ASSERT_EQ(r.status, LemmaStatus::kFailed) << Describe(r);
  EXPECT_NE(r.detail.find("claim fails: "), std::string::npos) << r.detail;
  for (const char* field : {".kind = k", ".pfn = 0x", "encoded"}) {
    EXPECT_NE(r.counterexample.find(field), std::string::npos) << field << "\n" << r.counterexample;
  }
}

INSTANTIATE_TEST_SUITE_P(PteLemmas, LemmaTest, testing::Range<size_t>(0, PteEntries().size()),
                         LemmaName);

TEST(LemmaRegistryTest, ControlsPairWithLemmas) {
  ASSERT_EQ(AllLemmas().size(), NegativeControls().size());
  ASSERT_GE(AllLemmas().size(), 7u);  // the PTE lemmas, at least
  for (size_t i = 0; i < AllLemmas().size(); ++i) {
    EXPECT_EQ(NegativeControls()[i].name, AllLemmas()[i].name + "NegativeControl");
    EXPECT_EQ(NegativeControls()[i].invariant, AllLemmas()[i].invariant);
    EXPECT_FALSE(AllLemmas()[i].statement.empty());
  }
}

TEST(LemmaRegistryTest, DevicePrivateNeverPresentNamesItsInvariant) {
  for (const Lemma& lemma : AllLemmas()) {
    if (lemma.name == "LemmaDevicePrivateNeverPresent") {
      EXPECT_EQ(lemma.invariant, "InvDevicePageNeverPresent");
      return;
    }
  }
  FAIL() << "LemmaDevicePrivateNeverPresent is not registered";
}

TEST(LemmaStatusNameTest, NamesEveryStatus) {
  EXPECT_STREQ(LemmaStatusName(LemmaStatus::kProved), "kProved");
  EXPECT_STREQ(LemmaStatusName(LemmaStatus::kFailed), "kFailed");
  EXPECT_STREQ(LemmaStatusName(LemmaStatus::kUnknown), "kUnknown");
  EXPECT_STREQ(LemmaStatusName(LemmaStatus::kError), "kError");
}

TEST(DevicePrivateNeverPresentTest, ControlCounterexampleReadsAsFields) {
  const LemmaResult r = PteEntries().back().control.run();
  ASSERT_EQ(r.name, "LemmaDevicePrivateNeverPresentNegativeControl");
  ASSERT_EQ(r.status, LemmaStatus::kFailed);
  EXPECT_NE(r.counterexample.find("x.kind = kDevicePrivate"), std::string::npos);
  EXPECT_NE(r.counterexample.find("decoded.kind = kPresent"), std::string::npos);
}

// ---- The Z3 terms agree with impl/pte.cc on concrete values. ----

constexpr PteKind kKinds[] = {
    PteKind::kNone,           PteKind::kPresent,           PteKind::kSwap,
    PteKind::kMigrationRead,  PteKind::kMigrationWrite,    PteKind::kDevicePrivateRead,
    PteKind::kDevicePrivateWrite, PteKind::kDeviceExclusiveRead, PteKind::kDeviceExclusiveWrite};

// A field value biased to the edges: 0, 1, the maximum, or uniform.
uint64_t FieldValue(std::mt19937_64& rng, uint64_t max) {
  switch (rng() % 4) {
    case 0:
      return rng() % 2;
    case 1:
      return max - rng() % 2;
    default:
      return rng() & max;
  }
}

// A canonical entry with in-range fields, as DecodePte would return it.
DecodedPte RandomCanonicalPte(std::mt19937_64& rng) {
  DecodedPte d;
  d.kind = kKinds[rng() % 9];
  if (d.kind == PteKind::kNone) return d;
  if (d.kind == PteKind::kPresent) {
    d.pfn = FieldValue(rng, impl::kMaxPtePfn);
    d.write = rng() & 1;
    d.dirty = rng() & 1;
    d.accessed = rng() & 1;
    d.special = rng() & 1;
    return d;
  }
  d.pfn = FieldValue(rng, impl::kMaxSwpOffset);
  if (d.kind == PteKind::kSwap) d.swap_type = FieldValue(rng, 31) % impl::kMaxSwapfiles;
  return d;
}

// A raw word: any bits, a non-present word, or a canonical encoding with a few
// stray bits flipped.
pte_t RandomWord(std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0:
      return rng();
    case 1:
      return rng() & ~impl::kPtePresent;
    case 2:
      return impl::EncodePte(RandomCanonicalPte(rng));
    default:
      return impl::EncodePte(RandomCanonicalPte(rng)) ^ (pte_t{1} << (rng() % 64));
  }
}

const auto kSimplify = [](const z3::expr& e) { return e.simplify(); };

std::string Show(const DecodedPte& d) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "{%s pfn=0x%llx w=%d d=%d a=%d s=%d type=%u}",
                impl::PteKindName(d.kind), static_cast<unsigned long long>(d.pfn), d.write,
                d.dirty, d.accessed, d.special, d.swap_type);
  return buf;
}

TEST(PteTermsAgreeWithImplTest, EncodeOnCanonicalSamples) {
  z3::context c;
  std::mt19937_64 rng(20240601);
  for (int i = 0; i < 3000; ++i) {
    const DecodedPte d = RandomCanonicalPte(rng);
    const pte_t expected = impl::EncodePte(d);
    const uint64_t got =
        SymEncodePte(SymPteVal(c, d), PteLayout::Real()).simplify().get_numeral_uint64();
    ASSERT_EQ(got, expected) << Show(d);
    // And the C++ encoding itself round-trips.
    ASSERT_EQ(impl::DecodePte(expected), d) << Show(d);
  }
}

TEST(PteTermsAgreeWithImplTest, EncodeIgnoresUnusedFields) {
  z3::context c;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1000; ++i) {
    DecodedPte d = RandomCanonicalPte(rng);
    if (d.kind != PteKind::kPresent) {
      d.write = rng() & 1;
      d.dirty = rng() & 1;
      d.accessed = rng() & 1;
      d.special = rng() & 1;
    }
    if (d.kind == PteKind::kNone) d.pfn = rng();
    if (d.kind != PteKind::kSwap) d.swap_type = rng();
    const uint64_t got =
        SymEncodePte(SymPteVal(c, d), PteLayout::Real()).simplify().get_numeral_uint64();
    ASSERT_EQ(got, impl::EncodePte(d)) << Show(d);
  }
}

TEST(PteTermsAgreeWithImplTest, DecodeOnRawWords) {
  z3::context c;
  std::mt19937_64 rng(42);
  for (int i = 0; i < 4000; ++i) {
    const pte_t pte = i < 2 ? pte_t{0} - i : RandomWord(rng);
    const DecodedPte got =
        ConcretePte(SymDecodePte(c.bv_val(pte, kPteBits), PteLayout::Real()), kSimplify);
    ASSERT_EQ(got, impl::DecodePte(pte)) << std::hex << "pte 0x" << pte << ": " << Show(got)
                                         << " vs " << Show(impl::DecodePte(pte));
  }
}

TEST(PteImplTest, StrayBitsDecodeByTypeAndOffset) {
  // Documented in impl/pte.cc: a non-present word without the marker decodes
  // by its type and offset fields.
  const pte_t canonical = impl::MakeSwapPte(impl::kSwpDeviceWrite, 0x1234);
  const pte_t stray = (canonical & ~impl::kPteSwpMarker) | (pte_t{1} << 63);
  EXPECT_EQ(impl::DecodePte(stray), impl::DecodePte(canonical));
  EXPECT_EQ(impl::DecodePte(stray).kind, PteKind::kDevicePrivateWrite);
  EXPECT_EQ(impl::DecodePte(stray).pfn, 0x1234u);
}

TEST(PteImplTest, KindNames) {
  for (PteKind kind : kKinds) EXPECT_EQ(impl::PteKindName(kind)[0], 'k');
  EXPECT_STREQ(impl::PteKindName(PteKind::kDevicePrivateWrite), "kDevicePrivateWrite");
}

}  // namespace
}  // namespace hmm::solver
