// File: props/coverage.cc
//
// The state classes and their detectors. Each detector runs only for the
// steps of the kinds it is about, reads the model's state in place, and
// stays within the pages a step touches (or the pins, the resources or the
// new events), so classifying costs a small fraction of a step's checks.

#include "props/coverage.h"

#include <algorithm>

#include "model/kernel.h"
#include "props/concurrent_coverage.h"
#include "props/coverage_internal.h"

namespace hmm::props {
namespace {

using namespace coverage_internal;  // NOLINT: the class ids and detectors


struct ClassDef {
  ClassId id;
  const char* name;
  const char* description;
};

// Names and one-line definitions (docs/coverage.md repeats them).
const ClassDef kClassDefs[] = {
    {kZeroPageMapped, "zero page mapped",
     "a read leaves a zero-page PTE at a page it touched"},
    {kCowBreak, "COW break (write to a page shared by 2+ PTEs)",
     "a write or pin meets a read-only PTE whose page 2+ PTEs map, and the PTE then names "
     "a new page"},
    {kSharedPageTwoProcesses, "shared page seen by two processes",
     "a successful read or write in a MAP_SHARED VMA reaches a page that another process's "
     "PTE also maps"},
    {kPinOutlivesUnmap, "pin outlives munmap (pinned page mapped by no PTE)",
     "after munmap, madvise, exit, mremap or MAP_FIXED mmap, a pinned page is mapped by no "
     "PTE"},
    {kForkPinnedPage, "fork with a pinned page",
     "a successful fork gives the child its own copy of a page pinned in the parent"},
    {kFaultOutOfRam, "RAM exhausted (kNoMem)",
     "a read, write or pin fails with kNoMem: a fault found RAM full"},
    {kMremapMoved, "mremap moved", "a successful mremap returns an address other than old_addr"},
    {kMadviseOverHole, "madvise over a hole (kNoMem)",
     "madvise(DONTNEED) returns kNoMem: part of the range has no VMA"},
    {kPartialWrite, "partial write fault",
     "a write spanning 2+ pages fails after its first page was written (a writable PTE "
     "there)"},
    {kDeviceEntryForked, "device page mapped by 2+ entries (after fork)",
     "a successful fork copies a device-private entry into the child"},
    {kPageFreeLogged, "page_free logged", "a step logs a page_free callback"},
    {kPageFreeOnZap, "page_free from a zap",
     "a step other than devpage_put logs page_free: an entry's unmap dropped the last "
     "reference"},
    {kFaultCallbackLogged, "fault callback logged",
     "a CPU access (read, write, pin) reaches a device-private entry and logs a fault"},
    {kV18HotAddCollision, "v18 hot-add collision (kBusy)",
     "under profile v18, ram_hotadd returns kBusy on a range that overlaps device memory"},
    {kDevmemRemoveBusy, "devmem remove refused (kBusy)",
     "devmem_remove returns kBusy: a page of the region is held or mapped"},
    {kDeviceRegionExhausted, "device region exhausted (kNoMem)",
     "devpage_alloc returns kNoMem: every page of the region is in use"},
    {kDeviceAccessNoFault, "device access without a fault (faults=0)",
     "a dread or dwrite succeeds with faults 0: the device page table had every page"},
    {kDeviceAccessFaulted, "device access that faulted (faults>=1)",
     "a dread or dwrite succeeds with faults 1 or more"},
    {kDeviceFaultRefused, "device fault refused (kFault, kPerm)",
     "a dread, dwrite or hmm_fault returns kFault or kPerm"},
    {kMirrorEntriesErased, "device entries erased by a CPU change",
     "a CPU-side step leaves fewer device page table entries than it found (the mmu "
     "notifier)"},
    {kCommitInvalid, "range invalidated (commit or range_done -> 0)",
     "commit or range_done returns 0: a CPU change overlapped the open range"},
    {kCommitValid, "commit installed a range (commit -> 1)", "commit returns 1"},
    {kFaultInvalidatesOwnRange, "fault invalidated its own range",
     "hmm_fault succeeds with a range already invalid: its own COW break notified it"},
    {kSnapshotProtError, "snapshot byte 0xff (no VMA or not readable)",
     "a snapshot succeeds with a 0xff (PROT_ERROR) byte"},
    {kSnapshotZeroPage, "snapshot byte 0x11 (zero page)",
     "a snapshot succeeds with a 0x11 (ZERO, READ) byte"},
    {kSnapshotReadOnly, "snapshot byte 0x01 (read-only page)",
     "a snapshot succeeds with a 0x01 (READ) byte"},
    {kSnapshotLocalDevice, "snapshot byte 0x21 or 0x22 (this device's page)",
     "a snapshot succeeds with a 0x21 or 0x22 (DEV_PRIVATE_LOCAL) byte"},
    {kMigratedToDevice, "pages moved to the device (migrate_to_dev)",
     "a migrate_to_dev leaves more device entries in its range than it found"},
    {kMovedBackByCpuFault, "device page moved back by a CPU fault",
     "a read, write or pin reaches a device entry and leaves fewer device entries than it "
     "found (migrate_to_ram)"},
    {kMovedBackByMigrateToSys, "device pages moved back by migrate_to_sys",
     "a migrate_to_sys leaves fewer device entries than it found"},
    {kMovedBackByRelease, "device pages moved back by release",
     "a release leaves fewer device entries than it found"},
    {kPinnedPageSkipped, "pinned page skipped by migrate_to_dev",
     "a migrate_to_dev of a registered mirror returns ok or kNoEnt, and a pinned page in its "
     "range is still mapped there"},
    {kSharedVmaSkipped, "shared VMA skipped by migrate_to_dev",
     "a migrate_to_dev of a registered mirror whose range meets a MAP_SHARED VMA returns ok "
     "or kNoEnt"},
    {kEmptySlotFilled, "empty slot filled on the device",
     "a migrate_to_dev leaves a device entry where its range had no entry or the zero page"},
    {kFailAllocDeclined, "FAIL_ALLOC declined an allocation",
     "a migrate_to_dev or migrate_to_sys finds the mirror's fail_alloc flag set and clears it"},
    {kMigrateToDevNoEnt, "migrate_to_dev -> kNoEnt (a page did not land)",
     "a migrate_to_dev of a registered mirror returns kNoEnt"},
    {kForkedDevicePageWritten, "write to a device page mapped twice (after fork)",
     "a successful write reaches a device entry whose page another entry also maps"},
    {kOtherDevicePageMovedBack, "another device's page read or written (moved back)",
     "a successful dread or dwrite reaches a device entry of another device than the "
     "mirror's"},
    {kMoveBackRamFull, "moving back with RAM full",
     "a read, write or pin that reaches a device entry fails with kFault while RAM is full, or "
     "a release returns kNoMem"},
};

const ClassDef& Def(ClassId id) { return kClassDefs[id]; }

struct SuiteClass {
  ClassId id;
  uint64_t minimum;  // of kCoverageBudget sequences
};

struct SuiteClasses {
  const char* suite;
  std::vector<SuiteClass> classes;
};

// Minimums, of kCoverageBudget sequences: about a third of the fewest that
// seeds 1 to 9 reach (docs/coverage.md has the counts), so that another seed
// passes and a generator change that loses most of a class does not. A class
// the generators reach about once in 2000 sequences has minimum 1: most seeds
// warn about it, as they should.
const std::vector<SuiteClasses>& AllSuiteClasses() {
  static const std::vector<SuiteClasses> kSuites = {
      {"cpu",
       {
           {kZeroPageMapped, 100},
           {kCowBreak, 3},
           {kSharedPageTwoProcesses, 2},
           {kPinOutlivesUnmap, 4},
           {kForkPinnedPage, 2},
           {kFaultOutOfRam, 1},
           {kMremapMoved, 10},
           {kMadviseOverHole, 300},
           {kPartialWrite, 5},
       }},
      {"devmem",
       {
           {kDeviceEntryForked, 1},
           {kPageFreeLogged, 90},
           {kPageFreeOnZap, 1},
           {kFaultCallbackLogged, 1},
           {kV18HotAddCollision, 20},
           {kDevmemRemoveBusy, 60},
           {kDeviceRegionExhausted, 1},
       }},
      {"mirror",
       {
           {kDeviceAccessNoFault, 100},
           {kDeviceAccessFaulted, 500},
           {kDeviceFaultRefused, 245},
           {kMirrorEntriesErased, 330},
           {kCommitInvalid, 105},
           {kCommitValid, 100},
           {kFaultInvalidatesOwnRange, 36},
           {kSnapshotProtError, 100},
           {kSnapshotZeroPage, 105},
           {kSnapshotReadOnly, 30},
           {kSnapshotLocalDevice, 10},
       }},
      {"migrate",
       {
           {kMigratedToDevice, 552},
           {kMovedBackByCpuFault, 234},
           {kMovedBackByMigrateToSys, 235},
           {kMovedBackByRelease, 233},
           {kPinnedPageSkipped, 38},
           {kSharedVmaSkipped, 37},
           {kEmptySlotFilled, 543},
           {kFailAllocDeclined, 186},
           {kMigrateToDevNoEnt, 275},
           {kForkedDevicePageWritten, 23},
           {kOtherDevicePageMovedBack, 11},
           {kMoveBackRamFull, 15},
       }},
  };
  return kSuites;
}

const SuiteClasses* FindSuiteClasses(const std::string& suite) {
  for (const SuiteClasses& s : AllSuiteClasses()) {
    if (suite == s.suite) return &s;
  }
  return nullptr;
}

}  // namespace

const std::vector<CoverageClass>& CoverageClasses(const std::string& suite) {
  static const std::vector<std::pair<std::string, std::vector<CoverageClass>>> kTables = [] {
    std::vector<std::pair<std::string, std::vector<CoverageClass>>> tables;
    for (const SuiteClasses& s : AllSuiteClasses()) {
      std::vector<CoverageClass> classes;
      for (const SuiteClass& c : s.classes) {
        classes.push_back({Def(c.id).name, Def(c.id).description, c.minimum});
      }
      tables.emplace_back(s.suite, std::move(classes));
    }
    return tables;
  }();
  static const std::vector<CoverageClass> kNone;
  for (const auto& table : kTables) {
    if (table.first == suite) return table.second;
  }
  // The race suite classifies its runs itself (props/concurrent_coverage.h).
  if (suite == "race") return RaceCoverageClasses();
  return kNone;
}

uint64_t Coverage::ScaledMinimum(uint64_t minimum, uint64_t sequences) {
  return minimum * sequences / kCoverageBudget;
}

std::vector<ClassCount> Coverage::Missed() const {
  std::vector<ClassCount> missed;
  for (const ClassCount& c : classes) {
    if (c.sequences < ScaledMinimum(c.minimum, sequences)) missed.push_back(c);
  }
  return missed;
}

uint64_t Coverage::SequencesOf(const std::string& name) const {
  for (const ClassCount& c : classes) {
    if (c.name == name) return c.sequences;
  }
  return 0;
}

CoverageObserver::CoverageObserver(const std::string& suite) : suite_(suite) {
  if (const SuiteClasses* s = FindSuiteClasses(suite)) {
    for (const SuiteClass& c : s->classes) enabled_ |= Bit(c.id);
  }
}

void CoverageObserver::BeginSequence() {
  in_trace_ = 0;
  events_seen_ = 0;
  cow_candidates_.clear();
}

void CoverageObserver::EndSequence() {
  ++sequences_;
  for (uint32_t id = 0; id < kNumClassIds; ++id) {
    if (in_trace_ & (uint64_t{1} << id)) ++class_sequences_[id];
  }
  in_trace_ = 0;
}

void CoverageObserver::BeforeStep(const Op& op, const model::State& before) {
  cow_candidates_.clear();
  if (enabled_ & kMigrateClasses) NoteMigrateStep(op, before, &migrate_);
  const bool erasable = (enabled_ & Bit(kMirrorEntriesErased)) && IsCpuSide(op.kind);
  mirror_entries_before_ = erasable ? MirrorEntries(before) : 0;
  if (!(enabled_ & Bit(kCowBreak))) return;
  uint64_t len;
  if (op.kind == OpKind::kWrite) {
    len = op.data.size();
  } else if (op.kind == OpKind::kPin && op.len <= model::kMaxPinPages) {
    len = op.len << kPageShift;
  } else {
    return;
  }
  const model::Process* proc = FindProcess(before, op.pid);
  uint64_t first, count;
  if (proc == nullptr || !PageSpan(op.addr, len, &first, &count)) return;
  for (uint64_t vpn = first; vpn < first + count; ++vpn) {
    const model::Pte* pte = FindPte(*proc, vpn);
    if (pte != nullptr && NamesPage(*pte) && !pte->write && MappedTwice(before, pte->page)) {
      cow_candidates_.emplace_back(vpn, pte->page);
    }
  }
}

// A read, a write or a pin: RAM exhaustion, the zero page, a shared page seen
// by two processes, a partial write, and a COW break of BeforeStep's candidates.
uint64_t CoverageObserver::AccessHits(const StepRecord& step, const model::State& s) {
  const Op& op = step.op;
  const Errno err = step.model.err;
  uint64_t hit = 0;
  if (err == Errno::kNoMem) hit |= Bit(kFaultOutOfRam);
  if (op.kind == OpKind::kRead) {
    if (Wants(kZeroPageMapped) && ReadLeftZeroPage(s, op)) hit |= Bit(kZeroPageMapped);
    if (Wants(kSharedPageTwoProcesses) && err == Errno::kOk && SharedPageSeenByTwo(s, op, op.len)) {
      hit |= Bit(kSharedPageTwoProcesses);
    }
    return hit;
  }
  if (op.kind == OpKind::kWrite) {
    if (Wants(kSharedPageTwoProcesses) && err == Errno::kOk &&
        SharedPageSeenByTwo(s, op, op.data.size())) {
      hit |= Bit(kSharedPageTwoProcesses);
    }
    if (Wants(kPartialWrite) && PartialWrite(s, op, err)) hit |= Bit(kPartialWrite);
  }
  const model::Process* proc = cow_candidates_.empty() ? nullptr : FindProcess(s, op.pid);
  for (size_t i = 0; proc != nullptr && i < cow_candidates_.size(); ++i) {
    const model::Pte* pte = FindPte(*proc, cow_candidates_[i].first);
    if (pte != nullptr && NamesPage(*pte) && pte->page != cow_candidates_[i].second) {
      hit |= Bit(kCowBreak);
    }
  }
  return hit;
}

// A fork that succeeded: a pinned page copied into the child, a device entry
// the child shares.
uint64_t CoverageObserver::ForkHits(const StepRecord& step, const model::State& s) {
  uint64_t hit = 0;
  if (step.model.err != Errno::kOk) return 0;
  if (Wants(kForkPinnedPage) && !s.pins.empty()) {
    CollectPinnedPages(s, &pinned_);
    if (ForkCopiedPinnedPage(s, step.op.pid, step.model.value, pinned_)) hit |= Bit(kForkPinnedPage);
  }
  const model::Process* child = Wants(kDeviceEntryForked) ? FindProcess(s, step.model.value) : nullptr;
  if (child == nullptr) return hit;
  for (const auto& entry : child->ptes) {
    if (entry.second.device) return hit | Bit(kDeviceEntryForked);
  }
  return hit;
}

// The other CPU and device-memory steps; sets *unmaps when the step may have
// dropped PTEs (so a pin may now outlive its mapping).
uint64_t CoverageObserver::OtherHits(const StepRecord& step, const model::State& s,
                                     bool* unmaps) const {
  const Op& op = step.op;
  const Errno err = step.model.err;
  const bool ok = err == Errno::kOk;
  switch (op.kind) {
    case OpKind::kMremap:
      *unmaps = ok;
      return ok && step.model.value != op.addr ? Bit(kMremapMoved) : 0;
    case OpKind::kMadviseDontneed:
      *unmaps = ok || err == Errno::kNoMem;
      return err == Errno::kNoMem ? Bit(kMadviseOverHole) : 0;
    case OpKind::kMunmap:
    case OpKind::kExit: *unmaps = ok; return 0;
    case OpKind::kMmap: *unmaps = ok && (op.flags & kMapFixed) != 0; return 0;
    case OpKind::kRamHotAdd:
      return err == Errno::kBusy && s.config.profile == Profile::kV18 &&
                     OverlapsDeviceMemory(s, op.addr, op.len)
                 ? Bit(kV18HotAddCollision)
                 : 0;
    case OpKind::kDevmemRemove: return err == Errno::kBusy ? Bit(kDevmemRemoveBusy) : 0;
    case OpKind::kDevPageAlloc: return err == Errno::kNoMem ? Bit(kDeviceRegionExhausted) : 0;
    default: return 0;
  }
}

// A pinned page that no PTE maps any more.
uint64_t CoverageObserver::PinOutlivesUnmapHit(const model::State& s) {
  if (!Wants(kPinOutlivesUnmap) || s.pins.empty()) return 0;
  CollectPinnedPages(s, &pinned_);
  mapped_.assign(pinned_.size(), 0);
  size_t found = 0;
  for (const auto& proc : s.procs) {
    for (const auto& entry : proc.second.ptes) {
      if (!NamesPage(entry.second)) continue;
      auto it = std::lower_bound(pinned_.begin(), pinned_.end(), entry.second.page);
      if (it != pinned_.end() && *it == entry.second.page && !mapped_[it - pinned_.begin()]) {
        mapped_[it - pinned_.begin()] = 1;
        ++found;
      }
    }
  }
  return found < pinned_.size() ? Bit(kPinOutlivesUnmap) : 0;
}

// The callbacks this step logged.
uint64_t CoverageObserver::EventHits(const Op& op, const model::State& s) {
  uint64_t hit = 0;
  for (size_t i = events_seen_; i < s.events.size(); ++i) {
    const bool page_free = s.events[i].kind == model::DeviceEvent::kPageFree;
    if (page_free) hit |= Bit(kPageFreeLogged);
    if (page_free && op.kind != OpKind::kDevPagePut) hit |= Bit(kPageFreeOnZap);
    if (!page_free) hit |= Bit(kFaultCallbackLogged);
  }
  events_seen_ = s.events.size();
  return hit;
}

void CoverageObserver::AfterStep(const StepRecord& step, const model::State& s) {
  const Op& op = step.op;
  ++steps_;
  const auto kind = static_cast<size_t>(op.kind);
  const auto errno_index = static_cast<size_t>(step.model.err);
  if (kind < kKinds && errno_index < kErrnos) ++commands_[kind][errno_index];

  uint64_t hit = 0;
  bool unmaps = false;  // the step may have dropped PTEs
  if (op.kind == OpKind::kRead || op.kind == OpKind::kWrite || op.kind == OpKind::kPin) {
    hit |= AccessHits(step, s);
  } else if (op.kind == OpKind::kFork) {
    hit |= ForkHits(step, s);
  } else {
    hit |= OtherHits(step, s, &unmaps);
  }
  if (unmaps) hit |= PinOutlivesUnmapHit(s);
  hit |= MirrorHits(op, step.model, s);
  if (mirror_entries_before_ != 0 && MirrorEntries(s) < mirror_entries_before_) {
    hit |= Bit(kMirrorEntriesErased);
  }
  mirror_entries_before_ = 0;
  hit |= EventHits(op, s);
  if (migrate_.taken) hit |= MigrationHits(step, s, migrate_);
  migrate_.taken = false;

  hit &= enabled_;
  if (hit == 0) return;
  in_trace_ |= hit;
  for (uint32_t id = 0; id < kNumClassIds; ++id) {
    if (hit & (uint64_t{1} << id)) ++class_steps_[id];
  }
}

Coverage CoverageObserver::Result() const {
  Coverage c;
  c.suite = suite_;
  c.sequences = sequences_;
  c.steps = steps_;
  for (size_t k = 0; k < kKinds; ++k) {
    for (size_t e = 0; e < kErrnos; ++e) {
      if (commands_[k][e] != 0) {
        c.commands.push_back({static_cast<OpKind>(k), static_cast<Errno>(e), commands_[k][e]});
      }
    }
  }
  if (const SuiteClasses* s = FindSuiteClasses(suite_)) {
    for (const SuiteClass& sc : s->classes) {
      c.classes.push_back(
          {Def(sc.id).name, class_sequences_[sc.id], class_steps_[sc.id], sc.minimum});
    }
  }
  return c;
}

Coverage ClassifyTrace(const std::vector<Op>& ops, const std::string& suite) {
  CoverageObserver observer(suite);
  RunOptions options;
  options.observer = &observer;
  observer.BeginSequence();
  RunTrace(ops, options);
  observer.EndSequence();
  return observer.Result();
}

}  // namespace hmm::props
