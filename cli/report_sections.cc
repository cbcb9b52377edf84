// File: cli/report_sections.cc
//
// The report's sections, built from Results: header, invariant traceability
// matrix, lemmas, suites with coverage, diagrams, the race counterexample
// (when there is one), traces.

#include <map>
#include <string>
#include <vector>

#include "cli/output.h"
#include "cli/report.h"
#include "model/invariants.h"
#include "props/coverage.h"

namespace hmm::cli::report {
namespace {

std::string Count(size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string Join(const std::vector<std::string>& items, const std::string& sep) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : sep) + item;
  return text;
}

bool Proved(const solver::LemmaResult& r) { return r.status == solver::LemmaStatus::kProved; }

Cell ResultCell(bool ok, const std::string& ok_text, const std::string& bad_text) {
  return ok ? Cell{ok_text, "ok"} : Cell{bad_text, "bad"};
}

size_t FailedTraces(const Results& r) {
  size_t n = 0;
  for (const TraceRun& t : r.traces) n += (!t.error.empty() || !t.replay.ok) ? 1 : 0;
  return n;
}

Section Header(const Options& o, const Results& r) {
  Section s{"summary", "Summary"};
  DocTable t;
  t.head = {"item", "value"};
  t.rows.push_back({{"hmmref version"}, {kVersion}});
  t.rows.push_back({{"generated"}, {r.date}});
  t.rows.push_back({{"seed"}, {std::to_string(o.seed)}});
  t.rows.push_back({{"runs"}, {std::to_string(o.runs) + " sequences per suite, up to " +
                               std::to_string(o.max_steps) + " steps each"}});
  t.rows.push_back({{"profile"}, {o.profile.empty() ? "each suite's own mix" : o.profile}});
  bool ok = Verdict(r).rfind("ok", 0) == 0;
  t.rows.push_back({{"verdict"}, ResultCell(ok, Verdict(r), Verdict(r))});
  t.rows.push_back({{"traces replayed"},
                    ResultCell(FailedTraces(r) == 0, Count(r.traces.size(), "trace") + ", all agree",
                               Count(r.traces.size(), "trace") + ", " +
                                   std::to_string(FailedTraces(r)) + " failing (see Traces)")});
  s.blocks.push_back(TableBlock(std::move(t)));
  s.blocks.push_back(Paragraph(
      "The verdict covers the property suites and the lemmas, as hmmref check does; a stored "
      "counterexample that still fails is shown under Traces without changing it. Reproduce: " +
      CheckCommand(o, "") + "."));
  return s;
}

// For each suite that failed, the check its counterexample fails ("result",
// an invariant name, ...), so the matrix can name the invariant it broke.
std::map<std::string, std::string> FailedChecks(const Results& r) {
  std::map<std::string, std::string> checks;  // suite -> check
  for (const props::SuiteResult& s : r.suites) {
    if (!s.passed && !s.failed_check.empty()) checks[s.name] = s.failed_check;
  }
  return checks;
}

// The suite column of an invariant's row: passed by all, or who failed it.
Cell SuiteCell(const std::string& invariant, const Results& r,
               const std::map<std::string, std::string>& checks) {
  std::vector<std::string> broke, other;
  for (const props::SuiteResult& s : r.suites) {
    if (s.passed) continue;
    auto it = checks.find(s.name);
    (it != checks.end() && it->second == invariant ? broke : other).push_back(s.name);
  }
  if (!broke.empty()) return {"FAILED (violated in " + Join(broke, ", ") + ")", "bad"};
  if (!other.empty()) return {"held; suite " + Join(other, ", ") + " failed another check", "warn"};
  return {"passed", "ok"};
}

// The lemmas whose `invariant` is `name`, and their statuses.
std::pair<std::vector<std::string>, Cell> LemmasOf(const std::string& name, const Results& r) {
  std::vector<std::string> names, statuses;
  bool ok = true;
  for (size_t i = 0; i < solver::AllLemmas().size() && i < r.lemmas.size(); ++i) {
    if (solver::AllLemmas()[i].invariant != name) continue;
    names.push_back(r.lemmas[i].name);
    statuses.push_back(solver::LemmaStatusWord(r.lemmas[i].status));
    ok = ok && Proved(r.lemmas[i]);
  }
  if (names.empty()) return {{"—"}, Cell{"—"}};
  return {names, Cell{Join(statuses, ", "), ok ? "ok" : "bad"}};
}

Section Traceability(const Results& r) {
  Section s{"traceability", "Invariant traceability matrix"};
  std::vector<std::string> suites;
  for (const props::SuiteInfo& info : r.suite_infos) suites.push_back(info.name);
  s.blocks.push_back(Paragraph(
      "Every model invariant (model/invariants.h) is checked after every step of every "
      "generated sequence by every suite (" + Join(suites, ", ") +
      ") and of every replayed trace; a lemma is listed when its invariant field names the "
      "invariant (docs/invariants.md)."));
  DocTable t;
  t.head = {"invariant", "statement", "kernel source", "checked by", "suite result",
            "lemma(s)", "lemma result"};
  t.style = "wide matrix";
  const auto checks = FailedChecks(r);
  for (const model::InvariantInfo& inv : model::AllInvariants()) {
    auto lemmas = LemmasOf(inv.name, r);
    t.rows.push_back({{inv.name}, {inv.statement}, {inv.source},
                      {Join(suites, ", ") + " (every step)"},
                      SuiteCell(inv.name, r, checks), {Join(lemmas.first, ", ")},
                      lemmas.second});
  }
  s.blocks.push_back(TableBlock(std::move(t)));
  return s;
}

// Invariants named by lemmas that are not model invariants: the encoding
// facts of impl/pte.h, proved for all values rather than checked per step.
Block LemmaOnlyInvariants(const Results& r) {
  std::map<std::string, bool> model_names;
  for (const model::InvariantInfo& inv : model::AllInvariants()) model_names[inv.name] = true;
  DocTable t;
  t.head = {"invariant", "lemma(s)", "lemma result"};
  std::map<std::string, bool> seen;
  for (const solver::Lemma& l : solver::AllLemmas()) {
    if (l.invariant.empty() || model_names.count(l.invariant) || seen[l.invariant]) continue;
    seen[l.invariant] = true;
    auto lemmas = LemmasOf(l.invariant, r);
    t.rows.push_back({{l.invariant}, {Join(lemmas.first, ", ")}, lemmas.second});
  }
  return TableBlock(std::move(t));
}

}  // namespace

std::string CheckCommand(const Options& o, const std::string& suite) {
  return "hmmref check" + (suite.empty() ? "" : " --suite " + suite) + " --seed " +
         std::to_string(o.seed) + " --runs " + std::to_string(o.runs) + " --max-steps " +
         std::to_string(o.max_steps) + (o.profile.empty() ? "" : " --profile " + o.profile);
}

std::string Verdict(const Results& r) {
  std::vector<std::string> failed;
  for (const props::SuiteResult& s : r.suites) {
    if (!s.passed) failed.push_back("suite " + s.name);
  }
  for (const solver::LemmaResult& l : r.lemmas) {
    if (!Proved(l)) failed.push_back("lemma " + l.name);
  }
  if (!failed.empty()) return "FAILED (" + Join(failed, ", ") + ")";
  return "ok (" + Count(r.suites.size(), "suite") + " passed, " +
         Count(r.lemmas.size(), "lemma") + " proved)";
}

Document BuildDocument(const Options& o, const Results& r) {
  Document doc;
  doc.title = "hmmref " + std::string(kVersion) + " design review";
  doc.sections.push_back(Header(o, r));
  Section matrix = Traceability(r);
  matrix.blocks.push_back(Heading("Invariants proved by lemmas only"));
  matrix.blocks.push_back(Paragraph(
      "Encoding invariants of impl/pte.h, proved by Z3 for all values rather than checked "
      "per step."));
  matrix.blocks.push_back(LemmaOnlyInvariants(r));
  doc.sections.push_back(std::move(matrix));
  doc.sections.push_back(LemmaSection(r));
  doc.sections.push_back(SuiteSection(r));
  Section diagrams{"diagrams", "Diagrams"};
  diagrams.blocks = DiagramBlocks(o.dot);
  doc.sections.push_back(std::move(diagrams));
  if (!r.races.empty()) doc.sections.push_back(RaceSection(o, r));
  doc.sections.push_back(TraceSection(r));
  doc.sections.push_back(OracleSection(r.oracle));
  return doc;
}

}  // namespace hmm::cli::report
