// File: solver/migrate_lemmas_test.cc
//
// Every migration lemma is proved, and every negative control fails with a
// counterexample that, re-read as plain "field = value" lines, really breaks
// the invariant its lemma is about. More breaks than the registered controls
// (one per phase of the InvNoMigrationEntry strengthening, the insertion)
// show that each claim can fail.

#include "solver/migrate_lemmas.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "solver/lemma.h"
#include "solver/lemma_test_util.h"

namespace hmm::solver {
namespace {

const std::vector<LemmaWithControl>& Entries() {
  static const auto* entries = new std::vector<LemmaWithControl>(MigrateLemmas());
  return *entries;
}

// Re-checks, from the printed fields alone, that a control's counterexample
// breaks its lemma's invariant.
void ExpectBreaks(const std::string& invariant, const FieldMap& f) {
  if (invariant == "InvDevicePageNeverPresent") {
    EXPECT_EQ(Get(f, "after.entry.kind"), "kPresent");
    EXPECT_EQ(Get(f, "after.entry.device"), "true");
  } else if (invariant == "InvNoMigrationEntry") {
    EXPECT_EQ(Get(f, "op"), "Finalize");
    EXPECT_EQ(Get(f, "after.entry.kind"), "kMigration");
  } else if (invariant == "InvMigrationPerPageAtomic") {
    EXPECT_EQ(Get(f, "before.entry.write"), "false");
    EXPECT_EQ(Get(f, "finalize.entry.write"), "true");
  } else if (invariant == "InvMigrationSkipsPinned") {
    EXPECT_EQ(Get(f, "page.pinned"), "true");
    EXPECT_EQ(Get(f, "page.device"), "false");
    EXPECT_EQ(Get(f, "before.entry.kind"), "kPresent");
    EXPECT_NE(Get(f, "finalize.entry.page"), Get(f, "before.entry.page"));
  } else {
    ASSERT_EQ(invariant, "InvMigrationOnlyPrivateAnonToDevice");
    EXPECT_EQ(Get(f, "page.shared"), "true");
    EXPECT_EQ(Get(f, "before.entry.kind"), "kPresent");
    EXPECT_EQ(Get(f, "finalize.entry.kind"), "kDevicePrivate");
    EXPECT_EQ(Get(f, "page.dst.device"), "true");
  }
}

HMM_LEMMA_ENTRY_TESTS(MigrateLemmas, MigrateLemmaTest, Entries, ExpectBreaks);

TEST(MigrateLemmaRegistryTest, RegisteredWithTheirInvariants) {
  const std::map<std::string, std::string> expected = {
      {"LemmaMigrateVmaPreservesInvDevicePageNeverPresent", "InvDevicePageNeverPresent"},
      {"LemmaMigrateToRamPreservesInvDevicePageNeverPresent", "InvDevicePageNeverPresent"},
      {"LemmaMigrateVmaPreservesInvNoMigrationEntry", "InvNoMigrationEntry"},
      {"LemmaMigrateVmaSatisfiesInvMigrationPerPageAtomic", "InvMigrationPerPageAtomic"},
      {"LemmaMigrateVmaSatisfiesInvMigrationSkipsPinned", "InvMigrationSkipsPinned"},
      {"LemmaMigrateVmaSatisfiesInvMigrationOnlyPrivateAnonToDevice",
       "InvMigrationOnlyPrivateAnonToDevice"}};
  ASSERT_EQ(Entries().size(), expected.size());
  for (const LemmaWithControl& e : Entries()) {
    const std::string& name = e.lemma.name;
    ASSERT_EQ(expected.count(name), 1u) << name;
    ExpectRegistered(e, expected.at(name));
    EXPECT_NE(e.lemma.statement.find(" Mirrors: "), std::string::npos) << name;
  }
}

// The counterexample of `which` over Real() with `flag` set; `claim` is the
// claim it must name.
FieldMap Broken(MigrateLemma which, bool MigrateSteps::*flag, const std::string& claim) {
  MigrateSteps broken = MigrateSteps::Real();
  broken.*flag = true;
  const LemmaResult r = LemmaMigrate(which, broken);
  std::printf("%s\n", Describe(r).c_str());
  EXPECT_EQ(r.status, LemmaStatus::kFailed) << Describe(r);
  EXPECT_EQ(r.detail, "claim fails: " + claim);
  return Fields(r.counterexample);
}

TEST(MigrateLemmaTest, InsertionAsPresentMapsADevicePagePresent) {
  const FieldMap f =
      Broken(MigrateLemma::kVmaPreservesDevicePageNeverPresent, &MigrateSteps::insert_maps_present,
             "InsertEmptySlots keeps InvDevicePageNeverPresent at entry");
  EXPECT_EQ(Get(f, "op"), "InsertEmptySlots");
  EXPECT_EQ(Get(f, "after.entry.kind"), "kPresent");
  EXPECT_EQ(Get(f, "after.entry.device"), "true");
  EXPECT_EQ(Get(f, "after.entry.page"), Get(f, "entry.slot_dst"));
}

TEST(MigrateLemmaTest, CollectWithoutTheLockLeavesAnUnlockedMigrationEntry) {
  const FieldMap f =
      Broken(MigrateLemma::kVmaPreservesNoMigrationEntry, &MigrateSteps::collect_skips_lock,
             "Collect keeps every migration entry held");
  EXPECT_EQ(Get(f, "op"), "Collect");
  const bool entry_unlocked =
      Get(f, "after.entry.kind") == "kMigration" && Get(f, "after.page.locked") == "false";
  const bool page_unlocked =
      Get(f, "after.q.collected") == "true" && Get(f, "after.q.locked") == "false";
  EXPECT_TRUE(entry_unlocked || page_unlocked);
}

TEST(MigrateLemmaTest, UnmapOfAnUncollectedPageLeavesAMigrationEntryFinalizeMisses) {
  const FieldMap f =
      Broken(MigrateLemma::kVmaPreservesNoMigrationEntry, &MigrateSteps::unmap_ignores_collected,
             "Unmap keeps every migration entry held");
  EXPECT_EQ(Get(f, "after.entry.kind"), "kMigration");
  EXPECT_EQ(Get(f, "before.page.collected"), "false");
  EXPECT_EQ(Get(f, "before.page.migrate"), "true");
}

TEST(MigrateLemmaTest, PinCheckThatKeepsTheEntriesLeavesThemUnheld) {
  const FieldMap f =
      Broken(MigrateLemma::kVmaPreservesNoMigrationEntry, &MigrateSteps::pin_check_keeps_entries,
             "PinCheck keeps every migration entry held");
  EXPECT_EQ(Get(f, "after.entry.kind"), "kMigration");
  EXPECT_EQ(Get(f, "page.pinned"), "true");
  EXPECT_EQ(Get(f, "after.page.collected"), "false");
}

TEST(MigrateLemmaTest, FinalizeSkippingFailedPagesBreaksAtomicityToo) {
  const FieldMap f = Broken(MigrateLemma::kVmaPerPageAtomic, &MigrateSteps::finalize_skips_failed,
                            "an address that mapped a page maps exactly one page, the old one "
                            "or its destination, with the same write bit");
  EXPECT_EQ(Get(f, "finalize.entry.kind"), "kMigration");
}

TEST(MigrateLemmaTest, DevicePageMigratesBackPresentWithoutTheLemma) {
  // The fault path's control: the device page itself is mapped present.
  const FieldMap f = Broken(MigrateLemma::kToRamPreservesDevicePageNeverPresent,
                            &MigrateSteps::migrate_to_ram_maps_device,
                            "MigrateToRam keeps InvDevicePageNeverPresent at entry");
  EXPECT_EQ(Get(f, "before.entry.kind"), "kDevicePrivate");
  EXPECT_EQ(Get(f, "after.entry.page"), Get(f, "before.entry.page"));
  EXPECT_EQ(Get(f, "fault.alloc_ok"), "true");
}

}  // namespace
}  // namespace hmm::solver
