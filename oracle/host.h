// File: oracle/host.h
//
// The host side of the kernel oracle (docs/oracle.md): runs a parsed .hmm
// trace on the model, lowers each line to the guest runner's numbers-only
// format (oracle/guest_runner.cc) using the model's results where the kernel
// needs them (the addresses mmap chose, the pids and mirror ids), and compares
// the guest's results with the model's, line by line.
//
// Compiled into the hmmref program (cli/BUILD lists these files), since the
// model and props/apply.h are visible to //cli only.

#ifndef HMMREF_ORACLE_HOST_H_
#define HMMREF_ORACLE_HOST_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "props/op.h"

namespace hmm::oracle {

// What happens to one trace line on the kernel side.
enum class LineFate {
  kRun,          // sent to the guest; compared
  kUnsupported,  // the kernel cannot express it (reason says why)
  kNotRun,       // nothing to ask the kernel: no such process or mirror in the model
};

struct LoweredLine {
  props::Op op;                 // the trace line (expect included)
  props::OpResult model;        // the model's result
  LineFate fate = LineFate::kRun;
  std::string lowered;          // "LINE PID VERB ARGS" when kRun
  std::string reason;           // when not kRun
  std::string note;             // kRun: how the lowering changed the line, if it did
  // kUnsupported only: whether skipping it can change what later lines see
  // (devmap, pin, commit, ram, profile...); after such a line a difference
  // is counted apart, as an artefact of the skip.
  bool changes_state = false;
  // kRun, under the linux-6.1 profile (model::KernelSplat): the model predicts
  // the driver's WARNING in the kernel's log at this line (D13), or an oops
  // (D12: the guest stops here; the lines after it are not sent).
  bool expect_warning = false;
  bool expect_oops = false;
};

// Which profile the model runs a trace with.
enum class OracleProfile {
  kLinux61,  // linux-6.1 whatever the trace says (`oracle run`'s default)
  kTrace,    // the trace's own `profile` line, default without one (--profile trace)
};

struct LoweredTrace {
  std::vector<LoweredLine> lines;
  uint64_t max_pid = 0;  // the largest trace pid a line creates
};

// Runs `ops` on the model (set-up lines configure it; `profile` picks the
// semantics profile) and lowers every line. Under linux-6.1, a line where 6.1
// reads or writes memory its driver freed (D15) and every line after it are
// kNotRun, and so is every line after a predicted oops.
LoweredTrace Lower(const std::vector<props::Op>& ops, OracleProfile profile);

// The guest file for one trace: "trace NAME MAXPID", the kRun lines, "end".
std::string FormatLowered(const LoweredTrace& trace, const std::string& name);

// What the guest reported for one trace.
struct KernelTrace {
  bool started = false;   // a "T NAME" line
  bool finished = false;  // its "E NAME" line
  std::string abort;      // "A LINE why" when the runner gave up on the trace
  std::map<int, std::string> results;                // line -> "ok ..." / "err E..."
  std::map<int, std::vector<std::string>> kernel_log;  // line -> warnings logged during it
};

// Parses results channels ("T", "R", "K", "A", "E" lines; several boots may
// be concatenated): trace name -> what it reported.
std::map<std::string, KernelTrace> ParseResults(const std::string& text);

struct CompareTally {
  size_t compared = 0;
  size_t differences = 0;        // unexplained: matching no known divergence
  size_t known = 0;              // differences that a known divergence explains
  size_t after_unsupported = 0;  // differences after a state-changing unsupported line
  size_t unsupported = 0;
  size_t not_run = 0;
  size_t missing = 0;   // kRun lines without a kernel result
  size_t warnings = 0;  // kernel log lines
  size_t known_crashes = 0;  // traces that stopped at a known kernel crash (kind "crash")
  size_t predicted_oops = 0;      // lines that oopsed, as the linux-6.1 profile predicts
  size_t expected_warnings = 0;   // kernel log lines the linux-6.1 profile predicts
  std::vector<int> unexplained;  // the trace lines counted in differences or missing
};

// A known divergence (oracle/known_divergences.txt) at one line of a trace.
struct KnownLine {
  std::string id;        // "D5"
  std::string kind;      // what differs ("errno", "faults", "data"...; "crash": the
                         // guest stopped at this line); "" for anything
  int source_line = 0;   // its line in the known-divergences file
  bool compared = false;  // set by CompareTrace when the kernel's result is there
  bool matched = false;   // set by CompareTrace when the line differs as described
};

// Prints each line with the kernel's and the model's result; adds to *tally.
// A differing line listed in *known (line -> entry; may be null) is printed
// as "known ID" and counted in tally->known, and its entry marked matched.
void CompareTrace(const LoweredTrace& trace, const KernelTrace& kernel,
                  std::map<int, KnownLine>* known, std::ostream& out, CompareTally* tally);

// "fill:0x5a*8192", "hex:6869" or a truncated run list, for display.
std::string ShortData(const std::vector<uint8_t>& data);

// Bytes in the guest runner's run notation ("5a*24576" for 8 or more equal
// bytes, hex otherwise, joined by ','), and back (oracle/host.cc).
std::string Runs(const std::vector<uint8_t>& d);
std::vector<uint8_t> FromRuns(const std::string& s);

}  // namespace hmm::oracle

#endif  // HMMREF_ORACLE_HOST_H_
