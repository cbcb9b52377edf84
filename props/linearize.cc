// File: props/linearize.cc
//
// Wing & Gong's linearizability search with Lowe's memoization over the
// model (props/linearize.h). Depends on the model and the trace language
// only, never on impl/: the history's results are data.

#include "props/linearize.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "props/apply.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

// Everything a result holds, printed as props/runner.h FormatResult does
// (kept here so that this target needs no impl).
std::string ResultText(const OpResult& r) {
  Expect e;
  if (r.value != 0) e.value = r.value;
  if (r.cpages != 0 || r.faults != 0) {
    e.cpages = r.cpages;
    e.faults = r.faults;
  }
  if (!r.data.empty()) e.data = r.data;
  const std::string text = FormatOutcome(e);  // "ok ..."
  return r.err == Errno::kOk ? text : ErrnoName(r.err) + text.substr(2);
}

std::string OpText(Op op) {
  op.expect.reset();
  return FormatOp(op);
}

std::string ActorName(int actor, const std::vector<std::string>& names) {
  if (actor >= 0 && static_cast<size_t>(actor) < names.size()) return names[actor];
  return "actor " + std::to_string(actor);
}

// The model before the history: the set-up lines' Config, then the set-up
// operations applied in order.
model::Kernel InitialKernel(const std::vector<Op>& setup) {
  Config config;
  size_t i = 0;
  for (; i < setup.size() && IsSetupKind(setup[i].kind); ++i) ApplySetup(setup[i], &config);
  model::Kernel k(config);
  for (; i < setup.size(); ++i) Apply(k, setup[i]);
  return k;
}

constexpr uint64_t Bit(size_t i) { return uint64_t{1} << i; }

// Does the model's result for `op` (entry `e`'s or an alternative) explain
// what the impl returned?
bool Explains(const LinearizeInput& in, const Op& op, const HistoryOp& e, const OpResult& model) {
  return in.same_result ? in.same_result(op, model, e.result) : model == e.result;
}

// Per entry, the operations it may stand for: its alternatives, else its op.
std::vector<std::vector<Op>> EntryOps(const LinearizeInput& in) {
  std::vector<std::vector<Op>> ops;
  for (size_t i = 0; i < in.history.size(); ++i) {
    const bool given = i < in.alternatives.size() && !in.alternatives[i].empty();
    ops.push_back(given ? in.alternatives[i] : std::vector<Op>{in.history[i].op});
  }
  return ops;
}

// The earliest response among the operations not yet linearized: an
// operation invoked after it may not come next.
uint64_t MinPendingResponse(const std::vector<HistoryOp>& h, uint64_t done) {
  uint64_t min = UINT64_MAX;
  for (size_t i = 0; i < h.size(); ++i) {
    if ((done & Bit(i)) == 0) min = std::min(min, h[i].respond);
  }
  return min;
}

class Search {
 public:
  Search(const LinearizeInput& in, const LinearizeOptions& options, LinearizeResult* out)
      : in_(in), h_(in.history), ops_(EntryOps(in)), options_(options), out_(out) {
    all_ = h_.size() == 64 ? ~uint64_t{0} : Bit(h_.size()) - 1;
    for (size_t i = 0; i < h_.size(); ++i) by_invoke_.push_back(i);
    std::stable_sort(by_invoke_.begin(), by_invoke_.end(),
                     [&](size_t a, size_t b) { return h_[a].invoke < h_[b].invoke; });
  }

  // Depth first from model `k` with the set `done` linearized.
  bool Dfs(const model::Kernel& k, uint64_t done) {
    if (done == all_) return Accept(k);
    if (Seen(done, k.state())) return false;
    if (++out_->configurations > options_.max_configurations) {
      out_->budget_exhausted = true;
      return false;
    }
    const uint64_t min_respond = MinPendingResponse(h_, done);
    for (size_t i : by_invoke_) {
      if (h_[i].invoke > min_respond) break;
      if ((done & Bit(i)) != 0) continue;
      if (TryEntry(k, done, i)) return true;
      if (out_->budget_exhausted) return false;
    }
    return false;
  }

  const std::string& final_reason() const { return final_reason_; }
  // The alternatives of LinearizeResult::longest_prefix, parallel to it.
  const std::vector<size_t>& longest_chosen() const { return longest_chosen_; }
  // Per entry, the operations it may stand for (EntryOps).
  const std::vector<std::vector<Op>>& entry_ops() const { return ops_; }

 private:
  // Linearizes entry `i` next, as each operation it may stand for in turn.
  bool TryEntry(const model::Kernel& k, uint64_t done, size_t i) {
    const std::vector<Op>& ops = ops_[i];
    for (size_t a = 0; a < ops.size(); ++a) {
      model::Kernel next = k;
      ++out_->applied;
      if (!Explains(in_, ops[a], h_[i], Apply(next, ops[a]))) continue;
      order_.push_back(i);
      chosen_.push_back(a);
      if (order_.size() > out_->longest_prefix.size()) {
        out_->longest_prefix = order_;
        longest_chosen_ = chosen_;
      }
      if (Dfs(next, done | Bit(i))) return true;
      order_.pop_back();
      chosen_.pop_back();
      if (out_->budget_exhausted) return false;
    }
    return false;
  }

  bool Accept(const model::Kernel& k) {
    if (in_.final_check) {
      std::string reason = in_.final_check(k);
      if (!reason.empty()) {
        final_reason_ = std::move(reason);
        return false;
      }
    }
    out_->order = order_;
    out_->chosen = chosen_;
    out_->final_state = k.state();
    return true;
  }

  // Lowe's memo: true when (done, state) was expanded before; else records it.
  bool Seen(uint64_t done, const model::State& s) {
    std::vector<model::State>& states = memo_[done];
    for (const model::State& t : states) {
      if (t == s) return true;
    }
    states.push_back(s);
    return false;
  }

  const LinearizeInput& in_;
  const std::vector<HistoryOp>& h_;
  const std::vector<std::vector<Op>> ops_;
  const LinearizeOptions& options_;
  LinearizeResult* out_;
  uint64_t all_ = 0;
  std::vector<size_t> by_invoke_;
  std::map<uint64_t, std::vector<model::State>> memo_;
  std::vector<size_t> order_;
  std::vector<size_t> chosen_;  // parallel to order_
  std::vector<size_t> longest_chosen_;
  std::string final_reason_;
};

std::string IndexList(const std::vector<size_t>& order) {
  if (order.empty()) return "(none)";
  std::string s;
  for (size_t i : order) s += (s.empty() ? "#" : ", #") + std::to_string(i);
  return s;
}

// After the longest prefix (entries as the alternatives `chosen`): each
// operation that may come next, as each operation it may stand for, with
// what the model gives beside what the impl returned.
std::string NextSteps(const LinearizeInput& in, const std::vector<std::vector<Op>>& ops,
                      const std::vector<size_t>& prefix,
                      const std::vector<size_t>& chosen) {
  const std::vector<HistoryOp>& h = in.history;
  model::Kernel k = InitialKernel(in.setup);
  uint64_t done = 0;
  for (size_t n = 0; n < prefix.size(); ++n) {
    Apply(k, ops[prefix[n]][chosen[n]]);
    done |= Bit(prefix[n]);
  }
  const uint64_t min_respond = MinPendingResponse(h, done);
  std::ostringstream os;
  os << "after it, each operation that may come next (no pending one responded before it was "
        "invoked):\n";
  for (size_t i = 0; i < h.size(); ++i) {
    if ((done & Bit(i)) != 0 || h[i].invoke > min_respond) continue;
    for (const Op& op : ops[i]) {
      model::Kernel next = k;
      os << "  #" << i << " " << OpText(op) << ": impl returned " << ResultText(h[i].result)
         << ", the model gives " << ResultText(Apply(next, op)) << "\n";
    }
  }
  return os.str();
}

std::string Explain(const LinearizeInput& in, const LinearizeResult& r, const Search& search) {
  const std::string& final_reason = search.final_reason();
  const size_t n = in.history.size();
  std::ostringstream os;
  if (r.budget_exhausted) {
    os << "undecided: the search stopped after " << r.configurations << " configurations\n";
  } else {
    os << "not linearizable: no order of the " << n
       << " operations that respects real time reproduces every result the impl returned\n";
  }
  os << "history (#index actor [invoke, respond] operation -> impl's result):\n"
     << FormatHistory(in.history);
  os << "longest linearizable prefix (" << r.longest_prefix.size() << " of " << n
     << "): " << IndexList(r.longest_prefix) << "\n";
  if (r.longest_prefix.size() == n) {
    os << "every complete order found ends in a model state the final check rejects: "
       << final_reason << "\n";
  } else {
    os << NextSteps(in, search.entry_ops(), r.longest_prefix, search.longest_chosen());
  }
  return os.str();
}

// A history the search cannot take: "" when it can.
std::string Malformed(const std::vector<HistoryOp>& h) {
  if (h.size() > kMaxHistoryOps) {
    return std::to_string(h.size()) + " operations: at most " + std::to_string(kMaxHistoryOps);
  }
  for (size_t i = 0; i < h.size(); ++i) {
    if (h[i].respond <= h[i].invoke) {
      return "#" + std::to_string(i) + " responds at " + std::to_string(h[i].respond) +
             ", not after its invocation at " + std::to_string(h[i].invoke);
    }
  }
  return "";
}

}  // namespace

LinearizeResult CheckLinearizable(const LinearizeInput& input, const LinearizeOptions& options) {
  LinearizeResult result;
  const std::string malformed = Malformed(input.history);
  if (!malformed.empty()) {
    result.explanation = "malformed history: " + malformed + "\n";
    return result;
  }
  Search search(input, options, &result);
  result.ok = search.Dfs(InitialKernel(input.setup), 0);
  if (!result.ok) result.explanation = Explain(input, result, search);
  return result;
}

std::string FormatHistory(const std::vector<HistoryOp>& history,
                          const std::vector<std::string>& names,
                          const std::function<std::string(const OpResult&)>& result_text) {
  std::ostringstream os;
  for (size_t i = 0; i < history.size(); ++i) {
    const HistoryOp& e = history[i];
    os << "  #" << i << " " << ActorName(e.actor, names) << " [" << e.invoke << ", " << e.respond
       << "] " << OpText(e.op) << " -> "
       << (result_text ? result_text(e.result) : ResultText(e.result)) << "\n";
  }
  return os.str();
}

size_t HistoryRecorder::Invoke(int actor, const Op& op) {
  std::lock_guard<std::mutex> l(lock_);
  HistoryOp e;
  e.actor = actor;
  e.invoke = ++clock_;
  e.op = op;
  entries_.push_back(std::move(e));
  done_.push_back(false);
  return entries_.size() - 1;
}

void HistoryRecorder::Respond(size_t token, const OpResult& result) {
  std::lock_guard<std::mutex> l(lock_);
  entries_[token].respond = ++clock_;
  entries_[token].result = result;
  done_[token] = true;
}

std::vector<HistoryOp> HistoryRecorder::Completed() const {
  std::lock_guard<std::mutex> l(lock_);
  std::vector<HistoryOp> out;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (done_[i]) out.push_back(entries_[i]);
  }
  return out;
}

}  // namespace hmm::props
