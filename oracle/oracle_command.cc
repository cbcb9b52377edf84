// File: oracle/oracle_command.cc
//
// `hmmref oracle lower` and `hmmref oracle compare`: the program's half of
// the kernel oracle (docs/oracle.md). The ./hmmref script owns `oracle build`
// and `oracle run` (oracle/build.sh, oracle/run.sh); run.sh calls these two
// around the QEMU boot. Part of the hmmref binary (see cli/BUILD).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "oracle/fuzz_command.h"
#include "oracle/host.h"
#include "props/trace.h"

namespace hmm::cli {
namespace {

constexpr CommandHelp kHelp = {
    "oracle",
    "hmmref oracle lower [--profile P] --out DIR FILE... | "
    "hmmref oracle compare [--profile P] --results FILE [--known FILE] FILE... | "
    "hmmref oracle gen --out DIR [--traces N] [--seed S] [--steps M] [--suite NAME] [--profile P] | "
    "hmmref oracle candidates --out DIR FILE",
    "The program's half of the kernel oracle (docs/oracle.md). Use the script:\n"
    "'./hmmref oracle build' builds Linux 6.1 with its HMM test driver, and\n"
    "'./hmmref oracle run FILE...' replays .hmm traces on it under QEMU and\n"
    "compares every line with the model, which runs its linux-6.1 profile\n"
    "(--profile trace: each trace's own profile line). The script calls these verbs:\n"
    "\n"
    "  lower    runs each trace on the model and writes DIR/NNNN.lt, the\n"
    "           numbers-only form the guest runner executes (NNNN is the\n"
    "           FILE's position, from 0000; the trace is named NNNN-HASH,\n"
    "           HASH a hash of its lowered lines)\n"
    "  compare  reads the guest's results (--results; several boots may be\n"
    "           concatenated), runs each trace on the model again and prints\n"
    "           every line: the kernel's result and the model's, then\n"
    "           \"N lines compared, K known differences, U unexplained\";\n"
    "           --known names the known divergences (oracle/known_divergences.txt:\n"
    "           'ID PATH LINE [KIND]' a line); exit 0 only if U is 0\n"
    "  gen      writes N random traces, DIR/fuzz-S-IIIII.hmm, drawn from a\n"
    "           suite's generators with only the lines Linux 6.1 exposes kept\n"
    "           (for './hmmref oracle fuzz'; the same S writes the same files)\n"
    "  candidates writes one shrinking round of FILE, DIR/cand-IIIII.hmm: FILE\n"
    "           with one run of lines removed, for halving run lengths, shortest\n"
    "           first\n",
    "  ./hmmref oracle build\n"
    "  ./hmmref oracle run scenarios/mirror_anon_read.hmm\n"
    "  hmmref oracle lower --out /tmp/lowered scenarios/mirror_anon_read.hmm\n"
    "  hmmref oracle compare --results /tmp/results.log \\\n"
    "      --known oracle/known_divergences.txt scenarios/mirror_anon_read.hmm\n",
};

std::string FileName(size_t i) {
  char buf[24];
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
          const std::vector<std::string>& files, oracle::OracleProfile profile, Io& io) {
  for (size_t i = 0; i < traces.size(); ++i) {
    oracle::LoweredTrace lowered = oracle::Lower(traces[i], profile);
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

// One line of the known-divergences file.
struct KnownEntry {
  std::string path;  // the trace, relative to the repository
  int line = 0;      // its line
  oracle::KnownLine known;
  bool trace_finished = false;  // its trace was among the FILEs and ran to its end
};

bool ParseLineNumber(const std::string& s, int* line) {
  if (s.empty() || s.size() > 9 || s[0] == '0') return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  *line = std::atoi(s.c_str());
  return true;
}

// Checks one entry's fields; "" when well formed, else why not.
std::string CheckEntry(const std::vector<std::string>& w, KnownEntry* e) {
  if (w.size() < 3 || w.size() > 4) {
    return "expected 'ID PATH LINE [KIND]', got " + std::to_string(w.size()) + " field(s)";
  }
  bool id_ok = w[0].size() >= 2 && w[0][0] == 'D' && w[0][1] != '0';
  for (size_t i = 1; i < w[0].size(); ++i) id_ok = id_ok && w[0][i] >= '0' && w[0][i] <= '9';
  if (!id_ok) return "'" + w[0] + "' is not a divergence id (D1, D2, ...)";
  if (w[1][0] == '/') return "the trace path '" + w[1] + "' must be relative to the repository";
  if (!ParseLineNumber(w[2], &e->line)) return "'" + w[2] + "' is not a line number";
  static const char* const kKinds[] = {"errno", "address", "cpages", "faults", "data", "crash"};
  bool kind_ok = w.size() == 3;
  for (const char* k : kKinds) kind_ok = kind_ok || w[3] == k;
  if (!kind_ok) return "unknown kind '" + w[3] + "' (errno, address, cpages, faults, data or crash)";
  e->known.id = w[0];
  e->path = std::filesystem::path(w[1]).lexically_normal().string();
  e->known.kind = w.size() == 4 ? w[3] : "";
  return "";
}

// Reads the known-divergences file: "ID PATH LINE [KIND]" a line, '#'
// comments. False, with "FILE:LINE: why", for a malformed one.
bool ReadKnown(const std::string& path, std::vector<KnownEntry>* out, Io& io) {
  std::ifstream f(path);
  if (!f) {
    io.err << "hmmref: cannot read the known divergences " << path << "\n";
    return false;
  }
  std::string text;
  for (int n = 1; std::getline(f, text); ++n) {
    std::istringstream fields(text.substr(0, text.find('#')));
    std::vector<std::string> w;
    for (std::string word; fields >> word;) w.push_back(word);
    if (w.empty()) continue;
    KnownEntry e;
    std::string why = CheckEntry(w, &e);
    for (const KnownEntry& o : *out) {
      if (why.empty() && o.path == e.path && o.line == e.line) {
        why = e.path + ":" + w[2] + " is listed already, at line " +
              std::to_string(o.known.source_line);
      }
    }
    if (!why.empty()) {
      io.err << path << ":" << n << ": " << why << "\n";
      return false;
    }
    e.known.source_line = n;
    out->push_back(std::move(e));
  }
  return true;
}

// Whether the entry's PATH names FILE: FILE's absolute path ends with it.
bool SameTrace(const std::string& entry_path, const std::string& file) {
  std::error_code ec;
  std::string abs = std::filesystem::weakly_canonical(file, ec).string();
  if (ec) abs = std::filesystem::absolute(file).lexically_normal().string();
  return abs == entry_path ||
         (abs.size() > entry_path.size() &&
          abs.compare(abs.size() - entry_path.size(), entry_path.size(), entry_path) == 0 &&
          abs[abs.size() - entry_path.size() - 1] == '/');
}

void Add(const oracle::CompareTally& t, oracle::CompareTally* total) {
  total->compared += t.compared;
  total->differences += t.differences;
  total->known += t.known;
  total->after_unsupported += t.after_unsupported;
  total->unsupported += t.unsupported;
  total->not_run += t.not_run;
  total->missing += t.missing;
  total->warnings += t.warnings;
  total->known_crashes += t.known_crashes;
  total->predicted_oops += t.predicted_oops;
  total->expected_warnings += t.expected_warnings;
}

// Compares one trace, printing its header and lines; adds to *total and
// lists its unexplained lines in *unexplained.
bool CompareOne(const std::string& file, const std::vector<props::Op>& ops, size_t i,
                oracle::OracleProfile profile, std::map<std::string, oracle::KernelTrace>& kernel,
                std::vector<KnownEntry>* known, oracle::CompareTally* total,
                std::vector<std::string>* unexplained, Io& io) {
  oracle::LoweredTrace lowered = oracle::Lower(ops, profile);
  const oracle::KernelTrace& k = kernel[TraceName(i, lowered)];
  std::map<int, oracle::KnownLine> lines_known;
  for (KnownEntry& e : *known) {
    if (SameTrace(e.path, file)) lines_known[e.line] = e.known;
  }
  oracle::CompareTally t;
  std::ostringstream lines;
  oracle::CompareTrace(lowered, k, &lines_known, lines, &t);
  for (KnownEntry& e : *known) {
    auto it = lines_known.find(e.line);
    if (!SameTrace(e.path, file) || it == lines_known.end()) continue;
    e.known.matched |= it->second.matched;
    e.known.compared |= it->second.compared;
    e.trace_finished |= k.finished;
  }
  io.out << file << ": " << t.compared << " compared, " << t.differences << " differ, " << t.known
         << " known, " << t.unsupported << " unsupported, " << t.not_run << " not run";
  if (t.after_unsupported > 0) io.out << ", " << t.after_unsupported << " differ after an unsupported line";
  if (t.warnings > 0) io.out << ", " << t.warnings << " kernel log lines";
  if (t.expected_warnings > 0) io.out << ", " << t.expected_warnings << " expected driver warnings";
  if (t.predicted_oops > 0) io.out << ", oopsed as predicted";
  if (!k.started) io.out << " (the guest never started this trace)";
  else if (!k.finished && t.predicted_oops == 0) {
    io.out << " (the guest stopped during this trace: a kernel crash?)";
  }
  io.out << "\n" << lines.str();
  for (int line : t.unexplained) unexplained->push_back(file + ":" + std::to_string(line));
  Add(t, total);
  return k.finished || t.known_crashes > 0 || t.predicted_oops > 0;
}

// The entries whose trace ran to its end and whose line did not differ as
// described: it agreed, or it was not compared (unsupported, not run, no
// such line).
size_t ReportStale(const std::vector<KnownEntry>& known, const std::string& known_path, Io& io) {
  size_t stale = 0;
  for (const KnownEntry& e : known) {
    if (!e.trace_finished || e.known.matched) continue;
    ++stale;
    const std::string how = e.known.kind.empty() ? "" : " in " + e.known.kind;
    io.out << "stale known divergence " << e.known.id << " at " << e.path << ":" << e.line << " ("
           << (e.known.compared ? "the line no longer differs" + how
                                : std::string("no line compared there"))
           << "; remove " << known_path << ":" << e.known.source_line << ")\n";
  }
  return stale;
}

int Compare(const std::string& results_path, const std::string& known_path,
            const std::vector<std::vector<props::Op>>& traces,
            const std::vector<std::string>& files, oracle::OracleProfile profile, Io& io) {
  std::ifstream f(results_path);
  if (!f) {
    io.err << "hmmref: cannot read " << results_path << "\n";
    return kExitUsage;
  }
  std::vector<KnownEntry> known;
  if (!known_path.empty() && !ReadKnown(known_path, &known, io)) return kExitUsage;
  std::stringstream text;
  text << f.rdbuf();
  std::map<std::string, oracle::KernelTrace> kernel = oracle::ParseResults(text.str());
  oracle::CompareTally total;
  std::vector<std::string> unexplained;
  size_t incomplete = 0;
  for (size_t i = 0; i < traces.size(); ++i) {
    incomplete +=
        !CompareOne(files[i], traces[i], i, profile, kernel, &known, &total, &unexplained, io);
  }
  const size_t stale = ReportStale(known, known_path, io);
  for (const std::string& at : unexplained) io.out << "unexplained difference at " << at << "\n";
  io.out << total.compared << " lines compared, " << total.known << " known differences, "
         << total.differences << " unexplained (" << traces.size() << " traces; "
         << total.after_unsupported << " more after an unsupported line, " << stale
         << " stale known entries, " << total.unsupported << " lines unsupported, "
         << total.not_run << " not run, " << total.missing << " without a kernel result, "
         << total.warnings << " kernel log lines, " << incomplete << " traces incomplete; "
         << total.expected_warnings << " expected driver warnings, " << total.predicted_oops
         << " predicted oopses)\n";
  const bool clean = total.differences == 0 && total.missing == 0 && total.warnings == 0 &&
                     incomplete == 0;
  return clean ? kExitOk : kExitFailed;
}

// Why the verb cannot run with these flags; "" when it can.
std::string VerbProblem(const std::string& verb, const std::string& out_dir,
                        const std::string& profile) {
  if (verb == "build" || verb == "run" || verb == "fuzz") {
    return "'oracle " + verb + "' is the ./hmmref script's: run '" + ProgramName() + " oracle " +
           verb + "'";
  }
  if (verb != "lower" && verb != "compare" && verb != "gen" && verb != "candidates") {
    return "unknown verb '" + verb + "' (lower, compare, gen or candidates)";
  }
  if (verb != "compare" && out_dir.empty()) return verb + " needs --out DIR";
  if (profile != "linux-6.1" && profile != "trace") {
    return "unknown --profile '" + profile + "' (linux-6.1 or trace)";
  }
  return "";
}

}  // namespace

int OracleCommand(const std::vector<std::string>& args, Io& io) {
  std::string out_dir, results, known, profile_word = "linux-6.1";
  OracleGenOptions gen;
  Flags flags;
  flags.String("out", "DIR", &out_dir,
               "lower, gen, candidates: the folder to write to (must exist)");
  flags.String("results", "FILE", &results, "compare: the guest's results channel");
  flags.String("known", "FILE", &known,
               "compare: the known divergences (default: none, every difference unexplained)");
  flags.Uint("traces", "N", &gen.traces, 1, 1000000, "gen: how many traces (default 100)");
  flags.Uint("seed", "S", &gen.seed, 0, ~uint64_t{0}, "gen: the seed (default 1)");
  flags.Uint("steps", "M", &gen.steps, 1, 1000, "gen: the most steps a trace draws (default 40)");
  flags.String("suite", "NAME", &gen.suite, "gen: whose generators (mirror; default mirror)");
  flags.String("profile", "P", &profile_word,
               "lower, compare, gen: the model's profile: linux-6.1 (default) or trace (each "
               "trace's own profile line, default without one)");
  int status = ParseOrExit(kHelp, flags, args, /*max_positional=*/-1, io);
  if (status >= 0) return status;
  const std::vector<std::string>& pos = flags.positional();
  if (pos.empty()) return Usage("oracle", "oracle needs a verb: lower, compare, gen or candidates", io);
  const std::string& verb = pos[0];
  const std::string problem = VerbProblem(verb, out_dir, profile_word);
  if (!problem.empty()) return Usage("oracle", problem, io);
  const oracle::OracleProfile profile =
      profile_word == "trace" ? oracle::OracleProfile::kTrace : oracle::OracleProfile::kLinux61;
  gen.out_dir = out_dir;
  gen.profile = profile;
  std::vector<std::string> files(pos.begin() + 1, pos.end());
  if (verb == "gen") {
    if (!files.empty()) return Usage("oracle", "gen takes no FILE", io);
    return OracleGen(gen, io);
  }
  if (files.empty()) return Usage("oracle", "oracle " + verb + " needs at least one FILE", io);
  if (verb == "candidates" && files.size() != 1) return Usage("oracle", "candidates takes one FILE", io);
  if (verb == "compare" && results.empty()) return Usage("oracle", "compare needs --results FILE", io);
  std::vector<std::vector<props::Op>> traces;
  if (!ParseTraceFiles(files, &traces, io)) return kExitUsage;
  if (verb == "candidates") return OracleCandidates(out_dir, files[0], traces[0], io);
  return verb == "lower" ? Lower(out_dir, traces, files, profile, io)
                         : Compare(results, known, traces, files, profile, io);
}

}  // namespace hmm::cli
