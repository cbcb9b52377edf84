// File: solver/mirror_order_lemmas.cc
//
// Issue 7's ordering lemmas (mirror_lemmas.h, MirrorOrderLemmas()): where the
// mirror callback runs relative to the CPU change (docs/mirror.md, "Order
// (profiles)"), and the sequence-count snapshot protocol that replaced
// hmm_vma_range_done(). Both are small schedules over one page, not the whole
// mirroring world of mirror_state.h.

#include <string>
#include <vector>

#include "solver/lemma_text.h"
#include "solver/mirror_lemmas.h"

namespace hmm::solver {
namespace {

using text::Bool;
using text::Line;

// ---- LemmaV18InvalidateAtEndAdmitsStaleDeviceMapping ----
//
// Three steps, each run once: the CPU thread's change (munmap, a COW break or
// a write-protect: the entry (id, write) becomes (id', write') with a
// different page or write dropped) and its mirror callback (pt erased, the
// overlapping range invalidated), in the order `v18` gives them; the device's
// access through pt anywhere among them.

enum OrderStep : int { kCpuChange = 0, kMirrorCallback = 1, kDeviceAccess = 2 };
constexpr int kOrderSteps = 3;
constexpr const char* kOrderStepNames[] = {"CpuChange", "MirrorCallback", "DeviceAccess"};

struct OrderTerms {
  std::vector<z3::expr> step;                        // step[t], t < kOrderSteps
  std::vector<z3::expr> cpu_id, cpu_w, pt_id, pt_w;  // state before step t (t <= kOrderSteps)
  z3::expr new_id, new_w, access_write;
};

OrderTerms MakeOrderTerms(z3::context& c) {
  OrderTerms t{{},
               {},
               {},
               {},
               {},
               c.int_const("change.id"),
               c.bool_const("change.write"),
               c.bool_const("device.access_write")};
  for (int i = 0; i <= kOrderSteps; ++i) {
    const std::string at = "t" + std::to_string(i);
    if (i < kOrderSteps) t.step.push_back(c.int_const(("step." + at).c_str()));
    t.cpu_id.push_back(c.int_const(("cpu.id." + at).c_str()));
    t.cpu_w.push_back(c.bool_const(("cpu.write." + at).c_str()));
    t.pt_id.push_back(c.int_const(("pt.id." + at).c_str()));
    t.pt_w.push_back(c.bool_const(("pt.write." + at).c_str()));
  }
  return t;
}

// InvMirrorSubsetOfCpu on one page: pt maps nothing (id 0) or what the CPU maps
// (never nothing), writable only if the CPU entry is.
z3::expr PtMatchesCpu(const OrderTerms& t, int i) {
  return t.pt_id[i] == 0 ||
         (t.cpu_id[i] != 0 && t.pt_id[i] == t.cpu_id[i] && (!t.pt_w[i] || t.cpu_w[i]));
}

std::vector<Named> OrderHypotheses(const OrderTerms& t, bool callback_at_end) {
  z3::context& c = t.new_id.ctx();
  z3::expr_vector once(c);
  for (int i = 0; i < kOrderSteps; ++i) once.push_back(t.step[i] >= 0 && t.step[i] < kOrderSteps);
  z3::expr_vector steps(c);
  for (const z3::expr& s : t.step) steps.push_back(s);
  z3::expr order = c.bool_val(false);  // some i < j with change at i, callback at j (or reverse)
  for (int i = 0; i < kOrderSteps; ++i) {
    for (int j = i + 1; j < kOrderSteps; ++j) {
      order = order || (t.step[i] == (callback_at_end ? kCpuChange : kMirrorCallback) &&
                        t.step[j] == (callback_at_end ? kMirrorCallback : kCpuChange));
    }
  }
  z3::expr trans = c.bool_val(true);
  for (int i = 0; i < kOrderSteps; ++i) {
    const z3::expr change = t.step[i] == kCpuChange, callback = t.step[i] == kMirrorCallback;
    trans = trans && t.cpu_id[i + 1] == z3::ite(change, t.new_id, t.cpu_id[i]) &&
            t.cpu_w[i + 1] == z3::ite(change, t.new_w, t.cpu_w[i]) &&
            t.pt_id[i + 1] == z3::ite(callback, c.int_val(0), t.pt_id[i]) &&
            t.pt_w[i + 1] == (t.pt_w[i] && !callback);
  }
  return {{"each step is CpuChange, MirrorCallback or DeviceAccess", z3::mk_and(once)},
          {"each step runs exactly once", z3::distinct(steps)},
          {callback_at_end ? "v18: the callback runs after the change (invalidate_range_end)"
                           : "default: the callback runs before the change "
                             "(invalidate_range_start)",
           order},
          {"ids are >= 0 (0: none)", t.new_id >= 0 && t.cpu_id[0] >= 0 && t.pt_id[0] >= 0},
          {"before: InvMirrorSubsetOfCpu, the device maps the page",
           PtMatchesCpu(t, 0) && t.pt_id[0] != 0},
          {"the change revokes: another page (or none), or write dropped",
           t.new_id != t.cpu_id[0] || (t.cpu_w[0] && !t.new_w)},
          {"a device write needs a writable pt entry", !t.access_write || t.pt_w[0]},
          {"each step changes only its own side", trans}};
}

z3::expr NoStaleAccess(const OrderTerms& t) {
  z3::expr ok = t.new_id.ctx().bool_val(true);
  for (int i = 0; i < kOrderSteps; ++i) {
    ok = ok && z3::implies(t.step[i] == kDeviceAccess, t.pt_id[i] == 0 || PtMatchesCpu(t, i));
  }
  return ok;
}

std::string RenderOrder(const OrderTerms& t, const z3::model& m) {
  const auto num = [&m](const z3::expr& e) { return m.eval(e, true).to_string(); };
  std::string schedule, out;
  for (int i = 0; i < kOrderSteps; ++i) {
    const int s = m.eval(t.step[i], true).get_numeral_int();
    const std::string name = s >= 0 && s < kOrderSteps ? kOrderStepNames[s] : "?";
    schedule += (i ? "; " : "") + name;
    const std::string at = "t" + std::to_string(i);  // the state before step i
    out += Line("step" + std::to_string(i), name) + Line(at + ".cpu.id", num(t.cpu_id[i])) +
           Line(at + ".cpu.write", num(t.cpu_w[i])) + Line(at + ".pt.id", num(t.pt_id[i])) +
           Line(at + ".pt.write", num(t.pt_w[i]));
  }
  return Line("schedule", schedule) + Line("device.access_write", num(t.access_write)) + out;
}

// An existence claim's result, as LemmaV18PlacementCollides's AsWitness().
LemmaResult AsScheduleWitness(LemmaResult r, const std::string& none) {
  if (r.status == LemmaStatus::kFailed) {
    r.status = LemmaStatus::kProved;
    r.detail = "witness (the schedule Z3 found):\n" + r.counterexample;
    r.counterexample.clear();
  } else if (r.status == LemmaStatus::kProved) {
    r.status = LemmaStatus::kFailed;
    r.detail = none + " (unsat; " + r.detail + ")";
  }
  return r;
}

// ---- LemmaSeqcountSnapshotHasNoAba ----
//
// The driver samples `seq` (mmu_interval_read_begin: waits while an
// invalidation runs, so none is active) and walks; each invalidation's start
// and end each add 1 (odd while it runs); the commit, under the driver lock,
// succeeds iff seq equals the sample. `n` counts the starts and ends since.

constexpr int kSeqSteps = 4;  // the bounded schedule: two whole invalidations
enum SeqStep : int { kSeqIdle = 0, kSeqStart = 1, kSeqEnd = 2 };
constexpr const char* kSeqStepNames[] = {"Idle", "InvalidateStart", "InvalidateEnd"};

struct SeqState {
  z3::expr seq, active, n;
};

SeqState MakeSeqState(z3::context& c, const std::string& at) {
  return {c.int_const(("seq." + at).c_str()), c.bool_const(("active." + at).c_str()),
          c.int_const(("n." + at).c_str())};
}

// One step; a counter with `modulus` (0: an unbounded Int, no wrap) wraps.
z3::expr SeqStepRel(const SeqState& a, const z3::expr& op, const SeqState& b, int modulus) {
  const z3::expr bump = op != kSeqIdle;
  z3::expr next = a.seq + 1;
  if (modulus > 0) next = z3::ite(next >= modulus, next - modulus, next);
  return (op >= kSeqIdle && op <= kSeqEnd) && z3::implies(op == kSeqStart, !a.active) &&
         z3::implies(op == kSeqEnd, a.active) &&
         b.active == z3::ite(op == kSeqStart, op.ctx().bool_val(true),
                             z3::ite(op == kSeqEnd, op.ctx().bool_val(false), a.active)) &&
         b.seq == z3::ite(bump, next, a.seq) && b.n == z3::ite(bump, a.n + 1, a.n);
}

struct SeqTerms {
  z3::expr sampled;
  std::vector<SeqState> at;  // the bounded schedule, at[0] = the sample
  std::vector<z3::expr> op;
  SeqState x, y;  // a generic step x -> y, for the inductive claims
  z3::expr x_op;
};

SeqTerms MakeSeqTerms(z3::context& c) {
  SeqTerms t{c.int_const("sampled.seq"), {}, {}, MakeSeqState(c, "x"), MakeSeqState(c, "y"),
             c.int_const("op.x")};
  for (int i = 0; i <= kSeqSteps; ++i) {
    t.at.push_back(MakeSeqState(c, "t" + std::to_string(i)));
    if (i < kSeqSteps) t.op.push_back(c.int_const(("op.t" + std::to_string(i)).c_str()));
  }
  return t;
}

// Inv: seq has grown by at least n since the sample, and is odd iff active.
z3::expr SeqInv(const SeqTerms& t, const SeqState& s) {
  return s.n >= 0 && s.seq >= t.sampled + s.n && (s.active == (z3::mod(s.seq, 2) == 1));
}

z3::expr Commits(const SeqTerms& t, const SeqState& s) { return s.seq == t.sampled; }

std::vector<Named> SeqHypotheses(const SeqTerms& t, int modulus) {
  z3::expr sched = t.at[0].seq == t.sampled && !t.at[0].active && t.at[0].n == 0;
  for (int i = 0; i < kSeqSteps; ++i)
    sched = sched && SeqStepRel(t.at[i], t.op[i], t.at[i + 1], modulus);
  z3::expr range = t.sampled >= 0;
  if (modulus > 0) range = range && t.sampled < modulus;
  return {{"read_begin returns an even seq (waits out a running invalidation)",
           range && z3::mod(t.sampled, 2) == 0},
          {"the schedule: each step idle, an invalidation's start or its end", sched},
          {"a generic step x -> y", SeqStepRel(t.x, t.x_op, t.y, modulus)}};
}

std::string RenderSeq(const SeqTerms& t, const z3::model& m) {
  const auto num = [&m](const z3::expr& e) { return m.eval(e, true).to_string(); };
  std::string schedule, out = Line("sampled.seq", num(t.sampled));
  for (int i = 0; i < kSeqSteps; ++i) {
    const int s = m.eval(t.op[i], true).get_numeral_int();
    const std::string name = s >= 0 && s <= kSeqEnd ? kSeqStepNames[s] : "?";
    schedule += (i ? "; " : "") + name;
    out += Line("step" + std::to_string(i), name) +
           Line("t" + std::to_string(i + 1) + ".seq", num(t.at[i + 1].seq));
  }
  const SeqState& end = t.at[kSeqSteps];
  return Line("schedule", schedule + "; Commit") + out +
         Line("commit", Bool(m.eval(Commits(t, end), true).is_true())) +
         Line("invalidation_events", num(end.n));
}

}  // namespace

// Mirrors: mm/hmm.c hmm_invalidate_range() (4.14), called from
// hmm_invalidate_range_end() in v18 (mm/mmu_notifier.c
// __mmu_notifier_invalidate_range_end()).
LemmaResult LemmaV18InvalidateAtEndAdmitsStaleDeviceMapping(bool callback_at_end) {
  return AsScheduleWitness(
      Prove("LemmaV18InvalidateAtEndAdmitsStaleDeviceMapping",
            [&](z3::context& c) {
              const OrderTerms t = MakeOrderTerms(c);
              Goal g;
              g.hypotheses = OrderHypotheses(t, callback_at_end);
              g.claims = {
                  {"no device access goes through a pt entry the CPU entry no longer "
                   "matches (InvMirrorSubsetOfCpu at every access)",
                   NoStaleAccess(t)}};
              g.render = [t](const z3::model& m) { return RenderOrder(t, m); };
              return g;
            }),
      "no stale access exists: with the callback before the change, every device access "
      "goes through a pt entry that matches the CPU entry or through none");
}

// Mirrors: mm/mmu_notifier.c mmu_interval_read_begin(), mmu_interval_read_retry(),
// mn_itree_inv_start_range() / mn_itree_inv_end().
LemmaResult LemmaSeqcountSnapshotHasNoAba(int modulus) {
  return Prove("LemmaSeqcountSnapshotHasNoAba", [&](z3::context& c) {
    const SeqTerms t = MakeSeqTerms(c);
    const SeqState& end = t.at[kSeqSteps];
    const SeqState& x = t.x;
    Goal g;
    g.hypotheses = SeqHypotheses(t, modulus);
    g.claims = {{"no schedule of 4 steps commits after an invalidation overlapped the window",
                 z3::implies(Commits(t, end), end.n == 0)},
                {"Inv holds at the sample",
                 z3::implies(t.at[0].seq == t.sampled && !t.at[0].active && t.at[0].n == 0,
                             SeqInv(t, t.at[0]))},
                {"every step keeps Inv", z3::implies(SeqInv(t, x), SeqInv(t, t.y))},
                {"under Inv, a commit means no invalidation event since the sample",
                 z3::implies(SeqInv(t, x) && Commits(t, x), x.n == 0 && !x.active)}};
    g.render = [t](const z3::model& m) { return RenderSeq(t, m); };
    return g;
  });
}

std::vector<LemmaWithControl> MirrorOrderLemmas() {
  const auto order = [](const std::string& name, bool at_end) {
    return [name, at_end] {
      LemmaResult r = LemmaV18InvalidateAtEndAdmitsStaleDeviceMapping(at_end);
      r.name = name;
      return r;
    };
  };
  const auto seq = [](const std::string& name, int modulus) {
    return [name, modulus] {
      LemmaResult r = LemmaSeqcountSnapshotHasNoAba(modulus);
      r.name = name;
      return r;
    };
  };
  const std::string v18 =
      "An existence claim, proved by a witness: with v18's order (the mirror callback, pt "
      "erase and range invalidation, at invalidate_range_end, after a revoking CPU change) "
      "some schedule lets the device access the page through a pt entry the CPU entry no "
      "longer matches; `detail` holds the schedule.";
  const std::string aba =
      "The sequence-count snapshot (mmu_interval_read_begin/read_retry, the counter an "
      "unbounded Int: no wrap) has no ABA: a commit whose seq equals the sample had no "
      "invalidation start or end in its window, for any number of invalidations (by "
      "induction; plus every 4-step schedule).";
  return {
      {{"LemmaV18InvalidateAtEndAdmitsStaleDeviceMapping", v18, "",
        order("LemmaV18InvalidateAtEndAdmitsStaleDeviceMapping", true)},
       {"LemmaV18InvalidateAtEndAdmitsStaleDeviceMappingNegativeControl",
        v18 + " Negative control over the default order (callback at invalidate_range_start, "
              "before the change); must fail: no such schedule exists.",
        "", order("LemmaV18InvalidateAtEndAdmitsStaleDeviceMappingNegativeControl", false)}},
      {{"LemmaSeqcountSnapshotHasNoAba", aba, "", seq("LemmaSeqcountSnapshotHasNoAba", 0)},
       {"LemmaSeqcountSnapshotHasNoAbaNegativeControl",
        aba + " Negative control over a counter kept mod 4 (a 1-bit generation toggle plus the "
              "odd in-progress bit); must fail.",
        "", seq("LemmaSeqcountSnapshotHasNoAbaNegativeControl", 4)}},
  };
}

}  // namespace hmm::solver
