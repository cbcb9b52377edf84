// File: impl/kernel_sched_test.cc
//
// The impl's operations under the controlled scheduler (impl/sched.h), split
// at their real yield points (impl/README.md, "Yield points"), over every
// schedule with at most kSwitches context switches (kernel_sched_util.h;
// 90 to 3000 schedules a case), each on a fresh kernel: one private page of
// kOld bytes, mirrored by devices 0 and 1, with the device-access observer
// recording hazards.
//
//   - v18 (Profile::kV18): a device read against munmap, a device write
//     against mprotect read-only and against fork: some schedule makes the
//     device use an entry the CPU already changed, and the observer reports
//     it with its address, direction and the CPU's entry. The default
//     profile, over the same schedules: never.
//   - Default profile, issue 7's cases: migration to device against a CPU
//     fault of the page, against munmap; two migrations of the page (both
//     profiles: v18's prepare blocks); a device fault waiting on the
//     migration entry; fork while the page is device memory; and a snapshot
//     committed against munmap, mprotect and fork (both profiles).
// Every run completes (no deadlock, no livelock, nothing stuck); at the
// quiescent point RepInvariant() is empty, the mirror maps nothing the CPU
// does not, and the bytes read back are ones a sequential order gives.
// Run it under --config=tsan too.

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_sched_util.h"
#include "impl/kernel_test_util.h"
#include "impl/sched.h"
#include "model/types.h"

namespace hmm::impl {
namespace {

using sched_test::Explored;
using sched_test::ExploreSchedules;
using sched_test::RunActors;
using sched_test::Schedule;
using test_util::Fill;
using test_util::kPage;
using test_util::kRW;

// Context switches per schedule, at most: two under a sanitizer (ten times
// slower), else three.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kSwitches = 2;
#else
constexpr int kSwitches = 3;
#endif

std::vector<uint8_t> Old() { return Fill(kPage, 0x11); }
std::vector<uint8_t> New() { return Fill(kPage, 0x22); }

// The kernel of one run.
struct World {
  explicit World(Profile profile) : k(test_util::SmallConfig(profile)) {
    pid = k.CreateProcess().value;
    a = test_util::MapOrDie(k, pid, 1, kRW, kMapPrivate);
    EXPECT_EQ(k.CpuWrite(pid, a, Old()), Errno::kOk);
    pfn = test_util::PteAt(k, pid, a)->pfn;
    m0 = k.HmmMirrorRegister(DeviceId(0), pid).value;
    m1 = k.HmmMirrorRegister(DeviceId(1), pid).value;
    k.SetDeviceAccessObserver([this](const DeviceAccessHazard& h) {
      std::lock_guard<std::mutex> l(lock);
      hazards.push_back(h);
    });
  }

  Kernel k;
  Pid pid;
  uint64_t a = 0, pfn = 0, m0 = 0, m1 = 0;
  std::mutex lock;
  std::vector<DeviceAccessHazard> hazards;  // guarded by lock
};

std::string Show(const DeviceAccessHazard& h) {
  return "mirror " + std::to_string(h.mirror) + " pid " + std::to_string(h.pid.value) + " " +
         (h.write ? "write " : "read ") + Hex(h.addr) + " device pfn " + Hex(h.device_pfn) +
         ", cpu: " + h.cpu;
}

// The bytes of pid's page at addr, or empty on an error.
std::vector<uint8_t> CpuBytes(Kernel& k, Pid pid, uint64_t addr) {
  Result<std::vector<uint8_t>> r = k.CpuRead(pid, addr, kPage);
  return r.ok() ? r.value : std::vector<uint8_t>{};
}

// InvMirrorSubsetOfCpu at a quiescent point: every pt entry of the mirror
// names what the CPU maps there, with write only where the CPU has it.
void ExpectMirrorSubsetOfCpu(const Kernel& k, uint64_t mirror, Pid pid) {
  for (const PteInfo& d : test_util::PtOf(k, mirror)) {
    std::optional<PteInfo> c = test_util::PteAt(k, pid, d.vpn * kPage);
    ASSERT_TRUE(c.has_value()) << "mirror " << mirror << " maps " << Hex(d.vpn) << ", the CPU nothing";
    EXPECT_EQ(c->pfn, d.pfn) << Hex(d.vpn);
    EXPECT_EQ(c->device, d.device) << Hex(d.vpn);
    EXPECT_TRUE(c->write || !d.write) << Hex(d.vpn);
  }
}

// The checks every run ends with.
void ExpectQuiescent(World& w, const sched::SchedRun& run) {
  EXPECT_TRUE(run.completed()) << sched::FormatSchedRun(run);
  EXPECT_REP_OK(w.k);
  ExpectMirrorSubsetOfCpu(w.k, w.m0, w.pid);
  ExpectMirrorSubsetOfCpu(w.k, w.m1, w.pid);
}

// Every run completed; `what` names the enumeration in the test's XML
// record (its schedules and distinct interleavings).
void ExpectAllCompleted(const Explored& ex, const std::string& what = "schedules") {
  EXPECT_EQ(ex.completed, ex.runs) << ex.first_failure;
  EXPECT_GT(ex.interleavings.size(), 1u);
  ::testing::Test::RecordProperty(what, std::to_string(ex.runs) + " runs, " +
                                            std::to_string(ex.interleavings.size()) +
                                            " interleavings");
}

// --- The v18 hazard, and its absence under the default profile ---

// Which CPU operation runs against the device access.
enum class CpuOp { kMunmap, kMprotectRead, kFork };

struct HazardCase {
  Profile profile;
  CpuOp op;
};

std::string HazardCaseName(const ::testing::TestParamInfo<HazardCase>& info) {
  const char* op[] = {"Munmap", "MprotectRead", "Fork"};
  return std::string(info.param.profile == Profile::kV18 ? "V18" : "Default") +
         op[static_cast<int>(info.param.op)];
}

class DeviceAccessHazardTest : public ::testing::TestWithParam<HazardCase> {};

// The CPU operation, its Errno (fork: its child, into *child).
Errno RunCpuOp(World& w, CpuOp op, Pid* child) {
  switch (op) {
    case CpuOp::kMunmap:
      return w.k.Munmap(w.pid, w.a, kPage);
    case CpuOp::kMprotectRead:
      return w.k.Mprotect(w.pid, w.a, kPage, kProtRead);
    case CpuOp::kFork: {
      Result<Pid> r = w.k.Fork(w.pid);
      if (r.ok()) *child = r.value;
      return r.err;
    }
  }
  return Errno::kInval;
}

// Munmap against a device read; mprotect and fork against a device write
// (the device's pt maps the page writable first).
TEST_P(DeviceAccessHazardTest, OnlyV18LetsTheDeviceUseAChangedEntry) {
  const HazardCase c = GetParam();
  const bool write = c.op != CpuOp::kMunmap;
  std::vector<DeviceAccessHazard> seen;
  World shape(c.profile);  // the same ids, addresses and pfns as every run's
  Explored ex = ExploreSchedules(2, kSwitches, [&](const Schedule& s) {
    World w(c.profile);
    Result<DmirrorResult> dev = Errno::kInval;
    Errno cpu = Errno::kInval;
    Pid child;
    // The device maps the page (writable, for a write) before the race.
    if (write) {
      EXPECT_TRUE(w.k.DmirrorWrite(w.m0, w.a, Old()).ok());
    } else {
      EXPECT_TRUE(w.k.DmirrorRead(w.m0, w.a, 1).ok());
    }
    sched::SchedRun run = RunActors(
        s, {{"dev",
             [&] {
               sched::OpBoundary(write ? "dwrite" : "dread");
               dev = write ? w.k.DmirrorWrite(w.m0, w.a, New()) : w.k.DmirrorRead(w.m0, w.a, 1);
             }},
            {"cpu", [&] {
               sched::OpBoundary("cpu_op");
               cpu = RunCpuOp(w, c.op, &child);
             }}});
    ExpectQuiescent(w, run);
    EXPECT_EQ(cpu, Errno::kOk);
    if (c.op == CpuOp::kMunmap) {
      // Read before the munmap (or, v18, through the stale entry), or a hole.
      if (dev.ok()) {
        EXPECT_EQ(dev.value.data, Old());
      } else {
        EXPECT_EQ(dev.err, Errno::kFault);
      }
    } else {
      // The write landed, or (mprotect) was refused; fork: the child has
      // the bytes from before or after it.
      EXPECT_EQ(CpuBytes(w.k, w.pid, w.a), dev.ok() ? New() : Old()) << ErrnoName(dev.err);
      if (c.op == CpuOp::kFork) {
        EXPECT_TRUE(dev.ok());
        std::vector<uint8_t> in_child = CpuBytes(w.k, child, w.a);
        EXPECT_TRUE(in_child == Old() || in_child == New());
      }
    }
    seen.insert(seen.end(), w.hazards.begin(), w.hazards.end());
    return run;
  });
  ExpectAllCompleted(ex);
  if (c.profile == Profile::kDefault) {
    EXPECT_TRUE(seen.empty()) << Show(seen.front()) << " in " << ex.runs << " runs";
    return;
  }
  ASSERT_FALSE(seen.empty()) << "no hazard in " << ex.runs << " schedules";
  const std::string cpu = c.op == CpuOp::kMunmap ? "none" : "pfn " + Hex(shape.pfn) + " read-only";
  for (const DeviceAccessHazard& h : seen) {
    EXPECT_EQ(h.mirror, shape.m0) << Show(h);
    EXPECT_EQ(h.device, DeviceId(0)) << Show(h);
    EXPECT_EQ(h.pid, shape.pid) << Show(h);
    EXPECT_EQ(h.addr, shape.a) << Show(h);
    EXPECT_EQ(h.write, write) << Show(h);
    EXPECT_EQ(h.device_pfn, shape.pfn) << Show(h);
    EXPECT_EQ(h.cpu, cpu) << Show(h);
  }
}

// An empty observer removes the one installed: the same v18 schedules then
// report nothing, where the observer that stays installed saw the hazard.
TEST(KernelSched, AnEmptyObserverRemovesIt) {
  uint64_t kept = 0, removed = 0;
  for (bool remove : {false, true}) {
    ExploreSchedules(2, kSwitches, [&](const Schedule& s) {
      World w(Profile::kV18);
      uint64_t calls = 0;
      w.k.SetDeviceAccessObserver([&calls](const DeviceAccessHazard&) { ++calls; });
      if (remove) w.k.SetDeviceAccessObserver(nullptr);
      EXPECT_TRUE(w.k.DmirrorRead(w.m0, w.a, 1).ok());
      sched::SchedRun run = RunActors(
          s, {{"dev", [&] { (void)w.k.DmirrorRead(w.m0, w.a, 1); }},
              {"cpu", [&] { (void)w.k.Munmap(w.pid, w.a, kPage); }}});
      (remove ? removed : kept) += calls;
      return run;
    });
  }
  EXPECT_GT(kept, 0u);
  EXPECT_EQ(removed, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Profiles, DeviceAccessHazardTest,
    ::testing::Values(HazardCase{Profile::kV18, CpuOp::kMunmap},
                      HazardCase{Profile::kV18, CpuOp::kMprotectRead},
                      HazardCase{Profile::kV18, CpuOp::kFork},
                      HazardCase{Profile::kDefault, CpuOp::kMunmap},
                      HazardCase{Profile::kDefault, CpuOp::kMprotectRead},
                      HazardCase{Profile::kDefault, CpuOp::kFork}),
    HazardCaseName);

// --- Issue 7's cases ---

// Migration to device 0 against a CPU read, then write, of the page: the
// read sees kOld, the write is never lost; the CPU waits on the migration
// entry in some schedule.
TEST(KernelSched, MigrationAgainstCpuFault) {
  Explored ex = ExploreSchedules(2, kSwitches, [](const Schedule& s) {
    World w(Profile::kDefault);
    Result<DmirrorResult> mig = Errno::kInval;
    Result<std::vector<uint8_t>> read = Errno::kInval;
    Errno write = Errno::kInval;
    sched::SchedRun run = RunActors(
        s, {{"mig",
             [&] {
               sched::OpBoundary("migrate_to_dev");
               mig = w.k.DmirrorMigrateToDev(w.m0, w.a, 1);
             }},
            {"cpu", [&] {
               sched::OpBoundary("cpu_read");
               read = w.k.CpuRead(w.pid, w.a, kPage);
               sched::OpBoundary("cpu_write");
               write = w.k.CpuWrite(w.pid, w.a, New());
             }}});
    ExpectQuiescent(w, run);
    EXPECT_TRUE(read.ok() && read.value == Old());
    EXPECT_EQ(write, Errno::kOk);
    // The read-back sees the bytes of the moment; kNoEnt when the CPU took
    // the page back before it.
    if (mig.ok()) {
      EXPECT_TRUE(mig.value.data == Old() || mig.value.data == New());
    } else {
      EXPECT_EQ(mig.err, Errno::kNoEnt);
    }
    EXPECT_EQ(CpuBytes(w.k, w.pid, w.a), New());
    return run;
  });
  ExpectAllCompleted(ex);
  EXPECT_TRUE(ex.points.count("cpu@migration_entry_wait")) << ex.runs << " runs";
}

// Migration against munmap: no page, device page or pt entry is left.
TEST(KernelSched, MigrationAgainstMunmap) {
  Explored ex = ExploreSchedules(2, kSwitches, [](const Schedule& s) {
    World w(Profile::kDefault);
    Result<DmirrorResult> mig = Errno::kInval;
    Errno unmap = Errno::kInval;
    sched::SchedRun run = RunActors(
        s, {{"mig",
             [&] {
               sched::OpBoundary("migrate_to_dev");
               mig = w.k.DmirrorMigrateToDev(w.m0, w.a, 1);
             }},
            {"cpu", [&] {
               sched::OpBoundary("munmap");
               unmap = w.k.Munmap(w.pid, w.a, kPage);
             }}});
    ExpectQuiescent(w, run);
    EXPECT_EQ(unmap, Errno::kOk);
    // Before the munmap; after it (no VMA); or between its move and read-back.
    if (mig.ok()) {
      EXPECT_EQ(mig.value.data, Old());
    } else {
      EXPECT_TRUE(mig.err == Errno::kInval || mig.err == Errno::kNoEnt);
    }
    EXPECT_TRUE(w.k.Ptes(w.pid).empty());
    EXPECT_TRUE(w.k.PagesInUse().empty());
    EXPECT_TRUE(test_util::PtOf(w.k, w.m0).empty());
    EXPECT_EQ(w.k.CpuRead(w.pid, w.a, kPage).err, Errno::kFault);
    return run;
  });
  ExpectAllCompleted(ex);
}

class ProfileSchedTest : public ::testing::TestWithParam<Profile> {};

// Two migrations of the page, to devices 0 and 1: never a deadlock (v18's
// prepare takes the page lock blocking when it holds no other), no byte lost.
TEST_P(ProfileSchedTest, TwoMigrationsOfOnePage) {
  const Profile profile = GetParam();
  Explored ex = ExploreSchedules(2, kSwitches, [profile](const Schedule& s) {
    World w(profile);
    Result<DmirrorResult> mig[2] = {Errno::kInval, Errno::kInval};
    auto migrate = [&](int i) {
      sched::OpBoundary("migrate_to_dev");
      mig[i] = w.k.DmirrorMigrateToDev(i == 0 ? w.m0 : w.m1, w.a, 1);
    };
    sched::SchedRun run =
        RunActors(s, {{"mig0", [&] { migrate(0); }}, {"mig1", [&] { migrate(1); }}});
    ExpectQuiescent(w, run);
    for (const Result<DmirrorResult>& r : mig) {
      // The loser finds the other device's page (not its to move): kNoEnt.
      if (r.ok()) {
        EXPECT_EQ(r.value.data, Old());
      } else {
        EXPECT_EQ(r.err, Errno::kNoEnt);
      }
    }
    EXPECT_EQ(CpuBytes(w.k, w.pid, w.a), Old());
    return run;
  });
  ExpectAllCompleted(ex);
}

// Device 1 faults the page while device 0 migrates it: its walk waits on the
// migration entry (in some schedule), and reads kOld in every one.
TEST(KernelSched, DeviceFaultWaitsOnMigrationEntry) {
  Explored ex = ExploreSchedules(2, kSwitches, [](const Schedule& s) {
    World w(Profile::kDefault);
    Result<DmirrorResult> mig = Errno::kInval, read = Errno::kInval;
    sched::SchedRun run = RunActors(
        s, {{"mig",
             [&] {
               sched::OpBoundary("migrate_to_dev");
               mig = w.k.DmirrorMigrateToDev(w.m0, w.a, 1);
             }},
            {"dev", [&] {
               sched::OpBoundary("dread");
               read = w.k.DmirrorRead(w.m1, w.a, 1);
             }}});
    ExpectQuiescent(w, run);
    EXPECT_TRUE(read.ok() && read.value.data == Old()) << ErrnoName(read.err);
    if (mig.ok()) {
      EXPECT_EQ(mig.value.data, Old());
    } else {
      EXPECT_EQ(mig.err, Errno::kNoEnt);
    }
    EXPECT_EQ(CpuBytes(w.k, w.pid, w.a), Old());
    return run;
  });
  ExpectAllCompleted(ex);
  EXPECT_TRUE(ex.points.count("dev@migration_entry_wait")) << ex.runs << " runs";
}

// Fork while the page is device memory, against the device writing it and
// against its migration back: the parent ends with what the device wrote,
// the child with the bytes from before or after the write.
TEST(KernelSched, ForkWhileDevicePagesExist) {
  for (bool write : {true, false}) {
    Explored ex = ExploreSchedules(2, kSwitches, [write](const Schedule& s) {
      World w(Profile::kDefault);
      EXPECT_TRUE(w.k.DmirrorMigrateToDev(w.m0, w.a, 1).ok());
      Result<DmirrorResult> dev = Errno::kInval;
      Result<Pid> child = Errno::kInval;
      sched::SchedRun run = RunActors(
          s, {{"cpu",
               [&] {
                 sched::OpBoundary("fork");
                 child = w.k.Fork(w.pid);
               }},
              {"dev", [&] {
                 sched::OpBoundary(write ? "dwrite" : "migrate_to_sys");
                 dev = write ? w.k.DmirrorWrite(w.m0, w.a, New())
                             : w.k.DmirrorMigrateToSys(w.m0, w.a, 1);
               }}});
      ExpectQuiescent(w, run);
      EXPECT_TRUE(child.ok() && dev.ok()) << ErrnoName(child.err) << " " << ErrnoName(dev.err);
      if (!child.ok()) return run;
      const std::vector<uint8_t> parent_bytes = CpuBytes(w.k, w.pid, w.a);
      const std::vector<uint8_t> child_bytes = CpuBytes(w.k, child.value, w.a);
      EXPECT_EQ(parent_bytes, write ? New() : Old());
      EXPECT_TRUE(child_bytes == Old() || (write && child_bytes == New()));
      EXPECT_REP_OK(w.k);
      return run;
    });
    ExpectAllCompleted(ex, write ? "fork_vs_dwrite" : "fork_vs_migrate_to_sys");
  }
}

// The seed's snapshot protocol (HmmVmaGetPfns, then DmirrorCommit under the
// update lock) against munmap, mprotect and fork: a commit never leaves a
// stale entry behind (ExpectQuiescent: the mirror maps nothing the CPU does
// not), in either profile.
TEST_P(ProfileSchedTest, SnapshotCommitAgainstCpuChanges) {
  const Profile profile = GetParam();
  for (CpuOp op : {CpuOp::kMunmap, CpuOp::kMprotectRead, CpuOp::kFork}) {
    Explored ex = ExploreSchedules(2, kSwitches, [profile, op](const Schedule& s) {
      World w(profile);
      Result<uint64_t> range = Errno::kInval;
      Result<bool> commit = Errno::kInval;
      Errno cpu = Errno::kInval;
      Pid child;
      sched::SchedRun run = RunActors(
          s, {{"dev",
               [&] {
                 sched::OpBoundary("get_pfns");
                 range = w.k.HmmVmaGetPfns(w.m0, w.a, 1);
                 sched::OpBoundary("commit");
                 if (range.ok()) commit = w.k.DmirrorCommit(range.value);
               }},
              {"cpu", [&] {
                 sched::OpBoundary("cpu_op");
                 cpu = RunCpuOp(w, op, &child);
               }}});
      ExpectQuiescent(w, run);
      EXPECT_EQ(cpu, Errno::kOk);
      // A snapshot after the munmap finds no VMA (kInval); any other commits.
      if (!range.ok()) {
        EXPECT_EQ(range.err, Errno::kInval);
      } else {
        EXPECT_TRUE(commit.ok()) << ErrnoName(commit.err);
      }
      return run;
    });
    const char* names[] = {"munmap", "mprotect", "fork"};
    ExpectAllCompleted(ex, names[static_cast<int>(op)]);
  }
}

INSTANTIATE_TEST_SUITE_P(Profiles, ProfileSchedTest,
                         ::testing::Values(Profile::kDefault, Profile::kV18),
                         test_util::ProfileParamName);

}  // namespace
}  // namespace hmm::impl
