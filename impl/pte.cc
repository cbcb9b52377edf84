// File: impl/pte.cc
//
// The single C++ definition of the packed PTE encoding declared in impl/pte.h.
// solver/pte_lemmas.cc restates EncodePte/DecodePte as Z3 bit-vector terms
// over the same constants and proves them inverse and disjoint;
// solver/pte_lemmas_test.cc checks on concrete samples that the two agree.
//
// Conventions, in both directions:
//   - EncodePte reads only the fields its kind uses (kPresent: pfn and the four
//     flags; kSwap: swap_type and pfn; the six special swap kinds: pfn) and
//     ignores the others.
//   - DecodePte leaves every field its kind does not use at zero/false, so
//     DecodePte(EncodePte(d)) == d exactly when d's unused fields are zero and
//     its used fields are in range (the lemmas' "canonical" hypothesis).
//   - DecodePte is total. A non-present, non-zero word is always read in the
//     swap format: its type field picks the kind and its offset field is the
//     pfn, whatever else it holds. So a word without kPteSwpMarker, or with
//     bits outside the type and offset fields (bits 6, 7, 9..11, 58..63), decodes
//     like the canonical entry with the same type and offset (as swapops.h's
//     pte_to_swp_entry() keeps only the type and offset); EncodePte of the
//     result is then that canonical word, not the input.

#include "impl/pte.h"

#include <cassert>

namespace hmm::impl {
namespace {

// Mirrors: include/linux/swapops.h is_migration_entry(), is_device_private_entry(),
// is_device_exclusive_entry(), which test the swap type against these numbers.
PteKind SwapKind(unsigned type) {
  switch (type) {
    case kSwpMigrationRead:
      return PteKind::kMigrationRead;
    case kSwpMigrationWrite:
      return PteKind::kMigrationWrite;
    case kSwpDeviceRead:
      return PteKind::kDevicePrivateRead;
    case kSwpDeviceWrite:
      return PteKind::kDevicePrivateWrite;
    case kSwpDeviceExclusiveRead:
      return PteKind::kDeviceExclusiveRead;
    case kSwpDeviceExclusiveWrite:
      return PteKind::kDeviceExclusiveWrite;
    default:
      return PteKind::kSwap;
  }
}

// The swap type of each special swap kind; kMaxSwapfiles for the others.
unsigned SwapType(PteKind kind) {
  switch (kind) {
    case PteKind::kMigrationRead:
      return kSwpMigrationRead;
    case PteKind::kMigrationWrite:
      return kSwpMigrationWrite;
    case PteKind::kDevicePrivateRead:
      return kSwpDeviceRead;
    case PteKind::kDevicePrivateWrite:
      return kSwpDeviceWrite;
    case PteKind::kDeviceExclusiveRead:
      return kSwpDeviceExclusiveRead;
    case PteKind::kDeviceExclusiveWrite:
      return kSwpDeviceExclusiveWrite;
    case PteKind::kNone:
    case PteKind::kPresent:
    case PteKind::kSwap:
      break;
  }
  return kMaxSwapfiles;
}

}  // namespace

const char* PteKindName(PteKind kind) {
  switch (kind) {
    case PteKind::kNone:
      return "kNone";
    case PteKind::kPresent:
      return "kPresent";
    case PteKind::kSwap:
      return "kSwap";
    case PteKind::kMigrationRead:
      return "kMigrationRead";
    case PteKind::kMigrationWrite:
      return "kMigrationWrite";
    case PteKind::kDevicePrivateRead:
      return "kDevicePrivateRead";
    case PteKind::kDevicePrivateWrite:
      return "kDevicePrivateWrite";
    case PteKind::kDeviceExclusiveRead:
      return "kDeviceExclusiveRead";
    case PteKind::kDeviceExclusiveWrite:
      return "kDeviceExclusiveWrite";
  }
  return "kInvalidPteKind";
}

bool DecodedPte::operator==(const DecodedPte& o) const {
  return kind == o.kind && pfn == o.pfn && write == o.write && dirty == o.dirty &&
         accessed == o.accessed && special == o.special && swap_type == o.swap_type;
}

// REQUIRES: d's used fields are in range: kPresent: pfn <= kMaxPtePfn;
// kSwap: swap_type < kMaxSwapfiles; every swap-format kind: pfn <= kMaxSwpOffset.
pte_t EncodePte(const DecodedPte& d) {
  switch (d.kind) {
    case PteKind::kNone:
      return 0;
    case PteKind::kPresent:
      assert(d.pfn <= kMaxPtePfn);
      return MakePresentPte(d.pfn, d.write, d.dirty, d.accessed, d.special);
    case PteKind::kSwap:
      assert(d.swap_type < kMaxSwapfiles && d.pfn <= kMaxSwpOffset);
      return MakeSwapPte(d.swap_type, d.pfn);
    case PteKind::kMigrationRead:
    case PteKind::kMigrationWrite:
    case PteKind::kDevicePrivateRead:
    case PteKind::kDevicePrivateWrite:
    case PteKind::kDeviceExclusiveRead:
    case PteKind::kDeviceExclusiveWrite:
      assert(d.pfn <= kMaxSwpOffset);
      return MakeSwapPte(SwapType(d.kind), d.pfn);
  }
  assert(false && "EncodePte: not a PteKind");
  return 0;
}

DecodedPte DecodePte(pte_t pte) {
  DecodedPte d;
  // Is it the none entry?
  if (PteNone(pte)) return d;
  // Is it present? Then the hardware format.
  if (PtePresent(pte)) {
    d.kind = PteKind::kPresent;
    d.pfn = PtePfn(pte);
    d.write = (pte & kPteWrite) != 0;
    d.dirty = (pte & kPteDirty) != 0;
    d.accessed = (pte & kPteAccessed) != 0;
    d.special = (pte & kPteSpecial) != 0;
    return d;
  }
  // Otherwise a swap entry: the type says which kind (see the file comment for
  // words that are not canonical swap entries).
  const auto type = static_cast<unsigned>((pte & kSwpTypeMask) >> kSwpTypeShift);
  d.kind = SwapKind(type);
  d.pfn = (pte & kSwpOffsetMask) >> kSwpOffsetShift;
  if (d.kind == PteKind::kSwap) d.swap_type = type;
  return d;
}

}  // namespace hmm::impl
