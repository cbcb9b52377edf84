// File: oracle/fuzz_command.cc
//
// The verbs `hmmref oracle gen` and `hmmref oracle candidates` (oracle/fuzz.h),
// which ./hmmref oracle fuzz (oracle/fuzz.sh) calls around its boots.

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "oracle/fuzz_command.h"

#include "cli/commands.h"
#include "oracle/fuzz.h"
#include "props/trace.h"

namespace hmm::cli {

namespace {

bool WriteTrace(const std::string& path, const std::vector<props::Op>& ops,
                const std::string& header, Io& io) {
  std::ofstream f(path);
  f << props::FormatTrace(ops, header);
  if (f) return true;
  io.err << "hmmref: cannot write " << path << "\n";
  return false;
}

std::string Numbered(const std::string& dir, const std::string& stem, uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "-%05llu.hmm", static_cast<unsigned long long>(i));
  return dir + "/" + stem + buf;
}

}  // namespace

// gen: --traces N traces of --suite (mirror, migrate) with --steps M, seed --seed S,
// written to DIR/fuzz-S-IIIII.hmm; one line per trace on stdout.
int OracleGen(const OracleGenOptions& o, Io& io) {
  for (uint64_t i = 0; i < o.traces; ++i) {
    std::vector<props::Op> ops;
    std::string error;
    if (!oracle::GenKernelTrace(o.suite, o.seed, i, o.steps, o.profile, &ops, &error)) {
      io.err << "hmmref: " << error << "\n";
      return kExitUsage;
    }
    const std::string path = Numbered(o.out_dir, "fuzz-" + std::to_string(o.seed), i);
    const std::string header = "hmmref oracle gen --suite " + o.suite + " --seed " +
                               std::to_string(o.seed) + " --steps " + std::to_string(o.steps) +
                               ": trace " + std::to_string(i);
    if (!WriteTrace(path, ops, header, io)) return kExitUsage;
    io.out << path << " " << ops.size() << " lines\n";
  }
  return kExitOk;
}

// candidates: one shrinking round for FILE, written to DIR/cand-IIIII.hmm,
// shortest first; one line per candidate on stdout.
int OracleCandidates(const std::string& out_dir, const std::string& file,
                     const std::vector<props::Op>& ops, Io& io) {
  const std::vector<std::vector<props::Op>> cands = oracle::ShrinkCandidates(ops);
  for (size_t i = 0; i < cands.size(); ++i) {
    const std::string path = Numbered(out_dir, "cand", i);
    if (!WriteTrace(path, cands[i], "a shrinking candidate of " + file, io)) return kExitUsage;
    io.out << path << " " << cands[i].size() << " lines\n";
  }
  return kExitOk;
}

}  // namespace hmm::cli
