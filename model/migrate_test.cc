// File: model/migrate_test.cc
//
// The migration core, Kernel::MigrateVma (docs/migrate.md), driven by a test
// driver that gives each migrating entry a page of a devmem: the guards in
// order, what collect reports for each kind of entry and selection, the move
// of pages and the filling of empty slots, the pin check, shared memory kept
// out of device memory, device pages moving with all their mappings, the
// owner device's mirrors keeping what does not change, and the page_free of
// every unused destination. The dummy device's ioctls are in
// dmirror_migrate_test.cc. Each fixture checks every invariant when torn down.

#include <vector>

#include "gtest/gtest.h"
#include "model/kernel.h"
#include "model/migrate_test_util.h"
#include "model/test_util.h"

namespace hmm::model {
namespace {

constexpr uint64_t kSystem = kMigrateVmaSelectSystem;
constexpr uint64_t kDevicePrivate = kMigrateVmaSelectDevicePrivate;
constexpr uint64_t kM = kMigratePfnMigrate;
constexpr uint64_t kLocked = kMigratePfnValid | kMigratePfnMigrate | kMigratePfnLocked;
constexpr uint64_t kW = kMigratePfnWrite;
constexpr uint64_t kDev = kMigratePfnDevice;

MigrateVma Args(Pid pid, uint64_t start, uint64_t npages, uint64_t select, DeviceId owner) {
  MigrateVma args;
  args.pid = pid;
  args.start = start;
  args.end = start + Pages(npages);
  args.select = static_cast<uint32_t>(select);
  args.owner = owner;
  return args;
}

// A src/dst entry naming pfn (a PageId or a device pfn) with flags.
uint64_t Entry(uint64_t pfn, uint64_t flags) { return MigratePfn(pfn) | flags; }

// A driver that gives each migrating entry a page of `devmem` (when it has
// one free) without copying, writable as src or, for an empty slot, as the
// VMA (here always writable); and records the arrays each callback saw.
struct TestDriver {
  Kernel* k = nullptr;
  uint64_t devmem = 0;
  std::vector<uint64_t> collected;  // src as alloc_and_copy saw it
  uint64_t cpages = 0;
  std::vector<uint64_t> outcome;  // src as finalize_and_map saw it

  MigrateVmaOps Ops() {
    MigrateVmaOps ops;
    ops.alloc_and_copy = [this](MigrateVma& args) {
      collected = args.src;
      cpages = args.cpages;
      for (uint64_t i = 0; i < args.src.size(); ++i) {
        if ((args.src[i] & kM) == 0) continue;
        Result<uint64_t> pfn = k->DevicePageAlloc(devmem);
        if (!pfn.ok()) continue;
        const bool slot = (args.src[i] & kMigratePfnValid) == 0;
        args.dst[i] = Entry(pfn.value, kDev | kMigratePfnLocked | (slot ? kW : args.src[i] & kW));
      }
    };
    ops.finalize_and_map = [this](const MigrateVma& args) { outcome = args.src; };
    return ops;
  }
};

class MigrateVmaTest : public MigrateTest {
 protected:
  TestDriver Driver(uint64_t devmem) { return TestDriver{&k_, devmem, {}, 0, {}}; }
  Errno Migrate(TestDriver* driver, MigrateVma* args) { return k_.MigrateVma(driver->Ops(), args); }
};

TEST_F(MigrateVmaTest, GuardsInOrderChangeNothing) {
  const uint64_t a = Map(2);
  ASSERT_EQ(Map(1), a + Pages(2));  // an adjacent VMA: [a, a + 3 pages) is two
  const State before = k_.state();
  MigrateVmaOps none;
  auto call = [&](Pid pid, uint64_t start, uint64_t end, uint64_t select) {
    MigrateVma args = Args(pid, start, 0, select, DeviceId(0));
    args.end = end;
    const Errno err = k_.MigrateVma(none, &args);
    EXPECT_TRUE(args.src.empty());
    return err;
  };
  EXPECT_EQ(call(Pid(99), a + 1, a, 0), Errno::kSrch);  // the pid first
  EXPECT_EQ(call(pid_, a + 1, a + Pages(1), kSystem), Errno::kInval);
  EXPECT_EQ(call(pid_, a, a + 1, kSystem), Errno::kInval);
  EXPECT_EQ(call(pid_, a, a, kSystem), Errno::kInval);
  EXPECT_EQ(call(pid_, a + Pages(1), a, kSystem), Errno::kInval);
  EXPECT_EQ(call(pid_, kTaskSize - Pages(1), kTaskSize + Pages(1), kSystem), Errno::kInval);
  EXPECT_EQ(call(pid_, a - Pages(1), a, kSystem), Errno::kInval);  // no VMA
  EXPECT_EQ(call(pid_, a, a + Pages(3), kSystem), Errno::kInval);  // two VMAs
  EXPECT_EQ(call(pid_, a, a + Pages(1), 0), Errno::kInval);        // nothing selected
  EXPECT_EQ(k_.state(), before);
  MigrateVma args = Args(pid_, a, 2, kSystem, DeviceId(0));
  EXPECT_EQ(k_.MigrateVma(none, &args), Errno::kOk);   // nothing moves: still kOk
  EXPECT_EQ(args.src, (std::vector<uint64_t>{0, 0}));  // both slots lost Migrate (no dst)
  EXPECT_EQ(args.cpages, 2u);
  EXPECT_EQ(k_.state(), before);
}

// Pages: none, zero page, written, COW-shared (read-only), a device page of
// device 0 (writable), of device 1 (read-only).
class CollectTest : public MigrateVmaTest {
 protected:
  void SetUp() override {
    AddDeviceMemory();
    a_ = Map(6);
    ASSERT_TRUE(k_.CpuRead(pid_, a_ + Pages(1), 1).ok());
    ASSERT_EQ(k_.CpuWrite(pid_, a_ + Pages(2), PagesOf(2, 1)), Errno::kOk);
    ASSERT_TRUE(k_.Fork(pid_).ok());
    ASSERT_EQ(k_.CpuWrite(pid_, a_ + Pages(2), Bytes("x")), Errno::kOk);  // its own copy
    local_ = DeviceEntryAt(1, a_ + Pages(4), /*write=*/true);
    remote_ = DeviceEntryAt(2, a_ + Pages(5), /*write=*/false);
  }
  // What collect reports for the six pages, with no driver page given.
  std::vector<uint64_t> Collect(uint64_t select, DeviceId owner, uint64_t* cpages) {
    TestDriver driver = Driver(/*devmem=*/99);  // no such devmem: nothing allocated
    MigrateVma args = Args(pid_, a_, 6, select, owner);
    EXPECT_EQ(Migrate(&driver, &args), Errno::kOk);
    *cpages = driver.cpages;
    return driver.collected;
  }
  PageId PageAt(uint64_t i) const { return PteAt(pid_, a_ + Pages(i)).page; }

  uint64_t a_ = 0;
  uint64_t local_ = 0;
  uint64_t remote_ = 0;
};

TEST_F(CollectTest, EachKindOfEntry) {
  const State before = k_.state();
  uint64_t cpages = 0;
  EXPECT_EQ(
      Collect(kSystem | kDevicePrivate, DeviceId(0), &cpages),
      (std::vector<uint64_t>{kM, kM, Entry(PageAt(2), kLocked | kW), Entry(PageAt(3), kLocked),
                             Entry(local_, kLocked | kDev | kW), 0}));
  EXPECT_EQ(cpages, 5u);
  EXPECT_EQ(Collect(kSystem, DeviceId(0), &cpages),
            (std::vector<uint64_t>{kM, kM, Entry(PageAt(2), kLocked | kW),
                                   Entry(PageAt(3), kLocked), 0, 0}));
  EXPECT_EQ(cpages, 4u);
  EXPECT_EQ(Collect(kDevicePrivate, DeviceId(1), &cpages),
            (std::vector<uint64_t>{0, 0, 0, 0, 0, Entry(remote_, kLocked | kDev)}));
  EXPECT_EQ(cpages, 1u);
  EXPECT_EQ(k_.state().procs, before.procs);  // no driver page: nothing moved
  EXPECT_EQ(k_.state().events, before.events);
}

TEST(MigrateV18Test, ZeroPageIsNotCollected) {
  uint64_t a = 0;
  Kernel k = KernelWithMapping(Profile::kV18, 2, &a);
  const Pid pid(1);
  ASSERT_TRUE(k.CpuRead(pid, a, 1).ok());
  MigrateVma args = Args(pid, a, 2, kSystem, DeviceId(0));
  ASSERT_EQ(k.MigrateVma(MigrateVmaOps{}, &args), Errno::kOk);
  EXPECT_EQ(args.cpages, 1u);  // only the empty slot
  ExpectInvariantsHold(k);
}

TEST_F(MigrateVmaTest, MovesPagesAndFillsEmptySlotsToDevice) {
  AddDeviceMemory();
  const uint64_t a = Map(3);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(1, 5)), Errno::kOk);
  ASSERT_TRUE(k_.CpuRead(pid_, a + Pages(1), 1).ok());  // the zero page
  const PageId page = PteAt(pid_, a).page;
  TestDriver driver = Driver(1);
  MigrateVma args = Args(pid_, a, 3, kSystem, DeviceId(0));
  ASSERT_EQ(Migrate(&driver, &args), Errno::kOk);
  EXPECT_EQ(args.src, (std::vector<uint64_t>{Entry(page, kLocked | kW), kM, kM}));
  EXPECT_EQ(driver.outcome, args.src);  // finalize does not change src
  const uint64_t locked_dev = kDev | kMigratePfnLocked | kW;
  EXPECT_EQ(args.dst,
            (std::vector<uint64_t>{Entry(kLocalPfn, locked_dev), Entry(kLocalPfn + 1, locked_dev),
                                   Entry(kLocalPfn + 2, locked_dev)}));
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(PteAt(pid_, a + Pages(i)), DevicePte(kLocalPfn + i, true)) << i;
    EXPECT_FALSE(DevicePageOf(1, kLocalPfn + i).held) << i;  // 1 + its one entry
  }
  EXPECT_TRUE(k_.state().pages.empty());  // the old page went back to the allocator
  EXPECT_TRUE(Events().empty());
  ASSERT_EQ(k_.Munmap(pid_, a, Pages(3)), Errno::kOk);
  EXPECT_EQ(PageFrees(), 3u);  // each device page once, at its last entry
}

TEST_F(MigrateVmaTest, EmptySlotOfReadOnlyVmaIsReadOnly) {
  AddDeviceMemory();
  const uint64_t a = Map(1, kProtRead);
  TestDriver driver = Driver(1);
  MigrateVma args = Args(pid_, a, 1, kSystem, DeviceId(0));
  ASSERT_EQ(Migrate(&driver, &args), Errno::kOk);
  EXPECT_EQ(PteAt(pid_, a), DevicePte(kLocalPfn, false));  // dst had Write: the VMA decides
}

TEST_F(MigrateVmaTest, PinnedPageIsNotMigrated) {
  AddDeviceMemory();
  const uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(2, 1)), Errno::kOk);
  const Pte pinned = PteAt(pid_, a + Pages(1));
  ASSERT_TRUE(k_.PinUserPages(pid_, a + Pages(1), 1).ok());
  TestDriver driver = Driver(1);
  MigrateVma args = Args(pid_, a, 2, kSystem, DeviceId(0));
  ASSERT_EQ(Migrate(&driver, &args), Errno::kOk);
  EXPECT_EQ(driver.collected[1], Entry(pinned.page, kMigratePfnValid | kW));  // restored, unlocked
  EXPECT_EQ(args.cpages, 2u);
  EXPECT_EQ(args.dst[1], 0u);  // the driver saw no Migrate there
  EXPECT_EQ(PteAt(pid_, a), DevicePte(kLocalPfn, true));
  EXPECT_EQ(PteAt(pid_, a + Pages(1)), pinned);
}

TEST_F(MigrateVmaTest, SharedMemoryNeverGoesToDevice) {
  AddDeviceMemory();
  const uint64_t a = Map(2, kRw, kMapShared);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("s")), Errno::kOk);
  const Pte page = PteAt(pid_, a);
  TestDriver driver = Driver(1);
  MigrateVma args = Args(pid_, a, 2, kSystem, DeviceId(0));
  ASSERT_EQ(Migrate(&driver, &args), Errno::kOk);
  // The page is collected and gets a destination; pages declines it; the empty
  // slot of a shared VMA is not collected.
  EXPECT_EQ(driver.collected, (std::vector<uint64_t>{Entry(page.page, kLocked | kW), 0}));
  EXPECT_EQ(args.src[0], Entry(page.page, kMigratePfnValid | kMigratePfnLocked | kW));
  EXPECT_EQ(PteAt(pid_, a), page);
  EXPECT_EQ(Proc(pid_).ptes.count(AddrToVpn(a + Pages(1))), 0u);
  // The unused destination is released: its allocation ends with page_free.
  EXPECT_EQ(Events(), std::vector<DeviceEvent>{PageFreeEvent(1, kLocalPfn)});
  EXPECT_EQ(DevicePageOf(1, kLocalPfn).allocations, 1u);
}

TEST_F(MigrateVmaTest, DevicePageMovesWithAllItsMappings) {
  AddDeviceMemory();
  const uint64_t a = Map(3);
  const uint64_t old = DeviceEntryAt(1, a, /*write=*/false);
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, a + Pages(2), old, false), Errno::kOk);  // twice here
  ASSERT_EQ(k_.DevicePagePut(old), Errno::kOk);
  const Pid child = k_.Fork(pid_).value;  // and in the child, all read-only
  TestDriver driver = Driver(2);          // device 1's memory: device to device
  MigrateVma args = Args(pid_, a, 3, kDevicePrivate, DeviceId(0));
  ASSERT_EQ(Migrate(&driver, &args), Errno::kOk);
  // Collected once (the second address finds it locked), moved everywhere.
  EXPECT_EQ(driver.collected, (std::vector<uint64_t>{Entry(old, kLocked | kDev), 0, 0}));
  EXPECT_EQ(args.cpages, 1u);
  for (Pid p : {pid_, child}) {
    EXPECT_EQ(PteAt(p, a), DevicePte(kRemotePfn, false));
    EXPECT_EQ(PteAt(p, a + Pages(2)), DevicePte(kRemotePfn, false));
  }
  EXPECT_EQ(Events(), std::vector<DeviceEvent>{PageFreeEvent(1, old)});
  EXPECT_FALSE(DevicePageOf(2, kRemotePfn).held);
}

TEST_F(MigrateVmaTest, OwnerMirrorsKeepWhatDoesNotMove) {
  AddDeviceMemory();
  const uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(2, 1)), Errno::kOk);
  ASSERT_TRUE(k_.PinUserPages(pid_, a + Pages(1), 1).ok());  // page 1 stays
  ASSERT_EQ(k_.HmmMirrorRegister(DeviceId(1), pid_).value, 2u);
  ASSERT_EQ(k_.HmmMirrorRegister(DeviceId(0), pid_).value, 3u);  // a second file of device 0
  for (uint64_t m : {1, 2, 3}) Dread(a, 2, m);
  const uint64_t own = Snap(a + Pages(1), 1, 1);
  const uint64_t other = Snap(a + Pages(1), 1, 2);
  TestDriver driver = Driver(1);
  MigrateVma args = Args(pid_, a, 2, kSystem, DeviceId(0));
  ASSERT_EQ(Migrate(&driver, &args), Errno::kOk);
  EXPECT_EQ(PtHolds(a, 2, 1), (std::vector<bool>{false, true}));
  EXPECT_EQ(PtHolds(a, 2, 3), (std::vector<bool>{false, true}));
  EXPECT_EQ(PtHolds(a, 2, 2), (std::vector<bool>{false, false}));  // dropped at collect
  EXPECT_TRUE(RangeOf(own).valid);
  EXPECT_FALSE(RangeOf(other).valid);
  EXPECT_EQ(k_.HmmVmaRangeDone(own).value, true);
  EXPECT_EQ(k_.HmmVmaRangeDone(other).value, false);
}

TEST(MigrateV18Test, EveryMirrorIsInvalidatedAtCollect) {
  uint64_t a = 0;
  Kernel k = KernelWithMapping(Profile::kV18, 2, &a);
  const Pid pid(1);
  ASSERT_EQ(k.CpuWrite(pid, a, PagesOf(2, 1)), Errno::kOk);
  ASSERT_TRUE(k.PinUserPages(pid, a + Pages(1), 1).ok());  // stays, but loses its mirror entry
  ASSERT_EQ(k.HmmMirrorRegister(DeviceId(0), pid).value, 1u);
  ASSERT_TRUE(k.DmirrorRead(1, a, 2).ok());
  ASSERT_TRUE(k.HmmDevmemAdd(DeviceId(0), 1).ok());
  TestDriver driver{&k, 1, {}, 0, {}};
  MigrateVma args = Args(pid, a, 2, kSystem, DeviceId(0));
  ASSERT_EQ(k.MigrateVma(driver.Ops(), &args), Errno::kOk);
  EXPECT_TRUE(k.state().mirrors.at(1).pt.empty());
  EXPECT_TRUE(k.state().procs.at(pid).ptes.at(AddrToVpn(a)).device);
  ExpectInvariantsHold(k);
}

TEST_F(MigrateVmaTest, ForkedPageMovesInBothProcessesAndTheirMirrors) {
  AddDeviceMemory();
  const uint64_t a = Map(1);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("f")), Errno::kOk);
  const Pid child = k_.Fork(pid_).value;
  ASSERT_EQ(k_.HmmMirrorRegister(DeviceId(0), child).value, 2u);  // the owner's device
  Dread(a, 1, 2);
  TestDriver driver = Driver(1);
  MigrateVma args = Args(pid_, a, 1, kSystem, DeviceId(0));
  ASSERT_EQ(Migrate(&driver, &args), Errno::kOk);
  EXPECT_EQ(PteAt(pid_, a), DevicePte(kLocalPfn, false));
  EXPECT_EQ(PteAt(child, a), DevicePte(kLocalPfn, false));
  EXPECT_FALSE(InPt(a, 2));  // invalidated where the child's entry changed
  EXPECT_TRUE(k_.state().pages.empty());
}

}  // namespace
}  // namespace hmm::model
