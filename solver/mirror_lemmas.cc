// File: solver/mirror_lemmas.cc
//
// The mirroring lemmas (mirror_lemmas.h): the initial state, one lemma per
// (operation, invariant) over the steps of mirror_table_lemmas.cc (CPU) and
// mirror_device_lemmas.cc (device), the snapshot protocol, and the registry
// with each lemma's negative control.

#include "solver/mirror_lemmas.h"

#include <functional>
#include <string>
#include <vector>

#include "solver/lemma_text.h"
#include "solver/mirror_state.h"

namespace hmm::solver {
namespace {

using mirror::MirrorState;
using mirror::Step;
using mirror::World;
using text::Line;
using text::U64;

// A negative control's break: a MirrorSteps flag (nullptr: no lemma for this
// invariant) and what it means.
using MirrorBreak = Break<MirrorSteps>;

struct OpInfo {
  MirrorOp op;
  const char* name;
  bool device;              // DeviceStep (the kernel API, the dummy device), else CpuStep
  const char* does;         // the step, from docs/mirror.md
  const char* source;       // the kernel function it mirrors
  MirrorBreak subset;       // the control of Lemma<Op>PreservesInvMirrorSubsetOfCpu
  MirrorBreak valid_range;  // ... of Lemma<Op>PreservesInvValidRangeMatchesCpu; {}: as subset
};

constexpr char kCowNotNotified[] =
    "a fault path whose COW break (or zero-page copy) installs the new page without notifying";

constexpr OpInfo kOps[] = {
    {MirrorOp::kMunmap,
     "Munmap",
     /*device=*/false,
     "munmap: the range's entries and VMAs go; its pages are notified",
     "mm/mmap.c unmap_region()",
     {&MirrorSteps::munmap_misses_last_page,
      "a munmap that notifies [addr, end - 1): the last page is missed"},
     MirrorBreak{}},
    {MirrorOp::kMprotect,
     "Mprotect",
     /*device=*/false,
     "mprotect: entries lose write without PROT_WRITE (a shared page gains it with it); the "
     "pages whose VMA prot changes are notified, the others not",
     "mm/mprotect.c mprotect_fixup(), change_pmd_range()",
     {&MirrorSteps::mprotect_skips_downgrade,
      "an mprotect that notifies only when the prot gains a bit, not on a downgrade"},
     MirrorBreak{}},
    {MirrorOp::kMadviseDontneed,
     "MadviseDontneed",
     /*device=*/false,
     "madvise(DONTNEED): the range's entries become none; its pages are notified",
     "mm/madvise.c madvise_dontneed_single_vma()",
     {&MirrorSteps::madvise_skips_notify, "a DONTNEED that zaps without notifying"},
     MirrorBreak{}},
    {MirrorOp::kMremapMove,
     "MremapMove",
     /*device=*/false,
     "mremap moving entries and VMAs to a disjoint range: the old range is notified, the new "
     "one too under MREMAP_FIXED (else it was unmapped)",
     "mm/mremap.c move_page_tables(), mremap_to()",
     {&MirrorSteps::mremap_skips_old_range, "a move that does not notify the old range"},
     MirrorBreak{}},
    {MirrorOp::kFork,
     "Fork",
     /*device=*/false,
     "fork: the parent's private entries lose write (a pinned page keeps it) and its private "
     "pages are notified; no mirror mirrors the new child",
     "mm/memory.c copy_page_range()",
     {&MirrorSteps::fork_skips_notify,
      "a fork that write-protects the parent's private entries without notifying"},
     MirrorBreak{}},
    {MirrorOp::kCpuReadFault,
     "CpuReadFault",
     /*device=*/false,
     "a CPU read fault: an empty entry gets the zero page or the object's page; nothing is "
     "notified",
     "mm/memory.c do_anonymous_page(), do_read_fault()",
     {&MirrorSteps::read_fault_refills,
      "a read fault without the pte_none() re-check: it refills an entry already mapped"},
     MirrorBreak{}},
    {MirrorOp::kCpuWriteFault,
     "CpuWriteFault",
     /*device=*/false,
     "a CPU write fault: the zero page or a read-only private page copied (that page "
     "notified); a reusable or shared page made writable in place, or an empty entry "
     "filled (not notified)",
     "mm/memory.c wp_page_copy(), wp_page_reuse()",
     {&MirrorSteps::fault_skips_notify, kCowNotNotified},
     MirrorBreak{}},
    {MirrorOp::kDeviceEntryInstall,
     "DeviceEntryInstall",
     /*device=*/false,
     "DeviceEntryInstall: an empty slot of a private VMA gets a device entry; nothing is "
     "notified",
     "mm/migrate.c migrate_vma_insert_page()",
     {&MirrorSteps::install_over_present, "an install into an occupied slot (no kBusy check)"},
     MirrorBreak{}},
    {MirrorOp::kExit,
     "Exit",
     /*device=*/false,
     "exit: every entry and VMA of the process goes; every page is notified",
     "mm/mmap.c exit_mmap() -> mmu_notifier_release()",
     {&MirrorSteps::exit_skips_notify, "an exit that tears down the tables without notifying"},
     MirrorBreak{}},
    {MirrorOp::kGetPfns,
     "GetPfns",
     /*device=*/true,
     "HmmVmaGetPfns: a new range registered valid, its entries filled by the entry rules "
     "without faulting",
     "mm/hmm.c hmm_vma_get_pfns(), hmm_vma_walk_pmd()",
     MirrorBreak{},
     {&MirrorSteps::get_pfns_write_from_vma,
      "a walk that takes HMM_PFN_WRITE from the VMA's PROT_WRITE, not the entry's write bit"}},
    {MirrorOp::kHmmFault,
     "HmmFault",
     /*device=*/true,
     "HmmVmaFault: a new range registered valid, [start, fail_at) faulted as the CPU fault "
     "path does (notifying, which may invalidate the range itself), then its entries "
     "filled; a failure unregisters it",
     "mm/hmm.c hmm_vma_fault()",
     {&MirrorSteps::fault_skips_notify, kCowNotNotified},
     MirrorBreak{}},
    {MirrorOp::kDmirrorCommit,
     "DmirrorCommit",
     /*device=*/true,
     "DmirrorCommit: range_done (returns valid, unregisters the range), and if it returned "
     "true every VALID|READ entry installed into the pt, write iff WRITE",
     "mm/hmm.c hmm_vma_range_done()",
     {&MirrorSteps::commit_ignores_valid,
      "a commit that installs even when range_done returned false"},
     {&MirrorSteps::commit_rearms_range,
      "a range_done that re-arms the range for the retry (kept open, valid reset to true)"}},
    {MirrorOp::kDmirrorFault,
     "DmirrorFault",
     /*device=*/true,
     "the dummy device's fault (DmirrorRead/DmirrorWrite): pages faulted as the CPU fault "
     "path does, then the CPU entries of the chunks that succeeded stored into the pt",
     "lib/test_hmm.c dmirror_fault()",
     {&MirrorSteps::dmirror_fault_stores_stale,
      "a driver fault that stores the entries it read before faulting"},
     {&MirrorSteps::fault_skips_notify, kCowNotNotified}},
};

Step StepOf(const OpInfo& info, const World& w, const MirrorSteps& steps) {
  return info.device ? mirror::DeviceStep(info.op, w, steps) : mirror::CpuStep(info.op, w, steps);
}

const OpInfo& Info(MirrorOp op) {
  for (const OpInfo& info : kOps) {
    if (info.op == op) return info;
  }
  return kOps[0];
}

std::string RenderRangeEntry(const std::string& name, const MirrorState& s, const z3::expr& r,
                             const z3::expr& vpn, const z3::model& m) {
  return Line(name + ".flags", mirror::FlagNames(U64(m, mirror::Select(s.ranges.flags, r, vpn)))) +
         mirror::RenderEntry(name, mirror::RangeEntryAt(s, r, vpn), m);
}

std::string RenderRange(const std::string& name, const MirrorState& s, const z3::expr& r,
                        const z3::model& m) {
  return mirror::RenderBool(name + ".open", z3::select(s.ranges.open, r), m) +
         mirror::RenderBool(name + ".valid", z3::select(s.ranges.valid, r), m) +
         mirror::RenderNum(name + ".pid", mirror::RangePid(s, r), m) +
         mirror::RenderNum(name + ".start", z3::select(s.ranges.start, r), m) +
         mirror::RenderNum(name + ".end", z3::select(s.ranges.end, r), m);
}

// The ghost of range page `entry`, and the CPU entry there.
std::string RenderGhost(const std::string& state, const MirrorState& s, const World& w,
                        const z3::model& m) {
  const z3::expr ghost = mirror::Select(s.ranges.ghost, w.entry_id, w.entry_vpn);
  const z3::expr pid = mirror::RangePid(s, w.entry_id);
  return Line(state + ".entry.ghost", m.eval(ghost.simplify(), true).to_string()) +
         mirror::RenderEntry(state + ".cpu", mirror::At(s.cpu, pid, w.entry_vpn), m);
}

// The pt entry `entry` of a mirror, and the CPU entry it must be a subset of.
std::string RenderSubset(const World& w, const MirrorState& after, const z3::model& m) {
  const z3::expr pid = z3::select(w.before.mirror_pid, w.entry_id), vpn = w.entry_vpn;
  return mirror::RenderNum("entry.mirror", w.entry_id, m) + mirror::RenderNum("entry.vpn", vpn, m) +
         mirror::RenderNum("mirror.pid", pid, m) +
         mirror::RenderEntry("before.pt", mirror::At(w.before.pt, w.entry_id, vpn), m) +
         mirror::RenderEntry("before.cpu", mirror::At(w.before.cpu, pid, vpn), m) +
         mirror::RenderEntry("after.pt", mirror::At(after.pt, w.entry_id, vpn), m) +
         mirror::RenderEntry("after.cpu", mirror::At(after.cpu, pid, vpn), m);
}

// The range entry `entry`, its range, and the CPU entry it must name.
std::string RenderValidRange(const World& w, const MirrorState& after, const z3::model& m) {
  const z3::expr r = w.entry_id, vpn = w.entry_vpn;
  const z3::expr pid = mirror::RangePid(after, r);
  return mirror::RenderNum("entry.range", r, m) + mirror::RenderNum("entry.vpn", vpn, m) +
         RenderRange("before.range", w.before, r, m) + RenderRange("after.range", after, r, m) +
         RenderRangeEntry("before.entry", w.before, r, vpn, m) +
         RenderRangeEntry("after.entry", after, r, vpn, m) +
         mirror::RenderEntry("before.cpu", mirror::At(w.before.cpu, pid, vpn), m) +
         mirror::RenderEntry("after.cpu", mirror::At(after.cpu, pid, vpn), m);
}

Named Claim(MirrorInv inv, const MirrorState& s, const World& w, const std::string& state) {
  const std::string name = std::string(MirrorInvName(inv)) + "(" + state + ") at entry";
  const z3::expr at = inv == MirrorInv::kSubset ? mirror::SubsetAt(s, w.entry_id, w.entry_vpn)
                                                : mirror::ValidRangeAt(s, w.entry_id, w.entry_vpn);
  return {name, at.simplify()};
}

std::string RenderClaim(MirrorInv inv, const World& w, const MirrorState& s, const z3::model& m) {
  return inv == MirrorInv::kSubset ? RenderSubset(w, s, m) : RenderValidRange(w, s, m);
}

}  // namespace

MirrorSteps MirrorSteps::Real() { return {"docs/mirror.md"}; }

const char* MirrorInvName(MirrorInv inv) {
  return inv == MirrorInv::kSubset ? "InvMirrorSubsetOfCpu" : "InvValidRangeMatchesCpu";
}

const char* MirrorOpName(MirrorOp op) { return Info(op).name; }

LemmaResult LemmaInitialEstablishes(MirrorInv inv, const MirrorSteps& steps) {
  const std::string name = std::string("LemmaInitialEstablishes") + MirrorInvName(inv);
  return Prove(name, [&](z3::context& c) {
    const World w = mirror::MakeWorld(c);
    MirrorState init = w.before;  // any CPU tables, any mirror -> pid
    init.pt = mirror::LambdaEntry(w.i, w.v, mirror::NoEntry(c));
    init.ranges.open = z3::lambda(w.r, c.bool_val(false));
    if (steps.initial_pt_stale) {
      const z3::expr id = c.bv_const("stale.mirror", mirror::kIdBits);
      const z3::expr vpn = c.bv_const("stale.vpn", mirror::kVpnBits);
      init.pt = mirror::LambdaEntry(
          w.i, w.v,
          mirror::IteEntry(w.i == id && w.v == vpn, mirror::At(w.before.pt, id, vpn),
                           mirror::NoEntry(c)));
    }
    if (steps.initial_range_open) {
      const z3::expr r = c.bv_const("stale.range", mirror::kIdBits);
      init.ranges.open = mirror::Updated(init.ranges.open, w.r, r, c.bool_val(true));
    }
    Goal g;
    g.claims = {Claim(inv, init, w, "initial")};
    g.render = [w, init, inv](const z3::model& m) { return RenderClaim(inv, w, init, m); };
    return g;
  });
}

LemmaResult LemmaPreserves(MirrorOp op, MirrorInv inv, const MirrorSteps& steps) {
  const OpInfo& info = Info(op);
  const std::string name = std::string("Lemma") + info.name + "Preserves" + MirrorInvName(inv);
  return Prove(name, [&](z3::context& c) {
    const World w = mirror::MakeWorld(c);
    const Step step = StepOf(info, w, steps);
    Goal g;
    g.hypotheses = text::Concat({mirror::InvMirrorSubsetOfCpu(w, w.before, "before"),
                                 mirror::InvValidRangeMatchesCpu(w, w.before, "before"),
                                 mirror::InvCpuWriteImpliesVmaWrite(w, w.before)},
                                step.hypotheses);
    g.claims = {Claim(inv, step.after, w, "after")};
    g.render = [w, step, inv](const z3::model& m) {
      return step.render(m) + RenderClaim(inv, w, step.after, m);
    };
    return g;
  });
}

LemmaResult LemmaRangeDoneTrueImpliesNoOverlappingInvalidation(const MirrorSteps& steps) {
  return Prove("LemmaRangeDoneTrueImpliesNoOverlappingInvalidation", [&](z3::context& c) {
    const World w = mirror::MakeWorld(c);
    Goal g;
    g.hypotheses = {mirror::InvValidRangeNotInvalidated(w, w.before, "before"),
                    mirror::InvCpuWriteImpliesVmaWrite(w, w.before)};
    std::vector<std::pair<std::string, Step>> steps_by_op;
    for (const OpInfo& info : kOps) {
      Step step = StepOf(info, w, steps);
      g.hypotheses = text::Concat(g.hypotheses, step.hypotheses);
      g.claims.push_back(
          {std::string("valid => ghost == 0 after ") + info.name,
           mirror::NotInvalidatedAt(step.after, w.entry_id, w.entry_vpn).simplify()});
      steps_by_op.emplace_back(info.name, std::move(step));
    }
    // Only the operations whose claim the model breaks.
    g.render = [w, steps_by_op](const z3::model& m) {
      std::string out = mirror::RenderNum("entry.range", w.entry_id, m) +
                        mirror::RenderNum("entry.vpn", w.entry_vpn, m) +
                        RenderRange("before.range", w.before, w.entry_id, m) +
                        RenderGhost("before", w.before, w, m);
      for (const auto& [op, step] : steps_by_op) {
        const z3::expr holds = mirror::NotInvalidatedAt(step.after, w.entry_id, w.entry_vpn);
        if (!m.eval(holds.simplify(), true).is_false()) continue;
        out += Line("op", op) + step.render(m) +
               RenderRange("after.range", step.after, w.entry_id, m) +
               RenderGhost("after", step.after, w, m);
      }
      return out;
    };
    return g;
  });
}

namespace {

using RunFn = std::function<LemmaResult(const MirrorSteps&)>;

LemmaWithControl Entry(const std::string& name, const std::string& statement,
                       const std::string& invariant, const RunFn& run, const MirrorBreak& broken) {
  return EntryWithBreak<MirrorSteps>(name, statement, invariant, run, broken);
}

std::string StepStatement(const OpInfo& info, MirrorInv inv) {
  std::string out = std::string("InvMirrorSubsetOfCpu and InvValidRangeMatchesCpu before ") +
                    info.does + " imply " + MirrorInvName(inv) + " after it.";
  if (info.op == MirrorOp::kDmirrorCommit && inv == MirrorInv::kSubset) {
    out +=
        " Needs InvValidRangeMatchesCpu as the strengthening: commit installs only a valid "
        "range's entries.";
  }
  return out + " Mirrors: " + info.source + ".";
}

// Lemma<Op>Preserves<Inv> for both invariants (GetPfns: InvValidRangeMatchesCpu
// only, as it changes neither a pt nor a CPU entry).
void AppendStepEntries(const OpInfo& info, std::vector<LemmaWithControl>* out) {
  for (MirrorInv inv : {MirrorInv::kSubset, MirrorInv::kValidRange}) {
    if (inv == MirrorInv::kSubset && info.subset.flag == nullptr) continue;
    const MirrorBreak& broken = inv == MirrorInv::kValidRange && info.valid_range.flag != nullptr
                                    ? info.valid_range
                                    : info.subset;
    out->push_back(Entry(
        std::string("Lemma") + info.name + "Preserves" + MirrorInvName(inv),
        StepStatement(info, inv), MirrorInvName(inv),
        [op = info.op, inv](const MirrorSteps& s) { return LemmaPreserves(op, inv, s); }, broken));
  }
}

constexpr char kProtocolStatement[] =
    "InvValidRangeNotInvalidated: every page of an open valid range has ghost 0 (no CPU change "
    "since the range's registration unmapped, replaced or write-protected its entry); it holds "
    "after each operation above (get_pfns and hmm_vma_fault register a range valid with ghost "
    "0). range_done returns valid, so range_done true implies no overlapping invalidation ran. "
    "Mirrors: mm/hmm.c hmm_invalidate_range(), hmm_vma_range_done().";

}  // namespace

std::vector<LemmaWithControl> MirrorLemmas() {
  std::vector<LemmaWithControl> out;
  const std::pair<MirrorInv, MirrorBreak> initial[] = {
      {MirrorInv::kSubset,
       {&MirrorSteps::initial_pt_stale, "a pt that starts with an entry (an id reused uncleared)"}},
      {MirrorInv::kValidRange,
       {&MirrorSteps::initial_range_open,
        "a range that starts open and valid (an id reused without range_done)"}}};
  for (const auto& [inv, broken] : initial) {
    const std::string statement =
        std::string(
            "No pt entry and no open range (before any HmmMirrorRegister; a new "
            "mirror's pt is empty) establish ") +
        MirrorInvName(inv) + ", whatever the CPU tables.";
    out.push_back(Entry(
        std::string("LemmaInitialEstablishes") + MirrorInvName(inv), statement, MirrorInvName(inv),
        [inv = inv](const MirrorSteps& s) { return LemmaInitialEstablishes(inv, s); }, broken));
  }
  for (const OpInfo& info : kOps) AppendStepEntries(info, &out);
  out.push_back(Entry("LemmaRangeDoneTrueImpliesNoOverlappingInvalidation", kProtocolStatement,
                      "InvValidRangeNotInvalidated",
                      &LemmaRangeDoneTrueImpliesNoOverlappingInvalidation,
                      {&MirrorSteps::mprotect_skips_downgrade,
                       "an mprotect that notifies only when the prot gains a bit, not on a "
                       "downgrade"}));
  return out;
}

}  // namespace hmm::solver
