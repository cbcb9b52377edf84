// File: props/trace_shrink.cc
//
// The trace-level shrinking pass (props/trace_shrink.h, docs/shrinking.md).

#include "props/trace_shrink.h"

#include <chrono>
#include <set>
#include <string>
#include <utility>

#include "model/types.h"
#include "props/runner.h"

namespace hmm::props {
namespace {

using Clock = std::chrono::steady_clock;

// The candidate replacements of one op, each differing from it in one field.
class Alternatives {
 public:
  explicit Alternatives(const Op& op) : op_(op) {}

  template <typename Field, typename Value>
  void With(Field Op::*field, const Value& value) {
    if (op_.*field == value) return;
    Op c = op_;
    c.*field = value;
    out_.push_back(std::move(c));
  }

  std::vector<Op> Take() { return std::move(out_); }

 private:
  const Op& op_;
  std::vector<Op> out_;
};

class Shrinker {
 public:
  Shrinker(std::vector<Op> ops, const FailingPrefix& oracle, const ShrinkLimits& limits,
           ShrinkStats* stats)
      : best_(std::move(ops)), oracle_(oracle), limits_(limits), stats_(stats),
        start_(Clock::now()) {}

  std::vector<Op> Run() {
    bool changed = true;
    while (changed && !Exhausted()) {
      changed = false;
      changed |= DeleteSteps();
      changed |= DeleteSetup();
      changed |= RemapAddresses();
      changed |= RemapPfns();
      changed |= RemapIds(&Op::mirror, UsesMirror);
      changed |= RemapIds(&Op::range, UsesRange);
      changed |= SimplifyNumbers();
    }
    return best_;
  }

 private:
  bool Exhausted() {
    if (stats_->budget_exhausted) return true;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    if (stats_->runs >= limits_.max_runs || elapsed >= limits_.seconds) {
      stats_->budget_exhausted = true;
    }
    return stats_->budget_exhausted;
  }

  // Accepts `candidate` (truncated after its failing step) if it still fails
  // and is no longer than the best so far.
  bool Try(std::vector<Op> candidate) {
    if (candidate.size() > best_.size() || Exhausted()) return false;
    ++stats_->runs;
    const size_t prefix = oracle_(candidate);
    if (prefix == 0 || prefix > candidate.size()) return false;
    candidate.resize(prefix);
    ++stats_->accepted;
    best_ = std::move(candidate);
    return true;
  }

  // (1) One operation at a time, last to first; the final (failing) step stays.
  bool DeleteSteps() {
    bool changed = false;
    for (size_t i = best_.size() >= 2 ? best_.size() - 1 : 0; i-- > 0;) {
      if (i >= best_.size() - 1 || IsSetupKind(best_[i].kind)) continue;
      std::vector<Op> c = best_;
      c.erase(c.begin() + static_cast<std::ptrdiff_t>(i));
      changed |= Try(std::move(c));
    }
    return changed;
  }

  // (2) Set-up lines, last to first.
  bool DeleteSetup() {
    bool changed = false;
    for (size_t i = best_.size(); i-- > 0;) {
      if (i >= best_.size() || !IsSetupKind(best_[i].kind)) continue;
      std::vector<Op> c = best_;
      c.erase(c.begin() + static_cast<std::ptrdiff_t>(i));
      changed |= Try(std::move(c));
    }
    return changed;
  }

  // The ops whose Op::addr is a user address of some process (the mirroring
  // ops name the process through their mirror).
  static bool UsesCpuAddr(OpKind k) { return UsesPidAndAddr(k) || UsesMirrorAddr(k); }
  static bool UsesPidAndAddr(OpKind k) {
    switch (k) {
      case OpKind::kMmap: case OpKind::kMunmap: case OpKind::kMprotect:
      case OpKind::kMadviseDontneed: case OpKind::kRead: case OpKind::kWrite:
      case OpKind::kPin: case OpKind::kMremap: case OpKind::kDevMap:
        return true;
      default:
        return false;
    }
  }
  static bool UsesMirrorAddr(OpKind k) {
    return k == OpKind::kGetPfns || k == OpKind::kHmmFault || k == OpKind::kDfault ||
           k == OpKind::kDread ||
           k == OpKind::kDwrite || k == OpKind::kSnapshot || k == OpKind::kMigrateToDev ||
           k == OpKind::kMigrateToSys;
  }
  static bool UsesPid(OpKind k) {
    return UsesPidAndAddr(k) || k == OpKind::kExit || k == OpKind::kFork || k == OpKind::kMirror;
  }
  static bool UsesMirror(OpKind k) {
    return UsesMirrorAddr(k) || k == OpKind::kUnmirror || k == OpKind::kRelease ||
           k == OpKind::kDflags;
  }
  static bool UsesRange(OpKind k) { return k == OpKind::kRangeDone || k == OpKind::kCommit; }

  // (3a) Addresses are shared between ops (mmap X, then write X): move one
  // page-aligned value everywhere at once, toward kMmapBase.
  bool RemapAddresses() {
    std::set<uint64_t> values;
    for (const Op& op : best_) {
      if (!UsesCpuAddr(op.kind)) continue;
      if (PageAligned(op.addr)) values.insert(op.addr);
      if (op.kind == OpKind::kMremap && PageAligned(op.new_addr) && op.new_addr != 0) {
        values.insert(op.new_addr);
      }
    }
    bool changed = false;
    for (uint64_t v : values) {
      for (uint64_t to : AddrTargets(v)) {
        std::vector<Op> c = best_;
        bool any = false;
        for (Op& op : c) {
          if (!UsesCpuAddr(op.kind)) continue;
          if (op.addr == v) { op.addr = to; any = true; }
          if (op.kind == OpKind::kMremap && op.new_addr == v) { op.new_addr = to; any = true; }
        }
        if (any && Try(std::move(c))) { changed = true; break; }
      }
    }
    return changed;
  }

  // (3c) Device pfns are shared too (devmap PFN, devpage_put PFN): move one
  // value everywhere at once, one down (a fixed point walks it to the lowest
  // pfn that still fails, e.g. the first allocated page).
  bool RemapPfns() {
    std::set<uint64_t> values;
    for (const Op& op : best_) {
      if ((op.kind == OpKind::kDevMap || op.kind == OpKind::kDevPagePut) && op.pfn > 0) {
        values.insert(op.pfn);
      }
    }
    bool changed = false;
    for (uint64_t v : values) {
      std::vector<Op> c = best_;
      for (Op& op : c) {
        if ((op.kind == OpKind::kDevMap || op.kind == OpKind::kDevPagePut) && op.pfn == v) --op.pfn;
      }
      changed |= Try(std::move(c));
    }
    return changed;
  }

  // (3d) Mirror and range ids are shared like pfns (mirror -> 1, then dread 1;
  // get_pfns -> 2, then commit 2): move one id everywhere at once, one down,
  // never below the first id, 1. Ids are not renumbered when their line is
  // deleted (neither are pids, pins or devmems); this move lets a later
  // reference fall onto an earlier line's id, after which the now unused line
  // can go.
  bool RemapIds(uint64_t Op::*field, bool (*uses)(OpKind)) {
    std::set<uint64_t> values;
    for (const Op& op : best_) {
      if (uses(op.kind) && op.*field > 1) values.insert(op.*field);
    }
    bool changed = false;
    for (uint64_t v : values) {
      std::vector<Op> c = best_;
      for (Op& op : c) {
        if (uses(op.kind) && op.*field == v) --(op.*field);
      }
      changed |= Try(std::move(c));
    }
    return changed;
  }

  static std::vector<uint64_t> AddrTargets(uint64_t v) {
    std::vector<uint64_t> out;
    auto add = [&](uint64_t t) {
      if (t != v && t < v) out.push_back(t);
    };
    add(kMmapBase);
    for (uint64_t k = 1; k <= 4; ++k) add(kMmapBase + k * kPageSize);
    if (v > kMmapBase) {
      add(kMmapBase + (((v - kMmapBase) / 2) & kPageMask));
      add(v - kPageSize);
    }
    return out;
  }

  // (3b) Each op's numbers, one field at a time; after an accepted change the
  // op's candidates are made afresh, so no later candidate undoes it.
  bool SimplifyNumbers() {
    bool changed = false;
    for (size_t i = 0; i < best_.size(); ++i) {
      if (IsSetupKind(best_[i].kind)) continue;
      bool accepted = true;
      while (accepted && i < best_.size()) {
        accepted = false;
        for (Op candidate : Candidates(best_[i])) {
          std::vector<Op> c = best_;
          c[i] = std::move(candidate);
          if (Try(std::move(c))) {
            accepted = changed = true;
            break;
          }
        }
      }
    }
    return changed;
  }

  // Candidate replacements of `op`, simplest first; each differs in one field
  // and moves it strictly toward its canonical value, so the loop ends.
  static std::vector<Op> Candidates(const Op& op) {
    Alternatives a(op);
    const OpKind k = op.kind;
    if (UsesPid(k) && op.pid > 1) a.With(&Op::pid, uint64_t{1});
    if (UsesCpuAddr(k) && op.addr > kMmapBase) {
      a.With(&Op::addr, kMmapBase);
      a.With(&Op::addr, op.addr & kPageMask);  // a write or read inside a page: its start
    }
    LengthCandidates(op, &a);
    DataCandidates(op, &a);
    const uint32_t rw = kProtRead | kProtWrite;
    if (k == OpKind::kMmap || k == OpKind::kMprotect || k == OpKind::kDevMap) {
      a.With(&Op::prot, rw);
    }
    if (k == OpKind::kMmap) a.With(&Op::flags, uint32_t{kMapPrivate | kMapFixed});
    if (k == OpKind::kMremap) a.With(&Op::flags, uint32_t{kMremapMaymove});
    if (k == OpKind::kMirror) a.With(&Op::device, uint64_t{0});
    if (k == OpKind::kDflags) a.With(&Op::flags, uint32_t{kDmirrorFlagFailAlloc});
    return a.Take();
  }

  // Byte lengths -> one page or half; counts (read bytes, pages) -> 1 or half.
  static void LengthCandidates(const Op& op, Alternatives* a) {
    switch (op.kind) {
      case OpKind::kMmap: case OpKind::kMunmap: case OpKind::kMprotect:
      case OpKind::kMadviseDontneed:
        if (op.len > kPageSize) {
          a->With(&Op::len, kPageSize);
          a->With(&Op::len, (op.len / 2) & kPageMask);
        }
        return;
      case OpKind::kRead: case OpKind::kPin: case OpKind::kGetPfns: case OpKind::kHmmFault:
      case OpKind::kDfault:
      case OpKind::kDread: case OpKind::kSnapshot: case OpKind::kMigrateToDev:
      case OpKind::kMigrateToSys:
        if (op.len > 1) {
          a->With(&Op::len, uint64_t{1});
          a->With(&Op::len, op.len / 2);
        }
        return;
      case OpKind::kMremap:
        if (op.len > kPageSize) a->With(&Op::len, kPageSize);
        if (op.new_len > kPageSize) a->With(&Op::new_len, kPageSize);
        return;
      default:
        return;
    }
  }

  // write: one byte 0x01, the first half, half as many 0x01s. dwrite, whose
  // data is whole pages: the same in pages.
  static void DataCandidates(const Op& op, Alternatives* a) {
    if (op.kind != OpKind::kWrite && op.kind != OpKind::kDwrite) return;
    const size_t unit = op.kind == OpKind::kWrite ? 1 : kPageSize;
    const std::vector<uint8_t> one(unit, 0x01);
    if (op.data != one) a->With(&Op::data, one);
    const size_t half = op.data.size() / unit / 2 * unit;
    if (half == 0) return;
    a->With(&Op::data, std::vector<uint8_t>(op.data.begin(),
                                            op.data.begin() + static_cast<std::ptrdiff_t>(half)));
    a->With(&Op::data, std::vector<uint8_t>(half, uint8_t{0x01}));
  }

  std::vector<Op> best_;
  const FailingPrefix& oracle_;
  ShrinkLimits limits_;
  ShrinkStats* stats_;
  Clock::time_point start_;
};

}  // namespace

std::vector<Op> ShrinkTrace(std::vector<Op> ops, const FailingPrefix& failing_prefix,
                            const ShrinkLimits& limits, ShrinkStats* stats) {
  ShrinkStats local;
  if (stats == nullptr) stats = &local;
  *stats = ShrinkStats{};
  if (ops.empty()) return ops;
  return Shrinker(std::move(ops), failing_prefix, limits, stats).Run();
}

std::vector<Op> ShrinkTrace(std::vector<Op> ops, const StillFails& still_fails,
                            const ShrinkLimits& limits, ShrinkStats* stats) {
  const FailingPrefix prefix = [&still_fails](const std::vector<Op>& c) -> size_t {
    return still_fails(c) ? c.size() : 0;
  };
  return ShrinkTrace(std::move(ops), prefix, limits, stats);
}

FailingPrefix SameFailurePrefix(const std::vector<Op>& original) {
  const std::string check = RunTrace(original).check;
  return [check](const std::vector<Op>& c) -> size_t {
    if (c.empty()) return 0;
    const RunReport r = RunTrace(c);
    if (r.ok || r.check != check) return 0;
    return r.failing_step;
  };
}

StillFails SameFailure(const std::vector<Op>& original) {
  FailingPrefix prefix = SameFailurePrefix(original);
  return [prefix](const std::vector<Op>& c) { return !c.empty() && prefix(c) == c.size(); };
}

}  // namespace hmm::props
