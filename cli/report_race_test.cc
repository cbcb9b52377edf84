// File: cli/report_race_test.cc
//
// The race counterexample of `hmmref report` (cli/report_race.h). For the v18
// race of props/concurrent_test.cc (munmap of a page against a device read
// of it), found by trying short schedules, the report shows the section in
// both files: the failed check and its problems, the case escaped, the
// interleaving as SVG lanes (cpu0, dev1) with a row per step, a diamond per
// choice and the hazard's step red, the Markdown table, the whole text
// collapsed; the same case under the default profile gets no section. On a
// run written by hand, the hazard is located at the device's copy inside the
// CPU's pte_changed window, not at an earlier copy; blocked parks are drawn
// apart; an ambiguous hazard is listed with its candidate steps.

#include "cli/report_race.h"

#include <string>
#include <vector>

#include "cli/report.h"
#include "gtest/gtest.h"
#include "props/concurrent.h"
#include "props/trace.h"

namespace hmm::cli::report {
namespace {

using impl::sched::SchedStep;

size_t Occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// props/concurrent_test.cc's v18 race: the CPU unmaps the first page while
// the device reads it through the entry it already has.
std::vector<props::Op> Parse(const std::string& text) {
  std::vector<props::Op> ops;
  std::string error;
  EXPECT_TRUE(props::ParseTrace(text, "race.hmm", &ops, &error)) << error;
  return ops;
}

props::ConcurrentCase MunmapAgainstDread(const std::string& profile_line) {
  props::ConcurrentCase c;
  c.prologue = Parse(profile_line +
                     "process\n"
                     "mmap 1 0x10000000 0x4000 rw private fixed\n"
                     "write 1 0x10000000 \"ab\"\n"
                     "mirror 0 1\n"
                     "dread 1 0x10000000 1\n");
  c.actors.push_back({"cpu0", Parse("munmap 1 0x10000000 0x1000\n")});
  c.actors.push_back({"dev1", Parse("dread 1 0x10000000 1\n")});
  return c;
}

// Sets the first schedule of 10 bytes, each 0 or 1, under which `c` fails
// check `check` (as props/concurrent_test.cc's ForEachSchedule tries them).
bool FindFailingSchedule(props::ConcurrentCase* c, const std::string& check) {
  for (uint32_t bits = 0; bits < (1u << 10); ++bits) {
    c->schedule.assign(10, 0);
    for (size_t i = 0; i < 10; ++i) c->schedule[i] = (bits >> i) & 1;
    if (props::RunConcurrent(*c).check == check) return true;
  }
  return false;
}

props::SuiteResult RaceSuite(const props::ConcurrentCase& c, bool passed) {
  props::SuiteResult s;
  s.name = "race";
  s.passed = passed;
  s.race_case = c;
  s.failed_check = passed ? "" : "InvMirrorSubsetOfCpu";
  return s;
}

// The report of a run where only `suite` ran (--profile v18 --seed 1
// --runs 20): no lemma, no trace.
Document RaceDocument(const props::SuiteResult& suite) {
  Options o;
  o.runs = 20;
  o.seed = 1;
  o.profile = "v18";
  o.dot = NoDot();
  Results r;
  r.date = "2026-01-01 00:00:00 UTC";
  r.suite_infos = props::Suites();
  r.suites = {suite};
  r.races = ReplayRaces(r.suites);
  return BuildDocument(o, r);
}

// The text from the first `from` to the end of the next `to` after it.
std::string Between(const std::string& text, const std::string& from, const std::string& to) {
  size_t start = text.find(from);
  if (start == std::string::npos) return "";
  size_t end = text.find(to, start);
  return end == std::string::npos ? "" : text.substr(start, end + to.size() - start);
}

class RaceReport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    race_ = MunmapAgainstDread("profile v18\n");
    found_ = FindFailingSchedule(&race_, "InvMirrorSubsetOfCpu");
    if (!found_) return;
    run_ = props::RunConcurrent(race_);
    const Document doc = RaceDocument(RaceSuite(race_, /*passed=*/false));
    html_ = RenderHtml(doc);
    md_ = RenderMarkdown(doc);
    svg_ = Between(html_, "<svg class=\"race-lanes\"", "</svg>");
  }
  void SetUp() override { ASSERT_TRUE(found_) << "no schedule of 10 bytes finds the v18 race"; }
  static props::ConcurrentCase race_;
  static props::ConcurrentReport run_;
  static bool found_;
  static std::string html_, md_, svg_;
};

props::ConcurrentCase RaceReport::race_;
props::ConcurrentReport RaceReport::run_;
bool RaceReport::found_ = false;
std::string RaceReport::html_, RaceReport::md_, RaceReport::svg_;

TEST_F(RaceReport, SectionInBothOutputs) {
  EXPECT_NE(html_.find("<section id=\"race\">\n<h2>Race counterexample</h2>"), std::string::npos);
  EXPECT_NE(html_.find("<a href=\"#race\">Race counterexample</a>"), std::string::npos);
  EXPECT_NE(md_.find("\n## Race counterexample\n"), std::string::npos);
  EXPECT_NE(html_.find("Reproduce: hmmref check --suite race --seed 1 --runs 20 --max-steps " +
                       std::to_string(Options().max_steps) + " --profile v18."),
            std::string::npos);
}

TEST_F(RaceReport, ShowsTheFailedCheckAndItsProblems) {
  EXPECT_NE(html_.find("<h3>Failed check: InvMirrorSubsetOfCpu</h3>"), std::string::npos);
  EXPECT_NE(md_.find("### Failed check: InvMirrorSubsetOfCpu"), std::string::npos);
  const std::string hazard = HtmlEscape(props::FormatHazard(run_.hazards.at(0), run_.profile));
  EXPECT_NE(html_.find("<pre>" + hazard), std::string::npos) << hazard;
  EXPECT_NE(hazard.find("(cpu: none) -- the v18 profile"), std::string::npos) << hazard;
  // The traceability matrix names the invariant the race broke.
  EXPECT_NE(html_.find("FAILED (violated in race)"), std::string::npos);
}

TEST_F(RaceReport, ShowsTheCaseEscaped) {
  EXPECT_NE(html_.find("write 1 0x10000000 &quot;ab&quot;"), std::string::npos);
  EXPECT_EQ(html_.find("write 1 0x10000000 \"ab\""), std::string::npos);
  EXPECT_NE(html_.find("<th>actor cpu0</th><th>actor dev1</th>"), std::string::npos);
  EXPECT_NE(html_.find("<td class=\"lane cpu\">munmap 1 0x10000000 0x1000</td>"),
            std::string::npos);
  EXPECT_NE(html_.find("<td class=\"lane device\">dread 1 0x10000000 1</td>"),
            std::string::npos);
}

TEST_F(RaceReport, DrawsTheInterleavingInLanes) {
  ASSERT_FALSE(svg_.empty());
  EXPECT_NE(svg_.find("class=\"lane-name\">cpu0</text>"), std::string::npos);
  EXPECT_NE(svg_.find("class=\"lane-name\">dev1</text>"), std::string::npos);
  EXPECT_NE(svg_.find("pte_changed"), std::string::npos);
  // A row per scheduler step, and a diamond per choice a byte made.
  size_t chosen = 0;
  for (const impl::sched::SchedStep& s : run_.run.trace) chosen += s.chosen ? 1 : 0;
  EXPECT_EQ(Occurrences(svg_, "<g class=\"step"), run_.run.trace.size());
  EXPECT_EQ(Occurrences(svg_, "<polygon class=\"choice\""), chosen);
  EXPECT_NE(svg_.find("byte 1 = " + std::to_string(race_.schedule[0])), std::string::npos);
  EXPECT_EQ(svg_.find("http"), std::string::npos);
  EXPECT_EQ(html_.find("<script"), std::string::npos);
}

TEST_F(RaceReport, HighlightsTheHazardAtTheDevicesCopy) {
  const LaneChart chart = LayOutLanes(race_, run_);
  ASSERT_EQ(chart.hazards.size(), run_.hazards.size());
  const size_t step = chart.hazards.at(0).step;
  ASSERT_NE(step, 0u) << "the hazard was not located";
  const LaneRow& row = chart.rows.at(step - 1);
  EXPECT_EQ(chart.lanes.at(row.lane), "dev1");
  EXPECT_EQ(row.points.rfind("dmirror_copy_lock → ", 0), 0u) << row.points;
  EXPECT_EQ(row.op, "dread 1 0x10000000 1");
  EXPECT_EQ(Occurrences(svg_, "<g class=\"step hazard\">"), 1u);
  EXPECT_NE(svg_.find("<g class=\"step hazard\"><title>step " + std::to_string(step) +
                      ", dev1: dmirror_copy_lock → "),
            std::string::npos);
  EXPECT_NE(html_.find("Hazard 1 at step " + std::to_string(step) + " (dev1, highlighted)"),
            std::string::npos);
  // report.md: the lanes as a table, the hazard's row in bold.
  EXPECT_NE(md_.find("| step | cpu0 | dev1 | choice | note |"), std::string::npos);
  EXPECT_NE(md_.find("| **" + std::to_string(step) + "** |"), std::string::npos);
  EXPECT_NE(md_.find("| **hazard 1** |"), std::string::npos);
}

TEST_F(RaceReport, WholeTextCollapsed) {
  const std::string details =
      Between(html_, "<details><summary>The run as text (FormatConcurrentReport)</summary>",
              "</details>");
  EXPECT_NE(details.find(HtmlEscape(props::FormatConcurrentReport(race_, run_))),
            std::string::npos);
  EXPECT_NE(details.find("check &#39;InvMirrorSubsetOfCpu&#39; fails:"), std::string::npos);
}

TEST(RaceReportPassing, DefaultProfileGetsNoSection) {
  props::ConcurrentCase c = MunmapAgainstDread("");
  props::ConcurrentCase v18 = MunmapAgainstDread("profile v18\n");
  ASSERT_TRUE(FindFailingSchedule(&v18, "InvMirrorSubsetOfCpu"));
  c.schedule = v18.schedule;  // the schedule that breaks v18 passes here
  ASSERT_TRUE(props::RunConcurrent(c).ok);
  const props::SuiteResult suite = RaceSuite(c, /*passed=*/true);
  EXPECT_TRUE(ReplayRaces({suite}).empty());
  const Document doc = RaceDocument(suite);
  for (const std::string& text : {RenderHtml(doc), RenderMarkdown(doc)}) {
    EXPECT_EQ(text.find("Race counterexample"), std::string::npos);
    EXPECT_EQ(text.find("race-lanes"), std::string::npos);
  }
}


// --- A run written by hand: the lay-out alone ---

SchedStep Step(int actor, const std::string& from, const std::string& to, bool chosen = false) {
  SchedStep s;
  s.actor = actor;
  s.from = from;
  s.to = to;
  s.chosen = chosen;
  s.boundary = to.size() > 5 && to.compare(to.size() - 5, 5, ".done") == 0;
  return s;
}

// cpu0 reads, then unmaps; dev1's dread copies nothing (no entry yet),
// faults, then copies once cpu0 parked at pte_changed, after a blocked try.
struct HandRun {
  props::ConcurrentCase c;
  props::ConcurrentReport r;
};

HandRun TwoCopies() {
  HandRun h;
  h.c = MunmapAgainstDread("profile v18\n");
  h.c.actors[0].ops = Parse("read 1 0x10003000 0x8\nmunmap 1 0x10000000 0x1000\n");
  h.c.schedule = {1, 0};
  h.r.profile = Profile::kV18;
  h.r.run.actor_names = {"cpu0", "dev1"};
  SchedStep blocked = Step(1, "dmirror_copy_lock", "dmirror_copy_lock");
  blocked.blocked = true;
  SchedStep retry = Step(1, "dmirror_copy_lock", "dread.done");
  retry.retry = true;
  h.r.run.trace = {Step(0, "start", "read.done", true), Step(1, "start", "dmirror_copy_lock", true),
                   Step(1, "dmirror_copy_lock", "dmirror_fault_lock"),
                   Step(0, "read.done", "invalidate_start_done", true),
                   Step(0, "invalidate_start_done", "pte_changed"),
                   Step(1, "dmirror_fault_lock", "dmirror_copy_lock", true), blocked, retry,
                   Step(1, "dread.done", "exit"), Step(0, "pte_changed", "munmap.done"),
                   Step(0, "munmap.done", "exit")};
  impl::DeviceAccessHazard hazard;
  hazard.mirror = 1;
  hazard.addr = 0x10000000;
  hazard.device_pfn = 0x400;
  hazard.cpu = "none";
  h.r.hazards = {hazard};
  return h;
}

TEST(RaceLanes, RowsNameTheStepsOperationsAndChoices) {
  const HandRun h = TwoCopies();
  const LaneChart chart = LayOutLanes(h.c, h.r);
  ASSERT_EQ(chart.rows.size(), h.r.run.trace.size());
  EXPECT_EQ(chart.lanes, (std::vector<std::string>{"cpu0", "dev1"}));
  EXPECT_EQ(chart.kinds, (std::vector<std::string>{"cpu", "device"}));
  EXPECT_EQ(chart.rows[0].op, "read 1 0x10003000 0x8");
  EXPECT_EQ(chart.rows[3].op, "munmap 1 0x10000000 0x1000");  // after read.done
  EXPECT_EQ(chart.rows[10].op, "");                           // to its exit
  EXPECT_EQ(chart.rows[0].choice, "byte 1 = 1");
  EXPECT_EQ(chart.rows[1].choice, "byte 2 = 0");
  EXPECT_EQ(chart.rows[2].choice, "");
  EXPECT_EQ(chart.rows[3].choice, "default 0");
  EXPECT_EQ(chart.rows[6].points, "dmirror_copy_lock → dmirror_copy_lock [blocked]");
  EXPECT_EQ(chart.rows[7].points, "↻ dmirror_copy_lock → dread.done");
}

TEST(RaceLanes, HazardAtTheCopyInsideTheWindow) {
  const HandRun h = TwoCopies();
  const LaneChart chart = LayOutLanes(h.c, h.r);
  ASSERT_EQ(chart.hazards.size(), 1u);
  // Steps 3 and 8 copied for the dread (7 only re-tried the lock); 8 ran
  // while cpu0 was parked at pte_changed.
  EXPECT_EQ(chart.hazards[0].step, 8u);
  EXPECT_EQ(chart.rows[7].hazards, std::vector<size_t>{0});
  EXPECT_TRUE(chart.rows[2].hazards.empty());
  const std::string svg = LaneSvg(chart);
  EXPECT_EQ(Occurrences(svg, "<g class=\"step hazard\"><title>step 8, dev1: "), 1u);
  EXPECT_EQ(Occurrences(svg, "<g class=\"step blocked\"><title>step 7, dev1: "), 1u);
  EXPECT_NE(svg.find("stroke-dasharray=\"5 3\""), std::string::npos);
  EXPECT_NE(svg.find(">◀ hazard 1</text>"), std::string::npos);
}

TEST(RaceLanes, AmbiguousHazardIsListedWithItsCandidates) {
  HandRun h = TwoCopies();
  h.r.run.trace[4].to = "mmap_write_lock";  // cpu0 never reaches pte_changed
  h.r.run.trace[9].from = "mmap_write_lock";
  const LaneChart chart = LayOutLanes(h.c, h.r);
  ASSERT_EQ(chart.hazards.size(), 1u);
  EXPECT_EQ(chart.hazards[0].step, 0u);
  EXPECT_EQ(chart.hazards[0].candidates, (std::vector<size_t>{3, 8}));
  EXPECT_EQ(LaneSvg(chart).find("step hazard"), std::string::npos);
  RaceRun race;
  race.suite = "race";
  race.failed_check = "InvMirrorSubsetOfCpu";
  race.race_case = h.c;
  race.report = h.r;
  race.report.ok = false;
  race.report.check = "InvMirrorSubsetOfCpu";
  std::string text;
  for (const Block& b : RaceBlocks(race)) text += b.text + "\n";
  EXPECT_NE(text.find("Hazard 1 (step not located: it may be in any of steps 3 8): hazard "
                      "InvMirrorSubsetOfCpu: device 0 (mirror 1) read 0x10000000"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace hmm::cli::report
