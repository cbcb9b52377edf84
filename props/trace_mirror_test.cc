// File: props/trace_mirror_test.cc
//
// The trace language, part 3: the mirroring lines (docs/mirror.md): each
// keyword and its fields, the ioctl result `ok [cpages=N] [faults=N] [DATA]`,
// canonical formatting, every error message, and FormatOutcome.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "props/trace.h"
#include "props/trace_test_util.h"

namespace hmm::props {
namespace {

using testing::Bytes;
using testing::ErrorOf;
using testing::MustParseOne;

using Data = std::optional<std::vector<uint8_t>>;

// --- Every line kind ---

// A line and the fields it must fill (every other field stays 0).
struct FieldCase {
  std::string text;
  OpKind kind;
  uint64_t device, pid, mirror, range, addr, len;
  uint32_t prot;
};

TEST(TraceMirror, EachLineFillsItsFields) {
  const uint64_t a = 0x10000000;
  const std::vector<FieldCase> cases = {
      {"mirror 2 7", OpKind::kMirror, 2, 7, 0, 0, 0, 0, 0},
      {"unmirror 3", OpKind::kUnmirror, 0, 0, 3, 0, 0, 0, 0},
      {"get_pfns 1 0x10000000 4", OpKind::kGetPfns, 0, 0, 1, 0, a, 4, 0},
      {"hmm_fault 1 0x10000000 0x10 w", OpKind::kHmmFault, 0, 0, 1, 0, a, 16, kProtWrite},
      {"range_done 5", OpKind::kRangeDone, 0, 0, 0, 5, 0, 0, 0},
      {"commit 6", OpKind::kCommit, 0, 0, 0, 6, 0, 0, 0},
      {"dread 1 0x10000000 8", OpKind::kDread, 0, 0, 1, 0, a, 8, 0},
      {"snapshot 3 0x10000000 2", OpKind::kSnapshot, 0, 0, 3, 0, a, 2, 0},
      {"dwrite 2 0x10001000 \"\"", OpKind::kDwrite, 0, 0, 2, 0, a + 0x1000, 0, 0},
      // hmm_fault's prot word as elsewhere; a write fault iff it has w.
      {"hmm_fault 1 0 1 r", OpKind::kHmmFault, 0, 0, 1, 0, 0, 1, kProtRead},
      {"hmm_fault 1 0 1 rw", OpKind::kHmmFault, 0, 0, 1, 0, 0, 1, kProtRead | kProtWrite},
      {"hmm_fault 1 0 1 PROT_WRITE", OpKind::kHmmFault, 0, 0, 1, 0, 0, 1, kProtWrite},
      {"hmm_fault 1 0 1 none", OpKind::kHmmFault, 0, 0, 1, 0, 0, 1, kProtNone},
      {"dfault 2 0x10000000 3 r", OpKind::kDfault, 0, 0, 2, 0, a, 3, kProtRead},
      {"dfault 2 0x10000000 3 w", OpKind::kDfault, 0, 0, 2, 0, a, 3, kProtWrite},
  };
  for (const FieldCase& c : cases) {
    Op want;
    want.kind = c.kind;
    want.device = c.device;
    want.pid = c.pid;
    want.mirror = c.mirror;
    want.range = c.range;
    want.addr = c.addr;
    want.len = c.len;
    want.prot = c.prot;
    EXPECT_TRUE(SameOp(MustParseOne(c.text), want)) << c.text;
  }
  EXPECT_EQ(MustParseOne("dwrite 2 0 fill:0x7*4096").data, std::vector<uint8_t>(4096, 7));
}

TEST(TraceMirror, NumberedResults) {
  EXPECT_EQ(MustParseOne("mirror 2 7 -> 1").expect->value, std::optional<uint64_t>(1));
  EXPECT_EQ(MustParseOne("get_pfns 1 0 4 -> 2").expect->value, std::optional<uint64_t>(2));
  EXPECT_EQ(MustParseOne("hmm_fault 1 0 4 w -> 3").expect->value, std::optional<uint64_t>(3));
  EXPECT_EQ(MustParseOne("range_done 5 -> 1").expect->value, std::optional<uint64_t>(1));
  EXPECT_EQ(MustParseOne("commit 6 -> 0").expect->value, std::optional<uint64_t>(0));
  EXPECT_EQ(MustParseOne("commit 6 -> kNoEnt").expect->err, Errno::kNoEnt);
  EXPECT_EQ(MustParseOne("unmirror 3 -> kBusy").expect->err, Errno::kBusy);
}

// --- The ioctl result ---

TEST(TraceMirror, IoctlResultParts) {
  Expect all = *MustParseOne("dread 1 0 4 -> ok cpages=4 faults=1 fill:0x00*16384").expect;
  EXPECT_EQ(all.err, Errno::kOk);
  EXPECT_EQ(all.cpages, std::optional<uint64_t>(4));
  EXPECT_EQ(all.faults, std::optional<uint64_t>(1));
  EXPECT_EQ(all.data, Data(std::vector<uint8_t>(16384, 0)));
  EXPECT_FALSE(all.value.has_value());
  Expect ok = *MustParseOne("dread 1 0 4 -> ok").expect;
  EXPECT_FALSE(ok.cpages || ok.faults || ok.data);
  Expect faults = *MustParseOne("dread 1 0 4 -> ok faults=0").expect;
  EXPECT_FALSE(faults.cpages.has_value());
  EXPECT_EQ(faults.faults, std::optional<uint64_t>(0));
  Expect data = *MustParseOne("dread 1 0 1 -> ok \"ab\"").expect;
  EXPECT_EQ(data.data, Data(Bytes("ab")));
  Expect hex = *MustParseOne("dread 1 0 1 -> kOk cpages=0x10 hex:01").expect;
  EXPECT_EQ(hex.cpages, std::optional<uint64_t>(16));
  Expect write = *MustParseOne("dwrite 1 0 fill:0*4096 -> ok cpages=1 faults=2").expect;
  EXPECT_EQ(write.cpages, std::optional<uint64_t>(1));
  EXPECT_EQ(write.faults, std::optional<uint64_t>(2));
  Expect snap = *MustParseOne("snapshot 1 0 3 -> ok cpages=3 hex:ff1122").expect;
  EXPECT_EQ(snap.data, Data(std::vector<uint8_t>{0xff, 0x11, 0x22}));
  EXPECT_FALSE(snap.faults.has_value());
  EXPECT_EQ(MustParseOne("dread 1 0 1 -> kFault").expect->err, Errno::kFault);
  EXPECT_EQ(MustParseOne("dwrite 1 0 \"x\" -> EINVAL").expect->err, Errno::kInval);
  EXPECT_EQ(MustParseOne("snapshot 1 0 1->ok cpages=1").expect->cpages,
            std::optional<uint64_t>(1));
}

// --- Canonical form ---

TEST(TraceMirror, CanonicalLines) {
  const std::vector<std::string> canonical = {
      "mirror 0 1 -> 1",
      "mirror 4 1 -> kInval",
      "unmirror 1 -> ok",
      "get_pfns 1 0x10000000 8 -> 1",
      "hmm_fault 1 0x10000000 2 w -> 2",
      "hmm_fault 1 0x10000000 2 r|0x8",
      "range_done 1 -> 0",
      "commit 2 -> 1",
      "commit 2 -> ok",
      "dread 1 0x10000000 8 -> ok cpages=8 faults=1 fill:0x0*32768",
      "dread 1 0x10000000 1 -> ok cpages=1 faults=0 \"hi\"",
      "dread 1 0x10000000 1 -> ok faults=0",
      "dread 1 0x10000001 1 -> kInval",
      "dwrite 1 0x10000000 fill:0x1*4096 -> ok cpages=1 faults=1",
      "dwrite 1 0x10000000 \"\" -> kInval",
      "snapshot 1 0x10000000 4 -> ok cpages=4 hex:ff001101",
      "snapshot 1 0x10000000 8 -> ok cpages=8 fill:0x2*8",
      "snapshot 1 0x10000000 2 -> ok cpages=2 hex:2122",  // "!\"" as text: never a string
      "snapshot 1 0x10000000 2 -> ok cpages=2 faults=0 hex:0102",
  };
  for (const std::string& line : canonical) {
    EXPECT_EQ(FormatOp(MustParseOne(line)), line);
  }
  EXPECT_EQ(FormatOp(MustParseOne("dread 1 0 1 -> OK cpages=1 fill:0x00*4")),
            "dread 1 0x0 1 -> ok cpages=1 hex:00000000");
  EXPECT_EQ(FormatOp(MustParseOne("snapshot 1 0 1 -> ok \"!\"")), "snapshot 1 0x0 1 -> ok hex:21");
}

TEST(TraceMirror, ExpectFromResult) {
  OpResult r;
  r.value = 1;
  r.cpages = 4;
  r.faults = 1;
  r.data = {0xff, 0x02};
  Expect read = ExpectFromResult(OpKind::kDread, r);
  EXPECT_EQ(read.cpages, std::optional<uint64_t>(4));
  EXPECT_EQ(read.faults, std::optional<uint64_t>(1));
  EXPECT_EQ(read.data, Data(r.data));
  EXPECT_FALSE(read.value.has_value());
  Expect write = ExpectFromResult(OpKind::kDwrite, r);
  EXPECT_EQ(write.faults, std::optional<uint64_t>(1));
  EXPECT_FALSE(write.data.has_value());
  Expect snap = ExpectFromResult(OpKind::kSnapshot, r);
  EXPECT_EQ(snap.cpages, std::optional<uint64_t>(4));
  EXPECT_FALSE(snap.faults.has_value()) << "a snapshot never faults: not printed";
  for (OpKind kind : {OpKind::kMirror, OpKind::kGetPfns, OpKind::kHmmFault, OpKind::kRangeDone,
                      OpKind::kCommit}) {
    Expect e = ExpectFromResult(kind, r);
    EXPECT_EQ(e.value, std::optional<uint64_t>(1)) << OpName(kind);
    EXPECT_FALSE(e.cpages || e.faults || e.data) << OpName(kind);
  }
  Expect unmirror = ExpectFromResult(OpKind::kUnmirror, r);
  EXPECT_FALSE(unmirror.value || unmirror.cpages || unmirror.data);
  r.err = Errno::kFault;
  Expect failed = ExpectFromResult(OpKind::kDread, r);
  EXPECT_EQ(failed.err, Errno::kFault);
  EXPECT_FALSE(failed.cpages || failed.faults || failed.data);
  Op op = MustParseOne("snapshot 1 0x10000000 2");
  r.err = Errno::kOk;
  r.cpages = 2;
  op.expect = ExpectFromResult(op.kind, r);
  EXPECT_EQ(FormatOp(op), "snapshot 1 0x10000000 2 -> ok cpages=2 hex:ff02");
}

TEST(TraceMirror, OpNamesAndSameOp) {
  EXPECT_EQ(OpName(OpKind::kMirror), "mirror");
  EXPECT_EQ(OpName(OpKind::kUnmirror), "unmirror");
  EXPECT_EQ(OpName(OpKind::kGetPfns), "get_pfns");
  EXPECT_EQ(OpName(OpKind::kHmmFault), "hmm_fault");
  EXPECT_EQ(OpName(OpKind::kRangeDone), "range_done");
  EXPECT_EQ(OpName(OpKind::kCommit), "commit");
  EXPECT_EQ(OpName(OpKind::kDread), "dread");
  EXPECT_EQ(OpName(OpKind::kDwrite), "dwrite");
  EXPECT_EQ(OpName(OpKind::kSnapshot), "snapshot");
  const Op a = MustParseOne("dread 1 0 4 -> ok cpages=4 faults=1");
  EXPECT_FALSE(SameOp(a, MustParseOne("dread 2 0 4 -> ok cpages=4 faults=1")));  // mirror
  EXPECT_FALSE(SameOp(a, MustParseOne("dread 1 0 4 -> ok cpages=3 faults=1")));
  EXPECT_FALSE(SameOp(a, MustParseOne("dread 1 0 4 -> ok cpages=4 faults=0")));
  EXPECT_FALSE(SameOp(a, MustParseOne("dread 1 0 4 -> ok cpages=4")));
  EXPECT_FALSE(SameOp(MustParseOne("commit 1"), MustParseOne("commit 2")));  // range
  EXPECT_TRUE(SameOp(a, MustParseOne("dread 1 0x0 4 -> kOk cpages=4 faults=0x1")));
}

// --- FormatOutcome: every part, whatever the kind ---

TEST(TraceMirror, FormatOutcome) {
  Expect e;
  EXPECT_EQ(FormatOutcome(e), "ok");
  e.cpages = 4;
  e.faults = 1;
  e.data = std::vector<uint8_t>(16384, 0);
  EXPECT_EQ(FormatOutcome(e), "ok cpages=4 faults=1 fill:0x0*16384");
  e.data = std::vector<uint8_t>{0x68, 0x69};
  EXPECT_EQ(FormatOutcome(e), "ok cpages=4 faults=1 hex:6869");  // never a string
  e.value = 0x10000000;
  e.cpages.reset();
  EXPECT_EQ(FormatOutcome(e), "ok 0x10000000 faults=1 hex:6869");
  e.err = Errno::kFault;
  EXPECT_EQ(FormatOutcome(e), "kFault");
}

// --- Errors ---

TEST(TraceMirror, ErrorMessages) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"mirror 0", "expected 2 arguments for mirror (DEVICE PID), got 1"},
      {"mirror 0 1 2", "expected 2 arguments for mirror (DEVICE PID), got 3"},
      {"unmirror", "expected 1 argument for unmirror (MIRROR), got 0"},
      {"get_pfns 1 0x10000000",
       "expected 3 arguments for get_pfns (MIRROR ADDR NPAGES), got 2"},
      {"hmm_fault 1 0x10000000 1",
       "expected 4 arguments for hmm_fault (MIRROR ADDR NPAGES PROT), got 3"},
      {"hmm_fault 1 0x10000000 1 r w",
       "expected 4 arguments for hmm_fault (MIRROR ADDR NPAGES PROT), got 5"},
      {"hmm_fault 1 0 1 write", "unknown protection 'write'"},
      {"hmm_fault 1 0 1 r|", "bad protection list 'r|'"},
      {"range_done", "expected 1 argument for range_done (RANGE), got 0"},
      {"commit 1 2", "expected 1 argument for commit (RANGE), got 2"},
      {"dread 1 0", "expected 3 arguments for dread (MIRROR ADDR NPAGES), got 2"},
      {"dwrite 1 0", "expected 3 arguments for dwrite (MIRROR ADDR DATA), got 2"},
      {"dwrite 1 0 5", "bad data '5' (expected \"TEXT\", hex:HEX or fill:BYTE*COUNT)"},
      {"snapshot 1 0 1 1", "expected 3 arguments for snapshot (MIRROR ADDR NPAGES), got 4"},
      {"commit 0x1g", "bad number '0x1g'"},
      {"unmirror 99999999999999999999", "number '99999999999999999999' overflows 64 bits"},
      // Results of the numbered lines.
      {"mirror 0 1 -> \"x\"",
       "mirror returns a mirror id: expected ok, an errno or a number, got '\"x\"'"},
      {"get_pfns 1 0 1 -> hex:00",
       "get_pfns returns a range id: expected ok, an errno or a number, got 'hex:00'"},
      {"commit 1 -> fill:0*1",
       "commit returns 0 or 1: expected ok, an errno or a number, got 'fill:0*1'"},
      {"unmirror 1 -> 1", "unmirror returns no value: expected ok or an errno, got '1'"},
      {"range_done 1 -> ok cpages=1", "unexpected 'cpages=1' after the result"},
      {"read 1 0 1 -> cpages=1",
       "read returns bytes: expected ok, an errno or bytes, got 'cpages=1'"},
      {"mmap 1 0 1 r private -> ok faults=1", "unexpected 'faults=1' after the result"},
      // The ioctl results.
      {"dread 1 0 1 -> ok cpages=", "bad counter 'cpages=' (expected cpages=N)"},
      {"dread 1 0 1 -> ok faults=x", "bad counter 'faults=x' (expected faults=N)"},
      {"dread 1 0 1 -> ok cpages=0x1g", "bad number '0x1g'"},
      {"dread 1 0 1 -> ok cpages=99999999999999999999",
       "number '99999999999999999999' overflows 64 bits"},
      {"dread 1 0 1 -> ok pages=1", "unknown counter 'pages=1' (expected cpages=N or faults=N)"},
      {"dread 1 0 1 -> ok =1", "unknown counter '=1' (expected cpages=N or faults=N)"},
      {"dread 1 0 1 -> cpages=1", "expected ok before 'cpages=1'"},
      {"dread 1 0 1 -> ok faults=1 cpages=1",
       "unexpected 'cpages=1' after 'faults=1' (the order is ok cpages=N faults=N DATA)"},
      {"dread 1 0 1 -> ok cpages=1 cpages=1",
       "unexpected 'cpages=1' after 'cpages=1' (the order is ok cpages=N faults=N DATA)"},
      {"dread 1 0 1 -> ok hex:00 faults=1",
       "unexpected 'faults=1' after 'hex:00' (the order is ok cpages=N faults=N DATA)"},
      {"dread 1 0 1 -> ok hex:00 hex:00",
       "unexpected 'hex:00' after 'hex:00' (the order is ok cpages=N faults=N DATA)"},
      {"dread 1 0 1 -> ok hex:0", "odd number of hex digits in 'hex:0'"},
      {"dread 1 0 1 -> kFault cpages=1", "unexpected 'cpages=1' after the result"},
      {"dread 1 0 1 -> 5",
       "dread returns cpages, faults and bytes: expected ok [cpages=N] [faults=N] [DATA] or an "
       "errno, got '5'"},
      {"dread 1 0 1 -> hex:00",
       "dread returns cpages, faults and bytes: expected ok [cpages=N] [faults=N] [DATA] or an "
       "errno, got 'hex:00'"},
      {"dread 1 0 1 -> ok 5",
       "dread returns cpages, faults and bytes: expected ok [cpages=N] [faults=N] [DATA] or an "
       "errno, got '5'"},
      {"dread 1 0 1 -> kFoo",
       "dread returns cpages, faults and bytes: expected ok [cpages=N] [faults=N] [DATA] or an "
       "errno, got 'kFoo'"},
      {"dwrite 1 0 \"x\" -> ok cpages=1 hex:00",
       "dwrite returns cpages and faults: expected ok [cpages=N] [faults=N] or an errno, "
       "got 'hex:00'"},
      {"snapshot 1 0 1 -> ok ok",
       "snapshot returns cpages and a byte per page: expected ok [cpages=N] [faults=N] [DATA] "
       "or an errno, got 'ok'"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ErrorOf(c.first), "t.hmm:1: " + c.second) << "in: " << c.first;
  }
}

}  // namespace
}  // namespace hmm::props
