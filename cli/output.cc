// File: cli/output.cc

#include "cli/output.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace hmm::cli {
namespace {

std::string Printf(const char* format, double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

std::string Pad(const std::string& cell, size_t width, Table::Align align) {
  std::string fill(width - cell.size(), ' ');
  return align == Table::Align::kLeft ? cell + fill : fill + cell;
}

}  // namespace

std::string Table::Render() const {
  std::vector<size_t> width(columns_.size());
  for (size_t c = 0; c < columns_.size(); ++c) width[c] = columns_[c].title.size();
  for (const auto& row : rows_) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  auto render_line = [&](const std::vector<std::string>& cells, bool header) {
    std::string line;
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c > 0) line += "  ";
      line += Pad(cells[c], width[c], header ? Align::kLeft : columns_[c].align);
    }
    line.erase(line.find_last_not_of(' ') + 1);
    return line + "\n";
  };
  std::vector<std::string> titles;
  for (const Column& column : columns_) titles.push_back(column.title);
  std::string out = render_line(titles, /*header=*/true);
  for (const auto& row : rows_) out += render_line(row, /*header=*/false);
  return out;
}

std::string FormatCount(double n) {
  if (n < 10000) return Printf("%.0f", n);
  if (n < 1e6) return Printf(n < 1e5 ? "%.1fk" : "%.0fk", n / 1e3);
  if (n < 1e9) return Printf(n < 1e7 ? "%.2fM" : n < 1e8 ? "%.1fM" : "%.0fM", n / 1e6);
  return Printf("%.3gG", n / 1e9);
}

std::string FormatSeconds(double seconds) {
  if (seconds < 0.1) return Printf("%.3fs", seconds);
  if (seconds < 10) return Printf("%.2fs", seconds);
  if (seconds < 60) return Printf("%.1fs", seconds);
  auto whole = static_cast<uint64_t>(std::lround(seconds));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llum%02llus", static_cast<unsigned long long>(whole / 60),
                static_cast<unsigned long long>(whole % 60));
  return buf;
}

std::string FormatRate(uint64_t events, double seconds) {
  if (seconds <= 0) return "-";
  return FormatCount(static_cast<double>(events) / seconds);
}

void ProgressLine::Update(const std::string& text, bool force) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && shown_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  shown_ = true;
  // "\x1b[K" erases what a longer previous text left to the right.
  err_ << '\r' << text << "\x1b[K" << std::flush;
}

void ProgressLine::Clear() {
  if (!enabled_ || !shown_) return;
  err_ << "\r\x1b[K" << std::flush;
  shown_ = false;
}

}  // namespace hmm::cli
