// File: model/fork.cc
//
// fork: the child gets every VMA; private PTEs are shared copy-on-write, except
// pinned pages, which the child gets as its own copy; device entries are
// shared, read-only in both; shared VMAs' PTEs are left for the child to
// fault in. The parent's mirrors are notified of every page of every private
// VMA, whose PTEs lose write (docs/mirror.md).

#include "model/address_space.h"
#include "model/anon_vma.h"
#include "model/kernel.h"
#include "model/mirror_walk.h"

namespace hmm::model {
namespace {

// Gives the child the parent's PTE at vpn of a private VMA.
// Returns: kNoMem when a pinned page's copy finds RAM full.
// Mirrors: mm/memory.c copy_present_pte(), copy_present_page().
Errno CopyPresentPte(State& s, uint64_t ram_pages, Process& parent, Process& child, Vpn vpn,
                     const Vma& vma) {
  Pte& pte = parent.ptes.at(vpn);
  // Is it the zero page? Copied as is.
  if (pte.zero) {
    child.ptes[vpn] = pte;
    return Errno::kOk;
  }
  // Is the page pinned? The child gets a copy (page_needs_cow_for_dma()); the
  // parent keeps its PTE, so the pin keeps seeing the parent's writes.
  if (IsPinned(s, pte.page)) {
    Result<PageId> copy = AllocPage(s, ram_pages, s.pages.at(pte.page));
    if (!copy.ok()) return copy.err;
    child.ptes[vpn] = Pte{false, copy.value, (vma.prot & kProtWrite) != 0};
    SetAnonRmap(s, child.ptes.at(vpn), child, vpn);
    return Errno::kOk;
  }
  // Otherwise both map it read-only: the first write breaks the COW; the
  // page is no longer exclusive (linux-6.1; the child's PTE keeps the dirty bit).
  pte.write = false;
  child.ptes[vpn] = pte;
  ShareAnonRmap(s, pte);
  return Errno::kOk;
}

// Gives the child the parent's device entry at vpn: one more reference on the
// device page (refcount is derived from the entries). A private VMA is a COW
// mapping, so a write entry becomes read in parent and child: the first CPU
// write in either faults.
// Mirrors: mm/memory.c copy_one_pte() (is_device_private_entry() branch).
void CopyDeviceEntry(State& s, Process& parent, Process& child, Vpn vpn) {
  Pte& pte = parent.ptes.at(vpn);
  pte.write = false;
  child.ptes[vpn] = pte;
  ShareAnonRmap(s, pte);
}

}  // namespace

// Mirrors: kernel/fork.c copy_process(), dup_mmap(); mm/memory.c copy_page_range().
Result<Pid> Kernel::Fork(Pid pid) {
  // Is the pid a live process?
  if (!IsLive(s_, pid)) return Errno::kSrch;
  // Is there room for one more live process?
  if (s_.procs.size() >= kMaxProcesses) return Errno::kAgain;
  // Work on a copy and commit at the end: on kNoMem the child never existed
  // and the parent is unchanged (copy_process() unwinds dup_mmap()).
  State next = s_;
  const Pid child_pid(next.next_pid++);
  Process& parent = next.procs.at(pid);
  Process& child = next.procs[child_pid];
  child.vmas = parent.vmas;
  for (auto& [start, vma] : child.vmas) AnonVmaFork(next, parent.vmas.at(start), &vma);
  // copy_page_range() write-protects every COW mapping under the notifier
  // (linux-6.1: only one with an anon_vma, vma_needs_copy(); D17).
  for (const auto& [start, vma] : parent.vmas) {
    const bool needs_copy = !Linux61(next) || vma.anon_vma != 0;
    if (!vma.shared && needs_copy) MmuNotifierInvalidate(next, pid, vma.start, vma.end);
  }
  for (const auto& [vpn, pte] : s_.procs.at(pid).ptes) {
    const Vma& vma = *FindVma(parent, vpn);
    // Is the VMA shared? Its PTEs are not copied (no anon_vma): the child faults.
    // (linux-6.1: nor are a private VMA's without an anon_vma, D17.)
    if (vma.shared || (Linux61(next) && vma.anon_vma == 0)) continue;
    // Is it a device entry? Shared with the child, read-only in both.
    if (pte.device) {
      CopyDeviceEntry(next, parent, child, vpn);
      continue;
    }
    const Errno err = CopyPresentPte(next, ram_pages_, parent, child, vpn, vma);
    if (err != Errno::kOk) return err;
  }
  s_ = std::move(next);
  return child_pid;
}

}  // namespace hmm::model
