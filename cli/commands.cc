// File: cli/commands.cc
//
// Dispatch, the help pages' common frame, and the helpers every subcommand
// shares. The subcommands themselves: check.cc, run.cc, prove.cc, report.cc.

#include "cli/commands.h"

#include <cstdlib>

namespace hmm::cli {

// oracle/oracle_command.cc: the kernel oracle's lower and compare (docs/oracle.md).
int OracleCommand(const std::vector<std::string>& args, Io& io);

namespace {

struct Entry {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args, Io& io);
};

constexpr Entry kCommands[] = {
    {"check", "run every property suite and prove every lemma (the main job)", CheckCommand},
    {"run", "replay .hmm traces against the model and the implementation", RunCommand},
    {"prove", "prove the Z3 lemmas", ProveCommand},
    {"report", "write the design-review page: report --out DIR", ReportCommand},
    {"oracle", "the kernel oracle's lower and compare (./hmmref oracle build|run)", OracleCommand},
};

constexpr char kExitStatus[] =
    "Exit status:\n"
    "  0  everything checked holds\n"
    "  1  a property suite, a lemma or a trace failed\n"
    "  2  usage or input error (unknown command or flag, bad value,\n"
    "     unreadable or malformed .hmm file)\n";

void PrintTopHelp(std::ostream& out) {
  out << "hmmref " << kVersion
      << ": an executable reference of Linux HMM. A small model and an optimized\n"
         "implementation run the same operations and are checked against each other\n"
         "after every step; Z3 proves lemmas about both.\n\n"
         "Usage: hmmref <command> [flags] [args]\n\n"
         "Commands:\n";
  for (const Entry& entry : kCommands) {
    out << "  " << entry.name << std::string(8 - std::string(entry.name).size(), ' ')
        << entry.summary << "\n";
  }
  out << "  help    show the help of a command: hmmref help check\n\n"
         "Flags:\n"
         "  -h, --help   show this help\n"
         "  --version    print the version\n\n"
         "Examples:\n"
         "  hmmref check\n"
         "  hmmref check --suite cpu --runs 2000 --seed random\n"
         "  hmmref run hmmref-out/cpu-seed7.hmm\n"
         "  hmmref prove --lemma NAME\n"
         "  hmmref report --out /tmp/review\n\n"
      << kExitStatus;
}

int HelpCommand(const std::vector<std::string>& args, Io& io) {
  if (args.size() > 1) return Usage("", "help takes one command, got '" + args[1] + "'", io);
  if (args.empty() || args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
    PrintTopHelp(io.out);
    return kExitOk;
  }
  for (const Entry& entry : kCommands) {
    if (args[0] == entry.name) return entry.run({"--help"}, io);
  }
  return Usage("", "unknown command '" + args[0] + "'", io);
}

void PrintHelp(const CommandHelp& help, const Flags& flags, std::ostream& out) {
  out << "Usage: " << help.synopsis << "\n\n"
      << help.about << "\nFlags:\n"
      << flags.Describe() << "\nExamples:\n"
      << help.examples << "\n"
      << kExitStatus;
}

}  // namespace

int Main(const std::vector<std::string>& args, Io& io) {
  if (args.empty()) return Usage("", "no command given (check, run, prove, report or help)", io);
  const std::string& command = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "-h" || command == "--help") return HelpCommand({}, io);
  if (command == "--version") {
    io.out << "hmmref " << kVersion << "\n";
    return kExitOk;
  }
  if (command == "help") return HelpCommand(rest, io);
  for (const Entry& entry : kCommands) {
    if (command == entry.name) return entry.run(rest, io);
  }
  if (command.size() > 1 && command[0] == '-') {
    return Usage("", "unknown flag '" + command + "'", io);
  }
  return Usage("", "unknown command '" + command + "'", io);
}

int ParseOrExit(const CommandHelp& help, Flags& flags, const std::vector<std::string>& args,
                int max_positional, Io& io) {
  std::string error;
  if (!flags.Parse(args, &error)) return Usage(help.name, error, io);
  if (flags.help()) {
    PrintHelp(help, flags, io.out);
    return kExitOk;
  }
  const auto& positional = flags.positional();
  if (max_positional >= 0 && positional.size() > static_cast<size_t>(max_positional)) {
    return Usage(help.name, "unexpected argument '" + positional[max_positional] + "'", io);
  }
  return -1;
}

int Usage(const std::string& command, const std::string& what, Io& io) {
  io.err << UsageError(command, what) << "\n";
  return kExitUsage;
}

std::string ProgramName() {
  const char* prog = std::getenv("HMMREF_PROG");
  return prog != nullptr && *prog != '\0' ? prog : "./hmmref";
}

}  // namespace hmm::cli
