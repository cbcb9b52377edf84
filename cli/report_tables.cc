// File: cli/report_tables.cc
//
// The report's lemma, suite and trace sections.

#include <string>
#include <vector>

#include "cli/output.h"
#include "cli/report.h"
#include "props/coverage.h"

namespace hmm::cli::report {
namespace {

Block CoverageTable(const props::Coverage& c) {
  DocTable t;
  t.head = {"class", "sequences", "steps", "minimum", "status"};
  for (const props::ClassCount& k : c.classes) {
    uint64_t min = props::Coverage::ScaledMinimum(k.minimum, c.sequences);
    bool missed = k.sequences < min;
    t.rows.push_back({{k.name}, {FormatCount(k.sequences)}, {FormatCount(k.steps)},
                      {FormatCount(min)},
                      missed ? Cell{"warning: below minimum", "warn"} : Cell{"reached", "ok"}});
  }
  return TableBlock(std::move(t));
}

std::string TraceTitle(const TraceRun& t) {
  if (!t.error.empty()) return t.group + " " + t.name + ": cannot be parsed";
  std::string verdict = t.replay.ok ? "agrees" : "FAILS at step " +
                                                     std::to_string(t.replay.failing_step);
  return t.group + " " + t.name + " (" + std::to_string(t.ops.size()) + " steps): " + verdict;
}

void AddGroup(const Results& r, const std::string& group, const std::string& title,
              const std::string& about, bool open, Section* s) {
  s->blocks.push_back(Heading(title));
  s->blocks.push_back(Paragraph(about));
  size_t n = 0;
  for (const TraceRun& t : r.traces) {
    if (t.group != group) continue;
    ++n;
    s->blocks.push_back(DetailsBegin(TraceTitle(t), open || !t.replay.ok));
    if (!t.error.empty()) {
      s->blocks.push_back(Pre(t.error));
    } else {
      for (Block& b : SequenceDiagram(t.ops, t.replay)) s->blocks.push_back(std::move(b));
    }
    s->blocks.push_back(DetailsEnd());
  }
  if (n == 0) s->blocks.push_back(Paragraph("None."));
}

}  // namespace

Section LemmaSection(const Results& r) {
  Section s{"lemmas", "Lemmas"};
  DocTable t;
  t.head = {"lemma", "statement", "invariant", "status", "time", "resource limit"};
  t.style = "wide";
  for (size_t i = 0; i < r.lemmas.size(); ++i) {
    const solver::LemmaResult& l = r.lemmas[i];
    const solver::Lemma& def = solver::AllLemmas()[i];
    bool proved = l.status == solver::LemmaStatus::kProved;
    t.rows.push_back({{l.name}, {def.statement}, {def.invariant.empty() ? "—" : def.invariant},
                      {solver::LemmaStatusWord(l.status), proved ? "ok" : "bad"},
                      {FormatSeconds(l.seconds)},
                      {l.rlimit == 0 ? "—" : FormatCount(static_cast<double>(l.rlimit))}});
  }
  s.blocks.push_back(TableBlock(std::move(t)));
  for (const solver::LemmaResult& l : r.lemmas) {
    bool proved = l.status == solver::LemmaStatus::kProved;
    if (proved && !solver::HasWitness(l)) continue;
    const std::string status = solver::LemmaStatusWord(l.status);
    s.blocks.push_back(Heading(l.name + (proved ? ": witness" : ": " + status)));
    std::string text = l.detail;
    if (!l.counterexample.empty()) text += "\ncounterexample:\n" + l.counterexample;
    s.blocks.push_back(Pre(text));
  }
  return s;
}

Section SuiteSection(const Results& r) {
  Section s{"suites", "Property suites"};
  DocTable t;
  t.head = {"suite", "what it covers", "sequences", "steps", "steps/s", "result"};
  for (size_t i = 0; i < r.suites.size(); ++i) {
    const props::SuiteResult& x = r.suites[i];
    t.rows.push_back({{x.name}, {i < r.suite_infos.size() ? r.suite_infos[i].description : ""},
                      {std::to_string(x.sequences)}, {std::to_string(x.steps)},
                      {FormatRate(x.steps, x.seconds)},
                      x.passed ? Cell{"passed", "ok"} : Cell{"FAILED", "bad"}});
  }
  s.blocks.push_back(TableBlock(std::move(t)));
  for (const props::SuiteResult& x : r.suites) {
    const props::Coverage& c = x.coverage;
    s.blocks.push_back(Heading("Coverage of suite " + x.name));
    s.blocks.push_back(Paragraph(
        std::to_string(c.sequences) + " sequences" + (x.passed ? "" : " up to the first failure") +
        ", " + std::to_string(c.steps) + " steps; minimums are scaled to this many sequences "
        "(docs/coverage.md). " + std::to_string(c.Missed().size()) + " class(es) below minimum."));
    s.blocks.push_back(CoverageTable(c));
  }
  return s;
}

Section TraceSection(const Results& r) {
  Section s{"traces", "Traces as sequence diagrams"};
  s.blocks.push_back(Paragraph(
      "Each trace replayed on model and impl in lock step, one row per step in lanes CPU "
      "(read, write, pin, unpin), mm (process, mmap family, fork, exit, RAM) and device "
      "(devmem, devpage, devmap, placement set-up), with both results side by side; the "
      "failing step is highlighted."));
  AddGroup(r, "counterexample", "Counterexamples",
           "Minimized counterexamples of suites that failed in this run, and the .hmm files in "
           "hmmref-out/.", true, &s);
  AddGroup(r, "regression", "Regressions", "The regression corpus, props/regressions/*.hmm.",
           true, &s);
  AddGroup(r, "trace", "Traces named with --trace", "The files given on the command line.", true,
           &s);
  AddGroup(r, "scenario", "Scenarios",
           "The acceptance traces, scenarios/*.hmm (collapsed; a failing one is open).", false, &s);
  return s;
}

}  // namespace hmm::cli::report
