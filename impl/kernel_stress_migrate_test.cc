// File: impl/kernel_stress_migrate_test.cc
//
// Part of //impl:kernel_stress_test (run it under --config=tsan and
// --config=asan too). Migration under real threads, in both profiles: two
// device threads (one mirror each, devices 0 and 1, of one process) migrate
// pages to their device and back (MIGRATE_TO_DEV, MIGRATE_TO_SYS, the bench's
// loop, RELEASE), write and read through the device and snapshot, while two
// CPU threads read, write, pin, mprotect, munmap + MAP_FIXED, madvise and
// fork (+ child reads and writes + exit) the same process. Pages meet every
// path: CPU faults on device pages (migrate_to_ram), migrations racing each
// other for a page's lock, forked pages unmapped through the rmap walk,
// pinned pages refused, fork waiting out migration entries.
//
// No data lost: each CPU thread owns pages only it writes (through the CPU)
// and each device thread pages only it writes (through its device); the
// device threads migrate all of them to and fro, and every owner checks,
// after each of its steps and from a fork child, that its pages still hold
// what it wrote last. Bounded: a fixed number of rounds and operations; a
// deadlock hangs the test into its timeout. After every round (all threads
// joined: a quiescent point) the representation invariant holds (no
// migration entry left, no page locked, every count balanced), every
// mirror maps only what the CPU maps, and in the default profile no device
// access used an entry the CPU had already changed (stress::HazardLog).

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <initializer_list>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_stress_util.h"
#include "model/types.h"

namespace hmm::impl {
namespace {

using stress::AreaCpuStep;
using stress::AreaOp;
using stress::ExpectMirrorsSubsetOfCpu;
using test_util::Join;
using stress::OneOf;
using stress::RandomPiece;

constexpr uint64_t kPage = kPageSize;
constexpr uint32_t kRW = kProtRead | kProtWrite;
constexpr int kRounds = 6;
constexpr int kOpsPerRound = 300;
constexpr uint64_t kAreaPages = 24;  // CPU threads change it under the devices
constexpr uint64_t kOwnPages = 3;    // per thread; only its owner writes them

struct MigrateWorld {
  explicit MigrateWorld(Profile profile) : k(stress::StressConfig(profile)), hazards(k) {}
  // Own pages of thread t (CPU threads 0, 1; device threads 2, 3).
  uint64_t Own(int t) const { return own + t * kOwnPages * kPage; }

  Kernel k;
  stress::HazardLog hazards;  // after k: watches it
  Pid pid;
  uint64_t area = 0, own = 0;
  uint64_t mirrors[2] = {};
  uint8_t last[4] = {};  // what each thread last wrote into its own pages
  std::atomic<uint64_t> moved_to_dev{0}, moved_to_sys{0};
};

// Reads thread t's own pages through the CPU and checks them.
void ExpectOwn(Kernel& k, Pid pid, const MigrateWorld& w, int t, const char* who) {
  Result<std::vector<uint8_t>> r = k.CpuRead(pid, w.Own(t), kOwnPages * kPage);
  ASSERT_TRUE(r.ok()) << who << " " << ErrnoName(r.err);
  EXPECT_EQ(r.value, std::vector<uint8_t>(kOwnPages * kPage, w.last[t]))
      << who << ": thread " << t << "'s pages lost their bytes";
}

class DeviceThread {
 public:
  DeviceThread(MigrateWorld& w, int id, int round)
      : w_(w), id_(id), me_(2 + id), mirror_(w.mirrors[id]), rng_(3000 * round + id) {}

  void Run() {
    for (int op = 0; op < kOpsPerRound; ++op) Step(op);
  }

 private:
  // A piece of the area, or of some thread's own pages.
  uint64_t Target(uint64_t* npages) {
    if (rng_() % 2) {
      *npages = kOwnPages;
      return w_.Own(rng_() % 4);
    }
    uint64_t first = rng_() % kAreaPages;
    *npages = 1 + rng_() % std::min<uint64_t>(8, kAreaPages - first);
    return w_.area + first * kPage;
  }

  void Step(int op) {
    uint64_t n = 0;
    const uint64_t addr = Target(&n);
    switch (rng_() % 8) {
      case 0:
      case 1: ToDev(addr, n); break;
      case 2:
      case 3: ToSys(addr, n); break;
      case 4: WriteOwn(op); break;
      case 5: Range(addr, n); break;
      case 6: {
        Errno e = w_.k.DmirrorRead(mirror_, addr, n).err;
        EXPECT_TRUE(OneOf(e, {Errno::kOk, Errno::kFault})) << ErrnoName(e);
        break;
      }
      default:
        if (op % 50 == 0) {
          EXPECT_EQ(w_.k.DmirrorRelease(mirror_), Errno::kOk);
        } else {
          EXPECT_TRUE(w_.k.DmirrorSnapshot(mirror_, w_.area, kAreaPages).ok());
        }
        break;
    }
  }

  void ToDev(uint64_t addr, uint64_t n) {
    Result<DmirrorResult> r = w_.k.DmirrorMigrateToDev(mirror_, addr, n);
    // kInval: the VMA went or lost PROT_READ; kNoEnt: a page did not move
    // (pinned, locked by another migration, on the other device).
    EXPECT_TRUE(OneOf(r.err, {Errno::kOk, Errno::kInval, Errno::kNoEnt})) << ErrnoName(r.err);
    if (r.ok()) w_.moved_to_dev += r.value.cpages;
  }

  void ToSys(uint64_t addr, uint64_t n) {
    Result<DmirrorResult> r = w_.k.DmirrorMigrateToSys(mirror_, addr, n);
    EXPECT_TRUE(OneOf(r.err, {Errno::kOk, Errno::kInval})) << ErrnoName(r.err);
    if (r.ok()) w_.moved_to_sys += r.value.cpages;
  }

  void Range(uint64_t addr, uint64_t n) {
    Result<uint64_t> r = w_.k.DmirrorMigrateRange(mirror_, addr, n, rng_() % 2);
    EXPECT_TRUE(OneOf(r.err, {Errno::kOk, Errno::kInval})) << ErrnoName(r.err);
  }

  // This thread's own pages: written through the device only, then moved to
  // the device and back, the bytes checked through the device and the CPU.
  void WriteOwn(int op) {
    const uint64_t addr = w_.Own(me_);
    const uint8_t v = static_cast<uint8_t>(op * 7 + me_ + 1);
    std::vector<uint8_t> data(kOwnPages * kPage, v);
    ASSERT_EQ(w_.k.DmirrorWrite(mirror_, addr, data).err, Errno::kOk);
    w_.last[me_] = v;
    Result<DmirrorResult> dev = w_.k.DmirrorMigrateToDev(mirror_, addr, kOwnPages);
    ASSERT_TRUE(OneOf(dev.err, {Errno::kOk, Errno::kNoEnt})) << ErrnoName(dev.err);
    if (dev.ok()) {
      EXPECT_EQ(dev.value.data, data) << "device " << id_ << " read back";
    }
    EXPECT_EQ(w_.k.DmirrorRead(mirror_, addr, kOwnPages).value.data, data);
    ExpectOwn(w_.k, w_.pid, w_, me_, "device thread");
  }

  MigrateWorld& w_;
  const int id_;
  const int me_;  // index in MigrateWorld::last
  const uint64_t mirror_;
  std::minstd_rand rng_;
};

class CpuThread {
 public:
  CpuThread(MigrateWorld& w, int id, int round) : w_(w), id_(id), rng_(4000 * round + id) {}

  void Run() {
    for (int op = 0; op < kOpsPerRound; ++op) Step(op);
  }

 private:
  void Step(int op) {
    switch (rng_() % 10) {
      case 0: Area(AreaOp::kProtect); break;
      case 1: Area(AreaOp::kMapFixed); break;
      case 2: ForkAndExit(op); break;
      case 3: Area(AreaOp::kWrite, uint8_t(op)); break;
      case 4: Area(AreaOp::kMadvise); break;
      case 5:
      case 6: WriteOwn(op); break;
      case 7: ExpectOwn(w_.k, w_.pid, w_, id_, "cpu thread"); break;
      case 8: PinOwn(); break;
      default: Area(AreaOp::kRead); break;
    }
  }

  void Area(AreaOp what, uint8_t fill = 0) {
    uint64_t n = 0;
    const uint64_t addr = RandomPiece(rng_, w_.area, kAreaPages, &n);
    AreaCpuStep(w_.k, w_.pid, addr, n, what, rng_, fill);
  }

  void WriteOwn(int op) {
    const uint8_t v = static_cast<uint8_t>(op * 5 + id_ + 1);
    ASSERT_EQ(w_.k.CpuWrite(w_.pid, w_.Own(id_), std::vector<uint8_t>(kOwnPages * kPage, v)),
              Errno::kOk);
    w_.last[id_] = v;
    ExpectOwn(w_.k, w_.pid, w_, id_, "cpu thread");
  }

  // A pin on one own page for a moment: a migration meeting it must refuse it.
  void PinOwn() {
    Result<PinId> pin = w_.k.PinUserPages(w_.pid, w_.Own(id_) + (rng_() % kOwnPages) * kPage, 1);
    ASSERT_TRUE(pin.ok()) << ErrnoName(pin.err);
    std::this_thread::yield();
    EXPECT_EQ(w_.k.UnpinUserPages(pin.value), Errno::kOk);
  }

  // The child sees this thread's own pages as they were; its writes break COW.
  void ForkAndExit(int op) {
    Result<Pid> child = w_.k.Fork(w_.pid);
    ASSERT_TRUE(child.ok()) << ErrnoName(child.err);
    ExpectOwn(w_.k, child.value, w_, id_, "fork child");
    (void)w_.k.CpuWrite(child.value, w_.area + (op % kAreaPages) * kPage, {0xEE});
    ASSERT_EQ(w_.k.Exit(child.value), Errno::kOk);
  }

  MigrateWorld& w_;
  const int id_;
  std::minstd_rand rng_;
};

class MigrateStressTest : public ::testing::TestWithParam<Profile> {};

INSTANTIATE_TEST_SUITE_P(Profiles, MigrateStressTest,
                         ::testing::Values(Profile::kDefault, Profile::kV18), test_util::ProfileParamName);

void RunRound(MigrateWorld& w, int round) {
  stress::RunTogether(4, [&w, round](int t) {
    if (t < 2) {
      CpuThread(w, t, round).Run();
    } else {
      DeviceThread(w, t - 2, round).Run();
    }
  });
}

TEST_P(MigrateStressTest, DevicesMigrateUnderCpuOperations) {
  MigrateWorld w(GetParam());
  w.pid = w.k.CreateProcess().value;
  w.area = w.k.Mmap(w.pid, 0, kAreaPages * kPage, kRW, kMapPrivate).value;
  w.own = w.k.Mmap(w.pid, 0, 4 * kOwnPages * kPage, kRW, kMapPrivate).value;
  for (int d = 0; d < 2; ++d) w.mirrors[d] = w.k.HmmMirrorRegister(DeviceId(d), w.pid).value;
  for (int round = 0; round < kRounds; ++round) {
    RunRound(w, round);
    std::vector<std::string> rep = w.k.RepInvariant();
    ASSERT_TRUE(rep.empty()) << "round " << round << "\n" << Join(rep);
    ExpectMirrorsSubsetOfCpu(w.k, w.pid);
    w.hazards.Expect(GetParam(), round);
    for (int t = 0; t < 4; ++t) ExpectOwn(w.k, w.pid, w, t, "quiescent point");
  }
  std::cout << "pages moved to device " << w.moved_to_dev << ", back " << w.moved_to_sys
            << ", device accesses through a changed entry " << w.hazards.total() << "\n";
  EXPECT_GT(w.moved_to_dev, 0u);
  EXPECT_GT(w.moved_to_sys, 0u);
  ASSERT_EQ(w.k.Exit(w.pid), Errno::kOk);
  for (uint64_t m : w.mirrors) {
    EXPECT_EQ(w.k.DmirrorRelease(m), Errno::kOk);
    EXPECT_EQ(w.k.HmmMirrorUnregister(m), Errno::kOk);
  }
  EXPECT_TRUE(w.k.Devmems().empty()) << "every driver chunk unused and removed";
  EXPECT_TRUE(w.k.PagesInUse().empty());
  std::vector<std::string> rep = w.k.RepInvariant();
  EXPECT_TRUE(rep.empty()) << Join(rep);
}

}  // namespace
}  // namespace hmm::impl
