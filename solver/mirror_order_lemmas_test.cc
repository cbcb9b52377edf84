// File: solver/mirror_order_lemmas_test.cc
//
// Issue 7's ordering lemmas: v18's invalidate-at-end order has a witness
// schedule (a device access through a stale pt entry) and the default order
// has none; the seqcount snapshot is proved free of ABA, and a counter kept
// mod 4 commits after two whole invalidations.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "solver/lemma.h"
#include "solver/lemma_test_util.h"
#include "solver/mirror_lemmas.h"

namespace hmm::solver {
namespace {

using FieldMap = std::map<std::string, std::string>;

const LemmaWithControl& Find(const std::string& name) {
  static const auto* entries = new std::vector<LemmaWithControl>(MirrorOrderLemmas());
  for (const LemmaWithControl& e : *entries) {
    if (e.lemma.name == name) return e;
  }
  ADD_FAILURE() << name << " not registered";
  return entries->front();
}

TEST(MirrorOrderLemmaTest, V18OrderHasAStaleAccessWitness) {
  const LemmaResult r = RunLemma(Find("LemmaV18InvalidateAtEndAdmitsStaleDeviceMapping").lemma);
  std::printf("%s\n", Describe(r).c_str());
  ASSERT_EQ(r.status, LemmaStatus::kProved) << Describe(r);
  EXPECT_TRUE(HasWitness(r));
  EXPECT_TRUE(r.counterexample.empty());
  // Re-read the schedule: the access comes after the change, before the callback.
  const FieldMap f = Fields(r.detail);
  int change = -1, callback = -1, access = -1;
  for (int i = 0; i < 3; ++i) {
    const std::string s = f.at("step" + std::to_string(i));
    (s == "CpuChange" ? change : s == "MirrorCallback" ? callback : access) = i;
  }
  EXPECT_LT(change, access);
  EXPECT_LT(access, callback);
  EXPECT_EQ(f.at("schedule"), "CpuChange; DeviceAccess; MirrorCallback");
  // At the access, pt still maps the old entry, which the CPU entry no longer matches.
  const std::string at = "t" + std::to_string(access);
  EXPECT_NE(f.at(at + ".pt.id"), "0");
  EXPECT_TRUE(f.at(at + ".pt.id") != f.at(at + ".cpu.id") ||
              (f.at(at + ".pt.write") == "true" && f.at(at + ".cpu.write") == "false"));
}

TEST(MirrorOrderLemmaTest, DefaultOrderHasNoStaleAccess) {
  const LemmaWithControl& e = Find("LemmaV18InvalidateAtEndAdmitsStaleDeviceMapping");
  const LemmaResult r = RunLemma(e.control);
  std::printf("%s\n", Describe(r).c_str());
  EXPECT_EQ(r.name, e.lemma.name + "NegativeControl");
  ASSERT_EQ(r.status, LemmaStatus::kFailed) << Describe(r);
  EXPECT_EQ(r.detail.rfind("no stale access exists", 0), 0u) << r.detail;
  EXPECT_TRUE(r.counterexample.empty());
}

TEST(MirrorOrderLemmaTest, SeqcountSnapshotHasNoAba) {
  const LemmaResult r = RunLemma(Find("LemmaSeqcountSnapshotHasNoAba").lemma);
  std::printf("%s\n", Describe(r).c_str());
  EXPECT_EQ(r.status, LemmaStatus::kProved) << Describe(r);
  EXPECT_FALSE(HasWitness(r));
  EXPECT_TRUE(r.counterexample.empty());
}

TEST(MirrorOrderLemmaTest, WrappingCounterCommitsAfterTwoInvalidations) {
  const LemmaWithControl& e = Find("LemmaSeqcountSnapshotHasNoAba");
  const LemmaResult r = RunLemma(e.control);
  std::printf("%s\n", Describe(r).c_str());
  EXPECT_EQ(r.name, e.lemma.name + "NegativeControl");
  ASSERT_EQ(r.status, LemmaStatus::kFailed) << Describe(r);
  EXPECT_EQ(r.detail.rfind("claim fails: no schedule of 4 steps", 0), 0u) << r.detail;
  const FieldMap f = Fields(r.counterexample);
  EXPECT_EQ(f.at("schedule"),
            "InvalidateStart; InvalidateEnd; InvalidateStart; InvalidateEnd; Commit");
  EXPECT_EQ(f.at("commit"), "true");
  EXPECT_EQ(f.at("invalidation_events"), "4");
  EXPECT_EQ(f.at("t4.seq"), f.at("sampled.seq"));  // back to the sample: ABA
  EXPECT_NE(f.at("t2.seq"), f.at("sampled.seq"));
}

TEST(MirrorOrderLemmaTest, RegisteredAfterTheMirrorLemmas) {
  const std::vector<Lemma>& all = AllLemmas();
  const std::vector<Lemma>& controls = NegativeControls();
  for (const char* name :
       {"LemmaV18InvalidateAtEndAdmitsStaleDeviceMapping", "LemmaSeqcountSnapshotHasNoAba"}) {
    size_t found = 0;
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i].name != name) continue;
      ++found;
      EXPECT_EQ(controls[i].name, all[i].name + "NegativeControl");
      EXPECT_NE(controls[i].statement.find("Negative control over "), std::string::npos);
    }
    EXPECT_EQ(found, 1u) << name;
  }
}

}  // namespace
}  // namespace hmm::solver
