// File: props/model_query.h
//
// Read-only lookups in a model::State that the checks of props/ share: the
// coverage detectors (props/coverage_internal.h) and the transition properties
// of migration (props/migrate_checks.h). Each reads the state in place.

#ifndef HMMREF_PROPS_MODEL_QUERY_H_
#define HMMREF_PROPS_MODEL_QUERY_H_

#include <cstdint>

#include "model/kernel.h"
#include "props/op.h"

namespace hmm::props {

const model::Process* FindProcess(const model::State& s, uint64_t pid);
const model::Pte* FindPte(const model::Process& p, uint64_t vpn);
// The VMA holding vpn; null when none does.
const model::Vma* FindVma(const model::Process& p, uint64_t vpn);
// A present PTE that names a page (not the zero page, not a device entry).
bool NamesPage(const model::Pte& pte);

// The pages [first, end) that `len` bytes at `addr` touch, cut at kTaskSize.
// False when there are none (len 0, or addr at or past kTaskSize).
bool ByteSpan(uint64_t addr, uint64_t len, uint64_t* first, uint64_t* end);
// The same for `npages` pages at `addr` (saturating, cut at kTaskSize).
bool PageRange(uint64_t addr, uint64_t npages, uint64_t* first, uint64_t* end);

// The device entries of `p` at vpns [first, end), visited in vpn order.
template <typename Fn>
void ForEachDeviceEntryIn(const model::Process& p, uint64_t first, uint64_t end, Fn fn) {
  for (auto it = p.ptes.lower_bound(Vpn(first)); it != p.ptes.end() && it->first.value < end; ++it) {
    if (it->second.device) fn(it->first.value, it->second);
  }
}

// Device entries over every process.
size_t CountDeviceEntries(const model::State& s);

// The devmem whose pfn range holds `pfn`; null when none does.
const model::Devmem* FindDevmemOf(const model::State& s, uint64_t pfn);
// The device page `pfn` (absent from its devmem's map: never allocated); null
// when there is none.
const model::DevicePage* FindDevicePage(const model::State& s, uint64_t pfn);

// The mirror `id`; null when it is not registered.
const model::Mirror* FindMirror(const model::State& s, uint64_t id);

// --- An op's pages ---

// The vpns [*first, *end) an op accesses or changes: read, write, dwrite,
// munmap, mprotect and madvise by bytes; pin, hmm_fault, dfault, dread,
// snapshot, migrate_to_dev and migrate_to_sys by pages. False for the other
// kinds and for an empty range.
bool OpRange(const Op& op, uint64_t* first, uint64_t* end);

// The process an op works on: its pid, or for an op naming a mirror that
// mirror's process; 0 when the mirror is not registered.
uint64_t OpPid(const Op& op, const model::State& s);

// Whether process `pid` has a device entry at a vpn in [first, end) whose
// page is not of device `other_than` (of any device when it is null).
bool ReachesDeviceEntry(const model::State& s, uint64_t pid, uint64_t first, uint64_t end,
                        const DeviceId* other_than);

}  // namespace hmm::props

#endif  // HMMREF_PROPS_MODEL_QUERY_H_
