// File: props/trace_shrink.h
//
// A trace-level shrinking pass that runs after rapidcheck's own shrinking
// (docs/shrinking.md). rapidcheck shrinks the generator's choices; this pass
// works on the trace itself: it deletes steps and set-up lines and moves the
// numbers of each op toward small canonical values, keeping a candidate only
// when it still fails the same way. Greedy and deterministic, repeated to a
// fixed point or until its budget is spent. Never returns a longer trace.

#ifndef HMMREF_PROPS_TRACE_SHRINK_H_
#define HMMREF_PROPS_TRACE_SHRINK_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "props/op.h"

namespace hmm::props {

struct ShrinkLimits {
  double seconds = 2.0;     // wall-clock budget
  uint64_t max_runs = 2000; // calls of the predicate
};

struct ShrinkStats {
  uint64_t runs = 0;        // predicate calls
  uint64_t accepted = 0;    // candidates kept
  bool budget_exhausted = false;
};

// Whether a candidate still fails the way the original did.
using StillFails = std::function<bool(const std::vector<Op>&)>;

// For a candidate: 0 when it does not fail the required way, else the number
// of steps up to and including its failing step (the rest never ran, and is
// dropped). The bool predicate is the special case "fails at its last step".
using FailingPrefix = std::function<size_t(const std::vector<Op>&)>;

std::vector<Op> ShrinkTrace(std::vector<Op> ops, const StillFails& still_fails,
                            const ShrinkLimits& limits = {}, ShrinkStats* stats = nullptr);

std::vector<Op> ShrinkTrace(std::vector<Op> ops, const FailingPrefix& failing_prefix,
                            const ShrinkLimits& limits = {}, ShrinkStats* stats = nullptr);

// "RunTrace(candidate) fails at its last step with the same `check` as
// RunTrace(original)". `original` must fail.
StillFails SameFailure(const std::vector<Op>& original);

// As SameFailure, but a candidate may fail earlier (same check): returns the
// length of its failing prefix. Lets the pass drop steps after a new failing step.
FailingPrefix SameFailurePrefix(const std::vector<Op>& original);

}  // namespace hmm::props

#endif  // HMMREF_PROPS_TRACE_SHRINK_H_
