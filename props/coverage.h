// File: props/coverage.h
//
// What a property suite actually exercised: per-command counts (every step
// by operation kind and model errno) and per-suite state classes, named
// situations the suite is meant to reach ("COW break", "page_free logged").
// A CoverageObserver watches RunTrace's steps (props/runner.h StepObserver)
// and decides each class from cheap data: the op, the model's result, the
// model's state before and after the step (by reference, never copied), and
// a little memory kept across the steps of one trace. Each class states the
// fewest sequences of kCoverageBudget that must reach it; a suite below that
// is reported by `hmmref check` as a warning (docs/coverage.md).

#ifndef HMMREF_PROPS_COVERAGE_H_
#define HMMREF_PROPS_COVERAGE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/types.h"
#include "props/op.h"
#include "props/runner.h"

namespace hmm::props {

// The budget the classes' minimums are stated for: SuiteOptions().runs.
constexpr uint64_t kCoverageBudget = 2000;

// One state class of a suite.
struct CoverageClass {
  std::string name;         // as printed: "COW break (write to a page shared by 2+ PTEs)"
  std::string description;  // one line: exactly what is detected, and when
  uint64_t minimum = 0;     // of kCoverageBudget sequences, at least this many reach it
};

// The classes of a suite, in the order they are printed; empty for an unknown one.
const std::vector<CoverageClass>& CoverageClasses(const std::string& suite);

// Steps of one (operation kind, model errno).
struct CommandCount {
  OpKind kind = OpKind::kCreateProcess;
  Errno err = Errno::kOk;
  uint64_t steps = 0;
};

struct ClassCount {
  std::string name;
  uint64_t sequences = 0;  // sequences in which it held at some step
  uint64_t steps = 0;      // steps at which it held
  uint64_t minimum = 0;    // for kCoverageBudget sequences (CoverageClass::minimum)
};

struct Coverage {
  std::string suite;
  uint64_t sequences = 0;  // sequences observed (generation only: shrinking is not counted)
  uint64_t steps = 0;      // their steps, set-up lines included
  std::vector<CommandCount> commands;  // non-zero only, by kind, then errno
  std::vector<ClassCount> classes;     // in CoverageClasses(suite) order

  // The minimum for `sequences` sequences: minimum * sequences / kCoverageBudget,
  // rounded down (so a short run is not warned about a class it expects less
  // than once).
  static uint64_t ScaledMinimum(uint64_t minimum, uint64_t sequences);
  // The classes whose sequence count is below their scaled minimum, in order.
  std::vector<ClassCount> Missed() const;
  // The count of the class named `name`; 0 when there is none.
  uint64_t SequencesOf(const std::string& name) const;
};

// Classifies the steps of the traces of one suite. Per trace: BeginSequence,
// then RunTrace with `options.observer = &observer`, then EndSequence.
class CoverageObserver : public StepObserver {
 public:
  explicit CoverageObserver(const std::string& suite);

  void BeginSequence();
  void EndSequence();
  void BeforeStep(const Op& op, const model::State& before) override;
  void AfterStep(const StepRecord& step, const model::State& after) override;

  Coverage Result() const;

  // Implementation detail, public for coverage.cc's tables.
  static constexpr size_t kKinds = static_cast<size_t>(kLastOpKind) + 1;
  static constexpr size_t kErrnos = static_cast<size_t>(Errno::kNxio) + 1;
  static constexpr size_t kMaxClasses = 64;

  // BeforeStep's notes on a step of the migrate suite, for AfterStep's
  // migration classes (props/coverage_migrate.cc); each set only for the
  // kinds that use it.
  struct MigrateNotes {
    bool taken = false;                  // the notes are for this step
    size_t device_entries = 0;           // over every process
    size_t device_entries_in_range = 0;  // migrate_to_dev: in its range
    std::vector<std::pair<uint64_t, uint64_t>> pinned;  // migrate_to_dev: (vpn, page) pinned in its range
    std::vector<uint64_t> empty;         // migrate_to_dev: vpns of its range with no entry or the zero page
    bool shared_vma = false;             // migrate_to_dev: its range meets a MAP_SHARED VMA
    bool other_device = false;           // dread, dwrite: the range has another device's page
    bool forked_device_page = false;     // write: its range has a device page that 2+ entries map
    bool reaches_device = false;         // read, write, pin: its range has a device entry
    bool fail_alloc = false;             // migrations: the mirror's FAIL_ALLOC flag is set
  };

 private:
  // AfterStep's parts; each returns the class bits it found (coverage.cc).
  uint64_t AccessHits(const StepRecord& step, const model::State& s);
  uint64_t ForkHits(const StepRecord& step, const model::State& s);
  uint64_t OtherHits(const StepRecord& step, const model::State& s, bool* unmaps) const;
  uint64_t PinOutlivesUnmapHit(const model::State& s);
  uint64_t EventHits(const Op& op, const model::State& s);
  bool Wants(uint32_t id) const { return (enabled_ >> id) & 1; }

  std::string suite_;
  uint64_t enabled_ = 0;   // bit c: class id c is one of the suite's
  uint64_t in_trace_ = 0;  // classes reached in the current trace
  uint64_t sequences_ = 0;
  uint64_t steps_ = 0;
  uint64_t commands_[kKinds][kErrnos] = {};
  uint64_t class_steps_[kMaxClasses] = {};
  uint64_t class_sequences_[kMaxClasses] = {};
  // Memory across the steps of one trace.
  size_t events_seen_ = 0;  // model events already looked at
  // BeforeStep's COW candidates: (vpn, page) of read-only PTEs of pages with 2+ PTEs.
  std::vector<std::pair<uint64_t, uint64_t>> cow_candidates_;
  // BeforeStep's count of device page table entries, before a CPU-side step.
  size_t mirror_entries_before_ = 0;
  MigrateNotes migrate_;          // BeforeStep's notes for the migration classes
  std::vector<uint64_t> pinned_;  // scratch: the pinned pages, sorted
  std::vector<char> mapped_;      // scratch: whether pinned_[i] is mapped by a PTE
};

// Runs `ops` (as `hmmref run` would) with a fresh observer for `suite` and
// returns what one sequence covered. For tests and tools.
Coverage ClassifyTrace(const std::vector<Op>& ops, const std::string& suite);

}  // namespace hmm::props

#endif  // HMMREF_PROPS_COVERAGE_H_
