// File: cli/report_oracle_test.cc
//
// The agreement table reads an `oracle run` output (the lines below are
// copied from a real run's format): per-trace counts, differing lines by
// kind and by divergence, unexplained ones marked; other text is refused.

#include "cli/report_oracle.h"

#include <string>

#include "gtest/gtest.h"

namespace hmm::cli::report {
namespace {

const char kRun[] =
    "oracle: boot 1: 3 trace(s)\n"
    "scenarios/mirror_errors.hmm: 99 compared, 1 differ, 4 known, 43 unsupported, 16 not run, "
    "3 differ after an unsupported line\n"
    "   24: known D8     mirror 4 1  (errno)\n"
    "      kernel: err ENOENT\n"
    "   25: DIFFERS      mirror 18446744073709551615 1  (errno)\n"
    "   76: differs*     dread 3 0xfffffffff000 2  (errno; after unsupported line 60)\n"
    "   98: known D9     snapshot 3 0xfffffffff000 2  (errno; after unsupported line 60)\n"
    "scenarios/migrate_two_devices.hmm: 11 compared, 0 differ, 1 known, 2 unsupported, 0 not "
    "run (the guest stopped during this trace: a kernel crash?)\n"
    "   28: known D12     dread 1 0x10000000 4  (the kernel crashed here; the rest of the trace "
    "is not run)\n"
    "oracle/traces/x.hmm: 7 compared, 0 differ, 1 known, 0 unsupported, 0 not run\n"
    "   16: known D13    read 1 0x10003000 0x4  (data at byte 0x0: kernel 0x0, model 0x11)\n"
    "117 lines compared, 6 known differences, 1 unexplained (3 traces; ...)\n";

TEST(ReportOracle, CountsTracesKindsAndDivergences) {
  OracleAgreement a;
  std::string error;
  ASSERT_TRUE(ParseOracleRun(kRun, &a, &error)) << error;
  ASSERT_EQ(a.traces.size(), 3u);
  EXPECT_EQ(a.traces[0].file, "scenarios/mirror_errors.hmm");
  EXPECT_EQ(a.traces[0].compared, 99u);
  EXPECT_EQ(a.traces[0].not_run, 16u);
  EXPECT_FALSE(a.traces[0].crashed);
  EXPECT_TRUE(a.traces[1].crashed);
  EXPECT_EQ(a.unexplained, 1u);
  EXPECT_EQ(a.known_by_kind["errno"], 2u);
  EXPECT_EQ(a.known_by_kind["crash"], 1u);
  EXPECT_EQ(a.known_by_kind["data"], 1u);
  EXPECT_EQ(a.unexplained_by_kind["errno"], 1u);
  EXPECT_EQ(a.after_unsupported_by_kind["errno"], 1u);
  EXPECT_EQ(a.known_by_id["D12"], 1u);
  EXPECT_EQ(a.known_by_id.size(), 4u);
  EXPECT_EQ(a.totals.rfind("117 lines compared", 0), 0u);
}

TEST(ReportOracle, SectionMarksUnexplainedLines) {
  OracleAgreement a;
  std::string error;
  ASSERT_TRUE(ParseOracleRun(kRun, &a, &error)) << error;
  a.source = "oracle.txt";
  Document doc;
  doc.sections.push_back(OracleSection(a));
  const std::string md = RenderMarkdown(doc);
  EXPECT_NE(md.find("3 traces, 117 lines compared, 6 known differences, 1 unexplained"),
            std::string::npos) << md;
  EXPECT_NE(md.find("Unexplained differences are bugs"), std::string::npos);
  EXPECT_NE(md.find("| D13 | 1 |"), std::string::npos) << md;
  const std::string html = RenderHtml(doc);
  EXPECT_NE(html.find("class=\"bad\""), std::string::npos) << "an unexplained count is marked";
}

TEST(ReportOracle, WithoutAFileTheSectionSaysHowToMakeOne) {
  Document doc;
  doc.sections.push_back(OracleSection(OracleAgreement{}));
  EXPECT_NE(RenderMarkdown(doc).find("hmmref report --oracle oracle.txt"), std::string::npos);
}

TEST(ReportOracle, OtherTextIsRefused) {
  OracleAgreement a;
  std::string error;
  EXPECT_FALSE(ParseOracleRun("hmmref: building //cli:hmmref failed\n", &a, &error));
  EXPECT_NE(error.find("not the output of 'hmmref oracle run'"), std::string::npos) << error;
}

}  // namespace
}  // namespace hmm::cli::report
