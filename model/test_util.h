// File: model/test_util.h
//
// Small helpers shared by the model's unit tests: a kernel with one process,
// mapping shorthands, and the "all invariants hold" check run after each test.

#ifndef HMMREF_MODEL_TEST_UTIL_H_
#define HMMREF_MODEL_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/invariants.h"
#include "model/kernel.h"

namespace hmm::model {

constexpr uint32_t kRw = kProtRead | kProtWrite;

// The length of n pages, in bytes.
inline uint64_t Pages(uint64_t n) { return n * kPageSize; }

// Whether some line of CheckAllInvariants() names the invariant.
inline bool Reports(const std::vector<std::string>& lines, const std::string& name) {
  for (const std::string& line : lines) {
    if (line.rfind(name + ":", 0) == 0) return true;
  }
  return false;
}

inline void ExpectInvariantsHold(const Kernel& k) {
  EXPECT_EQ(CheckAllInvariants(k.state(), k.ram_pages()), std::vector<std::string>{});
}

// The bytes `text` as a vector.
inline std::vector<uint8_t> Bytes(const std::string& text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

// A kernel with one process (pid 1); checks the invariants when torn down.
class ModelTest : public ::testing::Test {
 protected:
  explicit ModelTest(uint64_t ram_pages = kDefaultRamPages) : k_(ram_pages) {
    pid_ = k_.CreateProcess().value;
  }
  explicit ModelTest(const Config& config) : k_(config) { pid_ = k_.CreateProcess().value; }
  void TearDown() override { ExpectInvariantsHold(k_); }

  // Maps npages at the first fit; fails the test if mmap fails.
  uint64_t Map(uint64_t npages, uint32_t prot = kRw, uint32_t flags = kMapPrivate) {
    Result<uint64_t> r = k_.Mmap(pid_, 0, Pages(npages), prot, flags);
    EXPECT_EQ(r.err, Errno::kOk);
    return r.value;
  }
  const Process& Proc(Pid pid) const { return k_.state().procs.at(pid); }
  const Pte& PteAt(Pid pid, uint64_t addr) const { return Proc(pid).ptes.at(AddrToVpn(addr)); }
  std::string Read(Pid pid, uint64_t addr, uint64_t len) {
    Result<std::vector<uint8_t>> r = k_.CpuRead(pid, addr, len);
    EXPECT_EQ(r.err, Errno::kOk);
    return std::string(r.value.begin(), r.value.end());
  }

  Kernel k_;
  Pid pid_;
};

}  // namespace hmm::model

#endif  // HMMREF_MODEL_TEST_UTIL_H_
