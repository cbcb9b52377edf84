// File: bench/mirror_bench.cc
//
// Mirroring figures, each beside a bound measured in the same run on the same
// machine (docs/mirror.md; impl/mirror.h):
//   - snapshot throughput: HmmVmaGetPfns + HmmVmaRangeDone over 2^20
//     populated pages (a 4 GiB private mapping, every page read once so each
//     PTE maps the zero page) against a plain scan of 2^20 8-byte entries
//     (sum of a vector: read only) and a scan that also writes one converted
//     8-byte entry per input (what a snapshot must at least do). Target: the
//     snapshot runs at >= 0.3 x the plain scan's rate.
//   - invalidation cost: mprotect of 512 pages that 0, 1, 4 or 16 mirrors of
//     the process all map (each mirror re-reads the range through the dummy
//     device before every timed mprotect, outside the timing), against the
//     same mprotect with no mirror.
// After the Google Benchmark table, a "ratios" block prints each figure over
// its bound.
//
//   bazel run -c opt //bench:mirror_bench

#include <iostream>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench/ratio_reporter.h"
#include "impl/kernel.h"

namespace hmm::bench {
namespace {

constexpr uint64_t kSnapshotPages = uint64_t{1} << 20;
constexpr uint64_t kInvalidatePages = 512;

void BM_ScanBound(benchmark::State& state) {
  std::vector<uint64_t> entries(kSnapshotPages);
  std::iota(entries.begin(), entries.end(), 1);
  for (auto _ : state) {
    uint64_t sum = std::accumulate(entries.begin(), entries.end(), uint64_t{0});
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kSnapshotPages);
}

void BM_ScanConvertBound(benchmark::State& state) {
  std::vector<uint64_t> entries(kSnapshotPages);
  std::iota(entries.begin(), entries.end(), 1);
  std::vector<uint64_t> out(kSnapshotPages);
  for (auto _ : state) {
    for (uint64_t i = 0; i < kSnapshotPages; ++i) {
      const uint64_t e = entries[i];
      out[i] = (e & 1) ? ((e >> 12) << kHmmPfnShift) | kHmmPfnValid : kHmmPfnEmpty;
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kSnapshotPages);
}

// A process with `pages` pages mapped private and read once (zero-page PTEs),
// and `mirrors` mirrors of it; returns the mapping's address.
uint64_t Populate(impl::Kernel& k, uint64_t pages, uint64_t mirrors, std::vector<uint64_t>* ids) {
  const Pid pid = k.CreateProcess().value;
  const uint64_t addr = k.Mmap(pid, 0, pages * kPageSize, kProtRead | kProtWrite, kMapPrivate).value;
  for (uint64_t off = 0; off < pages * kPageSize; off += impl::kMaxAccess) {
    if (!k.CpuRead(pid, addr + off, impl::kMaxAccess).ok()) return 0;
  }
  for (uint64_t m = 0; m < mirrors; ++m) {
    ids->push_back(k.HmmMirrorRegister(DeviceId(m % kMaxDevices), pid).value);
  }
  return addr;
}

void BM_SnapshotGetPfns(benchmark::State& state) {
  impl::Kernel k;
  std::vector<uint64_t> mirrors;
  const uint64_t addr = Populate(k, kSnapshotPages, 1, &mirrors);
  if (addr == 0 || mirrors.empty()) state.SkipWithError("set-up failed");
  for (auto _ : state) {
    Result<uint64_t> range = k.HmmVmaGetPfns(mirrors[0], addr, kSnapshotPages);
    if (!range.ok() || !k.HmmVmaRangeDone(range.value).ok()) {
      state.SkipWithError("snapshot failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kSnapshotPages);
}

void BM_InvalidateMprotect(benchmark::State& state) {
  const uint64_t nmirrors = static_cast<uint64_t>(state.range(0));
  impl::Kernel k;
  std::vector<uint64_t> mirrors;
  const uint64_t addr = Populate(k, kInvalidatePages, nmirrors, &mirrors);
  const Pid pid(1);
  uint32_t prot = kProtRead;
  for (auto _ : state) {
    state.PauseTiming();
    for (uint64_t m : mirrors) {
      if (!k.DmirrorRead(m, addr, kInvalidatePages).ok()) state.SkipWithError("dread failed");
    }
    state.ResumeTiming();
    if (k.Mprotect(pid, addr, kInvalidatePages * kPageSize, prot) != Errno::kOk) {
      state.SkipWithError("mprotect failed");
    }
    prot ^= kProtWrite;  // alternate r and rw, so every call changes the VMA
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_ScanBound)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ScanConvertBound)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SnapshotGetPfns)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_InvalidateMprotect)->Arg(0)->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMicrosecond);

void PrintRatios(const RatioReporter& r) {
  const double scan = r.NsPerItem("BM_ScanBound");
  const double convert = r.NsPerItem("BM_ScanConvertBound");
  const double snap = r.NsPerItem("BM_SnapshotGetPfns");
  std::cout << "\nratios (figure / bound measured in this run)\n";
  std::cout << "  snapshot of " << kSnapshotPages << " populated pages: " << snap
            << " ns/page = " << (snap ? scan / snap : 0) << " x the rate of a plain scan ("
            << scan << " ns/entry; target >= 0.3), " << (snap ? convert / snap : 0)
            << " x a scan that writes converted entries (" << convert << " ns/entry)\n";
  const double none = r.NsPerItem("BM_InvalidateMprotect/0");
  for (const char* n : {"1", "4", "16"}) {
    const double t = r.NsPerItem(std::string("BM_InvalidateMprotect/") + n);
    std::cout << "  mprotect of " << kInvalidatePages << " mirrored pages, " << n
              << " mirror(s): " << t << " ns = " << (none ? t / none : 0)
              << " x the same mprotect with no mirror (" << none << " ns)\n";
  }
}

}  // namespace
}  // namespace hmm::bench

int main(int argc, char** argv) {
  return hmm::bench::RunWithRatios(argc, argv, &hmm::bench::PrintRatios);
}
