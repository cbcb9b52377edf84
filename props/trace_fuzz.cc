// File: props/trace_fuzz.cc
//
// libFuzzer target for the trace parser (props/trace.h). For any bytes:
//   - ParseTrace never crashes, under ASan and UBSan;
//   - a failure is "fuzz.hmm:LINE: message", LINE within the input's lines,
//     and leaves *ops unchanged;
//   - a success round-trips: FormatTrace -> ParseTrace gives the same ops
//     (every field but `line`), and formatting those again gives the same
//     text (the canonical form is a fixed point).
// A broken property prints what broke and abort()s, which libFuzzer reports as
// a crash with the input saved. Build and run: docs/scenario-format.md,
// "Fuzzing".

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "props/op.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

constexpr char kFile[] = "fuzz.hmm";

[[noreturn]] void Broken(const char* what, const std::string& detail) {
  std::fprintf(stderr, "trace_fuzz: %s\n%s\n", what, detail.c_str());
  std::abort();
}

// "fuzz.hmm:LINE: " with 1 <= LINE <= the number of lines in `text`.
void CheckError(const std::string& text, const std::string& error) {
  const std::string prefix = std::string(kFile) + ":";
  if (error.compare(0, prefix.size(), prefix) != 0) Broken("error without file", error);
  size_t i = prefix.size();
  uint64_t line = 0;
  for (; i < error.size() && error[i] >= '0' && error[i] <= '9' && line < (1u << 31); ++i) {
    line = line * 10 + static_cast<uint64_t>(error[i] - '0');
  }
  if (i == prefix.size() || error.compare(i, 2, ": ") != 0) Broken("error without line", error);
  const uint64_t lines = 1 + static_cast<uint64_t>(std::count(text.begin(), text.end(), '\n'));
  if (line < 1 || line > lines) Broken("error line out of range", error);
}

void CheckRoundTrip(const std::vector<Op>& ops) {
  const std::string text = FormatTrace(ops, "fuzz round trip");
  std::vector<Op> again;
  std::string error;
  if (!ParseTrace(text, kFile, &again, &error)) Broken("formatted trace does not parse", error);
  if (again.size() != ops.size()) Broken("round trip changed the op count", text);
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!SameOp(ops[i], again[i])) Broken("round trip changed an op", FormatOp(ops[i]));
  }
  if (FormatTrace(again, "fuzz round trip") != text) Broken("format is not a fixed point", text);
}

int TestOneInput(const std::string& text) {
  std::vector<Op> ops;
  std::string error;
  if (!ParseTrace(text, kFile, &ops, &error)) {
    if (!ops.empty()) Broken("a failed parse wrote ops", error);
    CheckError(text, error);
    return 0;
  }
  CheckRoundTrip(ops);
  return 0;
}

}  // namespace
}  // namespace hmm::props

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return hmm::props::TestOneInput(std::string(reinterpret_cast<const char*>(data), size));
}
