// File: impl/kernel_stress_mirror_test.cc
//
// Part of //impl:kernel_stress_test (run it under --config=tsan and
// --config=asan too). Mirroring under real threads, in both profiles: two
// device threads (one mirror each, of one process) run dread, dwrite,
// snapshot, get_pfns + commit, hmm_fault + range_done, introspection and a
// scratch mirror's register/unregister, while two CPU threads mprotect,
// munmap + MAP_FIXED, madvise, mremap, fork (+ child writes + exit), write,
// and install device entries in the same process. Bounded: a fixed number
// of rounds and operations; a deadlock hangs the test into its timeout.
// After every round (all threads joined: a quiescent point) the
// representation invariant holds and every mirror maps only what the CPU
// maps, writable only where the CPU entry is; in the default profile no
// device access used an entry the CPU had already changed (the hazard
// detector, stress::HazardLog; v18's count is reported). Each device thread also owns a
// few pages that only it writes (through the device), and checks after each
// write that the device and the CPU both read back what it wrote: no write
// lost to a COW break, a fork or an invalidation.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_stress_util.h"
#include "model/types.h"

namespace hmm::impl {
namespace {

constexpr uint64_t kPage = kPageSize;
constexpr uint32_t kRW = kProtRead | kProtWrite;
constexpr int kRounds = 8;
constexpr int kOpsPerRound = 400;
constexpr uint64_t kAreaPages = 24;  // CPU threads change it under the devices
constexpr uint64_t kOwnPages = 3;    // per device thread; only that thread writes them
constexpr uint64_t kSharedPages = 4;

using stress::AreaCpuStep;
using stress::AreaOp;
using stress::ExpectMirrorsSubsetOfCpu;
using test_util::Join;
using stress::OneOf;
using stress::RandomPiece;

struct MirrorWorld {
  explicit MirrorWorld(Profile profile) : k(stress::StressConfig(profile)), hazards(k) {}

  Kernel k;
  stress::HazardLog hazards;  // after k: watches it
  Pid pid;
  uint64_t area = 0, shared = 0, own = 0, scratch = 0;
  uint64_t mirrors[2] = {};
  uint64_t devmem = 0;
  // Outcomes, to show the races happened (reported, not asserted, but for
  // the plain successes).
  std::atomic<uint64_t> commits[2] = {};  // [valid]
  std::atomic<uint64_t> dreads_ok{0};
};

class DeviceThread {
 public:
  DeviceThread(MirrorWorld& w, int id, int round)
      : w_(w), id_(id), mirror_(w.mirrors[id]), rng_(1000 * round + id) {}

  void Run() {
    for (int op = 0; op < kOpsPerRound; ++op) Step(op);
  }

 private:
  uint64_t AreaAddr(uint64_t* npages) {
    uint64_t first = rng_() % kAreaPages;
    *npages = 1 + rng_() % std::min<uint64_t>(8, kAreaPages - first);
    return w_.area + first * kPage;
  }

  void Step(int op) {
    uint64_t n = 0;
    uint64_t addr = AreaAddr(&n);
    switch (rng_() % 9) {
      case 0: {
        Errno e = w_.k.DmirrorRead(mirror_, addr, n).err;
        EXPECT_TRUE(OneOf(e, {Errno::kOk, Errno::kFault})) << ErrnoName(e);
        w_.dreads_ok += e == Errno::kOk;
        break;
      }
      case 1: {
        Errno e = w_.k.DmirrorWrite(mirror_, addr, std::vector<uint8_t>(n * kPage, 0x5A)).err;
        EXPECT_TRUE(OneOf(e, {Errno::kOk, Errno::kFault, Errno::kPerm})) << ErrnoName(e);
        break;
      }
      case 2: {
        Result<DmirrorResult> r = w_.k.DmirrorSnapshot(mirror_, w_.area, kAreaPages);
        EXPECT_TRUE(r.ok() && r.value.cpages == kAreaPages) << ErrnoName(r.err);
        break;
      }
      case 3: GetPfnsAndCommit(addr, n); break;
      case 4: FaultAndDone(addr, n, rng_() % 2); break;
      case 5:
      case 6: WriteOwn(op); break;
      case 7: {
        Errno e = w_.k.DmirrorRead(mirror_, w_.shared, kSharedPages).err;
        EXPECT_EQ(e, Errno::kOk) << ErrnoName(e);
        break;
      }
      default: Introspect(op); break;
    }
  }

  void GetPfnsAndCommit(uint64_t addr, uint64_t n) {
    Result<uint64_t> range = w_.k.HmmVmaGetPfns(mirror_, addr, n);
    // kInval: the CPU threads split or unmapped the VMA.
    if (!range.ok()) {
      EXPECT_EQ(range.err, Errno::kInval);
      return;
    }
    if (rng_() % 2) std::this_thread::yield();  // let an invalidation in
    Result<bool> valid = w_.k.DmirrorCommit(range.value);
    EXPECT_TRUE(valid.ok()) << ErrnoName(valid.err);
    ++w_.commits[valid.value];
  }

  void FaultAndDone(uint64_t addr, uint64_t n, bool write) {
    Result<uint64_t> range = w_.k.HmmVmaFault(mirror_, addr, n, write);
    if (!range.ok()) {
      EXPECT_TRUE(OneOf(range.err, {Errno::kInval, Errno::kFault, Errno::kPerm}))
          << ErrnoName(range.err);
      return;
    }
    EXPECT_TRUE(w_.k.HmmVmaRangeDone(range.value).ok());
  }

  // The thread's own pages: written only here, through the device.
  void WriteOwn(int op) {
    const uint64_t addr = w_.own + id_ * kOwnPages * kPage;
    std::vector<uint8_t> data(kOwnPages * kPage, static_cast<uint8_t>(op * 3 + id_ + 1));
    Result<DmirrorResult> r = w_.k.DmirrorWrite(mirror_, addr, data);
    ASSERT_TRUE(r.ok()) << ErrnoName(r.err);
    EXPECT_EQ(r.value.cpages, kOwnPages);
    Result<DmirrorResult> back = w_.k.DmirrorRead(mirror_, addr, kOwnPages);
    ASSERT_TRUE(back.ok()) << ErrnoName(back.err);
    EXPECT_EQ(back.value.data, data) << "device " << id_ << " lost its write";
    EXPECT_EQ(w_.k.CpuRead(w_.pid, addr, kOwnPages * kPage).value, data)
        << "the CPU does not see device " << id_ << "'s write";
  }

  void Introspect(int op) {
    (void)w_.k.Mirrors();
    (void)w_.k.Ranges();
    if (op % 3 == 0) {
      // A scratch mirror: registered, used, unregistered under the others.
      Result<uint64_t> m = w_.k.HmmMirrorRegister(DeviceId(2 + id_), w_.pid);
      ASSERT_TRUE(m.ok()) << ErrnoName(m.err);
      (void)w_.k.DmirrorRead(m.value, w_.shared, kSharedPages);
      EXPECT_EQ(w_.k.HmmMirrorUnregister(m.value), Errno::kOk);
    }
  }

  MirrorWorld& w_;
  const int id_;
  const uint64_t mirror_;
  std::minstd_rand rng_;
};

class CpuThread {
 public:
  CpuThread(MirrorWorld& w, int id, int round) : w_(w), id_(id), rng_(2000 * round + id) {}

  void Run() {
    for (int op = 0; op < kOpsPerRound; ++op) Step(op);
  }

 private:
  void Step(int op) {
    uint64_t n = 0;
    switch (rng_() % 9) {
      case 0: Area(AreaOp::kProtect); break;
      case 1: Area(AreaOp::kMapFixed); break;
      case 2: ForkAndExit(op); break;
      case 3:
      case 4: Area(AreaOp::kWrite, uint8_t(op)); break;
      case 5: Area(AreaOp::kMadvise); break;
      case 6: {
        uint64_t addr = RandomPiece(rng_, w_.area, kAreaPages, &n);
        MoveAndBack(addr, n);
        break;
      }
      case 7: DeviceEntry(RandomPiece(rng_, w_.area, kAreaPages, &n)); break;
      default:
        EXPECT_EQ(w_.k.CpuWrite(w_.pid, w_.shared + (rng_() % kSharedPages) * kPage + id_, {1}),
                  Errno::kOk);
        break;
    }
  }

  void Area(AreaOp what, uint8_t fill = 0) {
    uint64_t n = 0;
    const uint64_t addr = RandomPiece(rng_, w_.area, kAreaPages, &n);
    AreaCpuStep(w_.k, w_.pid, addr, n, what, rng_, fill);
  }

  void ForkAndExit(int op) {
    Result<Pid> child = w_.k.Fork(w_.pid);
    ASSERT_TRUE(child.ok()) << ErrnoName(child.err);
    // The child's writes break COW on its side only.
    (void)w_.k.CpuWrite(child.value, w_.own + (op % (2 * kOwnPages)) * kPage, {0xEE});
    (void)w_.k.CpuWrite(child.value, w_.area + (op % kAreaPages) * kPage, {0xEE});
    ASSERT_EQ(w_.k.Exit(child.value), Errno::kOk);
  }

  // mremap part of the area to this thread's scratch spot and back.
  void MoveAndBack(uint64_t addr, uint64_t n) {
    const uint64_t to = w_.scratch + id_ * kAreaPages * kPage;
    const uint32_t fixed = kMremapMaymove | kMremapFixed;
    Result<uint64_t> there = w_.k.Mremap(w_.pid, addr, n * kPage, n * kPage, fixed, to);
    // kFault: the range no longer lies in one VMA.
    if (!there.ok()) {
      EXPECT_EQ(there.err, Errno::kFault);
      return;
    }
    Result<uint64_t> back = w_.k.Mremap(w_.pid, to, n * kPage, n * kPage, fixed, addr);
    EXPECT_TRUE(back.ok()) << ErrnoName(back.err);
  }

  void DeviceEntry(uint64_t addr) {
    Result<uint64_t> pfn = w_.k.DevicePageAlloc(w_.devmem);
    if (!pfn.ok()) return;  // kNoMem: the region is full of entries
    Errno e = w_.k.DeviceEntryInstall(w_.pid, addr, pfn.value, rng_() % 2);
    EXPECT_TRUE(OneOf(e, {Errno::kOk, Errno::kBusy, Errno::kFault})) << ErrnoName(e);
    EXPECT_EQ(w_.k.DevicePagePut(pfn.value), Errno::kOk);
  }

  MirrorWorld& w_;
  const int id_;
  std::minstd_rand rng_;
};

class MirrorStressTest : public ::testing::TestWithParam<Profile> {};

INSTANTIATE_TEST_SUITE_P(Profiles, MirrorStressTest,
                         ::testing::Values(Profile::kDefault, Profile::kV18), test_util::ProfileParamName);

TEST_P(MirrorStressTest, DevicesAgainstCpuOperations) {
  MirrorWorld w(GetParam());
  w.pid = w.k.CreateProcess().value;
  w.area = w.k.Mmap(w.pid, 0, kAreaPages * kPage, kRW, kMapPrivate).value;
  w.own = w.k.Mmap(w.pid, 0, 2 * kOwnPages * kPage, kRW, kMapPrivate).value;
  w.shared = w.k.Mmap(w.pid, 0, kSharedPages * kPage, kRW, kMapShared).value;
  w.scratch = w.shared + 64 * kPage;  // free: nothing is mapped above
  w.devmem = w.k.HmmDevmemAdd(DeviceId(0), 8 * kPage).value;
  for (int d = 0; d < 2; ++d) w.mirrors[d] = w.k.HmmMirrorRegister(DeviceId(d), w.pid).value;
  for (int round = 0; round < kRounds; ++round) {
    stress::RunTogether(4, [&w, round](int t) {
      if (t < 2) {
        DeviceThread(w, t, round).Run();
      } else {
        CpuThread(w, t - 2, round).Run();
      }
    });
    std::vector<std::string> rep = w.k.RepInvariant();
    ASSERT_TRUE(rep.empty()) << "round " << round << "\n" << Join(rep);
    ExpectMirrorsSubsetOfCpu(w.k, w.pid);
    w.hazards.Expect(GetParam(), round);
    EXPECT_TRUE(w.k.Ranges().empty()) << "every thread finished its ranges";
  }
  std::cout << "commits valid " << w.commits[1] << " invalidated " << w.commits[0]
            << ", area dreads ok " << w.dreads_ok << ", device accesses through a changed entry "
            << w.hazards.total() << "\n";
  EXPECT_GT(w.commits[1], 0u);
  EXPECT_GT(w.dreads_ok, 0u);
  ASSERT_EQ(w.k.Exit(w.pid), Errno::kOk);
  for (const MirrorInfo& m : w.k.Mirrors()) EXPECT_TRUE(m.pt.empty());
  for (uint64_t m : w.mirrors) EXPECT_EQ(w.k.HmmMirrorUnregister(m), Errno::kOk);
  EXPECT_EQ(w.k.HmmDevmemRemove(w.devmem), Errno::kOk);
  EXPECT_TRUE(w.k.PagesInUse().empty());
  std::vector<std::string> rep = w.k.RepInvariant();
  EXPECT_TRUE(rep.empty()) << Join(rep);
}

}  // namespace
}  // namespace hmm::impl
