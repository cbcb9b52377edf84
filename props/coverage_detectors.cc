// File: props/coverage_detectors.cc
//
// The detectors of props/coverage.cc's state classes: each reads the model's
// state in place and stays within the pages a step touches (or the pins, the
// resources, the new events, the mirrors' entries).

#include <algorithm>

#include "props/coverage_internal.h"

namespace hmm::props::coverage_internal {

// The pages [*first, *first + *count) that `len` bytes at `addr` touch, cut
// at kTaskSize and at kMaxSpanPages. False when there are none.
bool PageSpan(uint64_t addr, uint64_t len, uint64_t* first, uint64_t* count) {
  uint64_t end = 0;
  if (!ByteSpan(addr, len, first, &end)) return false;
  *count = std::min(end - *first, kMaxSpanPages);
  return true;
}

// Whether a CPU access of `len` bytes at `addr` passes CpuRead's and
// CpuWrite's argument checks, so that it touches its pages in order.
bool AccessReachesPages(uint64_t addr, uint64_t len) {
  return len != 0 && len <= model::kMaxAccess && addr <= kTaskSize && len <= kTaskSize - addr;
}

// Whether 2+ PTEs (of any processes) map `page`.
bool MappedTwice(const model::State& s, model::PageId page) {
  int seen = 0;
  for (const auto& proc : s.procs) {
    for (const auto& entry : proc.second.ptes) {
      if (entry.second.page == page && NamesPage(entry.second) && ++seen == 2) return true;
    }
  }
  return false;
}

// Whether a process other than `pid` has a PTE that maps `page`.
bool MappedByAnother(const model::State& s, uint64_t pid, model::PageId page) {
  for (const auto& proc : s.procs) {
    if (proc.first.value == pid) continue;
    for (const auto& entry : proc.second.ptes) {
      if (entry.second.page == page && NamesPage(entry.second)) return true;
    }
  }
  return false;
}

bool ReadLeftZeroPage(const model::State& s, const Op& op) {
  const model::Process* proc = FindProcess(s, op.pid);
  uint64_t first, count;
  if (proc == nullptr || !AccessReachesPages(op.addr, op.len) ||
      !PageSpan(op.addr, op.len, &first, &count)) {
    return false;
  }
  for (uint64_t vpn = first; vpn < first + count; ++vpn) {
    const model::Pte* pte = FindPte(*proc, vpn);
    if (pte != nullptr && pte->zero) return true;
  }
  return false;
}

bool SharedPageSeenByTwo(const model::State& s, const Op& op, uint64_t len) {
  const model::Process* proc = FindProcess(s, op.pid);
  uint64_t first, count;
  if (proc == nullptr || !PageSpan(op.addr, len, &first, &count)) return false;
  for (uint64_t vpn = first; vpn < first + count; ++vpn) {
    const model::Pte* pte = FindPte(*proc, vpn);
    if (pte == nullptr || !NamesPage(*pte)) continue;
    const model::Vma* vma = FindVma(*proc, vpn);
    if (vma != nullptr && vma->shared && MappedByAnother(s, op.pid, pte->page)) return true;
  }
  return false;
}

// A write of 2+ pages that failed after its first page: the first page then
// has a writable PTE (a writable PTE implies a writable VMA, so the store to
// that page went through), and the failure came from a later page.
bool PartialWrite(const model::State& s, const Op& op, Errno err) {
  if (err != Errno::kFault && err != Errno::kNoMem) return false;
  const model::Process* proc = FindProcess(s, op.pid);
  uint64_t first, count;
  if (proc == nullptr || !AccessReachesPages(op.addr, op.data.size()) ||
      !PageSpan(op.addr, op.data.size(), &first, &count) || count < 2) {
    return false;
  }
  const model::Pte* pte = FindPte(*proc, first);
  return pte != nullptr && NamesPage(*pte) && pte->write;
}

// Whether [start, start + size) (cut at 2^64) meets a device-private resource.
bool OverlapsDeviceMemory(const model::State& s, uint64_t start, uint64_t size) {
  const uint64_t end = size > ~uint64_t{0} - start ? ~uint64_t{0} : start + size;
  for (const auto& r : s.resources) {
    if (r.second.device && start < r.second.end && r.second.start < end) return true;
  }
  return false;
}

// The pages that pins hold, sorted, each once.
void CollectPinnedPages(const model::State& s, std::vector<uint64_t>* pages) {
  pages->clear();
  for (const auto& pin : s.pins) pages->insert(pages->end(), pin.second.begin(), pin.second.end());
  std::sort(pages->begin(), pages->end());
  pages->erase(std::unique(pages->begin(), pages->end()), pages->end());
}

// Whether the fork of `parent` into `child` gave the child a copy of a page
// that is pinned (`pinned`, sorted) and mapped by the parent.
bool ForkCopiedPinnedPage(const model::State& s, uint64_t parent, uint64_t child,
                          const std::vector<uint64_t>& pinned) {
  const model::Process* from = FindProcess(s, parent);
  const model::Process* to = FindProcess(s, child);
  if (from == nullptr || to == nullptr) return false;
  for (const auto& entry : from->ptes) {
    const model::Pte& pte = entry.second;
    if (!NamesPage(pte) || !std::binary_search(pinned.begin(), pinned.end(), pte.page)) continue;
    const model::Pte* copy = FindPte(*to, entry.first.value);
    if (copy != nullptr && NamesPage(*copy) && copy->page != pte.page) return true;
  }
  return false;
}

// --- Mirroring ---

// The steps that change CPU page tables (and so may notify mirrors): every
// kind before the mirroring ones.
bool IsCpuSide(OpKind kind) { return kind < OpKind::kMirror && !IsSetupKind(kind); }

// Device page table entries over every mirror.
size_t MirrorEntries(const model::State& s) {
  size_t n = 0;
  for (const auto& m : s.mirrors) n += m.second.pt.size();
  return n;
}

uint64_t SnapshotHits(const std::vector<uint8_t>& bytes) {
  uint64_t hit = 0;
  for (uint8_t b : bytes) {
    if (b == kDmirrorProtError) hit |= Bit(kSnapshotProtError);
    if (b == (kDmirrorProtZero | kDmirrorProtRead)) hit |= Bit(kSnapshotZeroPage);
    if (b == kDmirrorProtRead) hit |= Bit(kSnapshotReadOnly);
    if (b == (kDmirrorProtDevPrivateLocal | kDmirrorProtRead) ||
        b == (kDmirrorProtDevPrivateLocal | kDmirrorProtWrite)) {
      hit |= Bit(kSnapshotLocalDevice);
    }
  }
  return hit;
}

// The mirror classes a mirroring step reached, from its result (and, for
// hmm_fault, the range it returned).
uint64_t MirrorHits(const Op& op, const OpResult& r, const model::State& s) {
  const bool ok = r.err == Errno::kOk;
  const bool refused = r.err == Errno::kFault || r.err == Errno::kPerm;
  switch (op.kind) {
    case OpKind::kDfault:
      return refused ? Bit(kDeviceFaultRefused) : 0;
    case OpKind::kDread:
    case OpKind::kDwrite:
      if (refused) return Bit(kDeviceFaultRefused);
      if (!ok) return 0;
      return r.faults == 0 ? Bit(kDeviceAccessNoFault) : Bit(kDeviceAccessFaulted);
    case OpKind::kHmmFault: {
      if (refused) return Bit(kDeviceFaultRefused);
      auto it = ok ? s.ranges.find(r.value) : s.ranges.end();
      return it != s.ranges.end() && !it->second.valid ? Bit(kFaultInvalidatesOwnRange) : 0;
    }
    case OpKind::kCommit:
      if (ok && r.value == 1) return Bit(kCommitValid);
      return ok && r.value == 0 ? Bit(kCommitInvalid) : 0;
    case OpKind::kRangeDone:
      return ok && r.value == 0 ? Bit(kCommitInvalid) : 0;
    case OpKind::kSnapshot:
      return ok ? SnapshotHits(r.data) : 0;
    default:
      return 0;
  }
}

}  // namespace hmm::props::coverage_internal
