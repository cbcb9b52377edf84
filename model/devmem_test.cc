// File: model/devmem_test.cc
//
// Device-private memory in model::Kernel (docs/devmem.md): every guard rung of
// the eight device operations, both placements, RAM hotplug conflicts, the
// page_free rule (exactly once per allocation, whichever reference goes last),
// and what the CPU paths do with a device entry: fork, mprotect, zaps, mremap,
// CPU access and pin. Each fixture checks every invariant when torn down.

#include <iterator>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "model/kernel.h"
#include "model/test_util.h"

namespace hmm::model {
namespace {

const Pid kNoPid(99);
constexpr uint64_t kSection = uint64_t{1} << 27;  // the default section_bytes
constexpr uint64_t kTop = uint64_t{1} << 46;      // the default 2^max_physmem_bits
constexpr uint64_t kPfn = kTop >> kPageShift;     // devmem 1's first page, default placement
constexpr uint64_t kPfnLimit = uint64_t{1} << kDevicePfnBits;

Config WithProfile(Profile profile, unsigned physmem_bits = 46, uint64_t section = kSection) {
  Config config;
  config.profile = profile;
  config.max_physmem_bits = physmem_bits;
  config.section_bytes = section;
  return config;
}

DeviceEvent PageFree(uint64_t devmem, uint64_t pfn) {
  return DeviceEvent{DeviceEvent::kPageFree, devmem, pfn, 0, 0};
}

DeviceEvent Fault(uint64_t devmem, uint64_t pfn, Pid pid, uint64_t addr) {
  return DeviceEvent{DeviceEvent::kFault, devmem, pfn, pid.value, addr};
}

// A default kernel with one process and devmem 1 (one section, at 2^46).
class DevmemTest : public ModelTest {
 protected:
  DevmemTest() { EXPECT_EQ(k_.HmmDevmemAdd(DeviceId(7), 1).value, 1u); }

  // Allocates the lowest free page of devmem 1 and installs it at addr.
  uint64_t AllocAt(uint64_t addr, bool write = true) {
    const uint64_t pfn = k_.DevicePageAlloc(1).value;
    EXPECT_EQ(k_.DeviceEntryInstall(pid_, addr, pfn, write), Errno::kOk);
    return pfn;
  }
  const std::vector<DeviceEvent>& Events() const { return k_.state().events; }
};

// --- HmmDevmemAdd ---

TEST_F(DevmemTest, AddZeroOrOversizeIsInval) {
  EXPECT_EQ(k_.HmmDevmemAdd(DeviceId(1), 0).err, Errno::kInval);
  EXPECT_EQ(k_.HmmDevmemAdd(DeviceId(1), UINT64_MAX).err, Errno::kInval);  // rounding wraps
  EXPECT_EQ(k_.HmmDevmemAdd(DeviceId(1), kTop + 1).err, Errno::kInval);
  EXPECT_EQ(k_.state().next_devmem, 2u);
}

TEST_F(DevmemTest, AddDefaultIsLowestSectionWindowAbovePhysmem) {
  const Devmem& first = k_.state().devmems.at(1);
  EXPECT_EQ(first.device, DeviceId(7));
  EXPECT_EQ(first.first_pfn, kPfn);
  EXPECT_EQ(first.npages, kSection / kPageSize);  // 1 byte rounds up to a section
  EXPECT_TRUE(first.pages.empty());               // all free
  EXPECT_EQ(k_.HmmDevmemAdd(DeviceId(7), kSection + 1).value, 2u);
  const Resource& res = k_.state().resources.at(kTop + kSection);
  EXPECT_EQ(res, (Resource{kTop + kSection, kTop + 3 * kSection, true, false, 2}));
  // A hole left by a removal is the lowest window again.
  ASSERT_EQ(k_.HmmDevmemRemove(1), Errno::kOk);
  EXPECT_EQ(k_.HmmDevmemAdd(DeviceId(7), 1).value, 3u);
  EXPECT_EQ(k_.state().devmems.at(3).first_pfn, kPfn);
}

TEST(DevmemPlacementTest, DefaultNoWindowBelowPfnLimitIsRange) {
  // 2^52-byte regions between 2^52 and 2^58: 63 fit.
  Kernel k(WithProfile(Profile::kDefault, 52, uint64_t{1} << 30));
  for (uint64_t i = 1; i <= 63; ++i) {
    ASSERT_EQ(k.HmmDevmemAdd(DeviceId(1), uint64_t{1} << 52).value, i);
  }
  const State before = k.state();
  EXPECT_EQ(k.HmmDevmemAdd(DeviceId(1), uint64_t{1} << 52).err, Errno::kRange);
  EXPECT_EQ(k.state(), before);
  EXPECT_EQ(k.state().devmems.at(63).first_pfn + k.state().devmems.at(63).npages, kPfnLimit);
  ExpectInvariantsHold(k);
}

TEST(DevmemPlacementTest, V18IsTopDownBelowPhysmemInStepsOfSize) {
  Kernel k(WithProfile(Profile::kV18, 32));
  const uint64_t top = uint64_t{1} << 32;
  ASSERT_EQ(k.HmmDevmemAdd(DeviceId(1), kSection).value, 1u);
  EXPECT_EQ(k.state().devmems.at(1).first_pfn, (top - kSection) >> kPageShift);
  ASSERT_EQ(k.HmmDevmemAdd(DeviceId(1), kSection).value, 2u);
  EXPECT_EQ(k.state().devmems.at(2).first_pfn, (top - 2 * kSection) >> kPageShift);
  // Two sections: top - 2s intersects devmem 2; top - 4s is the first free.
  ASSERT_EQ(k.HmmDevmemAdd(DeviceId(1), 2 * kSection).value, 3u);
  EXPECT_EQ(k.state().devmems.at(3).first_pfn, (top - 4 * kSection) >> kPageShift);
  ExpectInvariantsHold(k);
}

TEST(DevmemPlacementTest, V18NoFreeCandidateIsRange) {
  // Candidates for 2 GiB under 2^32: 2^31, then 0 (boot RAM).
  Kernel k(WithProfile(Profile::kV18, 32, uint64_t{1} << 30));
  ASSERT_EQ(k.HmmDevmemAdd(DeviceId(1), uint64_t{1} << 31).value, 1u);
  const State before = k.state();
  EXPECT_EQ(k.HmmDevmemAdd(DeviceId(1), uint64_t{1} << 31).err, Errno::kRange);
  EXPECT_EQ(k.state(), before);
  ExpectInvariantsHold(k);
}

TEST(DevmemPlacementTest, V18RangeThenRamHotAddOverItIsBusy) {
  Kernel k(WithProfile(Profile::kV18));
  ASSERT_EQ(k.HmmDevmemAdd(DeviceId(1), kSection).value, 1u);
  EXPECT_EQ(k.state().devmems.at(1).first_pfn, (kTop - kSection) >> kPageShift);
  EXPECT_EQ(k.RamHotAdd(kTop - kSection, kSection), Errno::kBusy);
  EXPECT_EQ(k.RamHotAdd(kTop - 2 * kSection, 2 * kSection), Errno::kBusy);
  EXPECT_EQ(k.RamHotAdd(kTop - 2 * kSection, kSection), Errno::kOk);
  EXPECT_EQ(k.state().resources.size(), 3u);
  ExpectInvariantsHold(k);
}

TEST(DevmemPlacementTest, DefaultNeverCollidesWithAnyHotAdd) {
  Kernel k;
  ASSERT_EQ(k.HmmDevmemAdd(DeviceId(1), kSection).value, 1u);
  // All of RAM's space above boot RAM hot-adds; the first byte above it is out of range.
  EXPECT_EQ(k.RamHotAdd(kSection, kTop - kSection), Errno::kOk);
  EXPECT_EQ(k.RamHotAdd(kTop, kSection), Errno::kRange);
  ASSERT_EQ(k.HmmDevmemAdd(DeviceId(1), kSection).value, 2u);
  EXPECT_EQ(k.state().devmems.at(2).first_pfn, (kTop + kSection) >> kPageShift);
  ExpectInvariantsHold(k);
}

// --- RamHotAdd, RamHotRemove ---

TEST_F(DevmemTest, RamHotAddRungs) {
  EXPECT_EQ(k_.RamHotAdd(kSection + kPageSize, kSection), Errno::kInval);
  EXPECT_EQ(k_.RamHotAdd(kSection, kPageSize), Errno::kInval);
  EXPECT_EQ(k_.RamHotAdd(kSection, 0), Errno::kInval);
  EXPECT_EQ(k_.RamHotAdd(kTop - kSection, 2 * kSection), Errno::kRange);
  EXPECT_EQ(k_.RamHotAdd(UINT64_MAX - kSection + 1, 2 * kSection), Errno::kRange);  // wraps
  EXPECT_EQ(k_.RamHotAdd(0, kSection), Errno::kBusy);  // boot RAM is [0, 4 MiB)
  EXPECT_EQ(k_.RamHotAdd(kSection, kSection), Errno::kOk);
  EXPECT_EQ(k_.state().resources.at(kSection), (Resource{kSection, 2 * kSection, false, false, 0}));
  EXPECT_EQ(k_.RamHotAdd(kSection, kSection), Errno::kBusy);
}

TEST(RamHotRemoveTest, Rungs) {
  Config config;
  config.section_bytes = uint64_t{4} << 20;  // boot RAM, 4 MiB, is one section
  Kernel k(config);
  const uint64_t section = config.section_bytes;
  ASSERT_EQ(k.RamHotAdd(section, 2 * section), Errno::kOk);
  ASSERT_EQ(k.HmmDevmemAdd(DeviceId(1), 1).value, 1u);
  EXPECT_EQ(k.RamHotRemove(section + 1, section), Errno::kInval);
  EXPECT_EQ(k.RamHotRemove(section, 0), Errno::kInval);
  EXPECT_EQ(k.RamHotRemove(section, section), Errno::kNoEnt);  // part of a resource
  EXPECT_EQ(k.RamHotRemove(kTop, section), Errno::kNoEnt);     // device memory
  EXPECT_EQ(k.RamHotRemove(0, section), Errno::kBusy);         // boot RAM
  EXPECT_EQ(k.RamHotRemove(section, 2 * section), Errno::kOk);
  EXPECT_EQ(k.RamHotRemove(section, 2 * section), Errno::kNoEnt);
  EXPECT_EQ(k.state().resources.size(), 2u);
  ExpectInvariantsHold(k);
}

// --- DevicePageAlloc, DevicePagePut, PageFrees ---

TEST_F(DevmemTest, AllocUnknownDevmemIsNoEnt) {
  EXPECT_EQ(k_.DevicePageAlloc(2).err, Errno::kNoEnt);
  ASSERT_EQ(k_.HmmDevmemRemove(1), Errno::kOk);
  EXPECT_EQ(k_.DevicePageAlloc(1).err, Errno::kNoEnt);
}

TEST_F(DevmemTest, AllocTakesLowestFreePfnAndCounts) {
  EXPECT_EQ(k_.DevicePageAlloc(1).value, kPfn);
  EXPECT_EQ(k_.DevicePageAlloc(1).value, kPfn + 1);
  ASSERT_EQ(k_.DevicePagePut(kPfn), Errno::kOk);
  EXPECT_EQ(k_.DevicePageAlloc(1).value, kPfn);
  EXPECT_EQ(k_.state().devmems.at(1).pages.at(kPfn), (DevicePage{true, 2, {}}));
  EXPECT_EQ(k_.PageFrees(1).value, 1u);
}

TEST(DevicePageAllocTest, NoFreePageIsNoMem) {
  Config config;
  config.section_bytes = 2 * kPageSize;
  Kernel k(config);
  const Pid pid = k.CreateProcess().value;
  const uint64_t addr = k.Mmap(pid, 0, Pages(1), kRw, kMapPrivate).value;
  ASSERT_EQ(k.HmmDevmemAdd(DeviceId(1), 1).value, 1u);
  const uint64_t pfn = k.DevicePageAlloc(1).value;
  // Put by the driver but still mapped: in use, not free.
  ASSERT_EQ(k.DeviceEntryInstall(pid, addr, pfn, true), Errno::kOk);
  ASSERT_EQ(k.DevicePagePut(pfn), Errno::kOk);
  EXPECT_EQ(k.DevicePageAlloc(1).value, pfn + 1);
  const State before = k.state();
  EXPECT_EQ(k.DevicePageAlloc(1).err, Errno::kNoMem);
  EXPECT_EQ(k.state(), before);
  ExpectInvariantsHold(k);
}

TEST_F(DevmemTest, PutRungs) {
  EXPECT_EQ(k_.DevicePagePut(5), Errno::kNoEnt);                            // a RAM pfn
  EXPECT_EQ(k_.DevicePagePut(kPfn + kSection / kPageSize), Errno::kNoEnt);  // past the region
  EXPECT_EQ(k_.DevicePagePut(kPfn), Errno::kInval);                         // never allocated
  ASSERT_EQ(k_.DevicePageAlloc(1).value, kPfn);
  EXPECT_EQ(k_.DevicePagePut(kPfn), Errno::kOk);
  EXPECT_EQ(k_.DevicePagePut(kPfn), Errno::kInval);  // the count never goes below 1
  EXPECT_EQ(Events(), std::vector<DeviceEvent>{PageFree(1, kPfn)});
}

TEST_F(DevmemTest, PageFreesUnknownIsNoEnt) {
  EXPECT_EQ(k_.PageFrees(2).err, Errno::kNoEnt);
  EXPECT_EQ(k_.PageFrees(1).value, 0u);
  ASSERT_EQ(k_.DevicePageAlloc(1).value, kPfn);
  ASSERT_EQ(k_.DevicePagePut(kPfn), Errno::kOk);
  ASSERT_EQ(k_.HmmDevmemRemove(1), Errno::kOk);
  EXPECT_EQ(k_.PageFrees(1).err, Errno::kNoEnt);
  EXPECT_EQ(Events().size(), 1u);  // the log keeps what happened
}

// --- DeviceEntryInstall ---

TEST_F(DevmemTest, InstallRungsInOrder) {
  const uint64_t priv = Map(1);
  const uint64_t shm = Map(1, kRw, kMapShared);
  ASSERT_EQ(k_.DevicePageAlloc(1).value, kPfn);
  EXPECT_EQ(k_.DeviceEntryInstall(kNoPid, priv + 1, 5, true), Errno::kSrch);
  EXPECT_EQ(k_.DeviceEntryInstall(pid_, priv + 1, 5, true), Errno::kInval);
  EXPECT_EQ(k_.DeviceEntryInstall(pid_, 0, 5, true), Errno::kNoEnt);
  EXPECT_EQ(k_.DeviceEntryInstall(pid_, 0, kPfn + 1, true), Errno::kInval);  // free page
  EXPECT_EQ(k_.DeviceEntryInstall(pid_, 0, kPfn, true), Errno::kFault);
  EXPECT_EQ(k_.DeviceEntryInstall(pid_, kTaskSize, kPfn, true), Errno::kFault);
  EXPECT_EQ(k_.DeviceEntryInstall(pid_, shm, kPfn, true), Errno::kInval);
  ASSERT_EQ(k_.CpuWrite(pid_, priv, Bytes("x")), Errno::kOk);
  EXPECT_EQ(k_.DeviceEntryInstall(pid_, priv, kPfn, true), Errno::kBusy);
  EXPECT_TRUE(Events().empty());
}

TEST_F(DevmemTest, InstallIsWritableOnlyInAWritableVma) {
  const uint64_t ro = Map(1, kProtRead);
  const uint64_t rw = Map(1);
  AllocAt(ro, /*write=*/true);
  const uint64_t pfn = AllocAt(rw, /*write=*/true);
  EXPECT_EQ(PteAt(pid_, ro), (Pte{false, 0, false, true, kPfn}));
  EXPECT_EQ(PteAt(pid_, rw), (Pte{false, 0, true, true, pfn}));
  // A page mapped writable gets no second entry (it would be a private page
  // mapped writable twice); one mapped read-only gets more, all read-only,
  // held or put while still mapped.
  const uint64_t again = Map(1);
  EXPECT_EQ(k_.DeviceEntryInstall(pid_, again, pfn, false), Errno::kBusy);
  ASSERT_EQ(k_.DevicePagePut(kPfn), Errno::kOk);
  EXPECT_EQ(k_.DeviceEntryInstall(pid_, again, kPfn, /*write=*/true), Errno::kOk);
  EXPECT_EQ(PteAt(pid_, again), (Pte{false, 0, false, true, kPfn}));
}

// --- HmmDevmemRemove ---

TEST_F(DevmemTest, RemoveUnknownIsNoEnt) {
  EXPECT_EQ(k_.HmmDevmemRemove(0), Errno::kNoEnt);
  EXPECT_EQ(k_.HmmDevmemRemove(2), Errno::kNoEnt);
  ASSERT_EQ(k_.HmmDevmemRemove(1), Errno::kOk);
  EXPECT_EQ(k_.HmmDevmemRemove(1), Errno::kNoEnt);
  EXPECT_EQ(k_.state().resources.size(), 1u);  // boot RAM only
}

TEST_F(DevmemTest, RemoveBusyWhileHeldOrMappedThenOk) {
  const uint64_t addr = Map(1);
  ASSERT_EQ(k_.DevicePageAlloc(1).value, kPfn);
  EXPECT_EQ(k_.HmmDevmemRemove(1), Errno::kBusy);  // held
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, addr, kPfn, true), Errno::kOk);
  ASSERT_EQ(k_.DevicePagePut(kPfn), Errno::kOk);
  EXPECT_EQ(k_.HmmDevmemRemove(1), Errno::kBusy);  // mapped
  ASSERT_EQ(k_.Munmap(pid_, addr, Pages(1)), Errno::kOk);
  EXPECT_EQ(k_.HmmDevmemRemove(1), Errno::kOk);
  EXPECT_TRUE(k_.state().devmems.empty());
  EXPECT_EQ(k_.state().resources.count(kTop), 0u);
  EXPECT_EQ(Events(), std::vector<DeviceEvent>{PageFree(1, kPfn)});
}

// --- page_free: exactly once per allocation, whichever reference goes last ---

TEST_F(DevmemTest, PutThenZapFreesAtTheZap) {
  const uint64_t addr = Map(1);
  AllocAt(addr);
  ASSERT_EQ(k_.DevicePagePut(kPfn), Errno::kOk);
  EXPECT_TRUE(Events().empty());
  ASSERT_EQ(k_.Munmap(pid_, addr, Pages(1)), Errno::kOk);
  EXPECT_EQ(Events(), std::vector<DeviceEvent>{PageFree(1, kPfn)});
}

TEST_F(DevmemTest, ZapThenPutFreesAtThePut) {
  const uint64_t addr = Map(1);
  AllocAt(addr);
  ASSERT_EQ(k_.MadviseDontneed(pid_, addr, Pages(1)), Errno::kOk);
  EXPECT_TRUE(Events().empty());
  EXPECT_TRUE(Proc(pid_).ptes.empty());
  ASSERT_EQ(k_.DevicePagePut(kPfn), Errno::kOk);
  EXPECT_EQ(Events(), std::vector<DeviceEvent>{PageFree(1, kPfn)});
  // Allocated again and freed again: one page_free per allocation.
  AllocAt(addr);
  ASSERT_EQ(k_.DevicePagePut(kPfn), Errno::kOk);
  ASSERT_EQ(k_.Munmap(pid_, addr, Pages(1)), Errno::kOk);
  EXPECT_EQ(k_.PageFrees(1).value, 2u);
}

TEST_F(DevmemTest, OneZapFreesInAddressOrderAtEachPagesLastEntry) {
  const uint64_t addr = Map(3);
  const uint64_t first = AllocAt(addr + Pages(1), /*write=*/false);  // kPfn at page 1
  const uint64_t second = AllocAt(addr);            // kPfn + 1 at page 0
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, addr + Pages(2), first, false), Errno::kOk);
  ASSERT_EQ(k_.DevicePagePut(first), Errno::kOk);
  ASSERT_EQ(k_.DevicePagePut(second), Errno::kOk);
  ASSERT_EQ(k_.Munmap(pid_, addr, Pages(3)), Errno::kOk);
  EXPECT_EQ(Events(), (std::vector<DeviceEvent>{PageFree(1, second), PageFree(1, first)}));
}

TEST_F(DevmemTest, ExitFreesInVpnOrder) {
  const uint64_t addr = Map(2);
  const uint64_t pfn_at_1 = AllocAt(addr + Pages(1));  // kPfn
  const uint64_t pfn_at_0 = AllocAt(addr);             // kPfn + 1
  ASSERT_EQ(k_.DevicePagePut(pfn_at_1), Errno::kOk);
  ASSERT_EQ(k_.DevicePagePut(pfn_at_0), Errno::kOk);
  ASSERT_EQ(k_.Exit(pid_), Errno::kOk);
  EXPECT_EQ(Events(), (std::vector<DeviceEvent>{PageFree(1, pfn_at_0), PageFree(1, pfn_at_1)}));
}

TEST_F(DevmemTest, MapFixedOverAndMremapTailZap) {
  const uint64_t addr = Map(2);
  const uint64_t a = AllocAt(addr);
  const uint64_t b = AllocAt(addr + Pages(1));
  ASSERT_EQ(k_.DevicePagePut(a), Errno::kOk);
  ASSERT_EQ(k_.DevicePagePut(b), Errno::kOk);
  ASSERT_EQ(k_.Mremap(pid_, addr, Pages(2), Pages(1), 0, 0).value, addr);
  EXPECT_EQ(Events(), std::vector<DeviceEvent>{PageFree(1, b)});
  ASSERT_EQ(k_.Mmap(pid_, addr, Pages(1), kRw, kMapPrivate | kMapFixed).value, addr);
  EXPECT_EQ(Events(), (std::vector<DeviceEvent>{PageFree(1, b), PageFree(1, a)}));
}

TEST_F(DevmemTest, MremapMovesTheEntryAndFreesNothing) {
  const uint64_t addr = Map(1);
  AllocAt(addr);
  ASSERT_EQ(k_.DevicePagePut(kPfn), Errno::kOk);
  const uint64_t dst = kMmapBase + Pages(100);
  ASSERT_EQ(k_.Mremap(pid_, addr, Pages(1), Pages(1), kMremapMaymove | kMremapFixed, dst).value,
            dst);
  EXPECT_TRUE(Events().empty());
  EXPECT_EQ(PteAt(pid_, dst), (Pte{false, 0, true, true, kPfn}));
  EXPECT_EQ(Proc(pid_).ptes.count(AddrToVpn(addr)), 0u);
}

// --- fork, mprotect ---

TEST_F(DevmemTest, ForkSharesTheEntryReadOnlyInBoth) {
  const uint64_t addr = Map(1);
  AllocAt(addr);
  ASSERT_EQ(k_.DevicePagePut(kPfn), Errno::kOk);
  const Pid child = k_.Fork(pid_).value;
  const Pte read_entry{false, 0, false, true, kPfn};
  EXPECT_EQ(PteAt(pid_, addr), read_entry);
  EXPECT_EQ(PteAt(child, addr), read_entry);
  // Two references from entries: the page is free only when both are gone.
  ASSERT_EQ(k_.Exit(child), Errno::kOk);
  EXPECT_TRUE(Events().empty());
  ASSERT_EQ(k_.Munmap(pid_, addr, Pages(1)), Errno::kOk);
  EXPECT_EQ(Events(), std::vector<DeviceEvent>{PageFree(1, kPfn)});
}

TEST_F(DevmemTest, MprotectWithoutWriteDowngradesTheEntry) {
  const uint64_t addr = Map(1);
  AllocAt(addr);
  ASSERT_EQ(k_.Mprotect(pid_, addr, Pages(1), kProtRead), Errno::kOk);
  EXPECT_FALSE(PteAt(pid_, addr).write);
  ASSERT_EQ(k_.Mprotect(pid_, addr, Pages(1), kRw), Errno::kOk);
  EXPECT_EQ(PteAt(pid_, addr), (Pte{false, 0, false, true, kPfn}));  // stays read
}

// --- CPU access and pin reaching a device entry ---

TEST_F(DevmemTest, CpuReadMigratesThePageBackThroughTheCallback) {
  const uint64_t addr = Map(1);
  AllocAt(addr);
  ASSERT_EQ(k_.DevicePagePut(kPfn), Errno::kOk);  // only the entry holds it
  EXPECT_EQ(Read(pid_, addr + 5, 2), std::string(2, '\0'));
  EXPECT_EQ(Events(), (std::vector<DeviceEvent>{Fault(1, kPfn, pid_, addr), PageFree(1, kPfn)}));
  EXPECT_EQ(PteAt(pid_, addr), (Pte{false, PteAt(pid_, addr).page, true}));  // write kept
}

TEST_F(DevmemTest, CpuWriteToReadOnlyEntryMigratesThenWrites) {
  const uint64_t addr = Map(2);
  AllocAt(addr + Pages(1), /*write=*/false);
  EXPECT_EQ(k_.CpuWrite(pid_, addr + Pages(1) - 1, Bytes("ab")), Errno::kOk);
  EXPECT_EQ(Events(), std::vector<DeviceEvent>{Fault(1, kPfn, pid_, addr + Pages(1))});
  EXPECT_EQ(Read(pid_, addr + Pages(1) - 1, 2), "ab");
  EXPECT_TRUE(PteAt(pid_, addr + Pages(1)).write);  // the only mapping: reused
  EXPECT_TRUE(k_.state().devmems.at(1).pages.at(kPfn).held);  // the driver still holds it
}

TEST_F(DevmemTest, PinMigratesTheDevicePageBackAndPinsTheSystemPage) {
  const uint64_t addr = Map(2);
  AllocAt(addr + Pages(1));
  const Result<PinId> pin = k_.PinUserPages(pid_, addr, 2);
  ASSERT_EQ(pin.err, Errno::kOk);
  EXPECT_EQ(Events(), std::vector<DeviceEvent>{Fault(1, kPfn, pid_, addr + Pages(1))});
  EXPECT_EQ(k_.state().pins.at(pin.value),
            (std::vector<PageId>{PteAt(pid_, addr).page, PteAt(pid_, addr + Pages(1)).page}));
  EXPECT_FALSE(PteAt(pid_, addr + Pages(1)).device);  // a device page is never pinned
}

// RAM full: the page cannot move back, the callback answers SIGBUS (kFault),
// the entry stays, and the partial rule holds.
TEST(DevmemSmallRamTest, AccessFaultsWhenThePageCannotMoveBack) {
  Kernel k(/*ram_pages=*/1);
  const Pid pid = k.CreateProcess().value;
  const uint64_t addr = k.Mmap(pid, 0, Pages(2), kRw, kMapPrivate).value;
  ASSERT_EQ(k.HmmDevmemAdd(DeviceId(7), 1).value, 1u);
  ASSERT_EQ(k.DevicePageAlloc(1).value, kPfn);
  ASSERT_EQ(k.DeviceEntryInstall(pid, addr + Pages(1), kPfn, true), Errno::kOk);
  EXPECT_EQ(k.CpuWrite(pid, addr + Pages(1) - 1, Bytes("ab")), Errno::kFault);
  EXPECT_EQ(k.CpuRead(pid, addr + Pages(1) - 1, 1).value, Bytes("a"));  // the page before
  EXPECT_EQ(k.CpuRead(pid, addr + Pages(1), 1).err, Errno::kFault);
  EXPECT_EQ(k.PinUserPages(pid, addr, 2).err, Errno::kFault);
  EXPECT_TRUE(k.state().pins.empty());
  EXPECT_EQ(k.state().next_pin, 1u);
  const DeviceEvent fault = Fault(1, kPfn, pid, addr + Pages(1));
  EXPECT_EQ(k.state().events, (std::vector<DeviceEvent>{fault, fault, fault}));
  EXPECT_EQ(k.state().procs.at(pid).ptes.at(AddrToVpn(addr + Pages(1))),
            (Pte{false, 0, true, true, kPfn}));  // the entry stays
  ExpectInvariantsHold(k);
}

TEST_F(DevmemTest, AccessTheVmaForbidsFaultsWithoutTheCallback) {
  const uint64_t addr = Map(1);
  AllocAt(addr);
  ASSERT_EQ(k_.Mprotect(pid_, addr, Pages(1), kProtRead), Errno::kOk);
  EXPECT_EQ(k_.CpuWrite(pid_, addr, Bytes("x")), Errno::kFault);
  EXPECT_EQ(k_.PinUserPages(pid_, addr, 1).err, Errno::kFault);
  ASSERT_EQ(k_.Mprotect(pid_, addr, Pages(1), kProtNone), Errno::kOk);
  EXPECT_EQ(k_.CpuRead(pid_, addr, 1).err, Errno::kFault);
  EXPECT_TRUE(Events().empty());
}

// --- Canonicalize ---

TEST_F(DevmemTest, CanonicalizeKeepsDeviceIdentities) {
  const uint64_t addr = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, addr, Bytes("x")), Errno::kOk);
  AllocAt(addr + Pages(1));
  ASSERT_EQ(k_.DevicePagePut(k_.DevicePageAlloc(1).value), Errno::kOk);  // logs page_free
  const State canonical = Canonicalize(k_.state());
  EXPECT_EQ(canonical, k_.state());
  EXPECT_EQ(canonical.procs.at(pid_).ptes.at(AddrToVpn(addr + Pages(1))).device_pfn, kPfn);
  State other = k_.state();
  other.events.clear();
  EXPECT_FALSE(Canonicalize(other) == canonical);
}

// --- Every invariant after every step of a pseudo-random run ---

// A live devmem's id, or now and then any id (removed or never used).
uint64_t SomeDevmem(const State& s, std::mt19937_64& rng) {
  if (s.devmems.empty() || rng() % 8 == 0) return 1 + rng() % s.next_devmem;
  return std::next(s.devmems.begin(), rng() % s.devmems.size())->first;
}

// A pfn of a live devmem: mostly one it has handed out, else any of its pages
// or the one just past it.
uint64_t SomeDevicePfn(const State& s, std::mt19937_64& rng) {
  if (s.devmems.empty()) return kPfn;
  const Devmem& devmem = std::next(s.devmems.begin(), rng() % s.devmems.size())->second;
  if (!devmem.pages.empty() && rng() % 4 != 0) {
    return std::next(devmem.pages.begin(), rng() % devmem.pages.size())->first;
  }
  return devmem.first_pfn + rng() % (devmem.npages + 1);
}

// One pseudo-random operation mixing the device operations with the CPU paths
// that meet device entries (fork, zaps, mremap, mprotect, access, pin), on a
// small window and 4-page sections, so that placement collisions, hot-add
// conflicts, refcounts and page_free all happen within a few thousand steps.
void RandomDeviceStep(Kernel& k, std::mt19937_64& rng) {
  auto pick = [&rng](uint64_t n) { return rng() % n; };
  const State& s = k.state();
  const size_t n = s.procs.size();
  const Pid pid = n == 0 ? Pid(1) : std::next(s.procs.begin(), pick(n))->first;
  const uint64_t addr = kMmapBase + Pages(pick(8));
  const uint64_t len = Pages(1 + pick(3));
  const uint64_t dst = kMmapBase + Pages(pick(12));
  const uint32_t kind = pick(4) != 0 ? kMapPrivate : kMapShared;
  const uint64_t top = uint64_t{1} << s.config.max_physmem_bits;
  const uint64_t hot = top - s.config.section_bytes * (1 + pick(16));
  // clang-format off
  switch (pick(20)) {
    case 0: (void)(n < 3 ? k.CreateProcess().err : k.Exit(pid)); break;
    case 1: (void)k.Mmap(pid, addr, len, pick(4), kind | kMapFixed); break;
    case 2: (void)k.Mmap(pid, addr, len, kRw, kMapPrivate | kMapFixed); break;
    case 3: (void)k.Munmap(pid, addr, len); break;
    case 4: (void)k.Mprotect(pid, addr, len, pick(4)); break;
    case 5: (void)k.Mremap(pid, addr, len, Pages(1 + pick(3)), pick(4), dst); break;
    case 6: (void)(n < 4 ? k.Fork(pid).err : k.Exit(pid)); break;
    case 7: (void)k.MadviseDontneed(pid, addr, len); break;
    case 8: (void)k.CpuRead(pid, addr, len); break;
    case 9: (void)k.CpuWrite(pid, addr, std::vector<uint8_t>(len, 1)); break;
    case 10: (void)k.PinUserPages(pid, addr, 1 + pick(2)); break;
    case 11: (void)k.UnpinUserPages(PinId(1 + pick(s.next_pin))); break;
    case 12: (void)(s.devmems.size() < 4 ? k.HmmDevmemAdd(DeviceId(1), Pages(1 + pick(8))).err
                                         : k.HmmDevmemRemove(SomeDevmem(s, rng))); break;
    case 13: (void)k.HmmDevmemRemove(SomeDevmem(s, rng)); break;
    case 14: (void)k.DevicePageAlloc(SomeDevmem(s, rng)); break;
    case 15: (void)k.DevicePagePut(SomeDevicePfn(s, rng)); break;
    case 16: case 17: (void)k.DeviceEntryInstall(pid, addr, SomeDevicePfn(s, rng), pick(2)); break;
    case 18: (void)k.RamHotAdd(hot, s.config.section_bytes * (1 + pick(2))); break;
    default: (void)k.RamHotRemove(hot, s.config.section_bytes); break;
  }
  // clang-format on
}

TEST(DevmemRandomRunTest, EveryStepKeepsEveryInvariantInBothProfiles) {
  for (Profile profile : {Profile::kDefault, Profile::kV18}) {
    std::mt19937_64 rng(2017);
    Config config = WithProfile(profile, 32, Pages(4));
    config.ram_pages = 32;
    Kernel k(config);
    for (int step = 0; step < 5000; ++step) {
      RandomDeviceStep(k, rng);
      ASSERT_EQ(CheckAllInvariants(k.state(), k.ram_pages()), std::vector<std::string>{})
          << "after step " << step;
      if (step % 100 != 0) continue;
      const State canonical = Canonicalize(k.state());
      ASSERT_EQ(Canonicalize(canonical), canonical) << "after step " << step;
    }
    EXPECT_FALSE(k.state().events.empty());
  }
}

}  // namespace
}  // namespace hmm::model
