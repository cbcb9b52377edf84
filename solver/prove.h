// File: solver/prove.h
//
// The prove() idiom every lemma uses (after Z3's examples/c++/example.cpp
// prove()), and the registry entry every *_lemmas.cc contributes. Internal to
// //solver:lemmas.

#ifndef HMMREF_SOLVER_PROVE_H_
#define HMMREF_SOLVER_PROVE_H_

#include <z3++.h>

#include <functional>
#include <string>
#include <vector>

#include "solver/lemma.h"

namespace hmm::solver {

// A fact under the name it is tracked by (s.add(e, name)): an unsat core names
// the hypotheses a proof used, and a sat check names the claim that failed.
struct Named {
  std::string name;
  z3::expr holds;
};

// What a lemma hands to Prove(). Hypotheses are asserted once, each tracked;
// each claim is then checked in its own push()/pop() scope by asserting its
// negation and expecting unsat. `render` prints a sat model as one
// "field = value" line per field.
struct Goal {
  std::vector<Named> hypotheses;
  std::vector<Named> claims;
  std::function<std::string(const z3::model&)> render;
};

// The deterministic resource budget of each check() (Z3's "rlimit"). The PTE
// lemmas use well under a tenth of it; see solver/README.md.
constexpr unsigned kLemmaRlimit = 2'000'000;

// The prove() idiom: builds the goal in a fresh context, then for each claim
// asserts its negation and checks. Returns kProved if every negation is unsat
// (`detail` lists the unsat cores' hypotheses), kFailed at the first sat claim
// (`detail` names it, `counterexample` holds the rendered model), kUnknown if Z3
// gives up (`detail` holds its reason), kError on a z3::exception. Never throws.
LemmaResult Prove(const std::string& name, const std::function<Goal(z3::context&)>& build);

// A registry entry: a lemma and its negative control (the same claim over a
// deliberately broken variant, expected kFailed).
struct LemmaWithControl {
  Lemma lemma;
  Lemma control;
};

// The one place a negative control breaks a family of lemmas that takes a
// `Steps` variant (MirrorSteps, MigrateSteps): a flag and what setting it means.
template <class Steps>
struct Break {
  bool Steps::*flag = nullptr;
  const char* name = "";
};

// The entry of lemma `name`: `run` over Steps::Real(), and its control
// "<name>NegativeControl": `run` over a copy with `broken`'s flag set.
template <class Steps>
LemmaWithControl EntryWithBreak(const std::string& name, const std::string& statement,
                                const std::string& invariant,
                                const std::function<LemmaResult(const Steps&)>& run,
                                const Break<Steps>& broken) {
  Steps steps = Steps::Real();
  steps.name = broken.name;
  steps.*broken.flag = true;
  const std::string control = name + "NegativeControl";
  return {{name, statement, invariant, [run] { return run(Steps::Real()); }},
          {control, statement + " Negative control over " + steps.name + "; must fail.", invariant,
           [run, steps, control] {
             LemmaResult r = run(steps);
             r.name = control;
             return r;
           }}};
}

// forall xs. body, instantiated wherever the terms `triggers` (over xs) all
// appear (one multi-pattern).
z3::expr ForallWhere(const std::vector<z3::expr>& xs, const std::vector<z3::expr>& triggers,
                     const z3::expr& body);

}  // namespace hmm::solver

#endif  // HMMREF_SOLVER_PROVE_H_
