// File: cli/output_test.cc

#include "cli/output.h"

#include <sstream>

#include "gtest/gtest.h"

namespace hmm::cli {
namespace {

TEST(TableTest, AlignsColumnsAndTrimsTrailingSpaces) {
  Table table({{"suite"}, {"steps", Table::Align::kRight}, {"result"}});
  table.AddRow({"cpu", "6123", "passed"});
  table.AddRow({"mirror", "12", ""});
  EXPECT_EQ(table.Render(),
            "suite   steps  result\n"
            "cpu      6123  passed\n"
            "mirror     12\n");
}

TEST(TableTest, EmptyTableIsItsHeader) {
  Table table({{"lemma"}, {"status"}});
  EXPECT_TRUE(table.empty());
  EXPECT_EQ(table.Render(), "lemma  status\n");
}

TEST(FormatTest, Counts) {
  EXPECT_EQ(FormatCount(0), "0");
  EXPECT_EQ(FormatCount(9999), "9999");
  EXPECT_EQ(FormatCount(12345), "12.3k");
  EXPECT_EQ(FormatCount(412000), "412k");
  EXPECT_EQ(FormatCount(4567000), "4.57M");
  EXPECT_EQ(FormatCount(45670000), "45.7M");
}

TEST(FormatTest, Seconds) {
  EXPECT_EQ(FormatSeconds(0.0042), "0.004s");
  EXPECT_EQ(FormatSeconds(1.254), "1.25s");
  EXPECT_EQ(FormatSeconds(42.14), "42.1s");
  EXPECT_EQ(FormatSeconds(187), "3m07s");
}

TEST(FormatTest, Rate) {
  EXPECT_EQ(FormatRate(100, 0), "-");
  EXPECT_EQ(FormatRate(30000, 2), "15.0k");
}

TEST(ProgressLineTest, DisabledPrintsNothing) {
  std::ostringstream err;
  {
    ProgressLine line(err, /*enabled=*/false);
    line.Update("cpu: 1/2 sequences", /*force=*/true);
  }
  EXPECT_EQ(err.str(), "");
}

TEST(ProgressLineTest, RewritesThenClears) {
  std::ostringstream err;
  {
    ProgressLine line(err, /*enabled=*/true);
    line.Update("a", /*force=*/true);
    line.Update("b");  // within 100 ms of "a": skipped
    line.Update("c", /*force=*/true);
  }
  EXPECT_EQ(err.str(), "\ra\x1b[K\rc\x1b[K\r\x1b[K");
}

}  // namespace
}  // namespace hmm::cli
