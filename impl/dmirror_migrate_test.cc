// File: impl/dmirror_migrate_test.cc
//
// The dummy device's migration (docs/migrate.md, "The dummy device"; 6.1
// lib/test_hmm.c and hmm-tests.c migrate, migrate_fault, migrate_release,
// migrate_shared, migrate_multiple): the ioctl guards in order, pages to the
// device and back with their bytes in 64-page pieces, the driver's chunk,
// the read-back, FLAGS' failed allocation, empty slots, shared memory that
// stays, forked pages moving together, a CPU fault bringing a page back,
// RELEASE (and its kNoMem), and the other mirrors' entries. Both profiles;
// every test ends with the representation invariant intact.

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_test_util.h"
#include "model/types.h"

namespace hmm::impl {
namespace {

using test_util::CpuWriteAll;
using test_util::Fill;
using test_util::kPage;
using test_util::kRW;
using test_util::MapOrDie;
using test_util::Pattern;
using test_util::PtOf;
using test_util::PteAt;

class DmirrorMigrateTest : public ::testing::TestWithParam<Profile> {
 protected:
  DmirrorMigrateTest() : k_(test_util::SmallConfig(GetParam(), 256)) {
    pid_ = k_.CreateProcess().value;
    mirror_ = k_.HmmMirrorRegister(DeviceId(0), pid_).value;
  }
  void TearDown() override { EXPECT_REP_OK(k_); }

  bool V18() const { return GetParam() == Profile::kV18; }
  uint64_t Map(uint64_t npages, uint32_t prot = kRW, uint32_t flags = kMapPrivate) {
    return MapOrDie(k_, pid_, npages, prot, flags);
  }
  DmirrorResult ToDev(uint64_t addr, uint64_t npages) {
    Result<DmirrorResult> r = k_.DmirrorMigrateToDev(mirror_, addr, npages);
    EXPECT_TRUE(r.ok()) << ErrnoName(r.err);
    return r.value;
  }
  uint64_t ToSys(uint64_t addr, uint64_t npages) {
    Result<DmirrorResult> r = k_.DmirrorMigrateToSys(mirror_, addr, npages);
    EXPECT_TRUE(r.ok()) << ErrnoName(r.err);
    EXPECT_TRUE(r.value.data.empty());
    return r.value.cpages;
  }
  uint64_t DevicePages(uint64_t addr, uint64_t npages) {
    uint64_t n = 0;
    for (uint64_t i = 0; i < npages; ++i) {
      std::optional<PteInfo> pte = PteAt(k_, pid_, addr + i * kPage);
      n += pte.has_value() && pte->device;
    }
    return n;
  }
  uint64_t PageFrees() {
    uint64_t n = 0;
    for (const DeviceEventInfo& e : k_.DeviceEvents()) n += !e.fault;
    return n;
  }

  Kernel k_;
  Pid pid_;
  uint64_t mirror_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Profiles, DmirrorMigrateTest,
                         ::testing::Values(Profile::kDefault, Profile::kV18),
                         test_util::ProfileParamName);

TEST_P(DmirrorMigrateTest, GuardsInOrder) {
  uint64_t a = Map(2);
  uint64_t none = Map(1, kProtNone);
  EXPECT_EQ(k_.DmirrorMigrateToDev(9, a + 1, 0).err, Errno::kNoEnt);
  EXPECT_EQ(k_.DmirrorMigrateToSys(9, a, 1).err, Errno::kNoEnt);
  EXPECT_EQ(k_.DmirrorMigrateToDev(mirror_, a + 1, 1).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorMigrateToSys(mirror_, a, 0).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorMigrateToDev(mirror_, kTaskSize - kPage, 2).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorMigrateToDev(mirror_, a, kMaxDmirrorPages + 1).err, Errno::kNoMem);
  EXPECT_EQ(k_.DmirrorMigrateRange(mirror_, a, kMaxDmirrorPages + 1, true).err, Errno::kInval)
      << "no bounce buffer, so the VMA's end is the next rung";
  EXPECT_EQ(k_.DmirrorMigrateToDev(mirror_, none, 1).err, Errno::kInval) << "no PROT_READ";
  EXPECT_EQ(k_.DmirrorMigrateToSys(mirror_, a + 4 * kPage, 1).err, Errno::kInval) << "no VMA";
  EXPECT_EQ(k_.DmirrorFlags(9, 0), Errno::kNoEnt);
  EXPECT_EQ(k_.DmirrorFlags(mirror_, 2), Errno::kInval);
  EXPECT_EQ(k_.DmirrorRelease(9), Errno::kNoEnt);
  // A later piece's VMA fails the call; what moved stays moved.
  EXPECT_EQ(k_.DmirrorMigrateToDev(mirror_, a, 3).err, Errno::kInval);
  EXPECT_EQ(DevicePages(a, 2), 2u);
  Pid other = k_.CreateProcess().value;
  uint64_t gone = k_.HmmMirrorRegister(DeviceId(0), other).value;
  ASSERT_EQ(k_.Exit(other), Errno::kOk);
  EXPECT_EQ(k_.DmirrorMigrateToDev(gone, a, 1).err, Errno::kInval) << "the process exited";
  EXPECT_EQ(k_.HmmMirrorUnregister(gone), Errno::kOk);
}

// hmm-tests.c migrate (with more than one 64-page piece) and the way back.
TEST_P(DmirrorMigrateTest, PagesGoToTheDeviceAndBack) {
  const uint64_t n = 70;
  uint64_t a = Map(n);
  const std::vector<uint8_t> data = Pattern(n, 1);
  ASSERT_EQ(CpuWriteAll(k_, pid_, a, data), Errno::kOk);
  DmirrorResult r = ToDev(a, n);
  EXPECT_EQ(r.cpages, n);
  EXPECT_EQ(r.data, data) << "read back from the device";
  EXPECT_EQ(DevicePages(a, n), n);
  EXPECT_TRUE(k_.PagesInUse().empty());
  std::vector<DevmemInfo> devmems = k_.Devmems();
  ASSERT_EQ(devmems.size(), 1u);
  EXPECT_TRUE(devmems[0].dmirror_chunk) << "the driver added a chunk";
  EXPECT_EQ(devmems[0].npages, kDmirrorChunkBytes / kPage);
  std::vector<PteInfo> pt = PtOf(k_, mirror_);
  ASSERT_EQ(pt.size(), n);
  EXPECT_TRUE(pt[0].device && pt[0].write);
  std::vector<uint8_t> snap = k_.DmirrorSnapshot(mirror_, a, 2).value.data;
  EXPECT_EQ(snap[0], kDmirrorProtDevPrivateLocal | kDmirrorProtWrite);
  EXPECT_REP_OK(k_);
  EXPECT_EQ(ToSys(a, n), n);
  EXPECT_EQ(DevicePages(a, n), 0u);
  EXPECT_TRUE(PtOf(k_, mirror_).empty()) << "the driver erased what it moved back";
  EXPECT_EQ(PageFrees(), n) << "every device page freed once";
  EXPECT_EQ(k_.CpuRead(pid_, a, kMaxAccess).value,
            std::vector<uint8_t>(data.begin(), data.begin() + kMaxAccess));
  EXPECT_EQ(ToSys(a, n), 0u) << "nothing left on the device";
}

// hmm-tests.c migrate_fault: the CPU brings pages back one by one.
TEST_P(DmirrorMigrateTest, ACpuFaultBringsThePageBack) {
  uint64_t a = Map(4);
  const std::vector<uint8_t> data = Pattern(4, 7);
  ASSERT_EQ(k_.CpuWrite(pid_, a, data), Errno::kOk);
  ASSERT_EQ(ToDev(a, 4).cpages, 4u);
  const uint64_t dpfn = PteAt(k_, pid_, a + kPage)->pfn;
  EXPECT_EQ(k_.CpuRead(pid_, a + kPage, kPage).value,
            std::vector<uint8_t>(data.begin() + kPage, data.begin() + 2 * kPage));
  EXPECT_EQ(DevicePages(a, 4), 3u) << "one page came back";
  std::vector<DeviceEventInfo> events = k_.DeviceEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].fault && events[0].pfn == dpfn && events[0].addr == a + kPage);
  EXPECT_TRUE(!events[1].fault && events[1].pfn == dpfn) << "then freed";
  EXPECT_TRUE(PteAt(k_, pid_, a + kPage)->write) << "write as the entry was";
  std::vector<PteInfo> pt = PtOf(k_, mirror_);
  EXPECT_EQ(pt.size(), 3u) << "the owner's mirror lost the page that moved";
  EXPECT_EQ(ToSys(a, 4), 3u);
  EXPECT_EQ(k_.CpuRead(pid_, a, 4 * kPage).value, data);
}

TEST_P(DmirrorMigrateTest, FailAllocFailsOneAllocationOnce) {
  uint64_t a = Map(4);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Pattern(4, 2)), Errno::kOk);
  ASSERT_EQ(k_.DmirrorFlags(mirror_, kDmirrorFlagFailAlloc), Errno::kOk);
  EXPECT_EQ(k_.Mirrors()[0].flags, kDmirrorFlagFailAlloc);
  EXPECT_EQ(k_.DmirrorMigrateToDev(mirror_, a, 4).err, Errno::kNoEnt) << "page 0 is missing";
  EXPECT_EQ(k_.Mirrors()[0].flags, 0u) << "cleared by the failure";
  EXPECT_FALSE(PteAt(k_, pid_, a)->device);
  EXPECT_EQ(DevicePages(a, 4), 3u) << "what moved stays moved";
  ASSERT_EQ(k_.DmirrorFlags(mirror_, kDmirrorFlagFailAlloc), Errno::kOk);
  EXPECT_EQ(ToSys(a, 4), 2u) << "the first system allocation fails";
  EXPECT_EQ(ToSys(a, 4), 1u);
}

TEST_P(DmirrorMigrateTest, EmptySlotsAndTheZeroPageGoToTheDevice) {
  uint64_t a = Map(3);
  uint64_t ro = Map(2, kProtRead);
  ASSERT_TRUE(k_.CpuRead(pid_, a + kPage, 1).ok());
  ASSERT_TRUE(k_.CpuRead(pid_, ro, 1).ok());
  Result<DmirrorResult> r = k_.DmirrorMigrateToDev(mirror_, a, 3);
  if (V18()) {
    EXPECT_EQ(r.err, Errno::kNoEnt) << "the zero page did not move, so pt lacks it";
  } else {
    EXPECT_EQ(r.value.data, Fill(3 * kPage, 0));
  }
  EXPECT_EQ(DevicePages(a, 3), V18() ? 2u : 3u) << "v18 leaves the zero page";
  EXPECT_TRUE(PteAt(k_, pid_, a)->write) << "an empty slot of a writable VMA";
  if (V18()) {
    // The zero page did not move, so it is not in pt: the read-back fails.
    EXPECT_EQ(k_.DmirrorMigrateToDev(mirror_, ro, 2).err, Errno::kNoEnt);
  } else {
    EXPECT_EQ(ToDev(ro, 2).cpages, 2u);
    EXPECT_FALSE(PteAt(k_, pid_, ro)->write);
    EXPECT_FALSE(PtOf(k_, mirror_).back().write) << "read-only for the device too";
  }
}

// hmm-tests.c migrate_shared: shared memory never moves to the device.
TEST_P(DmirrorMigrateTest, SharedMemoryStays) {
  uint64_t s = Map(2, kRW, kMapShared);
  ASSERT_EQ(k_.CpuWrite(pid_, s, Pattern(2, 4)), Errno::kOk);
  EXPECT_EQ(k_.DmirrorMigrateToDev(mirror_, s, 2).err, Errno::kNoEnt);
  EXPECT_EQ(DevicePages(s, 2), 0u);
  EXPECT_EQ(PageFrees(), 2u) << "both destinations freed unused";
  EXPECT_EQ(k_.CpuRead(pid_, s, 2 * kPage).value, Pattern(2, 4));
}

TEST_P(DmirrorMigrateTest, ForkedPagesMoveTogether) {
  uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Pattern(2, 6)), Errno::kOk);
  Pid child = k_.Fork(pid_).value;
  ASSERT_EQ(ToDev(a, 2).cpages, 2u);
  EXPECT_EQ(PteAt(k_, child, a)->pfn, PteAt(k_, pid_, a)->pfn);
  EXPECT_TRUE(PteAt(k_, child, a)->device);
  EXPECT_FALSE(PteAt(k_, pid_, a)->write) << "COW-shared: read-only";
  // The child's write brings the page back for both, then breaks COW.
  ASSERT_EQ(k_.CpuWrite(child, a, {0xEE}), Errno::kOk);
  EXPECT_FALSE(PteAt(k_, pid_, a)->device);
  EXPECT_EQ(k_.CpuRead(pid_, a, 2 * kPage).value, Pattern(2, 6));
  EXPECT_EQ(k_.CpuRead(child, a, 1).value, std::vector<uint8_t>{0xEE});
}

TEST_P(DmirrorMigrateTest, APinnedPageStays) {
  uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Pattern(2, 8)), Errno::kOk);
  PinId pin = k_.PinUserPages(pid_, a + kPage, 1).value;
  EXPECT_EQ(k_.DmirrorMigrateToDev(mirror_, a, 2).err, Errno::kNoEnt);
  EXPECT_EQ(DevicePages(a, 2), 1u);
  EXPECT_EQ(k_.Pins()[0].second[0], PteAt(k_, pid_, a + kPage)->pfn);
  ASSERT_EQ(k_.UnpinUserPages(pin), Errno::kOk);
  if (V18()) {
    // The seed invalidates every mirror at collect: page 0's entry is gone
    // from pt although the page stays on the device.
    EXPECT_EQ(k_.DmirrorMigrateToDev(mirror_, a, 2).err, Errno::kNoEnt);
  } else {
    EXPECT_EQ(ToDev(a, 2).data, Pattern(2, 8)) << "the owner's entry for page 0 stayed";
  }
  EXPECT_EQ(DevicePages(a, 2), 2u);
}

// hmm-tests.c migrate_release: RELEASE brings everything back, then the
// driver's chunks go; a chunk page the trace holds keeps its chunk.
TEST_P(DmirrorMigrateTest, ReleaseEvictsTheDevice) {
  uint64_t a = Map(3);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Pattern(3, 3)), Errno::kOk);
  Pid child = k_.Fork(pid_).value;
  ASSERT_EQ(ToDev(a, 3).cpages, 3u);
  ASSERT_EQ(k_.DmirrorRelease(mirror_), Errno::kOk);
  EXPECT_EQ(DevicePages(a, 3), 0u);
  EXPECT_FALSE(PteAt(k_, child, a)->device) << "every mapping";
  EXPECT_EQ(PteAt(k_, child, a)->pfn, PteAt(k_, pid_, a)->pfn);
  EXPECT_TRUE(PtOf(k_, mirror_).empty());
  EXPECT_TRUE(k_.Devmems().empty()) << "the unused chunk is gone";
  EXPECT_EQ(k_.CpuRead(child, a, 3 * kPage).value, Pattern(3, 3));
  ASSERT_EQ(ToDev(a + kPage, 1).cpages, 1u);
  const uint64_t chunk = k_.Devmems()[0].id;
  const uint64_t held = k_.DevicePageAlloc(chunk).value;
  ASSERT_EQ(k_.DmirrorRelease(mirror_), Errno::kOk);
  ASSERT_EQ(k_.Devmems().size(), 1u) << "a held page keeps its chunk";
  ASSERT_EQ(k_.DevicePagePut(held), Errno::kOk);
  ASSERT_EQ(k_.DmirrorRelease(mirror_), Errno::kOk);
  EXPECT_TRUE(k_.Devmems().empty());
}

TEST_P(DmirrorMigrateTest, ReleaseWithoutRamKeepsTheRestOnTheDevice) {
  uint64_t a = Map(4);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Pattern(4, 5)), Errno::kOk);
  ASSERT_EQ(ToDev(a, 4).cpages, 4u);
  uint64_t filler = Map(k_.ram_pages() - 2);
  ASSERT_EQ(CpuWriteAll(k_, pid_, filler, Fill((k_.ram_pages() - 2) * kPage, 1)), Errno::kOk);
  EXPECT_EQ(k_.DmirrorRelease(mirror_), Errno::kNoMem);
  EXPECT_EQ(DevicePages(a, 4), 2u) << "the first two (pfn order) came back";
  EXPECT_FALSE(PteAt(k_, pid_, a)->device);
  EXPECT_EQ(k_.Devmems().size(), 1u);
  ASSERT_EQ(k_.Munmap(pid_, filler, (k_.ram_pages() - 2) * kPage), Errno::kOk);
  ASSERT_EQ(k_.DmirrorRelease(mirror_), Errno::kOk);
  EXPECT_EQ(k_.CpuRead(pid_, a, 4 * kPage).value, Pattern(4, 5));
}

// docs/migrate.md: another device's mirror loses its entries at collect; a
// second mirror of the owner device where pages move (v18: at collect too).
TEST_P(DmirrorMigrateTest, OtherMirrorsStayASubsetOfTheCpu) {
  uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Pattern(2, 9)), Errno::kOk);
  uint64_t same = k_.HmmMirrorRegister(DeviceId(0), pid_).value;
  uint64_t other = k_.HmmMirrorRegister(DeviceId(1), pid_).value;
  for (uint64_t m : {same, other}) ASSERT_TRUE(k_.DmirrorRead(m, a, 2).ok());
  ASSERT_EQ(k_.DmirrorFlags(mirror_, kDmirrorFlagFailAlloc), Errno::kOk);
  EXPECT_EQ(k_.DmirrorMigrateToDev(mirror_, a, 2).err, Errno::kNoEnt);  // page 0 stays
  EXPECT_TRUE(PtOf(k_, other).empty());
  std::vector<PteInfo> pt = PtOf(k_, same);
  if (V18()) {
    EXPECT_TRUE(pt.empty());
  } else {
    ASSERT_EQ(pt.size(), 1u) << "the page that stayed keeps its entry";
    EXPECT_EQ(pt[0].pfn, PteAt(k_, pid_, a)->pfn);
  }
  // Through the other device, the moved page comes back (its owner's fault).
  EXPECT_EQ(k_.DmirrorRead(other, a, 2).value.data, Pattern(2, 9));
  EXPECT_EQ(DevicePages(a, 2), 0u);
}

}  // namespace
}  // namespace hmm::impl
