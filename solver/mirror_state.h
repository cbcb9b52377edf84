// File: solver/mirror_state.h
//
// The symbolic state of the mirroring lemmas (docs/mirror.md), internal to
// //solver:lemmas. One MirrorState is the whole mirroring world, as arrays
// indexed by (id, vpn) pairs, where the id is a pid, a mirror or a range:
//
// - the CPU page tables: (pid, vpn) -> entry {kind, id, write} and the VMA at
//   that page {read, write, private} (all false: no VMA);
// - every mirror's device page table pt: (mirror, vpn) -> entry, and
//   mirror -> pid (a mirror never changes its process);
// - every range: range -> open, valid, mirror, [start, end); and
//   (range, vpn) -> HMM_PFN_* flags, target {kind, id} and ghost.
//
// `ghost` counts, per page of a range and since the range was registered, the
// steps that revoked what the CPU mapped there (unmapped it, replaced it, or
// write-protected it): the invalidations the snapshot protocol must detect.
// A step's after-state is lambdas over the before-state's arrays (never
// z3::store: a claim is simplified, which beta-reduces every lambda to an
// ite, so no array axiom is left for Z3's relevancy filter to miss).

#ifndef HMMREF_SOLVER_MIRROR_STATE_H_
#define HMMREF_SOLVER_MIRROR_STATE_H_

#include <z3++.h>

#include <functional>
#include <string>
#include <vector>

#include "model/types.h"
#include "solver/lemma_text.h"
#include "solver/mirror_lemmas.h"
#include "solver/prove.h"

namespace hmm::solver::mirror {

constexpr unsigned kVpnBits = kUserVaBits - kPageShift;  // vpn < kMaxVpn
constexpr unsigned kIdBits = 28;                         // pid, mirror, range
constexpr unsigned kWordBits = 64;                       // page ids, device pfns
constexpr unsigned kTargetBits = 2;
constexpr unsigned kFlagBits = kHmmPfnShift;  // HMM_PFN_* (model/types.h)

// What an entry names: nothing, a RAM page, the zero page or a device pfn.
enum class Target : unsigned { kNone = 0, kPage = 1, kZero = 2, kDevice = 3 };

z3::expr TargetVal(z3::context& c, Target t);
z3::expr Flag(z3::context& c, uint64_t hmm_pfn_flags);  // kHmmPfn* as a term
z3::expr HasFlag(const z3::expr& flags, uint64_t flag);

// A CPU or pt entry; as tables, each field is an array over (id, vpn).
struct SymEntry {
  z3::expr kind, id, write;
};
// The VMA at a page: its prot and whether it is private.
struct SymVma {
  z3::expr read, write, priv;
};
struct SymRanges {
  z3::expr open, valid, mirror, start, end;  // arrays over range ids
  z3::expr flags, kind, id, ghost;           // arrays over (range, vpn)
};
struct MirrorState {
  SymEntry cpu;         // (pid, vpn)
  SymVma vma;           // (pid, vpn)
  z3::expr mirror_pid;  // mirror -> pid
  SymEntry pt;          // (mirror, vpn)
  SymRanges ranges;
};

SymEntry At(const SymEntry& tables, const z3::expr& id, const z3::expr& vpn);
SymVma VmaAt(const SymVma& tables, const z3::expr& pid, const z3::expr& vpn);
SymEntry IteEntry(const z3::expr& cond, const SymEntry& a, const SymEntry& b);
SymVma IteVma(const z3::expr& cond, const SymVma& a, const SymVma& b);
// The tables whose entry at (i, v) is `e`, a term over the bound i and v.
SymEntry LambdaEntry(const z3::expr& i, const z3::expr& v, const SymEntry& e);
SymVma LambdaVma(const z3::expr& i, const z3::expr& v, const SymVma& e);
SymEntry NoEntry(z3::context& c);
SymVma NoVma(z3::context& c);
// `array` (over ids) with `value` at `at`, as a lambda over `bound`.
z3::expr Updated(const z3::expr& array, const z3::expr& bound, const z3::expr& at,
                 const z3::expr& value);
// An array over (id, vpn) named `name`: a per-page choice of an operation.
z3::expr PageArray(z3::context& c, const std::string& name, const z3::sort& to);
z3::expr Select(const z3::expr& page_array, const z3::expr& id, const z3::expr& vpn);

// The bound variables of lambdas and quantifiers, and the free names a claim
// is about (a counterexample shows them before and after).
struct World {
  MirrorState before;
  z3::expr i;         // bound: any id (pid, mirror or range)
  z3::expr v;         // bound: any vpn
  z3::expr r;         // bound: any range id
  z3::expr m;         // bound: any mirror id
  z3::expr entry_id;  // free: the (id, vpn) a claim is about
  z3::expr entry_vpn;
};
World MakeWorld(z3::context& c);

// The process a range's mirror mirrors; whether vpn lies in the range.
z3::expr RangePid(const MirrorState& s, const z3::expr& range);
z3::expr InRange(const MirrorState& s, const z3::expr& range, const z3::expr& vpn);
// A range entry as a mapping: its target, write iff HMM_PFN_WRITE.
SymEntry RangeEntryAt(const MirrorState& s, const z3::expr& range, const z3::expr& vpn);

// `e` maps a subset of what CPU entry `cpu` maps: the same target (never
// none), writable only if `cpu` is.
z3::expr Match(const SymEntry& e, const SymEntry& cpu);
// A change of one CPU entry that a device could have seen: `old` mapped
// something that `now` no longer maps with at least the same rights.
z3::expr Revokes(const SymEntry& old, const SymEntry& now);

// The invariants at one pt entry or range entry.
z3::expr SubsetAt(const MirrorState& s, const z3::expr& mirror, const z3::expr& vpn);
z3::expr ValidRangeAt(const MirrorState& s, const z3::expr& range, const z3::expr& vpn);
z3::expr NotInvalidatedAt(const MirrorState& s, const z3::expr& range, const z3::expr& vpn);
// The model's invariants InvPteWriteImpliesVmaWrite and
// InvDeviceEntryWriteImpliesVmaWrite, assumed (the runner checks them).
z3::expr CpuWriteImpliesVmaWriteAt(const MirrorState& s, const z3::expr& pid, const z3::expr& vpn);

// Every invariant above, as a forall, named for `state` ("before").
Named InvMirrorSubsetOfCpu(const World& w, const MirrorState& s, const std::string& state);
Named InvValidRangeMatchesCpu(const World& w, const MirrorState& s, const std::string& state);
Named InvValidRangeNotInvalidated(const World& w, const MirrorState& s, const std::string& state);
Named InvCpuWriteImpliesVmaWrite(const World& w, const MirrorState& s);

// The pages (pid, vpn) a CPU operation notifies.
using Notified = std::function<z3::expr(const z3::expr& pid, const z3::expr& vpn)>;
Notified NotifiesNothing();

// A step: its hypotheses (its parameters' ranges), the state after it, and its
// parameters as "field = value" lines.
struct Step {
  std::vector<Named> hypotheses;
  MirrorState after;
  std::function<std::string(const z3::model&)> render;
};

// The state after CPU operation `op` changes the CPU tables to `cpu` and `vma`
// and notifies `notified`: every mirror of the process erases its pt entries
// there, every overlapping open range goes invalid and has its entries there
// zeroed (mm/hmm.c hmm_invalidate_range()), and each range page's ghost counts
// the step if it revoked the CPU entry there. "Overlapping" is decided at
// `op`.notified_page[range], a choice function: its hypothesis says it is a
// notified page of the range whenever the range has one, so a counterexample
// can evaluate `valid` without a quantifier.
Step AfterCpuChange(const World& w, const MirrorState& s, const SymEntry& cpu, const SymVma& vma,
                    const Notified& notified, const std::string& op);
// `change` with the operation's own hypotheses and parameters.
Step Described(Step change, const std::vector<Named>& hypotheses,
               std::function<std::string(const z3::model&)> render);

// [start, end) of process `pid`: the pages an operation takes.
struct PageRange {
  std::string op;
  z3::expr pid, start, end;

  z3::expr Contains(const z3::expr& p, const z3::expr& vpn) const;
  Notified AsNotified() const;
  Named NonEmpty() const;
  std::string Render(const z3::model& m) const;
};
PageRange MakePageRange(z3::context& c, const std::string& op);

// The CPU fault path (model/fault.cc FaultIn) on every page `faulted` names:
// a read fault fills an empty entry; a write fault copies the zero page or a
// read-only private page it may not reuse (notifying that page), makes a
// reusable or shared page writable in place, or allocates a page for an
// empty entry. Per-page choices are arrays named `op`.reuse, `op`.new_id.
Step AfterFault(const World& w, const MirrorState& s, const Notified& faulted,
                const z3::expr& write, const std::string& op, const MirrorSteps& steps);

// The step of operation `op`: CpuStep for munmap through exit
// (mirror_table_lemmas.cc), DeviceStep for get_pfns through the dummy device's
// fault (mirror_device_lemmas.cc). Each throws std::invalid_argument for an
// operation of the other file.
Step CpuStep(MirrorOp op, const World& w, const MirrorSteps& steps);
Step DeviceStep(MirrorOp op, const World& w, const MirrorSteps& steps);

// "field = value" lines for counterexamples.
std::string TargetName(uint64_t kind);
std::string FlagNames(uint64_t flags);
std::string RenderEntry(const std::string& name, const SymEntry& e, const z3::model& m);
using text::RenderBool;  // lemma_text.h
using text::RenderNum;

}  // namespace hmm::solver::mirror

#endif  // HMMREF_SOLVER_MIRROR_STATE_H_
