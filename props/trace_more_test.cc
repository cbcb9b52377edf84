// File: props/trace_more_test.cc
//
// The trace language, part 2: every error message with its line number,
// Parse(Format(op)) == op over random ops, no crash on hostile bytes, and the
// scenario corpus (scenarios/*.hmm must parse; scenarios/malformed/*.hmm must
// fail with the error named in their first line).

#include "props/trace.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "props/trace_random_ops.h"
#include "props/trace_test_util.h"

namespace hmm::props {
namespace {

using testing::Bytes;
using testing::ErrorOf;
using testing::MustParse;
using testing::MustParseOne;
using testing::RandomOps;

// --- Error messages ---

struct ErrorCase {
  std::string text;
  std::string error;  // expected, whole
};

TEST(TraceErrors, EachMessageWithItsLine) {
  const std::vector<ErrorCase> cases = {
      {"mmapp 1", "t.hmm:1: unknown operation 'mmapp'"},
      {"process\n\nmunmap 1 0x1000",
       "t.hmm:3: expected 3 arguments for munmap (PID ADDR LEN), got 2"},
      {"exit", "t.hmm:1: expected 1 argument for exit (PID), got 0"},
      {"exit 1 2", "t.hmm:1: expected 1 argument for exit (PID), got 2"},
      {"process 1", "t.hmm:1: expected no arguments for process, got 1"},
      {"mmap 1 0 1 r", "t.hmm:1: expected 5 arguments for mmap (PID ADDR LEN PROT FLAGS), got 4"},
      {"mremap 1 0 1", "t.hmm:1: expected 5 or 6 arguments for mremap "
                       "(PID OLD_ADDR OLD_LEN NEW_LEN FLAGS [NEW_ADDR]), got 3"},
      {"mremap 1 0 1 1 maymove 0 0", "t.hmm:1: expected 5 or 6 arguments for mremap "
                                     "(PID OLD_ADDR OLD_LEN NEW_LEN FLAGS [NEW_ADDR]), got 7"},
      {"exit 0x1g", "t.hmm:1: bad number '0x1g'"},
      {"exit 0x", "t.hmm:1: bad number '0x'"},
      {"exit 12ab", "t.hmm:1: bad number '12ab'"},
      {"exit -1", "t.hmm:1: bad number '-1'"},
      {"exit 99999999999999999999", "t.hmm:1: number '99999999999999999999' overflows 64 bits"},
      {"exit 18446744073709551616", "t.hmm:1: number '18446744073709551616' overflows 64 bits"},
      {"exit 0x10000000000000000", "t.hmm:1: number '0x10000000000000000' overflows 64 bits"},
      {"mprotect 1 0 1 rx", "t.hmm:1: unknown protection 'rx'"},
      {"mprotect 1 0 1 r|", "t.hmm:1: bad protection list 'r|'"},
      {"mprotect 1 0 1 0x100000000", "t.hmm:1: number '0x100000000' overflows 32 bits"},
      {"mmap 1 0 1 r privat", "t.hmm:1: unknown mmap flag 'privat'"},
      {"mmap 1 0 1 r private fixd", "t.hmm:1: unknown mmap flag 'fixd'"},
      {"mremap 1 0 1 1 grow", "t.hmm:1: unknown mremap flag 'grow'"},
      {"mremap 1 0 1 1 maymove|fixed", "t.hmm:1: mremap with fixed needs NEW_ADDR"},
      {"madvise 1 0 1 free", "t.hmm:1: unknown advice 'free' (expected dontneed)"},
      {"write 1 0 \"abc", "t.hmm:1: unterminated string"},
      {"write 1 0 \"abc\\\"", "t.hmm:1: unterminated string"},
      {"write 1 0 \"a\\qb\"", "t.hmm:1: unknown escape '\\q' in string"},
      {"write 1 0 \"a\\x4\"",
       "t.hmm:1: bad escape in string '\"a\\x4\"' (\\x needs two hex digits)"},
      {"write 1 0 \"a\x01\"", "t.hmm:1: control byte 0x01 in string (write it as \\x01)"},
      {"write 1 0 \"ab\"cd", "t.hmm:1: expected a space after the string, got 'c'"},
      {"exit ab\"c\"", "t.hmm:1: unexpected '\"' after 'ab'"},
      {"write 1 0 hex:123", "t.hmm:1: odd number of hex digits in 'hex:123'"},
      {"write 1 0 hex:1g", "t.hmm:1: bad hex digit 'g' in 'hex:1g'"},
      {"write 1 0 fill:0x41", "t.hmm:1: bad fill 'fill:0x41' (expected fill:BYTE*COUNT)"},
      {"write 1 0 fill:0x141*2", "t.hmm:1: number '0x141' overflows 8 bits"},
      {"write 1 0 fill:0x41*", "t.hmm:1: bad number ''"},
      {"write 1 0 fill:0*2000000", "t.hmm:1: fill count 2000000 exceeds 1048576"},
      {"write 1 0 5",
       "t.hmm:1: bad data '5' (expected \"TEXT\", hex:HEX or fill:BYTE*COUNT)"},
      {"exit 1 ->", "t.hmm:1: expected a result after '->'"},
      {"exit 1 -> ok ok", "t.hmm:1: unexpected 'ok' after the result"},
      {"exit 1 -> kFoo", "t.hmm:1: unknown result 'kFoo' "
                         "(expected ok, an errno such as kFault or EFAULT, a number or bytes)"},
      {"munmap 1 0 1 -> 0x10",
       "t.hmm:1: munmap returns no value: expected ok or an errno, got '0x10'"},
      {"write 1 0 \"a\" -> \"a\"",
       "t.hmm:1: write returns no value: expected ok or an errno, got '\"a\"'"},
      {"mmap 1 0 1 r private -> \"x\"",
       "t.hmm:1: mmap returns an address: expected ok, an errno or a number, got '\"x\"'"},
      {"read 1 0 1 -> 5", "t.hmm:1: read returns bytes: expected ok, an errno or bytes, got '5'"},
      {"read 1 0 1 -> hex:0", "t.hmm:1: odd number of hex digits in 'hex:0'"},
      {"pin 1 0 1 -> 0x1g", "t.hmm:1: bad number '0x1g'"},
      {"-> ok", "t.hmm:1: expected an operation before '->'"},
      {std::string("exit 1\0", 7), "t.hmm:1: unexpected byte 0x00"},
      {"exit\x01 1", "t.hmm:1: unexpected byte 0x01"},
      {"exit \xc3\xa9", "t.hmm:1: unexpected byte 0xc3"},
      {"exit 1\r2", "t.hmm:1: unexpected byte 0x0d"},
      // Device-private memory lines.
      {"devmem_add 1", "t.hmm:1: expected 2 arguments for devmem_add (DEVICE SIZE), got 1"},
      {"devmem_remove", "t.hmm:1: expected 1 argument for devmem_remove (DEVMEM), got 0"},
      {"ram_hotadd 0 0x1000 1",
       "t.hmm:1: expected 2 arguments for ram_hotadd (START SIZE), got 3"},
      {"ram_hotremove 0", "t.hmm:1: expected 2 arguments for ram_hotremove (START SIZE), got 1"},
      {"devpage_alloc 1 2", "t.hmm:1: expected 1 argument for devpage_alloc (DEVMEM), got 2"},
      {"devpage_put", "t.hmm:1: expected 1 argument for devpage_put (PFN), got 0"},
      {"devmap 1 0x10000000 0x100000",
       "t.hmm:1: expected 4 arguments for devmap (PID ADDR PFN PROT), got 3"},
      {"devmap 1 0x10000000 0x100000 r w",
       "t.hmm:1: expected 4 arguments for devmap (PID ADDR PFN PROT), got 5"},
      {"page_frees", "t.hmm:1: expected 1 argument for page_frees (DEVMEM), got 0"},
      {"devmap 1 0 0x100000 rx", "t.hmm:1: unknown protection 'rx'"},
      {"devpage_put 0x10000g", "t.hmm:1: bad number '0x10000g'"},
      {"devmem_add 1 0x10000 -> \"x\"",
       "t.hmm:1: devmem_add returns a devmem id: expected ok, an errno or a number, got '\"x\"'"},
      {"devpage_alloc 1 -> hex:00",
       "t.hmm:1: devpage_alloc returns a pfn: expected ok, an errno or a number, got 'hex:00'"},
      {"page_frees 1 -> fill:0*1",
       "t.hmm:1: page_frees returns a count: expected ok, an errno or a number, got 'fill:0*1'"},
      {"devpage_put 0x100000 -> 0x100000",
       "t.hmm:1: devpage_put returns no value: expected ok or an errno, got '0x100000'"},
      {"devmap 1 0 0 r -> 1",
       "t.hmm:1: devmap returns no value: expected ok or an errno, got '1'"},
      {"devmem_remove 1 -> 1",
       "t.hmm:1: devmem_remove returns no value: expected ok or an errno, got '1'"},
      {"ram_hotadd 0 0x1000 -> 0",
       "t.hmm:1: ram_hotadd returns no value: expected ok or an errno, got '0'"},
      {"page_frees 1 -> 0x1g", "t.hmm:1: bad number '0x1g'"},
      // Set-up lines: first, once each, in range.
      {"process\nram 8", "t.hmm:2: 'ram' must come before every operation"},
      {"ram 0", "t.hmm:1: ram wants 1 to 65536 pages, got 0"},
      {"ram 65537", "t.hmm:1: ram wants 1 to 65536 pages, got 65537"},
      {"ram 8\nram 8", "t.hmm:2: 'ram' given twice"},
      {"profile v18\n\nprocess -> 1\nsection 0x10000",
       "t.hmm:4: 'section' must come before every operation"},
      {"devmem_add 1 0x10000\nphysmem_bits 32",
       "t.hmm:2: 'physmem_bits' must come before every operation"},
      {"exit 1\nprofile default", "t.hmm:2: 'profile' must come before every operation"},
      {"section 0x10000\nphysmem_bits 32\nsection 0x10000", "t.hmm:3: 'section' given twice"},
      {"physmem_bits 32\nphysmem_bits 33", "t.hmm:2: 'physmem_bits' given twice"},
      {"profile v18\nram 4\nprofile v18", "t.hmm:3: 'profile' given twice"},
      {"ram 8\nprocess\nram 8", "t.hmm:3: 'ram' must come before every operation"},
      {"physmem_bits 60", "t.hmm:1: physmem_bits wants 32 to 52, got 60"},
      {"physmem_bits 31", "t.hmm:1: physmem_bits wants 32 to 52, got 31"},
      {"physmem_bits 53", "t.hmm:1: physmem_bits wants 32 to 52, got 53"},
      {"physmem_bits 0xffffffffffffffff",
       "t.hmm:1: physmem_bits wants 32 to 52, got 18446744073709551615"},
      {"physmem_bits", "t.hmm:1: expected 1 argument for physmem_bits (N), got 0"},
      {"section 0x3000",
       "t.hmm:1: section wants a power of two from 4096 to 1073741824 bytes, got 0x3000"},
      {"section 0", "t.hmm:1: section wants a power of two from 4096 to 1073741824 bytes, got 0x0"},
      {"section 0x800",
       "t.hmm:1: section wants a power of two from 4096 to 1073741824 bytes, got 0x800"},
      {"section 0x80000000",
       "t.hmm:1: section wants a power of two from 4096 to 1073741824 bytes, got 0x80000000"},
      {"section 0x8000000000000000",
       "t.hmm:1: section wants a power of two from 4096 to 1073741824 bytes, "
       "got 0x8000000000000000"},
      {"section 1 2", "t.hmm:1: expected 1 argument for section (BYTES), got 2"},
      {"profile v19", "t.hmm:1: unknown profile 'v19' (expected default, v18 or linux-6.1)"},
      {"profile 1", "t.hmm:1: unknown profile '1' (expected default, v18 or linux-6.1)"},
      {"profile V18", "t.hmm:1: unknown profile 'V18' (expected default, v18 or linux-6.1)"},
      {"profile", "t.hmm:1: expected 1 argument for profile (default|v18|linux-6.1), got 0"},
      {"profile v18 -> 1", "t.hmm:1: profile returns no value: expected ok or an errno, got '1'"},
  };
  for (const ErrorCase& c : cases) {
    EXPECT_EQ(ErrorOf(c.text), c.error) << "in: " << c.text;
  }
}

TEST(TraceErrors, LongTokensAreCutInMessages) {
  std::string error = ErrorOf("exit " + std::string(100000, '9'));
  EXPECT_EQ(error, "t.hmm:1: number '" + std::string(60, '9') + "...' overflows 64 bits");
}

TEST(TraceErrors, NonPrintableBytesInMessagesAreEscaped) {
  EXPECT_EQ(ErrorOf("write 1 0 \"\xff\" -> \"\xfe\" x"),
            "t.hmm:1: unexpected 'x' after the result");
  EXPECT_EQ(ErrorOf("exit 1 -> \"\xfe\""),
            "t.hmm:1: exit returns no value: expected ok or an errno, got '\"\\xfe\"'");
}

// --- Round trip: Parse(Format(op)) == op ---

TEST(TraceRoundTrip, RandomOps) {
  RandomOps gen(20240607);
  std::vector<Op> ops;
  for (int i = 0; i < 3000; ++i) ops.push_back(gen.Next());
  for (const Op& op : ops) {
    std::string line = FormatOp(op);
    std::vector<Op> back;
    std::string error;
    ASSERT_TRUE(ParseTrace(line, "rt.hmm", &back, &error)) << error << "\nline: " << line;
    ASSERT_EQ(back.size(), 1u) << line;
    EXPECT_TRUE(SameOp(back[0], op)) << line << "\nreformatted: " << FormatOp(back[0]);
  }
  // And as a whole trace, header included: the first set-up line of each kind
  // leads (the set-up rule), then every operation.
  std::vector<Op> trace;
  uint64_t setup_seen = 0;
  for (const Op& op : ops) {
    const uint64_t bit = uint64_t{1} << static_cast<int>(op.kind);
    if (IsSetupKind(op.kind) && (setup_seen & bit) == 0) trace.push_back(op);
    if (IsSetupKind(op.kind)) setup_seen |= bit;
  }
  EXPECT_EQ(trace.size(), 4u);
  for (const Op& op : ops) {
    if (!IsSetupKind(op.kind)) trace.push_back(op);
  }
  std::vector<Op> back;
  std::string error;
  ASSERT_TRUE(ParseTrace(FormatTrace(trace, "header\nline two"), "rt.hmm", &back, &error))
      << error;
  ASSERT_EQ(back.size(), trace.size());
  for (size_t i = 0; i < trace.size(); ++i) {
    EXPECT_TRUE(SameOp(back[i], trace[i])) << FormatOp(trace[i]);
    EXPECT_EQ(back[i].line, static_cast<int>(i + 3));
  }
}

TEST(TraceRoundTrip, EveryKindIsGenerated) {
  RandomOps gen(1);
  std::vector<int> seen(RandomOps::kNumKinds);
  for (int i = 0; i < 3000; ++i) ++seen[static_cast<size_t>(gen.Next().kind)];
  for (size_t k = 0; k < seen.size(); ++k) EXPECT_GT(seen[k], 0) << OpName(static_cast<OpKind>(k));
}

// --- Hostile input: never a crash; whatever parses, reformats to itself ---

TEST(TraceHostile, RandomTextNeverCrashesAndParsedTextRoundTrips) {
  const std::vector<std::string> pieces = {
      "process", "exit", "mmap", "munmap", "mprotect", "madvise", "read", "write", "pin",
      "unpin", "fork", "mremap", " ", " ", " ", "\t", "\n", "\r\n", "\r", "#", "->", "-",
      ">", "\"", "\\", "\\x", "hex:", "fill:", "*", "0x", "0", "1", "9", "f", "g",
      "ffffffffffffffff", "99999999999999999999", "|", "r", "rw", "none", "private",
      "shared", "fixed", "maymove", "dontneed", "ok", "kFault", "EINVAL", std::string(1, '\0'),
      "\x01", "\x7f", "\xff", "\xc3\xa9", "=", "PROT_READ", "MAP_FIXED", "devmem_add",
      "devmem_remove", "ram_hotadd", "ram_hotremove", "devpage_alloc", "devpage_put", "devmap",
      "page_frees", "ram", "physmem_bits", "section", "profile", "default", "v18", "32",
      "0x10000", "kBusy", "mirror", "unmirror", "get_pfns", "hmm_fault", "range_done",
      "commit", "dread", "dwrite", "snapshot", "cpages=", "faults=", "cpages=4", "faults=1",
      "kNoEnt"};
  std::mt19937 rng(7);
  int parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    size_t n = std::uniform_int_distribution<size_t>(0, 24)(rng);
    for (size_t k = 0; k < n; ++k) {
      text += pieces[std::uniform_int_distribution<size_t>(0, pieces.size() - 1)(rng)];
    }
    std::vector<Op> ops;
    std::string error;
    if (!ParseTrace(text, "h.hmm", &ops, &error)) {
      EXPECT_EQ(error.rfind("h.hmm:", 0), 0u) << error;
      continue;
    }
    ++parsed;
    std::vector<Op> back;
    ASSERT_TRUE(ParseTrace(FormatTrace(ops, ""), "h.hmm", &back, &error)) << error;
    ASSERT_EQ(back.size(), ops.size());
    for (size_t k = 0; k < ops.size(); ++k) EXPECT_TRUE(SameOp(back[k], ops[k]));
  }
  EXPECT_GT(parsed, 100);  // the generator reaches well-formed lines too
}

TEST(TraceHostile, HugeInputs) {
  std::string many_lines;
  for (int i = 0; i < 100000; ++i) many_lines += "read 1 0x10000000 0x10 -> fill:0x0*16\n";
  EXPECT_EQ(MustParse(many_lines).size(), 100000u);
  std::string long_string = "write 1 0 \"" + std::string(1 << 20, 'a') + "\"";
  EXPECT_EQ(MustParseOne(long_string).data.size(), size_t{1} << 20);
  EXPECT_EQ(ErrorOf(std::string(1 << 20, ' ') + "x"), "t.hmm:1: unknown operation 'x'");
  EXPECT_EQ(ErrorOf("write 1 0 \"" + std::string(1 << 20, '\\')),
            "t.hmm:1: unterminated string");
}

// --- The scenario corpus ---

std::string RunfilesDir(const std::string& relative) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir != nullptr ? srcdir : ".") + "/hmmref/" + relative;
}

std::vector<std::string> HmmFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".hmm") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string FirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

TEST(TraceScenarios, EveryScenarioParsesAndHasAnExpectationOnEachLine) {
  std::vector<std::string> files = HmmFiles(RunfilesDir("scenarios"));
  EXPECT_GE(files.size(), 12u);
  for (const std::string& path : files) {
    std::vector<Op> ops;
    std::string error;
    ASSERT_TRUE(ParseTraceFile(path, &ops, &error)) << error;
    EXPECT_FALSE(ops.empty()) << path;
    EXPECT_EQ(FirstLine(path).rfind("# ", 0), 0u) << path << " must open with a comment";
    for (const Op& op : ops) {
      if (IsSetupKind(op.kind)) continue;  // set-up, not an operation
      EXPECT_TRUE(op.expect.has_value()) << path << ":" << op.line << ": no '-> RESULT'";
    }
  }
}

TEST(TraceScenarios, EveryMalformedFileFailsWithItsStatedError) {
  std::vector<std::string> files = HmmFiles(RunfilesDir("scenarios/malformed"));
  EXPECT_GE(files.size(), 8u);
  const std::string kMarker = "# error: ";
  for (const std::string& path : files) {
    std::string first = FirstLine(path);
    ASSERT_EQ(first.rfind(kMarker, 0), 0u) << path << " must open with '" << kMarker << "'";
    std::string expected = path + ":" + first.substr(kMarker.size());
    std::vector<Op> ops;
    std::string error;
    ASSERT_FALSE(ParseTraceFile(path, &ops, &error)) << path << " parsed";
    EXPECT_EQ(error.rfind(expected, 0), 0u) << "got:      " << error << "\nexpected: " << expected;
  }
}

}  // namespace
}  // namespace hmm::props
