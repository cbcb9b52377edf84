// File: cli/report_test.cc
//
// `hmmref report` writes both files with every section, every invariant,
// lemma and suite name, in well-formed HTML; falls back to DOT source when
// dot is missing; draws traces in lanes with the failing step highlighted;
// and answers an unwritable folder or a bad --trace file with exit 2. The
// race counterexample: report_race_test.cc.

#include "cli/report.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "model/invariants.h"
#include "props/trace.h"
#include "solver/lemma.h"

namespace hmm::cli::report {
namespace {

namespace fs = std::filesystem;

std::string TempDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return (fs::path(tmp != nullptr ? tmp : "/tmp") / name).string();
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

size_t Occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

Options SmallRun(const std::string& dir, DotRenderer dot) {
  Options o;
  o.out_dir = TempDir(dir);
  o.runs = 20;
  o.dot = std::move(dot);
  return o;
}

// Writes a report; returns the exit status and fills html, md, err.
int Generate(const Options& o, std::string* html, std::string* md, std::string* err) {
  std::ostringstream out, errs;
  Io io{out, errs, false};
  int status = WriteReport(o, io);
  *html = ReadFile(fs::path(o.out_dir) / "index.html");
  *md = ReadFile(fs::path(o.out_dir) / "report.md");
  *err = errs.str();
  return status;
}

class ReportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string err;
    status_ = Generate(SmallRun("report", NoDot()), &html_, &md_, &err);
  }
  static int status_;
  static std::string html_, md_;
};

int ReportTest::status_ = -1;
std::string ReportTest::html_, ReportTest::md_;

const char* const kSectionIds[] = {"summary", "traceability", "lemmas",
                                   "suites", "diagrams", "traces", "oracle"};
const char* const kSectionTitles[] = {"Summary", "Invariant traceability matrix",
                                      "Lemmas", "Property suites",
                                      "Diagrams", "Traces as sequence diagrams",
                                      "Agreement with Linux 6.1"};

TEST_F(ReportTest, WritesBothFiles) {
  EXPECT_EQ(status_, kExitOk);
  EXPECT_FALSE(html_.empty());
  EXPECT_FALSE(md_.empty());
}

TEST_F(ReportTest, EverySectionHeadingInBoth) {
  for (const char* id : kSectionIds) {
    EXPECT_NE(html_.find(std::string("<section id=\"") + id + "\">"), std::string::npos) << id;
  }
  for (const char* title : kSectionTitles) {
    EXPECT_NE(html_.find(std::string("<h2>") + title + "</h2>"), std::string::npos) << title;
    EXPECT_NE(md_.find(std::string("\n## ") + title + "\n"), std::string::npos) << title;
  }
}

TEST_F(ReportTest, EveryInvariantLemmaAndSuiteNamed) {
  for (const model::InvariantInfo& inv : model::AllInvariants()) {
    EXPECT_NE(html_.find(std::string("<td>") + inv.name + "</td>"), std::string::npos)
        << inv.name;
    EXPECT_NE(md_.find(std::string("| ") + inv.name + " |"), std::string::npos) << inv.name;
  }
  for (const solver::Lemma& lemma : solver::AllLemmas()) {
    EXPECT_NE(html_.find("<td>" + lemma.name + "</td>"), std::string::npos) << lemma.name;
    EXPECT_NE(md_.find("| " + lemma.name + " |"), std::string::npos) << lemma.name;
  }
  for (const props::SuiteInfo& suite : props::Suites()) {
    EXPECT_NE(html_.find("Coverage of suite " + suite.name), std::string::npos) << suite.name;
    EXPECT_NE(md_.find("### Coverage of suite " + suite.name), std::string::npos) << suite.name;
  }
}

TEST_F(ReportTest, HtmlIsWellFormedAndSelfContained) {
  EXPECT_EQ(html_.rfind("<!DOCTYPE html>\n", 0), 0u);
  EXPECT_NE(html_.find("</html>\n"), std::string::npos);
  EXPECT_GT(Occurrences(html_, "<table"), 0u);
  for (const char* tag : {"table", "section", "details", "tr", "pre"}) {
    EXPECT_EQ(Occurrences(html_, std::string("<") + tag + ">") +
                  Occurrences(html_, std::string("<") + tag + " "),
              Occurrences(html_, std::string("</") + tag + ">"))
        << tag;
  }
  EXPECT_EQ(html_.find("<script"), std::string::npos);
  EXPECT_EQ(html_.find("http://"), std::string::npos);
  EXPECT_EQ(html_.find("https://"), std::string::npos);
}

TEST_F(ReportTest, SummaryNamesTheProfile) {
  EXPECT_NE(html_.find("<td>profile</td><td>each suite&#39;s own mix</td>"), std::string::npos);
  EXPECT_NE(md_.find("| profile | each suite's own mix |"), std::string::npos);
}

TEST_F(ReportTest, DotMissingShowsTheSource) {
  EXPECT_NE(html_.find("dot was not found"), std::string::npos);
  EXPECT_NE(html_.find("<pre>digraph page_lifecycle {"), std::string::npos);
  EXPECT_NE(html_.find("<pre>digraph cpu_fault {"), std::string::npos);
  EXPECT_EQ(html_.find("<svg"), std::string::npos);
  EXPECT_NE(md_.find("digraph page_lifecycle {"), std::string::npos);
}

TEST_F(ReportTest, ShowsTheV18WitnessAndTheScenarios) {
  EXPECT_NE(html_.find("<h3>LemmaV18PlacementCollides: witness</h3>"), std::string::npos);
  EXPECT_NE(html_.find("scenario scenarios/anon_read_zero_page.hmm"), std::string::npos);
  EXPECT_NE(html_.find("<table class=\"lanes\">"), std::string::npos);
}

TEST(ReportDot, RenderedDiagramsAreInlined) {
  auto fake = [](const std::string& dot, std::string* svg) {
    *svg = "<svg data-test=\"" + std::to_string(dot.size()) + "\"></svg>";
    return true;
  };
  std::string html, md, err;
  ASSERT_EQ(Generate(SmallRun("report-dot", fake), &html, &md, &err), kExitOk) << err;
  EXPECT_EQ(Occurrences(html, "<svg data-test="), 4u);  // life cycle, fault path, snapshot protocol, migration
  EXPECT_EQ(html.find("dot was not found"), std::string::npos);
}

TEST(ReportLanes, OpsGoToTheirLanes) {
  EXPECT_EQ(LaneOf(props::OpKind::kRead), "cpu");
  EXPECT_EQ(LaneOf(props::OpKind::kPin), "cpu");
  EXPECT_EQ(LaneOf(props::OpKind::kMmap), "mm");
  EXPECT_EQ(LaneOf(props::OpKind::kFork), "mm");
  EXPECT_EQ(LaneOf(props::OpKind::kExit), "mm");
  EXPECT_EQ(LaneOf(props::OpKind::kDevmemAdd), "device");
  EXPECT_EQ(LaneOf(props::OpKind::kDevMap), "device");
}

TEST(ReportLanes, FailingStepIsHighlighted) {
  std::vector<props::Op> ops;
  std::string error;
  ASSERT_TRUE(props::ParseTrace("process -> 1\nprocess -> 7\nprocess\n", "t.hmm", &ops, &error))
      << error;
  props::RunReport replay = props::RunTrace(ops);
  ASSERT_FALSE(replay.ok);
  std::vector<Block> blocks = SequenceDiagram(ops, replay);
  const Block* table = nullptr;
  for (const Block& b : blocks) table = b.kind == Block::Kind::kTable ? &b : table;
  ASSERT_NE(table, nullptr);
  ASSERT_EQ(table->table.rows.size(), 3u);
  EXPECT_EQ(table->table.rows[0][0].style, "");
  EXPECT_EQ(table->table.rows[1][0].style, "fail");
  EXPECT_EQ(table->table.rows[1][2].text, "process -> 7");
  EXPECT_EQ(table->table.rows[2][4].text, "not run");
}

TEST(ReportErrors, UnwritableFolderIsExitTwo) {
  std::string file = TempDir("a-file");
  std::ofstream(file) << "x";
  Options o = SmallRun("unused", NoDot());
  o.out_dir = file + "/sub";
  std::string html, md, err;
  EXPECT_EQ(Generate(o, &html, &md, &err), kExitUsage);
  EXPECT_EQ(Occurrences(err, "\n"), 1u) << err;
}

TEST(ReportErrors, BadTraceFileIsExitTwo) {
  Options o = SmallRun("bad-trace", NoDot());
  o.traces = {TempDir("missing.hmm")};
  std::string html, md, err;
  EXPECT_EQ(Generate(o, &html, &md, &err), kExitUsage);
  EXPECT_EQ(Occurrences(err, "\n"), 1u) << err;
  EXPECT_NE(err.find("missing.hmm"), std::string::npos) << err;
}

TEST(ReportErrors, OracleFileThatIsNoOracleOutputIsExitTwo) {
  Options o = SmallRun("bad-oracle", NoDot());
  o.oracle_log = TempDir("not-oracle.txt");
  std::ofstream(o.oracle_log) << "hello\n";
  std::string html, md, err;
  EXPECT_EQ(Generate(o, &html, &md, &err), kExitUsage);
  EXPECT_NE(err.find("not-oracle.txt: no 'FILE: N compared"), std::string::npos) << err;
}

}  // namespace
}  // namespace hmm::cli::report
