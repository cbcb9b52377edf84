// File: model/dmirror_migrate.cc
//
// The dummy device's migration (docs/migrate.md), as Linux 6.1's
// lib/test_hmm.c: its allocator of device pages (FAIL_ALLOC, the lowest free
// page of the device's devmems, a new 256 MiB chunk), the ioctls
// MIGRATE_TO_DEV (in pieces of 64 pages, then read back from the pt),
// MIGRATE_TO_SYS, RELEASE and FLAGS, and migrate_to_ram: the CPU fault on a
// device entry migrates that one page back to system memory.

#include <algorithm>
#include <set>
#include <vector>

#include "model/address_space.h"
#include "model/anon_vma.h"
#include "model/kernel.h"
#include "model/migrate_walk.h"
#include "model/mirror_walk.h"

namespace hmm::model {
namespace {

// The device-to-system alloc_and_copy of MIGRATE_TO_SYS and of the CPU fault:
// for each device page that migrates (under linux-6.1 also a coherent
// device's page), a system page (FAIL_ALLOC of `flags` fails it, once; RAM
// full fails it), the address erased from `pt`'s mirror, the device page
// copied, dst writable iff src was. flags and pt: the file that asked
// (MIGRATE_TO_SYS); on the CPU fault path no flags, and the pt of the file
// whose MIGRATE_TO_DEV allocated the page under linux-6.1 (none otherwise).
// Mirrors: lib/test_hmm.c dmirror_devmem_fault_alloc_and_copy().
void DmirrorDevmemFaultAllocAndCopy(State& s, uint64_t ram_pages, Mirror* flags, Mirror* pt,
                                    MigrateVma& args) {
  constexpr uint64_t kDevicePage = kMigratePfnValid | kMigratePfnMigrate | kMigratePfnDevice;
  constexpr uint64_t kPage = kMigratePfnValid | kMigratePfnMigrate;
  for (uint64_t i = 0; i < args.src.size(); ++i) {
    const uint64_t src = args.src[i];
    const uint64_t pfn = MigratePfnToPfn(src);
    // Is it not a device page (private, or a coherent device's) that migrates?
    const bool coherent = (src & kPage) == kPage && s.coherent.count(pfn) != 0;
    if ((src & kDevicePage) != kDevicePage && !coherent) continue;
    // Does FAIL_ALLOC fail this allocation? Once.
    if (flags != nullptr && (flags->flags & kDmirrorFlagFailAlloc) != 0) {
      flags->flags &= ~kDmirrorFlagFailAlloc;
      continue;
    }
    // Is RAM full?
    const Page& contents = coherent ? s.pages.at(pfn) : DevicePageContents(s, pfn);
    Result<PageId> page = AllocPage(s, ram_pages, contents);
    if (!page.ok()) continue;
    const Vpn vpn = VpnAdd(AddrToVpn(args.start), i);
    if (pt != nullptr) PtErase(*pt, vpn, VpnAdd(vpn, 1));
    args.dst[i] = MigratePfn(page.value) | kMigratePfnLocked | (src & kMigratePfnWrite);
  }
}

// MIGRATE_TO_DEV's finalize_and_map: each entry that still migrates goes into
// the mirror's pt as its device page, writable iff dst is.
// Mirrors: lib/test_hmm.c dmirror_migrate_finalize_and_map().
void DmirrorMigrateFinalizeAndMap(Mirror& m, const MigrateVma& args) {
  for (uint64_t i = 0; i < args.src.size(); ++i) {
    // Did it not migrate?
    if ((args.src[i] & kMigratePfnMigrate) == 0) continue;
    // A device-private page's backing page, or a coherent page itself.
    const uint64_t dst = args.dst[i];
    const uint64_t pfn = MigratePfnToPfn(dst);
    Pte mapping = (dst & kMigratePfnDevice) != 0 ? DeviceTarget(pfn) : PageTarget(pfn);
    mapping.write = (dst & kMigratePfnWrite) != 0;
    PtStore(m, VpnAdd(AddrToVpn(args.start), i), mapping);
  }
}

// The entries that migrated: kMigratePfnValid and kMigratePfnMigrate after the
// pages phase (finalize does not change src).
// Mirrors: lib/test_hmm.c dmirror_successful_migrated_pages().
uint64_t DmirrorSuccessfulMigratedPages(const MigrateVma& args) {
  constexpr uint64_t kMoved = kMigratePfnValid | kMigratePfnMigrate;
  return std::count_if(args.src.begin(), args.src.end(),
                       [](uint64_t mpfn) { return (mpfn & kMoved) == kMoved; });
}

// The device pages of `device` that some CPU entry maps, in pfn order; for a
// coherent device (linux-6.1, D14) its pages, by page id.
std::vector<uint64_t> MappedDevicePages(const State& s, DeviceId device) {
  std::set<uint64_t> pfns;
  for (const auto& [page, owner] : s.coherent) {
    if (owner == device) pfns.insert(page);
  }
  for (const auto& [pid, proc] : s.procs) {
    for (const auto& [vpn, pte] : proc.ptes) {
      if (pte.device && OwnerOfDevicePfn(s, pte.device_pfn) == device) pfns.insert(pte.device_pfn);
    }
  }
  return std::vector<uint64_t>(pfns.begin(), pfns.end());
}

// One piece of RELEASE's eviction, pfns[from, to): every mapping of each page
// loses its mirrors' entries first (the whole piece is unmapped before any
// copy); then each page in order moves to a new system page with its contents,
// all its mappings with their write bits, and its entries' references go
// (page_free unless the driver holds it; a coherent page is freed when
// nothing maps it). Returns kNoMem when RAM runs out: that page and the rest
// of the piece stay on the device.
// Mirrors: lib/test_hmm.c dmirror_device_evict_chunk(); mm/migrate_device.c
// migrate_device_range(), migrate_device_pages(), migrate_device_finalize().
Errno DmirrorEvictPiece(State& s, uint64_t ram_pages, bool coherent,
                        const std::vector<uint64_t>& pfns, size_t from, size_t to) {
  auto target = [coherent](uint64_t id) { return coherent ? PageTarget(id) : DeviceTarget(id); };
  for (size_t i = from; i < to; ++i) {
    // The rmap walk of try_to_migrate() (linux-6.1: the VMAs of the page's
    // anon_vma, D17; otherwise its mappings).
    for (const auto& [pid, vpn] : TryToMigrateWalk(s, target(pfns[i]), Pid(0), Vpn(0))) {
      MmuNotifierInvalidate(s, pid, vpn, VpnAdd(vpn, 1));
    }
  }
  for (size_t i = from; i < to; ++i) {
    const Page& contents = coherent ? s.pages.at(pfns[i]) : DevicePageContents(s, pfns[i]);
    Result<PageId> page = AllocPage(s, ram_pages, contents);
    // Is RAM full? The rest of the piece stays.
    if (!page.ok()) return page.err;
    RemoveMigrationPtes(s, target(pfns[i]), PageTarget(page.value));
    CopyAnonRmap(s, target(pfns[i]), PageTarget(page.value));
    if (!coherent) PutZoneDevicePage(s, pfns[i]);
  }
  ReleaseUnreferenced(s);
  return Errno::kOk;
}

}  // namespace

// Mirrors: lib/test_hmm.c dmirror_devmem_alloc_page(), dmirror_allocate_chunk()
// (and the FAIL_ALLOC flag of later kernels).
Result<uint64_t> Kernel::DmirrorDevmemAllocPage(uint64_t mirror) {
  Mirror& m = s_.mirrors.at(mirror);
  // Does FAIL_ALLOC fail this allocation? Once.
  if ((m.flags & kDmirrorFlagFailAlloc) != 0) {
    m.flags &= ~kDmirrorFlagFailAlloc;
    return Errno::kNoMem;
  }
  const DeviceId device = m.device;
  // linux-6.1: a coherent device's page (its id; D14).
  if (DeviceCoherent(s_, device)) return AllocCoherentPage(s_, device, Page{});
  std::vector<uint64_t> devmems;
  for (const auto& [id, devmem] : s_.devmems) {
    if (devmem.device == device) devmems.push_back(id);
  }
  // Has one of the device's devmems a free page? The first in id order, its lowest.
  for (uint64_t id : devmems) {
    Result<uint64_t> pfn = DevicePageAlloc(id);
    if (pfn.ok()) return pfn;
  }
  // Is there room for one more chunk? Its first page.
  Result<uint64_t> chunk = HmmDevmemAdd(device, kDmirrorChunkBytes);
  if (!chunk.ok()) return chunk.err;
  s_.devmems.at(chunk.value).dmirror_chunk = true;
  return DevicePageAlloc(chunk.value);
}

// MIGRATE_TO_DEV's alloc_and_copy: for each system page or empty slot that
// migrates, a device page (a declined page stays), the page copied into it
// (an empty slot stays zero), dst writable iff src was, or for an empty slot
// iff the VMA is writable. Under linux-6.1 the page records the mirror
// (rpage->zone_device_data), and a coherent device's page is a page id
// without kMigratePfnDevice (D14).
// Mirrors: lib/test_hmm.c dmirror_migrate_alloc_and_copy().
void Kernel::DmirrorMigrateAllocAndCopy(uint64_t mirror, struct MigrateVma& args) {
  const Vma vma = *FindVma(s_.procs.at(args.pid), AddrToVpn(args.start));
  const bool coherent = DeviceCoherent(s_, s_.mirrors.at(mirror).device);
  for (uint64_t i = 0; i < args.src.size(); ++i) {
    const uint64_t src = args.src[i];
    // Is it not migrating, or a device page already?
    if ((src & kMigratePfnMigrate) == 0 || (src & kMigratePfnDevice) != 0) continue;
    // Does the allocation fail? The page is declined.
    Result<uint64_t> pfn = DmirrorDevmemAllocPage(mirror);
    if (!pfn.ok()) continue;
    const bool slot = (src & kMigratePfnValid) == 0;
    Page& contents = coherent ? s_.pages.at(pfn.value) : DevicePageContents(s_, pfn.value);
    if (!slot) contents = s_.pages.at(MigratePfnToPfn(src));
    if (Linux61(s_) && !coherent) s_.device_page_mirror[pfn.value] = mirror;
    const bool write = (src & kMigratePfnWrite) != 0 || (slot && (vma.prot & kProtWrite) != 0);
    args.dst[i] = MigratePfn(pfn.value) | (coherent ? 0 : uint64_t{kMigratePfnDevice}) |
                  kMigratePfnLocked | (write ? uint64_t{kMigratePfnWrite} : 0);
  }
}

// READ's guards, then [addr, addr + npages pages) in pieces, one migrate_vma
// each: the VMA at the piece's start must exist and have PROT_READ (else
// kInval; earlier pieces stay migrated); a piece ends at the end, after
// kDmirrorMigrateChunk pages, or at the VMA's end. to_device: select System
// with MIGRATE_TO_DEV's callbacks; else DevicePrivate with MIGRATE_TO_SYS's.
// owner: the mirror's device. Returns the pages that moved, over all pieces.
// Mirrors: lib/test_hmm.c dmirror_migrate_to_device(), dmirror_migrate_to_system().
Result<uint64_t> Kernel::DmirrorMigrate(uint64_t mirror, uint64_t addr, uint64_t npages,
                                        bool to_device) {
  const Errno guards = DmirrorGuards(s_, mirror, addr, npages, npages != 0);
  if (guards != Errno::kOk) return guards;
  const uint64_t end = addr + npages * kPageSize;
  MigrateVmaOps ops;
  ops.alloc_and_copy = [this, mirror, to_device](struct MigrateVma& args) {
    Mirror* m = &s_.mirrors.at(mirror);
    if (to_device) DmirrorMigrateAllocAndCopy(mirror, args);
    if (!to_device) DmirrorDevmemFaultAllocAndCopy(s_, ram_pages_, m, m, args);
  };
  // Device memory comes back with the select of its kind (dmirror_select_device()).
  const uint32_t back = DeviceCoherent(s_, s_.mirrors.at(mirror).device)
                            ? kMigrateVmaSelectDeviceCoherent
                            : kMigrateVmaSelectDevicePrivate;
  if (to_device) {
    ops.finalize_and_map = [this, mirror](const struct MigrateVma& args) {
      DmirrorMigrateFinalizeAndMap(s_.mirrors.at(mirror), args);
    };
  }
  uint64_t moved = 0;
  // Loop invariant: the pieces of [addr, a) are migrated; moved counts their pages that moved.
  for (uint64_t a = addr; a < end;) {
    const Mirror& m = s_.mirrors.at(mirror);
    const Vma* vma = FindVma(s_.procs.at(m.pid), AddrToVpn(a));
    // Is there no VMA at a, or one without PROT_READ?
    if (vma == nullptr || (vma->prot & kProtRead) == 0) return Errno::kInval;
    struct MigrateVma args;
    args.pid = m.pid;
    args.start = a;
    args.end = std::min({end, a + kDmirrorMigrateChunk * kPageSize, VpnToAddr(vma->end)});
    args.select = to_device ? uint32_t{kMigrateVmaSelectSystem} : back;
    args.owner = m.device;
    const Errno err = MigrateVma(ops, &args);
    if (err != Errno::kOk) return err;
    moved += DmirrorSuccessfulMigratedPages(args);
    a = args.end;
  }
  return moved;
}

// Mirrors: lib/test_hmm.c dmirror_migrate_to_device() (6.1).
Result<DmirrorResult> Kernel::DmirrorMigrateToDev(uint64_t mirror, uint64_t addr, uint64_t npages) {
  const Result<uint64_t> moved = DmirrorMigrate(mirror, addr, npages, /*to_device=*/true);
  if (!moved.ok()) return moved.err;
  // Read back from the pt as READ copies, without faulting: is a page missing?
  // (linux-6.1: or one the driver cannot read, D12/D15)
  DmirrorResult out;
  const Vpn start = AddrToVpn(addr);
  const PtAccess access = DmirrorDoRead(s_, s_.mirrors.at(mirror), start, VpnAdd(start, npages), &out);
  if (access == PtAccess::kMissing) return Errno::kNoEnt;
  if (access != PtAccess::kDone) return Splat(SplatKindOf(access), SplatWhere(access));
  return out;
}

// Mirrors: lib/test_hmm.c dmirror_migrate_to_system() (6.1).
Result<DmirrorResult> Kernel::DmirrorMigrateToSys(uint64_t mirror, uint64_t addr, uint64_t npages) {
  const Result<uint64_t> moved = DmirrorMigrate(mirror, addr, npages, /*to_device=*/false);
  if (!moved.ok()) return moved.err;
  return DmirrorResult{moved.value, 0, {}};
}

// Mirrors: lib/test_hmm.c dmirror_device_evict_chunk() for each chunk.
Errno Kernel::DmirrorDeviceEvict(DeviceId device) {
  const std::vector<uint64_t> pfns = MappedDevicePages(s_, device);
  const bool coherent = DeviceCoherent(s_, device);
  Errno evicted = Errno::kOk;
  // Loop invariant: the pages of pfns[0, from) are in system memory.
  for (size_t from = 0; from < pfns.size() && evicted == Errno::kOk; from += kDmirrorMigrateChunk) {
    const size_t to = std::min<size_t>(pfns.size(), from + kDmirrorMigrateChunk);
    evicted = DmirrorEvictPiece(s_, ram_pages_, coherent, pfns, from, to);
  }
  return evicted;
}

// Evicts all of the mirror's device's memory in pieces of
// kDmirrorMigrateChunk mapped pages, in pfn order, until RAM runs out; then
// removes the chunks the driver added that nothing uses any more.
// Mirrors: lib/test_hmm.c dmirror_device_remove_chunks() (HMM_DMIRROR_RELEASE).
Errno Kernel::DmirrorRelease(uint64_t mirror) {
  // Is the mirror registered?
  if (s_.mirrors.count(mirror) == 0) return Errno::kNoEnt;
  const DeviceId device = s_.mirrors.at(mirror).device;
  const Errno evicted = DmirrorDeviceEvict(device);
  std::vector<uint64_t> chunks;
  for (const auto& [id, devmem] : s_.devmems) {
    if (devmem.device == device && devmem.dmirror_chunk) chunks.push_back(id);
  }
  // A chunk with a page the trace holds (devpage_alloc) or a page left on
  // the device is busy and stays.
  for (uint64_t id : chunks) (void)HmmDevmemRemove(id);
  return evicted;
}

// Mirrors: lib/test_hmm.c HMM_DMIRROR_FLAGS (later kernels; not in 6.1).
Errno Kernel::DmirrorFlags(uint64_t mirror, uint64_t flags) {
  // Is the mirror registered?
  auto it = s_.mirrors.find(mirror);
  if (it == s_.mirrors.end()) return Errno::kNoEnt;
  // Are only known flags set?
  if ((flags & ~kDmirrorFlagFailAlloc) != 0) return Errno::kInval;
  it->second.flags = flags;
  return Errno::kOk;
}

// The CPU fault on a device entry (migrate_to_ram): the one page migrates back
// to system memory with select DevicePrivate, owner its device, and the fault
// page; all its mappings move. kFault (VM_FAULT_SIGBUS) when it stays on the
// device (RAM full): the entry stays.
// Mirrors: lib/test_hmm.c dmirror_devmem_fault() (6.1).
Errno Kernel::DmirrorDevmemFault(Pid pid, Vpn vpn, uint64_t pfn) {
  struct MigrateVma args;
  args.pid = pid;
  args.start = VpnToAddr(vpn);
  args.end = args.start + kPageSize;
  args.select = kMigrateVmaSelectDevicePrivate;
  args.owner = OwnerOfDevicePfn(s_, pfn);
  args.fault_page = pfn;
  // linux-6.1: the driver erases the address from the pt of the file whose
  // MIGRATE_TO_DEV allocated the page (rpage->zone_device_data), if still open.
  auto owner = s_.device_page_mirror.find(pfn);
  Mirror* pt = nullptr;
  if (owner != s_.device_page_mirror.end() && s_.mirrors.count(owner->second) != 0) {
    pt = &s_.mirrors.at(owner->second);
  }
  MigrateVmaOps ops;
  ops.alloc_and_copy = [this, pt](struct MigrateVma& a) {
    DmirrorDevmemFaultAllocAndCopy(s_, ram_pages_, nullptr, pt, a);
  };
  // Does setup fail?
  if (MigrateVma(ops, &args) != Errno::kOk) return Errno::kFault;
  // Did the page stay on the device?
  if ((args.src[0] & kMigratePfnMigrate) == 0) return Errno::kFault;
  return Errno::kOk;
}

}  // namespace hmm::model
