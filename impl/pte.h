// File: impl/pte.h
//
// The packed 64-bit page-table entry of hmmref, in the shape of x86-64's
// (arch/x86/include/asm/pgtable_types.h for the present bits,
// include/linux/swapops.h for the non-present "swap entry" kinds HMM adds).
// Every level of the 4-level table uses the same 64-bit word; this file is
// about leaf entries.
//
// Layout (bit 0 decides between the two formats):
//
//   present      bit 0 = 1
//                bit 1 write, bit 2 user, bit 5 accessed, bit 6 dirty,
//                bit 9 special (the zero page; mm/memory.c vm_normal_page()),
//                bits 12..51 pfn (40 bits)
//   swap format  bit 0 = 0, bit 8 = 1 (kPteSwpMarker: keeps every swap entry,
//                even type 0 offset 0, distinct from the none entry)
//                bits 1..5 swap type (5 bits), bits 12..57 offset (46 bits)
//   none         all 64 bits zero (pte_none())
//
// Swap types, as the kernel carves them off the top of MAX_SWAPFILES
// (include/linux/swap.h SWP_DEVICE_NUM, SWP_MIGRATION_NUM):
//   31 device-private write   30 device-private read
//   29 migration write        28 migration read
//   27 device-exclusive write 26 device-exclusive read
//   0..25 real swap files (kMaxSwapfiles)
//
// solver/pte_lemmas.cc proves over 64-bit bit-vectors, with these constants,
// that decoding inverts encoding for every kind and in-range field, that the
// kinds are disjoint, and that no device-private entry decodes as present.

#ifndef HMMREF_IMPL_PTE_H_
#define HMMREF_IMPL_PTE_H_

#include <cstdint>

namespace hmm::impl {

using pte_t = uint64_t;

constexpr unsigned kPteBitPresent = 0;
constexpr unsigned kPteBitWrite = 1;
constexpr unsigned kPteBitUser = 2;
constexpr unsigned kPteBitAccessed = 5;
constexpr unsigned kPteBitDirty = 6;
constexpr unsigned kPteBitSwpMarker = 8;
constexpr unsigned kPteBitSpecial = 9;
constexpr unsigned kPtePfnShift = 12;
constexpr unsigned kPtePfnBits = 40;
constexpr unsigned kSwpTypeShift = 1;
constexpr unsigned kSwpTypeBits = 5;
constexpr unsigned kSwpOffsetShift = 12;
constexpr unsigned kSwpOffsetBits = 46;

constexpr pte_t Bit(unsigned b) { return pte_t{1} << b; }
constexpr pte_t FieldMask(unsigned bits) { return (pte_t{1} << bits) - 1; }

constexpr pte_t kPtePresent = Bit(kPteBitPresent);
constexpr pte_t kPteWrite = Bit(kPteBitWrite);
constexpr pte_t kPteUser = Bit(kPteBitUser);
constexpr pte_t kPteAccessed = Bit(kPteBitAccessed);
constexpr pte_t kPteDirty = Bit(kPteBitDirty);
constexpr pte_t kPteSwpMarker = Bit(kPteBitSwpMarker);
constexpr pte_t kPteSpecial = Bit(kPteBitSpecial);
constexpr pte_t kPtePfnMask = FieldMask(kPtePfnBits) << kPtePfnShift;
constexpr pte_t kSwpTypeMask = FieldMask(kSwpTypeBits) << kSwpTypeShift;
constexpr pte_t kSwpOffsetMask = FieldMask(kSwpOffsetBits) << kSwpOffsetShift;

constexpr uint64_t kMaxPtePfn = FieldMask(kPtePfnBits);
constexpr uint64_t kMaxSwpOffset = FieldMask(kSwpOffsetBits);

constexpr unsigned kSwpDeviceWrite = 31;
constexpr unsigned kSwpDeviceRead = 30;
constexpr unsigned kSwpMigrationWrite = 29;
constexpr unsigned kSwpMigrationRead = 28;
constexpr unsigned kSwpDeviceExclusiveWrite = 27;
constexpr unsigned kSwpDeviceExclusiveRead = 26;
constexpr unsigned kMaxSwapfiles = 26;  // types 0..25 are real swap files

// What a leaf entry is. The order is the order of the checks in DecodePte.
enum class PteKind : uint8_t {
  kNone,
  kPresent,
  kSwap,
  kMigrationRead,
  kMigrationWrite,
  kDevicePrivateRead,
  kDevicePrivateWrite,
  kDeviceExclusiveRead,
  kDeviceExclusiveWrite,
};

const char* PteKindName(PteKind kind);

// A leaf entry's fields, unpacked. `pfn` is the present pfn or the swap offset
// (for device-private and migration entries the offset is the page's pfn, as
// in swapops.h); `swap_type` only for kSwap.
struct DecodedPte {
  PteKind kind = PteKind::kNone;
  uint64_t pfn = 0;
  bool write = false;     // present: the write bit
  bool dirty = false;     // present only
  bool accessed = false;  // present only
  bool special = false;   // present only: the zero page
  unsigned swap_type = 0;

  bool operator==(const DecodedPte& o) const;
};

// Mirrors: arch/x86/include/asm/pgtable.h pfn_pte(), pte_mkwrite(), pte_mkspecial().
// REQUIRES: pfn <= kMaxPtePfn.
constexpr pte_t MakePresentPte(uint64_t pfn, bool write, bool dirty, bool accessed, bool special) {
  return kPtePresent | kPteUser | (pfn << kPtePfnShift) | (write ? kPteWrite : 0) |
         (dirty ? kPteDirty : 0) | (accessed ? kPteAccessed : 0) | (special ? kPteSpecial : 0);
}

// Mirrors: include/linux/swapops.h swp_entry(), swp_entry_to_pte().
// REQUIRES: type < 32, offset <= kMaxSwpOffset.
constexpr pte_t MakeSwapPte(unsigned type, uint64_t offset) {
  return kPteSwpMarker | (pte_t{type} << kSwpTypeShift) | (offset << kSwpOffsetShift);
}

// Encodes every kind; the inverse of DecodePte for in-range fields.
pte_t EncodePte(const DecodedPte& d);
// Mirrors: include/linux/swapops.h pte_to_swp_entry(), is_device_private_entry(),
// is_migration_entry(), is_device_exclusive_entry().
DecodedPte DecodePte(pte_t pte);

constexpr bool PteNone(pte_t pte) { return pte == 0; }
constexpr bool PtePresent(pte_t pte) { return (pte & kPtePresent) != 0; }
constexpr bool PteWrite(pte_t pte) { return PtePresent(pte) && (pte & kPteWrite) != 0; }
constexpr uint64_t PtePfn(pte_t pte) { return (pte & kPtePfnMask) >> kPtePfnShift; }

}  // namespace hmm::impl

#endif  // HMMREF_IMPL_PTE_H_
