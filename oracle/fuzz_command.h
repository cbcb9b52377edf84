// File: oracle/fuzz_command.h
//
// The verbs of `hmmref oracle` that ./hmmref oracle fuzz calls
// (oracle/fuzz_command.cc).

#ifndef HMMREF_ORACLE_FUZZ_COMMAND_H_
#define HMMREF_ORACLE_FUZZ_COMMAND_H_

#include <cstdint>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "oracle/host.h"
#include "props/op.h"

namespace hmm::cli {

struct OracleGenOptions {
  std::string out_dir;
  std::string suite = "mirror";
  uint64_t traces = 100;
  uint64_t seed = 1;
  uint64_t steps = 40;
  oracle::OracleProfile profile = oracle::OracleProfile::kLinux61;
};

int OracleGen(const OracleGenOptions& options, Io& io);
int OracleCandidates(const std::string& out_dir, const std::string& file,
                     const std::vector<props::Op>& ops, Io& io);

}  // namespace hmm::cli

#endif  // HMMREF_ORACLE_FUZZ_COMMAND_H_
