// File: props/concurrent_format.cc
//
// The race suite's printing (props/concurrent.h): a case as .hmm lines and
// actors, a hazard in one sentence, and a run's whole report.

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <sstream>

#include "props/concurrent.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

std::string Hex(uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%" PRIx64, v);
  return text;
}

std::string Indent(const std::string& text, const std::string& by) {
  std::istringstream in(text);
  std::string out;
  for (std::string line; std::getline(in, line);) out += by + line + "\n";
  return out;
}

// Why the hazard could happen under `profile`, or why it must not.
std::string HazardCause(Profile profile) {
  if (profile == Profile::kV18) {
    return "the v18 profile invalidates mirrors after the page-table change "
           "(invalidate_range_end)";
  }
  return "the default profile invalidates mirrors before the page-table change "
         "(invalidate_range_start): the entry should have been gone, an impl bug";
}

// Bytes a reader can take in at a glance: up to 32, or any number of one value
// (printed as fill:).
bool ShortBytes(const std::vector<uint8_t>& data) {
  return data.size() <= 32 || std::all_of(data.begin(), data.end(),
                                          [&data](uint8_t b) { return b == data[0]; });
}

// A result as props/runner.h FormatResult prints it, long mixed bytes cut
// to their first 8: "ok cpages=1 faults=0 hex:6162000000000000... (4096 bytes)".
std::string ShortResult(OpResult r) {
  if (ShortBytes(r.data)) return FormatResult(r);
  std::string head;
  for (size_t i = 0; i < 8; ++i) {
    char byte[4];
    std::snprintf(byte, sizeof byte, "%02x", r.data[i]);
    head += byte;
  }
  const size_t n = r.data.size();
  r.data.clear();
  return FormatResult(r) + " hex:" + head + "... (" + std::to_string(n) + " bytes)";
}

// The prologue with each agreed result as its expectation (long mixed bytes
// left out: the line still asserts the rest).
std::vector<Op> WithResults(std::vector<Op> ops, const RunReport* run) {
  if (run == nullptr) return ops;
  for (const StepRecord& step : run->steps) {
    if (step.index == 0 || step.index > ops.size() || !(step.model == step.impl)) continue;
    Op& op = ops[step.index - 1];
    if (IsSetupKind(op.kind)) continue;  // no result
    op.expect = ExpectFromResult(op.kind, step.model);
    if (!ShortBytes(step.model.data)) op.expect->data.reset();
  }
  return ops;
}

// A problem line, cut after 400 characters (a result's bytes can be 4 KiB).
std::string Cut(const std::string& line) {
  if (line.size() <= 400) return line;
  return line.substr(0, 400) + "... (" + std::to_string(line.size() - 400) + " more characters)";
}

std::vector<std::string> ActorNames(const ConcurrentCase& c) {
  std::vector<std::string> names;
  for (const ActorOps& a : c.actors) names.push_back(a.name);
  return names;
}

std::string Count(size_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

}  // namespace

std::string ScheduleText(const std::vector<uint8_t>& schedule) {
  std::string text;
  for (uint8_t b : schedule) text += (text.empty() ? "" : " ") + std::to_string(b);
  return text;
}

std::string FormatHazard(const impl::DeviceAccessHazard& h, Profile profile) {
  return "hazard InvMirrorSubsetOfCpu: device " + std::to_string(h.device.value) + " (mirror " +
         std::to_string(h.mirror) + ") " + (h.write ? "wrote " : "read ") + Hex(h.addr) +
         " through its entry for pfn " + Hex(h.device_pfn) + " after the CPU changed it (cpu: " +
         h.cpu + ") -- " + HazardCause(profile);
}

std::string FormatCase(const ConcurrentCase& c, const RunReport* prologue_run) {
  std::ostringstream os;
  os << "prologue, run sequentially (.hmm lines):\n"
     << Indent(FormatTrace(WithResults(c.prologue, prologue_run), ""), "    ")
     << "actors, run concurrently (" << Count(ActorOpCount(c), "operation") << "):\n";
  for (size_t a = 0; a < c.actors.size(); ++a) {
    os << "  actor " << a << " " << c.actors[a].name << ":\n";
    for (Op op : c.actors[a].ops) {
      op.expect.reset();
      os << "    " << FormatOp(op) << "\n";
    }
  }
  const std::string bytes = ScheduleText(c.schedule);
  os << "schedule: " << (bytes.empty() ? "(empty: every choice is 0)" : bytes) << "  (" << Count(c.schedule.size(), "byte")
     << "; at a choice, 0 keeps the running actor, k moves k actors on)\n";
  return os.str();
}

std::string FormatConcurrentReport(const ConcurrentCase& c, const ConcurrentReport& r) {
  std::ostringstream os;
  os << FormatCase(c, &r.prologue);
  if (r.check == "prologue") {
    os << "\n" << FormatReport(r.prologue);
    return os.str();
  }
  os << "\ninterleaving (a line per stretch of one actor: where it resumed > each yield point "
        "it stopped at; '*' where a schedule byte chose):\n"
     << impl::sched::FormatSchedRun(r.run) << "\nhistory (logical times [invoke, respond]):\n"
     << FormatHistory(r.history, ActorNames(c), ShortResult);
  if (r.ok) {
    os << "all checks hold (" << Count(r.history.size(), "operation")
       << (r.undecided ? ": linearizability undecided within the search bound"
                       : " linearize")
       << "; no hazard; invariants hold at the end)\n";
    return os.str();
  }
  os << "\ncheck '" << r.check << "' fails:\n";
  for (const std::string& p : r.problems) os << "  " << Cut(p) << "\n";
  return os.str();
}

}  // namespace hmm::props
