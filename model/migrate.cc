// File: model/migrate.cc
//
// migrate_vma (docs/migrate.md): the seed's one call with the driver's two
// callbacks, with 6.1's selection (what to select, pgmap_owner). Guards, then
// the phases in order: collect, unmap and the pin check, the driver's
// alloc_and_copy, pages, the owner device's mirrors, the driver's
// finalize_and_map, finalize. Every page is independent: a per-page failure
// only clears that page's kMigratePfnMigrate (invariant 26).
//
// The model has no migration-entry kind (migrate_walk.h): between collect and
// finalize only the driver's callbacks run, and they touch no page table, so
// the CPU entries stay as they were until finalize rewrites the entries of
// each page that moved. What the kernel does with migration entries that is
// observable here is done at the phase that does it: the invalidations.
//
// src/dst entries name a system page by its PageId, a device page by its
// device pfn and kMigratePfnDevice (on dst too: the two name spaces overlap).

#include <cstdint>
#include <utility>
#include <vector>

#include "model/address_space.h"
#include "model/anon_vma.h"
#include "model/kernel.h"
#include "model/migrate_walk.h"
#include "model/mirror_walk.h"

namespace hmm::model {

// --- Shared with dmirror_migrate.cc (migrate_walk.h) ---

Pte PageTarget(PageId page) { return Pte{false, page, false}; }

Pte DeviceTarget(uint64_t pfn) {
  Pte target;
  target.device = true;
  target.device_pfn = pfn;
  return target;
}

std::vector<std::pair<Pid, Vpn>> MappingsOf(const State& s, const Pte& target) {
  std::vector<std::pair<Pid, Vpn>> out;
  for (const auto& [pid, proc] : s.procs) {
    for (const auto& [vpn, pte] : proc.ptes) {
      if (SameTarget(pte, target)) out.emplace_back(pid, vpn);
    }
  }
  return out;
}

void RemoveMigrationPtes(State& s, const Pte& old_target, const Pte& new_target) {
  for (const auto& [pid, vpn] : MappingsOf(s, old_target)) {
    Pte& pte = s.procs.at(pid).ptes.at(vpn);
    const bool write = pte.write;
    // Dirty from present to present only: a device-private entry has no
    // dirty bit (the migration entry's, linux-6.1).
    const bool dirty = pte.dirty && !pte.device && !new_target.device;
    pte = new_target;
    pte.write = write;
    pte.dirty = dirty;
  }
}

namespace {

constexpr uint64_t kMigrating = kMigratePfnValid | kMigratePfnMigrate;

// Whether a src entry names a page (not an empty slot) that still migrates.
bool PageMigrating(uint64_t mpfn) { return (mpfn & kMigrating) == kMigrating; }

bool Has(uint64_t mpfn, uint64_t flag) { return (mpfn & flag) != 0; }

// The page a src or dst entry names, as an entry's target.
// REQUIRES: mpfn has kMigratePfnValid.
Pte MigrateTarget(uint64_t mpfn) {
  const uint64_t pfn = MigratePfnToPfn(mpfn);
  return Has(mpfn, kMigratePfnDevice) ? DeviceTarget(pfn) : PageTarget(pfn);
}

// The guards of docs/migrate.md, in order.
// Mirrors: mm/migrate_device.c migrate_vma_setup() (6.1); mm/migrate.c
// migrate_vma() (4.14).
Errno MigrateVmaGuards(const State& s, const MigrateVma& args) {
  // Is the pid a live process?
  if (!IsLive(s, args.pid)) return Errno::kSrch;
  // Are start and end page-aligned, start < end, and end within kTaskSize?
  if (!PageAligned(args.start) || !PageAligned(args.end)) return Errno::kInval;
  if (args.start >= args.end || args.end > TaskSize(s)) return Errno::kInval;
  // Does one VMA hold [start, end)?
  const Vma* vma = FindVma(s.procs.at(args.pid), AddrToVpn(args.start));
  if (vma == nullptr || AddrToVpn(args.end) > vma->end) return Errno::kInval;
  // Is something selected?
  if (args.select == 0) return Errno::kInval;
  return Errno::kOk;
}

// What collect reports at vpn (docs/migrate.md, phase 1); 0: not collected.
// A collected page is locked (kMigratePfnLocked); an empty slot has no page.
// Mirrors: mm/migrate_device.c migrate_vma_collect_pmd(), migrate_vma_collect_hole().
uint64_t MigrateVmaCollectPte(const State& s, const MigrateVma& args, const Vma& vma, Vpn vpn) {
  const bool system = Has(args.select, kMigrateVmaSelectSystem);
  const auto& ptes = s.procs.at(args.pid).ptes;
  auto it = ptes.find(vpn);
  // Is there no entry? An empty slot, if System is selected and the VMA is
  // private anonymous (vma_is_anonymous()).
  if (it == ptes.end()) return system && !vma.shared ? uint64_t{kMigratePfnMigrate} : 0;
  const Pte& pte = it->second;
  // Is it the zero page? An empty slot if System is selected; not under v18
  // (vm_normal_page() is NULL, and the seed did not collect it).
  if (pte.zero) {
    return system && s.config.profile != Profile::kV18 ? uint64_t{kMigratePfnMigrate} : 0;
  }
  const uint64_t write = pte.write ? uint64_t{kMigratePfnWrite} : 0;
  // Is it a device entry? Collected if DevicePrivate is selected and its
  // device is the owner (page->pgmap->owner == pgmap_owner).
  if (pte.device) {
    const bool selected = Has(args.select, kMigrateVmaSelectDevicePrivate) &&
                          OwnerOfDevicePfn(s, pte.device_pfn) == args.owner;
    if (!selected) return 0;
    return MigratePfn(pte.device_pfn) | kMigratePfnDevice | kMigratePfnMigrate | kMigratePfnLocked |
           write;
  }
  // linux-6.1: a coherent device's page? Collected only with DeviceCoherent
  // selected and its device the owner; never as System (D14).
  auto coherent = s.coherent.find(pte.page);
  if (coherent != s.coherent.end()) {
    const bool selected = Has(args.select, kMigrateVmaSelectDeviceCoherent) &&
                          coherent->second == args.owner;
    if (!selected) return 0;
    return MigratePfn(pte.page) | kMigratePfnMigrate | kMigratePfnLocked | write;
  }
  // A present system page (private or shared): collected if System is selected.
  if (!system) return 0;
  return MigratePfn(pte.page) | kMigratePfnMigrate | kMigratePfnLocked | write;
}

// Whether src[0, i) already names the page mpfn names (it is locked, so
// folio_trylock() fails). REQUIRES: i <= src.size().
bool LockedEarlier(const std::vector<uint64_t>& src, uint64_t i, uint64_t mpfn) {
  if (!Has(mpfn, kMigratePfnValid)) return false;
  for (uint64_t j = 0; j < i; ++j) {
    if (Has(src[j], kMigratePfnValid) && SameTarget(MigrateTarget(src[j]), MigrateTarget(mpfn))) {
      return true;
    }
  }
  return false;
}

// Phase 1, inside one MMU_NOTIFY_MIGRATE bracket over [start, end) with
// pgmap_owner = owner: the mirrors of pid of every other device lose their
// entries there first (invariant 30); the owner's mirrors are skipped, as
// 6.1's driver skips its own migrations (under v18, which has no owner,
// every mirror is invalidated). Then src and dst get one entry per page.
// Mirrors: mm/migrate_device.c migrate_vma_collect().
void MigrateVmaCollect(State& s, MigrateVma& args, const Vma& vma) {
  const Vpn start = AddrToVpn(args.start);
  const uint64_t npages = AddrToVpn(args.end).value - start.value;
  const bool v18 = s.config.profile == Profile::kV18;
  const DeviceId owner = args.owner;
  MmuNotifierInvalidateIf(s, args.pid, start, AddrToVpn(args.end),
                          [v18, owner](const Mirror& m) { return v18 || m.device != owner; });
  args.src.assign(npages, 0);
  args.dst.assign(npages, 0);
  args.cpages = 0;
  // Loop invariant: src[0, i) holds what collect reported for the first i pages.
  for (uint64_t i = 0; i < npages; ++i) {
    uint64_t mpfn = MigrateVmaCollectPte(s, args, vma, VpnAdd(start, i));
    // Is the page collected already, at an earlier address? Not again.
    if (LockedEarlier(args.src, i, mpfn)) mpfn = 0;
    args.src[i] = mpfn;
    if (Has(mpfn, kMigratePfnMigrate)) ++args.cpages;
  }
}

// Phase 2: every other mapping of each collected page (other addresses, other
// processes after fork) becomes a migration entry too, each with the
// invalidation of the mirrors of the process that maps it there (an
// MMU_NOTIFY_CLEAR: no mirror skips it). Then the pin check: a system page
// with a GUP pin is restored (its entries stay) and unlocked; a device page
// always passes (4.14's special case).
// Mirrors: mm/migrate_device.c migrate_vma_unmap(), migrate_device_unmap()
// (try_to_migrate()), migrate_vma_check_page().
void MigrateVmaUnmap(State& s, MigrateVma& args) {
  const Vpn start = AddrToVpn(args.start);
  for (uint64_t i = 0; i < args.src.size(); ++i) {
    uint64_t& mpfn = args.src[i];
    // Is it an empty slot, or nothing?
    if (!PageMigrating(mpfn)) continue;
    // Its other mappings, through try_to_migrate() (under linux-6.1 its rmap
    // walk: collect's own address and VMAs that do not map it are notified
    // too, until no mapping is left; D17).
    const Pte target = MigrateTarget(mpfn);
    for (const auto& [pid, vpn] : TryToMigrateWalk(s, target, args.pid, VpnAdd(start, i))) {
      MmuNotifierInvalidate(s, pid, vpn, VpnAdd(vpn, 1));
    }
    // Is it a system page that a pin holds? It is not migrated.
    if (!Has(mpfn, kMigratePfnDevice) && IsPinned(s, MigratePfnToPfn(mpfn))) {
      mpfn &= ~(kMigratePfnMigrate | kMigratePfnLocked);
    }
  }
}

// Fills an empty slot with the driver's page: a device page as a
// device-private entry, a system page as a present PTE; writable iff the VMA
// is. The slot is still none or the zero page (nothing ran since collect).
// Mirrors: mm/migrate_device.c migrate_vma_insert_page().
void MigrateVmaInsertPage(State& s, Pid pid, const Vma& vma, Vpn vpn, uint64_t dst) {
  Pte entry = MigrateTarget(dst);
  entry.write = (vma.prot & kProtWrite) != 0;
  Process& p = s.procs.at(pid);
  AnonVmaPrepare(s, p, vpn);
  p.ptes[vpn] = entry;
  SetAnonRmap(s, entry, p, vpn);
}

// Whether a dst entry names device memory: a device-private page, or under
// linux-6.1 a coherent device's page.
bool DeviceDestination(const State& s, uint64_t dst) {
  return Has(dst, kMigratePfnDevice) || s.coherent.count(MigratePfnToPfn(dst)) != 0;
}

// Phase 4, per entry that still migrates: no destination -> not migrated; an
// empty slot -> the page is inserted; a shmem page to device memory -> not
// migrated (invariant 28: only private anonymous memory goes there); else the
// struct-page move succeeds.
// Mirrors: mm/migrate_device.c migrate_vma_pages(), __migrate_device_pages().
void MigrateVmaPages(State& s, MigrateVma& args, const Vma& vma) {
  const Vpn start = AddrToVpn(args.start);
  for (uint64_t i = 0; i < args.src.size(); ++i) {
    uint64_t& src = args.src[i];
    const uint64_t dst = args.dst[i];
    // Is it not migrating?
    if (!Has(src, kMigratePfnMigrate)) continue;
    // Did the driver give no page?
    if (!Has(dst, kMigratePfnValid)) {
      src &= ~kMigratePfnMigrate;
      continue;
    }
    // Is it an empty slot? The new page goes in.
    if (!Has(src, kMigratePfnValid)) {
      MigrateVmaInsertPage(s, args.pid, vma, VpnAdd(start, i), dst);
      continue;
    }
    // Is it a shmem page (page_mapping()), bound for device memory?
    if (vma.shared && DeviceDestination(s, dst)) src &= ~kMigratePfnMigrate;
  }
}

// After phase 4, before finalize_and_map: the mirrors of the owner device,
// skipped at collect, lose their entries exactly where the CPU's change:
// every mapping of a page that moves, every filled empty slot. A page that
// does not move keeps its device entries. Under v18 every mirror lost them at
// collect already; under linux-6.1 none does: 6.1 relies on the migrating
// file's own updates (the driver's callbacks), and the device's other mirrors
// keep their entries (stale once the page is freed, D15).
// Mirrors: lib/test_hmm.c dmirror_migrate_finalize_and_map() (6.1 updates only
// the migrating file's pt; hmmref every mirror of the device, docs/migrate.md).
void MigrateVmaInvalidateOwner(State& s, const MigrateVma& args) {
  // Under v18, was every mirror invalidated at collect? Under linux-6.1, is
  // every mirror of the owner left alone?
  if (s.config.profile == Profile::kV18 || Linux61(s)) return;
  const DeviceId owner = args.owner;
  const MirrorFilter owned = [owner](const Mirror& m) { return m.device == owner; };
  const Vpn start = AddrToVpn(args.start);
  for (uint64_t i = 0; i < args.src.size(); ++i) {
    const uint64_t src = args.src[i];
    // Is it a filled empty slot? Its own address.
    const Vpn vpn = VpnAdd(start, i);
    if (Has(src, kMigratePfnMigrate) && !Has(src, kMigratePfnValid)) {
      MmuNotifierInvalidateIf(s, args.pid, vpn, VpnAdd(vpn, 1), owned);
    }
    // Is it a page that moves? Every mapping of it.
    if (!PageMigrating(src)) continue;
    for (const auto& [pid, at] : MappingsOf(s, MigrateTarget(src))) {
      MmuNotifierInvalidateIf(s, pid, at, VpnAdd(at, 1), owned);
    }
  }
}

// A page that moved, at index i: its migration entries become the new page's,
// and a shmem page's object slot follows it (folio_migrate_mapping()).
// REQUIRES: src and dst name pages; the VMA holds the whole range.
void MovePage(State& s, const MigrateVma& args, const Vma& vma, uint64_t i) {
  const Pte old_target = MigrateTarget(args.src[i]);
  const Pte new_target = MigrateTarget(args.dst[i]);
  RemoveMigrationPtes(s, old_target, new_target);
  CopyAnonRmap(s, old_target, new_target);
  // Is it a private page? Only its entries named it.
  if (!vma.shared) return;
  const Vpn vpn = VpnAdd(AddrToVpn(args.start), i);
  s.objects.at(vma.object).pages[vma.pgoff + (vpn.value - vma.start.value)] = new_target.page;
}

}  // namespace

// Phase 6, per entry in order: a page that moved takes its entries along
// (invariant 21; the model's finalize leaves no migration entry, invariant
// 23); the old device page's collect reference goes, and each destination
// device page's allocation reference (page_free when nothing maps it,
// invariant 6); then the system pages nothing refers to any more (old pages
// that moved, unused destinations) return to the allocator.
// Mirrors: mm/migrate_device.c migrate_device_finalize().
void Kernel::MigrateVmaFinalize(const struct MigrateVma& args) {
  const Vma vma = *FindVma(s_.procs.at(args.pid), AddrToVpn(args.start));
  for (uint64_t i = 0; i < args.src.size(); ++i) {
    const uint64_t src = args.src[i];
    const uint64_t dst = args.dst[i];
    // Did a page move? Its entries follow it.
    if (PageMigrating(src)) MovePage(s_, args, vma, i);
    // Is the old page a device page? The collect reference goes.
    if (Has(src, kMigratePfnValid) && Has(src, kMigratePfnDevice)) {
      PutZoneDevicePage(s_, MigratePfnToPfn(src));
    }
    // Is the destination a device page? The driver's reference goes
    // (DevicePageAlloc left it held).
    if (Has(dst, kMigratePfnValid) && Has(dst, kMigratePfnDevice)) {
      (void)DevicePagePut(MigratePfnToPfn(dst));
    }
  }
  ReleaseUnreferenced(s_);
}

// Mirrors: mm/migrate.c migrate_vma() (4.14: one call, the driver's two
// callbacks); mm/migrate_device.c migrate_vma_setup(), migrate_vma_pages(),
// migrate_vma_finalize() (6.1).
Errno Kernel::MigrateVma(const MigrateVmaOps& ops, struct MigrateVma* args) {
  const Errno err = MigrateVmaGuards(s_, *args);
  if (err != Errno::kOk) return err;
  // The one VMA: no phase changes VMAs.
  const Vma vma = *FindVma(s_.procs.at(args->pid), AddrToVpn(args->start));
  MigrateVmaCollect(s_, *args, vma);
  MigrateVmaUnmap(s_, *args);
  if (ops.alloc_and_copy) ops.alloc_and_copy(*args);
  MigrateVmaPages(s_, *args, vma);
  MigrateVmaInvalidateOwner(s_, *args);
  if (ops.finalize_and_map) ops.finalize_and_map(*args);
  MigrateVmaFinalize(*args);
  return Errno::kOk;
}

}  // namespace hmm::model
