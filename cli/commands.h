// File: cli/commands.h
//
// The subcommands of the hmmref program. Each takes the arguments after its
// name, prints its results on `out` and its errors on `err`, and returns the
// process exit status:
//   0  everything checked holds
//   1  a property suite, a lemma or a trace failed
//   2  usage or input error (unknown command or flag, bad value, unreadable
//      or malformed .hmm file); the message is one line on `err`
// `hmmref CMD --help` and `hmmref help CMD` print the same help.

#ifndef HMMREF_CLI_COMMANDS_H_
#define HMMREF_CLI_COMMANDS_H_

#include <ostream>
#include <string>
#include <vector>

#include "props/op.h"

#include "cli/flags.h"

namespace hmm::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr char kVersion[] = "0.1.0";

struct Io {
  std::ostream& out;
  std::ostream& err;
  bool err_is_tty = false;  // progress lines only on a terminal
};

// Dispatches `args` (argv without the program name) to a subcommand.
int Main(const std::vector<std::string>& args, Io& io);

int CheckCommand(const std::vector<std::string>& args, Io& io);
int RunCommand(const std::vector<std::string>& args, Io& io);
int ProveCommand(const std::vector<std::string>& args, Io& io);
// cli/report.cc: the design-review page and its Markdown twin.
int ReportCommand(const std::vector<std::string>& args, Io& io);

// ---- Shared by the commands ----

// A subcommand's help page.
struct CommandHelp {
  const char* name;      // "check"
  const char* synopsis;  // "hmmref check [flags]"
  const char* about;     // paragraphs, each line ending in '\n'
  const char* examples;  // one "  hmmref ..." line each
};

// Parses `args` for the command `help.name`. Returns -1 when the command
// should go on; otherwise the exit status to return at once: 0 after printing
// the help page (synopsis, about, flags, examples, exit status) for -h/--help;
// 2 after printing a usage error as one line. `max_positional` < 0 allows any
// number of positional arguments.
int ParseOrExit(const CommandHelp& help, Flags& flags, const std::vector<std::string>& args,
                int max_positional, Io& io);

// Prints "hmmref: WHAT; see 'hmmref COMMAND --help'" on io.err and returns 2.
int Usage(const std::string& command, const std::string& what, Io& io);

// Parses every .hmm file into `traces` (one entry per file, in order); prints
// each file's error as FILE:LINE: message on io.err. Returns true iff all
// parsed (run.cc; `run` and `oracle` share it).
bool ParseTraceFiles(const std::vector<std::string>& files,
                     std::vector<std::vector<props::Op>>* traces, Io& io);

// The command line that invoked hmmref, for copy-pasteable commands: the
// HMMREF_PROG environment variable (the ./hmmref script sets it to how it was
// called), else "./hmmref".
std::string ProgramName();

// The outcome of ProveLemmas (prove.cc).
struct LemmaTally {
  size_t total = 0;
  std::vector<std::string> not_proved;  // names, in registry order
};

// Proves the lemma called `only` (every lemma when empty) and prints the
// lemma table (only the rows not proved when `quiet`), then each failure's
// detail and counterexample. A progress line names the lemma being proved
// unless `quiet`. REQUIRES: `only` is empty or names a lemma of
// solver::AllLemmas().
LemmaTally ProveLemmas(const std::string& only, bool quiet, Io& io);

}  // namespace hmm::cli

#endif  // HMMREF_CLI_COMMANDS_H_
