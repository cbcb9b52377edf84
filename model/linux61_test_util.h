// File: model/linux61_test_util.h
//
// What the linux-6.1 profile's tests share (docs/divergences.md): a kernel
// under profile linux-6.1 with one process (pid 1) mirrored on device 0
// (mirror 1), and shorthands for its mirror's pt, the dummy device's ioctls
// and the splats. No invariant check at teardown: 6.1 keeps entries the
// model's invariants forbid (a stale device page table entry, D15).

#ifndef HMMREF_MODEL_LINUX61_TEST_UTIL_H_
#define HMMREF_MODEL_LINUX61_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/kernel.h"
#include "model/test_util.h"

namespace hmm::model {

inline Config Linux61Config() {
  Config config;
  config.profile = Profile::kLinux61;
  return config;
}

class Linux61Test : public ::testing::Test {
 protected:
  Linux61Test() : k_(Linux61Config()) {
    pid_ = k_.CreateProcess().value;
    EXPECT_EQ(k_.HmmMirrorRegister(DeviceId(0), pid_).value, 1u);
  }

  // Maps npages read-write private pages at addr (MAP_FIXED).
  void MapAt(uint64_t addr, uint64_t npages, uint32_t prot = kRw, uint32_t flags = kMapPrivate) {
    ASSERT_EQ(k_.Mmap(pid_, addr, Pages(npages), prot, flags | kMapFixed).value, addr);
  }
  const Process& Proc(Pid pid) const { return k_.state().procs.at(pid); }
  const Mirror& MirrorOf(uint64_t id = 1) const { return k_.state().mirrors.at(id); }
  bool InPt(uint64_t addr, uint64_t mirror = 1) const {
    return MirrorOf(mirror).pt.count(AddrToVpn(addr)) != 0;
  }
  Result<DmirrorResult> Dread(uint64_t addr, uint64_t npages, uint64_t mirror = 1) {
    return k_.DmirrorRead(mirror, addr, npages);
  }
  Result<DmirrorResult> Dwrite(uint64_t addr, uint64_t npages, uint8_t fill, uint64_t mirror = 1) {
    return k_.DmirrorWrite(mirror, addr, std::vector<uint8_t>(Pages(npages), fill));
  }
  std::vector<uint8_t> Snapshot(uint64_t addr, uint64_t npages, uint64_t mirror = 1) {
    Result<DmirrorResult> r = k_.DmirrorSnapshot(mirror, addr, npages);
    EXPECT_EQ(r.err, Errno::kOk);
    return r.value.data;
  }
  Result<DmirrorResult> ToDev(uint64_t addr, uint64_t npages, uint64_t mirror = 1) {
    return k_.DmirrorMigrateToDev(mirror, addr, npages);
  }
  // Whether the page at addr of pid is a device-private entry.
  bool OnDevice(uint64_t addr, Pid pid = Pid(1)) const {
    auto it = Proc(pid).ptes.find(AddrToVpn(addr));
    return it != Proc(pid).ptes.end() && it->second.device;
  }
  // The kinds of the splats recorded so far.
  std::vector<KernelSplat::Kind> Splats() const {
    std::vector<KernelSplat::Kind> out;
    for (const KernelSplat& s : k_.splats()) out.push_back(s.kind);
    return out;
  }

  static constexpr uint64_t kA = kMmapBase;  // 0x10000000, 2 MiB aligned
  Kernel k_;
  Pid pid_;
};

}  // namespace hmm::model

#endif  // HMMREF_MODEL_LINUX61_TEST_UTIL_H_
