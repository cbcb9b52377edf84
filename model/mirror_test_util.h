// File: model/mirror_test_util.h
//
// What the mirroring tests share: a kernel with one process (pid 1) mirrored
// by mirror 1 on device 0, device memory for devices 0 and 1, and shorthands
// for the mirror's pt, its ranges and the dummy device's READ.

#ifndef HMMREF_MODEL_MIRROR_TEST_UTIL_H_
#define HMMREF_MODEL_MIRROR_TEST_UTIL_H_

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "model/kernel.h"
#include "model/test_util.h"

namespace hmm::model {

constexpr uint64_t kLocalPfn = (uint64_t{1} << 46) >> kPageShift;  // devmem 1 (device 0)
constexpr uint64_t kRemotePfn = kLocalPfn + ((uint64_t{1} << 27) >> kPageShift);  // devmem 2

// The bytes of npages pages, page i filled with first + i.
inline std::vector<uint8_t> PagesOf(uint64_t npages, uint8_t first) {
  std::vector<uint8_t> out;
  for (uint64_t i = 0; i < npages; ++i) out.insert(out.end(), kPageSize, uint8_t(first + i));
  return out;
}

class MirrorTest : public ModelTest {
 protected:
  explicit MirrorTest(uint64_t ram_pages = kDefaultRamPages) : ModelTest(ram_pages) {
    EXPECT_EQ(k_.HmmMirrorRegister(DeviceId(0), pid_).value, 1u);
  }

  // Devmem 1 for device 0 and devmem 2 for device 1 (one section each).
  void AddDeviceMemory() {
    EXPECT_EQ(k_.HmmDevmemAdd(DeviceId(0), 1).value, 1u);
    EXPECT_EQ(k_.HmmDevmemAdd(DeviceId(1), 1).value, 2u);
  }
  // Allocates a page of devmem (1: device 0, 2: device 1) and installs it at addr.
  uint64_t DeviceEntryAt(uint64_t devmem, uint64_t addr, bool write = true) {
    const uint64_t pfn = k_.DevicePageAlloc(devmem).value;
    EXPECT_EQ(k_.DeviceEntryInstall(pid_, addr, pfn, write), Errno::kOk);
    return pfn;
  }

  const Mirror& MirrorOf(uint64_t id = 1) const { return k_.state().mirrors.at(id); }
  bool InPt(uint64_t addr, uint64_t mirror = 1) const {
    return MirrorOf(mirror).pt.count(AddrToVpn(addr)) != 0;
  }
  const Pte& PtAt(uint64_t addr, uint64_t mirror = 1) const {
    return MirrorOf(mirror).pt.at(AddrToVpn(addr));
  }
  // Which of the npages pages from addr the mirror's pt holds.
  std::vector<bool> PtHolds(uint64_t addr, uint64_t npages, uint64_t mirror = 1) const {
    std::vector<bool> out;
    for (uint64_t i = 0; i < npages; ++i) out.push_back(InPt(addr + Pages(i), mirror));
    return out;
  }
  const Range& RangeOf(uint64_t id) const { return k_.state().ranges.at(id); }

  // The dummy device's READ, which must succeed.
  DmirrorResult Dread(uint64_t addr, uint64_t npages, uint64_t mirror = 1) {
    Result<DmirrorResult> r = k_.DmirrorRead(mirror, addr, npages);
    EXPECT_EQ(r.err, Errno::kOk);
    return r.value;
  }
  // HmmVmaGetPfns, which must succeed.
  uint64_t Snap(uint64_t addr, uint64_t npages, uint64_t mirror = 1) {
    Result<uint64_t> r = k_.HmmVmaGetPfns(mirror, addr, npages);
    EXPECT_EQ(r.err, Errno::kOk);
    return r.value;
  }
};

}  // namespace hmm::model

#endif  // HMMREF_MODEL_MIRROR_TEST_UTIL_H_
