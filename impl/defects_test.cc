// File: impl/defects_test.cc
//
// Each seeded defect is reachable and changes what an operation does; all
// but the harmless ones (kForkCopiesSharedPtes, kForkKeepsDeviceWrite, the
// three mirroring defects, kMigrateLosesDirtyData and kMigratePinnedPage,
// whose damage is abstract state) also break the representation invariant.
// The property suites (props/defects_test.cc) must find them through the
// model; this test only proves the hooks are wired.

#include "impl/defects.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "impl/kernel.h"
#include "model/types.h"

namespace hmm::impl {
namespace {

constexpr uint32_t kRW = kProtRead | kProtWrite;

bool RepMentions(const Kernel& k, const std::string& name) {
  for (const std::string& line : k.RepInvariant()) {
    if (line.rfind(name, 0) == 0) return true;
  }
  return false;
}

class DefectsTest : public ::testing::Test {
 protected:
  void TearDown() override { SetSeededDefect(Defect::kNone); }
};

TEST_F(DefectsTest, NamesAreTheEnumerators) {
  EXPECT_STREQ(DefectName(Defect::kNone), "kNone");
  EXPECT_STREQ(DefectName(Defect::kForkCopiesSharedPtes), "kForkCopiesSharedPtes");
  EXPECT_STREQ(DefectName(Defect::kPageFreeTwice), "kPageFreeTwice");
  EXPECT_STREQ(DefectName(Defect::kForkKeepsDeviceWrite), "kForkKeepsDeviceWrite");
  EXPECT_STREQ(DefectName(Defect::kPlacementOverlapsRam), "kPlacementOverlapsRam");
  EXPECT_STREQ(DefectName(Defect::kMigratePageFreeTwice), "kMigratePageFreeTwice");
  EXPECT_STREQ(DefectName(Defect::kNoInvalidateOnMprotect), "kNoInvalidateOnMprotect");
  EXPECT_STREQ(DefectName(Defect::kRangeDoneAlwaysValid), "kRangeDoneAlwaysValid");
  EXPECT_STREQ(DefectName(Defect::kForkSkipsMirrorInvalidate), "kForkSkipsMirrorInvalidate");
  EXPECT_STREQ(DefectName(Defect::kDefaultInvalidatesAtEnd), "kDefaultInvalidatesAtEnd");
  Defect parsed;
  ASSERT_TRUE(ParseDefect("ForkSkipsMirrorInvalidate", &parsed));
  EXPECT_EQ(parsed, Defect::kForkSkipsMirrorInvalidate);
  EXPECT_FALSE(DefectActive(Defect::kCowNotBroken));
  SetSeededDefect(Defect::kCowNotBroken);
  EXPECT_TRUE(DefectActive(Defect::kCowNotBroken));
  EXPECT_FALSE(DefectActive(Defect::kNone));
}

TEST_F(DefectsTest, CowNotBrokenLeaksTheChildsWriteIntoTheParent) {
  SetSeededDefect(Defect::kCowNotBroken);
  Kernel k;
  Pid parent = k.CreateProcess().value;
  uint64_t a = k.Mmap(parent, 0, kPageSize, kRW, kMapPrivate).value;
  ASSERT_EQ(k.CpuWrite(parent, a, {1}), Errno::kOk);
  Pid child = k.Fork(parent).value;
  ASSERT_EQ(k.CpuWrite(child, a, {2}), Errno::kOk);
  EXPECT_EQ(k.CpuRead(parent, a, 1).value, std::vector<uint8_t>{2});
  EXPECT_TRUE(RepMentions(k, "InvWritablePrivatePageExclusive"));
}

TEST_F(DefectsTest, ZeroPageWrittenInPlaceDirtiesTheZeroPage) {
  SetSeededDefect(Defect::kZeroPageWrittenInPlace);
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = k.Mmap(p, 0, 2 * kPageSize, kRW, kMapPrivate).value;
  ASSERT_TRUE(k.CpuRead(p, a, 1).ok());
  ASSERT_EQ(k.CpuWrite(p, a, {3}), Errno::kOk);
  EXPECT_EQ(k.CpuRead(p, a + kPageSize, 1).value, std::vector<uint8_t>{3});
  EXPECT_TRUE(k.PagesInUse().empty());
  EXPECT_TRUE(RepMentions(k, "InvZeroPtePresentReadOnly"));
  EXPECT_TRUE(RepMentions(k, "InvZeroPageZeroed"));
}

TEST_F(DefectsTest, MunmapLeaksRefKeepsTheUnmappedPage) {
  SetSeededDefect(Defect::kMunmapLeaksRef);
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = k.Mmap(p, 0, kPageSize, kRW, kMapPrivate).value;
  ASSERT_EQ(k.CpuWrite(p, a, {4}), Errno::kOk);
  ASSERT_EQ(k.Munmap(p, a, kPageSize), Errno::kOk);
  EXPECT_EQ(k.PagesInUse().size(), 1u);
  EXPECT_TRUE(RepMentions(k, "InvPageRefcountMatchesHolders"));
}

TEST_F(DefectsTest, MprotectKeepsWriteLeavesWritablePtes) {
  SetSeededDefect(Defect::kMprotectKeepsWrite);
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = k.Mmap(p, 0, kPageSize, kRW, kMapPrivate).value;
  ASSERT_EQ(k.CpuWrite(p, a, {5}), Errno::kOk);
  ASSERT_EQ(k.Mprotect(p, a, kPageSize, kProtRead), Errno::kOk);
  EXPECT_TRUE(k.Ptes(p)[0].write);
  EXPECT_TRUE(RepMentions(k, "InvPteWriteImpliesVmaWrite"));
}

TEST_F(DefectsTest, ForkCopiesSharedPtesGivesTheChildPtes) {
  SetSeededDefect(Defect::kForkCopiesSharedPtes);
  Kernel k;
  Pid parent = k.CreateProcess().value;
  uint64_t s = k.Mmap(parent, 0, kPageSize, kRW, kMapShared).value;
  ASSERT_EQ(k.CpuWrite(parent, s, {6}), Errno::kOk);
  Pid child = k.Fork(parent).value;
  EXPECT_EQ(k.Ptes(child).size(), 1u);
  EXPECT_TRUE(k.RepInvariant().empty()) << "harmless to the representation";
}

// --- Device-private memory (docs/devmem.md) ---

constexpr uint64_t kLimit = uint64_t{1} << 46;  // 2^max_physmem_bits, the default
constexpr uint64_t kSection = uint64_t{1} << 27;

Config SmallSections() {
  Config c;
  c.section_bytes = 4 * kPageSize;
  return c;
}

uint64_t PageFreeEvents(const Kernel& k) {
  uint64_t n = 0;
  for (const DeviceEventInfo& e : k.DeviceEvents()) n += !e.fault;
  return n;
}

TEST_F(DefectsTest, PageFreeTwiceLogsAtThePutAndAgainAtTheZap) {
  SetSeededDefect(Defect::kPageFreeTwice);
  Kernel k(SmallSections());
  Pid p = k.CreateProcess().value;
  uint64_t a = k.Mmap(p, 0, kPageSize, kRW, kMapPrivate).value;
  uint64_t devmem = k.HmmDevmemAdd(DeviceId(1), 1).value;
  uint64_t pfn = k.DevicePageAlloc(devmem).value;
  ASSERT_EQ(k.DeviceEntryInstall(p, a, pfn, true), Errno::kOk);
  ASSERT_EQ(k.DevicePagePut(pfn), Errno::kOk);  // the entry still maps it: no page_free due
  EXPECT_EQ(PageFreeEvents(k), 1u);
  EXPECT_TRUE(RepMentions(k, "InvPageFreeOncePerAllocation"));
  ASSERT_EQ(k.Munmap(p, a, kPageSize), Errno::kOk);  // the page_free due
  EXPECT_EQ(PageFreeEvents(k), 2u);
  EXPECT_EQ(k.PageFrees(devmem).value, 2u);
  EXPECT_TRUE(RepMentions(k, "InvPageFreeOncePerAllocation"));
}

TEST_F(DefectsTest, ForkKeepsDeviceWriteLeavesBothEntriesWritable) {
  SetSeededDefect(Defect::kForkKeepsDeviceWrite);
  Kernel k(SmallSections());
  Pid parent = k.CreateProcess().value;
  uint64_t a = k.Mmap(parent, 0, kPageSize, kRW, kMapPrivate).value;
  uint64_t devmem = k.HmmDevmemAdd(DeviceId(1), 1).value;
  uint64_t pfn = k.DevicePageAlloc(devmem).value;
  ASSERT_EQ(k.DeviceEntryInstall(parent, a, pfn, true), Errno::kOk);
  Pid child = k.Fork(parent).value;
  EXPECT_TRUE(k.Ptes(parent)[0].write);
  EXPECT_TRUE(k.Ptes(child)[0].write);
  // Counts stay right and both VMAs are writable: only the model sees it
  // (the abstraction's entries differ from the model's read entries).
  EXPECT_TRUE(k.RepInvariant().empty()) << "harmless to the representation";
}

TEST_F(DefectsTest, PlacementOverlapsRamStartsBelowTheLimit) {
  SetSeededDefect(Defect::kPlacementOverlapsRam);
  Kernel k;
  ASSERT_TRUE(k.HmmDevmemAdd(DeviceId(1), kSection).ok());
  EXPECT_EQ(k.Resources().back().start, kLimit - kSection);
  EXPECT_EQ(k.RamHotAdd(kLimit - kSection, kSection), Errno::kBusy);
  EXPECT_TRUE(RepMentions(k, "InvDeviceRangePlacement"));
}

TEST_F(DefectsTest, WithoutADefectTheDeviceStepsAreClean) {
  Kernel k(SmallSections());
  Pid parent = k.CreateProcess().value;
  uint64_t a = k.Mmap(parent, 0, kPageSize, kRW, kMapPrivate).value;
  uint64_t devmem = k.HmmDevmemAdd(DeviceId(1), 1).value;
  EXPECT_EQ(k.Resources().back().start, kLimit);
  uint64_t pfn = k.DevicePageAlloc(devmem).value;
  ASSERT_EQ(k.DevicePagePut(pfn), Errno::kOk);
  ASSERT_EQ(k.DevicePageAlloc(devmem).value, pfn);
  ASSERT_EQ(k.DeviceEntryInstall(parent, a, pfn, true), Errno::kOk);
  Pid child = k.Fork(parent).value;
  EXPECT_FALSE(k.Ptes(parent)[0].write);
  EXPECT_FALSE(k.Ptes(child)[0].write);
  ASSERT_EQ(k.Munmap(parent, a, kPageSize), Errno::kOk);
  ASSERT_EQ(k.Exit(child), Errno::kOk);
  EXPECT_EQ(PageFreeEvents(k), 1u);
  ASSERT_EQ(k.DevicePagePut(pfn), Errno::kOk);
  EXPECT_EQ(PageFreeEvents(k), 2u);
  EXPECT_TRUE(k.RepInvariant().empty());
}

// --- Mirroring (docs/mirror.md) ---

// The mirror's pt entry at addr, if any.
std::optional<PteInfo> MirrorPteAt(const Kernel& k, uint64_t addr) {
  for (const MirrorInfo& m : k.Mirrors()) {
    for (const PteInfo& p : m.pt) {
      if (p.vpn == addr / kPageSize) return p;
    }
  }
  return std::nullopt;
}

TEST_F(DefectsTest, NoInvalidateOnMprotectLeavesTheDeviceWritable) {
  SetSeededDefect(Defect::kNoInvalidateOnMprotect);
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = k.Mmap(p, 0, kPageSize, kRW, kMapPrivate).value;
  uint64_t mirror = k.HmmMirrorRegister(DeviceId(0), p).value;
  ASSERT_EQ(k.CpuWrite(p, a, {1}), Errno::kOk);
  ASSERT_TRUE(k.DmirrorRead(mirror, a, 1).ok());
  uint64_t range = k.HmmVmaGetPfns(mirror, a, 1).value;
  ASSERT_EQ(k.Mprotect(p, a, kPageSize, kProtRead), Errno::kOk);
  EXPECT_FALSE(k.Ptes(p)[0].write);
  EXPECT_TRUE(MirrorPteAt(k, a)->write) << "the device still writes the page";
  EXPECT_TRUE(k.HmmVmaRangeDone(range).value) << "nothing marked the range";
  EXPECT_TRUE(k.RepInvariant().empty()) << "only the model sees it";
}

TEST_F(DefectsTest, RangeDoneAlwaysValidHidesTheInvalidation) {
  SetSeededDefect(Defect::kRangeDoneAlwaysValid);
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = k.Mmap(p, 0, 2 * kPageSize, kRW, kMapPrivate).value;
  uint64_t mirror = k.HmmMirrorRegister(DeviceId(0), p).value;
  uint64_t range = k.HmmVmaGetPfns(mirror, a, 2).value;
  ASSERT_EQ(k.Munmap(p, a, kPageSize), Errno::kOk);
  EXPECT_FALSE(k.Ranges()[0].valid);
  EXPECT_TRUE(k.HmmVmaRangeDone(range).value);
  ASSERT_EQ(k.CpuWrite(p, a + kPageSize, {1}), Errno::kOk);
  range = k.HmmVmaGetPfns(mirror, a + kPageSize, 1).value;
  ASSERT_EQ(k.Munmap(p, a + kPageSize, kPageSize), Errno::kOk);
  EXPECT_EQ(k.DmirrorCommit(range).value, true) << "the commit goes ahead";
  EXPECT_TRUE(k.RepInvariant().empty()) << "only the model sees it";
}

TEST_F(DefectsTest, ForkSkipsMirrorInvalidateLeavesTheDeviceWritable) {
  SetSeededDefect(Defect::kForkSkipsMirrorInvalidate);
  Kernel k;
  Pid parent = k.CreateProcess().value;
  uint64_t a = k.Mmap(parent, 0, kPageSize, kRW, kMapPrivate).value;
  uint64_t mirror = k.HmmMirrorRegister(DeviceId(0), parent).value;
  ASSERT_EQ(k.CpuWrite(parent, a, {1}), Errno::kOk);
  ASSERT_TRUE(k.DmirrorRead(mirror, a, 1).ok());
  Pid child = k.Fork(parent).value;
  EXPECT_FALSE(k.Ptes(parent)[0].write);
  EXPECT_TRUE(MirrorPteAt(k, a)->write) << "the device writes a page the child shares";
  ASSERT_EQ(k.DmirrorWrite(mirror, a, std::vector<uint8_t>(kPageSize, 2)).value.faults, 0u);
  EXPECT_EQ(k.CpuRead(child, a, 1).value, std::vector<uint8_t>{2});
  EXPECT_TRUE(k.RepInvariant().empty()) << "only the model sees it";
}

TEST_F(DefectsTest, WithoutADefectTheMirrorStepsAreClean) {
  Kernel k;
  Pid parent = k.CreateProcess().value;
  uint64_t a = k.Mmap(parent, 0, kPageSize, kRW, kMapPrivate).value;
  uint64_t mirror = k.HmmMirrorRegister(DeviceId(0), parent).value;
  ASSERT_EQ(k.CpuWrite(parent, a, {1}), Errno::kOk);
  ASSERT_TRUE(k.DmirrorRead(mirror, a, 1).ok());
  uint64_t range = k.HmmVmaGetPfns(mirror, a, 1).value;
  ASSERT_EQ(k.Mprotect(parent, a, kPageSize, kProtRead), Errno::kOk);
  EXPECT_FALSE(MirrorPteAt(k, a).has_value());
  EXPECT_FALSE(k.HmmVmaRangeDone(range).value);
  ASSERT_EQ(k.Mprotect(parent, a, kPageSize, kRW), Errno::kOk);
  ASSERT_TRUE(k.DmirrorRead(mirror, a, 1).ok());
  Pid child = k.Fork(parent).value;
  EXPECT_FALSE(MirrorPteAt(k, a).has_value());
  ASSERT_EQ(k.DmirrorWrite(mirror, a, std::vector<uint8_t>(kPageSize, 2)).value.faults, 1u);
  EXPECT_EQ(k.CpuRead(child, a, 1).value, std::vector<uint8_t>{1});
  EXPECT_TRUE(k.RepInvariant().empty());
}

TEST_F(DefectsTest, WithoutADefectTheSameStepsAreClean) {
  Kernel k;
  Pid parent = k.CreateProcess().value;
  uint64_t a = k.Mmap(parent, 0, kPageSize, kRW, kMapPrivate).value;
  ASSERT_EQ(k.CpuWrite(parent, a, {1}), Errno::kOk);
  Pid child = k.Fork(parent).value;
  ASSERT_EQ(k.CpuWrite(child, a, {2}), Errno::kOk);
  EXPECT_EQ(k.CpuRead(parent, a, 1).value, std::vector<uint8_t>{1});
  ASSERT_EQ(k.Mprotect(parent, a, kPageSize, kProtRead), Errno::kOk);
  ASSERT_EQ(k.Munmap(child, a, kPageSize), Errno::kOk);
  EXPECT_TRUE(k.RepInvariant().empty());
}

// --- Migration (docs/migrate.md) ---

// The CPU entry of pid at addr, if any.
std::optional<PteInfo> PteAt(const Kernel& k, Pid pid, uint64_t addr) {
  for (const PteInfo& p : k.Ptes(pid)) {
    if (p.vpn == addr / kPageSize) return p;
  }
  return std::nullopt;
}

// A process with `npages` private pages, written with 0x5A, and a mirror of it.
struct World {
  explicit World(uint64_t npages, uint32_t flags = kMapPrivate) {
    pid = k.CreateProcess().value;
    a = k.Mmap(pid, 0, npages * kPageSize, kRW, flags).value;
    EXPECT_EQ(k.CpuWrite(pid, a, std::vector<uint8_t>(npages * kPageSize, 0x5A)), Errno::kOk);
    mirror = k.HmmMirrorRegister(DeviceId(0), pid).value;
  }
  Kernel k;
  Pid pid;
  uint64_t a = 0, mirror = 0;
};

TEST_F(DefectsTest, LosesDirtyDataLeavesTheDevicePageZero) {
  SetSeededDefect(Defect::kMigrateLosesDirtyData);
  World w(1);
  Result<DmirrorResult> r = w.k.DmirrorMigrateToDev(w.mirror, w.a, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value.data, std::vector<uint8_t>(kPageSize, 0)) << "the bytes never reached it";
  EXPECT_EQ(w.k.CpuRead(w.pid, w.a, 1).value, std::vector<uint8_t>{0});
  EXPECT_TRUE(w.k.RepInvariant().empty()) << "only the bytes show it";
}

TEST_F(DefectsTest, LeavesMigrationEntryWhenAPageDoesNotMove) {
  SetSeededDefect(Defect::kMigrateLeavesMigrationEntry);
  World w(2);
  ASSERT_EQ(w.k.DmirrorFlags(w.mirror, kDmirrorFlagFailAlloc), Errno::kOk);
  EXPECT_EQ(w.k.DmirrorMigrateToDev(w.mirror, w.a, 2).err, Errno::kNoEnt);
  EXPECT_FALSE(PteAt(w.k, w.pid, w.a).has_value()) << "page 0 is neither mapped nor restored";
  EXPECT_TRUE(RepMentions(w.k, "InvNoMigrationEntry"));
  EXPECT_EQ(w.k.CpuRead(w.pid, w.a, 1).err, Errno::kFault) << "no migration ends it: no wait";
}

TEST_F(DefectsTest, PinnedPageMigratesAwayFromItsPin) {
  SetSeededDefect(Defect::kMigratePinnedPage);
  World w(1);
  PinId pin = w.k.PinUserPages(w.pid, w.a, 1).value;
  const uint64_t pinned = w.k.Pins()[0].second[0];
  ASSERT_TRUE(w.k.DmirrorMigrateToDev(w.mirror, w.a, 1).ok());
  EXPECT_TRUE(PteAt(w.k, w.pid, w.a)->device) << "the pinned page moved";
  ASSERT_EQ(w.k.CpuWrite(w.pid, w.a, {1}), Errno::kOk);
  EXPECT_NE(PteAt(w.k, w.pid, w.a)->pfn, pinned) << "the pin no longer sees the CPU's writes";
  EXPECT_EQ(w.k.PageData(pinned)[0], 0x5A);
  EXPECT_EQ(w.k.UnpinUserPages(pin), Errno::kOk);
  EXPECT_TRUE(w.k.RepInvariant().empty()) << "the counts still balance";
}

TEST_F(DefectsTest, BackGainsWriteOnAReadOnlyVma) {
  SetSeededDefect(Defect::kMigrateBackGainsWrite);
  World w(1);
  ASSERT_EQ(w.k.Mprotect(w.pid, w.a, kPageSize, kProtRead), Errno::kOk);
  ASSERT_TRUE(w.k.DmirrorMigrateToDev(w.mirror, w.a, 1).ok());
  EXPECT_FALSE(PteAt(w.k, w.pid, w.a)->write);
  ASSERT_EQ(w.k.CpuRead(w.pid, w.a, 1).value, std::vector<uint8_t>{0x5A});
  EXPECT_TRUE(PteAt(w.k, w.pid, w.a)->write);
  EXPECT_TRUE(RepMentions(w.k, "InvPteWriteImpliesVmaWrite"));
}

TEST_F(DefectsTest, PageFreeTwiceForAnUnusedDestination) {
  SetSeededDefect(Defect::kMigratePageFreeTwice);
  World w(1, kMapShared);  // shared memory: the device destination goes unused
  EXPECT_EQ(w.k.DmirrorMigrateToDev(w.mirror, w.a, 1).err, Errno::kNoEnt);
  EXPECT_EQ(PageFreeEvents(w.k), 2u);
  EXPECT_TRUE(RepMentions(w.k, "InvPageFreeOncePerAllocation"));
}

TEST_F(DefectsTest, WithoutADefectTheMigrationStepsAreClean) {
  World w(2);
  PinId pin = w.k.PinUserPages(w.pid, w.a + kPageSize, 1).value;
  ASSERT_EQ(w.k.Mprotect(w.pid, w.a, 2 * kPageSize, kProtRead), Errno::kOk);
  ASSERT_EQ(w.k.DmirrorFlags(w.mirror, kDmirrorFlagFailAlloc), Errno::kOk);
  EXPECT_EQ(w.k.DmirrorMigrateToDev(w.mirror, w.a, 2).err, Errno::kNoEnt);
  EXPECT_FALSE(PteAt(w.k, w.pid, w.a)->device) << "allocation failed: restored";
  EXPECT_FALSE(PteAt(w.k, w.pid, w.a + kPageSize)->device) << "pinned: restored";
  ASSERT_EQ(w.k.UnpinUserPages(pin), Errno::kOk);
  Result<DmirrorResult> r = w.k.DmirrorMigrateToDev(w.mirror, w.a, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value.data, std::vector<uint8_t>(2 * kPageSize, 0x5A));
  ASSERT_EQ(w.k.CpuRead(w.pid, w.a, 1).value, std::vector<uint8_t>{0x5A});
  EXPECT_FALSE(PteAt(w.k, w.pid, w.a)->write);
  World s(1, kMapShared);
  EXPECT_EQ(s.k.DmirrorMigrateToDev(s.mirror, s.a, 1).err, Errno::kNoEnt);
  EXPECT_EQ(PageFreeEvents(s.k), 1u);
  EXPECT_TRUE(w.k.RepInvariant().empty());
  EXPECT_TRUE(s.k.RepInvariant().empty());
}

}  // namespace
}  // namespace hmm::impl
