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

}  // namespace hmm::impl::test_util

#endif  // HMMREF_IMPL_KERNEL_TEST_UTIL_H_
