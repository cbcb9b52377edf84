// File: impl/defects.h
//
// Seeded defects: deliberate bugs that the property suites must catch (the
// "honest checks" rule: a suite that cannot fail proves nothing). They exist
// only in the `//impl:kernel_defects` build, compiled with
// HMMREF_SEEDED_DEFECTS; in the default build DefectActive() is a constant
// false, so every `if (DefectActive(...))` folds away and costs nothing.

#ifndef HMMREF_IMPL_DEFECTS_H_
#define HMMREF_IMPL_DEFECTS_H_

namespace hmm::impl {

enum class Defect {
  kNone,
  kCowNotBroken,           // a write fault on a COW-shared page writes it in place
  kZeroPageWrittenInPlace, // a write fault on a zero-page PTE makes it writable
  kMunmapLeaksRef,         // munmap drops the PTE but keeps the page's reference
  kMprotectKeepsWrite,     // mprotect(PROT_READ) leaves PTE write bits set
  kForkCopiesSharedPtes,   // fork copies PTEs of shared VMAs (harmless to data; abstract state differs)
  // Device-private memory (docs/devmem.md):
  kPageFreeTwice,          // a put leaving entries logs page_free; so does the zap that frees
  kForkKeepsDeviceWrite,   // fork copies a write device entry without downgrading it
  kPlacementOverlapsRam,   // default placement starts one section below the limit (over RAM's space)
  // Mirroring (docs/mirror.md):
  kNoInvalidateOnMprotect,     // mprotect notifies nothing: mirrors keep stale (write) entries
  kRangeDoneAlwaysValid,       // range_done says valid after an overlapping invalidation
  kForkSkipsMirrorInvalidate,  // fork write-protects the parent without notifying its mirrors
  // Migration (docs/migrate.md):
  kMigrateLosesDirtyData,        // the copy to the device skips the source bytes: the device page stays zero
  kMigrateLeavesMigrationEntry,  // finalize forgets to restore a page whose migration failed
  kMigratePinnedPage,            // the pin check is skipped: a pinned page migrates
  kMigrateBackGainsWrite,        // migrate-back maps the new page writable whatever the old entry said
  kMigratePageFreeTwice,         // finalize of an unused device destination logs page_free twice
  // Concurrency (docs/concurrency.md): sequentially invisible.
  kDefaultInvalidatesAtEnd,  // the default profile invalidates mirrors at range_end, as v18 did
};

const char* DefectName(Defect d);
// The defect named "kCowNotBroken" (or "CowNotBroken"); false if none is.
bool ParseDefect(const char* name, Defect* out);
// Every defect but kNone, in declaration order.
constexpr Defect kAllDefects[] = {
    Defect::kCowNotBroken,    Defect::kZeroPageWrittenInPlace, Defect::kMunmapLeaksRef,
    Defect::kMprotectKeepsWrite, Defect::kForkCopiesSharedPtes, Defect::kPageFreeTwice,
    Defect::kForkKeepsDeviceWrite, Defect::kPlacementOverlapsRam,
    Defect::kNoInvalidateOnMprotect, Defect::kRangeDoneAlwaysValid,
    Defect::kForkSkipsMirrorInvalidate, Defect::kMigrateLosesDirtyData,
    Defect::kMigrateLeavesMigrationEntry, Defect::kMigratePinnedPage,
    Defect::kMigrateBackGainsWrite, Defect::kMigratePageFreeTwice,
    Defect::kDefaultInvalidatesAtEnd,
};

#ifdef HMMREF_SEEDED_DEFECTS
// The active defect for this process (tests set it; kNone by default).
void SetSeededDefect(Defect d);
bool DefectActive(Defect d);
#else
constexpr bool DefectActive(Defect) { return false; }
#endif

}  // namespace hmm::impl

#endif  // HMMREF_IMPL_DEFECTS_H_
