// File: model/mirror_invariants.cc
//
// The mirroring invariants of model/invariants.h (docs/mirror.md; research
// invariants 11-20): mirrors belong to processes and map nothing the CPU does
// not, and a valid range still says what the CPU maps.

#include <algorithm>
#include <string>

#include "model/address_space.h"
#include "model/invariant_walk.h"
#include "model/invariants.h"
#include "model/mirror_walk.h"

namespace hmm::model {
namespace {

std::string MirrorAt(uint64_t id, Vpn vpn) {
  return "mirror " + std::to_string(id) + " vpn " + Hex(vpn.value);
}

std::string RangeName(uint64_t id, const Range& range) {
  return "range " + std::to_string(id) + " [" + Hex(range.start.value) + ", " +
         Hex(range.end.value) + ")";
}

// The CPU entry of pid at vpn; null when the process is gone or has none.
const Pte* CpuEntry(const State& s, Pid pid, Vpn vpn) {
  auto proc = s.procs.find(pid);
  if (proc == s.procs.end()) return nullptr;
  auto pte = proc->second.ptes.find(vpn);
  return pte == proc->second.ptes.end() ? nullptr : &pte->second;
}

// The violation, if any, of "device entry `mapping` at vpn is a subset of the
// CPU's": the same target, writable only if the CPU entry is. Empty when it holds.
std::string SubsetViolation(const State& s, Pid pid, Vpn vpn, const Pte& mapping) {
  const Pte* cpu = CpuEntry(s, pid, vpn);
  if (cpu == nullptr) return "maps " + Describe(mapping) + ", the CPU maps nothing";
  if (!SameTarget(*cpu, mapping)) {
    return "maps " + Describe(mapping) + ", the CPU maps " + Describe(*cpu);
  }
  if (mapping.write && !cpu->write) return Describe(mapping) + ": write=1, CPU entry write=0";
  return "";
}

// Whether b continues a: the next piece of what the kernel holds as one VMA.
bool ContinuesVma(const Vma& a, const Vma& b) {
  return b.start == a.end && b.prot == a.prot && b.shared == a.shared && b.object == a.object &&
         (!a.shared || b.pgoff == a.pgoff + (a.end.value - a.start.value));
}

// Whether [start, end) lies inside one VMA. hmmref never merges VMAs and
// mprotect splits them at its edges even where the prot does not change
// (docs/model.md), where the kernel's mprotect_fixup() leaves the VMA whole
// and notifies nothing; so one kernel VMA may be several adjacent pieces here,
// of the same prot and kind, a shared piece continuing its object.
bool InsideOneVma(const Process& p, Vpn start, Vpn end) {
  const Vma* vma = FindVma(p, start);
  if (vma == nullptr || end <= start) return false;
  // Loop invariant: [start, vma->end) lies in pieces of one VMA.
  while (vma->end < end) {
    const Vma* next = FindVma(p, vma->end);
    if (next == nullptr || !ContinuesVma(*vma, *next)) return false;
    vma = next;
  }
  return true;
}

}  // namespace

Violations InvMirrorOfLiveProcess(const State& s) {
  Violations v;
  for (const auto& [id, mirror] : s.mirrors) {
    const std::string at = "mirror " + std::to_string(id) + " pid " +
                           std::to_string(mirror.pid.value) + ": ";
    if (mirror.pid.value == 0 || mirror.pid.value >= s.next_pid) {
      v.push_back(at + "never handed out, next_pid " + std::to_string(s.next_pid));
    } else if (!IsLive(s, mirror.pid) && !mirror.pt.empty()) {
      v.push_back(at + "exited, pt holds " + std::to_string(mirror.pt.size()) + " entries");
    }
  }
  return v;
}

Violations InvMirrorSubsetOfCpu(const State& s) {
  Violations v;
  for (const auto& [id, mirror] : s.mirrors) {
    for (const auto& [vpn, mapping] : mirror.pt) {
      const std::string bad = SubsetViolation(s, mirror.pid, vpn, mapping);
      if (!bad.empty()) v.push_back(MirrorAt(id, vpn) + ": " + bad);
    }
  }
  return v;
}

Violations InvValidRangeMatchesCpu(const State& s) {
  Violations v;
  for (const auto& [id, range] : s.ranges) {
    auto mirror = s.mirrors.find(range.mirror);
    if (!range.valid || mirror == s.mirrors.end()) continue;  // InvRangeOfLiveMirror
    const uint64_t n = std::min<uint64_t>(range.pfns.size(), range.end.value - range.start.value);
    for (uint64_t i = 0; i < n; ++i) {
      if ((range.pfns[i].flags & kHmmPfnValid) == 0) continue;
      const Vpn vpn = VpnAdd(range.start, i);
      const std::string bad =
          SubsetViolation(s, mirror->second.pid, vpn, DeviceMapping(range.pfns[i]));
      if (!bad.empty()) v.push_back(RangeName(id, range) + " vpn " + Hex(vpn.value) + ": " + bad);
    }
  }
  return v;
}

Violations InvRangeWithinOneVma(const State& s) {
  Violations v;
  for (const auto& [id, range] : s.ranges) {
    auto mirror = s.mirrors.find(range.mirror);
    if (!range.valid || mirror == s.mirrors.end()) continue;  // InvRangeOfLiveMirror
    const Pid pid = mirror->second.pid;
    const std::string at = RangeName(id, range) + " pid " + std::to_string(pid.value) + ": ";
    if (!IsLive(s, pid)) {
      v.push_back(at + "valid, the process exited");
    } else if (!InsideOneVma(s.procs.at(pid), range.start, range.end)) {
      v.push_back(at + "valid, not inside one VMA");
    }
  }
  return v;
}

Violations InvRangeOfLiveMirror(const State& s) {
  Violations v;
  for (const auto& [id, range] : s.ranges) {
    if (s.mirrors.count(range.mirror) == 0) {
      v.push_back(RangeName(id, range) + ": mirror " + std::to_string(range.mirror) +
                  " is not registered");
    }
  }
  return v;
}

}  // namespace hmm::model
