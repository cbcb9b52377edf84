// File: cli/run.cc
//
// `hmmref run FILE...`: replays .hmm traces (docs/scenario-format.md) against
// the model and the implementation with props::RunTrace. Every file is parsed
// before any runs, so a typo in the third file is reported before the first
// one spends time.

#include <string>
#include <vector>

#include "cli/commands.h"
#include "props/runner.h"
#include "props/trace.h"

namespace hmm::cli {
namespace {

constexpr CommandHelp kHelp = {
    "run",
    "hmmref run [flags] FILE...",
    "Replays each .hmm trace (docs/scenario-format.md) against the model and the\n"
    "optimized implementation in lock step. After every step it checks that both\n"
    "returned the same result (and the line's \"-> ...\" expectation), that the\n"
    "implementation's state abstracts to the model's, the implementation's\n"
    "representation invariant, and every named model invariant.\n"
    "\n"
    "Prints \"FILE: N steps, ok\" per passing file; for a failing file, the\n"
    "step-indexed report: every step with both results, and what differs at the\n"
    "failing step. A malformed line is reported as FILE:LINE: message (exit 2).\n",
    "  hmmref run scenarios/*.hmm\n"
    "  hmmref run hmmref-out/cpu-seed7.hmm\n"
    "  hmmref run --report --no-expect my-trace.hmm\n",
};

struct RunFlags {
  bool report = false;
  bool no_expect = false;
};


// Runs one parsed trace and prints its outcome. Returns true iff it passed.
bool RunOne(const std::string& file, const std::vector<props::Op>& ops, const RunFlags& flags,
            Io& io) {
  props::RunOptions options;
  options.check_expect = !flags.no_expect;
  props::RunReport report = props::RunTrace(ops, options);
  if (report.ok) {
    io.out << file << ": " << report.steps_run << " steps, ok\n";
    if (flags.report) io.out << props::FormatReport(report);
    return true;
  }
  // FILE:LINE: first, as a compiler names a line, so an editor jumps to it.
  const int line = report.steps.empty() ? 0 : report.steps.back().op.line;
  io.out << file << (line > 0 ? ":" + std::to_string(line) : std::string()) << ": FAILED at step "
         << report.failing_step << " of " << ops.size() << " (" << report.check << ")\n"
         << props::FormatReport(report);
  return false;
}

}  // namespace

bool ParseTraceFiles(const std::vector<std::string>& files,
                     std::vector<std::vector<props::Op>>* traces, Io& io) {
  bool ok = true;
  for (const std::string& file : files) {
    std::vector<props::Op> ops;
    std::string error;
    if (!props::ParseTraceFile(file, &ops, &error)) {
      io.err << error << "\n";
      ok = false;
    }
    traces->push_back(std::move(ops));
  }
  return ok;
}

int RunCommand(const std::vector<std::string>& args, Io& io) {
  RunFlags run;
  Flags flags;
  flags.Bool("report", &run.report, "print the step-indexed report for passing files too");
  flags.Bool("no-expect", &run.no_expect,
             "ignore the lines' \"-> ...\" expectations; compare model and impl only");
  int status = ParseOrExit(kHelp, flags, args, /*max_positional=*/-1, io);
  if (status >= 0) return status;
  const std::vector<std::string>& files = flags.positional();
  if (files.empty()) return Usage("run", "run needs at least one FILE", io);
  std::vector<std::vector<props::Op>> traces;
  if (!ParseTraceFiles(files, &traces, io)) return kExitUsage;
  int failed = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!RunOne(files[i], traces[i], run, io)) ++failed;
  }
  if (files.size() > 1) {
    io.out << files.size() - failed << " passed, " << failed << " failed\n";
  }
  return failed == 0 ? kExitOk : kExitFailed;
}

}  // namespace hmm::cli
