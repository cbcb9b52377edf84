// File: model/fault.cc
//
// The fault path and its three users: CPU loads (CpuRead), CPU stores
// (CpuWrite) and long-term pins (PinUserPages). Each walks its range page by
// page in address order and faults each page in before touching it; a
// failure leaves the pages before it faulted in (and, for a store, written),
// as copy_to_user() returning a short count does. A device entry is never
// read or written by the CPU: reaching one runs its devmem's fault callback,
// which migrates the page back to system memory (docs/migrate.md), and the
// access goes on there; it fails only if the page cannot move (RAM full).

#include <algorithm>
#include <utility>
#include <vector>

#include "model/address_space.h"
#include "model/anon_vma.h"
#include "model/kernel.h"
#include "model/mirror_walk.h"

namespace hmm::model {
namespace {

enum class Access { kRead, kWrite };

// Whether the VMA allows the access: write needs kProtWrite; read needs
// kProtRead or kProtWrite (on x86 a writable page is readable), or kProtExec
// (kept under linux-6.1 only: an executable page is readable too).
// Mirrors: arch/x86/mm/fault.c access_error().
bool VmaAllows(const Vma& vma, Access access) {
  if (access == Access::kWrite) return (vma.prot & kProtWrite) != 0;
  return (vma.prot & (kProtRead | kProtWrite | kProtExec)) != 0;
}

// Maps at vpn the shared object's page for it, allocated zeroed on first use.
// linux-6.1: a page at or past the object's size is SIGBUS (kFault, D7).
// Mirrors: mm/shmem.c shmem_fault(), shmem_get_folio_gfp() (the i_size check).
Errno MapShmemPage(State& s, uint64_t ram_pages, Process& p, const Vma& vma, Vpn vpn, bool write) {
  SharedObject& obj = s.objects.at(vma.object);
  const uint64_t pgoff = vma.pgoff + (vpn.value - vma.start.value);
  // linux-6.1: is the page past the shmem file's end?
  if (Linux61(s) && pgoff >= obj.size && obj.pages.count(pgoff) == 0) return Errno::kFault;
  if (obj.pages.count(pgoff) == 0) {
    Result<PageId> page = AllocPage(s, ram_pages, Page{});
    if (!page.ok()) return page.err;
    obj.pages[pgoff] = page.value;
  }
  p.ptes[vpn] = Pte{false, obj.pages.at(pgoff), write};
  return Errno::kOk;
}

// linux-6.1: a read fault of a shmem VMA first maps the object's pages that
// exist around vpn: from vpn rounded down to 16 pages (but not below the
// VMA) to 16 pages on, the VMA's end or the page table's, whichever is
// first, each where no PTE is, writable iff the VMA is (D22).
// Mirrors: mm/memory.c do_read_fault(), do_fault_around(); mm/filemap.c
// filemap_map_pages() (fault_around_bytes: 64 KiB).
void FaultAround(State& s, Process& p, const Vma& vma, Vpn vpn) {
  constexpr uint64_t kFaultAroundPages = 16, kPtrsPerPte = 512;
  const SharedObject& obj = s.objects.at(vma.object);
  const uint64_t first = std::max(vpn.value & ~(kFaultAroundPages - 1), vma.start.value);
  const uint64_t table_end = (first / kPtrsPerPte + 1) * kPtrsPerPte;
  const uint64_t last = std::min({table_end, vma.end.value, first + kFaultAroundPages});
  for (uint64_t v = first; v < last; ++v) {
    auto page = obj.pages.find(vma.pgoff + (v - vma.start.value));
    if (page == obj.pages.end() || p.ptes.count(Vpn(v)) != 0) continue;
    p.ptes[Vpn(v)] = Pte{false, page->second, (vma.prot & kProtWrite) != 0};
  }
}

// A read fault: a missing PTE of a private VMA maps the zero page; of a
// shared VMA, the object's page, writable iff the VMA is.
// Mirrors: mm/memory.c do_anonymous_page() (zero page), do_read_fault().
Errno ReadFault(State& s, uint64_t ram_pages, Process& p, const Vma& vma, Vpn vpn) {
  // Is a PTE present already?
  if (p.ptes.count(vpn) != 0) return Errno::kOk;
  // Is the VMA shared? (linux-6.1 maps its neighbours first, D22.)
  if (vma.shared && Linux61(s)) FaultAround(s, p, vma, vpn);
  if (vma.shared) return MapShmemPage(s, ram_pages, p, vma, vpn, (vma.prot & kProtWrite) != 0);
  p.ptes[vpn] = Pte{true, 0, false};
  return Errno::kOk;
}

// Replaces a read-only private PTE's page by a writable copy of it (the zero
// page copies as an all-zero page). The old page keeps its other references.
// Once the copy is allocated, pid's mirrors are notified of the one page.
// Mirrors: mm/memory.c wp_page_copy().
Errno WpPageCopy(State& s, uint64_t ram_pages, Pid pid, Vpn vpn, Pte& pte) {
  const Page contents = pte.zero ? Page{} : s.pages.at(pte.page);
  Result<PageId> copy = AllocPage(s, ram_pages, contents);
  if (!copy.ok()) return copy.err;
  AnonVmaPrepare(s, s.procs.at(pid), vpn);
  MmuNotifierInvalidate(s, pid, vpn, VpnAdd(vpn, 1));
  pte = Pte{false, copy.value, true};
  pte.dirty = Linux61(s);
  SetAnonRmap(s, pte, s.procs.at(pid), vpn);
  return Errno::kOk;
}

// A write fault: afterwards the PTE at vpn is writable and maps a page this
// process may write (exclusive when private).
// Mirrors: mm/memory.c do_anonymous_page(), do_shared_fault(), do_wp_page().
Errno WriteFault(State& s, uint64_t ram_pages, Pid pid, Process& p, const Vma& vma, Vpn vpn) {
  auto it = p.ptes.find(vpn);
  // Is there no PTE yet? A new page (private) or the object's page (shared).
  if (it == p.ptes.end() && vma.shared) return MapShmemPage(s, ram_pages, p, vma, vpn, true);
  if (it == p.ptes.end()) {
    Result<PageId> page = AllocPage(s, ram_pages, Page{});
    if (!page.ok()) return page.err;
    AnonVmaPrepare(s, p, vpn);
    p.ptes[vpn] = Pte{false, page.value, true};
    p.ptes.at(vpn).dirty = Linux61(s);
    SetAnonRmap(s, p.ptes.at(vpn), p, vpn);
    return Errno::kOk;
  }
  Pte& pte = it->second;
  // Is the PTE writable already?
  if (pte.write) return Errno::kOk;
  // Is the VMA shared? The page is the object's: made writable (wp_page_shared()).
  if (vma.shared) {
    pte.write = true;
    return Errno::kOk;
  }
  // Is it the zero page, or a page some other PTE maps? Copy it (COW break).
  if (pte.zero || CountPtes(s, pte.page) > 1) return WpPageCopy(s, ram_pages, pid, vpn, pte);
  // Only this PTE maps it: reuse it (wp_page_reuse(); the page moves to this
  // VMA's anon_vma, page_move_anon_rmap()).
  pte.write = true;
  pte.dirty = Linux61(s);
  SetAnonRmap(s, pte, p, vpn);
  return Errno::kOk;
}

// Logs the devmem fault callback of a CPU access reaching a device entry.
// Mirrors: mm/memory.c do_swap_page() -> device_private_entry_fault(),
// mm/hmm.c hmm_devmem_fault() (6.1: pgmap->ops->migrate_to_ram()).
void LogDeviceFault(State& s, Pid pid, Vpn vpn, uint64_t pfn) {
  DeviceEvent event;
  event.kind = DeviceEvent::kFault;
  event.devmem = DevmemOfPfn(s, pfn);
  event.pfn = pfn;
  event.pid = pid.value;
  event.addr = VpnToAddr(vpn);
  s.events.push_back(event);
}

}  // namespace

// REQUIRES: pid is live.
// Mirrors: mm/memory.c handle_mm_fault(), as called from a user access fault.
Errno Kernel::FaultIn(Pid pid, Vpn vpn, bool write) {
  Process& p = s_.procs.at(pid);
  const Vma* vma = FindVma(p, vpn);
  const Access access = write ? Access::kWrite : Access::kRead;
  // Is the address inside a VMA?
  if (vma == nullptr) return Errno::kFault;
  // Does the VMA allow the access? (Before any entry is looked at, as the
  // arch fault handler's access_error() runs before handle_mm_fault().)
  if (!VmaAllows(*vma, access)) return Errno::kFault;
  // Is it a device entry? The owner's fault callback runs (logged) and
  // migrates the page back to system memory (docs/migrate.md), or, when it
  // cannot, answers SIGBUS and the entry stays. The fault then goes on with
  // the page in system memory (MigrateVma changes no VMA: vma stays valid).
  auto pte = p.ptes.find(vpn);
  if (pte != p.ptes.end() && pte->second.device) {
    const uint64_t pfn = pte->second.device_pfn;
    LogDeviceFault(s_, pid, vpn, pfn);
    if (DmirrorDevmemFault(pid, vpn, pfn) != Errno::kOk) return Errno::kFault;
  }
  if (write) return WriteFault(s_, ram_pages_, pid, p, *vma, vpn);
  return ReadFault(s_, ram_pages_, p, *vma, vpn);
}

// Mirrors: a user load through mm/memory.c handle_mm_fault() (copy_to_user()).
Result<std::vector<uint8_t>> Kernel::CpuRead(Pid pid, uint64_t addr, uint64_t len) {
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Is the length within 1..kMaxAccess?
  if (len == 0 || len > kMaxAccess) return Errno::kInval;
  // Does the range end at or below TASK_SIZE?
  if (addr > TaskSize(s_) - len) return Errno::kFault;
  // Loop invariant: out holds [addr, addr + i); their pages are faulted in.
  std::vector<uint8_t> out;
  for (uint64_t i = 0; i < len; ++i) {
    const uint64_t a = addr + i;
    if (i == 0 || a % kPageSize == 0) {
      const Errno err = FaultIn(pid, AddrToVpn(a), /*write=*/false);
      if (err != Errno::kOk) return err;
    }
    const Pte& pte = s_.procs.at(pid).ptes.at(AddrToVpn(a));
    out.push_back(pte.zero ? 0 : s_.pages.at(pte.page).At(a % kPageSize));
  }
  return out;
}

// Mirrors: a user store through mm/memory.c handle_mm_fault() (copy_from_user()).
Errno Kernel::CpuWrite(Pid pid, uint64_t addr, const std::vector<uint8_t>& bytes) {
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Is the length within 1..kMaxAccess?
  if (bytes.empty() || bytes.size() > kMaxAccess) return Errno::kInval;
  // Does the range end at or below TASK_SIZE?
  if (addr > TaskSize(s_) - bytes.size()) return Errno::kFault;
  // Loop invariant: [addr, addr + i) is written; its pages are faulted in.
  for (uint64_t i = 0; i < bytes.size(); ++i) {
    const uint64_t a = addr + i;
    if (i == 0 || a % kPageSize == 0) {
      const Errno err = FaultIn(pid, AddrToVpn(a), /*write=*/true);
      if (err != Errno::kOk) return err;
    }
    Pte& pte = s_.procs.at(pid).ptes.at(AddrToVpn(a));
    s_.pages.at(pte.page).Set(a % kPageSize, bytes[i]);
    pte.dirty = Linux61(s_);  // the store sets the dirty bit (linux-6.1 keeps it)
  }
  return Errno::kOk;
}

// Mirrors: mm/gup.c pin_user_pages() with FOLL_WRITE | FOLL_LONGTERM
// (__get_user_pages() faulting each page with FAULT_FLAG_WRITE).
Result<PinId> Kernel::PinUserPages(Pid pid, uint64_t addr, uint64_t npages) {
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Is addr page-aligned?
  if (!PageAligned(addr)) return Errno::kInval;
  // Is npages within 1..kMaxPinPages?
  if (npages == 0 || npages > kMaxPinPages) return Errno::kInval;
  // Does the range end at or below TASK_SIZE?
  if (addr > TaskSize(s_) - npages * kPageSize) return Errno::kFault;
  // Loop invariant: pages[i] is the page now mapped, writable, at page i.
  // On failure the pins taken so far are dropped: the pages stay mapped.
  std::vector<PageId> pages;
  for (uint64_t i = 0; i < npages; ++i) {
    const Vpn vpn = VpnAdd(AddrToVpn(addr), i);
    const Errno err = FaultIn(pid, vpn, /*write=*/true);
    if (err != Errno::kOk) return err;
    pages.push_back(s_.procs.at(pid).ptes.at(vpn).page);
  }
  const PinId pin(s_.next_pin++);
  s_.pins[pin] = std::move(pages);
  return pin;
}

}  // namespace hmm::model
