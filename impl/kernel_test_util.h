// File: impl/kernel_test_util.h
//
// Small helpers shared by the impl/ operation tests.

#ifndef HMMREF_IMPL_KERNEL_TEST_UTIL_H_
#define HMMREF_IMPL_KERNEL_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "impl/kernel.h"
#include "model/types.h"

namespace hmm::impl::test_util {

constexpr uint32_t kRW = kProtRead | kProtWrite;
constexpr uint64_t kPage = kPageSize;

// The name of a test parameterized over both semantics profiles.
inline std::string ProfileParamName(const ::testing::TestParamInfo<Profile>& info) {
  return info.param == Profile::kV18 ? "V18" : "Default";
}

inline std::string Join(const std::vector<std::string>& lines) {
  std::string s;
  for (const std::string& l : lines) s += l + "\n";
  return s;
}

// Every step of these tests ends with the representation invariant intact.
#define EXPECT_REP_OK(k)                                                  \
  do {                                                                    \
    std::vector<std::string> rep_ = (k).RepInvariant();                   \
    EXPECT_TRUE(rep_.empty()) << ::hmm::impl::test_util::Join(rep_);      \
  } while (0)

inline std::vector<uint8_t> Fill(uint64_t n, uint8_t v) { return std::vector<uint8_t>(n, v); }

inline std::optional<PteInfo> PteAt(const Kernel& k, Pid pid, uint64_t addr) {
  for (const PteInfo& p : k.Ptes(pid)) {
    if (p.vpn == addr / kPage) return p;
  }
  return std::nullopt;
}

inline uint64_t MapOrDie(Kernel& k, Pid pid, uint64_t npages, uint32_t prot, uint32_t flags) {
  Result<uint64_t> r = k.Mmap(pid, 0, npages * kPage, prot, flags);
  EXPECT_TRUE(r.ok()) << ErrnoName(r.err);
  return r.value;
}

// --- Device-private memory (docs/devmem.md) ---

inline DeviceEventInfo PageFree(uint64_t devmem, uint64_t pfn) {
  DeviceEventInfo e;
  e.devmem = devmem;
  e.pfn = pfn;
  return e;
}

inline DeviceEventInfo Fault(uint64_t devmem, uint64_t pfn, Pid pid, uint64_t addr) {
  DeviceEventInfo e = PageFree(devmem, pfn);
  e.fault = true;
  e.pid = pid.value;
  e.addr = addr;
  return e;
}

// "free(devmem,pfn) fault(devmem,pfn,pid,addr) ...": readable when a test fails.
inline std::string Show(const std::vector<DeviceEventInfo>& events) {
  std::string s;
  for (const DeviceEventInfo& e : events) {
    s += e.fault ? "fault(" : "free(";
    s += std::to_string(e.devmem) + "," + std::to_string(e.pfn);
    if (e.fault) s += "," + std::to_string(e.pid) + "," + std::to_string(e.addr);
    s += ") ";
  }
  return s;
}

inline std::string Events(const Kernel& k) { return Show(k.DeviceEvents()); }

}  // namespace hmm::impl::test_util

#endif  // HMMREF_IMPL_KERNEL_TEST_UTIL_H_
