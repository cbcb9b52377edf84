// File: impl/defects.cc

#include "impl/defects.h"

#include <atomic>
#include <string>

namespace hmm::impl {

const char* DefectName(Defect d) {
  switch (d) {
    case Defect::kNone:
      return "kNone";
    case Defect::kCowNotBroken:
      return "kCowNotBroken";
    case Defect::kZeroPageWrittenInPlace:
      return "kZeroPageWrittenInPlace";
    case Defect::kMunmapLeaksRef:
      return "kMunmapLeaksRef";
    case Defect::kMprotectKeepsWrite:
      return "kMprotectKeepsWrite";
    case Defect::kForkCopiesSharedPtes:
      return "kForkCopiesSharedPtes";
    case Defect::kPageFreeTwice:
      return "kPageFreeTwice";
    case Defect::kForkKeepsDeviceWrite:
      return "kForkKeepsDeviceWrite";
    case Defect::kPlacementOverlapsRam:
      return "kPlacementOverlapsRam";
    case Defect::kNoInvalidateOnMprotect:
      return "kNoInvalidateOnMprotect";
    case Defect::kRangeDoneAlwaysValid:
      return "kRangeDoneAlwaysValid";
    case Defect::kForkSkipsMirrorInvalidate:
      return "kForkSkipsMirrorInvalidate";
    case Defect::kMigrateLosesDirtyData:
      return "kMigrateLosesDirtyData";
    case Defect::kMigrateLeavesMigrationEntry:
      return "kMigrateLeavesMigrationEntry";
    case Defect::kMigratePinnedPage:
      return "kMigratePinnedPage";
    case Defect::kMigrateBackGainsWrite:
      return "kMigrateBackGainsWrite";
    case Defect::kMigratePageFreeTwice:
      return "kMigratePageFreeTwice";
    case Defect::kDefaultInvalidatesAtEnd:
      return "kDefaultInvalidatesAtEnd";
  }
  return "kUnknownDefect";
}

bool ParseDefect(const char* name, Defect* out) {
  const std::string wanted = name;
  for (Defect d : kAllDefects) {
    const std::string full = DefectName(d);
    if (wanted == full || wanted == full.substr(1)) {
      *out = d;
      return true;
    }
  }
  return false;
}

#ifdef HMMREF_SEEDED_DEFECTS
namespace {
// Process-wide, as a test sets it before it builds a Kernel. Relaxed: tests
// set it between runs, never while operations are in flight.
std::atomic<Defect> g_active_defect{Defect::kNone};
}  // namespace

void SetSeededDefect(Defect d) { g_active_defect.store(d, std::memory_order_relaxed); }

bool DefectActive(Defect d) {
  return d != Defect::kNone && g_active_defect.load(std::memory_order_relaxed) == d;
}
#endif  // HMMREF_SEEDED_DEFECTS

}  // namespace hmm::impl
