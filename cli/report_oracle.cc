// File: cli/report_oracle.cc
//
// Reads an `oracle run` output into the agreement table (cli/report_oracle.h).

#include "cli/report_oracle.h"

#include <regex>
#include <sstream>

#include "cli/output.h"

namespace hmm::cli::report {
namespace {

// "FILE: 21 compared, 0 differ, 0 known, 0 unsupported, 0 not run ..."
bool ParseTraceLine(const std::string& line, OracleTrace* t) {
  static const std::regex kTrace(
      R"(^(\S+\.hmm): (\d+) compared, (\d+) differ, (\d+) known, (\d+) unsupported, (\d+) not run)");
  std::smatch m;
  if (!std::regex_search(line, m, kTrace)) return false;
  t->file = m[1];
  t->compared = std::stoull(m[2]);
  t->differ = std::stoull(m[3]);
  t->known = std::stoull(m[4]);
  t->unsupported = std::stoull(m[5]);
  t->not_run = std::stoull(m[6]);
  t->crashed = line.find("the guest stopped") != std::string::npos;
  return true;
}

// What differs on a per-line result: the first word of its last "(...)".
std::string KindOf(const std::string& line) {
  size_t open = line.rfind("  (");
  if (open == std::string::npos) return "other";
  std::string inside = line.substr(open + 3);
  if (inside.find("crashed") != std::string::npos) return "crash";
  size_t end = inside.find_first_of(" ;)");
  return inside.substr(0, end);
}

// "   24: known D8     mirror 4 1  (errno)" and the DIFFERS/differs* lines.
void ParseResultLine(const std::string& line, OracleAgreement* a) {
  static const std::regex kResult(R"(^\s+\d+: (known (D\d+)|DIFFERS|differs\*)\s)");
  std::smatch m;
  if (!std::regex_search(line, m, kResult)) return;
  const std::string kind = KindOf(line);
  if (m[2].matched) {
    ++a->known_by_kind[kind];
    ++a->known_by_id[m[2]];
  } else if (m[1] == "DIFFERS") {
    ++a->unexplained_by_kind[kind];
  } else {
    ++a->after_unsupported_by_kind[kind];
  }
}

uint64_t Sum(const std::vector<OracleTrace>& ts, uint64_t OracleTrace::*field) {
  uint64_t n = 0;
  for (const OracleTrace& t : ts) n += t.*field;
  return n;
}

Block KindTable(const OracleAgreement& a) {
  std::map<std::string, bool> kinds;
  for (const auto* m : {&a.known_by_kind, &a.unexplained_by_kind, &a.after_unsupported_by_kind}) {
    for (const auto& [k, n] : *m) kinds[k] = true;
  }
  auto at = [](const std::map<std::string, uint64_t>& m, const std::string& k) {
    auto it = m.find(k);
    return FormatCount(it == m.end() ? 0 : it->second);
  };
  DocTable t;
  t.head = {"what differs", "known (docs/divergences.md)", "unexplained",
            "after an unsupported line"};
  for (const auto& [k, unused] : kinds) {
    auto it = a.unexplained_by_kind.find(k);
    bool bad = it != a.unexplained_by_kind.end() && it->second > 0;
    t.rows.push_back({{k}, {at(a.known_by_kind, k)},
                      Cell{at(a.unexplained_by_kind, k), bad ? "bad" : "ok"},
                      {at(a.after_unsupported_by_kind, k)}});
  }
  return TableBlock(std::move(t));
}

Block TraceTable(const OracleAgreement& a) {
  DocTable t;
  t.head = {"trace", "compared", "unexplained", "known", "unsupported", "not run"};
  for (const OracleTrace& tr : a.traces) {
    Cell verdict{FormatCount(tr.differ), tr.differ > 0 ? "bad" : "ok"};
    t.rows.push_back({{tr.file + (tr.crashed ? " (kernel crash)" : "")},
                      {FormatCount(tr.compared)}, verdict, {FormatCount(tr.known)},
                      {FormatCount(tr.unsupported)}, {FormatCount(tr.not_run)}});
  }
  return TableBlock(std::move(t));
}

}  // namespace

bool ParseOracleRun(const std::string& text, OracleAgreement* out, std::string* error) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    OracleTrace t;
    if (ParseTraceLine(line, &t)) {
      out->traces.push_back(t);
    } else if (line.find(" lines compared, ") != std::string::npos) {
      out->totals = line;
    } else {
      ParseResultLine(line, out);
    }
  }
  if (out->traces.empty() && out->totals.empty()) {
    *error = "no 'FILE: N compared, ...' line and no summary line: not the output of "
             "'hmmref oracle run'";
    return false;
  }
  out->unexplained = Sum(out->traces, &OracleTrace::differ);
  return true;
}

Section OracleSection(const OracleAgreement& a) {
  Section s{"oracle", "Agreement with Linux 6.1"};
  if (a.source.empty()) {
    s.blocks.push_back(Paragraph(
        "Not included. Run the corpus on the real kernel (docs/oracle.md) and pass its output: "
        "./hmmref oracle run scenarios/*.hmm oracle/traces/*.hmm > oracle.txt; "
        "hmmref report --oracle oracle.txt --out DIR"));
    return s;
  }
  s.blocks.push_back(Paragraph(
      "From " + a.source + ": " + FormatCount(a.traces.size()) + " traces, " +
      FormatCount(Sum(a.traces, &OracleTrace::compared)) + " lines compared, " +
      FormatCount(Sum(a.traces, &OracleTrace::known)) + " known differences, " +
      FormatCount(a.unexplained) + " unexplained. " +
      (a.unexplained == 0 ? "Every difference is documented in docs/divergences.md."
                          : "Unexplained differences are bugs: in the model or the kernel.")));
  if (!a.totals.empty()) s.blocks.push_back(Pre(a.totals));
  s.blocks.push_back(Heading("Differing lines by what differs"));
  s.blocks.push_back(KindTable(a));
  DocTable ids;
  ids.head = {"divergence", "lines"};
  for (const auto& [id, n] : a.known_by_id) ids.rows.push_back({{id}, {FormatCount(n)}});
  s.blocks.push_back(Heading("Known differences by divergence"));
  s.blocks.push_back(TableBlock(std::move(ids)));
  s.blocks.push_back(DetailsBegin("Per trace", a.unexplained > 0));
  s.blocks.push_back(TraceTable(a));
  s.blocks.push_back(DetailsEnd());
  return s;
}

}  // namespace hmm::cli::report
