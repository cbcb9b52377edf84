// File: props/concurrent_coverage.h
//
// What the race suite's generated cases exercised, in props/coverage.h's
// Coverage shape so that `hmmref check` and `hmmref report` print it like
// the other suites': the actors' commands by the impl's result, and the race
// classes below, each decided from a run's history and interleaving.

#ifndef HMMREF_PROPS_CONCURRENT_COVERAGE_H_
#define HMMREF_PROPS_CONCURRENT_COVERAGE_H_

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "props/concurrent.h"
#include "props/coverage.h"

namespace hmm::props {

// The race suite's state classes, in the order they print
// (docs/coverage.md; props/coverage.h CoverageClasses("race") returns them).
// RaceCoverage::Result() adds one more, with minimum 0: the runs whose
// linearizability search hit its bound (props/concurrent.h), not a goal but
// shown.
const std::vector<CoverageClass>& RaceCoverageClasses();

class RaceCoverage {
 public:
  // One generated case and its run (shrinking is not added).
  void Add(const ConcurrentReport& r);
  Coverage Result() const;

 private:
  uint64_t sequences_ = 0;
  uint64_t steps_ = 0;
  std::map<std::pair<OpKind, Errno>, uint64_t> commands_;
  std::vector<uint64_t> class_sequences_ = std::vector<uint64_t>(RaceCoverageClasses().size() + 1);
  std::vector<uint64_t> class_steps_ = std::vector<uint64_t>(RaceCoverageClasses().size() + 1);
};

// Per class (RaceCoverageClasses(), then the undecided one), the steps
// (history operations or scheduler steps) at which it held in one run; 0
// where it did not. For tests.
std::vector<uint64_t> ClassifyRace(const ConcurrentReport& r);

}  // namespace hmm::props

#endif  // HMMREF_PROPS_CONCURRENT_COVERAGE_H_
