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
  kNumClassIds,
};
static_assert(kNumClassIds <= CoverageObserver::kMaxClasses, "class ids must fit the mask");

constexpr uint64_t Bit(ClassId id) { return uint64_t{1} << id; }

// At most this many pages of one access are looked at (generated accesses
// span at most 3; a hand-written 64 KiB one is classified by its first 16).
constexpr uint64_t kMaxSpanPages = 16;

// The detectors (props/coverage_detectors.cc); each comment is there.
bool PageSpan(uint64_t addr, uint64_t len, uint64_t* first, uint64_t* count);
bool AccessReachesPages(uint64_t addr, uint64_t len);
const model::Process* FindProcess(const model::State& s, uint64_t pid);
const model::Pte* FindPte(const model::Process& p, uint64_t vpn);
const model::Vma* FindVma(const model::Process& p, uint64_t vpn);
bool NamesPage(const model::Pte& pte);
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

}  // namespace hmm::props::coverage_internal

#endif  // HMMREF_PROPS_COVERAGE_INTERNAL_H_
