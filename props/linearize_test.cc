// File: props/linearize_test.cc
//
// The linearizability checker (props/linearize.h) on hand-made histories:
// a sequential history linearizes; overlapping operations whose results fit
// one order only find that order; an impossible result is rejected with an
// explanation; real-time order is never given up; the final check picks
// among orders; and generated histories of 12 operations over 3 actors
// (interleaved at random, or all overlapping one another), linearizable by
// construction, are accepted, and rejected once one result is corrupted,
// within a bounded number of configurations (counted, never timed).

#include "props/linearize.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "props/apply.h"
#include "props/trace.h"

namespace hmm::props {
namespace {

constexpr uint64_t kBase = kMmapBase;

Op Line(const std::string& text) {
  std::vector<Op> ops;
  std::string error;
  EXPECT_TRUE(ParseTrace(text, "test", &ops, &error)) << error;
  EXPECT_EQ(ops.size(), 1u) << text;
  return ops.empty() ? Op{} : ops[0];
}

std::vector<Op> Lines(const std::vector<std::string>& texts) {
  std::vector<Op> ops;
  for (const std::string& t : texts) ops.push_back(Line(t));
  return ops;
}

OpResult Ok(uint64_t value = 0) {
  OpResult r;
  r.value = value;
  return r;
}

OpResult Bytes(const std::vector<uint8_t>& data) {
  OpResult r;
  r.data = data;
  return r;
}

HistoryOp At(int actor, uint64_t invoke, uint64_t respond, const std::string& line,
             const OpResult& result) {
  HistoryOp h;
  h.actor = actor;
  h.invoke = invoke;
  h.respond = respond;
  h.op = Line(line);
  h.result = result;
  return h;
}

// One process with one private read-write page at kBase.
std::vector<Op> OnePage() {
  return Lines({"process", "mmap 1 0 0x1000 rw private"});
}

const std::string kWriteAb = "write 1 0x10000000 \"ab\"";
const std::string kRead2 = "read 1 0x10000000 2";

TEST(Linearize, SequentialHistoryLinearizesInItsOrder) {
  LinearizeInput in;
  in.history = {
      At(0, 1, 2, "process", Ok(1)),
      At(0, 3, 4, "mmap 1 0 0x1000 rw private", Ok(kBase)),
      At(0, 5, 6, kWriteAb, Ok()),
      At(0, 7, 8, kRead2, Bytes({'a', 'b'})),
  };
  LinearizeResult r = CheckLinearizable(in);
  ASSERT_TRUE(r.ok) << r.explanation;
  EXPECT_EQ(r.order, (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(r.final_state.procs.size(), 1u);
}

TEST(Linearize, OverlappingOpsFindTheOnlyOrderTheirResultsAllow) {
  // Two overlapping `process` calls: the one invoked first got pid 2.
  LinearizeInput in;
  in.history = {At(0, 1, 4, "process", Ok(2)), At(1, 2, 3, "process", Ok(1))};
  LinearizeResult r = CheckLinearizable(in);
  ASSERT_TRUE(r.ok) << r.explanation;
  EXPECT_EQ(r.order, (std::vector<size_t>{1, 0}));

  // A read overlapping a write: "ab" means the write came first, zeros that
  // it came after.
  in.setup = OnePage();
  in.history = {At(0, 1, 4, kRead2, Bytes({'a', 'b'})), At(1, 2, 3, kWriteAb, Ok())};
  r = CheckLinearizable(in);
  ASSERT_TRUE(r.ok) << r.explanation;
  EXPECT_EQ(r.order, (std::vector<size_t>{1, 0}));
  in.history[0].result = Bytes({0, 0});
  r = CheckLinearizable(in);
  ASSERT_TRUE(r.ok) << r.explanation;
  EXPECT_EQ(r.order, (std::vector<size_t>{0, 1}));
}

TEST(Linearize, ImpossibleResultIsRejectedWithAnExplanation) {
  LinearizeInput in;
  in.setup = OnePage();
  in.history = {At(0, 1, 4, kRead2, Bytes({'z', 'z'})), At(1, 2, 3, kWriteAb, Ok())};
  LinearizeResult r = CheckLinearizable(in);
  ASSERT_FALSE(r.ok);
  EXPECT_FALSE(r.budget_exhausted);
  EXPECT_EQ(r.longest_prefix, (std::vector<size_t>{1}));
  const std::string& e = r.explanation;
  EXPECT_NE(e.find("not linearizable"), std::string::npos) << e;
  EXPECT_NE(e.find("#0 actor 0 [1, 4] read 1 0x10000000 0x2 -> ok hex:7a7a"), std::string::npos) << e;
  EXPECT_NE(e.find("longest linearizable prefix (1 of 2): #1"), std::string::npos) << e;
  EXPECT_NE(e.find("#0 read 1 0x10000000 0x2: impl returned ok hex:7a7a"), std::string::npos) << e;
  EXPECT_NE(e.find("the model gives ok hex:6162"), std::string::npos) << e;
}

TEST(Linearize, RealTimeOrderIsRespected) {
  // The read's zeros fit only before the write, but the write responded
  // before the read was invoked.
  LinearizeInput in;
  in.setup = OnePage();
  in.history = {At(0, 1, 2, kWriteAb, Ok()), At(1, 3, 4, kRead2, Bytes({0, 0}))};
  LinearizeResult r = CheckLinearizable(in);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.longest_prefix, (std::vector<size_t>{0}));
  EXPECT_NE(r.explanation.find("#1 read 1 0x10000000 0x2: impl returned ok hex:0000, the model gives ok hex:6162"), std::string::npos)
      << r.explanation;
  // Listed the other way round, the read still may not come first.
  std::swap(in.history[0], in.history[1]);
  EXPECT_FALSE(CheckLinearizable(in).ok);
  // Once the two overlap, the same results linearize: read, then write.
  in.history = {At(0, 1, 3, kWriteAb, Ok()), At(1, 2, 4, kRead2, Bytes({0, 0}))};
  r = CheckLinearizable(in);
  ASSERT_TRUE(r.ok) << r.explanation;
  EXPECT_EQ(r.order, (std::vector<size_t>{1, 0}));
}

TEST(Linearize, FinalCheckChoosesAmongOrders) {
  LinearizeInput in;
  in.setup = OnePage();
  in.history = {At(0, 1, 4, "write 1 0x10000000 \"a\"", Ok()),
                At(1, 2, 3, "write 1 0x10000000 \"b\"", Ok())};
  in.final_check = [](const model::Kernel& k) -> std::string {
    auto r = model::Kernel(k).CpuRead(Pid(1), kBase, 1);
    return r.ok() && r.value == std::vector<uint8_t>{'a'} ? "" : "the impl's page holds 'a'";
  };
  LinearizeResult r = CheckLinearizable(in);
  ASSERT_TRUE(r.ok) << r.explanation;
  EXPECT_EQ(r.order, (std::vector<size_t>{1, 0}));
  in.final_check = [](const model::Kernel&) { return std::string("never"); };
  r = CheckLinearizable(in);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.longest_prefix.size(), 2u);
  EXPECT_NE(r.explanation.find("final check rejects: never"), std::string::npos)
      << r.explanation;
}

TEST(Linearize, CallerMayRelaxTheResultComparison) {
  LinearizeInput in;
  in.setup = OnePage();
  in.history = {At(0, 1, 2, kRead2, Bytes({0, 0}))};
  in.history[0].result.faults = 3;  // say, extra rounds a concurrent run needed
  EXPECT_FALSE(CheckLinearizable(in).ok);
  in.same_result = [](const Op&, const OpResult& model, const OpResult& impl) {
    OpResult relaxed = impl;
    relaxed.faults = model.faults;
    return relaxed == model;
  };
  EXPECT_TRUE(CheckLinearizable(in).ok);
}

TEST(Linearize, EachEntryMayStandForOneOfItsAlternatives) {
  // Eight writes of 'a' or 'b', each recorded as 'a' with the other byte
  // as its alternative, then a read that saw "b": the last write before the
  // read must have been 'b'. Each entry's choice is independent of the
  // others (256 combinations), and the search tries them as it goes.
  LinearizeInput in;
  in.setup = OnePage();
  const std::string write_a = "write 1 0x10000000 \"a\"";
  for (uint64_t i = 0; i < 8; ++i) in.history.push_back(At(0, 2 * i + 1, 2 * i + 2, write_a, Ok()));
  in.history.push_back(At(0, 17, 18, "read 1 0x10000000 1", Bytes({'b'})));
  EXPECT_FALSE(CheckLinearizable(in).ok);
  in.alternatives.resize(in.history.size());
  in.alternatives[3] = {Line(write_a), Line("write 1 0x10000000 \"b\"")};
  LinearizeResult r = CheckLinearizable(in);
  EXPECT_FALSE(r.ok) << "a 'b' four writes before the read is overwritten";
  EXPECT_NE(r.explanation.find("longest linearizable prefix (8 of 9)"), std::string::npos)
      << r.explanation;
  EXPECT_NE(r.explanation.find("impl returned ok hex:62, the model gives ok hex:61"),
            std::string::npos)
      << r.explanation;
  in.alternatives[7] = in.alternatives[3];
  r = CheckLinearizable(in);
  ASSERT_TRUE(r.ok) << r.explanation;
  ASSERT_EQ(r.chosen.size(), 9u);
  EXPECT_EQ(r.chosen[7], 1u);  // the last write stood for 'b'
  EXPECT_LE(r.configurations, 9u * 2u);
}

TEST(Linearize, MalformedHistoryIsRefused) {
  LinearizeInput in;
  in.history = {At(0, 3, 3, "process", Ok(1))};
  LinearizeResult r = CheckLinearizable(in);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.explanation.find("malformed history: #0 responds at 3"), std::string::npos)
      << r.explanation;
}

TEST(Linearize, RecorderKeepsCompletedOpsInRealTime) {
  HistoryRecorder rec;
  const size_t a = rec.Invoke(0, Line("process"));
  const size_t b = rec.Invoke(1, Line("process"));
  rec.Respond(b, Ok(1));
  const size_t c = rec.Invoke(1, Line("process"));
  rec.Respond(a, Ok(2));
  (void)c;  // still pending: left out
  std::vector<HistoryOp> h = rec.Completed();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].invoke, 1u);
  EXPECT_EQ(h[0].respond, 5u);
  EXPECT_EQ(h[1].invoke, 2u);
  EXPECT_EQ(h[1].respond, 3u);
  LinearizeInput in;
  in.history = h;
  EXPECT_TRUE(CheckLinearizable(in).ok);
}

// --- Generated histories: 3 actors x 4 operations on shared and own pages ---

// Actor a's k-th operation: writes and reads of its own page and of a byte
// every actor shares, so that most pairs do not commute.
Op ActorOp(int a, int k, std::mt19937& rng) {
  const uint64_t own = kBase + (1 + a) * kPageSize;
  const std::string shared = "0x10000000";
  const std::string value = std::to_string(rng() % 3);
  switch ((k + a) % 4) {
    case 0: return Line("write 1 " + shared + " hex:0" + value);
    case 1: return Line("read 1 " + shared + " 1");
    case 2: return Line("write 1 " + std::to_string(own) + " hex:0" + value);
    default: return Line("read 1 " + std::to_string(own) + " 1");
  }
}

// A random run: each actor invokes, takes effect, responds, op after op, the
// three interleaved at random; results come from the model at the effect.
std::vector<HistoryOp> GenerateHistory(std::mt19937& rng, model::Kernel k) {
  constexpr int kActors = 3;
  constexpr int kOps = 4;
  std::vector<HistoryOp> h;
  int next[kActors] = {0, 0, 0};
  int phase[kActors] = {0, 0, 0};  // 0: invoke next, 1: take effect, 2: respond
  size_t current[kActors] = {0, 0, 0};
  uint64_t clock = 0;
  for (int left = kActors * kOps * 3; left > 0; --left) {
    int a = static_cast<int>(rng() % kActors);
    while (next[a] == kOps) a = (a + 1) % kActors;
    if (phase[a] == 0) {
      current[a] = h.size();
      h.push_back(HistoryOp{a, ++clock, 0, ActorOp(a, next[a], rng), OpResult{}});
    } else if (phase[a] == 1) {
      h[current[a]].result = Apply(k, h[current[a]].op);
    } else {
      h[current[a]].respond = ++clock;
      ++next[a];
    }
    phase[a] = (phase[a] + 1) % 3;
  }
  return h;
}

TEST(Linearize, TwelveOpsOfThreeActorsCheckInFewConfigurations) {
  std::mt19937 rng(2024);
  const std::vector<Op> setup = Lines({"process", "mmap 1 0 0x4000 rw private"});
  LinearizeInput probe;
  probe.setup = setup;
  for (int round = 0; round < 40; ++round) {
    model::Kernel k(Config{});
    for (const Op& op : setup) Apply(k, op);
    LinearizeInput in;
    in.setup = setup;
    in.history = GenerateHistory(rng, k);
    ASSERT_EQ(in.history.size(), 12u);
    LinearizeResult r = CheckLinearizable(in);
    ASSERT_TRUE(r.ok) << r.explanation;
    EXPECT_LT(r.configurations, 5000u);
    // Corrupt the last read: no order can give a byte no write wrote.
    for (auto e = in.history.rbegin(); e != in.history.rend(); ++e) {
      if (e->op.kind != OpKind::kRead) continue;
      e->result.data = {0x7f};
      break;
    }
    r = CheckLinearizable(in);
    ASSERT_FALSE(r.ok);
    EXPECT_FALSE(r.budget_exhausted);
    EXPECT_LT(r.configurations, 5000u);

  }
}

// The worst shape: all 12 operations overlap one another, so any of 12!
// orders respects real time. The memo keeps both answers bounded.
TEST(Linearize, TwelveMutuallyOverlappingOpsStayBounded) {
  std::mt19937 rng(99);
  const std::vector<Op> setup = Lines({"process", "mmap 1 0 0x4000 rw private"});
  for (int round = 0; round < 5; ++round) {
    model::Kernel k(Config{});
    for (const Op& op : setup) Apply(k, op);
    LinearizeInput in;
    in.setup = setup;
    for (int i = 0; i < 12; ++i) {
      const int a = i % 3;
      in.history.push_back(HistoryOp{a, uint64_t(1 + i), uint64_t(13 + i), ActorOp(a, i / 3, rng),
                                     OpResult{}});
    }
    // The results of one random order.
    std::vector<size_t> order = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t i : order) in.history[i].result = Apply(k, in.history[i].op);
    LinearizeResult r = CheckLinearizable(in);
    ASSERT_TRUE(r.ok) << r.explanation;
    in.history[order.back()].result.err = Errno::kFault;  // fits no order
    r = CheckLinearizable(in);
    ASSERT_FALSE(r.ok);
    EXPECT_FALSE(r.budget_exhausted);
    EXPECT_LT(r.configurations, 100000u);
  }
}

TEST(Linearize, BudgetBoundsTheSearch) {
  std::mt19937 rng(7);
  const std::vector<Op> setup = Lines({"process", "mmap 1 0 0x4000 rw private"});
  model::Kernel k(Config{});
  for (const Op& op : setup) Apply(k, op);
  LinearizeInput in;
  in.setup = setup;
  in.history = GenerateHistory(rng, k);
  in.history.back().result.err = Errno::kNoMem;  // impossible: forces the full search
  LinearizeOptions options;
  options.max_configurations = 3;
  LinearizeResult r = CheckLinearizable(in, options);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.budget_exhausted);
  EXPECT_NE(r.explanation.find("undecided"), std::string::npos) << r.explanation;
}

}  // namespace
}  // namespace hmm::props
