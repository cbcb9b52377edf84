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

#include "bench/ratio_reporter.h"
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

void PrintRatios(const RatioReporter& r) {
  double bound = r.NsPerItem("BM_StructPageInitBound");
  double add = r.NsPerItem("BM_HmmDevmemAddRemove1G");
  double every = r.NsPerItem("BM_HmmDevmemAddAllocEveryPage1G");
  double metadata = r.Counter("BM_HmmDevmemAddAllocEveryPage1G", "metadata_bytes_per_page");
  std::cout << "\nratios (figure / bound measured in this run)\n";
  std::cout << "  HmmDevmemAdd+Remove 1 GiB: " << add << " ns = " << (bound ? add / bound : 0)
            << " x writing " << kRegionPages << " 64-byte struct pages (" << bound
            << " ns; the memmap is populated on demand)\n";
  std::cout << "  HmmDevmemAdd 1 GiB + DevicePageAlloc of every page: " << every << " ns = "
            << (bound ? every / bound : 0) << " x the same bound ("
            << every / static_cast<double>(kRegionPages) << " ns per page)\n";
  std::cout << "  metadata per device page (every page allocated): " << metadata << " bytes = "
            << metadata / kKernelStructPage << " x the kernel's " << kKernelStructPage
            << "-byte struct page\n";
}

}  // namespace
}  // namespace hmm::bench

int main(int argc, char** argv) {
  return hmm::bench::RunWithRatios(argc, argv, &hmm::bench::PrintRatios);
}
