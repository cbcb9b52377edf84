// File: props/concurrent_shrink.h
//
// The race suite's own shrinking pass, after rapidcheck's (the counterpart of
// props/trace_shrink.h for traces). rapidcheck shrinks a case's parts one at
// a time, but a schedule byte means "move k actors on" among the actors that
// exist, so dropping an actor changes what every later byte picks, and
// rapidcheck keeps actors the failure does not need. This pass tries, on
// the whole case, greedily and until a round changes nothing:
//   1. dropping an actor;
//   2. dropping an actor's operation (after 1 or 2, with two actors left and
//      the old schedule no longer failing: schedules that switch actors at
//      up to three of the first 12 choices, fewest switches first);
//   3. dropping a prologue operation (set-up lines stay);
//   4. cutting the schedule to the bytes the run used, dropping a byte,
//      lowering a byte;
//   5. halving an operation of two pages to one;
// keeping a candidate when RunConcurrent still fails the same named check.
// Then the actors are renamed for their new places ("cpu0", "dev1").

#ifndef HMMREF_PROPS_CONCURRENT_SHRINK_H_
#define HMMREF_PROPS_CONCURRENT_SHRINK_H_

#include <cstdint>
#include <string>

#include "props/concurrent.h"

namespace hmm::props {

struct CaseShrinkStats {
  uint64_t runs = 0;      // candidates run
  uint64_t accepted = 0;  // of which kept
};

// `c` fails check `check`; returns a case no bigger that fails it too.
ConcurrentCase ShrinkCase(const ConcurrentCase& c, const std::string& check,
                          uint64_t max_runs = 400, CaseShrinkStats* stats = nullptr);

}  // namespace hmm::props

#endif  // HMMREF_PROPS_CONCURRENT_SHRINK_H_
