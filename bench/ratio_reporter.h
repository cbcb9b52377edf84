// File: bench/ratio_reporter.h
//
// Every figure in bench/ is printed beside a bound measured in the same run.
// RatioReporter is Google Benchmark's console reporter that also remembers
// each run's items/s and user counters, so that a program's "ratios" block
// can divide one by the other after the table; RunWithRatios is the main().

#ifndef HMMREF_BENCH_RATIO_REPORTER_H_
#define HMMREF_BENCH_RATIO_REPORTER_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace hmm::bench {

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      for (const auto& [name, counter] : run.counters) {
        counters_[run.benchmark_name()][name] = counter.value;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }

  // A run's counter (e.g. "items_per_second"); 0 when the run or counter is absent.
  double Counter(const std::string& run, const std::string& counter) const {
    auto r = counters_.find(run);
    if (r == counters_.end()) return 0;
    auto c = r->second.find(counter);
    return c == r->second.end() ? 0 : c->second;
  }

  double ItemsPerSecond(const std::string& run) const { return Counter(run, "items_per_second"); }

  // Nanoseconds per item, from items/s; 0 when absent.
  double NsPerItem(const std::string& run) const {
    double ips = ItemsPerSecond(run);
    return ips == 0 ? 0 : 1e9 / ips;
  }

 private:
  std::map<std::string, std::map<std::string, double>> counters_;
};

// Runs the registered benchmarks, then `print_ratios` with what they reported.
inline int RunWithRatios(int argc, char** argv,
                         const std::function<void(const RatioReporter&)>& print_ratios) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_ratios(reporter);
  benchmark::Shutdown();
  return 0;
}

}  // namespace hmm::bench

#endif  // HMMREF_BENCH_RATIO_REPORTER_H_
