// File: model/anon_vma.cc
//
// linux-6.1 only (model/anon_vma.h): anon_vmas, page rmaps and VMA merging,
// as far as the oracle observes them. Ids of anon_vmas are handed out 1, 2,
// ... (State::next_anon_vma) and never reused; the anon_vma reuse of
// anon_vma_clone() (a child taking an ancestor's anon_vma that no VMA uses
// any more) is not modeled.

#include "model/anon_vma.h"

#include <algorithm>
#include <iterator>
#include <set>
#include <tuple>

#include "model/address_space.h"
#include "model/migrate_walk.h"

namespace hmm::model {
namespace {

std::pair<bool, uint64_t> RmapKey(const Pte& target) {
  return {target.device, target.device ? target.device_pfn : target.page};
}

// The VMA's pgoff: the object's page at start (shared), else its vm_pgoff.
uint64_t PgoffOf(const Vma& v) { return v.shared ? v.pgoff : v.vm_pgoff; }

uint64_t Pages(const Vma& v) { return v.end.value - v.start.value; }

// Whether b follows a with the same flags apart from the access bits, the
// same file, and a contiguous pgoff.
// Mirrors: mm/mmap.c anon_vma_compatible().
bool AnonVmaCompatible(const Vma& a, const Vma& b) {
  return a.end == b.start && a.shared == b.shared && a.account == b.account &&
         (!a.shared || a.object == b.object) && PgoffOf(b) == PgoffOf(a) + Pages(a);
}

// Whether a VMA with anon_vma a1 may merge with `existing`, whose anon_vma
// is a2: the same, or one has none and `existing`'s chain is its own only
// (no check of a chain when there is no `existing`, the three-way case).
// Mirrors: mm/mmap.c is_mergeable_anon_vma().
bool AnonMergeable(uint64_t a1, uint64_t a2, const Vma* existing) {
  if ((a1 == 0 || a2 == 0) && (existing == nullptr || existing->anon_chain.size() == 1)) {
    return true;
  }
  return a1 == a2;
}

// Whether `a` followed by `b` have the same flags (prot too), the same file
// and contiguous pgoffs, and `anon` (the anon_vma of the one that changed)
// may merge with `existing`, the other.
// Mirrors: mm/mmap.c can_vma_merge_after(), can_vma_merge_before(), is_mergeable_vma().
bool CanMerge(const Vma& a, const Vma& b, uint64_t anon, const Vma& existing) {
  return AnonVmaCompatible(a, b) && a.prot == b.prot &&
         AnonMergeable(anon, existing.anon_vma, &existing);
}

// `into` takes `from`'s pages, anon_vma and links; `from` goes.
void Absorb(State& s, Process& p, Vma& into, std::map<Vpn, Vma>::iterator from) {
  into.start = std::min(into.start, from->second.start);
  into.end = std::max(into.end, from->second.end);
  if (into.anon_vma == 0) into.anon_vma = from->second.anon_vma;
  into.anon_chain.insert(from->second.anon_chain.begin(), from->second.anon_chain.end());
  p.vmas.erase(from);
}

}  // namespace

void AnonVmaPrepare(State& s, Process& p, Vpn vpn) {
  auto it = p.vmas.upper_bound(vpn);
  // Is it not a linux-6.1 private VMA, or has it an anon_vma already?
  if (!Linux61(s) || it == p.vmas.begin() || std::prev(it)->second.end <= vpn) return;
  Vma& vma = std::prev(it)->second;
  if (vma.shared || vma.anon_vma != 0) return;
  // A neighbour's, next first, if compatible and not shared with a fork.
  uint64_t id = 0;
  if (it != p.vmas.end() && AnonVmaCompatible(vma, it->second) &&
      it->second.anon_chain.size() == 1) {
    id = it->second.anon_vma;
  }
  auto prev = std::prev(it);
  if (id == 0 && prev != p.vmas.begin()) {
    const Vma& before = std::prev(prev)->second;
    if (AnonVmaCompatible(before, vma) && before.anon_chain.size() == 1) id = before.anon_vma;
  }
  if (id == 0) id = s.next_anon_vma++;
  vma.anon_vma = id;
  vma.anon_chain = {id};
  RmapRelink(s, &vma);
}

void SetAnonRmap(State& s, const Pte& target, const Process& p, Vpn vpn) {
  const Vma* vma = FindVma(p, vpn);
  if (!Linux61(s) || vma == nullptr || vma->shared) return;
  s.anon_rmap[RmapKey(target)] =
      AnonRmap{vma->anon_vma, vma->vm_pgoff + (vpn.value - vma->start.value), true};
}

void ShareAnonRmap(State& s, const Pte& target) {
  auto it = s.anon_rmap.find(RmapKey(target));
  if (it != s.anon_rmap.end()) it->second.exclusive = false;
}

bool AnonExclusive(const State& s, const Pte& target) {
  auto it = s.anon_rmap.find(RmapKey(target));
  return it != s.anon_rmap.end() && it->second.exclusive;
}

void CopyAnonRmap(State& s, const Pte& from, const Pte& to) {
  auto it = s.anon_rmap.find(RmapKey(from));
  if (it != s.anon_rmap.end()) s.anon_rmap[RmapKey(to)] = it->second;
}

void DropAnonRmap(State& s, const Pte& target) { s.anon_rmap.erase(RmapKey(target)); }

void AnonVmaFork(State& s, const Vma& parent, Vma* child) {
  child->anon_vma = 0;
  child->anon_chain.clear();
  // A shmem VMA's child goes right after its parent in the object's tree
  // (vma_interval_tree_insert_after(); an rmap walk orders equal places by pid).
  if (!Linux61(s) || parent.anon_vma == 0) return;
  child->anon_vma = s.next_anon_vma++;
  child->anon_chain = parent.anon_chain;
  child->anon_chain.insert(child->anon_vma);
  RmapRelink(s, child);
}

void RmapRelink(State& s, Vma* vma) {
  if (Linux61(s)) vma->rmap_seq = s.next_rmap_seq++;
}

namespace {

// One VMA an rmap walk visits, with its place in the walk.
struct Visit {
  uint64_t pgoff;  // the VMA's pgoff: the interval tree's key
  uint64_t seq;    // then insertion order
  Pid pid;
  Vpn vpn;

  bool operator<(const Visit& o) const {
    return std::tie(pgoff, seq, pid) < std::tie(o.pgoff, o.seq, o.pid);
  }
};

// Where a shmem page sits: its object and offset; false for another page.
bool ObjectPage(const State& s, const Pte& target, ObjectId* object, uint64_t* offset) {
  for (const auto& [id, obj] : s.objects) {
    for (const auto& [pgoff, page] : obj.pages) {
      if (target.device || page != target.page) continue;
      *object = id;
      *offset = pgoff;
      return true;
    }
  }
  return false;
}

// Every VMA that covers `offset` of the object (shmem) or `index` of the
// anon_vma (an anonymous page), in the walk's order.
// Mirrors: mm/rmap.c rmap_walk_file(), rmap_walk_anon().
std::vector<Visit> RmapVisits(const State& s, bool shared, uint64_t id, uint64_t offset) {
  std::vector<Visit> out;
  for (const auto& [pid, proc] : s.procs) {
    for (const auto& [key, vma] : proc.vmas) {
      if (vma.shared != shared) continue;
      if (shared ? vma.object != id : vma.anon_chain.count(id) == 0) continue;
      const uint64_t pgoff = PgoffOf(vma);
      if (offset < pgoff || offset >= pgoff + Pages(vma)) continue;
      out.push_back(Visit{pgoff, vma.rmap_seq, pid, VpnAdd(vma.start, offset - pgoff)});
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<std::pair<Pid, Vpn>> TryToMigrateWalk(const State& s, const Pte& target, Pid pid,
                                                  Vpn collected) {
  std::set<std::pair<Pid, Vpn>> mapped;
  for (const auto& at : MappingsOf(s, target)) {
    if (at != std::make_pair(pid, collected)) mapped.insert(at);
  }
  ObjectId object = 0;
  uint64_t offset = 0;
  auto rmap = s.anon_rmap.find(RmapKey(target));
  std::vector<Visit> visits;
  if (Linux61(s) && ObjectPage(s, target, &object, &offset)) {
    visits = RmapVisits(s, /*shared=*/true, object, offset);
  } else if (Linux61(s) && rmap != s.anon_rmap.end()) {
    visits = RmapVisits(s, /*shared=*/false, rmap->second.anon_vma, rmap->second.index);
  } else {
    return std::vector<std::pair<Pid, Vpn>>(mapped.begin(), mapped.end());
  }
  std::vector<std::pair<Pid, Vpn>> out;
  // Loop invariant: `mapped` holds the mappings the walk has not reached.
  for (const Visit& v : visits) {
    if (mapped.empty()) break;
    out.emplace_back(v.pid, v.vpn);
    mapped.erase(std::make_pair(v.pid, v.vpn));
  }
  return out;
}

void VmaMerge(State& s, Process& p, Vpn start, Vpn end, MergeKind kind) {
  auto mid = p.vmas.find(start);
  if (!Linux61(s) || mid == p.vmas.end() || mid->second.end != end) return;
  auto prev = mid == p.vmas.begin() ? p.vmas.end() : std::prev(mid);
  if (prev != p.vmas.end() && prev->second.end != start) prev = p.vmas.end();
  auto next = p.vmas.find(end);
  const Vma& m = mid->second;
  const uint64_t anon = kind == MergeKind::kNewMapping ? 0 : m.anon_vma;
  bool merge_next = next != p.vmas.end() && CanMerge(m, next->second, anon, next->second);
  // A new mapping checks prev with next's anon_vma when it merges with next.
  const uint64_t prev_anon = kind == MergeKind::kNewMapping && merge_next ? next->second.anon_vma : anon;
  bool merge_prev = kind != MergeKind::kExpanded && prev != p.vmas.end() &&
                    CanMerge(prev->second, m, prev_anon, prev->second);
  // vma_merge(): all three only if prev's and next's anon_vmas may merge.
  const bool three = kind == MergeKind::kExpanded || (kind == MergeKind::kChanged && merge_prev);
  if (three && merge_next) {
    const uint64_t left = kind == MergeKind::kExpanded ? m.anon_vma : prev->second.anon_vma;
    merge_next = AnonMergeable(left, next->second.anon_vma, nullptr);
  }
  // The survivor (the leftmost merged) takes the others, and is relinked.
  if (!merge_prev && !merge_next) return;
  Vma survivor = merge_prev ? prev->second : m;
  if (merge_next) Absorb(s, p, survivor, next);
  if (merge_prev) Absorb(s, p, survivor, mid);
  RmapRelink(s, &survivor);
  p.vmas.erase(survivor.start);
  p.vmas.emplace(survivor.start, survivor);
}

}  // namespace hmm::model
