// File: solver/mirror_lemmas_test.cc
//
// Every mirroring lemma is proved, and every negative control fails with a
// counterexample that, re-read as plain "field = value" lines, really breaks
// the invariant its lemma is about: a pt entry or a valid range's VALID entry
// that names another target than the CPU entry (or has write the CPU entry
// lacks), or a range valid at range_done after a revoking change.

#include "solver/mirror_lemmas.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "model/types.h"
#include "solver/lemma.h"
#include "solver/lemma_test_util.h"

namespace hmm::solver {
namespace {

const std::vector<LemmaWithControl>& Entries() {
  static const auto* entries = new std::vector<LemmaWithControl>(MirrorLemmas());
  return *entries;
}

// InvMirrorSubsetOfCpu's Match, on the printed fields: `e` names what `cpu`
// maps (never none), writable only if `cpu` is.
bool Matches(const FieldMap& f, const std::string& e, const std::string& cpu) {
  return Get(f, cpu + ".kind") != "kNone" && Get(f, e + ".kind") == Get(f, cpu + ".kind") &&
         Get(f, e + ".id") == Get(f, cpu + ".id") &&
         (Get(f, e + ".write") != "true" || Get(f, cpu + ".write") == "true");
}

bool HasFlag(const FieldMap& f, const std::string& field, uint64_t flag) {
  return (std::strtoull(Get(f, field).c_str(), nullptr, 0) & flag) != 0;
}

// Re-checks, from the text alone, that the counterexample breaks the claim.
void ExpectBreaks(const std::string& invariant, const FieldMap& f) {
  if (invariant == "InvMirrorSubsetOfCpu") {
    EXPECT_NE(Get(f, "after.pt.kind"), "kNone");
    EXPECT_FALSE(Matches(f, "after.pt", "after.cpu"));
  } else if (invariant == "InvValidRangeMatchesCpu") {
    EXPECT_EQ(Get(f, "after.range.open"), "true");
    EXPECT_EQ(Get(f, "after.range.valid"), "true");
    EXPECT_TRUE(HasFlag(f, "after.entry.flags", kHmmPfnValid));
    EXPECT_FALSE(Matches(f, "after.entry", "after.cpu"));
  } else {
    ASSERT_EQ(invariant, "InvValidRangeNotInvalidated");
    EXPECT_EQ(Get(f, "op"), "Mprotect");
    EXPECT_EQ(Get(f, "before.entry.ghost"), "0");
    EXPECT_EQ(Get(f, "after.range.valid"), "true");
    EXPECT_NE(Get(f, "after.entry.ghost"), "0");
    EXPECT_EQ(Get(f, "before.cpu.write"), "true");
    EXPECT_EQ(Get(f, "after.cpu.write"), "false") << "the downgrade mprotect did not notify";
  }
}

HMM_LEMMA_ENTRY_TESTS(MirrorLemmas, MirrorLemmaTest, Entries, ExpectBreaks);

TEST(MirrorLemmaRegistryTest, OneLemmaPerOperationAndInvariant) {
  std::set<std::string> names;
  for (const LemmaWithControl& e : Entries()) names.insert(e.lemma.name);
  EXPECT_EQ(names.size(), Entries().size()) << "a name is registered twice";
  const char* ops[] = {"Munmap",      "Mprotect",     "MadviseDontneed", "MremapMove",
                       "Fork",        "CpuReadFault", "CpuWriteFault",   "DeviceEntryInstall",
                       "Exit",        "GetPfns",      "HmmFault",        "DmirrorCommit",
                       "DmirrorFault"};
  for (const std::string op : ops) {
    EXPECT_EQ(names.count("Lemma" + op + "PreservesInvValidRangeMatchesCpu"), 1u) << op;
    // get_pfns changes neither a pt nor a CPU entry: no subset lemma.
    EXPECT_EQ(names.count("Lemma" + op + "PreservesInvMirrorSubsetOfCpu"),
              op == "GetPfns" ? 0u : 1u)
        << op;
  }
  EXPECT_EQ(names.count("LemmaInitialEstablishesInvMirrorSubsetOfCpu"), 1u);
  EXPECT_EQ(names.count("LemmaInitialEstablishesInvValidRangeMatchesCpu"), 1u);
  EXPECT_EQ(names.count("LemmaRangeDoneTrueImpliesNoOverlappingInvalidation"), 1u);
  EXPECT_EQ(Entries().size(), 2u + 2 * 13 - 1 + 1);
}

TEST(MirrorLemmaRegistryTest, RegisteredWithTheirInvariants) {
  for (const LemmaWithControl& e : Entries()) {
    const std::string& name = e.lemma.name;
    const std::string expected =
        name == "LemmaRangeDoneTrueImpliesNoOverlappingInvalidation" ? "InvValidRangeNotInvalidated"
        : name.find("InvMirrorSubsetOfCpu") != std::string::npos     ? "InvMirrorSubsetOfCpu"
                                                                     : "InvValidRangeMatchesCpu";
    ExpectRegistered(e, expected);
  }
}

TEST(MirrorLemmaRegistryTest, StepLemmasCiteTheKernel) {
  for (const LemmaWithControl& e : Entries()) {
    if (e.lemma.name.find("Preserves") == std::string::npos) continue;
    EXPECT_NE(e.lemma.statement.find(" Mirrors: "), std::string::npos) << e.lemma.name;
  }
}

TEST(MirrorLemmaTest, CommitSubsetNeedsTheValidRangeInvariant) {
  const LemmaResult r =
      LemmaPreserves(MirrorOp::kDmirrorCommit, MirrorInv::kSubset, MirrorSteps::Real());
  ASSERT_EQ(r.status, LemmaStatus::kProved) << Describe(r);
  EXPECT_NE(r.detail.find("InvValidRangeMatchesCpu(before)"), std::string::npos) << r.detail;
}

// The counterexample of Lemma<op>Preserves<inv> over Real() with `flag` set.
FieldMap BrokenCounterexample(MirrorOp op, MirrorInv inv, bool MirrorSteps::*flag) {
  MirrorSteps broken = MirrorSteps::Real();
  broken.*flag = true;
  const LemmaResult r = LemmaPreserves(op, inv, broken);
  EXPECT_EQ(r.status, LemmaStatus::kFailed) << Describe(r);
  return Fields(r.counterexample);
}

uint64_t Num(const FieldMap& f, const std::string& name) {
  return std::strtoull(Get(f, name).c_str(), nullptr, 0);
}

TEST(MirrorLemmaTest, CommitIgnoringValidInstallsAnInvalidRangesEntry) {
  const FieldMap f = BrokenCounterexample(MirrorOp::kDmirrorCommit, MirrorInv::kSubset,
                                          &MirrorSteps::commit_ignores_valid);
  EXPECT_EQ(Get(f, "commit.range_done"), "false");
  EXPECT_TRUE(Get(f, "before.pt.kind") != Get(f, "after.pt.kind") ||
              Get(f, "before.pt.id") != Get(f, "after.pt.id") ||
              Get(f, "before.pt.write") != Get(f, "after.pt.write"))
      << "the commit installed the entry";
}

TEST(MirrorLemmaTest, MunmapControlMissesExactlyTheLastPage) {
  const FieldMap f = BrokenCounterexample(MirrorOp::kMunmap, MirrorInv::kSubset,
                                          &MirrorSteps::munmap_misses_last_page);
  EXPECT_EQ(Num(f, "entry.vpn") + 1, Num(f, "munmap.end"));
}

TEST(MirrorLemmaTest, HmmFaultCowBreakWithoutNotifyLeavesAStalePt) {
  // Without the notification, hmm_vma_fault's write fault replaces a page that
  // a mirror's pt still maps.
  const FieldMap f = BrokenCounterexample(MirrorOp::kHmmFault, MirrorInv::kSubset,
                                          &MirrorSteps::fault_skips_notify);
  EXPECT_EQ(Get(f, "hmm_fault.write"), "true");
  EXPECT_NE(Get(f, "after.cpu.id") + Get(f, "after.cpu.kind"),
            Get(f, "after.pt.id") + Get(f, "after.pt.kind"));
}

}  // namespace
}  // namespace hmm::solver
