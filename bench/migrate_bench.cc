// File: bench/migrate_bench.cc
//
// Migration figures, each beside a bound measured in the same run on the same
// machine (docs/migrate.md; impl/migrate.h):
//   - throughput: 64K pages of 4 KiB (256 MiB, every page written) migrated to
//     the dummy device and back (DmirrorMigrateRange both ways: collect,
//     migration entries, the copy engine, the struct-page move, finalize)
//     against memcpy of the same bytes (256 MiB each way). Target: >= 0.5 x
//     memcpy's rate.
//   - latency of a CPU fault on a device-private page: a one-byte CpuRead that
//     migrates its page back (migrate_to_ram), against a 4 KiB memcpy and
//     against a first-touch read fault of an anonymous page (no migration).
// After the Google Benchmark table, a "ratios" block prints each figure over
// its bound.
//
//   bazel run -c opt //bench:migrate_bench

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench/ratio_reporter.h"
#include "impl/kernel.h"

namespace hmm::bench {
namespace {

constexpr uint64_t kMigratePages = uint64_t{1} << 16;
constexpr uint64_t kMigrateBytes = kMigratePages * kPageSize;
constexpr uint64_t kFaultPages = 64;  // pages faulted back per timed batch

// A kernel sized for `pages` resident pages, a process with `pages` pages
// mapped private and written (a byte pattern per page), and one mirror of it
// on device 0. Returns the mapping's address (0 on failure).
uint64_t Populate(impl::Kernel& k, uint64_t pages, uint64_t* mirror) {
  const Pid pid = k.CreateProcess().value;
  const uint64_t len = pages * kPageSize;
  const uint64_t addr = k.Mmap(pid, 0, len, kProtRead | kProtWrite, kMapPrivate).value;
  std::vector<uint8_t> chunk(impl::kMaxAccess);
  for (uint64_t off = 0; off < len; off += chunk.size()) {
    for (uint64_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<uint8_t>((off + i) >> 12);
    if (k.CpuWrite(pid, addr + off, chunk) != Errno::kOk) return 0;
  }
  Result<uint64_t> m = k.HmmMirrorRegister(DeviceId(0), pid);
  if (!m.ok()) return 0;
  *mirror = m.value;
  return addr;
}

Config BenchConfig(uint64_t ram_pages) {
  Config config;
  config.ram_pages = ram_pages;
  return config;
}

void BM_MemcpyBound(benchmark::State& state) {
  std::vector<uint8_t> from(kMigrateBytes, 0x5a);
  std::vector<uint8_t> to(kMigrateBytes);
  for (auto _ : state) {
    std::memcpy(to.data(), from.data(), kMigrateBytes);
    benchmark::DoNotOptimize(to.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kMigrateBytes);
}

void BM_MigrateRoundTrip64K(benchmark::State& state) {
  impl::Kernel k(BenchConfig(kMigratePages));
  uint64_t mirror = 0;
  const uint64_t addr = Populate(k, kMigratePages, &mirror);
  if (addr == 0) state.SkipWithError("set-up failed");
  for (auto _ : state) {
    Result<uint64_t> to_dev = k.DmirrorMigrateRange(mirror, addr, kMigratePages, true);
    Result<uint64_t> to_sys = k.DmirrorMigrateRange(mirror, addr, kMigratePages, false);
    if (to_dev.value != kMigratePages || to_sys.value != kMigratePages) {
      state.SkipWithError("not every page moved");
      break;
    }
  }
  state.SetBytesProcessed(state.iterations() * 2 * kMigrateBytes);
}

void BM_Memcpy4KBound(benchmark::State& state) {
  std::vector<uint8_t> from(kPageSize, 0x5a);
  std::vector<uint8_t> to(kPageSize);
  for (auto _ : state) {
    std::memcpy(to.data(), from.data(), kPageSize);
    benchmark::DoNotOptimize(to.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

// Times kFaultPages one-byte reads; before each batch (untimed) the pages are
// made device-resident (migrate) or unpopulated (madvise).
void TimeFaultBatches(benchmark::State& state, bool device) {
  impl::Kernel k(BenchConfig(4 * kFaultPages));
  uint64_t mirror = 0;
  const uint64_t addr = Populate(k, kFaultPages, &mirror);
  if (addr == 0) state.SkipWithError("set-up failed");
  const Pid pid(1);
  for (auto _ : state) {
    state.PauseTiming();
    const bool ready = device ? k.DmirrorMigrateRange(mirror, addr, kFaultPages, true).value ==
                                    kFaultPages
                              : k.MadviseDontneed(pid, addr, kFaultPages * kPageSize) ==
                                    Errno::kOk;
    if (!ready) state.SkipWithError("set-up of a batch failed");
    state.ResumeTiming();
    for (uint64_t i = 0; i < kFaultPages; ++i) {
      if (!k.CpuRead(pid, addr + i * kPageSize, 1).ok()) state.SkipWithError("read failed");
    }
  }
  state.SetItemsProcessed(state.iterations() * kFaultPages);
}

void BM_FaultDevicePage(benchmark::State& state) { TimeFaultBatches(state, true); }
void BM_FaultFirstTouchBound(benchmark::State& state) { TimeFaultBatches(state, false); }

BENCHMARK(BM_MemcpyBound)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MigrateRoundTrip64K)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Memcpy4KBound)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_FaultDevicePage)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FaultFirstTouchBound)->Unit(benchmark::kMicrosecond);

void PrintRatios(const RatioReporter& r) {
  const double memcpy_bps = r.Counter("BM_MemcpyBound", "bytes_per_second");
  const double migrate_bps = r.Counter("BM_MigrateRoundTrip64K", "bytes_per_second");
  std::cout << "\nratios (figure / bound measured in this run)\n";
  std::cout << "  migration of " << kMigratePages << " pages to the device and back: "
            << migrate_bps / 1e9 << " GB/s = " << (memcpy_bps ? migrate_bps / memcpy_bps : 0)
            << " x memcpy of the same bytes (" << memcpy_bps / 1e9 << " GB/s; target >= 0.5)\n";
  const double fault = r.NsPerItem("BM_FaultDevicePage");
  const double copy = r.NsPerItem("BM_Memcpy4KBound");
  const double touch = r.NsPerItem("BM_FaultFirstTouchBound");
  std::cout << "  CPU fault on a device-private page (migrate one page back): " << fault
            << " ns = " << (copy ? fault / copy : 0) << " x a 4 KiB memcpy (" << copy
            << " ns), " << (touch ? fault / touch : 0)
            << " x a first-touch anonymous read fault (" << touch << " ns)\n";
}

}  // namespace
}  // namespace hmm::bench

int main(int argc, char** argv) {
  return hmm::bench::RunWithRatios(argc, argv, &hmm::bench::PrintRatios);
}
