// File: cli/report_race.h
//
// The race counterexample of `hmmref report`: when the race suite
// (props/concurrent.h, docs/concurrency.md) fails, its minimized case is run
// again (props::RunConcurrent is deterministic: the same case and schedule
// give the same interleaving) and shown as the section "Race counterexample":
// the failed check and its problem lines, the prologue and each actor's
// operations, the interleaving as an inline SVG lane diagram (one lane per
// actor, one row per scheduler step; a Markdown table in report.md), the
// hazards at the step where the device accessed memory, and the whole
// FormatConcurrentReport text, collapsed.

#ifndef HMMREF_CLI_REPORT_RACE_H_
#define HMMREF_CLI_REPORT_RACE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "cli/report_doc.h"
#include "props/concurrent.h"
#include "props/suite.h"

namespace hmm::cli::report {

// A failing race suite's case, run again.
struct RaceRun {
  std::string suite;           // "race"
  std::string failed_check;    // what the suite reported (SuiteResult::failed_check)
  props::ConcurrentCase race_case;
  props::ConcurrentReport report;
  std::string error;           // an actor threw: its what(); then `report` is empty
};

// For each suite that failed with a concurrent case (the race suite), its
// case run again through props::RunConcurrent. Passing suites and trace
// suites give nothing.
std::vector<RaceRun> ReplayRaces(const std::vector<props::SuiteResult>& suites);

// One row of the lane diagram: one scheduler step (impl/sched.h SchedStep).
struct LaneRow {
  size_t step = 0;         // 1-based, as FormatSchedRun numbers them
  size_t lane = 0;         // index into LaneChart::lanes
  std::string points;      // "mmap_write_lock → invalidate_start_done"
  std::string op;          // the operation the actor was in, as a .hmm line
  std::string choice;      // "byte 3 = 1", "default 0" (schedule ran out), or ""
  bool blocked = false;    // parked blocked at its `to` point
  bool retry = false;      // resumed blocked: re-tried its acquisition or wait
  bool boundary = false;   // its `to` is an operation's end
  std::vector<size_t> hazards;  // indices into ConcurrentReport::hazards done here
};

// A hazard and where it happened.
struct LocatedHazard {
  size_t index = 0;              // into ConcurrentReport::hazards
  std::string text;              // props::FormatHazard
  size_t step = 0;               // the step of the device's access; 0: not located
  std::vector<size_t> candidates;  // steps it may be in, when more than one
};

// The interleaving laid out for drawing.
struct LaneChart {
  std::vector<std::string> lanes;  // actor names, in the scheduler's order
  std::vector<std::string> kinds;  // per lane: "cpu" or "device" (its colour)
  std::vector<LaneRow> rows;       // at most kMaxDrawnSteps
  size_t total_steps = 0;          // steps of the run (rows may stop short)
  std::vector<LocatedHazard> hazards;
};

constexpr size_t kMaxDrawnSteps = 300;

// Lays out `r.run`. A hazard is located at the step in which its device
// copied pages (resumed from the dmirror_copy_lock yield point,
// impl/dmirror.cc DmirrorCopy, and took the lock) inside a dread (read) or
// dwrite (write) of its mirror covering its address; of several such steps,
// at the one taken while another actor was between its pte_changed yield
// point (the CPU's page table changed, the mirrors not yet invalidated) and
// the end of its operation. With no such step, or several, it stays
// unlocated (step 0) and `candidates` lists them.
LaneChart LayOutLanes(const props::ConcurrentCase& c, const props::ConcurrentReport& r);

// The chart as inline SVG (report_race_svg.cc): a header with each lane's
// actor, a box per step in its lane with its yield points and operation,
// a diamond and the byte where a schedule byte chose, blocked parks dashed
// and grey, the hazard's step in red with a note at the right.
std::string LaneSvg(const LaneChart& chart);

// The same chart as a table (report.md): step, one column per lane, choice,
// note; the hazard's row flagged.
DocTable LaneTable(const LaneChart& chart);

// The blocks that show one race: the failed check and its problem lines,
// the case, the interleaving (LaneSvg, LaneTable as its Markdown), the
// hazards, and FormatConcurrentReport collapsed. report.h RaceSection puts
// them in a section.
std::vector<Block> RaceBlocks(const RaceRun& race);

}  // namespace hmm::cli::report

#endif  // HMMREF_CLI_REPORT_RACE_H_
