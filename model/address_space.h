// File: model/address_space.h
//
// The helpers that model::Kernel's operations share: page arithmetic, VMA
// lookup and splitting, the first-fit search, unmapping a range, and page
// lifetime (allocation against ram_pages, release of whatever nothing refers
// to any more), and the device-page refcount that zapping and the devmem
// operations share. Private to //model:kernel. Each helper is a few lines over
// std::map, so that the operations read like the kernel functions they mirror.

#ifndef HMMREF_MODEL_ADDRESS_SPACE_H_
#define HMMREF_MODEL_ADDRESS_SPACE_H_

#include <cstdint>

#include "model/kernel.h"
#include "model/types.h"

namespace hmm::model {

// x rounded up to a whole page; wraps to 0 past 2^64, as PAGE_ALIGN does.
constexpr uint64_t PageAlign(uint64_t x) { return (x + kPageSize - 1) & kPageMask; }

// a + b as a mathematical integer, saturated at UINT64_MAX (never wraps).
constexpr uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

// The vpn `n` pages after `vpn`.
constexpr Vpn VpnAdd(Vpn vpn, uint64_t n) { return Vpn(vpn.value + n); }

// Whether the process `pid` is live.
bool IsLive(const State& s, Pid pid);

// --- The linux-6.1 profile (docs/divergences.md): where 6.1 differs, an
// operation branches on it at the rung or step that differs ---

// Whether s runs the linux-6.1 profile.
inline bool Linux61(const State& s) { return s.config.profile == Profile::kLinux61; }

// TASK_SIZE: kTaskSize; under linux-6.1 x86-64's 4-level TASK_SIZE_MAX,
// 2^47 - 4096 (arch/x86/include/asm/page_64_types.h), where the oracle's guest
// refuses a range.
inline uint64_t TaskSize(const State& s) {
  return Linux61(s) ? (uint64_t{1} << 47) - kPageSize : kTaskSize;
}
inline uint64_t MaxVpn(const State& s) { return TaskSize(s) >> kPageShift; }

// Whether device `device` is device-coherent: under linux-6.1, devices 2 and 3
// (the guest loads lib/test_hmm.c with spm_addr_dev0/1, docs/oracle.md), whose
// pages the CPU maps like system pages (docs/divergences.md D14).
inline bool DeviceCoherent(const State& s, DeviceId device) {
  return Linux61(s) && device.value >= 2 && device.value < kMaxDevices;
}

// The VMA containing vpn, or null.
// Mirrors: mm/mmap.c vma_lookup().
const Vma* FindVma(const Process& p, Vpn vpn);

// Whether [start, end) ends at or below max_vpn and no VMA intersects it.
bool RangeFree(const Process& p, Vpn start, Vpn end, uint64_t max_vpn = kMaxVpn);

// Whether every page of [start, end) lies in some VMA.
bool RangeCovered(const Process& p, Vpn start, Vpn end);

// Sets *start to the lowest vpn at or above kMmapBase that begins a free gap
// of npages below max_vpn; returns false when there is none.
// Mirrors: mm/mmap.c unmapped_area() (bottom-up; docs/model.md "Mmap").
bool FirstFit(const Process& p, uint64_t npages, Vpn* start, uint64_t max_vpn = kMaxVpn);

// Splits the VMA that strictly contains vpn (start < vpn < end) in two at vpn;
// a shared VMA's second half maps the object further on (under linux-6.1 a
// private one's vm_pgoff moves on too, and both halves are relinked in the
// rmap trees, __split_vma()). No-op otherwise.
// Mirrors: mm/mmap.c split_vma().
void SplitVmaAt(State& s, Process& p, Vpn vpn);

// Removes the VMAs and PTEs of [start, end) in `pid`, splitting VMAs at the
// edges, then releases what nothing refers to any more. Every page of the
// range inside a VMA is notified to pid's mirrors first (docs/mirror.md: the
// munmap, MAP_FIXED and mremap rows); under linux-6.1 the notification is
// the whole [start, end) once, when some VMA meets it (unmap_vmas() is given
// the munmap's range), which D1's inclusive end makes observable.
// Mirrors: mm/mmap.c do_mas_munmap() (unmap_region() -> the mmu notifier).
void UnmapRange(State& s, Pid pid, Vpn start, Vpn end);

// munmap's argument rungs (addr page-aligned, len non-zero, the rounded range
// within TASK_SIZE: kInval), then UnmapRange. mremap unmaps through it too.
// REQUIRES: pid is live.
// Mirrors: mm/mmap.c do_mas_munmap() (6.1).
Errno DoMunmap(State& s, Pid pid, uint64_t addr, uint64_t len);

// Removes every PTE of [start, end) in `pid`, in address order. A device entry
// drops its page's reference as it goes, so a page_free is logged at the drop
// of a page's last reference (docs/devmem.md). Releases no RAM page: the
// caller does.
// Mirrors: mm/memory.c zap_page_range_single(), zap_pte_range().
void ZapPtes(State& s, Pid pid, Vpn start, Vpn end);

// Whether the PTE maps a RAM page: neither the zero page nor a device entry.
inline bool MapsPage(const Pte& pte) { return !pte.zero && !pte.device; }

// How many PTEs, over all processes, map `page` (the zero page and device
// entries never count).
uint64_t CountPtes(const State& s, PageId page);

// Whether some pin holds `page`.
bool IsPinned(const State& s, PageId page);

// A new page holding `contents`, or kNoMem when ram_pages pages exist already.
// Mirrors: mm/page_alloc.c __alloc_pages() failing as VM_FAULT_OOM.
Result<PageId> AllocPage(State& s, uint64_t ram_pages, const Page& contents);

// linux-6.1: a new page of device-coherent memory of `device` holding
// `contents` (D14). The device's 256 MiB chunk is never exhausted in a trace.
// Mirrors: lib/test_hmm.c dmirror_devmem_alloc_page() (MEMORY_DEVICE_COHERENT).
PageId AllocCoherentPage(State& s, DeviceId device, const Page& contents);

// Frees every shared object that no VMA maps, then every page that no PTE,
// object or pin refers to. Called after each step that drops a reference,
// so a page dies the moment its last reference goes.
// Mirrors: mm/mmap.c remove_vma() (fput of the shmem file), mm/swap.c folio_put().
void ReleaseUnreferenced(State& s);

// --- Device pages (defined in devmem.cc) ---
// A device page's refcount is derived, never stored: 1 (the ZONE_DEVICE base
// reference) + 1 if the driver holds it + 1 per device entry naming it. The
// page is free at 1 (kernel/memremap.c, the 2017 rule).

// The id of the live devmem whose range holds pfn; 0 when none does.
uint64_t DevmemOfPfn(const State& s, uint64_t pfn);

// How many device entries, over all processes, name pfn.
uint64_t CountDeviceEntries(const State& s, uint64_t pfn);

// 1 + held + entries, for a pfn of a live devmem.
uint64_t DevicePageRefcount(const State& s, uint64_t pfn);

// Logs page_free(pfn) when its page is free now (refcount 1).
// REQUIRES: the caller has just dropped one reference (an entry or `held`).
// Mirrors: kernel/memremap.c put_zone_device_private_or_public_page().
void PutZoneDevicePage(State& s, uint64_t pfn);

}  // namespace hmm::model

#endif  // HMMREF_MODEL_ADDRESS_SPACE_H_
