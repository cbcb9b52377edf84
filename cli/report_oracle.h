// File: cli/report_oracle.h
//
// The report's agreement table (issue 8): how the model agrees with Linux
// 6.1 under QEMU, read from the saved output of
//   ./hmmref oracle run scenarios/*.hmm oracle/traces/*.hmm > oracle.txt
// and shown by `hmmref report --oracle oracle.txt`. The report never boots
// a kernel itself: the oracle needs a cached kernel build and minutes,
// a report seconds.
//
// The text is oracle/host.cc's (docs/oracle.md, "Reading the output"):
//   FILE: N compared, D differ, K known, U unsupported, R not run[, ...]
//      L: STATUS  LINE  (KIND[; ...])     STATUS: same, known ID, DIFFERS,
//                                         differs*, unsupported, not run
//   N lines compared, K known differences, U unexplained (...)
// Lines it does not recognise (kernel log, boot progress) are skipped.

#ifndef HMMREF_CLI_REPORT_ORACLE_H_
#define HMMREF_CLI_REPORT_ORACLE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cli/report_doc.h"

namespace hmm::cli::report {

struct OracleTrace {
  std::string file;
  uint64_t compared = 0;
  uint64_t differ = 0;  // unexplained
  uint64_t known = 0;
  uint64_t unsupported = 0;
  uint64_t not_run = 0;
  bool crashed = false;  // the guest stopped during this trace
};

struct OracleAgreement {
  std::string source;  // the file read; empty: no --oracle given
  std::vector<OracleTrace> traces;
  // Differing lines by what differs (errno, data, faults, cpages, crash,
  // address), each split into known, unexplained and after-unsupported.
  std::map<std::string, uint64_t> known_by_kind, unexplained_by_kind, after_unsupported_by_kind;
  std::map<std::string, uint64_t> known_by_id;  // "D10" -> lines
  std::string totals;  // the oracle's own summary line, verbatim
  uint64_t unexplained = 0;
};

// Parses `text`. False (with *error naming the line) when it holds no
// per-trace line and no summary line: not an oracle run's output.
bool ParseOracleRun(const std::string& text, OracleAgreement* out, std::string* error);

// The "Agreement with Linux 6.1" section; says how to produce the input
// when `a.source` is empty.
Section OracleSection(const OracleAgreement& a);

}  // namespace hmm::cli::report

#endif  // HMMREF_CLI_REPORT_ORACLE_H_
