// File: cli/prove.cc
//
// `hmmref prove`: the Z3 lemmas of solver/ (solver/lemma.h), each with its
// status and time; the lemma table is shared with `hmmref check`.

#include <chrono>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/output.h"
#include "solver/lemma.h"

namespace hmm::cli {
namespace {

constexpr CommandHelp kHelp = {
    "prove",
    "hmmref prove [flags]",
    "Proves the Z3 lemmas (solver/): each asserts the negation of its claim and\n"
    "expects unsat. Prints one row per lemma: its name, its status (proved,\n"
    "failed, unknown when Z3 gives up within its resource limit, error) and the\n"
    "time it took. A failed lemma prints its counterexample: the values, one\n"
    "\"field = value\" per line, that break the claim.\n",
    "  hmmref prove\n"
    "  hmmref prove --list\n"
    "  hmmref prove --lemma NAME\n",
};


// "  " + each line of `text`.
std::string Indent(const std::string& text) {
  std::istringstream in(text);
  std::string out, line;
  while (std::getline(in, line)) out += "  " + line + "\n";
  return out;
}


// Prints a lemma's detail and counterexample under its name and status: for
// failures, and for lemmas whose proof is a witness.
void PrintFailure(const solver::LemmaResult& r, std::ostream& out) {
  out << "\n" << r.name << ": " << solver::LemmaStatusWord(r.status) << "\n";
  if (!r.detail.empty()) out << Indent(r.detail);
  if (!r.counterexample.empty()) out << "  counterexample:\n" << Indent(Indent(r.counterexample));
}

std::string LemmaNames() {
  std::string names;
  for (const solver::Lemma& lemma : solver::AllLemmas()) {
    names += (names.empty() ? "" : ", ") + lemma.name;
  }
  return names;
}

bool KnownLemma(const std::string& name) {
  for (const solver::Lemma& lemma : solver::AllLemmas()) {
    if (lemma.name == name) return true;
  }
  return false;
}

void PrintList(std::ostream& out) {
  for (const solver::Lemma& lemma : solver::AllLemmas()) {
    out << lemma.name << "\n  " << lemma.statement << "\n";
    if (!lemma.invariant.empty()) out << "  proves: " << lemma.invariant << "\n";
  }
}

}  // namespace

LemmaTally ProveLemmas(const std::string& only, bool quiet, Io& io) {
  LemmaTally tally;
  Table table({{"lemma"}, {"status"}, {"time", Table::Align::kRight}});
  std::vector<solver::LemmaResult> failures;  // and witnesses: printed below the table
  ProgressLine progress(io.err, io.err_is_tty && !quiet);
  size_t count = only.empty() ? solver::AllLemmas().size() : 1;
  for (const solver::Lemma& lemma : solver::AllLemmas()) {
    if (!only.empty() && lemma.name != only) continue;
    ++tally.total;
    progress.Update("proving " + lemma.name + " (" + std::to_string(tally.total) + "/" +
                        std::to_string(count) + ")",
                    /*force=*/true);
    solver::LemmaResult r = solver::RunLemma(lemma);
    bool proved = r.status == solver::LemmaStatus::kProved;
    if (!proved) tally.not_proved.push_back(r.name);
    if (!proved || (solver::HasWitness(r) && !quiet)) failures.push_back(r);
    if (!proved || !quiet) {
      table.AddRow({r.name, solver::LemmaStatusWord(r.status), FormatSeconds(r.seconds)});
    }
  }
  progress.Clear();
  if (!table.empty()) io.out << table.Render();
  for (const solver::LemmaResult& r : failures) PrintFailure(r, io.out);
  return tally;
}

int ProveCommand(const std::vector<std::string>& args, Io& io) {
  std::string only;
  bool quiet = false;
  bool list = false;
  Flags flags;
  flags.String("lemma", "NAME", &only, "prove only this lemma (see --list)");
  flags.Bool("list", &list, "list the lemmas with their statements; prove nothing");
  flags.Bool("quiet", &quiet, "print only the lemmas that are not proved, and the verdict");
  int status = ParseOrExit(kHelp, flags, args, /*max_positional=*/0, io);
  if (status >= 0) return status;
  if (list) {
    PrintList(io.out);
    return kExitOk;
  }
  if (!only.empty() && !KnownLemma(only)) {
    return Usage("prove", "unknown lemma '" + only + "' (lemmas: " + LemmaNames() + ")", io);
  }
  LemmaTally tally = ProveLemmas(only, quiet, io);
  size_t proved = tally.total - tally.not_proved.size();
  io.out << (quiet && tally.not_proved.empty() ? "" : "\n") << "hmmref prove: " << proved << " of "
         << tally.total << " lemmas proved\n";
  return tally.not_proved.empty() ? kExitOk : kExitFailed;
}

}  // namespace hmm::cli
