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

  static bool UsesCpuAddr(OpKind k) {
    switch (k) {
      case OpKind::kMmap: case OpKind::kMunmap: case OpKind::kMprotect:
      case OpKind::kMadviseDontneed: case OpKind::kRead: case OpKind::kWrite:
      case OpKind::kPin: case OpKind::kMremap: case OpKind::kDevMap:
        return true;
      default:
        return false;
    }
  }
  static bool UsesPid(OpKind k) { return UsesCpuAddr(k) || k == OpKind::kExit || k == OpKind::kFork; }

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
    std::vector<Op> out;
    auto with = [&](auto field, auto value) {
      Op c = op;
      if (c.*field == value) return;
      c.*field = value;
      out.push_back(std::move(c));
    };
    const OpKind k = op.kind;
    if (UsesPid(k) && op.pid > 1) with(&Op::pid, uint64_t{1});
    if (UsesCpuAddr(k)) {
      if (op.addr > kMmapBase) {
        with(&Op::addr, kMmapBase);
        with(&Op::addr, op.addr & kPageMask);  // a write or read inside a page: its start
      }
    }
    switch (k) {
      case OpKind::kMmap: case OpKind::kMunmap: case OpKind::kMprotect:
      case OpKind::kMadviseDontneed:
        if (op.len > kPageSize) {
          with(&Op::len, kPageSize);
          with(&Op::len, (op.len / 2) & kPageMask);
        }
        break;
      case OpKind::kRead:
        if (op.len > 1) { with(&Op::len, uint64_t{1}); with(&Op::len, op.len / 2); }
        break;
      case OpKind::kPin:
        if (op.len > 1) { with(&Op::len, uint64_t{1}); with(&Op::len, op.len / 2); }
        break;
      case OpKind::kMremap:
        if (op.len > kPageSize) with(&Op::len, kPageSize);
        if (op.new_len > kPageSize) with(&Op::new_len, kPageSize);
        break;
      default:
        break;
    }
    if (k == OpKind::kWrite) {
      const std::vector<uint8_t> one = {0x01};
      if (op.data != one) with(&Op::data, one);
      if (op.data.size() > 1) {
        with(&Op::data, std::vector<uint8_t>(op.data.begin(),
                                             op.data.begin() + static_cast<std::ptrdiff_t>(op.data.size() / 2)));
        with(&Op::data, std::vector<uint8_t>(op.data.size() / 2, uint8_t{0x01}));
      }
    }
    const uint32_t rw = kProtRead | kProtWrite;
    if (k == OpKind::kMmap || k == OpKind::kMprotect || k == OpKind::kDevMap) {
      with(&Op::prot, rw);
    }
    if (k == OpKind::kMmap) with(&Op::flags, uint32_t{kMapPrivate | kMapFixed});
    if (k == OpKind::kMremap) with(&Op::flags, uint32_t{kMremapMaymove});
    return out;
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
