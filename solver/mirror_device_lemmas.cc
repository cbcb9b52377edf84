// File: solver/mirror_device_lemmas.cc
//
// The device operations of the mirroring lemmas (mirror_state.h): the seed's
// kernel API (HmmVmaGetPfns, HmmVmaFault) and the dummy device's commit and
// fault (docs/mirror.md). A MirrorSteps flag breaks one of them.

#include <stdexcept>
#include <string>
#include <vector>

#include "solver/mirror_state.h"

namespace hmm::solver::mirror {
namespace {

// The HMM_PFN_* flags the walk reports for CPU entry `e` in VMA `vma`: none ->
// EMPTY; zero page -> VALID|READ?; page -> VALID|READ?|WRITE?; device entry ->
// VALID|DEVICE_UNADDRESSABLE|READ?|WRITE?.
// Mirrors: mm/hmm.c hmm_vma_walk_pmd() (4.14).
z3::expr EntryFlags(const SymEntry& e, const SymVma& vma, bool write_from_vma) {
  z3::context& c = e.kind.ctx();
  const z3::expr read = z3::ite(vma.read, Flag(c, kHmmPfnRead), Flag(c, 0));
  const z3::expr write =
      z3::ite(write_from_vma ? vma.write : e.write, Flag(c, kHmmPfnWrite), Flag(c, 0));
  const z3::expr valid = Flag(c, kHmmPfnValid) | read;
  return z3::ite(e.kind == TargetVal(c, Target::kNone), Flag(c, kHmmPfnEmpty),
                 z3::ite(e.kind == TargetVal(c, Target::kZero), valid,
                         z3::ite(e.kind == TargetVal(c, Target::kPage), valid | write,
                                 valid | Flag(c, kHmmPfnDeviceUnaddressable) | write)));
}

// A get_pfns or hmm_vma_fault call: a new range id of `mirror` over [start, end).
struct RangeCall {
  std::string op;
  z3::expr mirror, range, start, end;

  // [start, up_to) of the mirrored process.
  PageRange Pages(const MirrorState& s, const z3::expr& up_to) const {
    return {op, z3::select(s.mirror_pid, mirror), start, up_to};
  }
  std::vector<Named> Hypotheses(const MirrorState& s) const {
    return {{op + ".range is a new id (not open)", !z3::select(s.ranges.open, range)},
            {op + ".start < " + op + ".end", z3::ult(start, end)}};
  }
  std::string Render(const z3::model& m) const {
    return RenderNum(op + ".mirror", mirror, m) + RenderNum(op + ".range", range, m) +
           RenderNum(op + ".start", start, m) + RenderNum(op + ".end", end, m);
  }
};

RangeCall MakeRangeCall(z3::context& c, const std::string& op) {
  return {op, c.bv_const((op + ".mirror").c_str(), kIdBits),
          c.bv_const((op + ".range").c_str(), kIdBits),
          c.bv_const((op + ".start").c_str(), kVpnBits),
          c.bv_const((op + ".end").c_str(), kVpnBits)};
}

// The range registered: open, valid, ghost 0 (before any walk or fault).
SymRanges Register(const World& w, const SymRanges& rs, const RangeCall& call) {
  z3::context& c = call.range.ctx();
  const z3::expr r = call.range;
  SymRanges out = rs;
  out.open = Updated(rs.open, w.r, r, c.bool_val(true));
  out.valid = Updated(rs.valid, w.r, r, c.bool_val(true));
  out.mirror = Updated(rs.mirror, w.r, r, call.mirror);
  out.start = Updated(rs.start, w.r, r, call.start);
  out.end = Updated(rs.end, w.r, r, call.end);
  out.ghost = z3::lambda(w.i, w.v, z3::ite(w.i == r, c.int_val(0), Select(rs.ghost, w.i, w.v)));
  return out;
}

// Every entry of range `r` filled by the walk from the CPU tables of `s`.
SymRanges Fill(const World& w, const MirrorState& s, const z3::expr& r, bool write_from_vma) {
  const z3::expr mine = w.i == r;
  const SymEntry cpu = At(s.cpu, RangePid(s, r), w.v);
  const z3::expr flags = EntryFlags(cpu, VmaAt(s.vma, RangePid(s, r), w.v), write_from_vma);
  const auto fill = [&](const z3::expr& value, const z3::expr& table) {
    return z3::lambda(w.i, w.v, z3::ite(mine, value, Select(table, w.i, w.v)));
  };
  SymRanges out = s.ranges;
  out.flags = fill(flags, s.ranges.flags);
  out.kind = fill(cpu.kind, s.ranges.kind);
  out.id = fill(cpu.id, s.ranges.id);
  return out;
}

// Registers the range valid and fills it without faulting; changes no table.
// Mirrors: mm/hmm.c hmm_vma_get_pfns().
Step GetPfnsStep(const World& w, const MirrorSteps& steps) {
  const RangeCall call = MakeRangeCall(w.i.ctx(), "get_pfns");
  MirrorState after = w.before;
  after.ranges = Register(w, w.before.ranges, call);
  after.ranges = Fill(w, after, call.range, steps.get_pfns_write_from_vma);
  return {call.Hypotheses(w.before), after, [call](const z3::model& m) { return call.Render(m); }};
}

// Registers the range valid first, then faults [start, fail_at) as the CPU
// fault path does (fail_at == end: every page succeeded), notifying as it
// goes (which may invalidate this very range), then fills the entries. A
// failed fault has unregistered the range.
// Mirrors: mm/hmm.c hmm_vma_fault() -> handle_mm_fault().
Step HmmFaultStep(const World& w, const MirrorSteps& steps) {
  z3::context& c = w.i.ctx();
  const RangeCall call = MakeRangeCall(c, "hmm_fault");
  const z3::expr write = c.bool_const("hmm_fault.write");
  const z3::expr fail_at = c.bv_const("hmm_fault.fail_at", kVpnBits);
  MirrorState registered = w.before;
  registered.ranges = Register(w, w.before.ranges, call);
  const PageRange faulted = call.Pages(w.before, fail_at);
  Step fault = AfterFault(w, registered, faulted.AsNotified(), write, call.op, steps);
  MirrorState& after = fault.after;
  after.ranges = Fill(w, after, call.range, /*write_from_vma=*/false);
  after.ranges.open = Updated(after.ranges.open, w.r, call.range, fail_at == call.end);
  std::vector<Named> hypotheses = call.Hypotheses(w.before);
  hypotheses.push_back({"hmm_fault.start <= hmm_fault.fail_at <= hmm_fault.end",
                        z3::ule(call.start, fail_at) && z3::ule(fail_at, call.end)});
  return Described(fault, hypotheses, [call, write, fail_at](const z3::model& m) {
    return call.Render(m) + RenderBool("hmm_fault.write", write, m) +
           RenderNum("hmm_fault.fail_at", fail_at, m);
  });
}

// Under the mirror's update lock: range_done (returns valid, unregisters the
// range); if it returned true, every VALID|READ entry goes into the pt, write
// iff WRITE, except another device's pages (`commit.skips`).
// Mirrors: mm/hmm.c hmm_vma_range_done(); the driver protocol of 4.14
// Documentation/vm/hmm.txt (commit under the lock the invalidation takes).
Step DmirrorCommitStep(const World& w, const MirrorSteps& steps) {
  z3::context& c = w.i.ctx();
  const MirrorState& s = w.before;
  const z3::expr r = c.bv_const("commit.range", kIdBits);
  const z3::expr skips = PageArray(c, "commit.skips", c.bool_sort());
  const z3::expr flags = Select(s.ranges.flags, r, w.v);
  const z3::expr done =
      steps.commit_ignores_valid ? c.bool_val(true) : z3::select(s.ranges.valid, r);
  const z3::expr install = w.i == z3::select(s.ranges.mirror, r) && done && InRange(s, r, w.v) &&
                           HasFlag(flags, kHmmPfnValid) && HasFlag(flags, kHmmPfnRead) &&
                           !Select(skips, r, w.v);
  MirrorState after = s;
  after.pt = LambdaEntry(w.i, w.v, IteEntry(install, RangeEntryAt(s, r, w.v), At(s.pt, w.i, w.v)));
  after.ranges.open = Updated(s.ranges.open, w.r, r, c.bool_val(steps.commit_rearms_range));
  if (steps.commit_rearms_range)
    after.ranges.valid = Updated(s.ranges.valid, w.r, r, c.bool_val(true));
  return {
      {{"commit.range is open", z3::select(s.ranges.open, r)}}, after, [r, s](const z3::model& m) {
        return RenderNum("commit.range", r, m) +
               RenderBool("commit.range_done", z3::select(s.ranges.valid, r), m);
      }};
}

// Faults [start, fault_end) (fault_end < end: a chunk failed), then stores the
// CPU entries of [start, store_end), the chunks that succeeded, into the pt.
// Mirrors: lib/test_hmm.c dmirror_fault() (hmm_range_fault(), then
// dmirror_do_fault() under the lock, retried on mmu_interval_read_retry()).
Step DmirrorFaultStep(const World& w, const MirrorSteps& steps) {
  z3::context& c = w.i.ctx();
  const z3::expr mirror = c.bv_const("dmirror_fault.mirror", kIdBits);
  const PageRange call = {"dmirror_fault", z3::select(w.before.mirror_pid, mirror),
                          c.bv_const("dmirror_fault.start", kVpnBits),
                          c.bv_const("dmirror_fault.end", kVpnBits)};
  const z3::expr write = c.bool_const("dmirror_fault.write");
  const z3::expr fault_end = c.bv_const("dmirror_fault.fault_end", kVpnBits);
  const z3::expr store_end = c.bv_const("dmirror_fault.store_end", kVpnBits);
  const PageRange faulted{call.op, call.pid, call.start, fault_end};
  const PageRange stored{call.op, call.pid, call.start, store_end};
  Step fault = AfterFault(w, w.before, faulted.AsNotified(), write, call.op, steps);
  MirrorState& after = fault.after;
  const SymEntry source = steps.dmirror_fault_stores_stale ? w.before.cpu : after.cpu;
  const z3::expr in = w.i == mirror && stored.Contains(call.pid, w.v);
  after.pt = LambdaEntry(w.i, w.v, IteEntry(in, At(source, call.pid, w.v), At(after.pt, w.i, w.v)));
  const std::vector<Named> hypotheses = {
      call.NonEmpty(),
      {"dmirror_fault.start <= store_end <= fault_end <= end", z3::ule(call.start, store_end) &&
                                                                   z3::ule(store_end, fault_end) &&
                                                                   z3::ule(fault_end, call.end)}};
  return Described(fault, hypotheses,
                   [mirror, call, write, fault_end, store_end](const z3::model& m) {
                     return RenderNum("dmirror_fault.mirror", mirror, m) + call.Render(m) +
                            RenderBool("dmirror_fault.write", write, m) +
                            RenderNum("dmirror_fault.fault_end", fault_end, m) +
                            RenderNum("dmirror_fault.store_end", store_end, m);
                   });
}

}  // namespace

Step DeviceStep(MirrorOp op, const World& w, const MirrorSteps& steps) {
  switch (op) {
    case MirrorOp::kGetPfns: return GetPfnsStep(w, steps);
    case MirrorOp::kHmmFault: return HmmFaultStep(w, steps);
    case MirrorOp::kDmirrorCommit: return DmirrorCommitStep(w, steps);
    case MirrorOp::kDmirrorFault: return DmirrorFaultStep(w, steps);
    default: break;
  }
  throw std::invalid_argument(std::string("not a device operation: ") + MirrorOpName(op));
}

}  // namespace hmm::solver::mirror
