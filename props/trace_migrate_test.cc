// File: props/trace_migrate_test.cc
//
// The trace language, part 4: the migration lines (docs/migrate.md):
// migrate_to_dev, migrate_to_sys, release and dflags, their results
// (`ok [cpages=N] [DATA]`, `ok [cpages=N]`, no faults counter), canonical
// formatting and every error message.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "props/trace.h"
#include "props/trace_test_util.h"

namespace hmm::props {
namespace {

using testing::ErrorOf;
using testing::MustParseOne;

using Data = std::optional<std::vector<uint8_t>>;

TEST(TraceMigrate, EachLineFillsItsFields) {
  Op to_dev;
  to_dev.kind = OpKind::kMigrateToDev;
  to_dev.mirror = 2;
  to_dev.addr = 0x10001000;
  to_dev.len = 16;
  EXPECT_TRUE(SameOp(MustParseOne("migrate_to_dev 2 0x10001000 16"), to_dev));
  Op to_sys = to_dev;
  to_sys.kind = OpKind::kMigrateToSys;
  EXPECT_TRUE(SameOp(MustParseOne("migrate_to_sys 2 0x10001000 0x10"), to_sys));
  Op release;
  release.kind = OpKind::kRelease;
  release.mirror = 3;
  EXPECT_TRUE(SameOp(MustParseOne("release 3"), release));
  Op dflags;
  dflags.kind = OpKind::kDflags;
  dflags.mirror = 1;
  dflags.flags = kDmirrorFlagFailAlloc;
  EXPECT_TRUE(SameOp(MustParseOne("dflags 1 fail_alloc"), dflags));
  EXPECT_TRUE(SameOp(MustParseOne("dflags 1 1"), dflags));
  EXPECT_TRUE(SameOp(MustParseOne("dflags 1 HMM_DMIRROR_FLAG_FAIL_ALLOC"), dflags));
  EXPECT_EQ(MustParseOne("dflags 1 fail_alloc|0x4").flags, 5u);
  EXPECT_EQ(MustParseOne("dflags 1 0").flags, 0u);
}

TEST(TraceMigrate, Results) {
  Expect dev = *MustParseOne("migrate_to_dev 1 0 4 -> ok cpages=4 fill:0x5a*16384").expect;
  EXPECT_EQ(dev.cpages, std::optional<uint64_t>(4));
  EXPECT_EQ(dev.data, Data(std::vector<uint8_t>(16384, 0x5a)));
  EXPECT_FALSE(dev.faults.has_value());
  Expect bare = *MustParseOne("migrate_to_dev 1 0 4 -> ok").expect;
  EXPECT_FALSE(bare.cpages || bare.faults || bare.data);
  EXPECT_EQ(MustParseOne("migrate_to_dev 1 0 4 -> kNoEnt").expect->err, Errno::kNoEnt);
  Expect sys = *MustParseOne("migrate_to_sys 1 0 4 -> ok cpages=3").expect;
  EXPECT_EQ(sys.cpages, std::optional<uint64_t>(3));
  EXPECT_EQ(MustParseOne("release 1 -> kNoMem").expect->err, Errno::kNoMem);
  EXPECT_EQ(MustParseOne("dflags 1 2 -> EINVAL").expect->err, Errno::kInval);
}

TEST(TraceMigrate, CanonicalLines) {
  const std::vector<std::string> canonical = {
      "migrate_to_dev 1 0x10000000 4 -> ok cpages=4 fill:0x0*16384",
      "migrate_to_dev 1 0x10000000 1 -> ok cpages=1",
      "migrate_to_dev 1 0x10000000 1 -> ok \"hi\"",
      "migrate_to_dev 1 0x10000000 2 -> kNoEnt",
      "migrate_to_sys 1 0x10000000 4 -> ok cpages=4",
      "migrate_to_sys 2 0x10000000 1 -> ok",
      "release 1 -> ok",
      "release 2 -> kNoMem",
      "dflags 1 fail_alloc -> ok",
      "dflags 1 0 -> ok",
      "dflags 1 fail_alloc|0x2 -> kInval",
  };
  for (const std::string& line : canonical) {
    EXPECT_EQ(FormatOp(MustParseOne(line)), line);
  }
  EXPECT_EQ(FormatOp(MustParseOne("dflags 1 1 -> ok")), "dflags 1 fail_alloc -> ok");
  // A faults counter an expectation was built with is not printed: it has none.
  Op op = MustParseOne("migrate_to_sys 1 0x10000000 1");
  op.expect = Expect{};
  op.expect->cpages = 1;
  op.expect->faults = 0;
  EXPECT_EQ(FormatOp(op), "migrate_to_sys 1 0x10000000 1 -> ok cpages=1");
}

TEST(TraceMigrate, ExpectFromResult) {
  OpResult r;
  r.cpages = 2;
  r.faults = 7;
  r.data = {1, 2};
  Expect dev = ExpectFromResult(OpKind::kMigrateToDev, r);
  EXPECT_EQ(dev.cpages, std::optional<uint64_t>(2));
  EXPECT_EQ(dev.data, Data(r.data));
  EXPECT_FALSE(dev.faults || dev.value);
  Expect sys = ExpectFromResult(OpKind::kMigrateToSys, r);
  EXPECT_EQ(sys.cpages, std::optional<uint64_t>(2));
  EXPECT_FALSE(sys.faults || sys.data || sys.value);
  for (OpKind kind : {OpKind::kRelease, OpKind::kDflags}) {
    Expect e = ExpectFromResult(kind, r);
    EXPECT_FALSE(e.cpages || e.faults || e.data || e.value) << OpName(kind);
  }
  EXPECT_EQ(OpName(OpKind::kMigrateToDev), "migrate_to_dev");
  EXPECT_EQ(OpName(OpKind::kMigrateToSys), "migrate_to_sys");
  EXPECT_EQ(OpName(OpKind::kRelease), "release");
  EXPECT_EQ(OpName(OpKind::kDflags), "dflags");
}

TEST(TraceMigrate, ErrorMessages) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"migrate_to_dev 1 0x10000000",
       "expected 3 arguments for migrate_to_dev (MIRROR ADDR NPAGES), got 2"},
      {"migrate_to_sys 1 0 1 1",
       "expected 3 arguments for migrate_to_sys (MIRROR ADDR NPAGES), got 4"},
      {"release", "expected 1 argument for release (MIRROR), got 0"},
      {"release 1 2", "expected 1 argument for release (MIRROR), got 2"},
      {"dflags 1", "expected 2 arguments for dflags (MIRROR FLAGS), got 1"},
      {"dflags 1 fail", "unknown dmirror flag 'fail'"},
      {"dflags 1 fail_alloc|", "bad dmirror flag list 'fail_alloc|'"},
      {"dflags 1 0x100000000", "number '0x100000000' overflows 32 bits"},
      {"migrate_to_dev x 0 1", "bad number 'x'"},
      {"migrate_to_dev 1 0 1 -> ok faults=0",
       "migrate_to_dev returns cpages and bytes: expected ok [cpages=N] [DATA] or an errno, "
       "got 'faults=0'"},
      {"migrate_to_dev 1 0 1 -> 4",
       "migrate_to_dev returns cpages and bytes: expected ok [cpages=N] [DATA] or an errno, "
       "got '4'"},
      {"migrate_to_dev 1 0 1 -> ok hex:00 cpages=1",
       "unexpected 'cpages=1' after 'hex:00' (the order is ok cpages=N faults=N DATA)"},
      {"migrate_to_sys 1 0 1 -> ok cpages=1 hex:00",
       "migrate_to_sys returns cpages: expected ok [cpages=N] or an errno, got 'hex:00'"},
      {"migrate_to_sys 1 0 1 -> ok cpages=1 faults=0",
       "migrate_to_sys returns cpages: expected ok [cpages=N] or an errno, got 'faults=0'"},
      {"migrate_to_sys 1 0 1 -> kNoMem cpages=0", "unexpected 'cpages=0' after the result"},
      {"release 1 -> ok cpages=1", "unexpected 'cpages=1' after the result"},
      {"dflags 1 1 -> 1", "dflags returns no value: expected ok or an errno, got '1'"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ErrorOf(c.first), "t.hmm:1: " + c.second) << "in: " << c.first;
  }
}

}  // namespace
}  // namespace hmm::props
