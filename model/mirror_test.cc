// File: model/mirror_test.cc
//
// Mirroring's kernel API in model::Kernel (docs/mirror.md): every guard of
// HmmMirrorRegister, HmmMirrorUnregister, HmmVmaGetPfns, HmmVmaFault and
// HmmVmaRangeDone in the documented order, the 4.14 entry rules, and the
// device fault: what needs a fault, what a failed fault leaves, and a COW
// break marking its own range invalid. The invalidation table is in
// mirror_invalidate_test.cc, the dummy device in dmirror_test.cc. Each
// fixture checks every invariant when torn down.

#include <vector>

#include "gtest/gtest.h"
#include "model/kernel.h"
#include "model/mirror_test_util.h"
#include "model/test_util.h"

namespace hmm::model {
namespace {

const Pid kNoPid(99);
constexpr uint64_t kVrw = kHmmPfnValid | kHmmPfnRead | kHmmPfnWrite;
constexpr uint64_t kVr = kHmmPfnValid | kHmmPfnRead;

HmmPfn PagePfn(uint64_t flags, PageId page) { return HmmPfn{flags, false, page, 0}; }
HmmPfn ZeroPfn() { return HmmPfn{kVr, true, 0, 0}; }
HmmPfn EmptyPfn() { return HmmPfn{kHmmPfnEmpty, false, 0, 0}; }

// --- HmmMirrorRegister / HmmMirrorUnregister ---

TEST(MirrorRegisterTest, GuardsInOrder) {
  Kernel k;
  const Pid pid = k.CreateProcess().value;
  const Pid gone = k.CreateProcess().value;
  ASSERT_EQ(k.Exit(gone), Errno::kOk);
  // The pid first, then the device, then room.
  EXPECT_EQ(k.HmmMirrorRegister(DeviceId(kMaxDevices), kNoPid).err, Errno::kSrch);
  EXPECT_EQ(k.HmmMirrorRegister(DeviceId(0), gone).err, Errno::kSrch);
  EXPECT_EQ(k.HmmMirrorRegister(DeviceId(kMaxDevices), pid).err, Errno::kInval);
  EXPECT_EQ(k.state().next_mirror, 1u);
  for (uint64_t i = 0; i < kMaxMirrors; ++i) {
    ASSERT_EQ(k.HmmMirrorRegister(DeviceId(i % kMaxDevices), pid).value, i + 1);
  }
  EXPECT_EQ(k.HmmMirrorRegister(DeviceId(kMaxDevices), pid).err, Errno::kInval);
  EXPECT_EQ(k.HmmMirrorRegister(DeviceId(0), pid).err, Errno::kNoMem);
  EXPECT_EQ(k.state().next_mirror, kMaxMirrors + 1);
  ExpectInvariantsHold(k);
}

TEST(MirrorRegisterTest, IdsCountUpNeverReused) {
  Kernel k;
  const Pid pid = k.CreateProcess().value;
  EXPECT_EQ(k.HmmMirrorRegister(DeviceId(0), pid).value, 1u);
  EXPECT_EQ(k.HmmMirrorRegister(DeviceId(3), pid).value, 2u);  // same process, another device
  Mirror expected;
  expected.device = DeviceId(3);
  expected.pid = pid;
  EXPECT_EQ(k.state().mirrors.at(2), expected);
  ASSERT_EQ(k.HmmMirrorUnregister(1), Errno::kOk);
  EXPECT_EQ(k.HmmMirrorUnregister(1), Errno::kNoEnt);
  EXPECT_EQ(k.HmmMirrorRegister(DeviceId(0), pid).value, 3u);
  EXPECT_EQ(k.state().mirrors.size(), 2u);
}

using MirrorApiTest = MirrorTest;

TEST_F(MirrorApiTest, UnregisterWithOpenRangeIsBusyThenDropsPt) {
  const uint64_t a = Map(2);
  Dread(a, 2);
  const uint64_t range = Snap(a, 1);
  EXPECT_EQ(k_.HmmMirrorUnregister(99), Errno::kNoEnt);
  EXPECT_EQ(k_.HmmMirrorUnregister(1), Errno::kBusy);
  EXPECT_EQ(MirrorOf().pt.size(), 2u);
  ASSERT_TRUE(k_.HmmVmaRangeDone(range).value);
  EXPECT_EQ(k_.HmmMirrorUnregister(1), Errno::kOk);
  EXPECT_TRUE(k_.state().mirrors.empty());
}

// --- HmmVmaGetPfns and HmmVmaFault: the guards they share ---

TEST_F(MirrorApiTest, RangeGuardsInOrderChangeNothing) {
  const uint64_t a = Map(4);
  const uint64_t b = Map(1);  // right after a: a second VMA
  ASSERT_EQ(b, a + Pages(4));
  const Pid other = k_.CreateProcess().value;
  ASSERT_EQ(k_.HmmMirrorRegister(DeviceId(1), other).value, 2u);
  ASSERT_EQ(k_.Exit(other), Errno::kOk);
  const State before = k_.state();
  for (bool fault : {false, true}) {
    auto call = [&](uint64_t mirror, uint64_t addr, uint64_t npages) {
      return fault ? k_.HmmVmaFault(mirror, addr, npages, true).err
                   : k_.HmmVmaGetPfns(mirror, addr, npages).err;
    };
    EXPECT_EQ(call(99, a + 1, 0), Errno::kNoEnt);      // the mirror first
    EXPECT_EQ(call(1, a + 1, 1), Errno::kInval);       // unaligned
    EXPECT_EQ(call(1, a, 0), Errno::kInval);           // no pages
    EXPECT_EQ(call(1, kTaskSize - Pages(1), 2), Errno::kInval);  // past kTaskSize
    EXPECT_EQ(call(1, a, UINT64_MAX), Errno::kInval);
    EXPECT_EQ(call(2, a, 1), Errno::kInval);           // the process exited
    EXPECT_EQ(call(1, a + Pages(3), 2), Errno::kInval);  // two VMAs
    EXPECT_EQ(call(1, b + Pages(1), 1), Errno::kInval);  // a hole
    EXPECT_EQ(call(1, b, 2), Errno::kInval);           // runs past the VMA into a hole
  }
  EXPECT_EQ(k_.state(), before);
}

// --- HmmVmaGetPfns: the 4.14 entry rules, nothing faulted ---

TEST_F(MirrorApiTest, GetPfnsReportsEachKindOfEntry) {
  AddDeviceMemory();
  const uint64_t a = Map(5);
  ASSERT_TRUE(k_.CpuRead(pid_, a + Pages(1), 1).ok());  // page 1: the zero page
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(2), PagesOf(2, 7)), Errno::kOk);
  ASSERT_TRUE(k_.Fork(pid_).ok());                                // page 3: COW, read-only
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(2), Bytes("x")), Errno::kOk);  // page 2: own copy
  const uint64_t pfn = DeviceEntryAt(2, a + Pages(4));           // another device's memory
  const State before = k_.state();
  const uint64_t id = Snap(a, 5);
  EXPECT_EQ(id, 1u);
  const Range& r = RangeOf(id);
  EXPECT_EQ(r.mirror, 1u);
  EXPECT_EQ(r.start, AddrToVpn(a));
  EXPECT_EQ(r.end, AddrToVpn(a + Pages(5)));
  EXPECT_TRUE(r.valid);
  const HmmPfn device{kVrw | kHmmPfnDeviceUnaddressable, false, 0, pfn};
  EXPECT_EQ(r.pfns, (std::vector<HmmPfn>{EmptyPfn(), ZeroPfn(),
                                         PagePfn(kVrw, PteAt(pid_, a + Pages(2)).page),
                                         PagePfn(kVr, PteAt(pid_, a + Pages(3)).page), device}));
  // Nothing but the range changed.
  State without = k_.state();
  without.ranges.clear();
  without.next_range = 1;
  EXPECT_EQ(without, before);
}

TEST_F(MirrorApiTest, GetPfnsInVmaWithoutReadHasNoReadFlag) {
  const uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("x")), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, a, Pages(2), kProtNone), Errno::kOk);
  const Range& r = RangeOf(Snap(a, 2));
  EXPECT_EQ(r.pfns[0], PagePfn(kHmmPfnValid, PteAt(pid_, a).page));
  EXPECT_EQ(r.pfns[1], EmptyPfn());
}

// --- HmmVmaRangeDone ---

TEST_F(MirrorApiTest, RangeDoneReturnsValidOnce) {
  const uint64_t a = Map(2);
  const uint64_t first = Snap(a, 2);
  const uint64_t second = Snap(a, 1);
  EXPECT_EQ(second, 2u);
  ASSERT_EQ(k_.Munmap(pid_, a + Pages(1), Pages(1)), Errno::kOk);  // overlaps first only
  EXPECT_EQ(k_.HmmVmaRangeDone(first).value, false);
  EXPECT_EQ(k_.HmmVmaRangeDone(second).value, true);
  EXPECT_EQ(k_.HmmVmaRangeDone(first).err, Errno::kNoEnt);
  EXPECT_EQ(k_.HmmVmaRangeDone(99).err, Errno::kNoEnt);
  EXPECT_TRUE(k_.state().ranges.empty());
}

// --- HmmVmaFault ---

TEST_F(MirrorApiTest, ReadFaultMapsZeroPageWriteFaultNewPage) {
  const uint64_t a = Map(3);
  const uint64_t read = k_.HmmVmaFault(1, a, 1, false).value;
  EXPECT_EQ(RangeOf(read).pfns, std::vector<HmmPfn>{ZeroPfn()});
  EXPECT_TRUE(RangeOf(read).valid);  // filling an empty entry notifies nothing
  EXPECT_TRUE(PteAt(pid_, a).zero);
  const uint64_t fresh = k_.HmmVmaFault(1, a + Pages(1), 2, true).value;
  EXPECT_EQ(RangeOf(fresh).pfns,
            (std::vector<HmmPfn>{PagePfn(kVrw, PteAt(pid_, a + Pages(1)).page),
                                 PagePfn(kVrw, PteAt(pid_, a + Pages(2)).page)}));
  EXPECT_TRUE(RangeOf(fresh).valid);
  // Zero page -> new page notifies the page: both ranges over it, the
  // faulting one included, become invalid.
  const uint64_t cow = k_.HmmVmaFault(1, a, 1, true).value;
  EXPECT_EQ(RangeOf(cow).pfns, std::vector<HmmPfn>{PagePfn(kVrw, PteAt(pid_, a).page)});
  EXPECT_FALSE(RangeOf(cow).valid);
  EXPECT_FALSE(RangeOf(read).valid);
  EXPECT_EQ(RangeOf(read).pfns, std::vector<HmmPfn>{HmmPfn{}});  // zeroed
  EXPECT_TRUE(RangeOf(fresh).valid);
}

TEST_F(MirrorApiTest, ReadFaultReportsPresentPagesAsTheyAre) {
  const uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("x")), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, a, Pages(2), kProtNone), Errno::kOk);
  // A present page needs no read fault, even without PROT_READ (4.14).
  EXPECT_EQ(RangeOf(k_.HmmVmaFault(1, a, 1, false).value).pfns[0],
            PagePfn(kHmmPfnValid, PteAt(pid_, a).page));
  // The empty page needs one: the VMA lacks PROT_READ.
  EXPECT_EQ(k_.HmmVmaFault(1, a, 2, false).err, Errno::kFault);
}

TEST_F(MirrorApiTest, WriteFaultOnReadOnlyVmaIsPerm) {
  const uint64_t a = Map(2, kProtRead);
  ASSERT_TRUE(k_.CpuRead(pid_, a, 1).ok());
  EXPECT_EQ(k_.HmmVmaFault(1, a, 2, true).err, Errno::kPerm);
  // A read fault of the same range succeeds.
  EXPECT_EQ(RangeOf(k_.HmmVmaFault(1, a, 2, false).value).pfns,
            (std::vector<HmmPfn>{ZeroPfn(), ZeroPfn()}));
}

TEST_F(MirrorApiTest, WriteFaultMigratesReadOnlyDeviceEntryBack) {
  AddDeviceMemory();
  const uint64_t a = Map(3);
  const uint64_t pfn = DeviceEntryAt(1, a + Pages(1), /*write=*/false);
  // Page 1 is a read-only device entry: a write needs a fault, whose callback
  // migrates the page back (docs/migrate.md); the write fault then reuses it.
  const uint64_t id = k_.HmmVmaFault(1, a, 3, true).value;
  EXPECT_EQ(k_.state().events,
            (std::vector<DeviceEvent>{{DeviceEvent::kFault, 1, pfn, pid_.value, a + Pages(1)}}));
  const Pte& pte = PteAt(pid_, a + Pages(1));
  EXPECT_FALSE(pte.device);
  EXPECT_TRUE(pte.write);
  EXPECT_EQ(RangeOf(id).pfns[1], PagePfn(kVrw, pte.page));
  EXPECT_FALSE(RangeOf(id).valid);  // the migration changed an entry of its range
  EXPECT_EQ(k_.HmmVmaRangeDone(id).value, false);
}

TEST_F(MirrorApiTest, DeviceEntryReportedAsIsUnlessWriteOfReadOnly) {
  AddDeviceMemory();
  const uint64_t a = Map(2);
  const uint64_t ro = DeviceEntryAt(2, a, /*write=*/false);
  const uint64_t rw = DeviceEntryAt(1, a + Pages(1), /*write=*/true);
  // 4.14 has no owner filter: either device's entry is reported, no callback.
  EXPECT_EQ(RangeOf(k_.HmmVmaFault(1, a, 2, false).value).pfns,
            (std::vector<HmmPfn>{{kVr | kHmmPfnDeviceUnaddressable, false, 0, ro},
                                 {kVrw | kHmmPfnDeviceUnaddressable, false, 0, rw}}));
  EXPECT_TRUE(RangeOf(k_.HmmVmaFault(1, a + Pages(1), 1, true).value).valid);
  EXPECT_TRUE(k_.state().events.empty());
}

class MirrorSmallRamTest : public MirrorTest {
 protected:
  MirrorSmallRamTest() : MirrorTest(/*ram_pages=*/2) {}
};

TEST_F(MirrorSmallRamTest, RamFullIsFault) {
  const uint64_t a = Map(3);
  EXPECT_EQ(k_.HmmVmaFault(1, a, 3, true).err, Errno::kFault);
  EXPECT_EQ(k_.state().pages.size(), 2u);
  EXPECT_TRUE(k_.state().ranges.empty());
}

TEST_F(MirrorSmallRamTest, FailedFaultUnregistersRangeKeepsEarlierPages) {
  AddDeviceMemory();
  const uint64_t a = Map(4);
  const uint64_t pfn = DeviceEntryAt(1, a + Pages(2), /*write=*/false);
  // Page 2 is a read-only device entry: a write needs a fault, whose callback
  // cannot migrate the page back (pages 0 and 1 took all RAM) and answers
  // SIGBUS. hmm_vma_fault() leaves ERROR there and 0 after, and has
  // unregistered the range: nothing of it is left to see.
  EXPECT_EQ(k_.HmmVmaFault(1, a, 4, true).err, Errno::kFault);
  EXPECT_TRUE(k_.state().ranges.empty());
  EXPECT_EQ(k_.HmmVmaRangeDone(1).err, Errno::kNoEnt);
  EXPECT_EQ(k_.state().events,
            (std::vector<DeviceEvent>{{DeviceEvent::kFault, 1, pfn, pid_.value, a + Pages(2)}}));
  EXPECT_TRUE(PteAt(pid_, a).write);  // pages before it stay faulted in
  EXPECT_TRUE(PteAt(pid_, a + Pages(1)).write);
  EXPECT_TRUE(PteAt(pid_, a + Pages(2)).device);  // the entry stays
  EXPECT_EQ(Proc(pid_).ptes.count(AddrToVpn(a + Pages(3))), 0u);
  EXPECT_EQ(Snap(a, 1), 2u);  // the failed range used id 1
}

TEST_F(MirrorApiTest, CowBreakMarksItsOwnRangeInvalid) {
  const uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(2, 1)), Errno::kOk);
  const Pid child = k_.Fork(pid_).value;
  const uint64_t shared = PteAt(pid_, a).page;
  const uint64_t other = Snap(a + Pages(1), 1);  // does not overlap page a
  const uint64_t id = k_.HmmVmaFault(1, a, 1, true).value;
  const Range& r = RangeOf(id);
  EXPECT_FALSE(r.valid);  // the COW break notified page a, this range's own
  EXPECT_NE(PteAt(pid_, a).page, shared);
  EXPECT_EQ(PteAt(child, a).page, shared);
  EXPECT_EQ(r.pfns, std::vector<HmmPfn>{PagePfn(kVrw, PteAt(pid_, a).page)});  // filled after
  EXPECT_TRUE(RangeOf(other).valid);
  EXPECT_EQ(k_.HmmVmaRangeDone(id).value, false);
  EXPECT_EQ(k_.DmirrorCommit(other).value, true);
}

TEST_F(MirrorApiTest, ReuseInPlaceKeepsRangeValid) {
  const uint64_t a = Map(1);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("x")), Errno::kOk);
  const Pid child = k_.Fork(pid_).value;
  ASSERT_EQ(k_.Exit(child), Errno::kOk);  // the page is this process's alone, read-only
  const uint64_t page = PteAt(pid_, a).page;
  const uint64_t id = k_.HmmVmaFault(1, a, 1, true).value;
  EXPECT_EQ(PteAt(pid_, a), (Pte{false, page, true}));
  EXPECT_EQ(RangeOf(id).pfns, std::vector<HmmPfn>{PagePfn(kVrw, page)});
  EXPECT_EQ(k_.HmmVmaRangeDone(id).value, true);
}

// --- State equality and Canonicalize ---

// A kernel with one process mirrored by mirror 1: two pages written in the
// order given (so page ids differ), read by the device, and an open range.
Kernel Written(bool backwards) {
  Kernel k;
  const Pid pid = k.CreateProcess().value;
  const uint64_t a = k.Mmap(pid, 0, Pages(2), kRw, kMapPrivate).value;
  EXPECT_EQ(k.HmmMirrorRegister(DeviceId(0), pid).value, 1u);
  for (uint64_t i : {0, 1}) {
    const uint64_t page = backwards ? 1 - i : i;
    EXPECT_EQ(k.CpuWrite(pid, a + Pages(page), PagesOf(1, uint8_t(page + 1))), Errno::kOk);
  }
  EXPECT_TRUE(k.DmirrorRead(1, a, 2).ok());
  EXPECT_EQ(k.HmmVmaGetPfns(1, a, 2).value, 1u);
  return k;
}

TEST(MirrorCanonicalTest, RenamesPtAndRangePagesKeepsIds) {
  const Kernel forwards = Written(false);
  const Kernel backwards = Written(true);
  EXPECT_FALSE(forwards.state() == backwards.state());
  const State c = Canonicalize(backwards.state());
  EXPECT_EQ(Canonicalize(forwards.state()), c);
  const Vpn vpn = AddrToVpn(kMmapBase);
  EXPECT_EQ(c.mirrors.at(1).pt.at(vpn).page, 1u);
  EXPECT_EQ(c.ranges.at(1).pfns[1].page, 2u);
  EXPECT_EQ(c.next_mirror, 2u);
  EXPECT_EQ(c.next_range, 2u);
}

TEST(MirrorCanonicalTest, EqualityComparesMirrorsAndRanges) {
  Kernel k = Written(false);
  const State s = k.state();
  State other = s;
  other.mirrors.at(1).pt.clear();
  EXPECT_FALSE(other == s);
  other = s;
  other.ranges.at(1).valid = false;
  EXPECT_FALSE(other == s);
  other = s;
  ++other.next_range;
  EXPECT_FALSE(other == s);
  other = s;
  ++other.next_mirror;
  EXPECT_FALSE(other == s);
}

}  // namespace
}  // namespace hmm::model
