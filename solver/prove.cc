// File: solver/prove.cc

#include "solver/prove.h"

#include <chrono>
#include <set>

namespace hmm::solver {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Appends the hypotheses of `core` to `used`, skipping the negated claim.
void CollectCore(const z3::expr_vector& core, const std::string& negated,
                 std::set<std::string>* used) {
  for (unsigned i = 0; i < core.size(); ++i) {
    const std::string name = core[i].decl().name().str();
    if (name != negated) used->insert(name);
  }
}

std::string JoinInOrder(const std::vector<Named>& hypotheses, const std::set<std::string>& used) {
  std::string out;
  for (const Named& h : hypotheses) {
    if (used.count(h.name) == 0) continue;
    out += out.empty() ? "" : "; ";
    out += h.name;
  }
  return out;
}

// The solver's "rlimit count" statistic: the resources its checks used.
uint64_t RlimitCount(const z3::solver& s) {
  const z3::stats st = s.statistics();
  for (unsigned i = 0; i < st.size(); ++i) {
    if (st.key(i) == "rlimit count" && st.is_uint(i)) return st.uint_value(i);
  }
  return 0;
}

}  // namespace

LemmaResult Prove(const std::string& name, const std::function<Goal(z3::context&)>& build) {
  LemmaResult result;
  result.name = name;
  result.rlimit = kLemmaRlimit;
  const auto start = std::chrono::steady_clock::now();
  try {
    z3::context c;
    const Goal goal = build(c);
    z3::solver s(c);
    s.set("rlimit", kLemmaRlimit);
    for (const Named& h : goal.hypotheses) s.add(h.holds, h.name.c_str());
    std::set<std::string> used;
    for (const Named& claim : goal.claims) {
      // Each claim in its own scope, so a failure names exactly one claim.
      const std::string negated = "not " + claim.name;
      s.push();
      s.add(!claim.holds, negated.c_str());
      const z3::check_result r = s.check();
      if (r == z3::sat) {
        result.status = LemmaStatus::kFailed;
        result.detail = "claim fails: " + claim.name;
        result.counterexample = goal.render(s.get_model());
        result.seconds = SecondsSince(start);
        return result;
      }
      if (r == z3::unknown) {
        result.status = LemmaStatus::kUnknown;
        result.detail = "claim " + claim.name + ": " + s.reason_unknown();
        result.seconds = SecondsSince(start);
        return result;
      }
      CollectCore(s.unsat_core(), negated, &used);
      s.pop();
    }
    result.status = LemmaStatus::kProved;
    result.detail = "rlimit count " + std::to_string(RlimitCount(s)) +
                    "; unsat cores use: " + JoinInOrder(goal.hypotheses, used);
  } catch (const z3::exception& e) {
    result.status = LemmaStatus::kError;
    result.detail = e.msg();
  }
  result.seconds = SecondsSince(start);
  return result;
}

z3::expr ForallWhere(const std::vector<z3::expr>& xs, const std::vector<z3::expr>& triggers,
                     const z3::expr& body) {
  z3::context& c = body.ctx();
  std::vector<Z3_app> bound;
  for (const z3::expr& x : xs) bound.push_back(Z3_to_app(c, x));
  std::vector<Z3_ast> terms(triggers.begin(), triggers.end());
  Z3_pattern pattern = Z3_mk_pattern(c, static_cast<unsigned>(terms.size()), terms.data());
  c.check_error();
  const z3::expr out(c, Z3_mk_forall_const(c, 0, static_cast<unsigned>(bound.size()), bound.data(),
                                           1, &pattern, body));
  c.check_error();
  return out;
}

}  // namespace hmm::solver
