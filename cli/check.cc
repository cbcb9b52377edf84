// File: cli/check.cc
//
// `hmmref check`, the main job: every property suite (props/suite.h) within
// its budget, then every lemma (solver/lemma.h). A failing suite's minimized
// counterexample is written as a replayable .hmm trace next to its
// step-indexed report, with the two commands that reproduce it.

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/output.h"
#include "props/coverage.h"
#include "props/runner.h"
#include "props/suite.h"
#include "props/trace.h"

namespace hmm::cli {
namespace {

constexpr CommandHelp kHelp = {
    "check",
    "hmmref check [flags]",
    "Runs every property suite (or one, with --suite): rapidcheck generates\n"
    "random operation sequences, runs each on the model and on the optimized\n"
    "implementation in lock step, and checks results, the abstraction function,\n"
    "the representation invariant and every model invariant after every step.\n"
    "A failing sequence is shrunk to a minimal one. Then proves every Z3 lemma.\n"
    "\n"
    "On a terminal, a progress line on stderr shows the suite, sequences done,\n"
    "steps run and steps per second. Then a table per suite (sequences, steps,\n"
    "steps/s, result); per suite its coverage: each state class it should reach\n"
    "with the sequences and steps that reached it and its minimum, and each\n"
    "command with its steps by result (docs/coverage.md); a line 'warning: suite\n"
    "S never reached ...' for each class under its minimum (the exit status does\n"
    "not change); then a table per lemma (status, time), and a verdict line.\n"
    "--quiet prints only failures, coverage warnings and the verdict.\n"
    "\n"
    "A failing suite prints its minimized counterexample as a .hmm trace and\n"
    "writes it to DIR/<suite>-seed<S>.hmm, with the step-indexed report of model\n"
    "vs implementation in DIR/<suite>-seed<S>.txt, and prints the command that\n"
    "replays it and the one that repeats the search. The same seed gives the\n"
    "same sequences.\n"
    "\n"
    "The race suite runs 2-3 concurrent actors (CPU and device threads) under a\n"
    "controlled schedule (docs/concurrency.md). Its minimized counterexample is\n"
    "the interleaving: the set-up as .hmm lines, each actor's operations, the\n"
    "schedule bytes, where each actor stopped, and the failed check (a device\n"
    "access through an entry the CPU already changed is named\n"
    "InvMirrorSubsetOfCpu); it is written to DIR/race-seed<S>.txt, and the\n"
    "search command replays it (same seed, same schedule, same result).\n"
    "--profile v18 runs every suite on the seed as posted (mirrors invalidated\n"
    "after the CPU change, ...), where the race suite finds that hazard;\n"
    "--profile default forces the fixed semantics. Without it, the race suite\n"
    "runs the default profile and the device suites draw v18 one time in four.\n",
    "  hmmref check\n"
    "  hmmref check --profile v18\n"
    "  hmmref check --suite race --profile v18 --seed 3\n"
    "  hmmref check --suite cpu --runs 2000 --max-steps 100\n"
    "  hmmref check --seed random --quiet\n"
    "  hmmref check --suite cpu --seed 7 --out /tmp/hmm\n",
};

struct CheckFlags {
  std::string suite;  // empty: all
  uint64_t runs = props::SuiteOptions().runs;
  uint64_t max_steps = props::SuiteOptions().max_steps;
  std::string seed = "1";  // digits or "random"
  std::string profile;     // "", "default" or "v18"
  bool quiet = false;
  bool list = false;
  std::string out_dir = "hmmref-out";
};

void DeclareFlags(CheckFlags* f, Flags* flags) {
  flags->String("suite", "NAME", &f->suite, "run only this suite (default: all; see --list)");
  flags->Uint("runs", "N", &f->runs, 1, 100000000,
              "random sequences per suite (default " + std::to_string(f->runs) + ")");
  flags->Custom("seed", "S",
                [f](const std::string& value, std::string* error) {
                  uint64_t unused;
                  if (value == "random" || ParseUint64(value, &unused)) {
                    f->seed = value;
                    return true;
                  }
                  *error = "--seed wants a whole number or 'random', got '" + value + "'";
                  return false;
                },
                "seed of the random sequences, or 'random' for one from the clock (default 1)");
  flags->Uint("max-steps", "K", &f->max_steps, 1, 100000,
              "longest sequence, in steps (default " + std::to_string(f->max_steps) + ")");
  flags->Choice("profile", "NAME", &f->profile, {"default", "v18"},
                "semantics profile of every sequence: 'v18' (the seed as posted) or 'default' "
                "(the later fixes) (default: each suite's own mix)");
  flags->Bool("quiet", &f->quiet,
              "no progress line; print only failures, coverage warnings and the verdict");
  flags->String("out", "DIR", &f->out_dir,
                "where counterexamples are written (default hmmref-out)");
  flags->Bool("list", &f->list, "list the suites with what they cover; run nothing");
}

// Wraps `word` in single quotes unless it is made of shell-safe characters.
std::string ShellQuote(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789_./+-=:,@%") == std::string::npos) {
    return word;
  }
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

uint64_t ResolveSeed(const std::string& seed) {
  uint64_t value = 0;
  if (ParseUint64(seed, &value)) return value;
  auto ticks = std::chrono::system_clock::now().time_since_epoch().count();
  return static_cast<uint64_t>(ticks) % 1000000000;  // short enough to retype
}

std::string ProgressText(const std::string& suite, uint64_t runs, const props::SuiteProgress& p,
                         std::chrono::steady_clock::time_point start) {
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string done = p.shrinking ? "shrinking (" + std::to_string(p.shrinks) + " shrinks)"
                                 : std::to_string(p.sequences) + "/" + std::to_string(runs) +
                                       " sequences";
  return suite + ": " + done + ", " + std::to_string(p.steps) + " steps, " +
         FormatRate(p.steps, seconds) + " steps/s";
}

props::SuiteResult RunOneSuite(const std::string& name, const CheckFlags& f, uint64_t seed,
                               Io& io) {
  ProgressLine progress(io.err, io.err_is_tty && !f.quiet);
  auto start = std::chrono::steady_clock::now();
  props::SuiteOptions options;
  options.name = name;
  options.runs = f.runs;
  options.seed = seed;
  options.max_steps = f.max_steps;
  options.profile = f.profile;
  options.progress = [&](const props::SuiteProgress& p) {
    progress.Update(ProgressText(name, f.runs, p, start));
  };
  progress.Update(name + ": starting", /*force=*/true);
  return props::RunSuite(options);
}

// The trace as written: each step whose two sides agreed carries their result
// as its "-> ..." expectation, so the file documents what the model returns.
// Steps after the failing one (never run) stay as they are.
std::vector<props::Op> WithExpectations(std::vector<props::Op> ops,
                                        const props::RunReport& replay) {
  for (const props::StepRecord& step : replay.steps) {
    if (step.index == 0 || step.index > ops.size()) continue;
    props::Op& op = ops[step.index - 1];
    if (step.model == step.impl) op.expect = props::ExpectFromResult(op.kind, step.model);
  }
  return ops;
}

bool WriteFile(const std::filesystem::path& path, const std::string& text, Io& io) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  std::ofstream file(path);
  file << text;
  file.close();
  if (!file) {
    io.err << "hmmref: cannot write " << path.string()
           << (ec ? ": " + ec.message() : std::string()) << "\n";
  }
  return static_cast<bool>(file);
}

// "1 suite", "7 lemmas".
std::string Count(size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

// What the replay of a minimized trace shows, in one line.
std::string FailureLine(const props::RunReport& replay) {
  if (replay.ok) {
    return "replaying this trace does not fail: the failure depended on more than the "
           "trace; the search command repeats it";
  }
  return "fails at step " + std::to_string(replay.failing_step) + ": check '" + replay.check +
         "'";
}

// In the seeded-defect program (//cli:hmmref_defects), a line that says the
// failure is the defect's: the real implementation passes the trace.
std::string SeededDefectLine() {
#ifdef HMMREF_SEEDED_DEFECTS
  const char* defect = std::getenv("HMMREF_SEEDED_DEFECT");
  if (defect != nullptr && *defect != '\0') {
    return std::string("\nseeded defect ") + defect + " was active: the real implementation " +
           "passes this trace; HMMREF_SEEDED_DEFECT=" + defect +
           " with //cli:hmmref_defects fails it again";
  }
#endif
  return "";
}

std::string CounterexampleHeader(const props::SuiteResult& r, const props::RunReport& replay,
                                 const CheckFlags& f, uint64_t seed, const std::string& hmm) {
  return "hmmref check counterexample (minimized by rapidcheck, then by the trace pass)\n"
         "suite " + r.name + ", seed " + std::to_string(seed) + ", --runs " +
         std::to_string(f.runs) + " --max-steps " + std::to_string(f.max_steps) + "\n" +
         "original length " + Count(r.original_length, "step") + ", rapidcheck " +
         Count(r.rc_shrunk_length, "step") + " (" + Count(r.shrinks, "shrink") + "), final " +
         Count(r.counterexample.size(), "step") + "\n" +
         FailureLine(replay) + "\n" + "replay: " + ProgramName() + " run " + ShellQuote(hmm) +
         SeededDefectLine();
}

std::string SearchCommand(const std::string& suite, const CheckFlags& f, uint64_t seed) {
  std::string command = ProgramName() + " check --suite " + suite + " --seed " +
                        std::to_string(seed) + " --runs " + std::to_string(f.runs) +
                        " --max-steps " + std::to_string(f.max_steps);
  if (!f.profile.empty()) command += " --profile " + f.profile;
  if (f.out_dir != CheckFlags().out_dir) command += " --out " + ShellQuote(f.out_dir);
  return command;
}

// Prints the counterexample of a failed suite and writes its two files.
void ReportCounterexample(const props::SuiteResult& r, const CheckFlags& f, uint64_t seed,
                          Io& io) {
  std::string stem = r.name + "-seed" + std::to_string(seed);
  std::filesystem::path dir(f.out_dir);
  std::string hmm = (dir / (stem + ".hmm")).string();
  std::string txt = (dir / (stem + ".txt")).string();
  props::RunReport replay = props::RunTrace(r.counterexample);
  std::string trace = props::FormatTrace(WithExpectations(r.counterexample, replay),
                                         CounterexampleHeader(r, replay, f, seed, hmm));
  io.out << "\nCounterexample for suite " << r.name << " (seed " << seed << "): "
         << Count(r.original_length, "step") << " shrunk to "
         << Count(r.counterexample.size(), "step") << "\n\n"
         << trace << "\n" << FailureLine(replay) << "\n";
  for (const std::string& problem : replay.problems) io.out << "  " << problem << "\n";
  std::string report = "Step-indexed report of " + hmm + " (suite " + r.name + ", seed " +
                       std::to_string(seed) + "): model and impl after every step\n\n" +
                       props::FormatReport(replay);
  if (WriteFile(hmm, trace, io) && WriteFile(txt, report, io)) {
    io.out << "\nwrote " << hmm << " and " << txt << " (step-indexed report)\n"
           << "reproduce:    " << ProgramName() << " run " << ShellQuote(hmm) << "\n";
  }
  io.out << "search again: " << SearchCommand(r.name, f, seed) << "\n";
}

// Prints the minimized interleaving of a failed race suite and writes it.
// There is no trace to replay: the search command repeats the same cases
// under the same schedules.
void ReportRaceCounterexample(const props::SuiteResult& r, const CheckFlags& f, uint64_t seed,
                              Io& io) {
  const std::string txt =
      (std::filesystem::path(f.out_dir) / (r.name + "-seed" + std::to_string(seed) + ".txt"))
          .string();
  const std::string header =
      "hmmref check counterexample: an interleaving (docs/concurrency.md)\n"
      "suite " + r.name + ", seed " + std::to_string(seed) + ", --runs " + std::to_string(f.runs) +
      (f.profile.empty() ? std::string() : " --profile " + f.profile) + "\n" +
      "operations of the actors: first failing case " + std::to_string(r.original_length) +
      ", rapidcheck " + std::to_string(r.rc_shrunk_length) + " (" + Count(r.shrinks, "shrink") +
      "), final " + std::to_string(props::ActorOpCount(r.race_case)) + " (" +
      std::to_string(r.trace_shrink_accepted) + " of " + Count(r.trace_shrink_runs, "candidate") +
      " kept by the case pass)\nfailing check: " + r.failed_check + "\n";
  io.out << "\nCounterexample for suite " << r.name << " (seed " << seed << "): an interleaving of "
         << Count(props::ActorOpCount(r.race_case), "operation") << " ("
         << Count(props::BusyActorCount(r.race_case), "actor") << "), shrunk from "
         << Count(r.original_length, "operation") << "\n\n"
         << r.failure;
  if (WriteFile(txt, header + "\n" + r.failure, io)) io.out << "\nwrote " << txt << "\n";
  io.out << "replay:       " << SearchCommand(r.name, f, seed) << "  (the same seed replays it)\n";
}

bool KnownSuite(const std::string& name, std::string* names) {
  bool known = false;
  for (const props::SuiteInfo& suite : props::Suites()) {
    *names += (names->empty() ? "" : ", ") + suite.name;
    known = known || suite.name == name;
  }
  return known;
}

// "kInval 1.2k, kNoMem 310": the errors of one command, in errno order.
std::string ErrorCounts(const std::vector<props::CommandCount>& commands, props::OpKind kind) {
  std::string text;
  for (const props::CommandCount& c : commands) {
    if (c.kind != kind || c.err == Errno::kOk) continue;
    text += (text.empty() ? "" : ", ") + std::string(ErrnoName(c.err)) + " " + FormatCount(c.steps);
  }
  return text;
}

// A suite's coverage (props/coverage.h): its state classes with the
// sequences and steps that reached each and the minimum for this many
// sequences, then its commands by result. Quiet: only the warnings.
void PrintCoverage(const props::Coverage& c, bool passed, bool quiet, Io& io) {
  if (!quiet) {
    Table classes({{"class"},
                   {"sequences", Table::Align::kRight},
                   {"steps", Table::Align::kRight},
                   {"min", Table::Align::kRight}});
    for (const props::ClassCount& k : c.classes) {
      classes.AddRow({k.name, FormatCount(k.sequences), FormatCount(k.steps),
                      FormatCount(props::Coverage::ScaledMinimum(k.minimum, c.sequences))});
    }
    Table commands({{"command"},
                    {"steps", Table::Align::kRight},
                    {"ok", Table::Align::kRight},
                    {"errors"}});
    for (size_t i = 0; i < c.commands.size();) {
      const props::OpKind kind = c.commands[i].kind;
      uint64_t steps = 0, ok = 0;
      for (; i < c.commands.size() && c.commands[i].kind == kind; ++i) {
        steps += c.commands[i].steps;
        if (c.commands[i].err == Errno::kOk) ok = c.commands[i].steps;
      }
      commands.AddRow({props::OpName(kind), FormatCount(steps), FormatCount(ok),
                       ErrorCounts(c.commands, kind)});
    }
    io.out << "\nCoverage of suite " << c.suite << " (" << Count(c.sequences, "sequence")
           << (passed ? "" : " up to the first failure") << ", " << Count(c.steps, "step")
           << (passed ? "" : "; shrinking not counted") << ")\n"
           << classes.Render() << "\n" << commands.Render();
  }
  const std::vector<props::ClassCount> missed = c.Missed();
  if (!quiet && !missed.empty()) io.out << "\n";
  for (const props::ClassCount& k : missed) {
    io.out << "warning: suite " << c.suite;
    if (k.sequences == 0) {
      io.out << " never reached '" << k.name << "'";
    } else {
      io.out << " reached '" << k.name << "' in only " << Count(k.sequences, "sequence");
    }
    io.out << " (expected in at least "
           << props::Coverage::ScaledMinimum(k.minimum, c.sequences) << " of "
           << Count(c.sequences, "sequence") << ")\n";
  }
}

// Runs the suites, prints their table, their coverage and counterexamples.
// Returns the names of the suites that failed.
std::vector<std::string> RunSuites(const CheckFlags& f, uint64_t seed, Io& io) {
  Table table({{"suite"},
               {"sequences", Table::Align::kRight},
               {"steps", Table::Align::kRight},
               {"steps/s", Table::Align::kRight},
               {"result"}});
  std::vector<props::SuiteResult> failed;
  std::vector<std::pair<props::Coverage, bool>> coverage;  // and whether the suite passed
  for (const props::SuiteInfo& suite : props::Suites()) {
    if (!f.suite.empty() && suite.name != f.suite) continue;
    props::SuiteResult r = RunOneSuite(suite.name, f, seed, io);
    if (!r.passed || !f.quiet) {
      table.AddRow({r.name, std::to_string(r.sequences), std::to_string(r.steps),
                    FormatRate(r.steps, r.seconds), r.passed ? "passed" : "FAILED"});
    }
    coverage.emplace_back(std::move(r.coverage), r.passed);
    if (!r.passed) failed.push_back(std::move(r));
  }
  if (!table.empty()) io.out << table.Render();
  for (const auto& c : coverage) PrintCoverage(c.first, c.second, f.quiet, io);
  std::vector<std::string> names;
  for (const props::SuiteResult& r : failed) {
    names.push_back(r.name);
    if (!r.race_case.actors.empty()) {
      ReportRaceCounterexample(r, f, seed, io);
    } else if (!r.counterexample.empty()) {
      ReportCounterexample(r, f, seed, io);
    } else {
      io.out << "\nsuite " << r.name << " failed without a counterexample"
             << (r.failure.empty() ? "" : ":\n" + r.failure) << "\n";
    }
  }
  return names;
}

std::string Verdict(const std::vector<std::string>& suites, size_t suites_run,
                    const LemmaTally& lemmas) {
  if (suites.empty() && lemmas.not_proved.empty()) {
    return "hmmref check: ok (" + Count(suites_run, "suite") + " passed, " +
           Count(lemmas.total, "lemma") + " proved)";
  }
  std::string what;
  for (const std::string& s : suites) what += (what.empty() ? "" : ", ") + ("suite " + s);
  for (const std::string& l : lemmas.not_proved) {
    what += (what.empty() ? "" : ", ") + ("lemma " + l);
  }
  return "hmmref check: FAILED (" + what + ")";
}

}  // namespace

int CheckCommand(const std::vector<std::string>& args, Io& io) {
  CheckFlags f;
  Flags flags;
  DeclareFlags(&f, &flags);
  int status = ParseOrExit(kHelp, flags, args, /*max_positional=*/0, io);
  if (status >= 0) return status;
  if (f.list) {
    for (const props::SuiteInfo& suite : props::Suites()) {
      io.out << suite.name << "\n  " << suite.description << "\n";
    }
    return kExitOk;
  }
  std::string names;
  if (!f.suite.empty() && !KnownSuite(f.suite, &names)) {
    return Usage("check", "unknown suite '" + f.suite + "' (suites: " + names + ")", io);
  }
  uint64_t seed = ResolveSeed(f.seed);
  if (!f.quiet || f.seed == "random") {
    io.out << "seed " << seed << (f.seed == "random" ? " (random)" : "") << ", " << f.runs
           << " sequences per suite, up to " << f.max_steps << " steps each"
           << (f.profile.empty() ? "" : ", profile " + f.profile) << "\n\n";
  }
  std::vector<std::string> failed = RunSuites(f, seed, io);
  if (!f.quiet) io.out << "\n";
  LemmaTally lemmas = ProveLemmas("", f.quiet, io);
  size_t suites_run = f.suite.empty() ? props::Suites().size() : 1;
  bool ok = failed.empty() && lemmas.not_proved.empty();
  io.out << (f.quiet && ok ? "" : "\n") << Verdict(failed, suites_run, lemmas) << "\n";
  return ok ? kExitOk : kExitFailed;
}

}  // namespace hmm::cli
