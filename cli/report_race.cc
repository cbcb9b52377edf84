// File: cli/report_race.cc
//
// The race counterexample (cli/report_race.h): the failing case run again,
// its interleaving laid out in lanes with the hazards located, and the
// section built from them. The SVG drawing is in report_race_svg.cc.

#include "cli/report_race.h"

#include <algorithm>
#include <cstdint>
#include <exception>

#include "cli/report.h"
#include "cli/report_diagrams.h"
#include "model/types.h"
#include "props/trace.h"
#include "props/trace_values.h"

namespace hmm::cli::report {
namespace {

using impl::sched::SchedStep;

// The device copies pages right after taking its mirror's update lock at
// this yield point (impl/dmirror.cc DmirrorCopy); the access observer runs
// there, so a hazard happens in the step that resumes from it.
constexpr char kCopyPoint[] = "dmirror_copy_lock";

// The case's actor that the scheduler's actor `index` is (an actor with no
// operation is not given to the scheduler, so the indices may differ).
const props::ActorOps* CaseActor(const props::ConcurrentCase& c,
                                 const impl::sched::SchedRun& run, int index) {
  if (index < 0 || static_cast<size_t>(index) >= run.actor_names.size()) return nullptr;
  for (const props::ActorOps& a : c.actors) {
    if (a.name == run.actor_names[index]) return &a;
  }
  return nullptr;
}

std::string LaneKind(const props::ActorOps* actor) {
  if (actor != nullptr) {
    for (const props::Op& op : actor->ops) {
      if (LaneOf(op.kind) == "device") return "device";
    }
  }
  return "cpu";
}

// Whether `op`, running in a step that copied pages, may be the access `h`.
bool MayBeTheAccess(const props::Op& op, const impl::DeviceAccessHazard& h) {
  const bool dread = op.kind == props::OpKind::kDread;
  const bool dwrite = op.kind == props::OpKind::kDwrite;
  if (!(dread && !h.write) && !(dwrite && h.write)) return false;
  const uint64_t pages = dread ? op.len : (op.data.size() + kPageSize - 1) / kPageSize;
  return op.mirror == h.mirror && h.addr >= op.addr && h.addr < op.addr + pages * kPageSize;
}

bool CopiedPages(const SchedStep& s) {
  return s.from == kCopyPoint && !(s.blocked && s.to == kCopyPoint);
}

// An actor parks here once the CPU's page table is changed; the mirrors are
// invalidated after it (impl/mmu_notifier.cc HmmInvalidateEnd; under v18 the
// whole invalidation), before its operation ends: the window in which a
// device may still use its old entry.
constexpr char kPteChanged[] = "pte_changed";

// Per step, whether another actor was inside such a window when it ran.
std::vector<bool> InsideWindow(const impl::sched::SchedRun& run) {
  std::vector<bool> open(run.actor_names.size(), false);
  std::vector<bool> inside;
  for (const SchedStep& s : run.trace) {
    bool other = false;
    for (size_t a = 0; a < open.size(); ++a) {
      other = other || (open[a] && a != static_cast<size_t>(s.actor));
    }
    inside.push_back(other);
    if (s.actor < 0 || static_cast<size_t>(s.actor) >= open.size()) continue;
    open[s.actor] = s.to == kPteChanged || (open[s.actor] && !s.boundary && s.to != "exit");
  }
  return inside;
}

// Each step's operation: the actor's ops in order, one more after each
// boundary; nullptr after its last (the stretch to its exit).
std::vector<const props::Op*> StepOps(const props::ConcurrentCase& c,
                                      const impl::sched::SchedRun& run) {
  std::vector<size_t> done(run.actor_names.size(), 0);
  std::vector<const props::Op*> ops;
  for (const SchedStep& s : run.trace) {
    const props::ActorOps* actor = CaseActor(c, run, s.actor);
    const size_t i = s.actor >= 0 && static_cast<size_t>(s.actor) < done.size() ? done[s.actor]
                                                                                : SIZE_MAX;
    ops.push_back(actor != nullptr && i < actor->ops.size() ? &actor->ops[i] : nullptr);
    if (s.boundary && i != SIZE_MAX) ++done[s.actor];
  }
  return ops;
}

LaneRow MakeRow(size_t index, const SchedStep& s, const props::Op* op, size_t* chosen,
                const std::vector<uint8_t>& schedule) {
  LaneRow row;
  row.step = index + 1;
  row.lane = s.actor < 0 ? 0 : static_cast<size_t>(s.actor);
  row.points = (s.retry ? "↻ " : "") + s.from + " → " + (s.to.empty() ? "?" : s.to) +
               (s.blocked ? " [blocked]" : "");
  if (op != nullptr) {
    props::Op shown = *op;
    shown.expect.reset();
    row.op = props::FormatOp(shown);
  }
  if (s.chosen) {
    row.choice = *chosen < schedule.size()
                     ? "byte " + std::to_string(*chosen + 1) + " = " +
                           std::to_string(schedule[*chosen])
                     : "default 0";
    ++*chosen;
  }
  row.blocked = s.blocked;
  row.retry = s.retry;
  row.boundary = s.boundary;
  return row;
}

// Finds the one step where hazard `index` may have happened: the copy of a
// matching access, and among several, the one inside another actor's window.
LocatedHazard Locate(const props::ConcurrentReport& r, const std::vector<const props::Op*>& ops,
                     const std::vector<bool>& inside_window, size_t index) {
  const impl::DeviceAccessHazard& h = r.hazards[index];
  LocatedHazard located;
  located.index = index;
  located.text = props::FormatHazard(h, r.profile);
  std::vector<size_t> windowed;
  for (size_t i = 0; i < r.run.trace.size(); ++i) {
    if (ops[i] == nullptr || !CopiedPages(r.run.trace[i]) || !MayBeTheAccess(*ops[i], h)) {
      continue;
    }
    located.candidates.push_back(i + 1);
    if (inside_window[i]) windowed.push_back(i + 1);
  }
  if (located.candidates.size() > 1 && !windowed.empty()) located.candidates = windowed;
  if (located.candidates.size() == 1) located.step = located.candidates.front();
  if (located.candidates.size() <= 1) located.candidates.clear();
  return located;
}

std::string Lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

// The check the run failed, or why there is nothing to show.
std::vector<Block> CheckBlocks(const RaceRun& race) {
  const props::ConcurrentReport& r = race.report;
  if (!race.error.empty()) {
    return {Heading("Run again, the case throws"),
            Paragraph("An actor threw: " + race.error + " (the suite reported check '" +
                      race.failed_check + "').")};
  }
  if (r.ok) {
    return {Heading("Run again, the case passes"),
            Paragraph("The suite reported check '" + race.failed_check + "', but this run of "
                      "its case passes every check: see the full text below.")};
  }
  std::string about = "The case fails check '" + r.check + "'";
  if (r.check != race.failed_check) about += " (the suite reported '" + race.failed_check + "')";
  return {Heading("Failed check: " + r.check), Paragraph(about + "; its problem lines:"),
          Pre(Lines(r.problems))};
}

// The prologue, the actors' operations side by side, the schedule bytes.
std::vector<Block> CaseBlocks(const props::ConcurrentCase& c, Profile profile) {
  std::vector<Block> blocks{
      Heading("The case"),
      Paragraph("The prologue runs sequentially (profile " + props::trace_values::FormatProfile(static_cast<uint32_t>(profile)) + "), with "
                "every check of a trace; then the actors run concurrently on one kernel under "
                "the controlled scheduler (impl/sched.h), exactly one at a time."),
      Pre(props::FormatTrace(c.prologue, ""))};
  DocTable t;
  t.style = "lanes";
  size_t longest = 0;
  for (const props::ActorOps& a : c.actors) {
    t.head.push_back("actor " + a.name);
    longest = std::max(longest, a.ops.size());
  }
  for (size_t i = 0; i < longest; ++i) {
    std::vector<Cell> row;
    for (const props::ActorOps& a : c.actors) {
      props::Op op = i < a.ops.size() ? a.ops[i] : props::Op{};
      op.expect.reset();
      row.push_back(i < a.ops.size() ? Cell{props::FormatOp(op), "lane " + LaneKind(&a)}
                                     : Cell{"", "lane idle"});
    }
    t.rows.push_back(std::move(row));
  }
  blocks.push_back(TableBlock(std::move(t)));
  const std::string bytes = props::ScheduleText(c.schedule);
  blocks.push_back(Paragraph(
      "Schedule bytes: " + (bytes.empty() ? "none" : bytes) + ". At each choice between two "
      "or more runnable actors the next byte k picks the actor k places on from the one that "
      "ran last (0 keeps it running); once the bytes run out every choice is 0."));
  return blocks;
}

// Each hazard with the step it happened in, or why that is not known.
std::vector<Block> HazardBlocks(const LaneChart& chart) {
  std::vector<Block> blocks;
  for (const LocatedHazard& h : chart.hazards) {
    std::string where;
    if (h.step != 0) {
      const LaneRow* row = h.step <= chart.rows.size() ? &chart.rows[h.step - 1] : nullptr;
      where = "at step " + std::to_string(h.step) +
              (row != nullptr ? " (" + chart.lanes[row->lane] + ", highlighted)" : "");
    } else if (h.candidates.empty()) {
      where = "(step not located: no step of a matching device access copied pages)";
    } else {
      where = "(step not located: it may be in any of steps";
      for (size_t step : h.candidates) where += " " + std::to_string(step);
      where += ")";
    }
    blocks.push_back(Paragraph("Hazard " + std::to_string(h.index + 1) + " " + where + ": " +
                               h.text));
  }
  return blocks;
}

// The interleaving drawn in lanes, with its legend and the hazards.
std::vector<Block> InterleavingBlocks(const props::ConcurrentCase& c,
                                      const props::ConcurrentReport& r) {
  if (r.run.trace.empty()) {
    return {Heading("Interleaving"), Paragraph("The actors never ran: nothing to draw.")};
  }
  const LaneChart chart = LayOutLanes(c, r);
  std::vector<Block> blocks{
      Heading("Interleaving"),
      Paragraph("One lane per actor, one row per scheduler step: the actor resumed at the "
                "first yield point and ran to the second. A diamond and 'byte N = k' mark a "
                "choice a schedule byte made; a dashed grey box is a park blocked on a lock "
                "or a wait, and ↻ a step that re-tried it; red is the step where a device "
                "accessed memory through an entry the CPU had already changed (the hazard). "
                "Outcome: " + std::string(impl::sched::RunOutcomeName(r.run.outcome)) +
                " after " + std::to_string(r.run.trace.size()) + " steps, " +
                std::to_string(r.run.schedule_used) + " schedule bytes used.")};
  if (chart.rows.size() < chart.total_steps) {
    blocks.push_back(Paragraph("The first " + std::to_string(chart.rows.size()) + " of " +
                               std::to_string(chart.total_steps) +
                               " steps are drawn; the full text below has every one."));
  }
  std::string table = MarkdownTable(LaneTable(chart));
  table.pop_back();  // the block ends the paragraph itself
  blocks.push_back(Svg(LaneSvg(chart), table));
  for (Block& b : HazardBlocks(chart)) blocks.push_back(std::move(b));
  return blocks;
}

}  // namespace

std::vector<Block> RaceBlocks(const RaceRun& race) {
  std::vector<Block> blocks = CheckBlocks(race);
  const props::ConcurrentReport& r = race.report;
  for (Block& b : CaseBlocks(race.race_case, r.profile)) blocks.push_back(std::move(b));
  if (!race.error.empty()) return blocks;
  for (Block& b : InterleavingBlocks(race.race_case, r)) blocks.push_back(std::move(b));
  blocks.push_back(DetailsBegin("The run as text (FormatConcurrentReport)", false));
  blocks.push_back(Pre(props::FormatConcurrentReport(race.race_case, r)));
  blocks.push_back(DetailsEnd());
  return blocks;
}

Section RaceSection(const Options& o, const Results& results) {
  Section s{"race", "Race counterexample"};
  for (const RaceRun& race : results.races) {
    s.blocks.push_back(Paragraph(
        "Suite " + race.suite + " failed in this run. Its minimized case (props/concurrent.h, "
        "docs/concurrency.md) is run again here: the same case and schedule give the same "
        "interleaving. Reproduce: " + CheckCommand(o, race.suite) + "."));
    for (Block& b : RaceBlocks(race)) s.blocks.push_back(std::move(b));
  }
  return s;
}

std::vector<RaceRun> ReplayRaces(const std::vector<props::SuiteResult>& suites) {
  std::vector<RaceRun> races;
  for (const props::SuiteResult& s : suites) {
    if (s.passed || s.race_case.actors.empty()) continue;
    RaceRun run;
    run.suite = s.name;
    run.failed_check = s.failed_check;
    run.race_case = s.race_case;
    try {
      run.report = props::RunConcurrent(s.race_case);
    } catch (const std::exception& e) {
      run.error = e.what();
    }
    races.push_back(std::move(run));
  }
  return races;
}

LaneChart LayOutLanes(const props::ConcurrentCase& c, const props::ConcurrentReport& r) {
  LaneChart chart;
  const impl::sched::SchedRun& run = r.run;
  chart.lanes = run.actor_names;
  for (size_t a = 0; a < run.actor_names.size(); ++a) {
    chart.kinds.push_back(LaneKind(CaseActor(c, run, static_cast<int>(a))));
  }
  chart.total_steps = run.trace.size();
  const std::vector<const props::Op*> ops = StepOps(c, run);
  size_t chosen = 0;
  for (size_t i = 0; i < run.trace.size() && i < kMaxDrawnSteps; ++i) {
    chart.rows.push_back(MakeRow(i, run.trace[i], ops[i], &chosen, c.schedule));
  }
  const std::vector<bool> inside_window = InsideWindow(run);
  for (size_t h = 0; h < r.hazards.size(); ++h) {
    chart.hazards.push_back(Locate(r, ops, inside_window, h));
    const size_t step = chart.hazards.back().step;
    if (step != 0 && step <= chart.rows.size()) chart.rows[step - 1].hazards.push_back(h);
  }
  return chart;
}

DocTable LaneTable(const LaneChart& chart) {
  DocTable t;
  t.head.push_back("step");
  for (const std::string& lane : chart.lanes) t.head.push_back(lane);
  t.head.push_back("choice");
  t.head.push_back("note");
  for (const LaneRow& row : chart.rows) {
    const bool hazard = !row.hazards.empty();
    std::vector<Cell> cells{{std::to_string(row.step), hazard ? "fail" : ""}};
    for (size_t lane = 0; lane < chart.lanes.size(); ++lane) {
      if (lane != row.lane) {
        cells.push_back({""});
        continue;
      }
      cells.push_back({row.points + (row.op.empty() ? "" : "\n(" + row.op + ")"),
                       hazard ? "fail" : ""});
    }
    cells.push_back({row.choice});
    std::string note;
    for (size_t h : row.hazards) note += (note.empty() ? "" : ", ") + std::string("hazard ") +
                                         std::to_string(h + 1);
    cells.push_back({note, hazard ? "fail" : ""});
    t.rows.push_back(std::move(cells));
  }
  return t;
}

}  // namespace hmm::cli::report
