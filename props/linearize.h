// File: props/linearize.h
//
// The linearizability check of the concurrency suites (issue 7): the model
// is the oracle for a concurrent run of the impl. A run yields a history of
// completed operations, each with its actor, its invocation and response
// times, the props::Op and the result the impl returned. The history is
// linearizable when some total order of its operations
//   1. respects real time: an operation that responded before another was
//      invoked comes first (equal times count as overlapping), and
//   2. applied one by one to a fresh model::Kernel (built from the set-up
//      lines, then the unchecked set-up operations), gives every observed
//      result: OpResult::operator==, the comparison props/runner.h makes
//      between model and impl, unless the caller gives its own,
//   3. and, when a final check is given, ends in a model state it accepts
//      (the caller compares the impl's state at the quiescent point).
//
// The search is Wing & Gong's, with Lowe's memoization: depth first over
// "which operation is linearized next" among those no pending operation must
// precede, backtracking by copying the model (value semantics), and never
// expanding the same (set of linearized operations, model state) twice. A
// history of 12 operations over 3 sequential actors has at most 5^3 sets (a
// prefix of each actor's), so it checks in milliseconds; even 12 operations
// that all overlap one another (any of 12! orders) are refuted within some
// 20,000 configurations, tens of milliseconds (props/linearize_test.cc);
// max_configurations bounds the rest.
//
// On failure the explanation names every operation, the longest prefix that
// linearizes, and, after it, what the model returns for each operation that
// may come next, beside what the impl returned.
//
// Thread safety: CheckLinearizable and FormatHistory are pure functions of
// their arguments. HistoryRecorder is thread-safe.

#ifndef HMMREF_PROPS_LINEARIZE_H_
#define HMMREF_PROPS_LINEARIZE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "model/kernel.h"
#include "props/op.h"

namespace hmm::props {

// One completed operation of a concurrent run.
struct HistoryOp {
  int actor = 0;
  uint64_t invoke = 0;   // logical time it was invoked
  uint64_t respond = 0;  // logical time it returned; > invoke
  Op op;
  OpResult result;  // what the impl returned
};

// The most operations a history may hold (the linearized set is a bitmask).
constexpr size_t kMaxHistoryOps = 64;

struct LinearizeInput {
  // Set-up lines first (props/op.h IsSetupKind: folded into the Config), then
  // operations applied in order before the history, their results unchecked.
  std::vector<Op> setup;
  std::vector<HistoryOp> history;  // any order; completed operations only
  // Optional: whether the model's result for `op` explains the impl's;
  // unset, OpResult::operator== (what props/runner.h compares). For results
  // a concurrent run may legitimately vary (a dummy-device ioctl's retry
  // count `faults`, when an invalidation forced an extra round).
  std::function<bool(const Op& op, const OpResult& model, const OpResult& impl)> same_result;
  // Optional: per history index, the operations it may stand for (the
  // search tries each in turn when it linearizes that entry, the result
  // compared with the entry's); empty or absent: the entry's own op. The
  // memo stays sound: an entry's choice is made once, when it is applied.
  std::vector<std::vector<Op>> alternatives;
  // Optional: the model state a complete order must end in; "" accepts,
  // anything else is the reason it does not (shown in the explanation).
  std::function<std::string(const model::Kernel&)> final_check;
};

struct LinearizeOptions {
  uint64_t max_configurations = 1000000;  // distinct (set, state) pairs expanded
};

struct LinearizeResult {
  bool ok = false;
  bool budget_exhausted = false;  // not ok because the search was cut short
  // ok: a witness, indices into input.history in linearization order, and
  // for each the index of the alternative it stood for (0: its own op or
  // the first alternative).
  std::vector<size_t> order;
  std::vector<size_t> chosen;
  // not ok: the longest linearizable prefix found.
  std::vector<size_t> longest_prefix;
  uint64_t configurations = 0;  // expanded
  uint64_t applied = 0;         // model operations applied
  std::string explanation;      // not ok: readable, multi-line
  model::State final_state;     // ok: the model after the witness
};

LinearizeResult CheckLinearizable(const LinearizeInput& input,
                                  const LinearizeOptions& options = {});

// "  #3 cpu1 [4, 9] dread 1 0x10000000 1 -> ok cpages=1 faults=0 hex:..." per
// operation, in input order; `names` gives the actors' names (else "actor N");
// `result_text` prints a result (else every part of it, bytes in full).
std::string FormatHistory(const std::vector<HistoryOp>& history,
                          const std::vector<std::string>& names = {},
                          const std::function<std::string(const OpResult&)>& result_text = {});

// Records a history from actor threads: Invoke when an operation starts,
// Respond with its result when it returns. Times come from one counter, so
// they are a total order consistent with real time. Thread-safe.
class HistoryRecorder {
 public:
  size_t Invoke(int actor, const Op& op);  // returns the entry's token
  void Respond(size_t token, const OpResult& result);
  // The completed entries, in invocation order (pending ones are left out).
  std::vector<HistoryOp> Completed() const;

 private:
  mutable std::mutex lock_;
  uint64_t clock_ = 0;                // guarded by lock_
  std::vector<HistoryOp> entries_;    // guarded by lock_
  std::vector<bool> done_;            // guarded by lock_
};

}  // namespace hmm::props

#endif  // HMMREF_PROPS_LINEARIZE_H_
