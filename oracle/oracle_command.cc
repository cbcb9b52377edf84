// File: oracle/oracle_command.cc
//
// `hmmref oracle lower` and `hmmref oracle compare`: the program's half of
// the kernel oracle (docs/oracle.md). The ./hmmref script owns `oracle build`
// and `oracle run` (oracle/build.sh, oracle/run.sh); run.sh calls these two
// around the QEMU boot. Part of the hmmref binary (see cli/BUILD).

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "oracle/host.h"
#include "props/trace.h"

namespace hmm::cli {
namespace {

constexpr CommandHelp kHelp = {
    "oracle",
    "hmmref oracle lower --out DIR FILE... | hmmref oracle compare --results FILE FILE...",
    "The program's half of the kernel oracle (docs/oracle.md). Use the script:\n"
    "'./hmmref oracle build' builds Linux 6.1 with its HMM test driver, and\n"
    "'./hmmref oracle run FILE...' replays .hmm traces on it under QEMU and\n"
    "compares every line with the model. The script calls these two verbs:\n"
    "\n"
    "  lower    runs each trace on the model and writes DIR/NNNN.lt, the\n"
    "           numbers-only form the guest runner executes (NNNN is the\n"
    "           FILE's position, from 0000; the trace is named NNNN-HASH,\n"
    "           HASH a hash of its lowered lines)\n"
    "  compare  reads the guest's results (--results; several boots may be\n"
    "           concatenated), runs each trace on the model again and prints\n"
    "           every line: the kernel's result and the model's, then\n"
    "           \"N lines compared, D differences\"\n",
    "  ./hmmref oracle build\n"
    "  ./hmmref oracle run scenarios/mirror_anon_read.hmm\n"
    "  hmmref oracle lower --out /tmp/lowered scenarios/mirror_anon_read.hmm\n"
    "  hmmref oracle compare --results /tmp/results.log scenarios/mirror_anon_read.hmm\n",
};

std::string FileName(size_t i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04zu", i);
  return buf;
}

// "NNNN-xxxxxxxx": the file's position and a hash of its lowered lines, so
// that results from another run or another file list are never compared.
std::string TraceName(size_t i, const oracle::LoweredTrace& lowered) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (char c : oracle::FormatLowered(lowered, "")) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  char buf[16];
  std::snprintf(buf, sizeof buf, "-%08x", h);
  return FileName(i) + buf;
}

int Lower(const std::string& out_dir, const std::vector<std::vector<props::Op>>& traces,
          const std::vector<std::string>& files, Io& io) {
  for (size_t i = 0; i < traces.size(); ++i) {
    oracle::LoweredTrace lowered = oracle::Lower(traces[i]);
    const std::string path = out_dir + "/" + FileName(i) + ".lt";
    std::ofstream f(path);
    f << "# " << files[i] << "\n" << oracle::FormatLowered(lowered, TraceName(i, lowered));
    if (!f) {
      io.err << "hmmref: cannot write " << path << "\n";
      return kExitUsage;
    }
    size_t run = 0;
    for (const auto& l : lowered.lines) run += l.fate == oracle::LineFate::kRun;
    io.out << path << " " << files[i] << " " << run << "/" << lowered.lines.size()
           << " lines lowered\n";
  }
  return kExitOk;
}

int Compare(const std::string& results_path, const std::vector<std::vector<props::Op>>& traces,
            const std::vector<std::string>& files, Io& io) {
  std::ifstream f(results_path);
  if (!f) {
    io.err << "hmmref: cannot read " << results_path << "\n";
    return kExitUsage;
  }
  std::stringstream text;
  text << f.rdbuf();
  std::map<std::string, oracle::KernelTrace> kernel = oracle::ParseResults(text.str());
  oracle::CompareTally total;
  size_t incomplete = 0;
  for (size_t i = 0; i < traces.size(); ++i) {
    oracle::LoweredTrace lowered = oracle::Lower(traces[i]);
    const oracle::KernelTrace& k = kernel[TraceName(i, lowered)];
    oracle::CompareTally tally;
    std::ostringstream lines;
    oracle::CompareTrace(lowered, k, lines, &tally);
    io.out << files[i] << ": " << tally.compared << " compared, " << tally.differences
           << " differ, " << tally.unsupported << " unsupported, " << tally.not_run << " not run";
    if (tally.after_unsupported > 0) {
      io.out << ", " << tally.after_unsupported << " differ after an unsupported line";
    }
    if (tally.warnings > 0) io.out << ", " << tally.warnings << " kernel log lines";
    if (!k.started) io.out << " (the guest never started this trace)";
    else if (!k.finished) io.out << " (the guest stopped during this trace: a kernel crash?)";
    io.out << "\n" << lines.str();
    incomplete += !k.finished;
    total.compared += tally.compared;
    total.differences += tally.differences;
    total.after_unsupported += tally.after_unsupported;
    total.unsupported += tally.unsupported;
    total.not_run += tally.not_run;
    total.missing += tally.missing;
    total.warnings += tally.warnings;
  }
  io.out << total.compared << " lines compared, " << total.differences << " differences ("
         << traces.size() << " traces; " << total.after_unsupported
         << " more after an unsupported line, " << total.unsupported << " lines unsupported, "
         << total.not_run << " not run, " << total.missing << " without a kernel result, "
         << total.warnings << " kernel log lines, " << incomplete << " traces incomplete)\n";
  const bool clean = total.differences == 0 && total.missing == 0 && total.warnings == 0 &&
                     incomplete == 0;
  return clean ? kExitOk : kExitFailed;
}

}  // namespace

int OracleCommand(const std::vector<std::string>& args, Io& io) {
  std::string out_dir, results;
  Flags flags;
  flags.String("out", "DIR", &out_dir, "lower: the folder for the NNNN.lt files (must exist)");
  flags.String("results", "FILE", &results, "compare: the guest's results channel");
  int status = ParseOrExit(kHelp, flags, args, /*max_positional=*/-1, io);
  if (status >= 0) return status;
  const std::vector<std::string>& pos = flags.positional();
  if (pos.empty()) return Usage("oracle", "oracle needs a verb: lower or compare", io);
  const std::string& verb = pos[0];
  if (verb == "build" || verb == "run") {
    return Usage("oracle", "'oracle " + verb + "' is the ./hmmref script's: run '" +
                               ProgramName() + " oracle " + verb + "'", io);
  }
  if (verb != "lower" && verb != "compare") {
    return Usage("oracle", "unknown verb '" + verb + "' (lower or compare)", io);
  }
  std::vector<std::string> files(pos.begin() + 1, pos.end());
  if (files.empty()) return Usage("oracle", "oracle " + verb + " needs at least one FILE", io);
  if (verb == "lower" && out_dir.empty()) return Usage("oracle", "lower needs --out DIR", io);
  if (verb == "compare" && results.empty()) return Usage("oracle", "compare needs --results FILE", io);
  std::vector<std::vector<props::Op>> traces;
  if (!ParseTraceFiles(files, &traces, io)) return kExitUsage;
  return verb == "lower" ? Lower(out_dir, traces, files, io) : Compare(results, traces, files, io);
}

}  // namespace hmm::cli
