// File: props/devmem_props_test.cc
//
// The devmem refinement suite under gtest: generated traces run against model and
// impl with the full per-step check. Seeds come from the parameter, and the
// Bazel shards split the seeds between them.

#include <gtest/gtest.h>

#include "props/suite.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

class DevmemProps : public ::testing::TestWithParam<uint64_t> {};

TEST_P(DevmemProps, ImplRefinesModel) {
  SuiteOptions options;
  options.name = "devmem";
  options.seed = GetParam();
  options.runs = 150;
  options.max_steps = 60;
  SuiteResult r = RunSuite(options);
  EXPECT_TRUE(r.passed) << "seed " << options.seed << "\n"
                        << FormatTrace(r.counterexample, "minimized counterexample") << "\n"
                        << r.failure;
  EXPECT_GT(r.sequences, 100u);
  EXPECT_GT(r.steps, r.sequences * 5);
}

INSTANTIATE_TEST_SUITE_P(Seeds, DevmemProps, ::testing::Values(1, 2, 3, 4, 5, 6));

}  // namespace
}  // namespace hmm::props
