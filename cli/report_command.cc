// File: cli/report_command.cc
//
// `hmmref report`: its flags and help page; the work is report::WriteReport
// (cli/report.h).

#include <cstdint>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/report.h"

namespace hmm::cli {

namespace {

constexpr CommandHelp kHelp = {
    "report",
    "hmmref report --out DIR [flags]",
    "Writes the design-review artifacts: DIR/index.html, one self-contained page\n"
    "(inline CSS and SVG; no external resources, no script), and DIR/report.md,\n"
    "the same content in Markdown. It runs every property suite and proves every\n"
    "lemma as 'hmmref check' does (with fewer sequences by default), replays the\n"
    "stored traces, and shows: a summary with the verdict; the invariant\n"
    "traceability matrix (each model invariant, the suites that check it, the\n"
    "lemmas that prove it, their results); the lemma table with the v18 witness;\n"
    "the suite table with each suite's coverage classes (warnings highlighted);\n"
    "the page life cycle and the CPU-fault path (drawn by Graphviz 'dot' when it\n"
    "is on PATH, else shown as DOT source); and every counterexample (hmmref-out/),\n"
    "regression (props/regressions/), --trace file and scenario (scenarios/,\n"
    "collapsed) as a sequence diagram in lanes CPU, mm and device; with --oracle,\n"
    "the agreement with Linux 6.1 (lines compared, differences by kind and by\n"
    "documented divergence, per trace) from a saved 'hmmref oracle run' output.\n"
    "\n"
    "When the race suite fails, the section 'Race counterexample' shows its\n"
    "minimized case run again: the failed check, the prologue and each actor's\n"
    "operations, and the interleaving drawn in one lane per actor and one row per\n"
    "scheduler step (schedule-byte choices marked, blocked parks dashed, the\n"
    "hazard's step in red). --profile v18 runs every suite on the seed as posted\n"
    "(mirrors invalidated after the page-table change), where the race suite finds\n"
    "the hazard; --profile default forces the fixed semantics; without it each\n"
    "suite runs its own mix, as in 'hmmref check'.\n"
    "\n"
    "The exit status is 0 once the report is written, even when a suite or a\n"
    "lemma failed (the verdict is in the report). On a terminal, a progress line\n"
    "on stderr names the suite, lemma or trace being worked on.\n",
    "  hmmref report --out /tmp/review\n"
    "  hmmref report --out review --runs 2000 --seed 7\n"
    "  hmmref report --out review --profile v18\n"
    "  hmmref report --out review --trace hmmref-out/cpu-seed7.hmm --quiet\n"
    "  ./hmmref oracle run scenarios/*.hmm oracle/traces/*.hmm > oracle.txt\n"
    "  hmmref report --out review --oracle oracle.txt\n",
};

}  // namespace

int ReportCommand(const std::vector<std::string>& args, Io& io) {
  report::Options o;
  Flags flags;
  flags.String("out", "DIR", &o.out_dir, "where index.html and report.md go (required; created)");
  flags.Uint("runs", "N", &o.runs, 1, 100000000,
             "random sequences per suite (default " + std::to_string(o.runs) + ")");
  flags.Uint("seed", "S", &o.seed, 0, UINT64_MAX, "seed of the random sequences (default 1)");
  flags.Choice("profile", "NAME", &o.profile, {"default", "v18"},
               "semantics profile of every sequence: 'v18' (the seed as posted) or 'default' "
               "(the later fixes) (default: each suite's own mix)");
  flags.Bool("quiet", &o.quiet, "no progress line; print only the paths written");
  flags.Custom("trace", "FILE",
               [&o](const std::string& value, std::string*) {
                 o.traces.push_back(value);
                 return true;
               },
               "also draw this .hmm trace (repeatable)");
  flags.String("oracle", "FILE", &o.oracle_log,
               "add the agreement with Linux 6.1 from a saved 'hmmref oracle run' output");
  int status = ParseOrExit(kHelp, flags, args, /*max_positional=*/0, io);
  if (status >= 0) return status;
  if (o.out_dir.empty()) return Usage("report", "--out DIR is required", io);
  return report::WriteReport(o, io);
}

}  // namespace hmm::cli
