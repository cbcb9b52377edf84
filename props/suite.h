// File: props/suite.h
//
// The property suites: rapidcheck generates and shrinks traces (vectors of
// Op) and props/runner.h checks each one. `hmmref check` and the gtest
// properties both call RunSuite.

#ifndef HMMREF_PROPS_SUITE_H_
#define HMMREF_PROPS_SUITE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "props/concurrent.h"
#include "props/coverage.h"
#include "props/op.h"

namespace hmm::props {

struct SuiteInfo {
  std::string name;         // e.g. "cpu"
  std::string description;  // one line
};

const std::vector<SuiteInfo>& Suites();

struct SuiteProgress {
  uint64_t sequences = 0;  // sequences finished so far
  uint64_t steps = 0;      // steps run so far (shrinking included)
  bool shrinking = false;
  uint64_t shrinks = 0;    // accepted shrinks so far
};

struct SuiteOptions {
  std::string name = "cpu";
  uint64_t runs = 2000;    // sequences to try
  uint64_t seed = 1;
  uint64_t max_steps = 60; // longest generated sequence
  // The semantics profile: "" lets each suite choose (the race suite runs the
  // default profile, devmem, mirror and migrate draw v18 one time in four),
  // "default" or "v18" forces it on every sequence of every suite.
  std::string profile;
  std::function<void(const SuiteProgress&)> progress;  // called now and then; may be empty
};

struct SuiteResult {
  std::string name;
  bool passed = false;
  bool unknown_suite = false;
  bool unknown_profile = false;  // SuiteOptions::profile is not "", "default" or "v18"
  uint64_t sequences = 0;
  uint64_t steps = 0;
  double seconds = 0;
  // On failure:
  std::vector<Op> counterexample;  // minimized: rapidcheck, then ShrinkTrace
  uint64_t original_length = 0;    // steps in the first failing sequence
  uint64_t rc_shrunk_length = 0;   // steps after rapidcheck's shrinking, before ShrinkTrace
  uint64_t shrinks = 0;            // rapidcheck's accepted shrinks
  uint64_t trace_shrink_runs = 0;      // candidates ShrinkTrace ran (props/trace_shrink.h)
  uint64_t trace_shrink_accepted = 0;  // of which kept
  double trace_shrink_seconds = 0;     // its time (included in `seconds`)
  std::string failure;             // FormatReport of the final minimized run
  // The race suite (props/concurrent.h), which has no trace: the minimized
  // case (`counterexample` stays empty; original_length and rc_shrunk_length
  // count the actors' operations; trace_shrink_* describe the case-level pass,
  // props/concurrent_shrink.h) and the check it fails; `failure` is its
  // FormatConcurrentReport. `failed_check` is set for every suite.
  ConcurrentCase race_case;
  std::string failed_check;
  // What the generated sequences exercised (props/coverage.h): every sequence
  // up to and including the first failing one; shrinking is not counted.
  Coverage coverage;
};

SuiteResult RunSuite(const SuiteOptions& options);

// "default" -> kDefault, "v18" -> kV18; false for anything else ("" included).
bool ParseProfileName(const std::string& name, Profile* out);

}  // namespace hmm::props

#endif  // HMMREF_PROPS_SUITE_H_
