// File: props/coverage_internal.h
//
// Shared by props/coverage.cc (the class tables and the observer) and
// props/coverage_detectors.cc (the detectors): the class ids and the
// detectors' signatures. Internal to the coverage library.

#ifndef HMMREF_PROPS_COVERAGE_INTERNAL_H_
#define HMMREF_PROPS_COVERAGE_INTERNAL_H_

#include <cstdint>
#include <vector>

#include "model/kernel.h"
#include "props/coverage.h"
#include "props/model_query.h"
#include "props/op.h"

namespace hmm::props::coverage_internal {

// Every class any suite has; a suite lists the ones it is meant to reach.
enum ClassId : uint32_t {
  kZeroPageMapped,
  kCowBreak,
  kSharedPageTwoProcesses,
  kPinOutlivesUnmap,
  kForkPinnedPage,
  kFaultOutOfRam,
  kMremapMoved,
  kMadviseOverHole,
  kPartialWrite,
  kDeviceEntryForked,
  kPageFreeLogged,
  kPageFreeOnZap,
  kFaultCallbackLogged,
  kV18HotAddCollision,
  kDevmemRemoveBusy,
  kDeviceRegionExhausted,
  kDeviceAccessNoFault,
  kDeviceAccessFaulted,
  kDeviceFaultRefused,
  kMirrorEntriesErased,
  kCommitInvalid,
  kCommitValid,
  kFaultInvalidatesOwnRange,
  kSnapshotProtError,
  kSnapshotZeroPage,
  kSnapshotReadOnly,
  kSnapshotLocalDevice,
  // Migration (props/coverage_migrate.cc).
  kMigratedToDevice,
  kMovedBackByCpuFault,
  kMovedBackByMigrateToSys,
  kMovedBackByRelease,
  kPinnedPageSkipped,
  kSharedVmaSkipped,
  kEmptySlotFilled,
  kFailAllocDeclined,
  kMigrateToDevNoEnt,
  kForkedDevicePageWritten,
  kOtherDevicePageMovedBack,
  kMoveBackRamFull,
  kNumClassIds,
};
static_assert(kNumClassIds <= CoverageObserver::kMaxClasses, "class ids must fit the mask");

constexpr uint64_t Bit(ClassId id) { return uint64_t{1} << id; }

// Every migration class: BeforeStep takes MigrateNotes only for a suite with one.
constexpr uint64_t kMigrateClasses = (uint64_t{1} << kNumClassIds) - Bit(kMigratedToDevice);

// At most this many pages of one access are looked at (generated accesses
// span at most 3; a hand-written 64 KiB one is classified by its first 16).
constexpr uint64_t kMaxSpanPages = 16;

// The detectors (props/coverage_detectors.cc); each comment is there. The
// lookups they share with the migration checks are props/model_query.h.
bool PageSpan(uint64_t addr, uint64_t len, uint64_t* first, uint64_t* count);
bool AccessReachesPages(uint64_t addr, uint64_t len);
bool MappedTwice(const model::State& s, model::PageId page);
bool MappedByAnother(const model::State& s, uint64_t pid, model::PageId page);
bool ReadLeftZeroPage(const model::State& s, const Op& op);
bool SharedPageSeenByTwo(const model::State& s, const Op& op, uint64_t len);
bool PartialWrite(const model::State& s, const Op& op, Errno err);
bool OverlapsDeviceMemory(const model::State& s, uint64_t start, uint64_t size);
void CollectPinnedPages(const model::State& s, std::vector<uint64_t>* pages);
bool ForkCopiedPinnedPage(const model::State& s, uint64_t parent, uint64_t child,
                          const std::vector<uint64_t>& pinned);
bool IsCpuSide(OpKind kind);
size_t MirrorEntries(const model::State& s);
uint64_t SnapshotHits(const std::vector<uint8_t>& bytes);
uint64_t MirrorHits(const Op& op, const OpResult& r, const model::State& s);

// Migration (props/coverage_migrate.cc): what BeforeStep notes of the state
// before `op`, and the classes the step reached given those notes.
using MigrateNotes = CoverageObserver::MigrateNotes;
void NoteMigrateStep(const Op& op, const model::State& before, MigrateNotes* notes);
uint64_t MigrationHits(const StepRecord& step, const model::State& after, const MigrateNotes& notes);

}  // namespace hmm::props::coverage_internal

#endif  // HMMREF_PROPS_COVERAGE_INTERNAL_H_
