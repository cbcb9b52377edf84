// File: props/migrate_checks.cc
//
// The transition properties of migration (props/migrate_checks.h). Each walks
// the addresses that have an entry before or after the step, once, and reads
// both states in place.

#include "props/migrate_checks.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "props/model_query.h"

namespace hmm::props {
namespace {

// What an entry names: the zero page, a page (by id) or a device page (by pfn).
struct Target {
  enum Kind : uint8_t { kZero, kPage, kDevice };
  Kind kind = kZero;
  uint64_t id = 0;

  bool operator==(const Target& o) const { return kind == o.kind && id == o.id; }
  bool operator<(const Target& o) const { return std::tie(kind, id) < std::tie(o.kind, o.id); }
};

Target TargetOf(const model::Pte& pte) {
  if (pte.device) return {Target::kDevice, pte.device_pfn};
  if (pte.zero) return {Target::kZero, 0};
  return {Target::kPage, pte.page};
}

std::string Describe(const Target& t) {
  if (t.kind == Target::kDevice) return "device pfn " + Hex(t.id);
  return t.kind == Target::kZero ? "zero page" : "page#" + std::to_string(t.id);
}

std::string Describe(const model::Pte& pte) {
  return Describe(TargetOf(pte)) + (pte.write ? " w" : " r");
}

std::string Where(Pid pid, Vpn vpn) {
  return "pid " + std::to_string(pid.value) + " vpn " + Hex(vpn.value);
}

// Whether `t` is a page the step brought into being: a page that did not
// exist before, a device page it allocated.
bool IsNew(const Target& t, const model::State& before, const model::State& after) {
  if (t.kind == Target::kPage) return before.pages.count(t.id) == 0;
  if (t.kind != Target::kDevice) return false;
  const model::DevicePage* was = FindDevicePage(before, t.id);
  const model::DevicePage* now = FindDevicePage(after, t.id);
  return now != nullptr && now->allocations > (was == nullptr ? 0 : was->allocations);
}

using AddressFn = std::function<void(Pid, Vpn, const model::Pte*, const model::Pte*)>;

// fn(pid, vpn, before's entry, after's entry) for every address of every
// process of `before` that has an entry in either state, in vpn order.
void ForEachAddress(const model::State& before, const model::State& after, const AddressFn& fn) {
  static const std::map<Vpn, model::Pte> kNone;
  for (const auto& [pid, proc] : before.procs) {
    const model::Process* later = FindProcess(after, pid.value);
    const std::map<Vpn, model::Pte>& now = later != nullptr ? later->ptes : kNone;
    auto b = proc.ptes.begin();
    auto a = now.begin();
    while (b != proc.ptes.end() || a != now.end()) {
      const bool take_b = a == now.end() || (b != proc.ptes.end() && b->first <= a->first);
      const bool take_a = b == proc.ptes.end() || (a != now.end() && a->first <= b->first);
      const Vpn vpn = take_b ? b->first : a->first;
      fn(pid, vpn, take_b ? &b->second : nullptr, take_a ? &a->second : nullptr);
      if (take_b) ++b;
      if (take_a) ++a;
    }
  }
}

// Per-page atomicity over the whole step: which page each old page became,
// and where each new page came from.
class AtomicityCheck {
 public:
  AtomicityCheck(const model::State& before, const model::State& after, const StepOwnPages& own)
      : before_(before), after_(after), own_(own) {}

  void Address(Pid pid, Vpn vpn, const model::Pte* was, const model::Pte* now) {
    const std::string where = Where(pid, vpn);
    if (was == nullptr) {
      if (IsNew(TargetOf(*now), before_, after_)) Source(TargetOf(*now), "an empty slot at " + where);
      return;
    }
    if (now == nullptr) return Add(where + ": had " + Describe(*was) + ", has no entry");
    const Target from = TargetOf(*was);
    const Target to = TargetOf(*now);
    const bool own = own_.Holds(pid.value, vpn.value);
    if (!(from == to) && !IsNew(to, before_, after_)) {
      return Add(where + ": had " + Describe(*was) + ", has " + Describe(*now) +
                 " (neither the old page nor a new one)");
    }
    // An empty slot filled: the new page is writable iff the VMA is.
    const bool filled = from.kind == Target::kZero && !(from == to);
    if (was->write != now->write && !filled && !(own && own_.write_fault)) {
      Add(where + ": had " + Describe(*was) + ", has " + Describe(*now) + " (write bit changed)");
    }
    if (own && own_.write_fault) return;  // a COW break may split the page's mappings
    if (filled) return Source(to, "the zero page at " + where);
    if (from.kind == Target::kZero) return;
    Moved(from, to, where);
    if (!(from == to)) Source(to, Describe(from));
  }

  Violations Take() { return std::move(out_); }

 private:
  void Add(std::string line) { out_.push_back(std::move(line)); }

  // Every mapping of `from` must name the same page after the step.
  void Moved(const Target& from, const Target& to, const std::string& where) {
    auto [it, inserted] = moved_.emplace(from, to);
    if (!inserted && !(it->second == to)) {
      Add(where + ": " + Describe(from) + " became " + Describe(to) + " here and " +
          Describe(it->second) + " at another mapping");
    }
  }

  // A new page comes from one old page (or one empty slot).
  void Source(const Target& to, const std::string& origin) {
    auto [it, inserted] = sources_.emplace(to, origin);
    if (!inserted && it->second != origin) {
      Add(Describe(to) + " is both " + it->second + " and " + origin + " moved");
    }
  }

  const model::State& before_;
  const model::State& after_;
  const StepOwnPages& own_;
  std::map<Target, Target> moved_;
  std::map<Target, std::string> sources_;
  Violations out_;
};

const model::Page kZeroPage;

// The bytes readable at vpn of `proc` in `s`, given its entry there (or null).
const model::Page& BytesAt(const model::State& s, const model::Process& proc, Vpn vpn,
                           const model::Pte* pte) {
  if (pte != nullptr && pte->device) {
    const model::DevicePage* page = FindDevicePage(s, pte->device_pfn);
    return page != nullptr ? page->data : kZeroPage;
  }
  if (pte != nullptr && !pte->zero) {
    auto it = s.pages.find(pte->page);
    return it != s.pages.end() ? it->second : kZeroPage;
  }
  const model::Vma* vma = pte == nullptr ? FindVma(proc, vpn.value) : nullptr;
  if (vma == nullptr || !vma->shared) return kZeroPage;
  auto obj = s.objects.find(vma->object);
  if (obj == s.objects.end()) return kZeroPage;
  auto slot = obj->second.pages.find(vma->pgoff + (vpn.value - vma->start.value));
  if (slot == obj->second.pages.end()) return kZeroPage;
  auto it = s.pages.find(slot->second);
  return it != s.pages.end() ? it->second : kZeroPage;
}

// (object, pgoff) of a shared VMA's page at vpn.
using Slot = std::pair<model::ObjectId, uint64_t>;

bool SlotAt(const model::Process& proc, Vpn vpn, Slot* slot) {
  const model::Vma* vma = FindVma(proc, vpn.value);
  if (vma == nullptr || !vma->shared) return false;
  *slot = {vma->object, vma->pgoff + (vpn.value - vma->start.value)};
  return true;
}

// The shared slots a store to `own` writes: their bytes change at every mapping.
std::set<Slot> StoredSlots(const model::State& before, const StepOwnPages& own) {
  std::set<Slot> slots;
  const model::Process* proc = own.stores ? FindProcess(before, own.pid) : nullptr;
  if (proc == nullptr) return slots;
  for (const auto& [start, vma] : proc->vmas) {
    if (!vma.shared || vma.end.value <= own.first || start.value >= own.end) continue;
    const uint64_t lo = std::max(start.value, own.first);
    const uint64_t hi = std::min(vma.end.value, own.end);
    for (uint64_t vpn = lo; vpn < hi; ++vpn) slots.insert({vma.object, vma.pgoff + (vpn - start.value)});
  }
  return slots;
}

}  // namespace

Violations InvMigrationPerPageAtomic(const model::State& before, const model::State& after,
                                     const StepOwnPages& own) {
  AtomicityCheck check(before, after, own);
  ForEachAddress(before, after, [&check](Pid pid, Vpn vpn, const model::Pte* was,
                                         const model::Pte* now) { check.Address(pid, vpn, was, now); });
  return check.Take();
}

Violations InvMigrationPreservesBytes(const model::State& before, const model::State& after,
                                      const StepOwnPages& own) {
  Violations out;
  const std::set<Slot> stored = StoredSlots(before, own);
  ForEachAddress(before, after, [&](Pid pid, Vpn vpn, const model::Pte* was, const model::Pte* now) {
    const model::Process& proc = before.procs.at(pid);
    const model::Process* later = FindProcess(after, pid.value);
    Slot slot;
    if (later == nullptr || (own.stores && own.Holds(pid.value, vpn.value)) ||
        (SlotAt(proc, vpn, &slot) && stored.count(slot) != 0)) {
      return;
    }
    const model::Page& old_bytes = BytesAt(before, proc, vpn, was);
    const model::Page& new_bytes = BytesAt(after, *later, vpn, now);
    if (old_bytes == new_bytes) return;
    out.push_back(Where(pid, vpn) + ": " + std::to_string(old_bytes.bytes.size()) +
                  " non-zero bytes before (" + (was ? Describe(*was) : std::string("no entry")) +
                  "), " + std::to_string(new_bytes.bytes.size()) + " after (" +
                  (now ? Describe(*now) : std::string("no entry")) + ")");
  });
  return out;
}

Violations InvMigrationSkipsPinned(const model::State& before, const model::State& after) {
  Violations out;
  std::set<model::PageId> pinned;
  for (const auto& pin : before.pins) pinned.insert(pin.second.begin(), pin.second.end());
  for (const auto& [pid, proc] : before.procs) {
    const model::Process* later = FindProcess(after, pid.value);
    for (const auto& [vpn, pte] : proc.ptes) {
      if (!NamesPage(pte) || pinned.count(pte.page) == 0) continue;
      const model::Pte* now = later != nullptr ? FindPte(*later, vpn.value) : nullptr;
      if (now != nullptr && NamesPage(*now) && now->page == pte.page) continue;
      out.push_back(Where(pid, vpn) + ": pinned page#" + std::to_string(pte.page) + " became " +
                    (now ? Describe(*now) : std::string("no entry")));
    }
  }
  return out;
}

Violations InvMigrationOnlyPrivateAnonToDevice(const model::State& before,
                                               const model::State& after) {
  Violations out;
  for (const auto& [pid, proc] : after.procs) {
    for (const auto& [vpn, pte] : proc.ptes) {
      if (!pte.device) continue;
      const model::Vma* vma = FindVma(proc, vpn.value);
      if (vma != nullptr && !vma->shared) continue;
      out.push_back(Where(pid, vpn) + ": " + Describe(pte) +
                    (vma ? " in a shared VMA" : " outside every VMA"));
    }
  }
  for (const auto& [id, obj] : before.objects) {
    auto later = after.objects.find(id);
    for (const auto& [pgoff, page] : obj.pages) {
      const bool kept = later != after.objects.end() && later->second.pages.count(pgoff) != 0 &&
                        later->second.pages.at(pgoff) == page;
      if (!kept) {
        out.push_back("obj#" + std::to_string(id) + " pgoff " + Hex(pgoff) + ": page#" +
                      std::to_string(page) + " moved or went");
      }
    }
  }
  return out;
}

bool IsMigrationStep(const Op& op, const model::State& before) {
  uint64_t first = 0;
  uint64_t end = 0;
  switch (op.kind) {
    case OpKind::kMigrateToDev:
    case OpKind::kMigrateToSys:
    case OpKind::kRelease: return true;
    case OpKind::kRead:
    case OpKind::kWrite:
    case OpKind::kPin:
      return OpRange(op, &first, &end) && ReachesDeviceEntry(before, op.pid, first, end, nullptr);
    case OpKind::kHmmFault:
    case OpKind::kDfault:
    case OpKind::kDread:
    case OpKind::kDwrite: {
      // hmm_fault moves back any device page; the dummy device's own fault
      // (dfault, dread, dwrite) only another device's.
      const model::Mirror* m = FindMirror(before, op.mirror);
      const DeviceId* other_than = op.kind == OpKind::kHmmFault || m == nullptr ? nullptr : &m->device;
      return m != nullptr && OpRange(op, &first, &end) &&
             ReachesDeviceEntry(before, m->pid.value, first, end, other_than);
    }
    default: return false;
  }
}

StepOwnPages OwnPagesOf(const Op& op, const model::State& before) {
  StepOwnPages own;
  const bool write_fault = op.kind == OpKind::kWrite || op.kind == OpKind::kDwrite ||
                           op.kind == OpKind::kPin ||
                           ((op.kind == OpKind::kHmmFault || op.kind == OpKind::kDfault) &&
                            (op.prot & kProtWrite) != 0);
  if (!write_fault || !OpRange(op, &own.first, &own.end)) return StepOwnPages{};
  own.pid = OpPid(op, before);
  own.write_fault = true;
  own.stores = op.kind == OpKind::kWrite || op.kind == OpKind::kDwrite;
  return own;
}

Violations CheckMigrationStep(const Op& op, const model::State& before,
                              const model::State& after) {
  const StepOwnPages own = OwnPagesOf(op, before);
  Violations out;
  auto add = [&out](const char* name, const Violations& lines) {
    for (const std::string& line : lines) out.push_back(std::string(name) + ": " + line);
  };
  add("InvMigrationPerPageAtomic", InvMigrationPerPageAtomic(before, after, own));
  add("InvMigrationPreservesBytes", InvMigrationPreservesBytes(before, after, own));
  add("InvMigrationSkipsPinned", InvMigrationSkipsPinned(before, after));
  add("InvMigrationOnlyPrivateAnonToDevice", InvMigrationOnlyPrivateAnonToDevice(before, after));
  return out;
}

}  // namespace hmm::props
