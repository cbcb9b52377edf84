// File: bench/devmem_bench.cc
//
// Device-memory figures, each beside a bound measured in the same run on the
// same machine (docs/devmem.md; impl/devmem.h):
//   - HmmDevmemAdd + HmmDevmemRemove of 1 GiB (128 MiB sections) against
//     writing npages = 262144 kernel-sized (64-byte) struct pages, the least
//     the kernel's memmap_init_zone_device() does for the same region;
//   - the same region with every page allocated (DevicePageAlloc x npages,
//     which populates the on-demand memmap) against the same bound;
//   - metadata bytes per device page, every page allocated, against the
//     kernel's 64-byte struct page.
// After the Google Benchmark table, a "ratios" block prints each figure over
// its bound.
//
//   bazel run -c opt //bench:devmem_bench

#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "impl/kernel.h"

namespace hmm::bench {
namespace {

constexpr uint64_t kRegionBytes = uint64_t{1} << 30;
constexpr uint64_t kRegionPages = kRegionBytes / kPageSize;
constexpr uint64_t kKernelStructPage = 64;  // sizeof(struct page) on x86-64

void BM_StructPageInitBound(benchmark::State& state) {
  std::vector<uint8_t> memmap(kRegionPages * kKernelStructPage);
  for (auto _ : state) {
    std::memset(memmap.data(), 0, memmap.size());
    benchmark::DoNotOptimize(memmap.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_HmmDevmemAddRemove1G(benchmark::State& state) {
  impl::Kernel k;  // the default Config: 128 MiB sections, placement above 2^46
  for (auto _ : state) {
    Result<uint64_t> id = k.HmmDevmemAdd(DeviceId(1), kRegionBytes);
    if (!id.ok() || k.HmmDevmemRemove(id.value) != Errno::kOk) {
      state.SkipWithError("add or remove failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_HmmDevmemAddAllocEveryPage1G(benchmark::State& state) {
  double metadata = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto k = std::make_unique<impl::Kernel>();
    state.ResumeTiming();
    uint64_t id = k->HmmDevmemAdd(DeviceId(1), kRegionBytes).value;
    for (uint64_t i = 0; i < kRegionPages; ++i) {
      if (!k->DevicePageAlloc(id).ok()) state.SkipWithError("alloc failed");
    }
    state.PauseTiming();
    metadata = k->MetadataBytesPerDevicePage();
    k.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["metadata_bytes_per_page"] = metadata;
  state.counters["kernel_struct_page_bytes"] = kKernelStructPage;
}

BENCHMARK(BM_StructPageInitBound)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HmmDevmemAddRemove1G)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HmmDevmemAddAllocEveryPage1G)->Unit(benchmark::kMillisecond);

// Records items/s (regions/s here) of every run so main() can print ratios.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      auto it = run.counters.find("items_per_second");
      if (it != run.counters.end()) items_per_second_[run.benchmark_name()] = it->second;
      auto md = run.counters.find("metadata_bytes_per_page");
      if (md != run.counters.end()) metadata_ = md->second;
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void PrintRatios() const {
    auto ns = [&](const char* name) {
      auto it = items_per_second_.find(name);
      return it == items_per_second_.end() || it->second == 0 ? 0.0 : 1e9 / it->second;
    };
    double bound = ns("BM_StructPageInitBound");
    double add = ns("BM_HmmDevmemAddRemove1G");
    double every = ns("BM_HmmDevmemAddAllocEveryPage1G");
    std::cout << "\nratios (figure / bound measured in this run)\n";
    std::cout << "  HmmDevmemAdd+Remove 1 GiB: " << add << " ns = " << (bound ? add / bound : 0)
              << " x writing " << kRegionPages << " 64-byte struct pages (" << bound
              << " ns; the memmap is populated on demand)\n";
    std::cout << "  HmmDevmemAdd 1 GiB + DevicePageAlloc of every page: " << every << " ns = "
              << (bound ? every / bound : 0) << " x the same bound ("
              << every / static_cast<double>(kRegionPages) << " ns per page)\n";
    std::cout << "  metadata per device page (every page allocated): " << metadata_
              << " bytes = " << metadata_ / kKernelStructPage << " x the kernel's "
              << kKernelStructPage << "-byte struct page\n";
  }

 private:
  std::map<std::string, double> items_per_second_;
  double metadata_ = 0;
};

}  // namespace
}  // namespace hmm::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  hmm::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
