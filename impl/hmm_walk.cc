// File: impl/hmm_walk.cc
//
// The page-table walks behind mirroring (docs/mirror.md, "Entry rules"):
//   - the snapshot of 4.14 hmm_vma_get_pfns(), one pass over the leaf tables
//     (PageTable::ForEachLeafRun): each PTE table is scanned as a plain
//     array, a missing one filled with HMM_PFN_EMPTY, and leaves become
//     hmm_pfn_t four at a time with vector bit operations, no per-page table
//     walk and no branch (device entries, rare, are redone one by one);
//   - the fault walk of 4.14 hmm_vma_fault() and (with an owner) 6.1
//     hmm_range_fault() with fault flags, page by page since each page may
//     fault and the fault path must run without the ptl;
//   - the dummy device's SNAPSHOT bytes (6.1 dmirror_mkentry()).

#include <algorithm>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "impl/kernel_state.h"
#include "impl/mirror.h"

namespace hmm::impl {
namespace {

static_assert(kHmmPfnWrite == uint64_t{1} << (kPteBitWrite + 1), "write bit: one left");
static_assert(kHmmPfnWrite == uint64_t{1} << (kPteBitSpecial - 7), "special bit: seven right");
static_assert(kPtePfnShift > kHmmPfnShift, "pfn moves right");

// Mirrors: 4.14 mm/hmm.c hmm_vma_walk_pmd()'s device-private branch:
// VALID | DEVICE_UNADDRESSABLE | READ? | WRITE? with the device pfn; any
// other swap kind (none is produced) is 0, as 4.14 reports migration entries.
uint64_t HmmPfnFromSwapPte(pte_t e, uint64_t read) {
  const unsigned type = static_cast<unsigned>((e & kSwpTypeMask) >> kSwpTypeShift);
  if (type != kSwpDeviceWrite && type != kSwpDeviceRead) return 0;
  const uint64_t pfn = (e & kSwpOffsetMask) >> kSwpOffsetShift;
  return (pfn << kHmmPfnShift) | kHmmPfnValid | kHmmPfnDeviceUnaddressable | read |
         (type == kSwpDeviceWrite ? uint64_t{kHmmPfnWrite} : 0);
}

// Mirrors: 4.14 mm/hmm.c hmm_vma_walk_pmd()'s PTE loop: none -> EMPTY;
// present -> pfn | VALID | READ? | WRITE?, where WRITE is the PTE's write bit
// unless the PTE is pte_special (the zero page, never WRITE).
inline uint64_t HmmPfnFromPte(pte_t e, uint64_t read) {
  if (e & kPtePresent) {
    const uint64_t write = (e << 1) & ~(e >> 7) & kHmmPfnWrite;
    return ((e & kPtePfnMask) >> (kPtePfnShift - kHmmPfnShift)) | kHmmPfnValid | read | write;
  }
  return e == 0 ? uint64_t{kHmmPfnEmpty} : HmmPfnFromSwapPte(e, read);
}

// Four leaves at a time (GCC/Clang vector extensions: two SSE2 registers on
// plain x86-64), with no branch: the formula of HmmPfnFromPte for present and
// none entries, bit by bit. VALID = present (bit 0); READ = present & read;
// WRITE = the write bit (1) unless pte_special (9); EMPTY = neither present
// nor a swap entry (bits 0 and 8 clear). A swap entry (bit 0 clear, bit 8
// set) comes out wrong and is reported, for the caller to redo.
typedef uint64_t U64x4 __attribute__((vector_size(32)));
constexpr uint64_t kPfnBits = kPtePfnMask >> (kPtePfnShift - kHmmPfnShift);
static_assert(kPteSwpMarker == uint64_t{1} << 8 && kHmmPfnEmpty == 1 << 4, "EMPTY's bit test");

bool ConvertLeaves4(const pte_t* __restrict src, uint64_t* __restrict dst, uint64_t n,
                    uint64_t read) {
  const uint64_t read_write = read | kHmmPfnWrite;
  U64x4 swap = {0, 0, 0, 0};
  for (uint64_t i = 0; i + 4 <= n; i += 4) {
    U64x4 e;
    std::memcpy(&e, src + i, sizeof(e));
    const U64x4 t = e << 1;
    const U64x4 v = ((e >> (kPtePfnShift - kHmmPfnShift)) & kPfnBits) | (e & uint64_t{kHmmPfnValid}) |
                    (~(e >> 7) & t & read_write) | (~((e << 4) | (e >> 4)) & uint64_t{kHmmPfnEmpty});
    swap |= (e >> 8) & ~e;
    std::memcpy(dst + i, &v, sizeof(v));
  }
  return ((swap[0] | swap[1] | swap[2] | swap[3]) & 1) != 0;
}

// Is pfn a page of the owner's device memory? (page->pgmap->owner ==
// range->dev_private_owner) REQUIRES: devmems_lock.
bool OwnedBy(const KernelState& ks, uint64_t pfn, DeviceId owner) {
  const Devmem* devmem = ks.devmems.FindByPfn(pfn);
  return devmem != nullptr && devmem->device == owner;
}

// Mirrors: 6.1 mm/hmm.c hmm_pte_need_fault() (4.14 hmm_vma_walk_pmd()'s
// decision): none; write on a zero-page or read-only entry; with an owner,
// a device entry of another device. REQUIRES: ptl; devmems_lock with an owner.
bool NeedFault(const KernelState& ks, pte_t e, const HmmWalkMode& mode) {
  if (e == 0) return true;
  if (PtePresent(e)) return mode.write && (!PteWrite(e) || (e & kPteSpecial));
  // A migration entry: the fault waits for the migration (invariant 19).
  if (IsMigrationEntry(e)) return true;
  DecodedPte d = DecodePte(e);
  if (mode.has_owner && !OwnedBy(ks, d.pfn, mode.owner)) return true;
  return mode.write && d.kind != PteKind::kDevicePrivateWrite;
}

// One fault walk (HmmRangeFaultWalk's state).
struct FaultWalk {
  KernelState& ks;
  Process& p;
  Pid pid;
  const HmmWalkMode& mode;
  uint64_t start;
  uint64_t* out;
  std::mutex* lock;  // guards out, or null

  void Store(uint64_t vpn, uint64_t v) {
    std::unique_lock<std::mutex> guard;
    if (lock != nullptr) guard = std::unique_lock<std::mutex>(*lock);
    out[vpn - start] = v;
  }
};

// Fills vpn's entry by the entry rules unless it needs a fault (check), or
// (after a fault) unless a new migration has begun there meanwhile; returns
// whether it needs one. REQUIRES: mmap_lock; no ptl.
bool FillUnlessFault(FaultWalk& w, uint64_t vpn, uint64_t read, bool check) {
  std::lock_guard<std::mutex> ptl(w.p.ptl);
  std::shared_lock<std::shared_mutex> devmems(w.ks.devmems_lock, std::defer_lock);
  if (w.mode.has_owner) devmems.lock();
  const pte_t e = w.p.pgtable.Get(vpn);
  if (check ? NeedFault(w.ks, e, w.mode) : IsMigrationEntry(e)) return true;
  w.Store(vpn, HmmPfnFromPte(e, read));
  return false;
}

// Mirrors: 4.14 mm/hmm.c hmm_vma_do_fault() with the checks of 6.1
// hmm_vma_walk_test()/hmm_vma_fault(): one page through handle_mm_fault().
// One round only: *again when it only waited or acted, and the walk must
// decide anew (the entry may now be the owner's device page, which the walk
// reports as it stands instead of migrating it back).
Errno DoFault(FaultWalk& w, const Vma& vma, uint64_t addr, bool* again) {
  // Does the VMA allow reading?
  if (!(vma.prot & kProtRead)) return Errno::kFault;
  // And writing, for a write fault?
  if (w.mode.write && !(vma.prot & kProtWrite)) return Errno::kPerm;
  // A device entry's callback runs in there and migrates the page back.
  Result<uint64_t> pfn = FaultInPageRound(w.ks, w.p, w.pid, vma, addr, w.mode.write, again);
  // Did the round only wait or act? Its result means nothing then.
  if (*again) return Errno::kOk;
  // Did the fault fail (kNoMem, or the device page's kFault: RAM full)?
  if (!pfn.ok()) return Errno::kFault;
  w.ks.pages.PutPage(pfn.value);  // -1: FaultInPage's reference for us
  return Errno::kOk;
}

// One page of the fault walk. REQUIRES: mmap_lock (read); no ptl.
Errno WalkPage(FaultWalk& w, const Vma* vma, uint64_t vpn) {
  // Is there a VMA, and (6.1, a fault asked) a readable one?
  // (hmm_vma_walk_hole(), hmm_vma_walk_test(); a 4.14 range lies in one VMA)
  if (vma == nullptr) return Errno::kFault;
  if (w.mode.has_owner && !(vma->prot & kProtRead)) return Errno::kFault;
  const uint64_t read = (vma->prot & kProtRead) ? uint64_t{kHmmPfnRead} : 0;
  if (!FillUnlessFault(w, vpn, read, /*check=*/true)) return Errno::kOk;
  // Loop invariant: the entry needs a fault (or waits for a migration).
  for (;;) {
    bool again = false;
    Errno err = DoFault(w, *vma, vpn << kPageShift, &again);
    if (err != Errno::kOk) return err;
    // A finished fault fills unless a new migration began; a round that only
    // waited or acted decides anew.
    if (!FillUnlessFault(w, vpn, read, /*check=*/again)) return Errno::kOk;
  }
}

}  // namespace

void HmmVmaWalkSnapshot(const Process& p, uint64_t start, uint64_t end, bool vma_read,
                        uint64_t* out) {
  const uint64_t read = vma_read ? uint64_t{kHmmPfnRead} : 0;
  p.pgtable.ForEachLeafRun(start, end, [&](uint64_t vpn, const pte_t* leaves, uint64_t n) {
    uint64_t* dst = out + (vpn - start);
    if (leaves == nullptr) {
      std::fill(dst, dst + n, uint64_t{kHmmPfnEmpty});
      return;
    }
    const uint64_t bulk = n & ~uint64_t{3};
    if (ConvertLeaves4(leaves, dst, bulk, read)) {
      for (uint64_t i = 0; i < bulk; ++i) dst[i] = HmmPfnFromPte(leaves[i], read);
    }
    for (uint64_t i = bulk; i < n; ++i) dst[i] = HmmPfnFromPte(leaves[i], read);
  });
}

Errno HmmRangeFaultWalk(KernelState& ks, Process& p, Pid pid, uint64_t start, uint64_t end,
                        const HmmWalkMode& mode, uint64_t* out, std::mutex* lock) {
  FaultWalk w{ks, p, pid, mode, start, out, lock};
  const Vma* vma = nullptr;
  for (uint64_t vpn = start; vpn < end; ++vpn) {
    const uint64_t addr = vpn << kPageShift;
    if (vma == nullptr || addr < vma->start || addr >= vma->end) vma = p.vmas.Find(addr);
    Errno err = WalkPage(w, vma, vpn);
    if (err == Errno::kOk) continue;
    // The failing entry is ERROR, the unprocessed tail 0.
    std::unique_lock<std::mutex> guard;
    if (lock != nullptr) guard = std::unique_lock<std::mutex>(*lock);
    out[vpn - start] = kHmmPfnError;
    std::fill(out + (vpn + 1 - start), out + (end - start), 0);
    return err;
  }
  return Errno::kOk;
}

namespace {

// Mirrors: 6.1 lib/test_hmm.c dmirror_mkentry() over the entry 6.1
// hmm_range_fault() reports without fault flags: another device's page is
// not valid (0x00). REQUIRES: ptl, devmems_lock.
uint8_t DmirrorProtFromPte(const KernelState& ks, pte_t e, DeviceId owner) {
  if (e == 0) return kDmirrorProtNone;
  if (PtePresent(e)) {
    if (e & kPteSpecial) return kDmirrorProtZero | kDmirrorProtRead;
    return PteWrite(e) ? kDmirrorProtWrite : kDmirrorProtRead;
  }
  DecodedPte d = DecodePte(e);
  // A migration entry is reported not valid (invariant 19), as another
  // device's page is.
  if (IsMigrationEntry(e) || !OwnedBy(ks, d.pfn, owner)) return kDmirrorProtNone;
  return kDmirrorProtDevPrivateLocal |
         (d.kind == PteKind::kDevicePrivateWrite ? kDmirrorProtWrite : kDmirrorProtRead);
}

}  // namespace

void DmirrorSnapshotWalk(KernelState& ks, Process& p, uint64_t start, uint64_t end,
                         DeviceId owner, uint8_t* out) {
  std::lock_guard<std::mutex> ptl(p.ptl);
  std::shared_lock<std::shared_mutex> devmems(ks.devmems_lock);
  const Vma* vma = nullptr;
  for (uint64_t vpn = start; vpn < end; ++vpn) {
    const uint64_t addr = vpn << kPageShift;
    if (vma == nullptr || addr < vma->start || addr >= vma->end) vma = p.vmas.Find(addr);
    // No VMA, or one without PROT_READ: HMM_PFN_ERROR (hmm_vma_walk_test()).
    if (vma == nullptr || !(vma->prot & kProtRead)) {
      out[vpn - start] = kDmirrorProtError;
      continue;
    }
    out[vpn - start] = DmirrorProtFromPte(ks, p.pgtable.Get(vpn), owner);
  }
}

}  // namespace hmm::impl
