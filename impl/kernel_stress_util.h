// File: impl/kernel_stress_util.h
//
// What the stress tests of //impl:kernel_stress_test check at their
// quiescent points, shared by kernel_stress_mirror_test.cc and
// kernel_stress_migrate_test.cc.

#ifndef HMMREF_IMPL_KERNEL_STRESS_UTIL_H_
#define HMMREF_IMPL_KERNEL_STRESS_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <initializer_list>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_test_util.h"
#include "model/types.h"

namespace hmm::impl::stress {

// Every pt entry names what the CPU maps there, writable only if the CPU
// entry is (docs/mirror.md InvMirrorSubsetOfCpu), at a quiescent point.
inline void ExpectMirrorsSubsetOfCpu(const Kernel& k, Pid pid) {
  std::map<uint64_t, PteInfo> cpu;
  for (const PteInfo& p : k.Ptes(pid)) cpu[p.vpn] = p;
  for (const MirrorInfo& m : k.Mirrors()) {
    if (m.pid != pid.value) continue;
    for (const PteInfo& d : m.pt) {
      auto it = cpu.find(d.vpn);
      ASSERT_NE(it, cpu.end()) << "mirror " << m.id << " maps vpn " << Hex(d.vpn);
      const PteInfo& c = it->second;
      EXPECT_TRUE(c.pfn == d.pfn && c.zero == d.zero && c.device == d.device &&
                  (!d.write || c.write))
          << "mirror " << m.id << " vpn " << Hex(d.vpn) << " pfn " << d.pfn << "/" << c.pfn
          << " write " << d.write << "/" << c.write;
    }
  }
}

inline bool OneOf(Errno e, std::initializer_list<Errno> allowed) {
  return std::find(allowed.begin(), allowed.end(), e) != allowed.end();
}

// The CPU operations on a piece of an area that the CPU threads of these
// tests change under the devices, each allowed the errors a race gives it.
enum class AreaOp { kProtect, kMapFixed, kWrite, kMadvise, kRead };

// 1..6 pages at a random offset of [area, area + area_pages pages): the
// piece's address, its length in *npages.
inline uint64_t RandomPiece(std::minstd_rand& rng, uint64_t area, uint64_t area_pages,
                            uint64_t* npages) {
  const uint64_t first = rng() % area_pages;
  *npages = 1 + rng() % std::min<uint64_t>(6, area_pages - first);
  return area + first * kPageSize;
}

// Runs `what` on [addr, addr + npages pages) of pid; a write stores `fill`.
inline void AreaCpuStep(Kernel& k, Pid pid, uint64_t addr, uint64_t npages, AreaOp what,
                        std::minstd_rand& rng, uint8_t fill) {
  const uint64_t len = npages * kPageSize;
  static constexpr uint32_t kProts[] = {kProtRead | kProtWrite, kProtRead | kProtWrite, kProtRead,
                                        kProtNone};
  switch (what) {
    case AreaOp::kProtect:
      EXPECT_TRUE(OneOf(k.Mprotect(pid, addr, len, kProts[rng() % 4]), {Errno::kOk, Errno::kNoMem}));
      break;
    case AreaOp::kMapFixed:
      EXPECT_TRUE(k.Mmap(pid, addr, len, kProtRead | kProtWrite, kMapPrivate | kMapFixed).ok());
      break;
    case AreaOp::kWrite: {
      Errno e = k.CpuWrite(pid, addr, std::vector<uint8_t>(len, fill));
      EXPECT_TRUE(OneOf(e, {Errno::kOk, Errno::kFault})) << ErrnoName(e);
      break;
    }
    case AreaOp::kMadvise:
      EXPECT_TRUE(OneOf(k.MadviseDontneed(pid, addr, len), {Errno::kOk, Errno::kNoMem}));
      break;
    case AreaOp::kRead: {
      Errno e = k.CpuRead(pid, addr, len).err;
      EXPECT_TRUE(OneOf(e, {Errno::kOk, Errno::kFault})) << ErrnoName(e);
      break;
    }
  }
}

// Runs body(t) for t in [0, n) on n threads that start together (each waits
// until all exist); returns once every one has finished: a quiescent point.
template <typename F>
void RunTogether(int n, const F& body) {
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&ready, &body, n, t] {
      ready.fetch_add(1);
      while (ready.load() < n) std::this_thread::yield();
      body(t);
    });
  }
  for (std::thread& t : threads) t.join();
}

// The machine both stress tests run on.
inline Config StressConfig(Profile profile) {
  Config c;
  c.ram_pages = 4096;
  c.section_bytes = kPageSize;
  c.profile = profile;
  return c;
}

// Every device access the kernel's hazard detector flags (impl/device_access.cc:
// a device using an entry the CPU already changed; under real threads it may
// miss one, never invents one), collected from any thread. Installed for the
// log's life; declare it after the Kernel it watches.
class HazardLog {
 public:
  explicit HazardLog(Kernel& k) : k_(k) {
    k_.SetDeviceAccessObserver([this](const DeviceAccessHazard& h) {
      std::lock_guard<std::mutex> l(mu_);
      hazards_.push_back(h);
    });
  }
  ~HazardLog() { k_.SetDeviceAccessObserver(nullptr); }
  HazardLog(const HazardLog&) = delete;
  HazardLog& operator=(const HazardLog&) = delete;

  // At a quiescent point: the default profile never lets a device use a
  // changed entry (mirrors are invalidated before the CPU change); under v18
  // it may, and the count is only reported.
  void Expect(Profile profile, int round) {
    std::lock_guard<std::mutex> l(mu_);
    if (profile == Profile::kDefault && !hazards_.empty()) {
      const DeviceAccessHazard& h = hazards_.front();
      ADD_FAILURE() << "round " << round << ": " << hazards_.size() << " device accesses through a "
                    << "changed entry, the first: mirror " << h.mirror << (h.write ? " wrote " : " read ")
                    << Hex(h.addr) << " (cpu: " << h.cpu << ")";
    }
    total_ += hazards_.size();
    hazards_.clear();
  }
  uint64_t total() const { return total_; }

 private:
  Kernel& k_;
  std::mutex mu_;
  std::vector<DeviceAccessHazard> hazards_;  // guarded by mu_
  uint64_t total_ = 0;                       // guarded by mu_ (Expect)
};

}  // namespace hmm::impl::stress

#endif  // HMMREF_IMPL_KERNEL_STRESS_UTIL_H_
