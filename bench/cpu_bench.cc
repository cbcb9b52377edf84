// File: bench/cpu_bench.cc
//
// CPU-side figures, each beside a bound measured in the same run on the same
// machine (never a timed unit test):
//   - refinement-checked steps/s of the CPU suite's traces, against the same
//     traces run in lock step with only the results compared (the cost of the
//     abstraction, rep-invariant and model-invariant checks);
//   - CPU write-fault latency (allocate, zero, map, store) against memset of
//     one 4 KiB page (the least a demand-zero fault can cost);
//   - metadata bytes per mapped page against the kernel's 64-byte struct page.
// After the Google Benchmark table, a "ratios" block prints each figure over
// its bound.

#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <rapidcheck.h>

#include "bench/ratio_reporter.h"
#include "impl/kernel.h"
#include "props/generators.h"
#include "props/runner.h"

namespace hmm::bench {
namespace {

using props::Op;

const std::vector<std::vector<Op>>& Traces() {
  static const std::vector<std::vector<Op>> traces = [] {
    std::vector<std::vector<Op>> out;
    for (uint64_t seed = 1; seed <= 100; ++seed) {
      std::vector<Op> ops = props::GenCpuPrologue()(rc::Random(seed), 0).value();
      std::vector<Op> body = props::GenCpuTrace(60)(rc::Random(seed + 1000), 60).value();
      ops.insert(ops.end(), body.begin(), body.end());
      out.push_back(std::move(ops));
    }
    return out;
  }();
  return traces;
}

void RunTraces(benchmark::State& state, bool check_states) {
  props::RunOptions options;
  options.check_states = check_states;
  int64_t steps = 0;
  for (auto _ : state) {
    for (const std::vector<Op>& ops : Traces()) {
      props::RunReport r = props::RunTrace(ops, options);
      if (!r.ok) state.SkipWithError("a trace failed: the impl disagrees with the model");
      steps += static_cast<int64_t>(r.steps_run);
    }
  }
  state.SetItemsProcessed(steps);
}

void BM_RefinementCheckedSteps(benchmark::State& state) { RunTraces(state, true); }
void BM_LockstepResultsOnly(benchmark::State& state) { RunTraces(state, false); }

constexpr uint64_t kFaultPages = 256;

void BM_Memset4K(benchmark::State& state) {
  std::vector<uint8_t> page(kPageSize);
  for (auto _ : state) {
    std::memset(page.data(), 0, page.size());
    benchmark::DoNotOptimize(page.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_CpuWriteFault(benchmark::State& state) {
  impl::Kernel k(4 * kFaultPages);
  Pid pid = k.CreateProcess().value;
  const std::vector<uint8_t> byte = {0x5a};
  double metadata = 0;
  for (auto _ : state) {
    uint64_t base = k.Mmap(pid, 0, kFaultPages * kPageSize, kProtRead | kProtWrite, kMapPrivate).value;
    for (uint64_t i = 0; i < kFaultPages; ++i) {
      if (k.CpuWrite(pid, base + i * kPageSize, byte) != Errno::kOk) state.SkipWithError("fault failed");
    }
    state.PauseTiming();
    metadata = k.MetadataBytesPerMappedPage();
    if (k.Munmap(pid, base, kFaultPages * kPageSize) != Errno::kOk) state.SkipWithError("munmap failed");
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kFaultPages);
  state.counters["metadata_bytes_per_page"] = metadata;
  state.counters["kernel_struct_page_bytes"] = 64;
}

BENCHMARK(BM_RefinementCheckedSteps)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LockstepResultsOnly)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Memset4K);
BENCHMARK(BM_CpuWriteFault)->Unit(benchmark::kMicrosecond);

void PrintRatios(const RatioReporter& r) {
  double checked = r.ItemsPerSecond("BM_RefinementCheckedSteps");
  double lockstep = r.ItemsPerSecond("BM_LockstepResultsOnly");
  double fault_ns = r.NsPerItem("BM_CpuWriteFault");
  double memset_ns = r.NsPerItem("BM_Memset4K");
  double metadata = r.Counter("BM_CpuWriteFault", "metadata_bytes_per_page");
  std::cout << "\nratios (figure / bound measured in this run)\n";
  std::cout << "  refinement-checked steps/s: " << checked << " = "
            << (lockstep ? checked / lockstep : 0) << " x results-only lock step (" << lockstep
            << " steps/s); target >= 20000 steps/s\n";
  std::cout << "  write-fault latency: " << fault_ns << " ns = "
            << (memset_ns ? fault_ns / memset_ns : 0) << " x memset of 4 KiB (" << memset_ns
            << " ns)\n";
  std::cout << "  metadata per mapped page: " << metadata << " bytes = " << metadata / 64
            << " x the kernel's 64-byte struct page\n";
}

}  // namespace
}  // namespace hmm::bench

int main(int argc, char** argv) {
  return hmm::bench::RunWithRatios(argc, argv, &hmm::bench::PrintRatios);
}
