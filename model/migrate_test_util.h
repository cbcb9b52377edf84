// File: model/migrate_test_util.h
//
// What the migration tests share: the mirroring fixture (pid 1, mirror 1 on
// device 0) with shorthands for entries, device pages and the event log.

#ifndef HMMREF_MODEL_MIGRATE_TEST_UTIL_H_
#define HMMREF_MODEL_MIGRATE_TEST_UTIL_H_

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "model/kernel.h"
#include "model/mirror_test_util.h"
#include "model/test_util.h"

namespace hmm::model {

// The first pfn of a 256 MiB chunk the dummy device adds at 2^46 (default
// placement, no devmem before it).
constexpr uint64_t kChunkPfn = (uint64_t{1} << 46) >> kPageShift;

inline Pte PagePte(PageId page, bool write) { return Pte{false, page, write}; }

inline Pte DevicePte(uint64_t pfn, bool write) {
  Pte pte;
  pte.device = true;
  pte.device_pfn = pfn;
  pte.write = write;
  return pte;
}

inline DeviceEvent PageFreeEvent(uint64_t devmem, uint64_t pfn) {
  return DeviceEvent{DeviceEvent::kPageFree, devmem, pfn, 0, 0};
}

inline DeviceEvent FaultEvent(uint64_t devmem, uint64_t pfn, Pid pid, uint64_t addr) {
  return DeviceEvent{DeviceEvent::kFault, devmem, pfn, pid.value, addr};
}

// A kernel with `profile` and pid 1 mapping npages private read-write pages
// at *addr.
inline Kernel KernelWithMapping(Profile profile, uint64_t npages, uint64_t* addr) {
  Config config;
  config.profile = profile;
  Kernel k(config);
  const Pid pid = k.CreateProcess().value;
  *addr = k.Mmap(pid, 0, Pages(npages), kRw, kMapPrivate).value;
  return k;
}

class MigrateTest : public MirrorTest {
 protected:
  explicit MigrateTest(uint64_t ram_pages = kDefaultRamPages) : MirrorTest(ram_pages) {}

  const std::vector<DeviceEvent>& Events() const { return k_.state().events; }
  const DevicePage& DevicePageOf(uint64_t devmem, uint64_t pfn) const {
    return k_.state().devmems.at(devmem).pages.at(pfn);
  }
  // How many page_free events the log holds.
  uint64_t PageFrees() const {
    uint64_t n = 0;
    for (const DeviceEvent& e : Events()) n += e.kind == DeviceEvent::kPageFree ? 1 : 0;
    return n;
  }
  // The dummy device's MIGRATE_TO_DEV, which must succeed.
  DmirrorResult ToDev(uint64_t addr, uint64_t npages, uint64_t mirror = 1) {
    Result<DmirrorResult> r = k_.DmirrorMigrateToDev(mirror, addr, npages);
    EXPECT_EQ(r.err, Errno::kOk);
    return r.value;
  }
  // Whether the npages pages from addr of pid are device entries.
  bool OnDevice(uint64_t addr, uint64_t npages, Pid pid = Pid(1)) const {
    for (uint64_t i = 0; i < npages; ++i) {
      auto it = Proc(pid).ptes.find(AddrToVpn(addr + Pages(i)));
      if (it == Proc(pid).ptes.end() || !it->second.device) return false;
    }
    return true;
  }
};

}  // namespace hmm::model

#endif  // HMMREF_MODEL_MIGRATE_TEST_UTIL_H_
