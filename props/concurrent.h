// File: props/concurrent.h
//
// The race suite's unit (issue 7; docs/concurrency.md). A ConcurrentCase is
//   - a prologue: set-up lines (`profile v18`, ...) and operations, run
//     sequentially on model and impl with every check of props/runner.h;
//   - two or three actors, each a short list of operations (a CPU thread:
//     read, write, munmap, mprotect, madvise, fork; a device thread: dread,
//     dwrite, snapshot, migrate_to_dev, migrate_to_sys on a mirror);
//   - a schedule: the bytes impl/sched.h's ControlledScheduler reads to pick
//     which actor runs at each of the impl's yield points.
//
// RunConcurrent runs the prologue, then the actors on one impl::Kernel, each
// on its own thread, exactly one running at a time, each operation recorded
// (props/linearize.h HistoryRecorder) and followed by an OpBoundary. A
// device-access observer (impl::Kernel::SetDeviceAccessObserver) records
// every access a device makes through an entry the CPU already changed. The
// checks, in order, each a named failure:
//   1. "prologue": the prologue fails a check of props/runner.h;
//   2. "InvMirrorSubsetOfCpu": a device accessed memory through an entry the
//      CPU no longer has (the invariant that a device's mirror never maps
//      what the CPU does not, broken while an operation is in flight);
//   3. "deadlock", "stuck", "step limit": the run did not complete;
//   4. "rep": impl::Kernel::RepInvariant() at the quiescent end;
//   5. a named invariant (model/invariants.h), on the impl's state at the
//      quiescent end (Abstract, props/abstract.h);
//   6. "linearizable": no sequential order of the operations, respecting
//      real time, gives every result the impl returned on the model
//      (ConcurrentSameResult) and ends in the model state that the impl's
//      state abstracts to (LinearizeRun; a search that hits its bound leaves
//      the run undecided, counted, not failed).
// An exception an actor throws (never impl::sched::Aborted) propagates from
// RunConcurrent once every actor has exited.
//
// Thread safety: RunConcurrent is reentrant (each call has its own kernels
// and scheduler); the Format functions are pure.

#ifndef HMMREF_PROPS_CONCURRENT_H_
#define HMMREF_PROPS_CONCURRENT_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "impl/kernel.h"
#include "impl/sched.h"
#include "model/kernel.h"
#include "model/types.h"
#include "props/linearize.h"
#include "props/op.h"
#include "props/runner.h"

namespace hmm::props {

// One actor: a thread of the concurrent run.
struct ActorOps {
  std::string name;     // "cpu0", "dev1": how the interleaving names it
  std::vector<Op> ops;  // run in order
};

struct ConcurrentCase {
  std::vector<Op> prologue;       // set-up lines first, then operations
  std::vector<ActorOps> actors;   // 2 or 3 (fewer once shrunk)
  std::vector<uint8_t> schedule;  // impl/sched.h's format
};

// The machine of a case: its prologue's set-up lines over the defaults.
Config CaseConfig(const ConcurrentCase& c);
// Operations of the actors, all together (the prologue is not counted).
size_t ActorOpCount(const ConcurrentCase& c);
// Actors with at least one operation.
size_t BusyActorCount(const ConcurrentCase& c);

struct ConcurrentOptions {
  // impl/sched.h SchedOptions: a bound, never the outcome of a passing run.
  std::chrono::milliseconds stuck_after{5000};
  uint64_t max_sched_steps = 20000;
  // LinearizeRun's search, every alternative included: most histories
  // linearize within a few hundred configurations; a search cut short by
  // this bound leaves the run undecided (ConcurrentReport::undecided), not
  // failed.
  LinearizeOptions linearize{/*max_configurations=*/8000};
  // Tests only (props/concurrent_test.cc): edits the recorded history before
  // the linearizability check, to show that the check can fail.
  std::function<void(std::vector<HistoryOp>*)> tamper_history_for_test;
};

struct ConcurrentReport {
  bool ok = true;
  std::string check;                  // the failed check (see the header); "" when ok
  std::vector<std::string> problems;  // one line each
  Profile profile = Profile::kDefault;
  RunReport prologue;                 // the prologue's sequential run
  impl::sched::SchedRun run;          // the interleaving
  std::vector<HistoryOp> history;     // completed operations of the actors
  std::vector<impl::DeviceAccessHazard> hazards;  // in the order they happened
  std::vector<size_t> linearization;  // ok: indices into history, a witness order
  // ok, but the linearizability search hit its bound before deciding (the
  // race suite counts these as a coverage class).
  bool undecided = false;
  uint64_t steps = 0;                 // prologue steps + actor operations completed
};

ConcurrentReport RunConcurrent(const ConcurrentCase& c, const ConcurrentOptions& options = {});

// A device thread's operation: an ioctl of the dummy device on a mirror.
bool IsDeviceOp(OpKind k);
// Did `a` and `b`, operations of different actors, overlap in time?
bool OverlapInTime(const HistoryOp& a, const HistoryOp& b);
// Do `a` and `b` touch a common page (model_query.h OpRange; a fork touches
// every page)?
bool TouchSamePages(const Op& a, const Op& b);

// Whether the model's result explains what a concurrent run of the impl
// returned, for an operation of LinearizeRun's checked history: equal,
// except the dummy device's `faults` of dread and dwrite (the number of
// fault-and-retry rounds, which another actor's invalidation or device fault
// changes), and the steps LinearizeRun marks (a fault-in says nothing; a
// migration's part; a snapshot byte 0 where it met a migration entry).
// props/concurrent_linearize.cc has the details.
bool ConcurrentSameResult(const Op& op, const OpResult& model, const OpResult& impl);

// props/linearize.h's CheckLinearizable of a run's history after `setup`,
// with ConcurrentSameResult and `final_check`, where
//   - dread and dwrite are the steps they take in the kernel, all within
//     their [invoke, respond]: they fault their range in (a dfault, read
//     or write), then copy, page by page when they succeeded;
//   - a migration that may have skipped pages (migrate_to_dev's kNoEnt, or
//     its ok or kInval while another actor's operation touched its range or
//     forked;
//     migrate_to_sys moving fewer pages than it covers) stands for its
//     whole range, a contiguous part of it or nothing, since it is atomic
//     per page, not per call (docs/migrate.md);
//   - a snapshot that overlapped an operation that may move pages may
//     report a page as absent (0): it met a migration entry.
// Each step that may stand for several operations is tried as each when the
// search linearizes it (LinearizeInput::alternatives). Returns a witness
// (order: indices into `history`), else the refutation over the steps (its
// explanation lists them), with budget_exhausted set when
// options.max_configurations ran out first.
LinearizeResult LinearizeRun(const std::vector<Op>& setup, const std::vector<HistoryOp>& history,
                             const std::function<std::string(const model::Kernel&)>& final_check,
                             const LinearizeOptions& options = {});

// What an operation that lost a race may leave behind, which no sequential
// order of whole operations explains, and no reader can tell from nothing:
//   - the devices' page tables: which pages a device caches depends on
//     which of its faults and which invalidations came last (every entry
//     the impl keeps must still match the CPU: InvMirrorSubsetOfCpu, on the
//     impl's own state; what the device reads through it is in the results);
//   - a device fault sent back by an invalidation keeps what its walk
//     faulted in (hmm_range_fault()'s work is not undone) when its retry
//     then fails or goes elsewhere: CPU entries of the zero page or of a
//     page of zeros, page-cache pages of zeros nothing maps;
//   - whether two processes share a read-only private page or each maps a
//     copy with the same bytes: a device's write fault that broke COW
//     before a fork and was retried after it leaves the child a copy
//     (read-only private entries are mapped to the first page with their
//     bytes);
//   - a migration that lost an empty slot to another (migrate_vma's insert
//     re-checks the slot) allocated a device page and freed it, and a CPU
//     fault that lost a device page to a migration ran the fault callback
//     for nothing: device pages nothing holds or names, the callback events
//     (page_free, fault), allocation counts above one, the dummy device's
//     chunks with no page left (and their resources); which id and range
//     each remaining chunk took (they are renumbered after the other
//     regions, by device and order, and placed consecutively at a fixed
//     base, the pfns naming them moved along); and which free device page
//     each allocation took (device pfns are renamed in order of first use
//     within their region).
// RunConcurrent compares the model's and the impl's final states after
// removing these from both (pages pinned or named by a device's entry
// stay); the named invariants are checked on the impl's state before.
// Canonical on return.
model::State ForgetRaceResidue(model::State s);

// "hazard InvMirrorSubsetOfCpu: device 0 (mirror 1) read 0x10001000 through
// its entry for pfn 0x5 after the CPU changed it (cpu: none) -- ..." with
// what the profile does that lets it happen (or that it must not).
std::string FormatHazard(const impl::DeviceAccessHazard& h, Profile profile);

// The schedule bytes, space-separated ("" when there are none).
std::string ScheduleText(const std::vector<uint8_t>& schedule);

// The case as a reader wants it: the prologue as .hmm lines (with the
// results the sequential run gave, when `prologue_run` has them), each
// actor's operations, the schedule bytes.
std::string FormatCase(const ConcurrentCase& c, const RunReport* prologue_run = nullptr);

// FormatCase, then the interleaving (impl::sched::FormatSchedRun), the
// history, and the failed check with its problems (or "all checks hold").
std::string FormatConcurrentReport(const ConcurrentCase& c, const ConcurrentReport& r);

}  // namespace hmm::props

#endif  // HMMREF_PROPS_CONCURRENT_H_
