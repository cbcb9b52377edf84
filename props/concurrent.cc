// File: props/concurrent.cc
//
// RunConcurrent (props/concurrent.h): the prologue through props/runner.h,
// the actors under impl::sched::ControlledScheduler, then the checks at the
// quiescent end. The printing is in concurrent_format.cc.

#include "props/concurrent.h"

#include <algorithm>
#include <mutex>
#include <sstream>
#include <utility>

#include "model/invariants.h"
#include "model/kernel.h"
#include "props/abstract.h"
#include "props/apply.h"
#include "props/model_query.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

namespace sched = impl::sched;

// The hazards the observer saw; actors' threads append, one at a time.
struct HazardLog {
  std::mutex lock;
  std::vector<impl::DeviceAccessHazard> hazards;  // guarded by lock
};

// Installs the observer that fills `log` for its lifetime.
class HazardObserver {
 public:
  HazardObserver(impl::Kernel& k, HazardLog& log) : k_(k) {
    k_.SetDeviceAccessObserver([&log](const impl::DeviceAccessHazard& h) {
      std::lock_guard<std::mutex> held(log.lock);
      log.hazards.push_back(h);
    });
  }
  ~HazardObserver() { k_.SetDeviceAccessObserver({}); }
  HazardObserver(const HazardObserver&) = delete;
  HazardObserver& operator=(const HazardObserver&) = delete;

 private:
  impl::Kernel& k_;
};

void Fail(ConcurrentReport* r, std::string check, std::vector<std::string> problems) {
  r->ok = false;
  r->check = std::move(check);
  r->problems = std::move(problems);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The OpBoundary names, "munmap.done", one per operation: the scheduler
// keeps the pointers until the run ends, so they live here, not in a temporary.
std::vector<std::vector<std::string>> BoundaryNames(const ConcurrentCase& c) {
  std::vector<std::vector<std::string>> names(c.actors.size());
  for (size_t a = 0; a < c.actors.size(); ++a) {
    for (const Op& op : c.actors[a].ops) names[a].push_back(OpName(op.kind) + ".done");
  }
  return names;
}

// The actors on their threads. Each operation: Invoke, the impl's call (it
// parks at the impl's yield points), Respond, then a park at its boundary.
// An actor with no operation is left out.
sched::SchedRun RunActors(const ConcurrentCase& c, const ConcurrentOptions& options,
                          impl::Kernel& k, HistoryRecorder& history) {
  const std::vector<std::vector<std::string>> names = BoundaryNames(c);
  sched::SchedOptions so;
  so.schedule = c.schedule;
  so.stuck_after = options.stuck_after;
  so.max_steps = options.max_sched_steps;
  sched::ControlledScheduler scheduler(so);
  for (size_t a = 0; a < c.actors.size(); ++a) {
    const ActorOps& actor = c.actors[a];
    if (actor.ops.empty()) continue;
    scheduler.AddActor(actor.name, [&actor, &k, &history, &names, a] {
      for (size_t i = 0; i < actor.ops.size(); ++i) {
        const size_t token = history.Invoke(static_cast<int>(a), actor.ops[i]);
        const OpResult result = Apply(k, actor.ops[i]);
        history.Respond(token, result);
        sched::OpBoundary(names[a][i].c_str());
      }
    });
  }
  return scheduler.Run();
}

// Checks 2-3: hazards seen, how the run ended.
bool CheckRun(ConcurrentReport* r) {
  if (!r->hazards.empty()) {
    std::vector<std::string> problems;
    for (const impl::DeviceAccessHazard& h : r->hazards) {
      problems.push_back(FormatHazard(h, r->profile));
    }
    Fail(r, "InvMirrorSubsetOfCpu", std::move(problems));
    return false;
  }
  if (!r->run.completed()) {
    std::vector<std::string> problems = Lines(r->run.finding);
    problems.insert(problems.begin(), std::string("the run ended in ") +
                                          sched::RunOutcomeName(r->run.outcome));
    Fail(r, sched::RunOutcomeName(r->run.outcome), std::move(problems));
    return false;
  }
  return true;
}

// The impl's state at the quiescent end, abstracted and canonical, with the
// id counters the abstraction leaves at zero raised past every id in use
// (the impl does not expose its counters; DiffStates ignores them).
model::State ImplState(const impl::Kernel& k) {
  model::State s = model::Canonicalize(Abstract(k));
  auto past = [](uint64_t* next, uint64_t id) { *next = std::max(*next, id + 1); };
  for (const auto& entry : s.procs) past(&s.next_pid, entry.first.value);
  for (const auto& entry : s.pins) past(&s.next_pin, entry.first.value);
  for (const auto& entry : s.devmems) past(&s.next_devmem, entry.first);
  for (const model::DeviceEvent& e : s.events) past(&s.next_devmem, e.devmem);
  for (const auto& entry : s.ranges) past(&s.next_range, entry.first);
  for (const auto& entry : s.mirrors) {
    past(&s.next_mirror, entry.first);
    past(&s.next_pid, entry.second.pid.value);
  }
  return s;
}

// "" when the model state `m` is the impl's (canonical) state, else the differences.
std::string StateDifference(const model::Kernel& m, const model::State& impl_state) {
  std::string text;
  for (const std::string& line : DiffStates(ForgetRaceResidue(m.state()), impl_state)) {
    text += "\n    " + line;
  }
  return text.empty() ? "" : "the impl's final state differs:" + text;
}

// Checks 4-6 at the quiescent end: the representation invariant, the named
// invariants on the impl's state, a linearization that ends in that state.
void CheckQuiescent(const ConcurrentCase& c, const impl::Kernel& k,
                    const ConcurrentOptions& options, ConcurrentReport* r) {
  std::vector<std::string> rep = k.RepInvariant();
  if (!rep.empty()) return Fail(r, "rep", std::move(rep));
  const model::State impl_state = ImplState(k);
  std::vector<std::string> violations =
      model::CheckAllInvariants(impl_state, CaseConfig(c).ram_pages);
  if (!violations.empty()) {
    const std::string name = violations.front().substr(0, violations.front().find(':'));
    return Fail(r, name, std::move(violations));
  }
  if (options.tamper_history_for_test) options.tamper_history_for_test(&r->history);
  const model::State compared = ForgetRaceResidue(impl_state);
  const LinearizeResult lin = LinearizeRun(
      c.prologue, r->history,
      [&compared](const model::Kernel& m) { return StateDifference(m, compared); },
      options.linearize);
  if (!lin.ok && lin.budget_exhausted) {
    r->undecided = true;
    return;
  }
  if (!lin.ok) return Fail(r, "linearizable", Lines(lin.explanation));
  r->linearization = lin.order;
}

// The actors' part of RunConcurrent, on `k` after the prologue.
void RunAndCheck(const ConcurrentCase& c, const ConcurrentOptions& options, impl::Kernel& k,
                 ConcurrentReport* r) {
  HistoryRecorder history;
  HazardLog log;
  {
    HazardObserver observer(k, log);
    // An actor's exception (never Aborted) propagates once every actor has
    // exited: rapidcheck reports it as the property's failure.
    r->run = RunActors(c, options, k, history);
  }
  r->history = history.Completed();
  r->steps += r->history.size();
  r->hazards = log.hazards;
  if (!CheckRun(r)) return;
  CheckQuiescent(c, k, options, r);
}

}  // namespace

Config CaseConfig(const ConcurrentCase& c) {
  Config config;
  for (const Op& op : c.prologue) {
    if (!IsSetupKind(op.kind)) break;
    ApplySetup(op, &config);
  }
  return config;
}

size_t ActorOpCount(const ConcurrentCase& c) {
  size_t n = 0;
  for (const ActorOps& a : c.actors) n += a.ops.size();
  return n;
}

size_t BusyActorCount(const ConcurrentCase& c) {
  size_t n = 0;
  for (const ActorOps& a : c.actors) n += a.ops.empty() ? 0 : 1;
  return n;
}

bool IsDeviceOp(OpKind k) {
  return k == OpKind::kDread || k == OpKind::kDwrite || k == OpKind::kSnapshot ||
         k == OpKind::kDfault || k == OpKind::kMigrateToDev || k == OpKind::kMigrateToSys;
}

bool OverlapInTime(const HistoryOp& a, const HistoryOp& b) {
  return &a != &b && a.actor != b.actor && a.invoke < b.respond && b.invoke < a.respond;
}

bool TouchSamePages(const Op& a, const Op& b) {
  if (a.kind == OpKind::kFork || b.kind == OpKind::kFork) return true;
  uint64_t a_first, a_end, b_first, b_end;
  return OpRange(a, &a_first, &a_end) && OpRange(b, &b_first, &b_end) && a_first < b_end &&
         b_first < a_end;
}

ConcurrentReport RunConcurrent(const ConcurrentCase& c, const ConcurrentOptions& options) {
  ConcurrentReport r;
  const Config config = CaseConfig(c);
  r.profile = config.profile;
  r.prologue = RunTrace(c.prologue);
  r.steps = r.prologue.steps_run;
  if (!r.prologue.ok) {
    std::vector<std::string> problems = r.prologue.problems;
    problems.insert(problems.begin(), "step " + std::to_string(r.prologue.failing_step) +
                                          " of the prologue fails check '" + r.prologue.check +
                                          "'");
    Fail(&r, "prologue", std::move(problems));
    return r;
  }
  impl::Kernel k(config);
  for (const Op& op : c.prologue) Apply(k, op);  // set-up lines are no-ops here
  RunAndCheck(c, options, k, &r);
  return r;
}

}  // namespace hmm::props
