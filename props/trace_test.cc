// File: props/trace_test.cc
//
// The trace language, part 1: every line kind, expectations, comments and line
// endings, files, canonical formatting. Part 2 (trace_more_test.cc): every
// error message, round trips, hostile input and the scenario corpus.

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

#include "props/trace_test_util.h"

namespace hmm::props {
namespace {

using testing::Bytes;
using testing::ErrorOf;
using testing::MustParse;
using testing::MustParseOne;

// --- Every line kind ---

TEST(TraceParse, Process) {
  Op op = MustParseOne("process");
  EXPECT_EQ(op.kind, OpKind::kCreateProcess);
  EXPECT_FALSE(op.expect.has_value());
  EXPECT_EQ(op.line, 1);
}

TEST(TraceParse, Exit) {
  Op op = MustParseOne("exit 3");
  EXPECT_EQ(op.kind, OpKind::kExit);
  EXPECT_EQ(op.pid, 3u);
}

TEST(TraceParse, MmapWithSpaceSeparatedFlags) {
  Op op = MustParseOne("mmap 1 0x10000000 0x4000 rw private fixed");
  EXPECT_EQ(op.kind, OpKind::kMmap);
  EXPECT_EQ(op.pid, 1u);
  EXPECT_EQ(op.addr, 0x10000000u);
  EXPECT_EQ(op.len, 0x4000u);
  EXPECT_EQ(op.prot, uint32_t{kProtRead | kProtWrite});
  EXPECT_EQ(op.flags, uint32_t{kMapPrivate | kMapFixed});
}

TEST(TraceParse, MmapFlagSpellings) {
  EXPECT_EQ(MustParseOne("mmap 1 0 1 r shared").flags, uint32_t{kMapShared});
  EXPECT_EQ(MustParseOne("mmap 1 0 1 r private|fixed").flags, uint32_t{kMapPrivate | kMapFixed});
  EXPECT_EQ(MustParseOne("mmap 1 0 1 r MAP_SHARED|MAP_FIXED").flags,
            uint32_t{kMapShared | kMapFixed});
  EXPECT_EQ(MustParseOne("mmap 1 0 1 r 0").flags, 0u);
  EXPECT_EQ(MustParseOne("mmap 1 0 1 r private|0x100").flags, uint32_t{kMapPrivate | 0x100});
}

TEST(TraceParse, ProtSpellings) {
  EXPECT_EQ(MustParseOne("mprotect 1 0 1 none").prot, uint32_t{kProtNone});
  EXPECT_EQ(MustParseOne("mprotect 1 0 1 r").prot, uint32_t{kProtRead});
  EXPECT_EQ(MustParseOne("mprotect 1 0 1 w").prot, uint32_t{kProtWrite});
  EXPECT_EQ(MustParseOne("mprotect 1 0 1 rw").prot, uint32_t{kProtRead | kProtWrite});
  EXPECT_EQ(MustParseOne("mprotect 1 0 1 PROT_READ|PROT_WRITE").prot,
            uint32_t{kProtRead | kProtWrite});
  EXPECT_EQ(MustParseOne("mprotect 1 0 1 PROT_NONE").prot, uint32_t{kProtNone});
  EXPECT_EQ(MustParseOne("mprotect 1 0 1 r|0x4").prot, uint32_t{kProtRead | 0x4});
  EXPECT_EQ(MustParseOne("mprotect 1 0 1 7").prot, 7u);
}

TEST(TraceParse, Munmap) {
  Op op = MustParseOne("munmap 2 0x1000 8192");
  EXPECT_EQ(op.kind, OpKind::kMunmap);
  EXPECT_EQ(op.pid, 2u);
  EXPECT_EQ(op.addr, 0x1000u);
  EXPECT_EQ(op.len, 8192u);
}

TEST(TraceParse, Mprotect) {
  Op op = MustParseOne("mprotect 1 0x10000000 0x1000 r");
  EXPECT_EQ(op.kind, OpKind::kMprotect);
  EXPECT_EQ(op.len, 0x1000u);
  EXPECT_EQ(op.prot, uint32_t{kProtRead});
}

TEST(TraceParse, Madvise) {
  Op op = MustParseOne("madvise 1 0x10000000 0x1000 dontneed");
  EXPECT_EQ(op.kind, OpKind::kMadviseDontneed);
  EXPECT_EQ(op.addr, 0x10000000u);
  EXPECT_EQ(MustParseOne("madvise 1 0 1 MADV_DONTNEED").kind, OpKind::kMadviseDontneed);
}

TEST(TraceParse, Read) {
  Op op = MustParseOne("read 1 0x10000010 5");
  EXPECT_EQ(op.kind, OpKind::kRead);
  EXPECT_EQ(op.addr, 0x10000010u);
  EXPECT_EQ(op.len, 5u);
}

TEST(TraceParse, WriteString) {
  Op op = MustParseOne(R"(write 1 0x10000010 "hello\n")");
  EXPECT_EQ(op.kind, OpKind::kWrite);
  EXPECT_EQ(op.data, Bytes("hello\n"));
}

TEST(TraceParse, WriteStringEscapes) {
  Op op = MustParseOne(R"(write 1 0 "a\tb\r\0\\\"\x7f\xFF # not a comment -> no")");
  std::string want = std::string("a\tb\r") + '\0' + "\\\"\x7f\xff # not a comment -> no";
  EXPECT_EQ(op.data, Bytes(want));
}

TEST(TraceParse, WriteHexAndFill) {
  EXPECT_EQ(MustParseOne("write 1 0 hex:68656C6c6f").data, Bytes("hello"));
  EXPECT_EQ(MustParseOne("write 1 0 fill:0x41*100").data, std::vector<uint8_t>(100, 0x41));
  EXPECT_EQ(MustParseOne("write 1 0 fill:0*3").data, std::vector<uint8_t>(3, 0));
  EXPECT_TRUE(MustParseOne("write 1 0 \"\"").data.empty());
  EXPECT_TRUE(MustParseOne("write 1 0 hex:").data.empty());
}

TEST(TraceParse, PinUnpinFork) {
  Op pin = MustParseOne("pin 1 0x10000000 2");
  EXPECT_EQ(pin.kind, OpKind::kPin);
  EXPECT_EQ(pin.len, 2u);
  Op unpin = MustParseOne("unpin 7");
  EXPECT_EQ(unpin.kind, OpKind::kUnpin);
  EXPECT_EQ(unpin.pin, 7u);
  Op fork = MustParseOne("fork 1");
  EXPECT_EQ(fork.kind, OpKind::kFork);
  EXPECT_EQ(fork.pid, 1u);
}

TEST(TraceParse, Mremap) {
  Op op = MustParseOne("mremap 1 0x10000000 0x2000 0x4000 maymove");
  EXPECT_EQ(op.kind, OpKind::kMremap);
  EXPECT_EQ(op.addr, 0x10000000u);
  EXPECT_EQ(op.len, 0x2000u);
  EXPECT_EQ(op.new_len, 0x4000u);
  EXPECT_EQ(op.flags, uint32_t{kMremapMaymove});
  EXPECT_EQ(op.new_addr, 0u);
  Op fixed = MustParseOne("mremap 1 0x10000000 0x2000 0x2000 maymove|fixed 0x20000000");
  EXPECT_EQ(fixed.flags, uint32_t{kMremapMaymove | kMremapFixed});
  EXPECT_EQ(fixed.new_addr, 0x20000000u);
  EXPECT_EQ(MustParseOne("mremap 1 0 1 1 0").flags, 0u);
  EXPECT_EQ(MustParseOne("mremap 1 0 1 1 MREMAP_FIXED 0x1000").flags, uint32_t{kMremapFixed});
}

TEST(TraceParse, NumbersAtTheLimits) {
  EXPECT_EQ(MustParseOne("exit 18446744073709551615").pid, UINT64_MAX);
  EXPECT_EQ(MustParseOne("exit 0xffffffffffffffff").pid, UINT64_MAX);
  EXPECT_EQ(MustParseOne("exit 0XFF").pid, 255u);
  EXPECT_EQ(MustParseOne("exit 007").pid, 7u);
  EXPECT_EQ(MustParseOne("mprotect 1 0 1 0xffffffff").prot, UINT32_MAX);
}

TEST(TraceParse, DevmemAddAndRemove) {
  Op add = MustParseOne("devmem_add 3 0x10000");
  EXPECT_EQ(add.kind, OpKind::kDevmemAdd);
  EXPECT_EQ(add.device, 3u);
  EXPECT_EQ(add.len, 0x10000u);
  Op remove = MustParseOne("devmem_remove 2");
  EXPECT_EQ(remove.kind, OpKind::kDevmemRemove);
  EXPECT_EQ(remove.devmem, 2u);
}

TEST(TraceParse, RamHotplug) {
  Op add = MustParseOne("ram_hotadd 0x800000 0x10000");
  EXPECT_EQ(add.kind, OpKind::kRamHotAdd);
  EXPECT_EQ(add.addr, 0x800000u);
  EXPECT_EQ(add.len, 0x10000u);
  Op remove = MustParseOne("ram_hotremove 0x800000 65536");
  EXPECT_EQ(remove.kind, OpKind::kRamHotRemove);
  EXPECT_EQ(remove.addr, 0x800000u);
  EXPECT_EQ(remove.len, 0x10000u);
}

TEST(TraceParse, DevicePages) {
  Op alloc = MustParseOne("devpage_alloc 1");
  EXPECT_EQ(alloc.kind, OpKind::kDevPageAlloc);
  EXPECT_EQ(alloc.devmem, 1u);
  Op put = MustParseOne("devpage_put 0x100000");
  EXPECT_EQ(put.kind, OpKind::kDevPagePut);
  EXPECT_EQ(put.pfn, 0x100000u);
  Op frees = MustParseOne("page_frees 4");
  EXPECT_EQ(frees.kind, OpKind::kPageFrees);
  EXPECT_EQ(frees.devmem, 4u);
}

TEST(TraceParse, Devmap) {
  Op op = MustParseOne("devmap 2 0x10000000 0x100001 rw");
  EXPECT_EQ(op.kind, OpKind::kDevMap);
  EXPECT_EQ(op.pid, 2u);
  EXPECT_EQ(op.addr, 0x10000000u);
  EXPECT_EQ(op.pfn, 0x100001u);
  EXPECT_EQ(op.prot, uint32_t{kProtRead | kProtWrite});
  EXPECT_EQ(MustParseOne("devmap 1 0 0 r").prot, uint32_t{kProtRead});
  EXPECT_EQ(MustParseOne("devmap 1 0 0 PROT_READ|PROT_WRITE").prot,
            uint32_t{kProtRead | kProtWrite});
  EXPECT_EQ(MustParseOne("devmap 1 0 0 none|0x8").prot, 0x8u);  // as for mprotect
}

TEST(TraceParse, SetupLines) {
  std::vector<Op> ops = MustParse(
      "# the machine\n"
      "profile v18\n"
      "physmem_bits 32\n"
      "section 0x10000\n"
      "ram 16\n"
      "process -> 1\n");
  ASSERT_EQ(ops.size(), 5u);
  EXPECT_EQ(ops[0].kind, OpKind::kProfile);
  EXPECT_EQ(ops[0].flags, static_cast<uint32_t>(Profile::kV18));
  EXPECT_EQ(ops[0].line, 2);
  EXPECT_EQ(ops[1].kind, OpKind::kPhysmemBits);
  EXPECT_EQ(ops[1].len, 32u);
  EXPECT_EQ(ops[2].kind, OpKind::kSection);
  EXPECT_EQ(ops[2].len, 0x10000u);
  EXPECT_EQ(ops[3].kind, OpKind::kRam);
  EXPECT_EQ(ops[3].len, 16u);
  EXPECT_EQ(ops[4].line, 6);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(IsSetupKind(ops[i].kind));
  EXPECT_FALSE(IsSetupKind(ops[4].kind));
  EXPECT_EQ(MustParseOne("profile default").flags, static_cast<uint32_t>(Profile::kDefault));
  // The kernel oracle's profile (docs/divergences.md): parsed by the same word table.
  EXPECT_EQ(MustParseOne("profile linux-6.1").flags, static_cast<uint32_t>(Profile::kLinux61));
}

TEST(TraceParse, SetupValuesAtTheirBounds) {
  EXPECT_EQ(MustParseOne("physmem_bits 32").len, 32u);
  EXPECT_EQ(MustParseOne("physmem_bits 52").len, 52u);
  EXPECT_EQ(MustParseOne("physmem_bits 0x34").len, 52u);
  EXPECT_EQ(MustParseOne("section 4096").len, 4096u);
  EXPECT_EQ(MustParseOne("section 0x40000000").len, uint64_t{1} << 30);
  EXPECT_EQ(MustParseOne("ram 1").len, 1u);
  EXPECT_EQ(MustParseOne("ram 65536").len, 65536u);
  EXPECT_EQ(MustParseOne("ram 2 -> ok").expect->err, Errno::kOk);  // allowed, as before
}

TEST(TraceParse, SetupLinesInAnyOrderOnceEach) {
  EXPECT_EQ(MustParse("ram 8\nsection 0x1000\nprofile default\nphysmem_bits 40\n").size(), 4u);
  EXPECT_EQ(MustParse("\n# x\nsection 0x1000\n\nram 8\nexit 1\nfork 1\n").size(), 4u);
}

// --- Expectations ---

TEST(TraceExpect, EachForm) {
  Op ok = MustParseOne("munmap 1 0x1000 0x1000 -> ok");
  ASSERT_TRUE(ok.expect.has_value());
  EXPECT_EQ(ok.expect->err, Errno::kOk);
  EXPECT_FALSE(ok.expect->value.has_value());
  EXPECT_FALSE(ok.expect->data.has_value());

  EXPECT_EQ(MustParseOne("munmap 1 1 1 -> kInval").expect->err, Errno::kInval);
  EXPECT_EQ(MustParseOne("munmap 1 1 1 -> EINVAL").expect->err, Errno::kInval);
  EXPECT_EQ(MustParseOne("read 1 0 1 -> EFAULT").expect->err, Errno::kFault);

  Op value = MustParseOne("mmap 1 0 1 r private -> 0x10000000");
  EXPECT_EQ(value.expect->err, Errno::kOk);
  EXPECT_EQ(value.expect->value, std::optional<uint64_t>(0x10000000));
  EXPECT_EQ(MustParseOne("process -> 1").expect->value, std::optional<uint64_t>(1));
  EXPECT_EQ(MustParseOne("fork 1 -> 2").expect->value, std::optional<uint64_t>(2));
  EXPECT_EQ(MustParseOne("pin 1 0 1 -> 3").expect->value, std::optional<uint64_t>(3));
  EXPECT_FALSE(MustParseOne("process -> ok").expect->value.has_value());

  Op bytes = MustParseOne(R"(read 1 0x10000010 5 -> "hello")");
  EXPECT_EQ(bytes.expect->err, Errno::kOk);
  EXPECT_EQ(bytes.expect->data, std::optional<std::vector<uint8_t>>(Bytes("hello")));
  EXPECT_EQ(MustParseOne("read 1 0 2 -> hex:00ff").expect->data,
            std::optional<std::vector<uint8_t>>(std::vector<uint8_t>{0x00, 0xff}));
  EXPECT_EQ(MustParseOne("read 1 0 4 -> fill:0*4").expect->data,
            std::optional<std::vector<uint8_t>>(std::vector<uint8_t>(4, 0)));
  EXPECT_FALSE(MustParseOne("read 1 0 4 -> ok").expect->data.has_value());
}

TEST(TraceExpect, DeviceResults) {
  EXPECT_EQ(MustParseOne("devmem_add 1 0x10000 -> 2").expect->value,
            std::optional<uint64_t>(2));
  EXPECT_EQ(MustParseOne("devpage_alloc 1 -> 0x100000").expect->value,
            std::optional<uint64_t>(0x100000));
  EXPECT_EQ(MustParseOne("page_frees 1 -> 0").expect->value, std::optional<uint64_t>(0));
  EXPECT_EQ(MustParseOne("page_frees 1 -> 3").expect->value, std::optional<uint64_t>(3));
  EXPECT_EQ(MustParseOne("devmem_add 1 0 -> kInval").expect->err, Errno::kInval);
  EXPECT_EQ(MustParseOne("devmem_add 1 0x10000 -> ERANGE").expect->err, Errno::kRange);
  EXPECT_EQ(MustParseOne("devpage_alloc 1 -> kNoMem").expect->err, Errno::kNoMem);
  EXPECT_EQ(MustParseOne("devpage_put 0x5 -> kNoEnt").expect->err, Errno::kNoEnt);
  EXPECT_EQ(MustParseOne("devmap 9 0 0 r -> ESRCH").expect->err, Errno::kSrch);
  EXPECT_EQ(MustParseOne("ram_hotadd 0 0x1000 -> kBusy").expect->err, Errno::kBusy);
  EXPECT_EQ(MustParseOne("ram_hotremove 0 0x1000 -> ok").expect->err, Errno::kOk);
  EXPECT_EQ(MustParseOne("devmem_remove 1 -> ok").expect->err, Errno::kOk);
  EXPECT_FALSE(MustParseOne("devpage_alloc 1 -> ok").expect->value.has_value());
}

TEST(TraceExpect, ArrowNeedsNoSpaces) {
  Op op = MustParseOne(R"(read 1 0 1->"x")");
  EXPECT_EQ(op.len, 1u);
  EXPECT_EQ(op.expect->data, std::optional<std::vector<uint8_t>>(Bytes("x")));
  EXPECT_EQ(MustParseOne("exit 1->kSrch").expect->err, Errno::kSrch);
}

// --- Lines, comments, line endings ---

TEST(TraceText, CommentsBlankLinesAndLineNumbers) {
  std::vector<Op> ops = MustParse(
      "# a scenario\n"
      "\n"
      "process -> 1   # the first pid\n"
      "   \t  \n"
      "  # indented comment\n"
      "exit 1#no space needed\n");
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].line, 3);
  EXPECT_EQ(ops[1].line, 6);
  EXPECT_EQ(ops[1].pid, 1u);
}

TEST(TraceText, EmptyTextIsAnEmptyTrace) {
  EXPECT_TRUE(MustParse("").empty());
  EXPECT_TRUE(MustParse("\n\n# only comments\n").empty());
}

TEST(TraceText, CrlfLineEndings) {
  std::vector<Op> ops = MustParse("process -> 1\r\n\r\nread 1 0 1 -> \"a\"\r\nexit 1\r\n");
  ASSERT_EQ(ops.size(), 3u);
  EXPECT_EQ(ops[1].line, 3);
  EXPECT_EQ(ops[1].expect->data, std::optional<std::vector<uint8_t>>(Bytes("a")));
  EXPECT_EQ(ops[2].pid, 1u);
}

TEST(TraceText, LastLineWithoutNewline) {
  std::vector<Op> ops = MustParse("process\nexit 1");
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[1].line, 2);
}

TEST(TraceText, FailureLeavesOpsUnchanged) {
  std::vector<Op> ops(3);
  std::string error;
  EXPECT_FALSE(ParseTrace("process\nbogus\n", "t.hmm", &ops, &error));
  EXPECT_EQ(ops.size(), 3u);
  EXPECT_FALSE(ParseTrace("bogus", "t.hmm", &ops, nullptr));  // error may be null
}

// --- Files ---

TEST(TraceFile, UnreadableFile) {
  std::vector<Op> ops;
  std::string error;
  EXPECT_FALSE(ParseTraceFile("/nonexistent/x.hmm", &ops, &error));
  EXPECT_EQ(error, "/nonexistent/x.hmm: cannot read: No such file or directory");
  EXPECT_FALSE(ParseTraceFile("/", &ops, &error));
  EXPECT_EQ(error, "/: cannot read: Is a directory");
}

TEST(TraceFile, ReadsAndNamesTheFile) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string path = std::string(tmp != nullptr ? tmp : "/tmp") + "/trace_test.hmm";
  std::ofstream(path) << "process -> 1\nbogus 1\n";
  std::vector<Op> ops;
  std::string error;
  EXPECT_FALSE(ParseTraceFile(path, &ops, &error));
  EXPECT_EQ(error, path + ":2: unknown operation 'bogus'");
  std::ofstream(path) << "process -> 1\n";
  EXPECT_TRUE(ParseTraceFile(path, &ops, &error)) << error;
  EXPECT_EQ(ops.size(), 1u);
}

// --- Formatting ---

TEST(TraceFormat, CanonicalLines) {
  const std::vector<std::string> canonical = {
      "process -> 1",
      "exit 2",
      "mmap 1 0x10000000 0x4000 rw private|fixed -> 0x10000000",
      "mmap 1 0x0 0x1000 none 0 -> kInval",
      "mmap 1 0x0 0x1000 r|0x8 shared|0x100",
      "munmap 1 0x10000000 0x1000 -> ok",
      "mprotect 1 0x10000000 0x1000 0x4 -> kInval",
      "madvise 1 0x10000000 0x1000 dontneed -> kNoMem",
      "read 1 0x10000010 0x5 -> \"hello\"",
      "read 1 0x10000000 0x1000 -> fill:0x0*4096",
      "read 1 0x10000000 0x2 -> hex:00ff",
      "read 1 0x10000000 0x2 -> kFault",
      "write 1 0x10000010 \"say \\\"hi\\\"\\n\\t\\\\\"",
      "write 1 0x10000010 fill:0x41*100 -> ok",
      "write 1 0x10000010 hex:0001fe",
      "write 1 0x10000010 \"\" -> kInval",
      "pin 1 0x10000000 2 -> 1",
      "unpin 1 -> kNoEnt",
      "fork 1 -> 2",
      "mremap 1 0x10000000 0x2000 0x4000 maymove -> 0x10002000",
      "mremap 1 0x10000000 0x2000 0x2000 maymove|fixed 0x20000000 -> 0x20000000",
      "mremap 1 0x10000000 0x2000 0x2000 0 -> ok",
      "devmem_add 1 0x10000 -> 1",
      "devmem_add 18446744073709551615 0xffffffffffffffff -> kInval",
      "devmem_remove 1 -> kBusy",
      "ram_hotadd 0x800000 0x10000 -> ok",
      "ram_hotremove 0x0 0x400000 -> kBusy",
      "devpage_alloc 2 -> 0x100010",
      "devpage_alloc 2 -> kNoMem",
      "devpage_put 0x100000 -> ok",
      "devmap 1 0x10000000 0x100000 rw -> ok",
      "devmap 1 0x10000000 0x100000 r",
      "devmap 1 0x10000000 0x100000 r|0x8 -> kInval",
      "page_frees 1 -> 0",
      "page_frees 1 -> 12",
      "page_frees 1 -> ok",
      "physmem_bits 32",
      "section 0x10000",
      "ram 16",
      "profile default",
      "profile v18",
      "profile linux-6.1",
  };
  for (const std::string& line : canonical) {
    EXPECT_EQ(FormatOp(MustParseOne(line)), line);
  }
}

TEST(TraceFormat, PrintsOnlyWhatTheKindReturns) {
  Op op = MustParseOne("munmap 1 0x1000 0x1000");
  op.expect = Expect{Errno::kOk, 0, std::vector<uint8_t>{1}, 2, 3};
  EXPECT_EQ(FormatOp(op), "munmap 1 0x1000 0x1000 -> ok");
  op.expect = Expect{Errno::kNoMem, 7, std::nullopt, std::nullopt, std::nullopt};
  EXPECT_EQ(FormatOp(op), "munmap 1 0x1000 0x1000 -> kNoMem");
}

TEST(TraceFormat, ExpectFromResult) {
  OpResult r;
  r.value = 0x10000000;
  r.data = {1, 2};
  Expect mmap = ExpectFromResult(OpKind::kMmap, r);
  EXPECT_EQ(mmap.value, std::optional<uint64_t>(0x10000000));
  EXPECT_FALSE(mmap.data.has_value());
  Expect read = ExpectFromResult(OpKind::kRead, r);
  EXPECT_FALSE(read.value.has_value());
  EXPECT_EQ(read.data, std::optional<std::vector<uint8_t>>(std::vector<uint8_t>{1, 2}));
  Expect munmap = ExpectFromResult(OpKind::kMunmap, r);
  EXPECT_FALSE(munmap.value.has_value());
  EXPECT_FALSE(munmap.data.has_value());
  r.err = Errno::kFault;
  Expect fault = ExpectFromResult(OpKind::kRead, r);
  EXPECT_EQ(fault.err, Errno::kFault);
  EXPECT_FALSE(fault.data.has_value());
}

TEST(TraceFormat, TraceWithHeaderAndAlignedArrows) {
  std::vector<Op> ops = MustParse(
      "process -> 1\n"
      "mmap 1 0 0x1000 rw private -> 0x10000000\n"
      "exit 1\n");
  EXPECT_EQ(FormatTrace(ops, "found by suite cpu\n\nseed 1"),
            "# found by suite cpu\n"
            "#\n"
            "# seed 1\n"
            "process" + std::string(21, ' ') + " -> 1\n" +
            "mmap 1 0x0 0x1000 rw private -> 0x10000000\n"
            "exit 1\n");
  EXPECT_EQ(FormatTrace({}, ""), "");
}

TEST(TraceFormat, OpNames) {
  EXPECT_EQ(OpName(OpKind::kCreateProcess), "process");
  EXPECT_EQ(OpName(OpKind::kMadviseDontneed), "madvise");
  EXPECT_EQ(OpName(OpKind::kMremap), "mremap");
  EXPECT_EQ(OpName(OpKind::kRead), "read");
  EXPECT_EQ(OpName(OpKind::kWrite), "write");
  EXPECT_EQ(OpName(OpKind::kDevmemAdd), "devmem_add");
  EXPECT_EQ(OpName(OpKind::kDevmemRemove), "devmem_remove");
  EXPECT_EQ(OpName(OpKind::kRamHotAdd), "ram_hotadd");
  EXPECT_EQ(OpName(OpKind::kRamHotRemove), "ram_hotremove");
  EXPECT_EQ(OpName(OpKind::kDevPageAlloc), "devpage_alloc");
  EXPECT_EQ(OpName(OpKind::kDevPagePut), "devpage_put");
  EXPECT_EQ(OpName(OpKind::kDevMap), "devmap");
  EXPECT_EQ(OpName(OpKind::kPageFrees), "page_frees");
  EXPECT_EQ(OpName(OpKind::kPhysmemBits), "physmem_bits");
  EXPECT_EQ(OpName(OpKind::kSection), "section");
  EXPECT_EQ(OpName(OpKind::kProfile), "profile");
  EXPECT_EQ(OpName(OpKind::kRam), "ram");
}

TEST(TraceFormat, EveryKindHasAName) {
  for (int k = 0; k <= static_cast<int>(kLastOpKind); ++k) {
    EXPECT_EQ(OpName(static_cast<OpKind>(k)).rfind("unknown-op-", 0), std::string::npos) << k;
  }
}

TEST(TraceFormat, DeviceExpectFromResult) {
  OpResult r;
  r.value = 0x100000;
  r.data = {1};
  for (OpKind kind : {OpKind::kDevmemAdd, OpKind::kDevPageAlloc, OpKind::kPageFrees}) {
    Expect e = ExpectFromResult(kind, r);
    EXPECT_EQ(e.value, std::optional<uint64_t>(0x100000)) << OpName(kind);
    EXPECT_FALSE(e.data.has_value());
  }
  for (OpKind kind : {OpKind::kDevmemRemove, OpKind::kRamHotAdd, OpKind::kRamHotRemove,
                      OpKind::kDevPagePut, OpKind::kDevMap, OpKind::kPhysmemBits,
                      OpKind::kSection, OpKind::kProfile}) {
    Expect e = ExpectFromResult(kind, r);
    EXPECT_FALSE(e.value.has_value()) << OpName(kind);
    EXPECT_FALSE(e.data.has_value());
  }
  Op op = MustParseOne("page_frees 1");
  r.value = 0;
  op.expect = ExpectFromResult(OpKind::kPageFrees, r);
  EXPECT_EQ(FormatOp(op), "page_frees 1 -> 0");
  op = MustParseOne("devpage_alloc 1");
  r.value = 0x100000;
  op.expect = ExpectFromResult(OpKind::kDevPageAlloc, r);
  EXPECT_EQ(FormatOp(op), "devpage_alloc 1 -> 0x100000");
}

}  // namespace
}  // namespace hmm::props
