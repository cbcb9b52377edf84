// File: props/concurrent_suite_test.cc
//
// The race suite through RunSuite, as `hmmref check` runs it: with profile
// v18 a fixed seed and a modest budget find the invalidate-after-change
// hazard and shrink it to two actors and at most three operations, named
// after InvMirrorSubsetOfCpu at the yield point pte_changed; the default
// profile passes the same budget; the same seed gives the same minimized
// case; --profile forces the other suites' machines too. Run it under
// --config=tsan too.

#include <gtest/gtest.h>

#include <string>

#include "props/concurrent.h"
#include "props/suite.h"

namespace hmm::props {
namespace {

constexpr uint64_t kRuns = 300;

SuiteResult Race(const std::string& profile, uint64_t seed) {
  SuiteOptions options;
  options.name = "race";
  options.profile = profile;
  options.seed = seed;
  options.runs = kRuns;
  return RunSuite(options);
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(RaceSuite, V18FindsTheHazardAndShrinksIt) {
  const SuiteResult r = Race("v18", 1);
  ASSERT_FALSE(r.passed) << "no hazard in " << r.sequences << " sequences";
  EXPECT_EQ(r.failed_check, "InvMirrorSubsetOfCpu") << r.failure;
  EXPECT_LE(BusyActorCount(r.race_case), 2u) << r.failure;
  EXPECT_LE(ActorOpCount(r.race_case), 3u) << r.failure;
  EXPECT_LE(r.rc_shrunk_length, r.original_length);
  EXPECT_EQ(CaseConfig(r.race_case).profile, Profile::kV18);
  EXPECT_TRUE(Contains(r.failure, "hazard InvMirrorSubsetOfCpu: device ")) << r.failure;
  EXPECT_TRUE(Contains(r.failure, "after the CPU changed it")) << r.failure;
  EXPECT_TRUE(Contains(r.failure, "pte_changed")) << r.failure;
  EXPECT_TRUE(Contains(r.failure, "profile v18")) << r.failure;
  // The minimized case fails the same way each time it is run.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(RunConcurrent(r.race_case).check, "InvMirrorSubsetOfCpu");
  }
  std::cout << r.failure;
}

TEST(RaceSuite, DefaultProfilePassesTheSameBudget) {
  for (const std::string profile : {"", "default"}) {
    const SuiteResult r = Race(profile, 1);
    EXPECT_TRUE(r.passed) << r.failure;
    EXPECT_EQ(r.sequences, kRuns);
    EXPECT_GT(r.steps, kRuns * 8);
    EXPECT_EQ(r.coverage.suite, "race");
    EXPECT_EQ(r.coverage.sequences, kRuns);
    for (const ClassCount& c : r.coverage.Missed()) {
      ADD_FAILURE() << "class '" << c.name << "' reached in only " << c.sequences << " sequences";
    }
  }
}

TEST(RaceSuite, SameSeedSameMinimizedCase) {
  const SuiteResult a = Race("v18", 3);
  const SuiteResult b = Race("v18", 3);
  ASSERT_FALSE(a.passed);
  EXPECT_EQ(FormatCase(a.race_case), FormatCase(b.race_case));
  EXPECT_EQ(a.failure, b.failure);
}

TEST(RaceSuite, UnknownProfileIsRefused) {
  const SuiteResult r = Race("v19", 1);
  EXPECT_TRUE(r.unknown_profile);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.sequences, 0u);
}

// The devmem suite draws v18 one machine in four; --profile makes it all or none.
TEST(RaceSuite, ProfileForcesTheOtherSuites) {
  const std::string collision = "v18 hot-add collision";
  auto reached = [&collision](const std::string& profile) {
    SuiteOptions options;
    options.name = "devmem";
    options.profile = profile;
    options.runs = 200;
    const SuiteResult r = RunSuite(options);
    EXPECT_TRUE(r.passed) << profile << "\n" << r.failure;
    for (const ClassCount& c : r.coverage.classes) {
      if (Contains(c.name, collision)) return c.sequences;
    }
    ADD_FAILURE() << "no class named '" << collision << "'";
    return uint64_t{0};
  };
  const uint64_t drawn = reached(""), v18 = reached("v18"), none = reached("default");
  EXPECT_EQ(none, 0u);
  EXPECT_GT(drawn, 0u);
  EXPECT_GT(v18, drawn);
}

}  // namespace
}  // namespace hmm::props
