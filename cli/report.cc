// File: cli/report.cc
//
// `hmmref report`: flags, gathering the results (suites, lemmas, traces) and
// writing DIR/index.html and DIR/report.md. The sections: report_sections.cc
// and report_tables.cc; the drawings: report_diagrams.cc; the race suite's
// counterexample: report_race.cc.

#include "cli/report.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "cli/output.h"
#include "props/trace.h"

namespace hmm::cli::report {
namespace {

namespace fs = std::filesystem;

// The *.hmm files of `dir`, sorted by name; none when it does not exist.
std::vector<std::string> HmmFiles(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".hmm" && e.is_regular_file(ec)) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void AddStored(const std::string& dir, const std::string& group, std::vector<TraceRun>* traces) {
  for (const std::string& path : HmmFiles(dir)) {
    TraceRun t{group, path};
    if (!props::ParseTraceFile(path, &t.ops, &t.error)) t.ops.clear();
    traces->push_back(std::move(t));
  }
}

std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

props::SuiteResult RunOne(const std::string& name, const Options& o, ProgressLine& progress) {
  props::SuiteOptions options;
  options.name = name;
  options.runs = o.runs;
  options.seed = o.seed;
  options.max_steps = o.max_steps;
  options.profile = o.profile;
  options.progress = [&](const props::SuiteProgress& p) {
    progress.Update("report: suite " + name + ": " + std::to_string(p.sequences) + "/" +
                    std::to_string(o.runs) + " sequences, " + std::to_string(p.steps) + " steps");
  };
  progress.Update("report: suite " + name + ": starting", /*force=*/true);
  return props::RunSuite(options);
}

// A failing suite's counterexample, replayed, first among the counterexamples.
TraceRun FreshCounterexample(const props::SuiteResult& r, uint64_t seed) {
  TraceRun t{"counterexample", "suite " + r.name + ", seed " + std::to_string(seed) +
                                   " (found by this run)"};
  t.ops = r.counterexample;
  return t;
}

bool WriteText(const fs::path& path, const std::string& text, std::string* error) {
  std::ofstream file(path);
  file << text;
  file.close();
  if (!file) *error = "cannot write " + path.string();
  return static_cast<bool>(file);
}

// Creates `dir` if needed and checks a file can be written there.
bool CheckWritable(const std::string& dir, std::string* error) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    *error = "cannot create " + dir + ": " + ec.message();
    return false;
  }
  fs::path probe = fs::path(dir) / ".hmmref-report-probe";
  if (!WriteText(probe, "", error)) {
    *error = "cannot write to " + dir;
    return false;
  }
  fs::remove(probe, ec);
  return true;
}

}  // namespace

bool LoadTraces(const Options& o, std::vector<TraceRun>* traces, std::string* error) {
  for (const std::string& path : o.traces) {
    TraceRun t{"trace", path};
    if (!props::ParseTraceFile(path, &t.ops, error)) return false;
    traces->push_back(std::move(t));
  }
  AddStored(o.counterexamples_dir, "counterexample", traces);
  AddStored(o.regressions_dir, "regression", traces);
  AddStored(o.scenarios_dir, "scenario", traces);
  return true;
}

Results Collect(const Options& o, std::vector<TraceRun> traces, Io& io) {
  Results r;
  r.date = UtcNow();
  r.suite_infos = props::Suites();
  ProgressLine progress(io.err, io.err_is_tty && !o.quiet);
  for (const props::SuiteInfo& suite : r.suite_infos) {
    r.suites.push_back(RunOne(suite.name, o, progress));
    const props::SuiteResult& s = r.suites.back();
    if (!s.passed && !s.counterexample.empty()) {
      r.traces.push_back(FreshCounterexample(s, o.seed));
    }
  }
  r.races = ReplayRaces(r.suites);
  const auto& lemmas = solver::AllLemmas();
  for (size_t i = 0; i < lemmas.size(); ++i) {
    progress.Update("report: proving " + lemmas[i].name + " (" + std::to_string(i + 1) + "/" +
                        std::to_string(lemmas.size()) + ")",
                    /*force=*/true);
    r.lemmas.push_back(solver::RunLemma(lemmas[i]));
  }
  for (TraceRun& t : traces) r.traces.push_back(std::move(t));
  for (size_t i = 0; i < r.traces.size(); ++i) {
    TraceRun& t = r.traces[i];
    progress.Update("report: replaying " + t.name, /*force=*/false);
    if (t.error.empty()) t.replay = props::RunTrace(t.ops);
  }
  progress.Clear();
  return r;
}

bool LoadOracle(const Options& o, OracleAgreement* out, std::string* error) {
  if (o.oracle_log.empty()) return true;
  std::ifstream in(o.oracle_log);
  if (!in) {
    *error = o.oracle_log + ": cannot be read";
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  if (!ParseOracleRun(text.str(), out, error)) {
    *error = o.oracle_log + ": " + *error;
    return false;
  }
  out->source = o.oracle_log;
  return true;
}

int WriteReport(const Options& o, Io& io) {
  std::string error;
  if (!CheckWritable(o.out_dir, &error)) {
    io.err << "hmmref: " << error << "\n";
    return kExitUsage;
  }
  std::vector<TraceRun> traces;
  if (!LoadTraces(o, &traces, &error)) {
    io.err << "hmmref: " << error << "\n";
    return kExitUsage;
  }
  OracleAgreement oracle;
  if (!LoadOracle(o, &oracle, &error)) {
    io.err << "hmmref: " << error << "\n";
    return kExitUsage;
  }
  Results results = Collect(o, std::move(traces), io);
  results.oracle = std::move(oracle);
  Document doc = BuildDocument(o, results);
  const fs::path html = fs::path(o.out_dir) / "index.html";
  const fs::path md = fs::path(o.out_dir) / "report.md";
  if (!WriteText(html, RenderHtml(doc), &error) || !WriteText(md, RenderMarkdown(doc), &error)) {
    io.err << "hmmref: " << error << "\n";
    return kExitUsage;
  }
  if (!o.quiet) io.out << "hmmref report: " << Verdict(results) << "\n";
  io.out << "wrote " << html.string() << " and " << md.string() << "\n";
  return kExitOk;
}

}  // namespace hmm::cli::report
