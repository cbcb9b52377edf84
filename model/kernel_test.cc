// File: model/kernel_test.cc
//
// One test per guard rung and per behaviour of the address-space system calls
// of model::Kernel (docs/model.md): CreateProcess, Mmap, Munmap, Mprotect,
// Mremap, MadviseDontneed, UnpinUserPages and Exit. The fault paths, fork and
// pins are in fault_test.cc; the invariants in invariants_test.cc.

#include "model/kernel.h"

#include "gtest/gtest.h"
#include "model/test_util.h"

namespace hmm::model {
namespace {

const Pid kNoPid(99);
constexpr uint64_t kBase = kMmapBase;

// --- CreateProcess ---

TEST(CreateProcessTest, HandsOutIncreasingPids) {
  Kernel k;
  EXPECT_EQ(k.CreateProcess().value, Pid(1));
  EXPECT_EQ(k.CreateProcess().value, Pid(2));
  EXPECT_TRUE(k.state().procs.at(Pid(2)).vmas.empty());
}

TEST(CreateProcessTest, MoreThanMaxProcessesIsAgain) {
  Kernel k;
  for (uint64_t i = 0; i < kMaxProcesses; ++i) ASSERT_TRUE(k.CreateProcess().ok());
  EXPECT_EQ(k.CreateProcess().err, Errno::kAgain);
  EXPECT_EQ(k.state().procs.size(), kMaxProcesses);
}

// --- Mmap ---

using MmapTest = ModelTest;

TEST_F(MmapTest, UnknownPidIsSrch) {
  EXPECT_EQ(k_.Mmap(kNoPid, 0, Pages(1), kRw, kMapPrivate).err, Errno::kSrch);
}

TEST_F(MmapTest, FlagsNotExactlyOneKindIsInval) {
  EXPECT_EQ(k_.Mmap(pid_, 0, Pages(1), kRw, 0).err, Errno::kInval);
  EXPECT_EQ(k_.Mmap(pid_, 0, Pages(1), kRw, kMapShared | kMapPrivate).err, Errno::kInval);
  EXPECT_EQ(k_.Mmap(pid_, 0, Pages(1), kRw, kMapPrivate | 8).err, Errno::kInval);
}

TEST_F(MmapTest, UnknownProtIsInval) {
  EXPECT_EQ(k_.Mmap(pid_, 0, Pages(1), 4, kMapPrivate).err, Errno::kInval);
}

TEST_F(MmapTest, ZeroLengthIsInval) {
  EXPECT_EQ(k_.Mmap(pid_, 0, 0, kRw, kMapPrivate).err, Errno::kInval);
}

TEST_F(MmapTest, LengthWrappingOrPastTaskSizeIsNoMem) {
  EXPECT_EQ(k_.Mmap(pid_, 0, UINT64_MAX, kRw, kMapPrivate).err, Errno::kNoMem);
  EXPECT_EQ(k_.Mmap(pid_, 0, kTaskSize + 1, kRw, kMapPrivate).err, Errno::kNoMem);
}

TEST_F(MmapTest, FixedUnalignedIsInval) {
  EXPECT_EQ(k_.Mmap(pid_, kBase + 1, Pages(1), kRw, kMapPrivate | kMapFixed).err, Errno::kInval);
}

TEST_F(MmapTest, FixedPastTaskSizeIsNoMem) {
  EXPECT_EQ(k_.Mmap(pid_, kTaskSize - Pages(1), Pages(2), kRw, kMapPrivate | kMapFixed).err,
            Errno::kNoMem);
}

TEST_F(MmapTest, FirstFitIsBottomUpFromBase) {
  EXPECT_EQ(Map(2), kBase);
  EXPECT_EQ(Map(1), kBase + Pages(2));
  ASSERT_EQ(k_.Munmap(pid_, kBase, Pages(2)), Errno::kOk);
  EXPECT_EQ(Map(1), kBase);  // the lowest gap that fits
  const Vma& vma = Proc(pid_).vmas.at(AddrToVpn(kBase));
  EXPECT_EQ(vma.end, AddrToVpn(kBase + Pages(1)));
  EXPECT_EQ(vma.prot, kRw);
  EXPECT_FALSE(vma.shared);
}

TEST_F(MmapTest, FreeHintIsUsedRoundedDown) {
  EXPECT_EQ(k_.Mmap(pid_, 0x5000123, Pages(1), kRw, kMapPrivate).value, 0x5000000u);
}

TEST_F(MmapTest, TakenHintFallsBackToFirstFit) {
  const uint64_t a = Map(1);
  EXPECT_EQ(k_.Mmap(pid_, a, Pages(1), kRw, kMapPrivate).value, a + Pages(1));
}

TEST_F(MmapTest, NoGapIsNoMem) {
  ASSERT_TRUE(k_.Mmap(pid_, kBase, kTaskSize - kBase, kRw, kMapPrivate | kMapFixed).ok());
  EXPECT_EQ(k_.Mmap(pid_, 0, Pages(1), kRw, kMapPrivate).err, Errno::kNoMem);
}

TEST_F(MmapTest, FixedReplacesWhatWasThere) {
  const uint64_t a = Map(3);
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(1), Bytes("old")), Errno::kOk);
  EXPECT_EQ(k_.Mmap(pid_, a + Pages(1), Pages(1), kProtRead, kMapShared | kMapFixed).value,
            a + Pages(1));
  EXPECT_EQ(Proc(pid_).vmas.size(), 3u);
  EXPECT_TRUE(Proc(pid_).vmas.at(AddrToVpn(a + Pages(1))).shared);
  EXPECT_EQ(Read(pid_, a + Pages(1), 3), std::string(3, '\0'));
}

TEST_F(MmapTest, SharedGetsNewEmptyObjectAtPgoffZero) {
  const uint64_t a = Map(1, kRw, kMapShared);
  const uint64_t b = Map(1, kRw, kMapShared);
  const Vma& va = Proc(pid_).vmas.at(AddrToVpn(a));
  const Vma& vb = Proc(pid_).vmas.at(AddrToVpn(b));
  EXPECT_NE(va.object, vb.object);
  EXPECT_EQ(va.pgoff, 0u);
  EXPECT_TRUE(k_.state().objects.at(va.object).pages.empty());
}

// --- Munmap ---

using MunmapTest = ModelTest;

TEST_F(MunmapTest, GuardRungs) {
  EXPECT_EQ(k_.Munmap(kNoPid, kBase, Pages(1)), Errno::kSrch);
  EXPECT_EQ(k_.Munmap(pid_, kBase + 1, Pages(1)), Errno::kInval);
  EXPECT_EQ(k_.Munmap(pid_, kBase, 0), Errno::kInval);
  EXPECT_EQ(k_.Munmap(pid_, kTaskSize - Pages(1), Pages(2)), Errno::kInval);
  EXPECT_EQ(k_.Munmap(pid_, kBase, UINT64_MAX), Errno::kInval);
}

TEST_F(MunmapTest, NothingMappedIsOk) { EXPECT_EQ(k_.Munmap(pid_, kBase, Pages(4)), Errno::kOk); }

TEST_F(MunmapTest, MiddleSplitsSharedVmaWithPgoff) {
  const uint64_t a = Map(3, kRw, kMapShared);
  ASSERT_EQ(k_.Munmap(pid_, a + Pages(1), 1), Errno::kOk);  // length rounds up
  ASSERT_EQ(Proc(pid_).vmas.size(), 2u);
  const Vma& tail = Proc(pid_).vmas.at(AddrToVpn(a + Pages(2)));
  EXPECT_EQ(tail.pgoff, 2u);
  EXPECT_EQ(Proc(pid_).vmas.at(AddrToVpn(a)).end, AddrToVpn(a + Pages(1)));
}

TEST_F(MunmapTest, FreesPrivatePages) {
  const uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, std::vector<uint8_t>(Pages(2), 7)), Errno::kOk);
  EXPECT_EQ(k_.state().pages.size(), 2u);
  ASSERT_EQ(k_.Munmap(pid_, a, Pages(2)), Errno::kOk);
  EXPECT_TRUE(k_.state().pages.empty());
  EXPECT_TRUE(Proc(pid_).ptes.empty());
}

TEST_F(MunmapTest, LastMappingFreesSharedObjectAndPages) {
  const uint64_t a = Map(2, kRw, kMapShared);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("x")), Errno::kOk);
  ASSERT_EQ(k_.Munmap(pid_, a, Pages(1)), Errno::kOk);
  EXPECT_EQ(k_.state().objects.size(), 1u);  // still mapped by the second page
  EXPECT_EQ(k_.state().pages.size(), 1u);    // the object keeps its page
  ASSERT_EQ(k_.Munmap(pid_, a + Pages(1), Pages(1)), Errno::kOk);
  EXPECT_TRUE(k_.state().objects.empty());
  EXPECT_TRUE(k_.state().pages.empty());
}

// --- Mprotect ---

using MprotectTest = ModelTest;

TEST_F(MprotectTest, GuardRungs) {
  const uint64_t a = Map(1);
  EXPECT_EQ(k_.Mprotect(kNoPid, a, Pages(1), kProtRead), Errno::kSrch);
  EXPECT_EQ(k_.Mprotect(pid_, a + 1, Pages(1), kProtRead), Errno::kInval);
  EXPECT_EQ(k_.Mprotect(pid_, a, Pages(1), 8), Errno::kInval);
  EXPECT_EQ(k_.Mprotect(pid_, a + Pages(5), 0, kProtRead), Errno::kOk);
  EXPECT_EQ(k_.Mprotect(pid_, a, UINT64_MAX, kProtRead), Errno::kNoMem);
  EXPECT_EQ(Proc(pid_).vmas.at(AddrToVpn(a)).prot, kRw);
}

TEST_F(MprotectTest, HoleIsNoMemAndChangesNothing) {
  const uint64_t a = Map(1);
  const uint64_t b = Map(1);
  ASSERT_EQ(k_.Munmap(pid_, b, Pages(1)), Errno::kOk);  // a hole after a
  const State before = k_.state();
  EXPECT_EQ(k_.Mprotect(pid_, a, Pages(2), kProtRead), Errno::kNoMem);
  EXPECT_EQ(k_.state(), before);
}

TEST_F(MprotectTest, ReadOnlySplitsAndDropsWrite) {
  const uint64_t a = Map(3);
  ASSERT_EQ(k_.CpuWrite(pid_, a, std::vector<uint8_t>(Pages(3), 1)), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, a + Pages(1), Pages(1), kProtRead), Errno::kOk);
  EXPECT_EQ(Proc(pid_).vmas.size(), 3u);
  EXPECT_EQ(Proc(pid_).vmas.at(AddrToVpn(a + Pages(1))).prot, uint32_t{kProtRead});
  EXPECT_TRUE(PteAt(pid_, a).write);
  EXPECT_FALSE(PteAt(pid_, a + Pages(1)).write);
  EXPECT_EQ(k_.CpuWrite(pid_, a + Pages(1), Bytes("x")), Errno::kFault);
}

TEST_F(MprotectTest, WriteGivesSharedPtesWritePrivateKeep) {
  const uint64_t s = Map(1, kProtRead, kMapShared);
  const uint64_t p = Map(1, kProtRead, kMapPrivate);
  Read(pid_, s, 1);
  Read(pid_, p, 1);
  ASSERT_EQ(k_.Mprotect(pid_, s, Pages(2), kRw), Errno::kOk);
  EXPECT_TRUE(PteAt(pid_, s).write);
  EXPECT_FALSE(PteAt(pid_, p).write);  // the zero page: the next write fault copies
}

// --- Mremap ---

using MremapTest = ModelTest;

TEST_F(MremapTest, ArgumentRungsAreInval) {
  const uint64_t a = Map(2);
  EXPECT_EQ(k_.Mremap(kNoPid, a, Pages(1), Pages(1), 0, 0).err, Errno::kSrch);
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(1), Pages(1), 4, 0).err, Errno::kInval);
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(1), Pages(1), kMremapFixed, kBase).err, Errno::kInval);
  EXPECT_EQ(k_.Mremap(pid_, a + 1, Pages(1), Pages(1), 0, 0).err, Errno::kInval);
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(1), 0, 0, 0).err, Errno::kInval);
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(1), UINT64_MAX, 0, 0).err, Errno::kInval);
  EXPECT_EQ(k_.Mremap(pid_, a, 0, Pages(1), 0, 0).err, Errno::kInval);
}

TEST_F(MremapTest, FixedTargetRungsAreInval) {
  const uint64_t a = Map(2);
  const uint32_t f = kMremapFixed | kMremapMaymove;
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(1), Pages(1), f, kBase + Pages(9) + 1).err, Errno::kInval);
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(1), Pages(2), f, kTaskSize - Pages(1)).err, Errno::kInval);
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(2), Pages(2), f, a + Pages(1)).err, Errno::kInval);
}

TEST_F(MremapTest, OldRangeNotInOneVmaIsFault) {
  const uint64_t a = Map(2);
  EXPECT_EQ(k_.Mremap(pid_, a + Pages(4), Pages(1), Pages(1), 0, 0).err, Errno::kFault);
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(3), Pages(1), 0, 0).err, Errno::kFault);
  Map(1);  // adjacent, never merged
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(3), Pages(1), 0, 0).err, Errno::kFault);
}

TEST_F(MremapTest, ShrinkUnmapsTail) {
  const uint64_t a = Map(3);
  ASSERT_EQ(k_.CpuWrite(pid_, a, std::vector<uint8_t>(Pages(3), 1)), Errno::kOk);
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(3), Pages(1), 0, 0).value, a);
  EXPECT_EQ(Proc(pid_).vmas.at(AddrToVpn(a)).end, AddrToVpn(a + Pages(1)));
  EXPECT_EQ(k_.state().pages.size(), 1u);
}

TEST_F(MremapTest, GrowInPlaceWhenRoomBehind) {
  const uint64_t a = Map(1);
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(1), Pages(3), 0, 0).value, a);
  EXPECT_EQ(Proc(pid_).vmas.at(AddrToVpn(a)).end, AddrToVpn(a + Pages(3)));
}

TEST_F(MremapTest, GrowBlockedWithoutMaymoveIsNoMem) {
  const uint64_t a = Map(1);
  Map(1);
  const State before = k_.state();
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(1), Pages(2), 0, 0).err, Errno::kNoMem);
  EXPECT_EQ(k_.state(), before);
}

TEST_F(MremapTest, GrowBlockedMovesPtesToFirstFit) {
  const uint64_t a = Map(2);
  const uint64_t b = Map(1);
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(1), Bytes("moved")), Errno::kOk);
  Read(pid_, a, 1);  // the zero page at a
  const Pte old_pte = PteAt(pid_, a + Pages(1));
  Result<uint64_t> r = k_.Mremap(pid_, a, Pages(2), Pages(4), kMremapMaymove, 0);
  ASSERT_EQ(r.err, Errno::kOk);
  EXPECT_EQ(r.value, b + Pages(1));
  EXPECT_EQ(PteAt(pid_, r.value + Pages(1)), old_pte);  // same page, same write bit
  EXPECT_TRUE(PteAt(pid_, r.value).zero);
  EXPECT_EQ(Proc(pid_).ptes.size(), 2u);  // the grown tail has none
  EXPECT_EQ(Proc(pid_).vmas.count(AddrToVpn(a)), 0u);
  EXPECT_EQ(Read(pid_, r.value + Pages(1), 5), "moved");
}

TEST_F(MremapTest, FixedUnmapsDestinationThenMoves) {
  const uint64_t a = Map(1);
  const uint64_t dst = kBase + Pages(10);
  ASSERT_TRUE(k_.Mmap(pid_, dst, Pages(2), kRw, kMapPrivate | kMapFixed).ok());
  ASSERT_EQ(k_.CpuWrite(pid_, dst, Bytes("gone")), Errno::kOk);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("here")), Errno::kOk);
  const uint32_t f = kMremapFixed | kMremapMaymove;
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(1), Pages(1), f, dst).value, dst);
  EXPECT_EQ(Read(pid_, dst, 4), "here");
  EXPECT_EQ(Proc(pid_).vmas.size(), 2u);  // [dst, +1) moved, [dst+1, +2) left of the old
  EXPECT_EQ(k_.state().pages.size(), 1u);
}

TEST_F(MremapTest, FixedShrinkDropsOldTail) {
  const uint64_t a = Map(3);
  ASSERT_EQ(k_.CpuWrite(pid_, a, std::vector<uint8_t>(Pages(3), 2)), Errno::kOk);
  const uint64_t dst = kBase + Pages(10);
  const uint32_t f = kMremapFixed | kMremapMaymove;
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(3), Pages(1), f, dst).value, dst);
  EXPECT_EQ(Proc(pid_).vmas.size(), 1u);
  EXPECT_EQ(k_.state().pages.size(), 1u);
}

TEST_F(MremapTest, SharedMoveAdvancesPgoff) {
  const uint64_t a = Map(3, kRw, kMapShared);
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(2), Bytes("s")), Errno::kOk);
  const uint64_t dst = kBase + Pages(20);
  const uint32_t f = kMremapFixed | kMremapMaymove;
  ASSERT_EQ(k_.Mremap(pid_, a + Pages(2), Pages(1), Pages(1), f, dst).value, dst);
  EXPECT_EQ(Proc(pid_).vmas.at(AddrToVpn(dst)).pgoff, 2u);
  EXPECT_EQ(Read(pid_, dst, 1), "s");
}

// --- MadviseDontneed ---

using MadviseTest = ModelTest;

TEST_F(MadviseTest, GuardRungs) {
  EXPECT_EQ(k_.MadviseDontneed(kNoPid, kBase, Pages(1)), Errno::kSrch);
  EXPECT_EQ(k_.MadviseDontneed(pid_, kBase + 1, 0), Errno::kInval);
  EXPECT_EQ(k_.MadviseDontneed(pid_, kBase, UINT64_MAX), Errno::kInval);
  EXPECT_EQ(k_.MadviseDontneed(pid_, kBase, kTaskSize + 1), Errno::kInval);
  EXPECT_EQ(k_.MadviseDontneed(pid_, UINT64_MAX & kPageMask, Pages(2)), Errno::kInval);
  EXPECT_EQ(k_.MadviseDontneed(pid_, kBase, 0), Errno::kOk);
}

TEST_F(MadviseTest, PrivateContentsAreDropped) {
  const uint64_t a = Map(1);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("gone")), Errno::kOk);
  ASSERT_EQ(k_.MadviseDontneed(pid_, a, Pages(1)), Errno::kOk);
  EXPECT_TRUE(k_.state().pages.empty());
  EXPECT_EQ(Read(pid_, a, 4), std::string(4, '\0'));
}

TEST_F(MadviseTest, SharedContentsStay) {
  const uint64_t a = Map(1, kRw, kMapShared);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("kept")), Errno::kOk);
  ASSERT_EQ(k_.MadviseDontneed(pid_, a, Pages(1)), Errno::kOk);
  EXPECT_TRUE(Proc(pid_).ptes.empty());
  EXPECT_EQ(Read(pid_, a, 4), "kept");
}

TEST_F(MadviseTest, HoleZapsMappedPartsThenNoMem) {
  const uint64_t a = Map(3);
  ASSERT_EQ(k_.CpuWrite(pid_, a, std::vector<uint8_t>(Pages(3), 5)), Errno::kOk);
  ASSERT_EQ(k_.Munmap(pid_, a + Pages(1), Pages(1)), Errno::kOk);
  EXPECT_EQ(k_.MadviseDontneed(pid_, a, Pages(3)), Errno::kNoMem);
  EXPECT_TRUE(Proc(pid_).ptes.empty());
  EXPECT_TRUE(k_.state().pages.empty());
}

// --- UnpinUserPages, Exit ---

using ExitTest = ModelTest;

TEST_F(ExitTest, UnpinUnknownOrTwiceIsNoEnt) {
  const uint64_t a = Map(1);
  Result<PinId> pin = k_.PinUserPages(pid_, a, 1);
  ASSERT_TRUE(pin.ok());
  EXPECT_EQ(k_.UnpinUserPages(PinId(77)), Errno::kNoEnt);
  EXPECT_EQ(k_.UnpinUserPages(pin.value), Errno::kOk);
  EXPECT_EQ(k_.UnpinUserPages(pin.value), Errno::kNoEnt);
}

TEST_F(ExitTest, ExitFreesEverythingAndPidIsNeverReused) {
  const uint64_t a = Map(1);
  Map(1, kRw, kMapShared);
  ASSERT_EQ(k_.CpuWrite(pid_, a, std::vector<uint8_t>(Pages(2), 1)), Errno::kOk);
  EXPECT_EQ(k_.Exit(kNoPid), Errno::kSrch);
  ASSERT_EQ(k_.Exit(pid_), Errno::kOk);
  EXPECT_TRUE(k_.state().procs.empty());
  EXPECT_TRUE(k_.state().pages.empty());
  EXPECT_TRUE(k_.state().objects.empty());
  EXPECT_EQ(k_.Exit(pid_), Errno::kSrch);
  EXPECT_EQ(k_.Mmap(pid_, 0, Pages(1), kRw, kMapPrivate).err, Errno::kSrch);
  EXPECT_EQ(k_.CreateProcess().value, Pid(2));
}

}  // namespace
}  // namespace hmm::model
