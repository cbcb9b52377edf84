// File: impl/fork.cc
//
// Fork: the child gets a copy of every VMA; private pages are shared
// copy-on-write, pinned ones copied (mm/memory.c page_needs_cow_for_dma()),
// device-private entries copied read-only (device_entry.cc). The parent's
// mirrors hear of every private VMA (docs/mirror.md), around the copy. A
// migration in flight elsewhere may hold migration entries in the parent:
// the copy waits until they are gone (the kernel copies them, and its rmap
// finds the child's; hmmref's migration walks only the processes it saw).

#include <algorithm>
#include <cassert>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "impl/defects.h"
#include "impl/kernel.h"
#include "impl/kernel_state.h"
#include "impl/mirror.h"
#include "impl/sched.h"

namespace hmm::impl {
namespace {

// Mirrors: include/linux/mm.h folio_maybe_dma_pinned() as
// folio_needs_cow_for_dma() uses it: an anonymous page with more references
// than mappings may be pinned. (The kernel compares against
// GUP_PIN_COUNTING_BIAS; hmmref counts a pin as one reference.) Exact when
// no other operation is in flight; a concurrent access's short-lived
// reference can make it say yes wrongly, and the child then gets a copy with
// the same bytes where it could have shared the page, as in the kernel.
bool PageMaybeDmaPinned(const PageArray& pages, uint64_t pfn) {
  const Page& page = pages.page(pfn);
  return page.refcount.load(std::memory_order_acquire) >
         page.mapcount.load(std::memory_order_acquire);
}

// The child's copies of pinned pages: which PTEs get one, decided once, and
// the pages, allocated before anything changes so that kNoMem leaves parent
// and child exactly as they were.
struct PinnedCopies {
  std::vector<uint64_t> vpns;   // ascending: the order DupVma meets them in
  size_t next = 0;              // vpns[0, next) are copied
  std::vector<uint64_t> pages;  // one per entry of vpns not yet copied
};

// Mirrors: mm/memory.c copy_present_pte()'s page_needs_cow_for_dma() test,
// taken for every private PTE before the copy. REQUIRES: parent's ptl.
std::vector<uint64_t> PinnedVpns(const KernelState& ks, const Process& parent) {
  std::vector<uint64_t> vpns;
  for (const auto& [start, vma] : parent.vmas) {
    if (vma.shared) continue;
    parent.pgtable.ForEachLeaf(AddrVpn(vma.start), AddrVpn(vma.end), [&](uint64_t vpn, pte_t e) {
      if (!PtePresent(e)) return;  // a device-private entry: never pinned
      uint64_t pfn = PtePfn(e);
      if (!ks.pages.IsZero(pfn) && PageMaybeDmaPinned(ks.pages, pfn)) vpns.push_back(vpn);
    });
  }
  return vpns;
}

// Mirrors: mm/memory.c copy_present_page(): the child's own copy of a pinned
// page, writable if the VMA is; the parent's PTE is untouched. REQUIRES: pfn
// locked (LockPinnedSources).
pte_t CopyPinnedPage(KernelState& ks, const Vma& vma, uint64_t pfn, uint64_t copy) {
  std::memcpy(ks.pages.data(copy), ks.pages.data(pfn), kPageSize);
  // The allocation's reference becomes the child PTE's; +1 mapcount for it.
  ks.pages.page(copy).mapcount.store(1, std::memory_order_relaxed);
  bool write = vma.prot & kProtWrite;
  return MakePresentPte(copy, write, write, true, false);
}

// Mirrors: mm/memory.c copy_present_pte(): the child's entry for the
// parent's *src at vpn. REQUIRES: both ptls.
pte_t CopyPresentPte(KernelState& ks, const Vma& vma, uint64_t vpn, pte_t* src,
                     PinnedCopies* copies) {
  uint64_t pfn = PtePfn(*src);
  // Is it the zero page? (vm_normal_page() == NULL: copied as is, uncounted)
  if (ks.pages.IsZero(pfn)) return *src;
  // Was it pinned when PinnedVpns looked? (Decided once, so the pages
  // allocated up front always suffice; a listed vpn whose page has since
  // gone, migrated by another process's migration, is passed over.)
  while (copies->next < copies->vpns.size() && copies->vpns[copies->next] < vpn) ++copies->next;
  if (copies->next < copies->vpns.size() && copies->vpns[copies->next] == vpn) {
    ++copies->next;
    uint64_t copy = copies->pages.back();
    copies->pages.pop_back();
    return CopyPinnedPage(ks, vma, pfn, copy);
  }
  // +1 refcount and +1 mapcount: the child's PTE (page_dup_file_rmap/anon_rmap).
  ks.pages.GetPage(pfn);
  ks.pages.page(pfn).mapcount.fetch_add(1, std::memory_order_acq_rel);
  // Is it a private mapping? Then both sides lose write (ptep_set_wrprotect()).
  if (!vma.shared) *src &= ~kPteWrite;
  return *src;
}

// Mirrors: kernel/fork.c dup_mmap()'s loop body: the child's copy of one VMA,
// with its PTEs (mm/memory.c copy_page_range()) unless the VMA is shared
// (vma_needs_copy() is false without an anon_vma).
void DupVma(KernelState& ks, const Vma& vma, Process& parent, Process& child,
            PinnedCopies* copies) {
  Vma copy = vma;
  if (copy.shared) ShmemGetObject(*copy.object);  // +1: the child's VMA
  child.vmas.Insert(std::move(copy));
  if (vma.shared && !DefectActive(Defect::kForkCopiesSharedPtes)) return;
  parent.pgtable.ForEachLeaf(AddrVpn(vma.start), AddrVpn(vma.end), [&](uint64_t vpn, pte_t& e) {
    assert(!IsMigrationEntry(e) && "CopyWhenStable waited for every migration");
    *child.pgtable.WalkAlloc(vpn) =
        PtePresent(e) ? CopyPresentPte(ks, vma, vpn, &e, copies) : CopyDeviceEntry(ks, &e);
  });
}

// Does any entry of p belong to a migration in flight? (A migration of
// another process reaches p's mappings through the rmap walk.) REQUIRES: ptl.
bool HasMigrationEntry(const Process& p) {
  bool found = false;
  p.pgtable.ForEachLeaf(0, kMaxVpn, [&found](uint64_t, pte_t e) { found |= IsMigrationEntry(e); });
  return found;
}

// Locks the pages of the parent's pinned vpns that CopyPinnedPage will read,
// by trylock only (the ptls are held: impl/kernel_state.h 2p); on a failure
// unlocks what it took and returns false. REQUIRES: parent's ptl.
bool LockPinnedSources(KernelState& ks, const Process& parent, const PinnedCopies& copies,
                       std::vector<uint64_t>* locked) {
  for (uint64_t vpn : copies.vpns) {
    const pte_t e = parent.pgtable.Get(vpn);
    if (!PtePresent(e) || ks.pages.IsZero(PtePfn(e))) continue;
    const uint64_t pfn = PtePfn(e);
    if (std::find(locked->begin(), locked->end(), pfn) != locked->end()) continue;
    if (!ks.pages.TrylockPage(pfn)) {
      for (uint64_t taken : *locked) ks.pages.UnlockPage(taken);
      locked->clear();
      return false;
    }
    locked->push_back(pfn);
  }
  return true;
}

// `n` more pages for pinned copies; false (none added) when RAM runs out.
bool AllocCopies(KernelState& ks, uint64_t n, PinnedCopies* copies) {
  std::vector<uint64_t> pages;
  for (uint64_t i = 0; i < n; ++i) {
    std::optional<uint64_t> pfn = ks.pages.AllocPage(kPgAnon);
    if (!pfn) {
      for (uint64_t page : pages) ks.pages.PutPage(page);
      return false;
    }
    pages.push_back(*pfn);
  }
  copies->pages.insert(copies->pages.end(), pages.begin(), pages.end());
  return true;
}

// The child's copies of pinned pages, allocated before anything changes;
// false (nothing allocated) when RAM runs out. REQUIRES: parent's mmap_lock (write).
bool PreparePinnedCopies(KernelState& ks, const Process& parent, PinnedCopies* copies) {
  {
    std::lock_guard<std::mutex> parent_ptl(parent.ptl);
    copies->vpns = PinnedVpns(ks, parent);
  }
  return AllocCopies(ks, copies->vpns.size(), copies);
}

// Under both ptls: copies the parent if it has no migration entry (the child
// could not be found by the migration's finalize before it is in the process
// table), a page for each pinned vpn as they are now (a migration elsewhere
// may have changed them since PinnedVpns looked) and the pinned pages' locks
// free. Else sets *need to the pages missing (0 if none) and returns false.
bool TryCopy(KernelState& ks, Process& parent, Process& child, PinnedCopies* copies,
             uint64_t* need) {
  *need = 0;
  if (HasMigrationEntry(parent)) return false;
  std::vector<uint64_t> vpns = PinnedVpns(ks, parent);
  if (vpns.size() > copies->pages.size()) {
    *need = vpns.size() - copies->pages.size();
    return false;
  }
  copies->vpns = std::move(vpns);
  copies->next = 0;
  std::vector<uint64_t> locked;
  if (!LockPinnedSources(ks, parent, *copies, &locked)) return false;
  const VmaTree& vmas = parent.vmas;
  for (const auto& [start, vma] : vmas) DupVma(ks, vma, parent, child, copies);
  for (uint64_t pfn : locked) ks.pages.UnlockPage(pfn);
  return true;
}

// Mirrors: kernel/fork.c dup_mmap()'s copy loop, once TryCopy can run: until
// then the ptls are dropped and the wait retried (another thread's
// migration must end first), more copies allocated as needed (and tried at
// once). kNoMem (nothing copied) when RAM runs out for them.
Errno CopyWhenStable(KernelState& ks, Process& parent, Process& child, PinnedCopies* copies) {
  for (;;) {
    uint64_t need = 0;
    {
      std::lock_guard<std::mutex> parent_ptl(parent.ptl);
      std::lock_guard<std::mutex> child_ptl(child.ptl);
      if (TryCopy(ks, parent, child, copies, &need)) return Errno::kOk;
    }
    if (need == 0) {
      sched::SpinYield("fork_wait_migration");
    } else if (!AllocCopies(ks, need, copies)) {
      return Errno::kNoMem;
    }
  }
}

// Mirrors: mm/memory.c copy_page_range()'s mmu notifier bracket, which only
// a COW mapping gets: every private VMA of the parent (unless the seeded
// defect kForkSkipsMirrorInvalidate). start selects the half.
void NotifyPrivateVmas(KernelState& ks, Process& parent, bool start) {
  if (DefectActive(Defect::kForkSkipsMirrorInvalidate)) return;
  for (const auto& [addr, vma] : parent.vmas) {
    if (vma.shared) continue;
    if (start) {
      MmuNotifierInvalidateRangeStart(ks, parent, vma.start, vma.end);
    } else {
      MmuNotifierInvalidateRangeEnd(ks, parent, vma.start, vma.end);
    }
  }
}

}  // namespace

Errno DupMmap(KernelState& ks, Process& parent, Process& child) {
  PinnedCopies copies;
  // Is there RAM for every copy? Else nothing has changed yet (no notification either).
  if (!PreparePinnedCopies(ks, parent, &copies)) return Errno::kNoMem;
  // The mmap_lock (write) keeps the PTEs as PinnedVpns saw them meanwhile,
  // but for other processes' migrations, which CopyWhenStable waits out.
  NotifyPrivateVmas(ks, parent, /*start=*/true);
  Errno err = CopyWhenStable(ks, parent, child, &copies);
  NotifyPrivateVmas(ks, parent, /*start=*/false);
  // Copies not used (pinned pages that migrated away meanwhile) go back.
  for (uint64_t page : copies.pages) ks.pages.PutPage(page);
  return err;
}

// Mirrors: kernel/fork.c kernel_clone() -> copy_process() -> copy_mm().
Result<Pid> Kernel::Fork(Pid pid) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  MmapLockGuard mm(*st_, pid, MmapLockGuard::kWrite);
  Process* parent = mm.proc();
  // Is the pid a live process?
  if (parent == nullptr) return Errno::kSrch;
  {
    std::unique_lock<std::shared_mutex> tasklist(st_->tasklist_lock);
    // Is there room for one more process?
    if (st_->procs.size() + st_->forks_in_flight >= kMaxProcesses) return Errno::kAgain;
    ++st_->forks_in_flight;  // the slot is ours while the mm is copied
  }
  auto child = std::make_shared<Process>();
  Errno err;
  {
    std::unique_lock<std::shared_mutex> child_mmap_lock(child->mmap_lock);
    err = DupMmap(*st_, *parent, *child);
  }
  std::unique_lock<std::shared_mutex> tasklist(st_->tasklist_lock);
  --st_->forks_in_flight;
  // Did the copy run out of RAM? Then the child never existed: no pid is used.
  if (err != Errno::kOk) return err;
  uint64_t child_pid = st_->next_pid++;
  st_->procs.emplace(child_pid, std::move(child));
  return Pid(child_pid);
}

}  // namespace hmm::impl
