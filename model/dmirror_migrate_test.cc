// File: model/dmirror_migrate_test.cc
//
// The dummy device's migration in model::Kernel (docs/migrate.md, 6.1
// lib/test_hmm.c): the guards of MIGRATE_TO_DEV and MIGRATE_TO_SYS, the
// kernel tests' expectations at model level (migrate, migrate_shared,
// migrate_multiple, migrate_release, the empty and zero-page cases), the
// allocator (chunks, FAIL_ALLOC), two devices, fork, munmap, RELEASE, FLAGS,
// and the CPU fault that migrates a page back. Each fixture checks every
// invariant when torn down.

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/kernel.h"
#include "model/migrate_test_util.h"
#include "model/test_util.h"

namespace hmm::model {
namespace {

constexpr uint64_t kN = 16;
using DmirrorMigrateTest = MigrateTest;

std::string AsString(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

TEST_F(DmirrorMigrateTest, GuardsInOrderChangeNothing) {
  const uint64_t a = Map(2);
  ASSERT_EQ(Map(1, kProtNone), a + Pages(2));
  const Pid other = k_.CreateProcess().value;
  ASSERT_EQ(k_.HmmMirrorRegister(DeviceId(1), other).value, 2u);
  ASSERT_EQ(k_.Exit(other), Errno::kOk);
  const State before = k_.state();
  constexpr uint64_t kTooMany = kMaxDmirrorPages + 1;
  for (bool to_dev : {true, false}) {
    auto call = [&](uint64_t mirror, uint64_t addr, uint64_t npages) {
      return to_dev ? k_.DmirrorMigrateToDev(mirror, addr, npages).err
                    : k_.DmirrorMigrateToSys(mirror, addr, npages).err;
    };
    EXPECT_EQ(call(99, a + 1, 0), Errno::kNoEnt);                // the mirror first
    EXPECT_EQ(call(1, a + 1, kTooMany), Errno::kInval);          // unaligned
    EXPECT_EQ(call(1, a, 0), Errno::kInval);                     // no pages
    EXPECT_EQ(call(1, kTaskSize - Pages(1), 2), Errno::kInval);  // past kTaskSize
    EXPECT_EQ(call(1, a, kTooMany), Errno::kNoMem);              // the bounce buffer
    EXPECT_EQ(call(2, a, 1), Errno::kInval);                     // the process exited
    EXPECT_EQ(call(1, a - Pages(1), 1), Errno::kInval);          // no VMA
    EXPECT_EQ(call(1, a + Pages(2), 1), Errno::kInval);          // a VMA without PROT_READ
  }
  EXPECT_EQ(k_.state(), before);
}

// hmm-tests.c "migrate": RW anon init i; MIGRATE_TO_DEV -> cpages == npages,
// the mirror reads i.
TEST_F(DmirrorMigrateTest, MigrateMovesEveryPageAndReadsItBack) {
  const uint64_t a = Map(kN);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(kN, 1)), Errno::kOk);
  EXPECT_EQ(ToDev(a, kN), (DmirrorResult{kN, 0, PagesOf(kN, 1)}));
  ASSERT_EQ(k_.state().devmems.size(), 1u);  // the driver's first chunk
  const Devmem& chunk = k_.state().devmems.at(1);
  EXPECT_TRUE(chunk.dmirror_chunk);
  EXPECT_EQ(chunk.device, DeviceId(0));
  EXPECT_EQ(chunk.npages, kDmirrorChunkBytes / kPageSize);
  for (uint64_t i = 0; i < kN; ++i) {
    EXPECT_EQ(PteAt(pid_, a + Pages(i)), DevicePte(kChunkPfn + i, true)) << i;
    EXPECT_EQ(PtAt(a + Pages(i)), DevicePte(kChunkPfn + i, true)) << i;
    EXPECT_EQ(chunk.pages.at(kChunkPfn + i).data.At(0), uint8_t(1 + i)) << i;
    EXPECT_FALSE(chunk.pages.at(kChunkPfn + i).held) << i;
  }
  EXPECT_TRUE(k_.state().pages.empty());
  EXPECT_TRUE(Events().empty());
  // The CPU reads them by migrating each back: one fault and one page_free each.
  EXPECT_EQ(Read(pid_, a, Pages(kN)), AsString(PagesOf(kN, 1)));
  EXPECT_EQ(Events().size(), 2 * kN);
  EXPECT_EQ(Events()[0], FaultEvent(1, kChunkPfn, pid_, a));
  EXPECT_EQ(Events()[1], PageFreeEvent(1, kChunkPfn));
  EXPECT_TRUE(MirrorOf().pt.empty());  // every entry changed
  EXPECT_TRUE(PteAt(pid_, a).write);   // write bits kept
}

TEST_F(DmirrorMigrateTest, MigrateTwiceKeepsTheMirrorsEntries) {
  const uint64_t a = Map(kN);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(kN, 1)), Errno::kOk);
  ToDev(a, kN);
  const State before = k_.state();
  // Nothing is collected (the pages are device pages already): the owner's
  // mirrors keep their entries, and the read-back finds every page.
  EXPECT_EQ(ToDev(a, kN), (DmirrorResult{kN, 0, PagesOf(kN, 1)}));
  EXPECT_EQ(k_.state(), before);
}

// hmm-tests.c "migrate_shared": shared anonymous memory is not migratable and
// its holes are not fillable, so nothing lands in the pt.
TEST_F(DmirrorMigrateTest, SharedMemoryIsNoEnt) {
  const uint64_t a = Map(kN, kRw, kMapShared);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(2, 1)), Errno::kOk);
  EXPECT_EQ(k_.DmirrorMigrateToDev(1, a, kN).err, Errno::kNoEnt);
  EXPECT_FALSE(OnDevice(a, 1));
  EXPECT_TRUE(MirrorOf().pt.empty());
  EXPECT_EQ(PageFrees(), 2u);  // the two declined destinations
}

TEST_F(DmirrorMigrateTest, EmptyAndZeroPageSlotsReadAsZeros) {
  const uint64_t a = Map(4);
  ASSERT_TRUE(k_.CpuRead(pid_, a + Pages(1), 1).ok());  // page 1: the zero page
  const std::vector<uint8_t> zeros(Pages(4), 0);
  EXPECT_EQ(ToDev(a, 4), (DmirrorResult{4, 0, zeros}));
  EXPECT_TRUE(OnDevice(a, 4));
  EXPECT_TRUE(PteAt(pid_, a + Pages(1)).write);  // a filled slot: as the VMA
  EXPECT_EQ(Read(pid_, a, Pages(4)), std::string(Pages(4), '\0'));
}

TEST(DmirrorMigrateV18Test, ZeroPageStaysAndTheReadBackIsNoEnt) {
  uint64_t a = 0;
  Kernel k = KernelWithMapping(Profile::kV18, 2, &a);
  const Pid pid(1);
  ASSERT_TRUE(k.CpuRead(pid, a, 1).ok());
  ASSERT_EQ(k.HmmMirrorRegister(DeviceId(0), pid).value, 1u);
  EXPECT_EQ(k.DmirrorMigrateToDev(1, a, 2).err, Errno::kNoEnt);
  EXPECT_TRUE(k.state().procs.at(pid).ptes.at(AddrToVpn(a)).zero);
  EXPECT_TRUE(k.state().procs.at(pid).ptes.at(AddrToVpn(a + Pages(1))).device);
  ExpectInvariantsHold(k);
}

TEST_F(DmirrorMigrateTest, PinnedPageStaysAndTheReadBackIsNoEnt) {
  const uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(2, 1)), Errno::kOk);
  const Pte pinned = PteAt(pid_, a + Pages(1));
  ASSERT_TRUE(k_.PinUserPages(pid_, a + Pages(1), 1).ok());
  EXPECT_EQ(k_.DmirrorMigrateToDev(1, a, 2).err, Errno::kNoEnt);
  EXPECT_TRUE(OnDevice(a, 1));  // what moved stays moved
  EXPECT_EQ(PteAt(pid_, a + Pages(1)), pinned);
}

TEST_F(DmirrorMigrateTest, FailAllocDeclinesOnePage) {
  const uint64_t a = Map(4);
  ASSERT_EQ(k_.DmirrorFlags(1, kDmirrorFlagFailAlloc), Errno::kOk);
  EXPECT_EQ(MirrorOf().flags, kDmirrorFlagFailAlloc);
  EXPECT_EQ(k_.DmirrorMigrateToDev(1, a, 4).err, Errno::kNoEnt);
  EXPECT_EQ(MirrorOf().flags, 0u);                     // once
  EXPECT_EQ(Proc(pid_).ptes.count(AddrToVpn(a)), 0u);  // the first page was declined
  EXPECT_TRUE(OnDevice(a + Pages(1), 3));
  EXPECT_EQ(ToDev(a, 4).cpages, 4u);
}

TEST_F(DmirrorMigrateTest, FlagsGuards) {
  EXPECT_EQ(k_.DmirrorFlags(99, 2), Errno::kNoEnt);
  EXPECT_EQ(k_.DmirrorFlags(1, 2), Errno::kInval);
  EXPECT_EQ(k_.DmirrorFlags(1, kDmirrorFlagFailAlloc | 4), Errno::kInval);
  EXPECT_EQ(MirrorOf().flags, 0u);
  EXPECT_EQ(k_.DmirrorFlags(1, 0), Errno::kOk);
}

TEST_F(DmirrorMigrateTest, AllocatorTakesTheLowestFreePageOfTheDevicesMemory) {
  AddDeviceMemory();  // devmem 1 (device 0) and 2 (device 1), one section each
  const uint64_t a = Map(2);
  ASSERT_EQ(k_.DevicePagePut(DeviceEntryAt(1, a)), Errno::kOk);
  Dread(a, 2);                        // the pt maps page 0, a device page already
  EXPECT_EQ(ToDev(a, 2).cpages, 2u);  // and keeps it: page 0 does not change
  EXPECT_EQ(PteAt(pid_, a + Pages(1)), DevicePte(kLocalPfn + 1, true));  // devmem 1's lowest free
  EXPECT_EQ(k_.state().devmems.size(), 2u);
}

// A trace devmem of device 0 with one page (4 KiB sections): the allocator
// takes it, then adds a chunk; RELEASE removes only the chunk.
TEST(DmirrorMigrateChunkTest, AllocatorFillsTheDevicesMemoryThenAddsAChunk) {
  Config config;
  config.max_physmem_bits = 32;
  config.section_bytes = kPageSize;
  Kernel k(config);
  const Pid pid = k.CreateProcess().value;
  const uint64_t a = k.Mmap(pid, 0, Pages(2), kRw, kMapPrivate).value;
  ASSERT_EQ(k.HmmMirrorRegister(DeviceId(0), pid).value, 1u);
  ASSERT_EQ(k.HmmDevmemAdd(DeviceId(0), kPageSize).value, 1u);
  const uint64_t first = (uint64_t{1} << 32) >> kPageShift;
  ASSERT_EQ(k.DmirrorMigrateToDev(1, a, 2).value.cpages, 2u);
  const Process& p = k.state().procs.at(pid);
  EXPECT_EQ(p.ptes.at(AddrToVpn(a)), DevicePte(first, true));
  EXPECT_EQ(p.ptes.at(AddrToVpn(a + Pages(1))), DevicePte(first + 1, true));  // the chunk's
  ASSERT_EQ(k.state().devmems.size(), 2u);
  EXPECT_FALSE(k.state().devmems.at(1).dmirror_chunk);
  EXPECT_TRUE(k.state().devmems.at(2).dmirror_chunk);
  EXPECT_EQ(k.state().devmems.at(2).npages, kDmirrorChunkBytes / kPageSize);
  ASSERT_EQ(k.DmirrorRelease(1), Errno::kOk);
  EXPECT_EQ(k.state().devmems.size(), 1u);  // the trace's devmem stays
  EXPECT_EQ(k.state().events.size(), 2u);
  ExpectInvariantsHold(k);
}

// hmm-tests.c "migrate_multiple" (private): migrate, then MIGRATE_TO_SYS.
TEST_F(DmirrorMigrateTest, MigrateToSysMovesBackAndErasesThePt) {
  const uint64_t a = Map(kN);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(kN, 1)), Errno::kOk);
  ToDev(a, kN);
  ASSERT_EQ(k_.DmirrorFlags(1, kDmirrorFlagFailAlloc), Errno::kOk);
  EXPECT_EQ(k_.DmirrorMigrateToSys(1, a, kN).value, (DmirrorResult{kN - 1, 0, {}}));
  EXPECT_TRUE(OnDevice(a, 1));  // FAIL_ALLOC declined the first
  EXPECT_TRUE(InPt(a));
  EXPECT_EQ(k_.DmirrorMigrateToSys(1, a, kN).value, (DmirrorResult{1, 0, {}}));
  EXPECT_TRUE(MirrorOf().pt.empty());
  EXPECT_EQ(PageFrees(), kN);
  EXPECT_EQ(Events().size(), kN);  // no CPU fault
  EXPECT_EQ(Read(pid_, a, Pages(kN)), AsString(PagesOf(kN, 1)));
  EXPECT_EQ(k_.DmirrorMigrateToSys(1, a, kN).value.cpages, 0u);  // nothing left
}

TEST_F(DmirrorMigrateTest, PiecesOf64PagesEndAtTheVma) {
  const uint64_t a = Map(100);
  ASSERT_EQ(Map(1, kProtNone), a + Pages(100));
  EXPECT_EQ(ToDev(a, 100).cpages, 100u);
  // A piece beyond the VMA: earlier pieces stay migrated.
  ASSERT_EQ(k_.DmirrorMigrateToSys(1, a, 100).value.cpages, 100u);
  EXPECT_EQ(k_.DmirrorMigrateToDev(1, a + Pages(36), 65).err, Errno::kInval);
  EXPECT_TRUE(OnDevice(a + Pages(36), 64));
}

// dev 1 cannot migrate dev 0's pages (select System only); its READ faults
// them back through their owner.
TEST_F(DmirrorMigrateTest, TwoDevices) {
  const uint64_t a = Map(4);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(4, 1)), Errno::kOk);
  ToDev(a, 4);
  ASSERT_EQ(k_.HmmMirrorRegister(DeviceId(1), pid_).value, 2u);
  EXPECT_EQ(k_.DmirrorMigrateToDev(2, a, 4).err, Errno::kNoEnt);
  EXPECT_TRUE(OnDevice(a, 4));
  EXPECT_EQ(Dread(a, 4, 2), (DmirrorResult{4, 1, PagesOf(4, 1)}));
  EXPECT_FALSE(OnDevice(a, 1));
  EXPECT_EQ(Events().size(), 8u);  // a fault and a page_free per page
  EXPECT_EQ(Events()[6], FaultEvent(1, kChunkPfn + 3, pid_, a + Pages(3)));
  EXPECT_TRUE(MirrorOf(1).pt.empty());
}

TEST_F(DmirrorMigrateTest, ForkThenWriteInEitherProcess) {
  const uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(2, 1)), Errno::kOk);
  ToDev(a, 2);
  const Pid child = k_.Fork(pid_).value;
  EXPECT_EQ(PteAt(child, a), DevicePte(kChunkPfn, false));
  // The child writes page 0: migrated back for both, then the child's COW copy.
  ASSERT_EQ(k_.CpuWrite(child, a, Bytes("c")), Errno::kOk);
  EXPECT_EQ(Read(child, a, 2), std::string("c") + char(1));
  EXPECT_EQ(Read(pid_, a, 2), std::string(2, char(1)));
  EXPECT_FALSE(PteAt(pid_, a).write);  // the parent's page, read-only until it writes
  // The parent writes page 1: both move back; the parent's copy.
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(1), Bytes("p")), Errno::kOk);
  EXPECT_EQ(Read(child, a + Pages(1), 1), std::string(1, char(2)));
  EXPECT_EQ(Read(pid_, a + Pages(1), 1), "p");
  EXPECT_EQ(PageFrees(), 2u);
}

TEST_F(DmirrorMigrateTest, MunmapOfDevicePagesFreesEachOnce) {
  const uint64_t a = Map(3);
  ToDev(a, 3);
  ASSERT_EQ(k_.Munmap(pid_, a, Pages(3)), Errno::kOk);
  EXPECT_EQ(Events(),
            (std::vector<DeviceEvent>{PageFreeEvent(1, kChunkPfn), PageFreeEvent(1, kChunkPfn + 1),
                                      PageFreeEvent(1, kChunkPfn + 2)}));
  EXPECT_EQ(k_.HmmDevmemRemove(1), Errno::kOk);  // nothing holds the chunk
}

// hmm-tests.c "migrate_release": RELEASE evicts all device memory; the CPU
// reads the data without a fault.
TEST_F(DmirrorMigrateTest, ReleaseEvictsAndKeepsTheData) {
  const uint64_t a = Map(kN);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(kN, 1)), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, a, Pages(1), kProtRead), Errno::kOk);
  ToDev(a, kN);
  ASSERT_EQ(k_.DmirrorRelease(1), Errno::kOk);
  EXPECT_EQ(PteAt(pid_, a), PagePte(PteAt(pid_, a).page, false));  // write bits kept
  EXPECT_EQ(PteAt(pid_, a + Pages(1)), PagePte(PteAt(pid_, a + Pages(1)).page, true));
  EXPECT_EQ(PageFrees(), kN);
  EXPECT_TRUE(MirrorOf().pt.empty());
  EXPECT_TRUE(k_.state().devmems.empty());  // the unused chunk went
  EXPECT_EQ(Read(pid_, a, Pages(kN)), AsString(PagesOf(kN, 1)));
  EXPECT_EQ(Events().size(), kN);  // no CPU fault
  EXPECT_EQ(k_.DmirrorRelease(99), Errno::kNoEnt);
  EXPECT_EQ(k_.DmirrorRelease(1), Errno::kOk);  // nothing left
}

TEST_F(DmirrorMigrateTest, ReleaseKeepsAChunkPageTheTraceHolds) {
  const uint64_t a = Map(1);
  ToDev(a, 1);
  const uint64_t held = k_.DevicePageAlloc(1).value;
  ASSERT_EQ(k_.DmirrorRelease(1), Errno::kOk);
  EXPECT_FALSE(OnDevice(a, 1));
  EXPECT_EQ(k_.state().devmems.count(1), 1u);
  ASSERT_EQ(k_.DevicePagePut(held), Errno::kOk);
}

class DmirrorMigrateSmallRamTest : public MigrateTest {
 protected:
  DmirrorMigrateSmallRamTest() : MigrateTest(/*ram_pages=*/2) {}
};

TEST_F(DmirrorMigrateSmallRamTest, ReleaseWithRamFullKeepsTheRest) {
  const uint64_t a = Map(3);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(2, 1)), Errno::kOk);
  ToDev(a, 3);                                                         // RAM is free again
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(2), Bytes("x")), Errno::kOk);  // one page back
  EXPECT_EQ(k_.DmirrorRelease(1), Errno::kNoMem);
  EXPECT_FALSE(OnDevice(a, 1));
  EXPECT_TRUE(OnDevice(a + Pages(1), 1));
  EXPECT_FALSE(InPt(a + Pages(1)));          // its piece was unmapped before the copies
  EXPECT_EQ(k_.state().devmems.size(), 1u);  // busy: a page stays on it
  EXPECT_EQ(k_.CpuRead(pid_, a + Pages(1), 1).err, Errno::kFault);  // SIGBUS: RAM full
  ASSERT_EQ(k_.Munmap(pid_, a, Pages(1)), Errno::kOk);
  EXPECT_EQ(Read(pid_, a + Pages(1), 1), std::string(1, char(2)));  // now it can move
}

}  // namespace
}  // namespace hmm::model
