// File: oracle/fuzz.cc
//
// Random traces for the kernel oracle and the candidates of a shrinking
// round (oracle/fuzz.h).

#include "oracle/fuzz.h"

#include <algorithm>
#include <set>

#include <rapidcheck.h>

#include "props/generators.h"
#include "props/trace.h"

namespace hmm::oracle {

using props::Op;
using props::OpKind;

bool KernelExposed(OpKind kind) {
  switch (kind) {
    case OpKind::kCreateProcess:
    case OpKind::kExit:
    case OpKind::kMmap:
    case OpKind::kMunmap:
    case OpKind::kMprotect:
    case OpKind::kMadviseDontneed:
    case OpKind::kRead:
    case OpKind::kWrite:
    case OpKind::kFork:
    case OpKind::kMremap:
    case OpKind::kMirror:
    case OpKind::kUnmirror:
    case OpKind::kDread:
    case OpKind::kDwrite:
    case OpKind::kSnapshot:
    case OpKind::kMigrateToDev:
    case OpKind::kMigrateToSys:
    case OpKind::kRelease: return true;
    default: return false;
  }
}

namespace {

// `body` after the fixed `prologue`.
rc::Gen<std::vector<Op>> After(std::vector<Op> prologue, rc::Gen<std::vector<Op>> body) {
  return rc::gen::map(std::move(body), [prologue](std::vector<Op> ops) {
    std::vector<Op> all = prologue;
    all.insert(all.end(), ops.begin(), ops.end());
    return all;
  });
}

// The rapidcheck generator of `suite` (false for an unknown one).
bool SuiteGen(const std::string& suite, uint64_t max_steps, rc::Gen<std::vector<Op>>* gen) {
  Config config;  // the guest's machine: the default profile and placement
  if (suite == "mirror") {
    *gen = After(props::MirrorPrologue(config), props::GenMirrorTrace(config, max_steps));
    return true;
  }
  if (suite == "migrate") {
    *gen = After(props::MigratePrologue(config), props::GenMigrateTrace(config, max_steps));
    return true;
  }
  return false;
}

}  // namespace

bool GenKernelTrace(const std::string& suite, uint64_t seed, uint64_t index,
                    uint64_t max_steps, OracleProfile profile, std::vector<Op>* ops,
                    std::string* error) {
  rc::Gen<std::vector<Op>> gen = rc::gen::just(std::vector<Op>());
  if (!SuiteGen(suite, max_steps, &gen)) {
    *error = "unknown suite '" + suite + "' (mirror, migrate)";
    return false;
  }
  // One stream per (seed, index); sizes cycle through rapidcheck's range so
  // that short and long traces alternate, as in a suite run.
  const rc::Random random(seed * 0x9e3779b97f4a7c15ull + index);
  const int size = static_cast<int>(rc::kNominalSize / 2 + index % (rc::kNominalSize / 2 + 1));
  ops->clear();
  for (const Op& op : gen(random, size).value()) {
    if (KernelExposed(op.kind)) ops->push_back(op);
  }
  if (profile != OracleProfile::kLinux61) return true;
  const LoweredTrace lowered = Lower(*ops, profile);
  for (size_t i = 0; i < lowered.lines.size(); ++i) {
    if (!lowered.lines[i].expect_oops) continue;
    ops->resize(i);
    break;
  }
  return true;
}

std::vector<std::vector<Op>> ShrinkCandidates(const std::vector<Op>& ops) {
  std::vector<std::vector<Op>> out;
  std::set<std::string> seen;
  for (size_t run = std::max<size_t>(ops.size() / 2, 1); run >= 1; run /= 2) {
    for (size_t start = 0; start + run <= ops.size(); start += run) {
      std::vector<Op> c(ops.begin(), ops.begin() + start);
      c.insert(c.end(), ops.begin() + start + run, ops.end());
      if (c.empty() || !seen.insert(props::FormatTrace(c, "")).second) continue;
      out.push_back(std::move(c));
    }
    if (run == 1) break;
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.size() < b.size(); });
  return out;
}

}  // namespace hmm::oracle
