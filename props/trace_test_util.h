// File: props/trace_test_util.h
//
// Helpers shared by the trace-language tests (trace_test.cc, trace_more_test.cc).

#ifndef HMMREF_PROPS_TRACE_TEST_UTIL_H_
#define HMMREF_PROPS_TRACE_TEST_UTIL_H_

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "props/trace.h"

namespace hmm::props::testing {

// Parses one text that must be well formed.
inline std::vector<Op> MustParse(const std::string& text) {
  std::vector<Op> ops;
  std::string error;
  EXPECT_TRUE(ParseTrace(text, "t.hmm", &ops, &error)) << error << "\nin: " << text;
  return ops;
}

inline Op MustParseOne(const std::string& text) {
  std::vector<Op> ops = MustParse(text);
  EXPECT_EQ(ops.size(), 1u) << text;
  return ops.empty() ? Op{} : ops[0];
}

// The error for a text that must be malformed ("" if it parsed).
inline std::string ErrorOf(const std::string& text) {
  std::vector<Op> ops;
  std::string error;
  if (ParseTrace(text, "t.hmm", &ops, &error)) return "";
  return error;
}

inline std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }


}  // namespace hmm::props::testing

#endif  // HMMREF_PROPS_TRACE_TEST_UTIL_H_
