// File: cli/output.h
//
// How hmmref prints: aligned text tables, compact numbers and durations, and
// the live progress line (one `\r`-rewritten line on stderr, shown only on a
// terminal). Nothing here knows about suites or lemmas.

#ifndef HMMREF_CLI_OUTPUT_H_
#define HMMREF_CLI_OUTPUT_H_

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace hmm::cli {

// A plain-text table: a header row, then rows; columns are separated by two
// spaces, text columns are left-aligned, numeric ones right-aligned.
//   suite  sequences  steps  steps/s  result
//   cpu          200   6123    41.2k  passed
class Table {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    std::string title;
    Align align = Align::kLeft;
  };

  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
  // REQUIRES: cells.size() == number of columns.
  void AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  bool empty() const { return rows_.empty(); }
  // Every line ends in '\n'; trailing spaces are trimmed.
  std::string Render() const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// "950", "12.3k", "4.57M": three significant digits from 10000 up.
std::string FormatCount(double n);
// "0.004s", "1.25s", "42.1s", "3m07s".
std::string FormatSeconds(double seconds);
// Events per second, as FormatCount; "-" when no time has passed.
std::string FormatRate(uint64_t events, double seconds);

// The live progress line. Disabled (every call a no-op) unless `enabled`;
// callers pass `isatty(2) && !quiet`. Update() rewrites the line at most
// every 100 ms unless `force`; Clear() erases it so ordinary output follows.
class ProgressLine {
 public:
  ProgressLine(std::ostream& err, bool enabled) : err_(err), enabled_(enabled) {}
  ~ProgressLine() { Clear(); }

  void Update(const std::string& text, bool force = false);
  void Clear();

 private:
  std::ostream& err_;
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace hmm::cli

#endif  // HMMREF_CLI_OUTPUT_H_
