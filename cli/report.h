// File: cli/report.h
//
// `hmmref report --out DIR`: the design-review artifacts, DIR/index.html (one
// self-contained page: inline CSS and SVG, no external resources, no script)
// and DIR/report.md (the same content in Markdown). It runs every property
// suite and proves every lemma as `hmmref check` does, replays the stored
// traces, and draws:
//   1. a header: version, date, seed and runs, the overall verdict;
//   2. the invariant traceability matrix (model invariant -> suites -> lemmas);
//   3. the lemma table, with the v18 witness;
//   4. the suite table and each suite's coverage classes;
//   5. the page life cycle and the CPU-fault path (Graphviz when `dot` is on
//      PATH, else the DOT source);
//   6. when the race suite fails, its counterexample: the case and its
//      interleaving in one lane per actor (cli/report_race.h);
//   7. each counterexample, regression, --trace file and scenario as a
//      sequence diagram in lanes CPU, mm and device;
//   8. with --oracle FILE, the agreement with Linux 6.1 (cli/report_oracle.h).
// docs/report.md describes the page.

#ifndef HMMREF_CLI_REPORT_H_
#define HMMREF_CLI_REPORT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/report_diagrams.h"
#include "cli/report_doc.h"
#include "cli/report_oracle.h"
#include "cli/report_race.h"
#include "props/op.h"
#include "props/runner.h"
#include "props/suite.h"
#include "solver/lemma.h"

namespace hmm::cli::report {

struct Options {
  std::string out_dir;  // required
  uint64_t runs = 200;  // sequences per suite: small, so a report is quick
  uint64_t seed = 1;
  uint64_t max_steps = props::SuiteOptions().max_steps;
  std::string profile;  // --profile: "", "default" or "v18" (props::SuiteOptions::profile)
  bool quiet = false;
  std::vector<std::string> traces;  // --trace FILE, in order
  std::string oracle_log;  // --oracle FILE: a saved `hmmref oracle run` output, or ""
  // Where the stored traces are looked for, relative to the working directory;
  // a folder that does not exist contributes nothing.
  std::string regressions_dir = "props/regressions";
  std::string counterexamples_dir = "hmmref-out";
  std::string scenarios_dir = "scenarios";
  DotRenderer dot = SystemDot();  // tests pass NoDot()
};

// One replayed trace.
struct TraceRun {
  explicit TraceRun(std::string group = "", std::string name = "")
      : group(std::move(group)), name(std::move(name)) {}
  std::string group;  // "counterexample", "regression", "trace", "scenario"
  std::string name;   // the file path, or "suite S, seed N" for a fresh one
  std::string error;  // why it could not be parsed; then nothing else is set
  std::vector<props::Op> ops;
  props::RunReport replay;
};

// Everything the report shows, gathered once.
struct Results {
  std::string date;  // UTC, "2026-11-25 17:20:00 UTC"
  std::vector<props::SuiteInfo> suite_infos;
  std::vector<props::SuiteResult> suites;
  std::vector<solver::LemmaResult> lemmas;
  std::vector<TraceRun> traces;
  std::vector<RaceRun> races;  // failing race suites' cases, run again
  OracleAgreement oracle;  // empty source: no --oracle
};

// Parses every --trace file, then the stored traces (counterexamples,
// regressions, scenarios; each folder's *.hmm files by name). A --trace file
// that cannot be read or parsed is an error: false, *error "FILE:LINE: msg".
// A stored one that cannot be parsed is kept with its `error`.
bool LoadTraces(const Options& options, std::vector<TraceRun>* traces, std::string* error);

// Reads and parses options.oracle_log into *out ("" leaves it empty). False,
// *error "FILE: message", when it cannot be read or is no oracle output.
bool LoadOracle(const Options& options, OracleAgreement* out, std::string* error);

// Runs the suites (with options.profile) and the lemmas, replays `traces`
// and each failing suite's counterexample (a trace; the race suite's case
// runs again: ReplayRaces), with a progress line on io.err when it is a
// terminal and not options.quiet.
Results Collect(const Options& options, std::vector<TraceRun> traces, Io& io);

// "ok (2 suites passed, 16 lemmas proved)" or "FAILED (suite cpu, lemma X)".
std::string Verdict(const Results& results);

// The `hmmref check` command line that repeats this report's search: "hmmref
// check --seed 1 --runs 200 --max-steps 60", with "--suite S" when `suite`
// is not empty and "--profile P" when options.profile is not.
std::string CheckCommand(const Options& options, const std::string& suite);

// The sections with tables of their own (report_tables.cc).
Section LemmaSection(const Results& results);
Section SuiteSection(const Results& results);
Section TraceSection(const Results& results);
// "Race counterexample" (report_race.cc): RaceBlocks of each results.races.
Section RaceSection(const Options& options, const Results& results);

Document BuildDocument(const Options& options, const Results& results);

// The whole command after flag parsing: checks that out_dir can be written,
// loads traces, collects, writes both files. Returns 0 when the report was
// written (whatever its verdict), 2 on an unwritable folder or a bad --trace
// file, with one line on io.err.
int WriteReport(const Options& options, Io& io);

}  // namespace hmm::cli::report

#endif  // HMMREF_CLI_REPORT_H_
