// File: model/linux61_dmirror_test.cc
//
// The linux-6.1 profile's device-side rules (docs/divergences.md): the dummy
// device's inclusive invalidation (D1), its files and bounds (D8-D11), the
// owner's device-private entry reported as it stands (D12, D13), the fault of
// a page table's rest (hmm_vma_fault()), eviction on close and exit, the
// owner device's mirrors left alone by migration (D15), coherent devices 2
// and 3 (D14), and try_to_migrate()'s rmap walk (D17).

#include <vector>

#include "gtest/gtest.h"
#include "model/kernel.h"
#include "model/linux61_test_util.h"
#include "model/test_util.h"

namespace hmm::model {
namespace {

using Linux61DmirrorTest = Linux61Test;
using Kinds = std::vector<KernelSplat::Kind>;

// D1: dmirror_do_update() erases [start, end] page-inclusive.
TEST_F(Linux61DmirrorTest, InvalidationErasesOnePageMore) {
  MapAt(kA, 4);
  ASSERT_EQ(Dread(kA, 4).value.faults, 1u);
  ASSERT_EQ(k_.Munmap(pid_, kA, Pages(1)), Errno::kOk);
  EXPECT_FALSE(InPt(kA + Pages(1)));
  EXPECT_TRUE(InPt(kA + Pages(2)));
  EXPECT_EQ(Dread(kA + Pages(1), 1).value.faults, 1u);
  EXPECT_EQ(Dread(kA + Pages(2), 1).value.faults, 0u);
}

// D8, D11: a file per device 0..3 (ENOENT otherwise), no limit on opens.
TEST_F(Linux61DmirrorTest, DeviceFilesAndNoMirrorLimit) {
  EXPECT_EQ(k_.HmmMirrorRegister(DeviceId(4), pid_).err, Errno::kNoEnt);
  for (uint64_t i = 0; i < kMaxMirrors; ++i) {
    ASSERT_EQ(k_.HmmMirrorRegister(DeviceId(1), pid_).err, Errno::kOk);
  }
}

// D9: only alignment and wrap-around are checked; past TASK_SIZE there is no VMA.
TEST_F(Linux61DmirrorTest, NoTaskSizeCheckInTheIoctls) {
  constexpr uint64_t kPast = uint64_t{1} << 47;
  EXPECT_EQ(Dread(kPast, 1).err, Errno::kFault);
  EXPECT_EQ(Dwrite(kPast, 1, 0x5a).err, Errno::kFault);
  EXPECT_EQ(Snapshot(kPast, 2), std::vector<uint8_t>(2, kDmirrorProtError));
  EXPECT_EQ(Dread(~uint64_t{0} - kPageSize + 1, 2).err, Errno::kInval);  // wraps
  EXPECT_EQ(Dread(kA, 0).err, Errno::kInval);
}

// D10: no 1024-page bounce limit; migration proceeds piecewise.
TEST_F(Linux61DmirrorTest, NoBounceBufferLimit) {
  MapAt(kA, 1025);
  Result<DmirrorResult> r = Dread(kA, 1025);
  ASSERT_EQ(r.err, Errno::kOk);
  EXPECT_EQ(r.value.cpages, 1025u);
  EXPECT_EQ(Dread(kA, (uint64_t{1} << 16) + 1).err, Errno::kNoMem);  // the model's own bound
  MapAt(kA + Pages(2048), 4);
  EXPECT_EQ(ToDev(kA + Pages(2048), 1025).err, Errno::kInval);
  EXPECT_TRUE(OnDevice(kA + Pages(2048) + Pages(3)));  // the first piece moved
}

// D12: the fault stores the owner's device-private page itself; READ kmap()s it.
TEST_F(Linux61DmirrorTest, ReadOfTheOwnersPageAfterForkOopses) {
  MapAt(kA, 1);
  ASSERT_EQ(ToDev(kA, 1).err, Errno::kOk);
  ASSERT_EQ(k_.Fork(pid_).err, Errno::kOk);  // erases the entry, keeps the device page
  EXPECT_EQ(Dread(kA, 1).err, Errno::kFault);
  EXPECT_EQ(Splats(), Kinds{KernelSplat::kOops});
  EXPECT_TRUE(MirrorOf().unbacked.count(AddrToVpn(kA)) != 0);
}

// D13: a write asks the owner's read-only device-private entry as it stands;
// dmirror_do_fault() warns and fails, the pages before it stored.
TEST_F(Linux61DmirrorTest, WriteToTheOwnersReadOnlyPageWarns) {
  MapAt(kA, 2);
  ASSERT_EQ(k_.CpuWrite(pid_, kA, std::vector<uint8_t>(Pages(2), 1)), Errno::kOk);
  ASSERT_EQ(ToDev(kA + Pages(1), 1).err, Errno::kOk);
  ASSERT_EQ(k_.Fork(pid_).err, Errno::kOk);
  ASSERT_EQ(k_.CpuWrite(pid_, kA, Bytes("x")), Errno::kOk);  // page 0 writable again
  EXPECT_EQ(Dwrite(kA, 2, 0x22).err, Errno::kFault);
  EXPECT_EQ(Splats(), Kinds{KernelSplat::kWarning});
  EXPECT_TRUE(InPt(kA));
  EXPECT_TRUE(OnDevice(kA + Pages(1)));
}

// hmm_vma_fault() faults the rest of the page table from the first page that
// needs it, within the VMA: an owner's device page there migrates back.
TEST_F(Linux61DmirrorTest, AFaultFaultsTheRestOfTheVma) {
  MapAt(kA, 2);
  ASSERT_EQ(ToDev(kA + Pages(1), 1).err, Errno::kOk);
  ASSERT_EQ(k_.MadviseDontneed(pid_, kA, Pages(1)), Errno::kOk);  // erases pt 0 and 1
  EXPECT_EQ(Dread(kA, 2).value.faults, 1u);
  EXPECT_FALSE(OnDevice(kA + Pages(1)));
  EXPECT_TRUE(Splats().empty());
  // Across a VMA boundary the device page stays, and the read oopses.
  MapAt(kA + Pages(4), 1, kProtRead);
  MapAt(kA + Pages(5), 1);
  ASSERT_EQ(ToDev(kA + Pages(5), 1).err, Errno::kOk);
  ASSERT_EQ(k_.Fork(pid_).err, Errno::kOk);
  EXPECT_EQ(Dread(kA + Pages(4), 2).err, Errno::kFault);
  EXPECT_EQ(Splats(), Kinds{KernelSplat::kOops});
}

// dmirror_fops_release(): the last close of a file evicts all of its
// device's memory; exit closes the process's files.
TEST_F(Linux61DmirrorTest, CloseAndExitEvictDeviceMemory) {
  MapAt(kA, 2);
  ASSERT_EQ(ToDev(kA, 2).err, Errno::kOk);
  const uint64_t other = k_.HmmMirrorRegister(DeviceId(0), pid_).value;
  ASSERT_EQ(k_.HmmMirrorUnregister(other), Errno::kOk);
  EXPECT_FALSE(OnDevice(kA));
  ASSERT_EQ(ToDev(kA, 2).err, Errno::kOk);
  const Pid child = k_.Fork(pid_).value;
  ASSERT_EQ(k_.Exit(pid_), Errno::kOk);
  EXPECT_EQ(k_.state().mirrors.count(1), 0u);
  EXPECT_FALSE(OnDevice(kA, child));
}

// D15: migration skips every mirror of the owner device; another file's
// entry outlives the page it names.
TEST_F(Linux61DmirrorTest, TheOwnersOtherMirrorKeepsAStaleEntry) {
  MapAt(kA, 1);
  ASSERT_EQ(k_.CpuWrite(pid_, kA, Bytes("old")), Errno::kOk);
  const uint64_t other = k_.HmmMirrorRegister(DeviceId(0), pid_).value;
  ASSERT_EQ(Dread(kA, 1, other).value.faults, 1u);
  ASSERT_EQ(ToDev(kA, 1).err, Errno::kOk);
  EXPECT_TRUE(InPt(kA, other));
  EXPECT_TRUE(MirrorOf(other).stale.count(AddrToVpn(kA)) != 0);
  EXPECT_EQ(Dread(kA, 1, other).err, Errno::kFault);
  EXPECT_EQ(Splats(), Kinds{KernelSplat::kUseAfterFree});
}

// D14: devices 2 and 3 are device-coherent: the CPU maps their pages.
TEST_F(Linux61DmirrorTest, CoherentDevicePagesStayMapped) {
  MapAt(kA, 2);
  ASSERT_EQ(k_.CpuWrite(pid_, kA, Bytes("coherent")), Errno::kOk);
  const uint64_t dev2 = k_.HmmMirrorRegister(DeviceId(2), pid_).value;
  Result<DmirrorResult> moved = ToDev(kA, 2, dev2);
  ASSERT_EQ(moved.err, Errno::kOk);
  EXPECT_EQ(moved.value.cpages, 2u);
  EXPECT_EQ(Snapshot(kA, 2, dev2), (std::vector<uint8_t>{0x42, 0x42}));
  EXPECT_EQ(Snapshot(kA, 2), (std::vector<uint8_t>{0x52, 0x52}));  // device 0 sees remote
  EXPECT_EQ(k_.CpuRead(pid_, kA, 8).value, Bytes("coherent"));  // no migration back
  EXPECT_EQ(Snapshot(kA, 1, dev2), std::vector<uint8_t>{0x42});
  Result<DmirrorResult> back = k_.DmirrorMigrateToSys(dev2, kA, 2);
  ASSERT_EQ(back.err, Errno::kOk);
  EXPECT_EQ(back.value.cpages, 2u);
  EXPECT_EQ(Snapshot(kA, 2, dev2), (std::vector<uint8_t>{0x02, 0x02}));
  EXPECT_EQ(k_.CpuRead(pid_, kA, 8).value, Bytes("coherent"));
}

// D17: a page shared with a child is unmapped by try_to_migrate(), whose
// rmap walk notifies the collecting VMA too (erasing one page more, D1)...
TEST_F(Linux61DmirrorTest, TryToMigrateNotifiesTheCollectingVma) {
  MapAt(kA, 16);
  ASSERT_EQ(k_.CpuWrite(pid_, kA + Pages(4), Bytes("x")), Errno::kOk);
  ASSERT_EQ(k_.Fork(pid_).err, Errno::kOk);
  ASSERT_EQ(ToDev(kA + Pages(5), 1).err, Errno::kOk);
  EXPECT_EQ(ToDev(kA + Pages(4), 2).err, Errno::kNoEnt);  // page 5's entry went
}

// ... unless the walk reaches the child's VMA first: it stops once the page
// is mapped nowhere, and a split re-inserted the parent's VMA last.
TEST_F(Linux61DmirrorTest, TryToMigrateStopsOnceUnmapped) {
  MapAt(kA, 16);
  ASSERT_EQ(k_.CpuWrite(pid_, kA + Pages(4), Bytes("x")), Errno::kOk);
  ASSERT_EQ(k_.Fork(pid_).err, Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, kA + Pages(6), Pages(1), kProtRead), Errno::kOk);
  ASSERT_EQ(ToDev(kA + Pages(5), 1).err, Errno::kOk);
  EXPECT_EQ(ToDev(kA + Pages(4), 2).err, Errno::kOk);
}

}  // namespace
}  // namespace hmm::model
