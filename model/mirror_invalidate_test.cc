// File: model/mirror_invalidate_test.cc
//
// docs/mirror.md's invalidation table, row by row: a device maps pages (its pt
// filled by the dummy device's READ) and holds open ranges, a CPU operation
// runs, and the test checks which pt entries are erased, which ranges became
// invalid (strict overlap) and which entries were zeroed. Failed operations
// and operations the table leaves out notify nothing. Each fixture checks
// every invariant when torn down (InvMirrorSubsetOfCpu among them).

#include <vector>

#include "gtest/gtest.h"
#include "model/kernel.h"
#include "model/mirror_test_util.h"
#include "model/test_util.h"

namespace hmm::model {
namespace {

using Holds = std::vector<bool>;

class InvalidateTest : public MirrorTest {
 protected:
  // Maps npages RW private, writes them, and lets mirror 1 read them all.
  uint64_t MappedAndMirrored(uint64_t npages, uint32_t flags = kMapPrivate) {
    const uint64_t a = Map(npages, kRw, flags);
    EXPECT_EQ(k_.CpuWrite(pid_, a, PagesOf(npages, 1)), Errno::kOk);
    Dread(a, npages);
    return a;
  }
};

TEST_F(InvalidateTest, MunmapErasesOnlyTheUnmappedPagesStrictOverlap) {
  const uint64_t a = MappedAndMirrored(4);
  ASSERT_EQ(k_.HmmMirrorRegister(DeviceId(1), pid_).value, 2u);  // a second mirror of pid
  Dread(a, 4, 2);
  const Pid other = k_.CreateProcess().value;  // and a mirror of another process
  ASSERT_EQ(k_.HmmMirrorRegister(DeviceId(0), other).value, 3u);
  const uint64_t b = k_.Mmap(other, a, Pages(4), kRw, kMapPrivate | kMapFixed).value;
  Dread(b, 4, 3);
  const uint64_t before = Snap(a, 1);  // ends where the unmap starts
  const uint64_t across = Snap(a + Pages(1), 2);
  const uint64_t after = Snap(a + Pages(2), 2);  // starts where it ends
  const HmmPfn kept = RangeOf(across).pfns[1];
  ASSERT_EQ(k_.Munmap(pid_, a + Pages(1), Pages(1)), Errno::kOk);
  EXPECT_EQ(PtHolds(a, 4, 1), (Holds{true, false, true, true}));
  EXPECT_EQ(PtHolds(a, 4, 2), (Holds{true, false, true, true}));
  EXPECT_EQ(PtHolds(b, 4, 3), (Holds{true, true, true, true}));
  EXPECT_TRUE(RangeOf(before).valid);
  EXPECT_TRUE(RangeOf(after).valid);
  EXPECT_FALSE(RangeOf(across).valid);
  EXPECT_EQ(RangeOf(across).pfns, (std::vector<HmmPfn>{HmmPfn{}, kept}));
}

TEST_F(InvalidateTest, MmapFixedErasesWhatItReplaces) {
  const uint64_t a = MappedAndMirrored(4);
  const uint64_t range = Snap(a, 2);
  ASSERT_EQ(k_.Mmap(pid_, a + Pages(2), Pages(2), kRw, kMapPrivate | kMapFixed).value,
            a + Pages(2));
  EXPECT_EQ(PtHolds(a, 4), (Holds{true, true, false, false}));
  EXPECT_TRUE(RangeOf(range).valid);
}

TEST_F(InvalidateTest, MprotectErasesOnlyVmasWhoseProtChanges) {
  const uint64_t a = MappedAndMirrored(4);
  ASSERT_EQ(k_.Mprotect(pid_, a, Pages(2), kProtRead), Errno::kOk);
  EXPECT_EQ(PtHolds(a, 4), (Holds{false, false, true, true}));
  Dread(a, 4);
  EXPECT_FALSE(PtAt(a).write);
  EXPECT_TRUE(PtAt(a + Pages(2)).write);
  // [a, +2) is read already: only [a + 2, +2) changes.
  const uint64_t unchanged = Snap(a, 2);
  const uint64_t changed = Snap(a + Pages(2), 2);
  ASSERT_EQ(k_.Mprotect(pid_, a, Pages(4), kProtRead), Errno::kOk);
  EXPECT_EQ(PtHolds(a, 4), (Holds{true, true, false, false}));
  EXPECT_TRUE(RangeOf(unchanged).valid);
  EXPECT_FALSE(RangeOf(changed).valid);
  EXPECT_EQ(RangeOf(changed).pfns, std::vector<HmmPfn>(2));
}

TEST_F(InvalidateTest, UnchangedMprotectSplitsTheVmaUnderAValidRange) {
  const uint64_t a = MappedAndMirrored(4);
  const uint64_t range = Snap(a, 4);
  ASSERT_EQ(k_.Mprotect(pid_, a + Pages(2), Pages(2), kRw), Errno::kOk);
  EXPECT_EQ(Proc(pid_).vmas.size(), 2u);  // hmmref splits; the kernel would not
  EXPECT_EQ(PtHolds(a, 4), (Holds{true, true, true, true}));
  EXPECT_TRUE(RangeOf(range).valid);
  ExpectInvariantsHold(k_);  // InvRangeWithinOneVma counts the two pieces as one VMA
  EXPECT_EQ(k_.DmirrorCommit(range).value, true);
}

TEST_F(InvalidateTest, MadviseDontneedErasesTheMappedPartOfTheRange) {
  const uint64_t a = MappedAndMirrored(4);
  ASSERT_EQ(k_.Munmap(pid_, a + Pages(3), Pages(1)), Errno::kOk);
  const uint64_t range = Snap(a + Pages(2), 1);
  EXPECT_EQ(k_.MadviseDontneed(pid_, a + Pages(1), Pages(3)), Errno::kNoMem);  // a hole
  EXPECT_EQ(PtHolds(a, 4), (Holds{true, false, false, false}));
  EXPECT_FALSE(RangeOf(range).valid);
}

TEST_F(InvalidateTest, MremapMovedErasesTheOldRange) {
  const uint64_t a = MappedAndMirrored(2);
  Map(1);  // right behind a: growing must move
  const uint64_t range = Snap(a, 2);
  const uint64_t moved = k_.Mremap(pid_, a, Pages(2), Pages(4), kMremapMaymove, 0).value;
  ASSERT_NE(moved, a);
  EXPECT_EQ(PtHolds(a, 2), (Holds{false, false}));
  EXPECT_FALSE(RangeOf(range).valid);
  EXPECT_EQ(PtHolds(moved, 2), (Holds{false, false}));  // nothing is mapped anew
}

TEST_F(InvalidateTest, MremapShrunkErasesTheTail) {
  const uint64_t a = MappedAndMirrored(4);
  const uint64_t head = Snap(a, 2);
  const uint64_t tail = Snap(a + Pages(2), 2);
  ASSERT_EQ(k_.Mremap(pid_, a, Pages(4), Pages(2), 0, 0).value, a);
  EXPECT_EQ(PtHolds(a, 4), (Holds{true, true, false, false}));
  EXPECT_TRUE(RangeOf(head).valid);
  EXPECT_FALSE(RangeOf(tail).valid);
}

TEST_F(InvalidateTest, MremapGrownInPlaceNotifiesNothing) {
  const uint64_t a = MappedAndMirrored(2);
  const uint64_t range = Snap(a, 2);
  ASSERT_EQ(k_.Mremap(pid_, a, Pages(2), Pages(4), 0, 0).value, a);
  EXPECT_EQ(PtHolds(a, 2), (Holds{true, true}));
  EXPECT_TRUE(RangeOf(range).valid);
}

TEST_F(InvalidateTest, MremapFixedErasesTheTargetItUnmaps) {
  const uint64_t a = MappedAndMirrored(2);
  const uint64_t b = Map(4);
  ASSERT_EQ(k_.CpuWrite(pid_, b, PagesOf(4, 9)), Errno::kOk);
  Dread(b, 4);
  const uint64_t target = Snap(b + Pages(1), 1);
  const uint64_t beyond = Snap(b + Pages(3), 1);
  ASSERT_EQ(k_.Mremap(pid_, a, Pages(2), Pages(3), kMremapMaymove | kMremapFixed, b).value, b);
  EXPECT_EQ(PtHolds(a, 2), (Holds{false, false}));
  EXPECT_EQ(PtHolds(b, 4), (Holds{false, false, false, true}));
  EXPECT_FALSE(RangeOf(target).valid);
  EXPECT_TRUE(RangeOf(beyond).valid);
}

TEST_F(InvalidateTest, ForkErasesPrivateVmasOnly) {
  const uint64_t priv = MappedAndMirrored(2);
  const uint64_t shared = MappedAndMirrored(2, kMapShared);
  const uint64_t untouched = Map(1);
  const uint64_t priv_range = Snap(untouched, 1);  // a private VMA with no PTE at all
  const uint64_t shared_range = Snap(shared, 2);
  const Pid child = k_.Fork(pid_).value;
  EXPECT_EQ(PtHolds(priv, 2), (Holds{false, false}));
  EXPECT_EQ(PtHolds(shared, 2), (Holds{true, true}));
  EXPECT_FALSE(RangeOf(priv_range).valid);
  EXPECT_TRUE(RangeOf(shared_range).valid);
  EXPECT_EQ(k_.state().mirrors.size(), 1u);  // the child is mirrored by no one
  EXPECT_EQ(k_.state().procs.count(child), 1u);
}

TEST_F(InvalidateTest, CpuWriteCowBreakErasesThePageReuseNothing) {
  const uint64_t a = MappedAndMirrored(3);
  const Pid child = k_.Fork(pid_).value;
  Dread(a, 3);  // read-only entries now
  const uint64_t range = Snap(a + Pages(1), 2);
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(1), Bytes("x")), Errno::kOk);  // COW break
  EXPECT_EQ(PtHolds(a, 3), (Holds{true, false, true}));
  EXPECT_FALSE(RangeOf(range).valid);
  EXPECT_EQ(RangeOf(range).pfns[0], HmmPfn{});
  EXPECT_FALSE(RangeOf(range).pfns[1] == HmmPfn{});
  // The child's side: its COW break notifies its own mirrors (none), not ours.
  ASSERT_EQ(k_.CpuWrite(child, a + Pages(2), Bytes("y")), Errno::kOk);
  EXPECT_EQ(PtHolds(a, 3), (Holds{true, false, true}));
  // Page 2 is ours alone now: the write reuses it in place and notifies nothing.
  const uint64_t reuse = Snap(a + Pages(2), 1);
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(2), Bytes("z")), Errno::kOk);
  EXPECT_EQ(PtHolds(a, 3), (Holds{true, false, true}));
  EXPECT_TRUE(RangeOf(reuse).valid);
}

TEST_F(InvalidateTest, ZeroPageReplacedErasesTheFirstFaultNothing) {
  const uint64_t a = Map(3);
  ASSERT_TRUE(k_.CpuRead(pid_, a, Pages(2)).ok());
  Dread(a, 2);
  EXPECT_TRUE(PtAt(a).zero);
  const uint64_t empty = Snap(a + Pages(2), 1);
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(2), Bytes("x")), Errno::kOk);  // empty -> page
  ASSERT_TRUE(k_.CpuRead(pid_, a + Pages(2), 1).ok());
  EXPECT_TRUE(RangeOf(empty).valid);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("x")), Errno::kOk);  // zero page -> new page
  EXPECT_EQ(PtHolds(a, 2), (Holds{false, true}));
}

TEST_F(InvalidateTest, PinWithWriteCowBreakErasesThePage) {
  const uint64_t a = MappedAndMirrored(2);
  ASSERT_TRUE(k_.Fork(pid_).ok());
  Dread(a, 2);
  ASSERT_TRUE(k_.PinUserPages(pid_, a, 1).ok());
  EXPECT_EQ(PtHolds(a, 2), (Holds{false, true}));
}

TEST_F(InvalidateTest, DeviceWriteFaultCowBreakErasesOtherMirrors) {
  const uint64_t a = MappedAndMirrored(2);
  ASSERT_TRUE(k_.Fork(pid_).ok());
  Dread(a, 2);
  ASSERT_EQ(k_.HmmMirrorRegister(DeviceId(2), pid_).value, 2u);
  const uint64_t id = k_.HmmVmaFault(2, a, 1, true).value;
  EXPECT_EQ(PtHolds(a, 2), (Holds{false, true}));
  EXPECT_FALSE(RangeOf(id).valid);
}

TEST_F(InvalidateTest, ExitEmptiesPtKeepsMirrorInvalidatesRanges) {
  const uint64_t a = MappedAndMirrored(2);
  const uint64_t range = Snap(a, 2);
  ASSERT_EQ(k_.Exit(pid_), Errno::kOk);
  Mirror expected;
  expected.device = DeviceId(0);
  expected.pid = pid_;
  EXPECT_EQ(k_.state().mirrors.at(1), expected);
  EXPECT_FALSE(RangeOf(range).valid);
  EXPECT_EQ(RangeOf(range).pfns, std::vector<HmmPfn>(2));
  EXPECT_EQ(k_.DmirrorRead(1, a, 1).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorSnapshot(1, a, 1).err, Errno::kInval);
  EXPECT_EQ(k_.HmmVmaGetPfns(1, a, 1).err, Errno::kInval);
  EXPECT_EQ(k_.HmmVmaFault(1, a, 1, false).err, Errno::kInval);
  EXPECT_EQ(k_.HmmMirrorUnregister(1), Errno::kBusy);
  EXPECT_EQ(k_.DmirrorCommit(range).value, false);
  EXPECT_EQ(k_.HmmMirrorUnregister(1), Errno::kOk);
}

TEST_F(InvalidateTest, ReadsAndDeviceEntriesNotifyNothing) {
  AddDeviceMemory();
  const uint64_t a = MappedAndMirrored(2);
  const uint64_t b = Map(2);
  const uint64_t range = Snap(b, 2);
  ASSERT_TRUE(k_.CpuRead(pid_, b, 1).ok());  // fills an empty entry
  DeviceEntryAt(1, b + Pages(1));            // fills an empty slot
  ASSERT_TRUE(k_.HmmVmaFault(1, b, 2, false).ok());
  ASSERT_EQ(k_.HmmDevmemAdd(DeviceId(3), 1).value, 3u);
  EXPECT_EQ(PtHolds(a, 2), (Holds{true, true}));
  EXPECT_TRUE(RangeOf(range).valid);
}

TEST_F(InvalidateTest, FailedOperationsNotifyNothing) {
  const uint64_t a = MappedAndMirrored(2);
  const uint64_t range = Snap(a, 2);
  EXPECT_EQ(k_.Munmap(pid_, a + 1, Pages(1)), Errno::kInval);
  EXPECT_EQ(k_.Mprotect(pid_, a, Pages(3), kProtRead), Errno::kNoMem);  // a hole at the end
  EXPECT_EQ(k_.Mremap(pid_, a, Pages(3), Pages(1), 0, 0).err, Errno::kFault);
  EXPECT_EQ(PtHolds(a, 2), (Holds{true, true}));
  EXPECT_TRUE(RangeOf(range).valid);
}

TEST(InvalidateForkTest, ForkOutOfMemoryNotifiesNothing) {
  Kernel k(/*ram_pages=*/2);
  const Pid pid = k.CreateProcess().value;
  ASSERT_EQ(k.HmmMirrorRegister(DeviceId(0), pid).value, 1u);
  const uint64_t a = k.Mmap(pid, 0, Pages(2), kRw, kMapPrivate).value;
  ASSERT_EQ(k.CpuWrite(pid, a, PagesOf(2, 1)), Errno::kOk);  // RAM is full
  ASSERT_TRUE(k.PinUserPages(pid, a, 1).ok());               // fork must copy it
  ASSERT_TRUE(k.DmirrorRead(1, a, 2).ok());
  ASSERT_TRUE(k.HmmVmaGetPfns(1, a, 2).ok());
  const State before = k.state();
  EXPECT_EQ(k.Fork(pid).err, Errno::kNoMem);
  EXPECT_EQ(k.state(), before);
  ExpectInvariantsHold(k);
}

}  // namespace
}  // namespace hmm::model
