// File: oracle/fuzz.h
//
// `hmmref oracle gen` and `hmmref oracle candidates`: the program's half of
// `./hmmref oracle fuzz` (oracle/fuzz.sh, docs/oracle.md). gen writes random
// traces drawn from the property suites' generators, restricted to what Linux
// 6.1 exposes to user space; candidates writes the smaller traces one round of
// shrinking tries on the kernel (every trace with one run of lines removed).
// Both are deterministic: the same arguments write the same files.

#ifndef HMMREF_ORACLE_FUZZ_H_
#define HMMREF_ORACLE_FUZZ_H_

#include <cstdint>
#include <string>
#include <vector>

#include "oracle/host.h"
#include "props/op.h"

namespace hmm::oracle {

// Whether a line of this kind reaches the kernel (oracle/lower.cc lowers it):
// the CPU operations a process can do, and the dummy device's file and ioctls.
bool KernelExposed(props::OpKind kind);

// Trace number `index` of the fuzz run `seed`: drawn from the generators of
// `suite` ("mirror" or "migrate") with at most `max_steps` steps, then every
// line that does not reach the kernel dropped (set-up lines included: the
// model runs with the default machine, as the guest is fixed). Under the
// linux-6.1 profile the trace also ends before the first line the model
// predicts to oops Linux 6.1 (D12): each such line costs a reboot, and
// `oracle run` checks the prediction on the corpus.
// Returns false, with *error set, for an unknown suite.
bool GenKernelTrace(const std::string& suite, uint64_t seed, uint64_t index,
                    uint64_t max_steps, OracleProfile profile, std::vector<props::Op>* ops,
                    std::string* error);

// The candidates of one shrinking round for `ops`: for each run length n/2,
// n/4, ..., 1 (n = ops.size()) and each start that is a multiple of it, ops
// with that run removed; shortest first, duplicates dropped, never empty.
std::vector<std::vector<props::Op>> ShrinkCandidates(const std::vector<props::Op>& ops);

}  // namespace hmm::oracle

#endif  // HMMREF_ORACLE_FUZZ_H_
