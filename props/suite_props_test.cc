// File: props/suite_props_test.cc
//
// Every refinement suite under gtest: generated traces run against model and
// impl with the full per-step check, for several seeds each. The parameters
// are (suite, seed); Bazel's shards split them between processes.

#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "props/suite.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

class SuiteProps : public ::testing::TestWithParam<std::tuple<std::string, uint64_t>> {};

TEST_P(SuiteProps, ImplRefinesModel) {
  SuiteOptions options;
  options.name = std::get<0>(GetParam());
  options.seed = std::get<1>(GetParam());
  options.runs = 150;
  options.max_steps = 60;
  SuiteResult r = RunSuite(options);
  ASSERT_FALSE(r.unknown_suite) << options.name;
  EXPECT_TRUE(r.passed) << options.name << " seed " << options.seed << "\n"
                        << FormatTrace(r.counterexample, "minimized counterexample") << "\n"
                        << r.failure;
  EXPECT_GT(r.sequences, 100u);
  EXPECT_GT(r.steps, r.sequences * 5);
}

// The race suite has its own tests: concurrent_suite_test (both profiles)
// and concurrent_defects_test.
TEST(SuiteProps, EverySuiteIsCovered) {
  for (const SuiteInfo& suite : Suites()) {
    EXPECT_TRUE(suite.name == "cpu" || suite.name == "devmem" || suite.name == "mirror" ||
                suite.name == "migrate" || suite.name == "race")
        << "add suite '" << suite.name << "' to the parameters below";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Seeds, SuiteProps,
    ::testing::Combine(::testing::Values("cpu", "devmem", "mirror", "migrate"),
                       ::testing::Values(1, 2, 3, 4, 5, 6)),
    [](const ::testing::TestParamInfo<std::tuple<std::string, uint64_t>>& info) {
      return std::get<0>(info.param) + "_seed" + std::to_string(std::get<1>(info.param));
    });

}  // namespace
}  // namespace hmm::props
