// File: impl/rep_invariant.cc
//
// The representation invariant: impl-only facts that the abstraction
// function does not see (refcounts, mapcounts, the free list, page-table
// shape). Runs with every operation excluded (quiesce held exclusively, as
// stop_machine() would), so the counts it sums are one consistent snapshot.
// Each violation is one line "Inv<Subject><Property>: where: values".

#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_state.h"

namespace hmm::impl {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

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
  std::vector<std::string> Take() { return std::move(out_); }

 private:
  void CheckVmas(const std::string& who, const VmaTree& vmas);
  void CheckPte(const std::string& who, const VmaTree& vmas, uint64_t vpn, pte_t e);
  void Add(std::string line) { out_.push_back(std::move(line)); }

  const KernelState& ks_;
  std::vector<uint32_t> ptes_, pins_, holds_;  // per RAM pfn, as found
  std::map<const ShmemObject*, uint64_t> vmas_per_object_;
  std::vector<std::string> out_;
};

void RepChecker::CheckProcess(uint64_t pid, const Process& p) {
  std::string who = "pid " + std::to_string(pid);
  std::shared_lock<std::shared_mutex> mmap_lock(p.mmap_lock);
  CheckVmas(who, p.vmas);
  std::lock_guard<std::mutex> ptl(p.ptl);
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
  // Is the leaf present (the only non-none kind so far)?
  if (d.kind != PteKind::kPresent) {
    Add("InvPteNoneOrPresent: " + where() + " kind=" + PteKindName(d.kind));
    return;
  }
  // Is its pfn RAM or the zero page?
  if (!ks_.pages.Valid(d.pfn)) {
    Add("InvPtePfnInRange: " + where() + " pfn=" + std::to_string(d.pfn));
    return;
  }
  bool zero = ks_.pages.IsZero(d.pfn);
  // Is a zero-page PTE special and read-only, and no other PTE special?
  if (zero ? (!d.special || d.write) : d.special) {
    Add("InvZeroPtePresentReadOnly: " + where() + " pfn=" + std::to_string(d.pfn) +
        " special=" + std::to_string(d.special) + " write=" + std::to_string(d.write));
  }
  const Vma* vma = vmas.Find(vpn << kPageShift);
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
  if (!zero) ++ptes_[d.pfn];
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

std::vector<std::pair<uint64_t, std::shared_ptr<Process>>> SnapshotProcs(const KernelState& ks) {
  std::shared_lock<std::shared_mutex> tasklist(ks.tasklist_lock);
  return {ks.procs.begin(), ks.procs.end()};
}

}  // namespace

std::vector<std::string> Kernel::RepInvariant() const {
  std::unique_lock<std::shared_mutex> quiesce(st_->quiesce);
  RepChecker checker(*st_);
  for (const auto& [pid, proc] : SnapshotProcs(*st_)) checker.CheckProcess(pid, *proc);
  checker.CheckObjects();
  checker.CheckPins();
  checker.CheckPages();
  return checker.Take();
}

double Kernel::MetadataBytesPerMappedPage() const {
  std::unique_lock<std::shared_mutex> quiesce(st_->quiesce);
  uint64_t table_pages = 0, mapped = 0;
  for (const auto& [pid, proc] : SnapshotProcs(*st_)) {
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
