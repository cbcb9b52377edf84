// File: solver/mirror_state.cc
//
// The symbolic mirroring state (mirror_state.h): the arrays, the invariants
// at one entry, and the mmu notifier's effect on mirrors and ranges.

#include "solver/mirror_state.h"

#include <utility>

#include "solver/lemma_text.h"

namespace hmm::solver::mirror {
namespace {

using text::Hex;
using text::Line;
using text::U64;

z3::sort IdSort(z3::context& c) { return c.bv_sort(kIdBits); }

z3::expr IdArray(z3::context& c, const std::string& name, const z3::sort& to) {
  return c.constant(name.c_str(), c.array_sort(IdSort(c), to));
}

SymEntry EntryTables(z3::context& c, const std::string& prefix) {
  return {PageArray(c, prefix + ".kind", c.bv_sort(kTargetBits)),
          PageArray(c, prefix + ".id", c.bv_sort(kWordBits)),
          PageArray(c, prefix + ".write", c.bool_sort())};
}

SymRanges RangeTables(z3::context& c, const std::string& prefix) {
  return {IdArray(c, prefix + ".open", c.bool_sort()),
          IdArray(c, prefix + ".valid", c.bool_sort()),
          IdArray(c, prefix + ".mirror", IdSort(c)),
          IdArray(c, prefix + ".start", c.bv_sort(kVpnBits)),
          IdArray(c, prefix + ".end", c.bv_sort(kVpnBits)),
          PageArray(c, prefix + ".flags", c.bv_sort(kFlagBits)),
          PageArray(c, prefix + ".kind", c.bv_sort(kTargetBits)),
          PageArray(c, prefix + ".id", c.bv_sort(kWordBits)),
          PageArray(c, prefix + ".ghost", c.int_sort())};
}

MirrorState StateTables(z3::context& c, const std::string& prefix) {
  return {EntryTables(c, prefix + ".cpu"),
          {PageArray(c, prefix + ".vma.read", c.bool_sort()),
           PageArray(c, prefix + ".vma.write", c.bool_sort()),
           PageArray(c, prefix + ".vma.private", c.bool_sort())},
          IdArray(c, prefix + ".mirror_pid", IdSort(c)),
          EntryTables(c, prefix + ".pt"),
          RangeTables(c, prefix + ".range")};
}

}  // namespace

z3::expr TargetVal(z3::context& c, Target t) {
  return c.bv_val(static_cast<unsigned>(t), kTargetBits);
}

z3::expr Flag(z3::context& c, uint64_t hmm_pfn_flags) { return c.bv_val(hmm_pfn_flags, kFlagBits); }

z3::expr HasFlag(const z3::expr& flags, uint64_t flag) {
  return (flags & Flag(flags.ctx(), flag)) != Flag(flags.ctx(), 0);
}

z3::expr PageArray(z3::context& c, const std::string& name, const z3::sort& to) {
  z3::sort_vector index(c);
  index.push_back(IdSort(c));
  index.push_back(c.bv_sort(kVpnBits));
  return c.constant(name.c_str(), c.array_sort(index, to));
}

z3::expr Select(const z3::expr& page_array, const z3::expr& id, const z3::expr& vpn) {
  z3::expr_vector index(id.ctx());
  index.push_back(id);
  index.push_back(vpn);
  return z3::select(page_array, index);
}

SymEntry At(const SymEntry& t, const z3::expr& id, const z3::expr& vpn) {
  return {Select(t.kind, id, vpn), Select(t.id, id, vpn), Select(t.write, id, vpn)};
}

SymVma VmaAt(const SymVma& t, const z3::expr& pid, const z3::expr& vpn) {
  return {Select(t.read, pid, vpn), Select(t.write, pid, vpn), Select(t.priv, pid, vpn)};
}

SymEntry IteEntry(const z3::expr& cond, const SymEntry& a, const SymEntry& b) {
  return {z3::ite(cond, a.kind, b.kind), z3::ite(cond, a.id, b.id),
          z3::ite(cond, a.write, b.write)};
}

SymVma IteVma(const z3::expr& cond, const SymVma& a, const SymVma& b) {
  return {z3::ite(cond, a.read, b.read), z3::ite(cond, a.write, b.write),
          z3::ite(cond, a.priv, b.priv)};
}

SymEntry LambdaEntry(const z3::expr& i, const z3::expr& v, const SymEntry& e) {
  return {z3::lambda(i, v, e.kind), z3::lambda(i, v, e.id), z3::lambda(i, v, e.write)};
}

SymVma LambdaVma(const z3::expr& i, const z3::expr& v, const SymVma& e) {
  return {z3::lambda(i, v, e.read), z3::lambda(i, v, e.write), z3::lambda(i, v, e.priv)};
}

SymEntry NoEntry(z3::context& c) {
  return {TargetVal(c, Target::kNone), c.bv_val(0, kWordBits), c.bool_val(false)};
}

SymVma NoVma(z3::context& c) { return {c.bool_val(false), c.bool_val(false), c.bool_val(false)}; }

z3::expr Updated(const z3::expr& array, const z3::expr& bound, const z3::expr& at,
                 const z3::expr& value) {
  return z3::lambda(bound, z3::ite(bound == at, value, z3::select(array, bound)));
}

World MakeWorld(z3::context& c) {
  return {StateTables(c, "before"),         c.bv_const("i", kIdBits),
          c.bv_const("v", kVpnBits),        c.bv_const("r", kIdBits),
          c.bv_const("m", kIdBits),         c.bv_const("entry.id", kIdBits),
          c.bv_const("entry.vpn", kVpnBits)};
}

z3::expr RangePid(const MirrorState& s, const z3::expr& range) {
  return z3::select(s.mirror_pid, z3::select(s.ranges.mirror, range));
}

z3::expr InRange(const MirrorState& s, const z3::expr& range, const z3::expr& vpn) {
  return z3::uge(vpn, z3::select(s.ranges.start, range)) &&
         z3::ult(vpn, z3::select(s.ranges.end, range));
}

SymEntry RangeEntryAt(const MirrorState& s, const z3::expr& range, const z3::expr& vpn) {
  return {Select(s.ranges.kind, range, vpn), Select(s.ranges.id, range, vpn),
          HasFlag(Select(s.ranges.flags, range, vpn), kHmmPfnWrite)};
}

z3::expr Match(const SymEntry& e, const SymEntry& cpu) {
  return cpu.kind != TargetVal(cpu.kind.ctx(), Target::kNone) && e.kind == cpu.kind &&
         e.id == cpu.id && z3::implies(e.write, cpu.write);
}

z3::expr Revokes(const SymEntry& old, const SymEntry& now) {
  return old.kind != TargetVal(old.kind.ctx(), Target::kNone) && !Match(old, now);
}

z3::expr SubsetAt(const MirrorState& s, const z3::expr& mirror, const z3::expr& vpn) {
  const SymEntry pt = At(s.pt, mirror, vpn);
  const SymEntry cpu = At(s.cpu, z3::select(s.mirror_pid, mirror), vpn);
  return z3::implies(pt.kind != TargetVal(vpn.ctx(), Target::kNone), Match(pt, cpu));
}

z3::expr ValidRangeAt(const MirrorState& s, const z3::expr& range, const z3::expr& vpn) {
  const z3::expr counts = z3::select(s.ranges.open, range) && z3::select(s.ranges.valid, range) &&
                          InRange(s, range, vpn) &&
                          HasFlag(Select(s.ranges.flags, range, vpn), kHmmPfnValid);
  return z3::implies(counts,
                     Match(RangeEntryAt(s, range, vpn), At(s.cpu, RangePid(s, range), vpn)));
}

z3::expr NotInvalidatedAt(const MirrorState& s, const z3::expr& range, const z3::expr& vpn) {
  return z3::implies(z3::select(s.ranges.open, range) && z3::select(s.ranges.valid, range) &&
                         InRange(s, range, vpn),
                     Select(s.ranges.ghost, range, vpn) == 0);
}

z3::expr CpuWriteImpliesVmaWriteAt(const MirrorState& s, const z3::expr& pid, const z3::expr& vpn) {
  const SymEntry e = At(s.cpu, pid, vpn);
  return z3::implies(e.write && e.kind != TargetVal(vpn.ctx(), Target::kNone),
                     Select(s.vma.write, pid, vpn));
}

Named InvMirrorSubsetOfCpu(const World& w, const MirrorState& s, const std::string& state) {
  return {"InvMirrorSubsetOfCpu(" + state + ")",
          ForallWhere({w.i, w.v}, {Select(s.pt.kind, w.i, w.v)}, SubsetAt(s, w.i, w.v))};
}

Named InvValidRangeMatchesCpu(const World& w, const MirrorState& s, const std::string& state) {
  return {"InvValidRangeMatchesCpu(" + state + ")",
          ForallWhere({w.i, w.v}, {Select(s.ranges.flags, w.i, w.v)}, ValidRangeAt(s, w.i, w.v))};
}

Named InvValidRangeNotInvalidated(const World& w, const MirrorState& s, const std::string& state) {
  return {
      "InvValidRangeNotInvalidated(" + state + ")",
      ForallWhere({w.i, w.v}, {Select(s.ranges.ghost, w.i, w.v)}, NotInvalidatedAt(s, w.i, w.v))};
}

Named InvCpuWriteImpliesVmaWrite(const World& w, const MirrorState& s) {
  return {"InvPteWriteImpliesVmaWrite, InvDeviceEntryWriteImpliesVmaWrite (before)",
          ForallWhere({w.i, w.v}, {Select(s.cpu.write, w.i, w.v)},
                      CpuWriteImpliesVmaWriteAt(s, w.i, w.v))};
}

Notified NotifiesNothing() {
  return [](const z3::expr& pid, const z3::expr&) { return pid.ctx().bool_val(false); };
}

namespace {

// Every range whose pages the notification reaches goes invalid (decided at
// the choice function `page`); its entries there are zeroed; a page's ghost
// counts a revoking CPU change.
SymRanges NotifyRanges(const World& w, const MirrorState& s, const SymEntry& cpu,
                       const Notified& notified, const z3::expr& page) {
  z3::context& c = w.r.ctx();
  SymRanges out = s.ranges;
  const z3::expr told = z3::select(page, w.r);
  out.valid = z3::lambda(w.r, z3::select(s.ranges.valid, w.r) &&
                                  !(InRange(s, w.r, told) && notified(RangePid(s, w.r), told)));
  const z3::expr pid = RangePid(s, w.i);
  const z3::expr revoked = InRange(s, w.i, w.v) && Revokes(At(s.cpu, pid, w.v), At(cpu, pid, w.v));
  out.ghost = z3::lambda(
      w.i, w.v, Select(s.ranges.ghost, w.i, w.v) + z3::ite(revoked, c.int_val(1), c.int_val(0)));
  const z3::expr zeroed = InRange(s, w.i, w.v) && notified(pid, w.v);
  const auto zero_or = [&](const z3::expr& zero, const z3::expr& table) {
    return z3::lambda(w.i, w.v, z3::ite(zeroed, zero, Select(table, w.i, w.v)));
  };
  out.flags = zero_or(Flag(c, 0), s.ranges.flags);
  out.kind = zero_or(TargetVal(c, Target::kNone), s.ranges.kind);
  out.id = zero_or(c.bv_val(0, kWordBits), s.ranges.id);
  return out;
}

}  // namespace

Step AfterCpuChange(const World& w, const MirrorState& s, const SymEntry& cpu, const SymVma& vma,
                    const Notified& notified, const std::string& op) {
  z3::context& c = w.i.ctx();
  const z3::expr page = IdArray(c, op + ".notified_page", c.bv_sort(kVpnBits));
  const auto told = [&](const z3::expr& vpn) {
    return InRange(s, w.r, vpn) && notified(RangePid(s, w.r), vpn);
  };
  const z3::expr page_of_r = z3::select(page, w.r);
  const Named choice{op + ".notified_page[r] is a notified page of r if r has one",
                     ForallWhere({w.r, w.v}, {page_of_r, Select(w.before.ranges.ghost, w.r, w.v)},
                                 z3::implies(told(w.v), told(page_of_r)))};
  const z3::expr erased = notified(z3::select(s.mirror_pid, w.i), w.v);
  const SymEntry pt = LambdaEntry(w.i, w.v, IteEntry(erased, NoEntry(c), At(s.pt, w.i, w.v)));
  return {{choice},
          {cpu, vma, s.mirror_pid, pt, NotifyRanges(w, s, cpu, notified, page)},
          [](const z3::model&) { return std::string(); }};
}

Step Described(Step change, const std::vector<Named>& hypotheses,
               std::function<std::string(const z3::model&)> render) {
  change.hypotheses.insert(change.hypotheses.begin(), hypotheses.begin(), hypotheses.end());
  change.render = std::move(render);
  return change;
}

z3::expr PageRange::Contains(const z3::expr& p, const z3::expr& vpn) const {
  return p == pid && z3::uge(vpn, start) && z3::ult(vpn, end);
}

Notified PageRange::AsNotified() const {
  return [range = *this](const z3::expr& p, const z3::expr& vpn) { return range.Contains(p, vpn); };
}

Named PageRange::NonEmpty() const { return {op + ".start < " + op + ".end", z3::ult(start, end)}; }

std::string PageRange::Render(const z3::model& m) const {
  return RenderNum(op + ".pid", pid, m) + RenderNum(op + ".start", start, m) +
         RenderNum(op + ".end", end, m);
}

PageRange MakePageRange(z3::context& c, const std::string& op) {
  return {op, c.bv_const((op + ".pid").c_str(), kIdBits),
          c.bv_const((op + ".start").c_str(), kVpnBits),
          c.bv_const((op + ".end").c_str(), kVpnBits)};
}

std::string TargetName(uint64_t kind) {
  switch (static_cast<Target>(kind)) {
    case Target::kNone: return "kNone";
    case Target::kPage: return "kPage";
    case Target::kZero: return "kZero";
    case Target::kDevice: return "kDevice";
  }
  return std::to_string(kind);
}

std::string FlagNames(uint64_t flags) {
  static const std::pair<uint64_t, const char*> kNames[] = {
      {kHmmPfnValid, "VALID"},
      {kHmmPfnRead, "READ"},
      {kHmmPfnWrite, "WRITE"},
      {kHmmPfnError, "ERROR"},
      {kHmmPfnEmpty, "EMPTY"},
      {kHmmPfnSpecial, "SPECIAL"},
      {kHmmPfnDeviceUnaddressable, "DEVICE_UNADDRESSABLE"}};
  std::string names;
  for (const auto& [bit, name] : kNames) {
    if ((flags & bit) != 0) names += (names.empty() ? "" : "|") + std::string(name);
  }
  return Hex(flags) + " (" + (names.empty() ? "0" : names) + ")";
}

std::string RenderEntry(const std::string& name, const SymEntry& e, const z3::model& m) {
  return Line(name + ".kind", TargetName(U64(m, e.kind))) + RenderNum(name + ".id", e.id, m) +
         RenderBool(name + ".write", e.write, m);
}

}  // namespace hmm::solver::mirror
