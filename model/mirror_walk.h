// File: model/mirror_walk.h
//
// What the CPU paths and the mirroring operations share (docs/mirror.md): the
// mmu notifier that every CPU page-table change calls, and the entry rule of
// the seed's page-table walk. Private to //model:kernel; defined in mirror.cc.

#ifndef HMMREF_MODEL_MIRROR_WALK_H_
#define HMMREF_MODEL_MIRROR_WALK_H_

#include <functional>

#include "model/address_space.h"
#include "model/kernel.h"
#include "model/types.h"

namespace hmm::model {

// Whether npages pages from addr run past kTaskSize (without overflow).
inline bool EndsAboveTaskSize(uint64_t addr, uint64_t npages) {
  return addr > kTaskSize || npages > (kTaskSize - addr) >> kPageShift;
}

// The notification of a CPU page-table change on [start, end) of process pid:
// every mirror of pid erases its pt entries in [start, end) (under linux-6.1
// [start, end], as 6.1's dummy device does: docs/divergences.md D1), and every open
// range of pid's mirrors that overlaps [start, end) (strictly) becomes invalid,
// its entries in the overlap zeroed. Touches nothing but mirrors and ranges.
// Mirrors: mm/hmm.c hmm_invalidate_range() (4.14), lib/test_hmm.c
// dmirror_do_update() (the mirror's sync_cpu_device_pagetables()).
void MmuNotifierInvalidate(State& s, Pid pid, Vpn start, Vpn end);

// The dummy device's page-table updates (its xarray's xa_store() and
// xa_erase()), which also keep the linux-6.1 notes (Mirror::unbacked, stale)
// of each entry: PtStore sets vpn's entry, unbacked when it holds the
// device-private struct page itself; PtErase erases [start, end).
void PtStore(Mirror& m, Vpn vpn, const Pte& entry, bool unbacked = false);
void PtErase(Mirror& m, Vpn start, Vpn end);

// linux-6.1: the page `target` names was freed; every pt entry still naming
// it (6.1 skips the owner device's mirrors on migration) becomes stale.
void PtMarkFreed(State& s, const Pte& target);

// Which mirrors a notification reaches.
using MirrorFilter = std::function<bool(const Mirror&)>;

// MmuNotifierInvalidate for the mirrors of pid that `pick` selects, and their
// open ranges: a notification the others skip (docs/migrate.md: 6.1's driver
// ignores an MMU_NOTIFY_MIGRATE whose pgmap_owner is its own device).
// Mirrors: lib/test_hmm.c dmirror_interval_invalidate() (6.1).
void MmuNotifierInvalidateIf(State& s, Pid pid, Vpn start, Vpn end, const MirrorFilter& pick);

// MmuNotifierInvalidate on every page of [start, end) that lies inside a VMA
// of pid (munmap, madvise, exit: docs/mirror.md's table).
// REQUIRES: pid is live.
void MmuNotifierInvalidateMapped(State& s, Pid pid, Vpn start, Vpn end);

// The entry the walk reports at vpn, by the 4.14 rules: no entry -> EMPTY; the
// zero page -> VALID|READ?; a page -> VALID|READ?|WRITE?; a device entry ->
// VALID|DEVICE_UNADDRESSABLE|READ?|WRITE?, whatever device owns it. READ? is
// the VMA's kProtRead, WRITE? the entry's write bit.
// REQUIRES: vma holds vpn.
// Mirrors: mm/hmm.c hmm_vma_walk_pmd() (4.14).
HmmPfn HmmPfnOf(const Process& p, const Vma& vma, Vpn vpn);

// Whether hmm_vma_fault() (4.14) must fault vpn in: no entry, or a write asked
// of a read-only entry (the zero page, a COW page, a read-only device entry).
// Mirrors: mm/hmm.c hmm_vma_walk_pmd() (4.14, its "goto fault" cases).
bool NeedsFault(const Process& p, Vpn vpn, bool write);

// The device page table entry for a VALID walk entry: the same target, write
// iff kHmmPfnWrite. REQUIRES: entry has kHmmPfnValid.
Pte DeviceMapping(const HmmPfn& entry);

// The device that owns device pfn (its devmem's device).
// REQUIRES: pfn is a page of a live devmem.
DeviceId OwnerOfDevicePfn(const State& s, uint64_t pfn);

// Whether two entries name the same target: the zero page, a page, or a device pfn.
inline bool SameTarget(const Pte& a, const Pte& b) {
  return a.zero == b.zero && a.page == b.page && a.device == b.device &&
         a.device_pfn == b.device_pfn;
}

// --- The dummy device's helpers (dmirror.cc), shared with dmirror_migrate.cc ---

// The guards of READ, WRITE, SNAPSHOT and the migration ioctls, in
// docs/mirror.md's order. length_ok: the length is non-zero (and, for WRITE,
// whole pages).
// Mirrors: lib/test_hmm.c dmirror_fops_unlocked_ioctl(), dmirror_read().
Errno DmirrorGuards(const State& s, uint64_t mirror, uint64_t addr, uint64_t npages,
                    bool length_ok);

// How the driver's copy through its pt ended: every page copied, at a
// missing entry (-ENOENT: the caller faults), or under linux-6.1 at an entry
// holding a device-private page itself (kmap() oopses, D12) or a freed page
// (a use-after-free, D15).
enum class PtAccess : uint8_t { kDone, kMissing, kUnbacked, kStale };

// The KernelSplat of a kUnbacked or kStale access, and where 6.1 does it.
inline KernelSplat::Kind SplatKindOf(PtAccess access) {
  return access == PtAccess::kUnbacked ? KernelSplat::kOops : KernelSplat::kUseAfterFree;
}
inline const char* SplatWhere(PtAccess access) {
  return access == PtAccess::kUnbacked ? "lib/test_hmm.c dmirror_do_read/write(): kmap()"
                                       : "lib/test_hmm.c dmirror_do_read/write(): a freed page";
}

// Copies the pages of [start, end) from the pt into out->data, from page
// out->cpages on, until one is missing or (linux-6.1) cannot be read.
// Mirrors: lib/test_hmm.c dmirror_do_read().
PtAccess DmirrorDoRead(const State& s, const Mirror& m, Vpn start, Vpn end, DmirrorResult* out);

// A device page's own contents (const when s is).
// REQUIRES: pfn is a page of a live devmem that has been allocated.
template <typename S>
auto& DevicePageContents(S& s, uint64_t pfn) {
  return s.devmems.at(DevmemOfPfn(s, pfn)).pages.at(pfn).data;
}

}  // namespace hmm::model

#endif  // HMMREF_MODEL_MIRROR_WALK_H_
