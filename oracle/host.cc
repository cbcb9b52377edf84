// File: oracle/host.cc
//
// The guest runner's run notation for bytes, shared by the lowering
// (oracle/lower.cc) and the comparison (oracle/compare.cc); oracle/host.h.

#include "oracle/host.h"

#include <cstdlib>
#include <sstream>

namespace hmm::oracle {

// Bytes in the runner's run notation: "5a*24576" for 8 or more equal bytes,
// hex otherwise, joined by ','.
std::string Runs(const std::vector<uint8_t>& d) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out, raw;
  auto flush = [&] {
    if (raw.empty()) return;
    out += (out.empty() ? "" : ",") + raw;
    raw.clear();
  };
  for (size_t i = 0; i < d.size();) {
    size_t j = i;
    while (j < d.size() && d[j] == d[i]) ++j;
    if (j - i >= 8) {
      flush();
      out += std::string(out.empty() ? "" : ",") + kDigits[d[i] >> 4] + kDigits[d[i] & 15] + "*" +
             std::to_string(j - i);
    } else {
      for (size_t k = i; k < j; ++k) raw += std::string(1, kDigits[d[k] >> 4]) + kDigits[d[k] & 15];
    }
    i = j;
  }
  flush();
  return out;
}

std::vector<uint8_t> FromRuns(const std::string& s) {
  std::vector<uint8_t> out;
  std::stringstream in(s);
  std::string seg;
  while (std::getline(in, seg, ',')) {
    size_t star = seg.find('*');
    if (star != std::string::npos) {
      out.insert(out.end(), std::strtoull(seg.c_str() + star + 1, nullptr, 10),
                 static_cast<uint8_t>(std::strtoul(seg.substr(0, star).c_str(), nullptr, 16)));
      continue;
    }
    for (size_t i = 0; i + 1 < seg.size(); i += 2) {
      out.push_back(static_cast<uint8_t>(std::strtoul(seg.substr(i, 2).c_str(), nullptr, 16)));
    }
  }
  return out;
}

std::string ShortData(const std::vector<uint8_t>& data) {
  if (data.empty()) return "hex:";
  bool uniform = true;
  for (uint8_t b : data) uniform = uniform && b == data[0];
  if (uniform && data.size() >= 8) return "fill:" + Hex(data[0]) + "*" + std::to_string(data.size());
  if (data.size() <= 32) {
    std::string s = "hex:";
    for (uint8_t b : data) s += Hex(b + 0x100).substr(3);
    return s;
  }
  std::string runs = Runs(data);
  if (runs.size() > 72) runs = runs.substr(0, 72) + "...";
  return "runs:" + runs + " (" + std::to_string(data.size()) + " bytes)";
}

}  // namespace hmm::oracle
