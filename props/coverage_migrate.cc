// File: props/coverage_migrate.cc
//
// The migrate suite's state classes (props/coverage.cc has their names and
// definitions, docs/coverage.md the counts). BeforeStep notes what a step
// will meet (device entries, the range's pinned pages and empty slots, a
// shared VMA, another device's page, the mirror's FAIL_ALLOC flag), reading
// only the op's range of its process or counting entries; AfterStep decides
// the classes from those notes and the state after the step.

#include <algorithm>

#include "props/coverage_internal.h"

namespace hmm::props::coverage_internal {
namespace {

bool FailAlloc(const model::State& s, uint64_t mirror) {
  const model::Mirror* m = FindMirror(s, mirror);
  return m != nullptr && (m->flags & kDmirrorFlagFailAlloc) != 0;
}

size_t DeviceEntriesIn(const model::Process& p, uint64_t first, uint64_t end) {
  size_t n = 0;
  ForEachDeviceEntryIn(p, first, end, [&n](uint64_t, const model::Pte&) { ++n; });
  return n;
}

// Whether a device entry of `pid` in [first, end) names a page that another
// entry (of any process) also maps.
bool SharedDevicePageIn(const model::State& s, uint64_t pid, uint64_t first, uint64_t end) {
  const model::Process* proc = FindProcess(s, pid);
  bool shared = false;
  if (proc == nullptr) return false;
  ForEachDeviceEntryIn(*proc, first, end, [&](uint64_t, const model::Pte& pte) {
    size_t maps = 0;
    for (const auto& p : s.procs) {
      for (const auto& e : p.second.ptes) maps += e.second.device && e.second.device_pfn == pte.device_pfn;
    }
    shared = shared || maps >= 2;
  });
  return shared;
}

bool MeetsSharedVma(const model::Process& p, uint64_t first, uint64_t end) {
  return std::any_of(p.vmas.begin(), p.vmas.end(), [&](const auto& v) {
    return v.second.shared && v.second.start.value < end && first < v.second.end.value;
  });
}

// migrate_to_dev: its range's device entries, shared VMAs, empty slots and
// pinned pages (the last two in its first kMaxSpanPages pages).
void NoteMigrateToDev(const Op& op, const model::State& s, MigrateNotes* n) {
  n->fail_alloc = FailAlloc(s, op.mirror);
  const model::Process* proc = FindProcess(s, OpPid(op, s));
  uint64_t first = 0;
  uint64_t end = 0;
  if (proc == nullptr || !OpRange(op, &first, &end)) return;
  n->device_entries_in_range = DeviceEntriesIn(*proc, first, end);
  n->shared_vma = MeetsSharedVma(*proc, first, end);
  std::vector<uint64_t> pinned;
  CollectPinnedPages(s, &pinned);
  for (uint64_t vpn = first; vpn < std::min(end, first + kMaxSpanPages); ++vpn) {
    const model::Pte* pte = FindPte(*proc, vpn);
    if (pte == nullptr || pte->zero) n->empty.push_back(vpn);
    if (pte != nullptr && NamesPage(*pte) &&
        std::binary_search(pinned.begin(), pinned.end(), pte->page)) {
      n->pinned.emplace_back(vpn, pte->page);
    }
  }
}

// A read, write or pin: whether it reaches a device entry (and, for a write,
// one whose page is mapped twice, after a fork).
void NoteCpuAccess(const Op& op, const model::State& s, MigrateNotes* n) {
  uint64_t first = 0;
  uint64_t end = 0;
  if (!OpRange(op, &first, &end) || !ReachesDeviceEntry(s, op.pid, first, end, nullptr)) return;
  n->reaches_device = true;
  n->device_entries = CountDeviceEntries(s);
  n->forked_device_page = op.kind == OpKind::kWrite && SharedDevicePageIn(s, op.pid, first, end);
}

// dread, dwrite: whether the range has a page of another device than the mirror's.
void NoteDeviceAccess(const Op& op, const model::State& s, MigrateNotes* n) {
  const model::Mirror* m = FindMirror(s, op.mirror);
  uint64_t first = 0;
  uint64_t end = 0;
  n->other_device = m != nullptr && OpRange(op, &first, &end) &&
                    ReachesDeviceEntry(s, m->pid.value, first, end, &m->device);
}

bool RamFull(const model::State& s) { return s.pages.size() >= s.config.ram_pages; }

uint64_t MigrateToDevHits(const StepRecord& step, const model::State& s, const MigrateNotes& n) {
  const Op& op = step.op;
  const Errno err = step.model.err;
  const model::Mirror* m = FindMirror(s, op.mirror);
  if (m == nullptr) return 0;
  uint64_t hit = err == Errno::kNoEnt ? Bit(kMigrateToDevNoEnt) : 0;
  if (n.fail_alloc && (m->flags & kDmirrorFlagFailAlloc) == 0) hit |= Bit(kFailAllocDeclined);
  const model::Process* proc = FindProcess(s, m->pid.value);
  uint64_t first = 0;
  uint64_t end = 0;
  if (proc == nullptr || !OpRange(op, &first, &end)) return hit;
  if (DeviceEntriesIn(*proc, first, end) > n.device_entries_in_range) hit |= Bit(kMigratedToDevice);
  for (uint64_t vpn : n.empty) {
    const model::Pte* pte = FindPte(*proc, vpn);
    if (pte != nullptr && pte->device) hit |= Bit(kEmptySlotFilled);
  }
  if (err != Errno::kOk && err != Errno::kNoEnt) return hit;  // stopped by a guard
  if (n.shared_vma) hit |= Bit(kSharedVmaSkipped);
  for (const auto& [vpn, page] : n.pinned) {
    const model::Pte* pte = FindPte(*proc, vpn);
    if (pte != nullptr && NamesPage(*pte) && pte->page == page) hit |= Bit(kPinnedPageSkipped);
  }
  return hit;
}

}  // namespace

void NoteMigrateStep(const Op& op, const model::State& before, MigrateNotes* n) {
  *n = MigrateNotes{};
  switch (op.kind) {
    case OpKind::kMigrateToDev: NoteMigrateToDev(op, before, n); break;
    case OpKind::kMigrateToSys:
    case OpKind::kRelease:
      n->device_entries = CountDeviceEntries(before);
      n->fail_alloc = FailAlloc(before, op.mirror);
      break;
    case OpKind::kRead:
    case OpKind::kWrite:
    case OpKind::kPin: NoteCpuAccess(op, before, n); break;
    case OpKind::kDread:
    case OpKind::kDwrite: NoteDeviceAccess(op, before, n); break;
    default: return;
  }
  n->taken = true;
}

uint64_t MigrationHits(const StepRecord& step, const model::State& s, const MigrateNotes& n) {
  const Errno err = step.model.err;
  const bool fewer = CountDeviceEntries(s) < n.device_entries;
  switch (step.op.kind) {
    case OpKind::kMigrateToDev: return MigrateToDevHits(step, s, n);
    case OpKind::kMigrateToSys:
      return (fewer ? Bit(kMovedBackByMigrateToSys) : 0) |
             (n.fail_alloc && !FailAlloc(s, step.op.mirror) ? Bit(kFailAllocDeclined) : 0);
    case OpKind::kRelease:
      return (fewer ? Bit(kMovedBackByRelease) : 0) |
             (err == Errno::kNoMem ? Bit(kMoveBackRamFull) : 0);
    case OpKind::kRead:
    case OpKind::kWrite:
    case OpKind::kPin:
      if (!n.reaches_device) return 0;
      return (fewer ? Bit(kMovedBackByCpuFault) : 0) |
             (err == Errno::kOk && n.forked_device_page ? Bit(kForkedDevicePageWritten) : 0) |
             (err == Errno::kFault && RamFull(s) ? Bit(kMoveBackRamFull) : 0);
    case OpKind::kDread:
    case OpKind::kDwrite:
      return err == Errno::kOk && n.other_device ? Bit(kOtherDevicePageMovedBack) : 0;
    default: return 0;
  }
}

}  // namespace hmm::props::coverage_internal
