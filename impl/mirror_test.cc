// File: impl/mirror_test.cc
//
// The seed's kernel API for mirroring (docs/mirror.md): guards in the
// documented order, the entry rules of HmmVmaGetPfns, the invalidation table
// (which CPU operation invalidates which pages), the commit protocol and
// HmmVmaFault's error semantics; each scenario runs in both profiles and
// ends with the representation invariant intact.

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_test_util.h"
#include "model/types.h"

namespace hmm::impl {
namespace {

using test_util::Fill;
using test_util::kPage;
using test_util::kRW;
using test_util::MapOrDie;
using test_util::PtOf;

constexpr uint64_t kV = kHmmPfnValid;
constexpr uint64_t kR = kHmmPfnRead;
constexpr uint64_t kW = kHmmPfnWrite;

uint64_t HmmPfn(uint64_t pfn, uint64_t flags) { return pfn << kHmmPfnShift | flags; }

std::optional<RangeInfo> RangeOf(const Kernel& k, uint64_t id) {
  for (const RangeInfo& r : k.Ranges()) {
    if (r.id == id) return r;
  }
  return std::nullopt;
}

bool SamePte(const PteInfo& a, const PteInfo& b) {
  return a.vpn == b.vpn && a.pfn == b.pfn && a.write == b.write && a.zero == b.zero &&
         a.device == b.device;
}

// Every profile, so that each test shows the sequential results agree.
class MirrorTest : public ::testing::TestWithParam<Profile> {
 protected:
  MirrorTest() : k_(test_util::SmallConfig(GetParam())) {
    pid_ = k_.CreateProcess().value;
    mirror_ = k_.HmmMirrorRegister(DeviceId(0), pid_).value;
  }
  void TearDown() override { EXPECT_REP_OK(k_); }

  uint64_t Map(uint64_t npages, uint32_t prot = kRW, uint32_t flags = kMapPrivate) {
    return MapOrDie(k_, pid_, npages, prot, flags);
  }
  uint64_t GetPfns(uint64_t addr, uint64_t npages) {
    Result<uint64_t> r = k_.HmmVmaGetPfns(mirror_, addr, npages);
    EXPECT_TRUE(r.ok()) << ErrnoName(r.err);
    return r.value;
  }
  bool Valid(uint64_t range) { return RangeOf(k_, range)->valid; }

  Kernel k_;
  Pid pid_;
  uint64_t mirror_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Profiles, MirrorTest, ::testing::Values(Profile::kDefault, Profile::kV18),
                         test_util::ProfileParamName);

TEST_P(MirrorTest, RegisterGuardsInOrder) {
  EXPECT_EQ(k_.HmmMirrorRegister(DeviceId(9), Pid(42)).err, Errno::kSrch);
  EXPECT_EQ(k_.HmmMirrorRegister(DeviceId(kMaxDevices), pid_).err, Errno::kInval);
  Pid gone = k_.CreateProcess().value;
  ASSERT_EQ(k_.Exit(gone), Errno::kOk);
  EXPECT_EQ(k_.HmmMirrorRegister(DeviceId(0), gone).err, Errno::kSrch);
  // Ids 1, 2, ...; several mirrors of one process, same device or not.
  for (uint64_t n = 2; n <= kMaxMirrors; ++n) {
    EXPECT_EQ(k_.HmmMirrorRegister(DeviceId(n % kMaxDevices), pid_).value, n);
  }
  EXPECT_EQ(k_.HmmMirrorRegister(DeviceId(0), pid_).err, Errno::kNoMem);
  ASSERT_EQ(k_.HmmMirrorUnregister(5), Errno::kOk);
  EXPECT_EQ(k_.HmmMirrorUnregister(5), Errno::kNoEnt);
  EXPECT_EQ(k_.HmmMirrorRegister(DeviceId(0), pid_).value, kMaxMirrors + 1) << "never reused";
  EXPECT_EQ(k_.Mirrors().size(), kMaxMirrors);
}

TEST_P(MirrorTest, UnregisterWaitsForRangeDone) {
  uint64_t a = Map(4);
  uint64_t range = GetPfns(a, 4);
  EXPECT_EQ(k_.HmmMirrorUnregister(mirror_), Errno::kBusy);
  EXPECT_EQ(k_.HmmVmaRangeDone(range).value, true);
  EXPECT_EQ(k_.HmmVmaRangeDone(range).err, Errno::kNoEnt) << "once and only once";
  EXPECT_EQ(k_.HmmMirrorUnregister(mirror_), Errno::kOk);
  EXPECT_EQ(k_.HmmVmaGetPfns(mirror_, a, 1).err, Errno::kNoEnt);
  EXPECT_TRUE(k_.Mirrors().empty());
}

TEST_P(MirrorTest, GetPfnsGuardsInOrder) {
  uint64_t a = Map(4);
  uint64_t b = Map(4);
  ASSERT_EQ(b, a + 4 * kPage) << "adjacent VMAs, never merged";
  EXPECT_EQ(k_.HmmVmaGetPfns(99, a + 1, 0).err, Errno::kNoEnt);
  EXPECT_EQ(k_.HmmVmaGetPfns(mirror_, a + 1, 1).err, Errno::kInval);
  EXPECT_EQ(k_.HmmVmaGetPfns(mirror_, a, 0).err, Errno::kInval);
  EXPECT_EQ(k_.HmmVmaGetPfns(mirror_, kTaskSize - kPage, 2).err, Errno::kInval);
  EXPECT_EQ(k_.HmmVmaGetPfns(mirror_, a, ~uint64_t{0}).err, Errno::kInval);
  EXPECT_EQ(k_.HmmVmaGetPfns(mirror_, a, kMaxRangePages + 1).err, Errno::kNoMem)
      << "the pfns array, before the VMA";
  EXPECT_EQ(k_.HmmVmaFault(mirror_, a, kMaxRangePages + 1, false).err, Errno::kNoMem);
  EXPECT_EQ(k_.HmmVmaGetPfns(mirror_, a + 2 * kPage, 4).err, Errno::kInval) << "two VMAs";
  EXPECT_EQ(k_.HmmVmaGetPfns(mirror_, b + 4 * kPage, 1).err, Errno::kInval) << "no VMA";
  EXPECT_EQ(k_.HmmVmaFault(mirror_, a + 2 * kPage, 4, false).err, Errno::kInval);
  EXPECT_TRUE(k_.Ranges().empty());
  ASSERT_EQ(k_.Exit(pid_), Errno::kOk);
  EXPECT_EQ(k_.HmmVmaGetPfns(mirror_, a, 1).err, Errno::kInval) << "exited";
  EXPECT_EQ(k_.HmmVmaFault(mirror_, a, 1, true).err, Errno::kInval);
  EXPECT_EQ(k_.HmmVmaGetPfns(mirror_, a, kMaxRangePages + 1).err, Errno::kNoMem)
      << "before the process";
  EXPECT_EQ(k_.HmmVmaGetPfns(99, a, 1).err, Errno::kNoEnt) << "kNoEnt first";
}

TEST_P(MirrorTest, GetPfnsEntryRules) {
  uint64_t a = Map(5);
  ASSERT_TRUE(k_.CpuRead(pid_, a + kPage, 1).ok());                  // zero page
  ASSERT_EQ(k_.CpuWrite(pid_, a + 2 * kPage, {1}), Errno::kOk);      // a page, writable
  uint64_t devmem = k_.HmmDevmemAdd(DeviceId(1), kPage).value;
  uint64_t dpfn = k_.DevicePageAlloc(devmem).value;
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, a + 3 * kPage, dpfn, true), Errno::kOk);
  std::vector<PteInfo> before = k_.Ptes(pid_);
  uint64_t range = GetPfns(a, 5);
  RangeInfo r = *RangeOf(k_, range);
  uint64_t page = test_util::PteAt(k_, pid_, a + 2 * kPage)->pfn;
  EXPECT_EQ(r.mirror, mirror_);
  EXPECT_EQ(r.start_vpn, a / kPage);
  EXPECT_EQ(r.end_vpn, a / kPage + 5);
  EXPECT_TRUE(r.valid);
  std::vector<uint64_t> want = {kHmmPfnEmpty, HmmPfn(k_.ZeroPfn(), kV | kR),
                                HmmPfn(page, kV | kR | kW),
                                HmmPfn(dpfn, kV | kHmmPfnDeviceUnaddressable | kR | kW),
                                kHmmPfnEmpty};
  EXPECT_EQ(r.pfns, want);
  EXPECT_EQ(k_.Ptes(pid_).size(), before.size()) << "a snapshot faults nothing";
  ASSERT_TRUE(k_.HmmVmaRangeDone(range).value);
  // Read-only entries, and a VMA without PROT_READ: no READ.
  ASSERT_EQ(k_.Mprotect(pid_, a, 5 * kPage, kProtNone), Errno::kOk);
  r = *RangeOf(k_, range = GetPfns(a, 5));
  EXPECT_EQ(r.pfns[1], HmmPfn(k_.ZeroPfn(), kV));
  EXPECT_EQ(r.pfns[2], HmmPfn(page, kV));
  EXPECT_EQ(r.pfns[3], HmmPfn(dpfn, kV | kHmmPfnDeviceUnaddressable));
  ASSERT_TRUE(k_.HmmVmaRangeDone(range).ok());
}

// A big snapshot crosses leaf tables and table holes.
TEST_P(MirrorTest, GetPfnsAcrossLeafTables) {
  const uint64_t n = 3 * 512 + 7;
  uint64_t a = Map(n);
  std::vector<uint64_t> touched = {0, 1, 511, 512, 1023, n - 1};  // no PTE table for 1024..1535
  for (uint64_t i : touched) ASSERT_TRUE(k_.CpuRead(pid_, a + i * kPage, 1).ok());
  uint64_t range = GetPfns(a + kPage, n - 1);
  RangeInfo r = *RangeOf(k_, range);
  ASSERT_EQ(r.pfns.size(), n - 1);
  for (uint64_t i = 1; i < n; ++i) {
    bool zero = std::count(touched.begin(), touched.end(), i) != 0;
    EXPECT_EQ(r.pfns[i - 1], zero ? HmmPfn(k_.ZeroPfn(), kV | kR) : uint64_t{kHmmPfnEmpty})
        << "page " << i;
  }
  ASSERT_TRUE(k_.HmmVmaRangeDone(range).ok());
}

// --- The invalidation table ---

TEST_P(MirrorTest, MunmapInvalidatesOverlapStrictly) {
  uint64_t a = Map(8);
  uint64_t left = GetPfns(a, 2);       // ends exactly where the munmap starts
  uint64_t mid = GetPfns(a + kPage, 4);
  uint64_t right = GetPfns(a + 4 * kPage, 4);
  ASSERT_EQ(k_.Munmap(pid_, a + 2 * kPage, 2 * kPage), Errno::kOk);
  EXPECT_TRUE(Valid(left));
  EXPECT_TRUE(Valid(right));
  RangeInfo r = *RangeOf(k_, mid);
  EXPECT_FALSE(r.valid);
  EXPECT_EQ(r.pfns, (std::vector<uint64_t>{kHmmPfnEmpty, 0, 0, kHmmPfnEmpty}));
  for (uint64_t id : {left, mid, right}) ASSERT_TRUE(k_.HmmVmaRangeDone(id).ok());
}

TEST_P(MirrorTest, MapFixedAndMadviseInvalidate) {
  uint64_t a = Map(4);
  uint64_t r1 = GetPfns(a, 4);
  ASSERT_TRUE(k_.Mmap(pid_, a + 3 * kPage, kPage, kRW, kMapPrivate | kMapFixed).ok());
  EXPECT_FALSE(Valid(r1));
  uint64_t r2 = GetPfns(a, 2);
  uint64_t r3 = GetPfns(a + 2 * kPage, 1);
  ASSERT_EQ(k_.MadviseDontneed(pid_, a + kPage, kPage), Errno::kOk);
  EXPECT_FALSE(Valid(r2));
  EXPECT_TRUE(Valid(r3));
  for (uint64_t id : {r1, r2, r3}) ASSERT_TRUE(k_.HmmVmaRangeDone(id).ok());
}

TEST_P(MirrorTest, MprotectInvalidatesOnlyChangedVmas) {
  uint64_t a = Map(4);
  uint64_t r1 = GetPfns(a, 4);
  ASSERT_EQ(k_.Mprotect(pid_, a, 4 * kPage, kRW), Errno::kOk);
  EXPECT_TRUE(Valid(r1)) << "prot unchanged: mprotect_fixup() returns early";
  ASSERT_EQ(k_.Mprotect(pid_, a + 2 * kPage, kPage, kProtRead), Errno::kOk);
  EXPECT_FALSE(Valid(r1));
  uint64_t r2 = GetPfns(a, 2);  // the VMA now split off below the changed part
  ASSERT_EQ(k_.Mprotect(pid_, a, 4 * kPage, kProtRead), Errno::kOk);
  EXPECT_FALSE(Valid(r2));
  uint64_t r3 = GetPfns(a + 2 * kPage, 1);
  ASSERT_EQ(k_.Mprotect(pid_, a, 4 * kPage, kProtRead), Errno::kOk);
  EXPECT_TRUE(Valid(r3));
  ASSERT_EQ(k_.Mprotect(pid_, a, 4 * kPage, kRW), Errno::kOk);
  EXPECT_FALSE(Valid(r3)) << "adding write changes prot too";
  for (uint64_t id : {r1, r2, r3}) ASSERT_TRUE(k_.HmmVmaRangeDone(id).ok());
}

TEST_P(MirrorTest, MremapInvalidatesWhatItUnmapsOrMoves) {
  uint64_t a = Map(4);
  uint64_t head = GetPfns(a, 2);
  uint64_t tail = GetPfns(a + 3 * kPage, 1);
  ASSERT_EQ(k_.Mremap(pid_, a, 4 * kPage, 3 * kPage, 0, 0).value, a);  // shrink
  EXPECT_TRUE(Valid(head));
  EXPECT_FALSE(Valid(tail));
  ASSERT_EQ(k_.Mremap(pid_, a, 3 * kPage, 6 * kPage, 0, 0).value, a);  // grow in place
  EXPECT_TRUE(Valid(head));
  uint64_t b = Map(2);
  uint64_t other = GetPfns(b, 2);
  uint64_t dst = b + 8 * kPage;
  ASSERT_EQ(k_.Mremap(pid_, a, 6 * kPage, 2 * kPage, kMremapMaymove | kMremapFixed, b).value, b);
  EXPECT_FALSE(Valid(head)) << "moved";
  EXPECT_FALSE(Valid(other)) << "MREMAP_FIXED's target";
  uint64_t moved = GetPfns(b, 2);
  ASSERT_EQ(k_.Mremap(pid_, b, 2 * kPage, 2 * kPage, kMremapMaymove | kMremapFixed, dst).value,
            dst);
  EXPECT_FALSE(Valid(moved));
  for (uint64_t id : {head, tail, other, moved}) ASSERT_TRUE(k_.HmmVmaRangeDone(id).ok());
}

TEST_P(MirrorTest, ForkInvalidatesPrivateVmasOnly) {
  uint64_t priv = Map(2);
  uint64_t shared = Map(2, kRW, kMapShared);
  ASSERT_EQ(k_.CpuWrite(pid_, priv, {1}), Errno::kOk);
  ASSERT_EQ(k_.CpuWrite(pid_, shared, {1}), Errno::kOk);
  uint64_t rp = GetPfns(priv, 2);
  uint64_t rs = GetPfns(shared, 2);
  Pid child = k_.Fork(pid_).value;
  EXPECT_FALSE(Valid(rp));
  EXPECT_TRUE(Valid(rs));
  // The child has no mirror: its COW break notifies nobody of the parent's.
  uint64_t rp2 = GetPfns(priv, 2);
  ASSERT_EQ(k_.CpuWrite(child, priv, {2}), Errno::kOk);
  EXPECT_TRUE(Valid(rp2));
  ASSERT_EQ(k_.Exit(child), Errno::kOk);
  for (uint64_t id : {rp, rs, rp2}) ASSERT_TRUE(k_.HmmVmaRangeDone(id).ok());
}

TEST_P(MirrorTest, WriteFaultNotifiesOnlyACopiedPage) {
  uint64_t a = Map(4);
  ASSERT_TRUE(k_.CpuRead(pid_, a, 1).ok());                      // zero page
  ASSERT_EQ(k_.CpuWrite(pid_, a + kPage, {1}), Errno::kOk);      // exclusive page
  Pid child = k_.Fork(pid_).value;                               // page 1 now COW
  ASSERT_EQ(k_.CpuWrite(pid_, a + 2 * kPage, {1}), Errno::kOk);  // empty -> new page
  uint64_t r0 = GetPfns(a, 1), r1 = GetPfns(a + kPage, 1), r2 = GetPfns(a + 2 * kPage, 1);
  uint64_t r3 = GetPfns(a + 3 * kPage, 1);
  ASSERT_TRUE(k_.CpuRead(pid_, a + 3 * kPage, 1).ok());  // a read fault fills an empty entry
  ASSERT_EQ(k_.CpuWrite(pid_, a + 2 * kPage, {2}), Errno::kOk);  // reuse in place
  EXPECT_TRUE(Valid(r3));
  EXPECT_TRUE(Valid(r2));
  ASSERT_EQ(k_.CpuWrite(pid_, a + kPage, {2}), Errno::kOk);  // COW break
  EXPECT_FALSE(Valid(r1));
  EXPECT_TRUE(Valid(r0));
  ASSERT_TRUE(k_.PinUserPages(pid_, a, 1).ok());  // zero page -> new page, through a pin
  EXPECT_FALSE(Valid(r0));
  ASSERT_EQ(k_.Exit(child), Errno::kOk);
  for (uint64_t id : {r0, r1, r2, r3}) ASSERT_TRUE(k_.HmmVmaRangeDone(id).ok());
}

TEST_P(MirrorTest, ExitInvalidatesEverythingAndKeepsTheMirror) {
  uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, {1}), Errno::kOk);
  uint64_t range = GetPfns(a, 2);
  ASSERT_EQ(k_.DmirrorCommit(GetPfns(a, 2)).value, true);
  EXPECT_EQ(PtOf(k_, mirror_).size(), 1u);
  ASSERT_EQ(k_.Exit(pid_), Errno::kOk);
  EXPECT_FALSE(Valid(range));
  ASSERT_EQ(k_.Mirrors().size(), 1u);
  EXPECT_TRUE(PtOf(k_, mirror_).empty());
  EXPECT_EQ(k_.DmirrorCommit(range).value, false);
  EXPECT_EQ(k_.HmmMirrorUnregister(mirror_), Errno::kOk);
}

TEST_P(MirrorTest, DeviceMemoryOperationsNotifyNothing) {
  uint64_t a = Map(2);
  uint64_t range = GetPfns(a, 2);
  uint64_t devmem = k_.HmmDevmemAdd(DeviceId(1), kPage).value;
  uint64_t dpfn = k_.DevicePageAlloc(devmem).value;
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, a, dpfn, true), Errno::kOk);  // fills an empty slot
  ASSERT_EQ(k_.DevicePagePut(dpfn), Errno::kOk);
  EXPECT_TRUE(Valid(range));
  ASSERT_TRUE(k_.HmmVmaRangeDone(range).ok());
}

// --- The commit protocol ---

TEST_P(MirrorTest, CommitInstallsValidReadableEntries) {
  uint64_t a = Map(6);
  ASSERT_TRUE(k_.CpuRead(pid_, a, 1).ok());
  ASSERT_EQ(k_.CpuWrite(pid_, a + kPage, {1}), Errno::kOk);
  uint64_t own = k_.HmmDevmemAdd(DeviceId(0), kPage).value;
  uint64_t other = k_.HmmDevmemAdd(DeviceId(1), kPage).value;
  uint64_t own_pfn = k_.DevicePageAlloc(own).value;
  uint64_t other_pfn = k_.DevicePageAlloc(other).value;
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, a + 2 * kPage, own_pfn, false), Errno::kOk);
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, a + 3 * kPage, other_pfn, true), Errno::kOk);
  EXPECT_EQ(k_.DmirrorCommit(77).err, Errno::kNoEnt);
  uint64_t range = GetPfns(a, 6);
  ASSERT_EQ(k_.DmirrorCommit(range).value, true);
  EXPECT_EQ(k_.HmmVmaRangeDone(range).err, Errno::kNoEnt) << "the commit called range_done";
  std::vector<PteInfo> pt = PtOf(k_, mirror_);
  std::vector<PteInfo> cpu = k_.Ptes(pid_);
  ASSERT_EQ(pt.size(), 3u) << "empty slots and another device's page are not installed";
  EXPECT_TRUE(SamePte(pt[0], cpu[0]));
  EXPECT_TRUE(SamePte(pt[1], cpu[1]));
  EXPECT_TRUE(SamePte(pt[2], cpu[2]));
  EXPECT_TRUE(pt[0].zero && pt[1].write && pt[2].device && !pt[2].write);
  // An unreadable VMA's entries have no READ: not installed.
  ASSERT_EQ(k_.Mprotect(pid_, a, 6 * kPage, kProtNone), Errno::kOk);
  EXPECT_TRUE(PtOf(k_, mirror_).empty());
  ASSERT_EQ(k_.DmirrorCommit(GetPfns(a, 6)).value, true);
  EXPECT_TRUE(PtOf(k_, mirror_).empty());
}

TEST_P(MirrorTest, CommitAfterOverlappingMunmapInstallsNothing) {
  uint64_t a = Map(4);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Fill(4 * kPage, 7)), Errno::kOk);
  uint64_t range = GetPfns(a, 4);
  ASSERT_EQ(k_.Munmap(pid_, a + 3 * kPage, kPage), Errno::kOk);
  EXPECT_EQ(k_.DmirrorCommit(range).value, false);
  EXPECT_TRUE(PtOf(k_, mirror_).empty());
  EXPECT_TRUE(k_.Ranges().empty());
}

TEST_P(MirrorTest, InvalidationErasesEveryMirrorOfTheProcessOnly) {
  uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Fill(2 * kPage, 1)), Errno::kOk);
  uint64_t second = k_.HmmMirrorRegister(DeviceId(3), pid_).value;
  Pid other = k_.CreateProcess().value;
  uint64_t b = MapOrDie(k_, other, 2, kRW, kMapPrivate);
  ASSERT_EQ(k_.CpuWrite(other, b, Fill(2 * kPage, 1)), Errno::kOk);
  uint64_t third = k_.HmmMirrorRegister(DeviceId(0), other).value;
  ASSERT_TRUE(k_.DmirrorCommit(GetPfns(a, 2)).value);
  ASSERT_TRUE(k_.DmirrorCommit(k_.HmmVmaGetPfns(second, a, 2).value).value);
  ASSERT_TRUE(k_.DmirrorCommit(k_.HmmVmaGetPfns(third, b, 2).value).value);
  ASSERT_EQ(k_.Mprotect(pid_, a, kPage, kProtRead), Errno::kOk);
  EXPECT_EQ(PtOf(k_, mirror_).size(), 1u);
  EXPECT_EQ(PtOf(k_, second).size(), 1u);
  EXPECT_EQ(PtOf(k_, third).size(), 2u);
}

// --- HmmVmaFault ---

TEST_P(MirrorTest, FaultFillsEmptyEntries) {
  uint64_t a = Map(3);
  uint64_t r = k_.HmmVmaFault(mirror_, a, 2, false).value;
  RangeInfo info = *RangeOf(k_, r);
  EXPECT_TRUE(info.valid);
  EXPECT_EQ(info.pfns, std::vector<uint64_t>(2, HmmPfn(k_.ZeroPfn(), kV | kR)));
  ASSERT_TRUE(k_.HmmVmaRangeDone(r).value);
  r = k_.HmmVmaFault(mirror_, a + kPage, 2, true).value;  // zero page then empty
  info = *RangeOf(k_, r);
  EXPECT_FALSE(info.valid) << "the zero page was replaced: its COW notified";
  std::vector<PteInfo> ptes = k_.Ptes(pid_);
  ASSERT_EQ(ptes.size(), 3u);
  EXPECT_EQ(info.pfns, (std::vector<uint64_t>{HmmPfn(ptes[1].pfn, kV | kR | kW),
                                              HmmPfn(ptes[2].pfn, kV | kR | kW)}));
  ASSERT_FALSE(k_.HmmVmaRangeDone(r).value);
  r = k_.HmmVmaFault(mirror_, a + kPage, 2, true).value;
  EXPECT_TRUE(Valid(r)) << "writable pages need no fault";
  ASSERT_TRUE(k_.HmmVmaRangeDone(r).value);
}

TEST_P(MirrorTest, FaultErrorsUnregisterTheRange) {
  uint64_t ro = Map(2, kProtRead);
  uint64_t none = Map(2, kProtNone);
  ASSERT_TRUE(k_.CpuRead(pid_, ro, 1).ok());
  // Pages before the failing one stay faulted in; the range is gone, its id used.
  EXPECT_EQ(k_.HmmVmaFault(mirror_, ro + kPage, 1, true).err, Errno::kPerm);
  EXPECT_EQ(k_.HmmVmaFault(mirror_, none, 2, false).err, Errno::kFault);
  EXPECT_EQ(k_.HmmVmaFault(mirror_, none, 2, true).err, Errno::kFault) << "READ before WRITE";
  EXPECT_EQ(k_.HmmVmaRangeDone(1).err, Errno::kNoEnt);
  EXPECT_TRUE(k_.Ranges().empty());
  uint64_t r = k_.HmmVmaFault(mirror_, ro, 2, false).value;
  EXPECT_EQ(r, 4u) << "each failed fault registered a range first";
  EXPECT_EQ(RangeOf(k_, r)->pfns[1], HmmPfn(k_.ZeroPfn(), kV | kR));
  ASSERT_TRUE(k_.HmmVmaRangeDone(r).value);
  EXPECT_EQ(k_.HmmVmaFault(mirror_, ro, 2, true).err, Errno::kPerm);
  EXPECT_EQ(k_.Ptes(pid_).size(), 2u);
}

TEST_P(MirrorTest, FaultMigratesADevicePageBack) {
  uint64_t a = Map(3);
  uint64_t devmem = k_.HmmDevmemAdd(DeviceId(2), kPage).value;
  uint64_t dpfn = k_.DevicePageAlloc(devmem).value;
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, a + kPage, dpfn, false), Errno::kOk);
  // Read: a device entry is reported as is, whatever device owns it.
  uint64_t r = k_.HmmVmaFault(mirror_, a, 3, false).value;
  EXPECT_EQ(RangeOf(k_, r)->pfns[1], HmmPfn(dpfn, kV | kHmmPfnDeviceUnaddressable | kR));
  ASSERT_TRUE(k_.HmmVmaRangeDone(r).value);
  EXPECT_TRUE(k_.DeviceEvents().empty());
  // Write: the read-only entry needs a fault; its callback migrates the page
  // back, then the write fault takes it (docs/migrate.md).
  r = k_.HmmVmaFault(mirror_, a, 3, true).value;
  EXPECT_EQ(test_util::Events(k_), test_util::Show({test_util::Fault(devmem, dpfn, pid_,
                                                                     a + kPage)}));
  std::vector<PteInfo> ptes = k_.Ptes(pid_);
  ASSERT_EQ(ptes.size(), 3u);
  for (const PteInfo& pte : ptes) EXPECT_TRUE(pte.write && !pte.zero && !pte.device);
  EXPECT_EQ(RangeOf(k_, r)->pfns[1], HmmPfn(ptes[1].pfn, kV | kR | kHmmPfnWrite));
  EXPECT_FALSE(k_.HmmVmaRangeDone(r).value) << "the migration back invalidated the range";
  EXPECT_TRUE(k_.Ranges().empty());
}

TEST_P(MirrorTest, FaultFailsWhereADevicePageCannotComeBack) {
  uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, {1}), Errno::kOk);
  uint64_t devmem = k_.HmmDevmemAdd(DeviceId(2), kPage).value;
  uint64_t dpfn = k_.DevicePageAlloc(devmem).value;
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, a + kPage, dpfn, false), Errno::kOk);
  // Fill RAM: the migration back has no page to go to.
  uint64_t filler = Map(k_.ram_pages());
  for (uint64_t i = 0; k_.CpuWrite(pid_, filler + i * kPage, {1}) == Errno::kOk; ++i) {
  }
  EXPECT_EQ(k_.HmmVmaFault(mirror_, a, 2, true).err, Errno::kFault);
  EXPECT_EQ(test_util::Events(k_), test_util::Show({test_util::Fault(devmem, dpfn, pid_,
                                                                     a + kPage)}));
  EXPECT_TRUE(k_.Ptes(pid_)[1].device) << "SIGBUS: the entry stays";
  EXPECT_TRUE(k_.Ranges().empty());
}

TEST_P(MirrorTest, FaultOnNonReadableVmaReportsPresentPages) {
  uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Fill(2 * kPage, 3)), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, a, 2 * kPage, kProtNone), Errno::kOk);
  uint64_t r = k_.HmmVmaFault(mirror_, a, 2, false).value;
  std::vector<PteInfo> ptes = k_.Ptes(pid_);
  EXPECT_EQ(RangeOf(k_, r)->pfns,
            (std::vector<uint64_t>{HmmPfn(ptes[0].pfn, kV), HmmPfn(ptes[1].pfn, kV)}));
  ASSERT_TRUE(k_.HmmVmaRangeDone(r).value);
}

}  // namespace
}  // namespace hmm::impl
