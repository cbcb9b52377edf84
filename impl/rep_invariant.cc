// File: impl/rep_invariant.cc
//
// The representation invariant: impl-only facts that the abstraction
// function does not see (refcounts, mapcounts, the free list, page-table
// shape; device pages' counts and free bitmaps, the resource map; the
// mirror and range tables, mirror_introspect.cc; and, for migration, no
// migration entry, no present PTE naming a device page and no page lock
// held at rest, with every count balanced). Runs
// with every operation excluded (quiesce held exclusively, as stop_machine()
// would), so the counts it sums are one consistent snapshot. Each violation
// is one line "Inv<Subject><Property>: where: values".

#include <cstring>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_state.h"
#include "impl/mirror.h"

namespace hmm::impl {
namespace {

class RepChecker {
 public:
  explicit RepChecker(const KernelState& ks)
      : ks_(ks),
        ptes_(ks.pages.ram_pages(), 0),
        pins_(ks.pages.ram_pages(), 0),
        holds_(ks.pages.ram_pages(), 0) {}

  void CheckProcess(uint64_t pid, const Process& p);
  void CheckObjects();
  void CheckPins();
  void CheckPages();
  void CheckDevmems();
  std::vector<std::string> Take() { return std::move(out_); }

 private:
  void CheckVmas(const std::string& who, const VmaTree& vmas);
  void CheckPte(const std::string& who, const VmaTree& vmas, uint64_t vpn, pte_t e);
  // The VMA rungs of a present PTE d at vpn (vma: the VMA there, or null).
  void CheckPresentInVma(const std::string& who, uint64_t vpn, const Vma* vma,
                         const DecodedPte& d, bool zero);
  void CheckDeviceEntry(const std::string& who, const VmaTree& vmas, uint64_t vpn,
                        const DecodedPte& d);
  void CheckResources();
  void CheckDevicePages(const Devmem& devmem,
                        const std::unordered_map<uint64_t, uint64_t>& frees);
  void CheckDevicePage(const Devmem& devmem, uint64_t pfn, const DevicePage& page,
                       uint64_t page_frees);
  void Add(std::string line) { out_.push_back(std::move(line)); }

  const KernelState& ks_;
  std::vector<uint32_t> ptes_, pins_, holds_;  // per RAM pfn, as found
  std::unordered_map<uint64_t, uint32_t> device_entries_;  // per device pfn, as found
  std::map<const ShmemObject*, uint64_t> vmas_per_object_;
  std::vector<std::string> out_;
};

void RepChecker::CheckProcess(uint64_t pid, const Process& p) {
  std::string who = "pid " + std::to_string(pid);
  std::shared_lock<std::shared_mutex> mmap_lock(p.mmap_lock);
  CheckVmas(who, p.vmas);
  std::lock_guard<std::mutex> ptl(p.ptl);
  std::shared_lock<std::shared_mutex> devmems(ks_.devmems_lock);  // device entries' lookups
  p.pgtable.CheckWellFormed(who, &out_);
  p.pgtable.ForEachLeaf(0, kMaxVpn, [&](uint64_t vpn, pte_t e) { CheckPte(who, p.vmas, vpn, e); });
}

void RepChecker::CheckVmas(const std::string& who, const VmaTree& vmas) {
  uint64_t prev_end = 0;
  for (const auto& [key, vma] : vmas) {
    const Vma& v = vma;
    auto where = [&] { return who + " vma " + Hex(v.start) + "-" + Hex(v.end); };
    // Is it aligned, non-empty, in range, sorted and disjoint?
    if (key != vma.start || !PageAligned(vma.start) || !PageAligned(vma.end) ||
        vma.start >= vma.end || vma.end > kTaskSize || vma.start < prev_end) {
      Add("InvVmaWellFormed: " + where());
    }
    prev_end = vma.end;
    // Does a VMA map an object iff it is shared?
    if (vma.shared != (vma.object != nullptr)) Add("InvVmaObjectIffShared: " + where());
    if (vma.object != nullptr) ++vmas_per_object_[vma.object.get()];
  }
}

void RepChecker::CheckPte(const std::string& who, const VmaTree& vmas, uint64_t vpn, pte_t e) {
  auto where = [&] { return who + " vpn " + Hex(vpn); };  // only for a violation
  DecodedPte d = DecodePte(e);
  // Is the leaf present or device-private (the only non-none kinds at rest)?
  if (d.kind == PteKind::kDevicePrivateRead || d.kind == PteKind::kDevicePrivateWrite) {
    CheckDeviceEntry(who, vmas, vpn, d);
    return;
  }
  if (d.kind != PteKind::kPresent) {
    // A migration entry lives only while its migration runs (docs/migrate.md).
    bool migration = d.kind == PteKind::kMigrationRead || d.kind == PteKind::kMigrationWrite;
    Add(std::string(migration ? "InvNoMigrationEntry: " : "InvPteNoneOrPresent: ") + where() +
        " pfn=" + std::to_string(d.pfn) + " kind=" + PteKindName(d.kind));
    return;
  }
  // Is its pfn RAM or the zero page, and not a device page? (A present PTE
  // naming a device-private page is print_bad_pte()'s corruption.)
  if (!ks_.pages.Valid(d.pfn)) {
    bool device = ks_.devmems.FindByPfn(d.pfn) != nullptr;
    Add(std::string(device ? "InvDevicePageNeverPresent: " : "InvPtePfnInRange: ") + where() +
        " pfn=" + std::to_string(d.pfn));
    return;
  }
  bool zero = ks_.pages.IsZero(d.pfn);
  // Is a zero-page PTE special and read-only, and no other PTE special?
  if (zero ? (!d.special || d.write) : d.special) {
    Add("InvZeroPtePresentReadOnly: " + where() + " pfn=" + std::to_string(d.pfn) +
        " special=" + std::to_string(d.special) + " write=" + std::to_string(d.write));
  }
  CheckPresentInVma(who, vpn, vmas.Find(vpn << kPageShift), d, zero);
  if (!zero) ++ptes_[d.pfn];
}

void RepChecker::CheckPresentInVma(const std::string& who, uint64_t vpn, const Vma* vma,
                                   const DecodedPte& d, bool zero) {
  auto where = [&] { return who + " vpn " + Hex(vpn); };  // only for a violation
  // Does the PTE lie inside a VMA, and is it writable only where the VMA is?
  if (vma == nullptr) {
    Add("InvPteInsideVma: " + where());
  } else if (d.write && !(vma->prot & kProtWrite)) {
    Add("InvPteWriteImpliesVmaWrite: " + where() + " prot=" + std::to_string(vma->prot));
  } else if (d.write && !vma->shared && !zero &&
             ks_.pages.page(d.pfn).mapcount.load() != 1) {
    Add("InvWritablePrivatePageExclusive: " + where() + " pfn=" + std::to_string(d.pfn) +
        " mapcount=" + std::to_string(ks_.pages.page(d.pfn).mapcount.load()));
  }
}

void RepChecker::CheckDeviceEntry(const std::string& who, const VmaTree& vmas, uint64_t vpn,
                                  const DecodedPte& d) {
  auto where = [&] { return who + " vpn " + Hex(vpn) + " device pfn " + Hex(d.pfn); };
  const Devmem* devmem = ks_.devmems.FindByPfn(d.pfn);
  // Does it name a page of a live devmem that has a struct page?
  if (devmem == nullptr || devmem->FindPage(d.pfn) == nullptr) {
    Add("InvDeviceEntryTargetsLivePage: " + where());
    return;
  }
  ++device_entries_[d.pfn];
  const Vma* vma = vmas.Find(vpn << kPageShift);
  // Does it lie in a private VMA, and is it write only where the VMA is?
  if (vma == nullptr) {
    Add("InvPteInsideVma: " + where());
  } else if (vma->shared) {
    Add("InvDeviceEntryPrivateVma: " + where());
  } else if (d.kind == PteKind::kDevicePrivateWrite && !(vma->prot & kProtWrite)) {
    Add("InvDeviceEntryWriteImpliesVmaWrite: " + where() + " prot=" + std::to_string(vma->prot));
  }
}

void RepChecker::CheckObjects() {
  std::vector<std::shared_ptr<ShmemObject>> objects;
  {
    std::lock_guard<std::mutex> lock(ks_.objects_lock);
    for (const auto& [id, obj] : ks_.objects) objects.push_back(obj);
  }
  for (const auto& obj : objects) {
    std::string where = "object " + std::to_string(obj->id);
    uint64_t vmas = vmas_per_object_[obj.get()];
    vmas_per_object_.erase(obj.get());
    // Does nr_vmas count the VMAs that map the object?
    if (obj->nr_vmas.load() != vmas) {
      Add("InvObjectVmaCount: " + where + " nr_vmas=" + std::to_string(obj->nr_vmas.load()) +
          " vmas=" + std::to_string(vmas));
    }
    std::lock_guard<std::mutex> lock(obj->lock);
    for (const auto& [pgoff, pfn] : obj->pages) {
      // Is the page a RAM page flagged as shmem?
      if (pfn >= ks_.pages.ram_pages() || !(ks_.pages.page(pfn).flags.load() & kPgShmem)) {
        Add("InvObjectPageIsShmem: " + where + " pgoff " + std::to_string(pgoff) + " pfn " +
            std::to_string(pfn));
        continue;
      }
      ++holds_[pfn];
    }
  }
  // Does every VMA's object sit in the object table?
  for (const auto& [obj, vmas] : vmas_per_object_) {
    Add("InvVmaObjectLive: object " + std::to_string(obj->id) + " mapped by " +
        std::to_string(vmas) + " VMAs but not in the object table");
  }
}

void RepChecker::CheckPins() {
  std::lock_guard<std::mutex> lock(ks_.pins_lock);
  for (const auto& [id, pfns] : ks_.pins) {
    for (uint64_t pfn : pfns) {
      if (ks_.pages.IsZero(pfn)) continue;  // seeded defect only: uncounted
      // Is the pinned page RAM?
      if (pfn >= ks_.pages.ram_pages()) {
        Add("InvPinPfnInRange: pin " + std::to_string(id) + " pfn " + std::to_string(pfn));
        continue;
      }
      ++pins_[pfn];
    }
  }
}

void RepChecker::CheckPages() {
  ks_.pages.CheckFreeList(&out_);
  for (uint64_t pfn = 0; pfn < ks_.pages.ram_pages(); ++pfn) {
    const Page& page = ks_.pages.page(pfn);
    uint32_t ref = page.refcount.load(), map = page.mapcount.load(), flags = page.flags.load();
    uint32_t want = ptes_[pfn] + pins_[pfn] + holds_[pfn];
    // Built only for a violation: this loop runs over all of RAM after every step.
    auto where = [pfn] { return "pfn " + std::to_string(pfn); };
    // Is the page free only when nothing refers to it?
    if ((flags & kPgBuddy) && want != 0) {
      Add("InvFreePageUnreferenced: " + where() + " ptes=" + std::to_string(ptes_[pfn]) +
          " pins=" + std::to_string(pins_[pfn]) + " objects=" + std::to_string(holds_[pfn]));
    }
    // Does refcount = PTEs + pins + objects, and mapcount = PTEs?
    if (ref != want) {
      Add("InvPageRefcountMatchesHolders: " + where() + " refcount=" + std::to_string(ref) +
          " expected=" + std::to_string(want) + " (ptes " + std::to_string(ptes_[pfn]) +
          " + pins " + std::to_string(pins_[pfn]) + " + objects " +
          std::to_string(holds_[pfn]) + ")");
    }
    if (map != ptes_[pfn]) {
      Add("InvPageMapcountMatchesPtes: " + where() + " mapcount=" + std::to_string(map) +
          " ptes=" + std::to_string(ptes_[pfn]));
    }
    // Is the page lock free with no operation in flight?
    if (flags & kPgLocked) Add("InvPageUnlockedAtRest: " + where());
  }
  const uint64_t zero = ks_.pages.zero_pfn();
  const Page& zp = ks_.pages.page(zero);
  // Is the zero page uncounted, unlocked and all zeros?
  if (zp.refcount.load() != 0 || zp.mapcount.load() != 0 || zp.flags.load() != kPgReserved) {
    Add("InvZeroPageUncounted: refcount=" + std::to_string(zp.refcount.load()) +
        " mapcount=" + std::to_string(zp.mapcount.load()) +
        " flags=" + std::to_string(zp.flags.load()));
  }
  static const uint8_t kZeros[kPageSize] = {};
  if (std::memcmp(ks_.pages.data(zero), kZeros, kPageSize) != 0) Add("InvZeroPageZeroed");
}

void RepChecker::CheckDevmems() {
  std::shared_lock<std::shared_mutex> devmems(ks_.devmems_lock);
  CheckResources();
  // page_free events per region and pfn, as logged (removed regions' stay).
  std::unordered_map<uint64_t, std::unordered_map<uint64_t, uint64_t>> frees;
  for (const DeviceEventInfo& e : ks_.events.Snapshot()) {
    if (!e.fault) ++frees[e.devmem][e.pfn];
  }
  for (const auto& [id, devmem] : ks_.devmems.all()) CheckDevicePages(*devmem, frees[id]);
}

// REQUIRES: devmems_lock.
void RepChecker::CheckResources() {
  const Config& c = ks_.config;
  const uint64_t limit = uint64_t{1} << c.max_physmem_bits;
  const uint64_t device_end = uint64_t{1} << (kPageShift + kDevicePfnBits);
  std::lock_guard<std::mutex> lock(ks_.resource_lock);
  ks_.resources.CheckWellFormed(ks_.pages.ram_pages() * kPageSize, &out_);
  uint64_t device_resources = 0;
  for (const auto& [start, r] : ks_.resources.all()) {
    if (!r.device) continue;
    ++device_resources;
    std::string where = "resource " + Hex(r.start) + "-" + Hex(r.end);
    const Devmem* d = ks_.devmems.FindById(r.devmem);
    // Is it exactly the range of the live devmem that owns it?
    if (d == nullptr || d->first_pfn << kPageShift != r.start ||
        (d->first_pfn + d->npages) << kPageShift != r.end) {
      Add("InvDevmemMatchesResource: " + where + " devmem " + std::to_string(r.devmem));
    }
    // Is it section-aligned, where the profile places device memory?
    bool aligned = ((r.start | r.end) & (c.section_bytes - 1)) == 0;
    bool placed = c.profile == Profile::kV18 ? r.end <= limit
                                             : r.start >= limit && r.end <= device_end;
    if (!aligned || !placed) Add("InvDeviceRangePlacement: " + where);
  }
  // Does every devmem have a resource?
  if (device_resources != ks_.devmems.all().size()) {
    Add("InvDevmemMatchesResource: devmems=" + std::to_string(ks_.devmems.all().size()) +
        " device resources=" + std::to_string(device_resources));
  }
}

// REQUIRES: devmems_lock.
void RepChecker::CheckDevicePages(const Devmem& devmem,
                                  const std::unordered_map<uint64_t, uint64_t>& frees) {
  uint64_t logged = 0;  // page_free events of the region's populated pages
  for (uint64_t pfn = devmem.first_pfn; pfn - devmem.first_pfn < devmem.npages; ++pfn) {
    const DevicePage* page = devmem.FindPage(pfn);
    if (page == nullptr) break;  // never allocated: free, no entry (CheckDeviceEntry)
    auto found = frees.find(pfn);
    uint64_t page_frees = found == frees.end() ? 0 : found->second;
    logged += page_frees;
    CheckDevicePage(devmem, pfn, *page, page_frees);
  }
  uint64_t total = 0;
  for (const auto& [pfn, n] : frees) total += n;
  // Does the region's count match its log, with no page_free of a page never allocated?
  if (devmem.page_frees() != total || logged != total) {
    Add("InvPageFreeOncePerAllocation: devmem " + std::to_string(devmem.id) +
        " page_frees=" + std::to_string(devmem.page_frees()) + " logged=" +
        std::to_string(total) + " of allocated pages=" + std::to_string(logged));
  }
}

// REQUIRES: devmems_lock.
void RepChecker::CheckDevicePage(const Devmem& devmem, uint64_t pfn, const DevicePage& page,
                                 uint64_t page_frees) {
  uint32_t ref = page.refcount.load(), map = page.mapcount.load();
  auto found = device_entries_.find(pfn);
  uint32_t entries = found == device_entries_.end() ? 0 : found->second;
  bool held = page.flags & kDevPgHeld;
  uint32_t want = 1 + (held ? 1 : 0) + entries;
  auto where = [&] { return "device pfn " + Hex(pfn) + " devmem " + std::to_string(devmem.id); };
  // Does refcount = 1 + hold + entries (so never below 1), and mapcount = entries?
  if (ref != want) {
    Add("InvDevicePageRefcountMatchesHolders: " + where() + " refcount=" + std::to_string(ref) +
        " expected=" + std::to_string(want) + " (1 + held " + std::to_string(held) +
        " + entries " + std::to_string(entries) + ")");
  }
  if (map != entries) {
    Add("InvDevicePageMapcountMatchesEntries: " + where() + " mapcount=" + std::to_string(map) +
        " entries=" + std::to_string(entries));
  }
  // Is its page lock free with no operation in flight?
  if (page.flags.load() & kDevPgLocked) Add("InvDevicePageUnlockedAtRest: " + where());
  // Is it on the free bitmap exactly when its refcount is 1?
  if (devmem.IsFree(pfn) != (ref == 1)) {
    Add("InvDevicePageFreeIffRefcountOne: " + where() + " refcount=" + std::to_string(ref));
  }
  // Did every allocation of it end in exactly one page_free, but one still in use?
  if (page_frees + (ref > 1 ? 1 : 0) != page.allocations) {
    Add("InvPageFreeOncePerAllocation: " + where() + " page_frees=" + std::to_string(page_frees) +
        " allocations=" + std::to_string(page.allocations) + " in use=" +
        std::to_string(ref > 1));
  }
}

}  // namespace

std::vector<std::string> Kernel::RepInvariant() const {
  sched::LockAt("quiesce", st_->quiesce);  // an actor waits out the others' operations
  std::unique_lock<std::shared_mutex> quiesce(st_->quiesce, std::adopt_lock);
  RepChecker checker(*st_);
  for (const auto& [pid, proc] : st_->SnapshotProcs()) checker.CheckProcess(pid, *proc);
  checker.CheckObjects();
  checker.CheckPins();
  checker.CheckPages();
  checker.CheckDevmems();
  std::vector<std::string> lines = checker.Take();
  CheckMirrorsRep(*st_, &lines);
  return lines;
}

double Kernel::MetadataBytesPerMappedPage() const {
  sched::LockAt("quiesce", st_->quiesce);
  std::unique_lock<std::shared_mutex> quiesce(st_->quiesce, std::adopt_lock);
  uint64_t table_pages = 0, mapped = 0;
  for (const auto& [pid, proc] : st_->SnapshotProcs()) {
    std::shared_lock<std::shared_mutex> mmap_lock(proc->mmap_lock);
    std::lock_guard<std::mutex> ptl(proc->ptl);
    table_pages += proc->pgtable.nr_tables();
    proc->pgtable.ForEachLeaf(0, kMaxVpn,
                              [&mapped](uint64_t, pte_t e) { mapped += PtePresent(e); });
  }
  if (mapped == 0) return 0.0;
  uint64_t in_use = st_->pages.ram_pages() - st_->pages.nr_free();
  return static_cast<double>(sizeof(Page) * in_use + kTableBytes * table_pages) /
         static_cast<double>(mapped);
}

}  // namespace hmm::impl
