// File: props/scenarios_test.cc
//
// Replays every scenario in scenarios/ (and the regression corpus in
// props/regressions/) against model and impl with the full per-step check and
// each line's expected result.

#include <dirent.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "props/runner.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

std::vector<std::string> HmmFiles(const std::string& dir) {
  std::vector<std::string> files;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return files;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 4 && name.substr(name.size() - 4) == ".hmm") files.push_back(dir + "/" + name);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

std::string Runfiles(const std::string& rel) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir ? srcdir : ".") + "/hmmref/" + rel;
}

void ReplayAll(const std::string& dir, size_t at_least) {
  std::vector<std::string> files = HmmFiles(Runfiles(dir));
  ASSERT_GE(files.size(), at_least) << "in " << Runfiles(dir);
  for (const std::string& file : files) {
    std::vector<Op> ops;
    std::string error;
    ASSERT_TRUE(ParseTraceFile(file, &ops, &error)) << error;
    RunReport report = RunTrace(ops);
    EXPECT_TRUE(report.ok) << file << "\n" << FormatReport(report);
  }
}

TEST(Scenarios, EveryScenarioReplaysClean) { ReplayAll("scenarios", 10); }

TEST(Scenarios, EveryRegressionReplaysClean) { ReplayAll("props/regressions", 0); }

// The linux-6.1 profile is the model's alone (the kernel oracle's): a trace
// under it is refused at its profile line, before any step runs.
TEST(Scenarios, ALinux61TraceIsRefusedAtItsProfileLine) {
  std::vector<Op> ops;
  std::string error;
  ASSERT_TRUE(ParseTrace("ram 16\nprofile linux-6.1\nprocess -> 1\n", "t.hmm", &ops, &error))
      << error;
  const RunReport report = RunTrace(ops);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.check, "profile");
  EXPECT_EQ(report.failing_step, 2u);
  ASSERT_EQ(report.steps.size(), 1u);
  EXPECT_EQ(report.steps[0].op.line, 2);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("model-only"), std::string::npos);
}

}  // namespace
}  // namespace hmm::props
