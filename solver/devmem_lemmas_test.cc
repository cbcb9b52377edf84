// File: solver/devmem_lemmas_test.cc
//
// Every device-memory lemma is proved and every negative control fails with a
// readable counterexample, each well under a second; the witnesses and
// counterexamples are re-checked in plain uint64_t arithmetic and against
// impl/pte.cc's real encoding, so the Z3 terms cannot drift from what they
// claim to be about.

#include "solver/devmem_lemmas.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "impl/pte.h"
#include "model/types.h"
#include "solver/lemma.h"
#include "solver/lemma_test_util.h"

namespace hmm::solver {
namespace {

// Generous against a loaded machine: each lemma takes well under 0.1 s here.
constexpr double kMaxSeconds = 5;

const std::vector<LemmaWithControl>& Entries() {
  static const auto* entries = new std::vector<LemmaWithControl>(DevmemLemmas());
  return *entries;
}

// A numeric field ("46", "0x8000000 (2^27)"); fails the test if missing.
uint64_t Num(const std::map<std::string, std::string>& fields, const std::string& name) {
  const auto it = fields.find(name);
  EXPECT_NE(it, fields.end()) << "no field " << name;
  return it == fields.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 0);
}

// The fields each control's counterexample must name (field -> value prefix).
std::map<std::string, std::string> ExpectedFields(const std::string& lemma) {
  const std::map<std::string, std::string> placement = {
      {"bits", ""},          {"section", "0x"},     {"size", "0x"},
      {"device.start", "0x"}, {"device.end", "0x"}};
  std::map<std::string, std::string> f;
  if (lemma == "LemmaDefaultPlacementNeverCollides") {
    f = placement;
    f["ram.start"] = "0x";
    f["ram.end"] = "0x";
  } else if (lemma == "LemmaDevicePfnFitsSwapOffset") {
    f = placement;
    f["pfn"] = "0x";
    f["entry.kind"] = "kDevicePrivate";
    f["encoded"] = "0x";
    f["decoded.pfn"] = "0x";
  } else if (lemma == "LemmaDevicePageRefcountRule") {
    f = {{"op", ""}, {"before.refcount", ""}, {"after.refcount", ""}, {"page_free", ""}};
  } else if (lemma == "LemmaInitialInvDevicePageNeverPresent") {
    f = {{"entry.pid", "0x"},
         {"entry.vpn", "0x"},
         {"initial.kind", "kPresent"},
         {"is_device(initial.pfn)", "true"}};
  } else {  // the inductive PTE-state lemmas
    f = {{"entry.pid", "0x"},
         {"entry.vpn", "0x"},
         {"before.kind", "k"},
         {"after.kind", "kPresent"},
         {"is_device(after.pfn)", "true"}};
  }
  return f;
}

std::string EntryName(const testing::TestParamInfo<size_t>& info) {
  return Entries()[info.param].lemma.name;
}

class DevmemLemmaTest : public testing::TestWithParam<size_t> {};

TEST_P(DevmemLemmaTest, Proved) {
  const Lemma& lemma = Entries()[GetParam()].lemma;
  const LemmaResult r = lemma.run();
  std::printf("%s\n", Describe(r).c_str());
  EXPECT_EQ(r.name, lemma.name);
  EXPECT_EQ(r.status, LemmaStatus::kProved) << Describe(r);
  EXPECT_TRUE(r.counterexample.empty());
  EXPECT_LT(r.seconds, kMaxSeconds);
}

TEST_P(DevmemLemmaTest, NegativeControlFailsWithCounterexample) {
  const LemmaWithControl& e = Entries()[GetParam()];
  ASSERT_EQ(e.control.name, e.lemma.name + "NegativeControl");
  const LemmaResult r = e.control.run();
  std::printf("%s\n", Describe(r).c_str());
  EXPECT_EQ(r.name, e.control.name);
  ASSERT_EQ(r.status, LemmaStatus::kFailed) << Describe(r);
  EXPECT_LT(r.seconds, kMaxSeconds);
  if (e.lemma.name == "LemmaV18PlacementCollides") {
    // An existence claim fails by unsat: there is no model to print.
    EXPECT_EQ(r.detail.rfind("no collision exists", 0), 0u) << r.detail;
    EXPECT_TRUE(r.counterexample.empty());
    return;
  }
  EXPECT_EQ(r.detail.rfind("claim fails: ", 0), 0u) << r.detail;
  const auto fields = Fields(r.counterexample);
  for (const auto& [field, prefix] : ExpectedFields(e.lemma.name)) {
    const auto it = fields.find(field);
    ASSERT_NE(it, fields.end()) << field << "\n" << r.counterexample;
    EXPECT_EQ(it->second.rfind(prefix, 0), 0u) << field << " = " << it->second;
  }
}

INSTANTIATE_TEST_SUITE_P(DevmemLemmas, DevmemLemmaTest,
                         testing::Range<size_t>(0, Entries().size()), EntryName);

const LemmaWithControl& Find(const std::string& name) {
  for (const LemmaWithControl& e : Entries()) {
    if (e.lemma.name == name) return e;
  }
  ADD_FAILURE() << name << " is not in DevmemLemmas()";
  return Entries().front();
}

TEST(DevmemLemmaRegistryTest, RegisteredWithTheirInvariants) {
  const std::map<std::string, std::string> invariant = {
      {"LemmaDefaultPlacementNeverCollides", "InvDeviceRangePlacement"},
      {"LemmaDevicePfnFitsSwapOffset", "InvDeviceRangePlacement"},
      {"LemmaV18PlacementCollides", ""},
      {"LemmaDevicePageRefcountRule", "InvPageFreeOncePerAllocation"},
      {"LemmaInitialInvDevicePageNeverPresent", "InvDevicePageNeverPresent"},
      {"LemmaForkPreservesInvDevicePageNeverPresent", "InvDevicePageNeverPresent"},
      {"LemmaMunmapPreservesInvDevicePageNeverPresent", "InvDevicePageNeverPresent"},
      {"LemmaMprotectPreservesInvDevicePageNeverPresent", "InvDevicePageNeverPresent"},
      {"LemmaCpuFaultPreservesInvDevicePageNeverPresent", "InvDevicePageNeverPresent"}};
  ASSERT_EQ(Entries().size(), invariant.size());
  for (const LemmaWithControl& e : Entries()) {
    ASSERT_EQ(invariant.count(e.lemma.name), 1u) << e.lemma.name;
    EXPECT_EQ(e.lemma.invariant, invariant.at(e.lemma.name));
    EXPECT_EQ(e.control.invariant, e.lemma.invariant);
    EXPECT_FALSE(e.lemma.statement.empty());
    // In the registry, paired with its control at the same index.
    size_t found = 0;
    for (size_t i = 0; i < AllLemmas().size(); ++i) {
      if (AllLemmas()[i].name != e.lemma.name) continue;
      ++found;
      EXPECT_EQ(NegativeControls()[i].name, e.control.name);
    }
    EXPECT_EQ(found, 1u) << e.lemma.name;
  }
}

TEST(DevmemLemmaRegistryTest, InductiveLemmasNamedOpPreservesInv) {
  for (const char* op : {"Fork", "Munmap", "Mprotect", "CpuFault"}) {
    const std::string name = std::string("Lemma") + op + "PreservesInvDevicePageNeverPresent";
    EXPECT_EQ(Find(name).lemma.invariant, "InvDevicePageNeverPresent");
  }
  EXPECT_EQ(Find("LemmaInitialInvDevicePageNeverPresent").lemma.invariant,
            "InvDevicePageNeverPresent");
}

// ---- The witnesses and counterexamples, re-checked without Z3. ----

TEST(V18PlacementCollidesTest, WitnessIsAnAcceptedHotAddThatOverlaps) {
  const LemmaResult r = Find("LemmaV18PlacementCollides").lemma.run();
  ASSERT_EQ(r.status, LemmaStatus::kProved) << Describe(r);
  ASSERT_EQ(r.detail.rfind("witness", 0), 0u) << r.detail;
  const auto f = Fields(r.detail);
  const uint64_t bits = Num(f, "bits"), section = Num(f, "section"), size = Num(f, "size");
  const uint64_t dev_start = Num(f, "device.start"), dev_end = Num(f, "device.end");
  const uint64_t ram_start = Num(f, "ram.start"), ram_end = Num(f, "ram.end");
  ASSERT_GE(bits, kMinPhysmemBits);
  ASSERT_LE(bits, kMaxPhysmemBits);
  const uint64_t limit = uint64_t{1} << bits;
  // The machine and v18's first candidate.
  EXPECT_GE(section, kMinSectionBytes);
  EXPECT_LE(section, kMaxSectionBytes);
  EXPECT_EQ(section & (section - 1), 0u) << "section not a power of two";
  EXPECT_TRUE(size > 0 && size % section == 0 && size <= limit) << size;
  EXPECT_EQ(dev_start, limit - size);
  EXPECT_EQ(dev_end, dev_start + size);
  EXPECT_GE(dev_start, kMaxRamPages * kPageSize) << "the window would hit boot RAM";
  // The hot-add passes RamHotAdd's range checks and misses boot RAM.
  EXPECT_LT(ram_start, ram_end);
  EXPECT_EQ(ram_start % section, 0u);
  EXPECT_EQ(ram_end % section, 0u);
  EXPECT_LE(ram_end, limit);
  EXPECT_GE(ram_start, kMaxRamPages * kPageSize);
  // And it overlaps the device range.
  EXPECT_TRUE(ram_start < dev_end && dev_start < ram_end)
      << "[" << ram_start << ", " << ram_end << ") vs [" << dev_start << ", " << dev_end << ")";
}

TEST(DefaultPlacementTest, ControlCounterexampleOverlapsInPlainArithmetic) {
  const LemmaResult r = Find("LemmaDefaultPlacementNeverCollides").control.run();
  ASSERT_EQ(r.status, LemmaStatus::kFailed) << Describe(r);
  const auto f = Fields(r.counterexample);
  const uint64_t limit = uint64_t{1} << Num(f, "bits");
  EXPECT_EQ(Num(f, "device.start"), limit - Num(f, "section"));
  EXPECT_LE(Num(f, "ram.end"), limit);
  EXPECT_TRUE(Num(f, "ram.start") < Num(f, "device.end") &&
              Num(f, "device.start") < Num(f, "ram.end"))
      << r.counterexample;
}

// The raw device-private swap entry for `pfn`, built as EncodePte builds it but
// without its in-range assertion (which fires in debug builds, as it should,
// for the out-of-range pfns these tests feed on purpose).
impl::pte_t RawDeviceEntry(impl::PteKind kind, uint64_t pfn) {
  return impl::MakeSwapPte(kind == impl::PteKind::kDevicePrivateWrite ? impl::kSwpDeviceWrite
                                                                      : impl::kSwpDeviceRead,
                           pfn);
}

TEST(DevicePfnFitsSwapOffsetTest, LimitMatchesTheRealEncoding) {
  // The limit the lemma proves against is the width impl/pte.h gives the offset.
  EXPECT_EQ(kDevicePfnBits, impl::kSwpOffsetBits);
  // The highest device pfn the default limit allows round-trips through the
  // real EncodePte/DecodePte; one more does not.
  for (impl::PteKind kind : {impl::PteKind::kDevicePrivateRead, impl::PteKind::kDevicePrivateWrite}) {
    impl::DecodedPte d;
    d.kind = kind;
    d.pfn = (uint64_t{1} << kDevicePfnBits) - 1;
    EXPECT_EQ(impl::EncodePte(d), RawDeviceEntry(kind, d.pfn));
    EXPECT_EQ(impl::DecodePte(impl::EncodePte(d)), d);
    d.pfn += 1;
    EXPECT_NE(impl::DecodePte(RawDeviceEntry(kind, d.pfn)).pfn, d.pfn);
  }
}

TEST(DevicePfnFitsSwapOffsetTest, ControlCounterexampleBreaksTheRealEncoding) {
  const LemmaResult r = Find("LemmaDevicePfnFitsSwapOffset").control.run();
  ASSERT_EQ(r.status, LemmaStatus::kFailed) << Describe(r);
  const auto f = Fields(r.counterexample);
  const uint64_t pfn = Num(f, "pfn");
  EXPECT_GT(pfn, impl::kMaxSwpOffset);
  EXPECT_LE(Num(f, "device.end"), uint64_t{1} << (kPageShift + kDevicePfnBits + 1));
  impl::DecodedPte d;
  d.kind = f.at("entry.kind") == "kDevicePrivateRead" ? impl::PteKind::kDevicePrivateRead
                                                       : impl::PteKind::kDevicePrivateWrite;
  d.pfn = pfn;
  EXPECT_EQ(RawDeviceEntry(d.kind, pfn), Num(f, "encoded"));
  EXPECT_EQ(impl::DecodePte(RawDeviceEntry(d.kind, pfn)).pfn, Num(f, "decoded.pfn"));
}

TEST(DevicePageRefcountRuleTest, ControlPutsAtOne) {
  const LemmaResult r = Find("LemmaDevicePageRefcountRule").control.run();
  ASSERT_EQ(r.status, LemmaStatus::kFailed) << Describe(r);
  const auto f = Fields(r.counterexample);
  EXPECT_EQ(f.at("op"), "put");
  EXPECT_EQ(f.at("before.refcount"), "1");
  EXPECT_EQ(f.at("after.refcount"), "0");
}

}  // namespace
}  // namespace hmm::solver
