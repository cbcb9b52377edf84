// File: impl/migrate_test.cc
//
// The migrate_vma core (impl/migrate.h, docs/migrate.md) with a test
// driver's callbacks: the guards in order, what collect selects and the
// src flags the driver sees, pages moving to device memory and back with
// their bytes and write bits, empty slots and the zero page filled, every
// mapping of a forked page moving together, a pinned page and a shmem page
// staying where they are (an unused destination freed once), a shmem page
// moving between RAM pages with its object, and which mirrors lose their
// entries when. Both profiles; every test ends with the representation
// invariant intact.

#include "impl/migrate.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_test_util.h"
#include "model/types.h"

namespace hmm::impl {
namespace {

using test_util::Events;
using test_util::Fill;
using test_util::kPage;
using test_util::kRW;
using test_util::MapOrDie;
using test_util::PageFree;
using test_util::Pattern;
using test_util::PtOf;
using test_util::PteAt;
using test_util::Show;
using test_util::ShowPtes;

constexpr uint64_t kV = kMigratePfnValid, kM = kMigratePfnMigrate, kL = kMigratePfnLocked,
                   kW = kMigratePfnWrite, kD = kMigratePfnDevice;
constexpr uint32_t kSys = kMigrateVmaSelectSystem, kDev = kMigrateVmaSelectDevicePrivate;

// A driver for the core's tests: each selected page it does not decline goes
// to a new page (of region `devmem`, or RAM when devmem is 0), copied (an
// empty slot zero-filled), write as src. It keeps what its callbacks saw.
class TestDriver {
 public:
  TestDriver(Kernel& k, uint64_t devmem) : ks_(StateOf(k)), devmem_(devmem) {}

  MigrateVmaOps Ops() {
    MigrateVmaOps ops;
    ops.alloc_and_copy = [this](MigrateVmaArgs& a) { AllocAndCopy(a); };
    ops.finalize_and_map = [this](const MigrateVmaArgs& a) { mapped_src = a.src; };
    return ops;
  }

  std::set<uint64_t> decline;        // indexes left alone
  std::vector<uint64_t> seen_src;    // src as alloc_and_copy saw it
  std::vector<uint64_t> mapped_src;  // src as finalize_and_map saw it
  std::vector<uint64_t> dst;         // dst as alloc_and_copy left it

 private:
  void AllocAndCopy(MigrateVmaArgs& a) {
    seen_src = a.src;
    CopyBatch batch;
    for (size_t i = 0; i < a.src.size(); ++i) {
      const uint64_t s = a.src[i];
      if (!(s & kM) || decline.count(i)) continue;
      const uint64_t d = devmem_ ? MigrateAllocDeviceDst(ks_, devmem_) : MigrateAllocSystemDst(ks_);
      ASSERT_NE(d, 0u);
      if (s & kV) {
        batch.Copy(MigratePageRef(ks_, s), MigratePageRef(ks_, d));
      } else {
        batch.Zero(MigratePageRef(ks_, d));
      }
      a.dst[i] = d | (s & kW);
    }
    CopyEngine& engine = MigrateCopyEngine(ks_);
    engine.Wait(engine.Submit(batch));
    dst = a.dst;
  }

  KernelState& ks_;
  const uint64_t devmem_;
};

class MigrateTest : public ::testing::TestWithParam<Profile> {
 protected:
  MigrateTest() : k_(test_util::SmallConfig(GetParam(), 64)) {
    pid_ = k_.CreateProcess().value;
    devmem_ = k_.HmmDevmemAdd(DeviceId(0), 16 * kPage).value;
    other_ = k_.HmmDevmemAdd(DeviceId(1), 16 * kPage).value;
  }
  void TearDown() override { EXPECT_REP_OK(k_); }

  bool V18() const { return GetParam() == Profile::kV18; }
  uint64_t Map(uint64_t npages, uint32_t prot = kRW, uint32_t flags = kMapPrivate) {
    return MapOrDie(k_, pid_, npages, prot, flags);
  }
  // One migrate_vma call over [addr, addr + npages pages) of pid_ with owner device 0.
  MigrateVmaArgs Migrate(TestDriver& d, uint64_t addr, uint64_t npages, uint32_t select,
                         Pid pid = Pid()) {
    MigrateVmaArgs args;
    args.pid = pid.value ? pid : pid_;
    args.start = addr;
    args.end = addr + npages * kPage;
    args.select = select;
    args.owner = DeviceId(0);
    EXPECT_EQ(MigrateVma(k_, d.Ops(), &args), Errno::kOk);
    EXPECT_EQ(args.src.size(), npages);
    return args;
  }
  uint64_t DevicePfn(uint64_t addr, Pid pid = Pid()) {
    std::optional<PteInfo> pte = PteAt(k_, pid.value ? pid : pid_, addr);
    EXPECT_TRUE(pte.has_value() && pte->device);
    return pte.has_value() ? pte->pfn : 0;
  }

  Kernel k_;
  Pid pid_;
  uint64_t devmem_ = 0, other_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Profiles, MigrateTest, ::testing::Values(Profile::kDefault, Profile::kV18),
                         test_util::ProfileParamName);

TEST_P(MigrateTest, GuardsInOrder) {
  uint64_t a = Map(4);
  uint64_t b = Map(2);
  ASSERT_EQ(b, a + 4 * kPage) << "the next test relies on adjacent VMAs";
  TestDriver d(k_, devmem_);
  MigrateVmaArgs args;
  args.pid = Pid(99);
  args.start = a + 1;  // also bad: the pid comes first
  args.end = a;
  EXPECT_EQ(MigrateVma(k_, d.Ops(), &args), Errno::kSrch);
  args.pid = pid_;
  args.select = 0;  // also bad: the range comes first
  for (auto [s, e] : {std::pair<uint64_t, uint64_t>{a + 1, a + kPage}, {a, a + kPage + 1},
                      {a, a}, {a + kPage, a}, {kTaskSize - kPage, kTaskSize + kPage}}) {
    args.start = s;
    args.end = e;
    EXPECT_EQ(MigrateVma(k_, d.Ops(), &args), Errno::kInval) << Hex(s) << "-" << Hex(e);
  }
  args.select = kSys;
  args.start = a + 3 * kPage;
  args.end = b + kPage;  // two VMAs
  EXPECT_EQ(MigrateVma(k_, d.Ops(), &args), Errno::kInval);
  args.start = b + 2 * kPage;  // no VMA
  args.end = b + 3 * kPage;
  EXPECT_EQ(MigrateVma(k_, d.Ops(), &args), Errno::kInval);
  args.start = a;
  args.end = a + kPage;
  args.select = 0;
  EXPECT_EQ(MigrateVma(k_, d.Ops(), &args), Errno::kInval);
  EXPECT_TRUE(d.seen_src.empty()) << "no callback ran";
  args.select = kSys;
  EXPECT_EQ(MigrateVma(k_, d.Ops(), &args), Errno::kOk) << "an empty slot: valid, whatever moves";
}

// The src flags of every kind of entry, as the driver sees them, and cpages.
TEST_P(MigrateTest, CollectSelectsByKindOwnerAndSelection) {
  uint64_t a = Map(6);
  ASSERT_TRUE(k_.CpuRead(pid_, a + kPage, 1).ok());                  // 1: the zero page
  ASSERT_EQ(k_.CpuWrite(pid_, a + 2 * kPage, {1, 2}), Errno::kOk);  // 2: writable
  ASSERT_EQ(k_.CpuWrite(pid_, a + 3 * kPage, {1}), Errno::kOk);     // 3: read-only, its own VMA
  ASSERT_EQ(k_.Mprotect(pid_, a + 3 * kPage, kPage, kProtRead), Errno::kOk);
  uint64_t own = k_.DevicePageAlloc(devmem_).value;
  uint64_t foreign = k_.DevicePageAlloc(other_).value;
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, a + 4 * kPage, own, true), Errno::kOk);
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, a + 5 * kPage, foreign, true), Errno::kOk);
  const uint64_t page2 = PteAt(k_, pid_, a + 2 * kPage)->pfn;
  const uint64_t page3 = PteAt(k_, pid_, a + 3 * kPage)->pfn;
  const std::string before = ShowPtes(k_.Ptes(pid_));
  TestDriver d(k_, devmem_);
  d.decline = {0, 1, 2};  // look, move nothing
  MigrateVmaArgs args = Migrate(d, a, 3, kSys | kDev);
  EXPECT_EQ(d.seen_src[0], kM) << "an empty slot";
  EXPECT_EQ(d.seen_src[1], V18() ? 0 : kM) << "the zero page";
  EXPECT_EQ(d.seen_src[2], MigratePfn(page2) | kM | kL | kW);
  EXPECT_EQ(args.cpages, V18() ? 2u : 3u);
  EXPECT_EQ(args.src[2], MigratePfn(page2) | kL | kW) << "declined: Migrate cleared";
  d.decline = {0};
  Migrate(d, a + 3 * kPage, 1, kSys);
  EXPECT_EQ(d.seen_src[0], MigratePfn(page3) | kM | kL) << "read-only: no Write";
  TestDriver e(k_, 0);
  e.decline = {0, 1};
  args = Migrate(e, a + 4 * kPage, 2, kDev);
  EXPECT_EQ(e.seen_src[0], MigratePfn(own) | kD | kM | kL | kW);
  EXPECT_EQ(e.seen_src[1], 0u) << "another device's page is not the owner's";
  EXPECT_EQ(args.cpages, 1u);
  Migrate(e, a + 4 * kPage, 2, kSys);
  EXPECT_EQ(e.seen_src, std::vector<uint64_t>({0, 0})) << "device pages need DevicePrivate";
  EXPECT_EQ(ShowPtes(k_.Ptes(pid_)), before) << "nothing moved, every entry back as it was";
  EXPECT_TRUE(k_.DeviceEvents().empty());
}

TEST_P(MigrateTest, PagesGoToTheDeviceAndBackWithTheirBytesAndWriteBits) {
  uint64_t a = Map(4);
  const std::vector<uint8_t> data = Pattern(4, 3);
  ASSERT_EQ(k_.CpuWrite(pid_, a, data), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, a + 2 * kPage, 2 * kPage, kProtRead), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, a + 2 * kPage, 2 * kPage, kRW), Errno::kOk);  // 2, 3 read-only PTEs
  TestDriver to_dev(k_, devmem_);
  Migrate(to_dev, a, 2, kSys);
  Migrate(to_dev, a + 2 * kPage, 2, kSys);
  EXPECT_TRUE(k_.PagesInUse().empty()) << "every system page was freed";
  for (uint64_t i = 0; i < 4; ++i) {
    std::optional<PteInfo> pte = PteAt(k_, pid_, a + i * kPage);
    ASSERT_TRUE(pte.has_value() && pte->device);
    EXPECT_EQ(pte->write, i < 2) << "the same write bit";
    EXPECT_EQ(k_.DevicePageData(pte->pfn),
              std::vector<uint8_t>(data.begin() + i * kPage, data.begin() + (i + 1) * kPage));
  }
  EXPECT_REP_OK(k_);
  std::vector<uint64_t> device_pfns;
  for (uint64_t i = 0; i < 4; ++i) device_pfns.push_back(DevicePfn(a + i * kPage));
  TestDriver to_sys(k_, 0);
  for (uint64_t half = 0; half < 2; ++half) {
    MigrateVmaArgs args = Migrate(to_sys, a + half * 2 * kPage, 2, kDev);
    EXPECT_EQ(args.cpages, 2u);
    for (uint64_t i = 0; i < 2; ++i) EXPECT_TRUE(to_sys.mapped_src[i] & kM);
  }
  std::vector<DeviceEventInfo> frees;
  for (uint64_t pfn : device_pfns) frees.push_back(PageFree(devmem_, pfn));
  EXPECT_EQ(Events(k_), Show(frees)) << "each device page freed once, in address order";
  EXPECT_EQ(k_.CpuRead(pid_, a, 4 * kPage).value, data);
  std::vector<PteInfo> ptes = k_.Ptes(pid_);
  ASSERT_EQ(ptes.size(), 4u);
  for (uint64_t i = 0; i < 4; ++i) EXPECT_EQ(ptes[i].write, i < 2);
}

TEST_P(MigrateTest, EmptySlotsAndTheZeroPageAreFilled) {
  uint64_t a = Map(2);
  uint64_t ro = Map(2, kProtRead);
  ASSERT_TRUE(k_.CpuRead(pid_, a + kPage, 1).ok());
  ASSERT_TRUE(k_.CpuRead(pid_, ro, 1).ok());
  TestDriver d(k_, devmem_);
  MigrateVmaArgs args = Migrate(d, a, 2, kSys);
  EXPECT_EQ(args.cpages, V18() ? 1u : 2u);
  EXPECT_TRUE(PteAt(k_, pid_, a)->device && PteAt(k_, pid_, a)->write) << "writable VMA";
  EXPECT_EQ(PteAt(k_, pid_, a + kPage)->device, !V18()) << "v18 leaves the zero page";
  args = Migrate(d, ro, 2, kSys);
  EXPECT_EQ(PteAt(k_, pid_, ro)->device, !V18());
  EXPECT_FALSE(PteAt(k_, pid_, ro)->write) << "read-only VMA";
  EXPECT_TRUE(PteAt(k_, pid_, ro + kPage)->device);
  EXPECT_EQ(k_.CpuRead(pid_, a, 2 * kPage).value, Fill(2 * kPage, 0)) << "inserted pages read zeros";
}

TEST_P(MigrateTest, EveryMappingOfAForkedPageMoves) {
  uint64_t a = Map(2);
  const std::vector<uint8_t> data = Pattern(2, 9);
  ASSERT_EQ(k_.CpuWrite(pid_, a, data), Errno::kOk);
  Pid child = k_.Fork(pid_).value;
  TestDriver to_dev(k_, devmem_);
  Migrate(to_dev, a, 2, kSys);
  for (uint64_t i = 0; i < 2; ++i) {
    EXPECT_EQ(DevicePfn(a + i * kPage, child), DevicePfn(a + i * kPage)) << "one device page";
    EXPECT_FALSE(PteAt(k_, child, a + i * kPage)->write);
  }
  EXPECT_TRUE(k_.PagesInUse().empty());
  EXPECT_REP_OK(k_);
  // From the child's side, back to one new RAM page for both.
  TestDriver to_sys(k_, 0);
  Migrate(to_sys, a, 2, kDev, child);
  EXPECT_EQ(PteAt(k_, child, a)->pfn, PteAt(k_, pid_, a)->pfn);
  EXPECT_FALSE(PteAt(k_, pid_, a)->device);
  EXPECT_EQ(k_.CpuRead(pid_, a, 2 * kPage).value, data);
  ASSERT_EQ(k_.CpuWrite(child, a, {7}), Errno::kOk);  // COW as usual
  EXPECT_EQ(k_.CpuRead(pid_, a, 2 * kPage).value, data);
}

TEST_P(MigrateTest, APinnedPageStays) {
  uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Pattern(2, 1)), Errno::kOk);
  const uint64_t pinned = PteAt(k_, pid_, a)->pfn;
  PinId pin = k_.PinUserPages(pid_, a, 1).value;
  TestDriver d(k_, devmem_);
  MigrateVmaArgs args = Migrate(d, a, 2, kSys);
  EXPECT_EQ(args.cpages, 2u) << "collected, then found pinned";
  EXPECT_EQ(d.seen_src[0], MigratePfn(pinned) | kW) << "restored and unlocked before the driver";
  EXPECT_EQ(PteAt(k_, pid_, a)->pfn, pinned);
  EXPECT_TRUE(PteAt(k_, pid_, a)->write);
  EXPECT_TRUE(PteAt(k_, pid_, a + kPage)->device);
  ASSERT_EQ(k_.UnpinUserPages(pin), Errno::kOk);
  EXPECT_EQ(Migrate(d, a, 1, kSys).cpages, 1u);
  EXPECT_TRUE(PteAt(k_, pid_, a)->device) << "unpinned, it moves";
}

TEST_P(MigrateTest, ASharedPageNeverGoesToDeviceMemory) {
  uint64_t s = Map(1, kRW, kMapShared);
  ASSERT_EQ(k_.CpuWrite(pid_, s, {4}), Errno::kOk);
  const uint64_t page = PteAt(k_, pid_, s)->pfn;
  TestDriver d(k_, devmem_);
  MigrateVmaArgs args = Migrate(d, s, 1, kSys);
  EXPECT_EQ(d.seen_src[0], MigratePfn(page) | kM | kL | kW) << "collected";
  EXPECT_EQ(args.src[0], MigratePfn(page) | kL | kW) << "refused in the pages phase";
  EXPECT_EQ(PteAt(k_, pid_, s)->pfn, page);
  const uint64_t unused = MigratePfnToPfn(d.dst[0]);
  EXPECT_EQ(Events(k_), Show({PageFree(devmem_, unused)})) << "the unused destination, once";
}

TEST_P(MigrateTest, ASharedPageMovesToANewRamPageWithItsObject) {
  uint64_t s = Map(2, kRW, kMapShared);
  const std::vector<uint8_t> data = Pattern(2, 5);
  ASSERT_EQ(k_.CpuWrite(pid_, s, data), Errno::kOk);
  Pid child = k_.Fork(pid_).value;
  ASSERT_TRUE(k_.CpuRead(child, s, 2 * kPage).ok());  // maps the same object's pages
  const uint64_t object = k_.Vmas(pid_).back().object;
  TestDriver d(k_, 0);
  Migrate(d, s, 2, kSys);
  std::vector<std::pair<uint64_t, uint64_t>> pages = k_.ObjectPages(object);
  ASSERT_EQ(pages.size(), 2u);
  for (uint64_t i = 0; i < 2; ++i) {
    EXPECT_EQ(pages[i].second, MigratePfnToPfn(d.dst[i])) << "the object holds the new page";
    EXPECT_EQ(PteAt(k_, pid_, s + i * kPage)->pfn, pages[i].second);
    EXPECT_EQ(PteAt(k_, child, s + i * kPage)->pfn, pages[i].second);
  }
  EXPECT_EQ(k_.CpuRead(child, s, 2 * kPage).value, data);
}

// docs/migrate.md: the owner's mirrors lose their entries where entries
// change (default profile), the others at collect; v18: every mirror at collect.
TEST_P(MigrateTest, WhichMirrorsLoseTheirEntries) {
  uint64_t a = Map(4);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Pattern(4, 2)), Errno::kOk);
  uint64_t owner = k_.HmmMirrorRegister(DeviceId(0), pid_).value;
  uint64_t other = k_.HmmMirrorRegister(DeviceId(1), pid_).value;
  for (uint64_t m : {owner, other}) ASSERT_TRUE(k_.DmirrorRead(m, a, 4).ok());
  TestDriver d(k_, devmem_);
  d.decline = {2, 3};
  Migrate(d, a, 4, kSys);
  EXPECT_TRUE(PtOf(k_, other).empty());
  std::vector<PteInfo> pt = PtOf(k_, owner);
  if (V18()) {
    EXPECT_TRUE(pt.empty());
  } else {
    ASSERT_EQ(pt.size(), 2u) << "the pages that stayed keep their device entries";
    EXPECT_EQ(pt[0].vpn, a / kPage + 2);
    EXPECT_EQ(pt[0].pfn, PteAt(k_, pid_, a + 2 * kPage)->pfn);
  }
}

}  // namespace
}  // namespace hmm::impl
