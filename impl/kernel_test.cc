// File: impl/kernel_test.cc
//
// Operations one at a time: every guard rung with its Errno and the refcount
// bookkeeping (RepInvariant after each step). Fork, COW and pins are in
// fork_test.cc, mremap in mremap_test.cc.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_test_util.h"
#include "model/types.h"

namespace hmm::impl {
namespace {

using namespace ::hmm::impl::test_util;  // NOLINT: test helpers

// --- CreateProcess / Exit ---

TEST(KernelTest, PidsAreSequentialAndNeverReused) {
  Kernel k;
  EXPECT_EQ(k.CreateProcess().value, Pid(1));
  EXPECT_EQ(k.CreateProcess().value, Pid(2));
  EXPECT_EQ(k.Exit(Pid(1)), Errno::kOk);
  EXPECT_EQ(k.Exit(Pid(1)), Errno::kSrch);
  EXPECT_EQ(k.CreateProcess().value, Pid(3));
  EXPECT_EQ(k.Pids(), (std::vector<Pid>{Pid(2), Pid(3)}));
}

TEST(KernelTest, MoreThanMaxProcessesIsAgain) {
  Kernel k;
  for (uint64_t i = 0; i < kMaxProcesses; ++i) ASSERT_TRUE(k.CreateProcess().ok());
  EXPECT_EQ(k.CreateProcess().err, Errno::kAgain);
  EXPECT_EQ(k.Fork(Pid(1)).err, Errno::kAgain);
  ASSERT_EQ(k.Exit(Pid(5)), Errno::kOk);
  EXPECT_EQ(k.Fork(Pid(1)).value, Pid(kMaxProcesses + 1));
}

TEST(KernelTest, EveryPerProcessOperationChecksThePidFirst) {
  Kernel k;
  Pid dead(7);
  EXPECT_EQ(k.Mmap(dead, 0, 0, 99, 99).err, Errno::kSrch);
  EXPECT_EQ(k.Munmap(dead, 1, 0), Errno::kSrch);
  EXPECT_EQ(k.Mprotect(dead, 1, 0, 99), Errno::kSrch);
  EXPECT_EQ(k.Mremap(dead, 1, 0, 0, 99, 0).err, Errno::kSrch);
  EXPECT_EQ(k.Fork(dead).err, Errno::kSrch);
  EXPECT_EQ(k.MadviseDontneed(dead, 1, 0), Errno::kSrch);
  EXPECT_EQ(k.CpuRead(dead, 0, 0).err, Errno::kSrch);
  EXPECT_EQ(k.CpuWrite(dead, 0, {}), Errno::kSrch);
  EXPECT_EQ(k.PinUserPages(dead, 1, 0).err, Errno::kSrch);
  EXPECT_EQ(k.Exit(dead), Errno::kSrch);
  EXPECT_EQ(k.UnpinUserPages(PinId(1)), Errno::kNoEnt);
}

// --- Mmap ---

TEST(KernelTest, MmapGuardRungs) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  EXPECT_EQ(k.Mmap(p, 0, kPage, kRW, kMapShared | kMapPrivate).err, Errno::kInval);
  EXPECT_EQ(k.Mmap(p, 0, kPage, kRW, 0).err, Errno::kInval);
  EXPECT_EQ(k.Mmap(p, 0, kPage, kRW, kMapPrivate | 8).err, Errno::kInval);
  EXPECT_EQ(k.Mmap(p, 0, kPage, 4, kMapPrivate).err, Errno::kInval);
  EXPECT_EQ(k.Mmap(p, 0, 0, kRW, kMapPrivate).err, Errno::kInval);
  EXPECT_EQ(k.Mmap(p, 0, UINT64_MAX, kRW, kMapPrivate).err, Errno::kNoMem);
  EXPECT_EQ(k.Mmap(p, 0, kTaskSize + 1, kRW, kMapPrivate).err, Errno::kNoMem);
  EXPECT_EQ(k.Mmap(p, 0x1001, kPage, kRW, kMapPrivate | kMapFixed).err, Errno::kInval);
  EXPECT_EQ(k.Mmap(p, kTaskSize - kPage, 2 * kPage, kRW, kMapPrivate | kMapFixed).err,
            Errno::kNoMem);
  EXPECT_TRUE(k.Vmas(p).empty());
  EXPECT_EQ(k.Mmap(p, kTaskSize - kPage, kPage, kRW, kMapPrivate | kMapFixed).value,
            kTaskSize - kPage);
  EXPECT_REP_OK(k);
}

TEST(KernelTest, MmapFirstFitHintAndRounding) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  EXPECT_EQ(k.Mmap(p, 0, 1, kRW, kMapPrivate).value, kMmapBase);
  EXPECT_EQ(k.Mmap(p, 0, kPage + 1, kProtRead, kMapPrivate).value, kMmapBase + kPage);
  // A free hint is used, rounded down to a page (round_hint_to_min()).
  EXPECT_EQ(k.Mmap(p, 0x5000fff, kPage, kRW, kMapPrivate).value, 0x5000000u);
  // A taken hint falls back to first fit.
  EXPECT_EQ(k.Mmap(p, kMmapBase, kPage, kRW, kMapPrivate).value, kMmapBase + 3 * kPage);
  std::vector<VmaInfo> vmas = k.Vmas(p);
  ASSERT_EQ(vmas.size(), 4u);
  EXPECT_EQ(vmas[0].start, 0x5000000u);
  EXPECT_EQ(vmas[2].end - vmas[2].start, 2 * kPage);
  EXPECT_EQ(vmas[2].prot, uint32_t{kProtRead});
  // The gap left by an unmap is found again.
  ASSERT_EQ(k.Munmap(p, kMmapBase, kPage), Errno::kOk);
  EXPECT_EQ(k.Mmap(p, 0, kPage, kRW, kMapShared).value, kMmapBase);
  EXPECT_REP_OK(k);
}

TEST(KernelTest, MmapFixedUnmapsWhatWasThere) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, p, 4, kRW, kMapPrivate);
  ASSERT_EQ(k.CpuWrite(p, a, Fill(4 * kPage, 9)), Errno::kOk);
  EXPECT_EQ(k.PagesInUse().size(), 4u);
  ASSERT_EQ(k.Mmap(p, a + kPage, 2 * kPage, kProtRead, kMapShared | kMapFixed).value, a + kPage);
  EXPECT_EQ(k.PagesInUse().size(), 2u);
  std::vector<VmaInfo> vmas = k.Vmas(p);
  ASSERT_EQ(vmas.size(), 3u);
  EXPECT_TRUE(vmas[1].shared);
  EXPECT_EQ(k.CpuRead(p, a + kPage, 1).value, Fill(1, 0));
  EXPECT_EQ(k.CpuRead(p, a + 3 * kPage, 1).value, Fill(1, 9));
  EXPECT_REP_OK(k);
}

// --- Munmap ---

TEST(KernelTest, MunmapGuardRungsAndSplit) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, p, 3, kRW, kMapPrivate);
  EXPECT_EQ(k.Munmap(p, a + 1, kPage), Errno::kInval);
  EXPECT_EQ(k.Munmap(p, a, 0), Errno::kInval);
  EXPECT_EQ(k.Munmap(p, a, UINT64_MAX), Errno::kInval);
  EXPECT_EQ(k.Munmap(p, kTaskSize - kPage, 2 * kPage), Errno::kInval);
  EXPECT_EQ(k.Munmap(p, 0x1000, kPage), Errno::kOk) << "nothing mapped is fine";
  ASSERT_EQ(k.CpuWrite(p, a, Fill(3 * kPage, 1)), Errno::kOk);
  EXPECT_EQ(k.Munmap(p, a + kPage, 1), Errno::kOk);
  std::vector<VmaInfo> vmas = k.Vmas(p);
  ASSERT_EQ(vmas.size(), 2u);
  EXPECT_EQ(vmas[0].end, a + kPage);
  EXPECT_EQ(vmas[1].start, a + 2 * kPage);
  EXPECT_EQ(k.PagesInUse().size(), 2u);
  EXPECT_EQ(k.CpuRead(p, a + kPage, 1).err, Errno::kFault);
  EXPECT_REP_OK(k);
}

// --- CpuRead / CpuWrite and the fault path ---

TEST(KernelTest, AccessGuardRungs) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, p, 1, kRW, kMapPrivate);
  EXPECT_EQ(k.CpuRead(p, a, 0).err, Errno::kInval);
  EXPECT_EQ(k.CpuRead(p, a, kMaxAccess + 1).err, Errno::kInval);
  EXPECT_EQ(k.CpuWrite(p, a, {}), Errno::kInval);
  EXPECT_EQ(k.CpuRead(p, kTaskSize - 1, 2).err, Errno::kFault);
  EXPECT_EQ(k.CpuRead(p, UINT64_MAX, 1).err, Errno::kFault);
  EXPECT_EQ(k.CpuRead(p, a + kPage, 1).err, Errno::kFault);
  EXPECT_TRUE(k.CpuRead(p, a, kPage).ok());
  EXPECT_REP_OK(k);
}

TEST(KernelTest, ReadMapsTheZeroPageWriteMapsANewPage) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, p, 2, kRW, kMapPrivate);
  EXPECT_EQ(k.CpuRead(p, a, 10).value, Fill(10, 0));
  std::optional<PteInfo> pte = PteAt(k, p, a);
  ASSERT_TRUE(pte);
  EXPECT_TRUE(pte->zero);
  EXPECT_FALSE(pte->write);
  EXPECT_EQ(pte->pfn, k.ZeroPfn());
  EXPECT_TRUE(k.PagesInUse().empty());
  EXPECT_REP_OK(k);
  // A write to the zero page's PTE breaks COW into a new zeroed page.
  ASSERT_EQ(k.CpuWrite(p, a + 5, {1, 2, 3}), Errno::kOk);
  pte = PteAt(k, p, a);
  EXPECT_FALSE(pte->zero);
  EXPECT_TRUE(pte->write);
  EXPECT_EQ(k.CpuRead(p, a + 4, 5).value, (std::vector<uint8_t>{0, 1, 2, 3, 0}));
  // Writes span pages; the zero page stays zero.
  ASSERT_EQ(k.CpuWrite(p, a + kPage - 2, {7, 7, 7, 7}), Errno::kOk);
  EXPECT_EQ(k.PageData(k.ZeroPfn()), Fill(kPage, 0));
  EXPECT_EQ(k.PagesInUse().size(), 2u);
  EXPECT_REP_OK(k);
}

TEST(KernelTest, ProtectionDecidesAccess) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t none = MapOrDie(k, p, 1, kProtNone, kMapPrivate);
  uint64_t ro = MapOrDie(k, p, 1, kProtRead, kMapPrivate);
  uint64_t wo = MapOrDie(k, p, 1, kProtWrite, kMapPrivate);
  EXPECT_EQ(k.CpuRead(p, none, 1).err, Errno::kFault);
  EXPECT_EQ(k.CpuWrite(p, ro, {1}), Errno::kFault);
  EXPECT_TRUE(k.CpuRead(p, ro, 1).ok());
  EXPECT_TRUE(k.CpuRead(p, wo, 1).ok()) << "x86: write implies read";
  EXPECT_EQ(k.CpuWrite(p, wo, {1}), Errno::kOk);
  EXPECT_REP_OK(k);
}

TEST(KernelTest, AFailingWriteKeepsTheEarlierPages) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, p, 1, kRW, kMapPrivate);
  EXPECT_EQ(k.CpuWrite(p, a + kPage - 1, {5, 6}), Errno::kFault);
  EXPECT_EQ(k.CpuRead(p, a + kPage - 1, 1).value, Fill(1, 5));
  EXPECT_REP_OK(k);
}

TEST(KernelTest, OutOfRamIsNoMemWithPartialEffect) {
  Kernel k(2);
  Pid p = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, p, 3, kRW, kMapPrivate);
  EXPECT_EQ(k.CpuWrite(p, a, Fill(3 * kPage, 4)), Errno::kNoMem);
  EXPECT_EQ(k.PagesInUse().size(), 2u);
  EXPECT_EQ(k.Ptes(p).size(), 2u);
  EXPECT_TRUE(k.CpuRead(p, a + 2 * kPage, 1).ok()) << "reads still map the zero page";
  EXPECT_REP_OK(k);
}

// --- Mprotect ---

TEST(KernelTest, MprotectGuardRungsAndHole) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, p, 2, kRW, kMapPrivate);
  EXPECT_EQ(k.Mprotect(p, a + 1, kPage, kProtRead), Errno::kInval);
  EXPECT_EQ(k.Mprotect(p, a, kPage, 4), Errno::kInval);
  EXPECT_EQ(k.Mprotect(p, a, 0, kProtRead), Errno::kOk);
  EXPECT_EQ(k.Mprotect(p, a, UINT64_MAX, kProtRead), Errno::kNoMem);
  EXPECT_EQ(k.Mprotect(p, UINT64_MAX - kPage + 1, kPage, kProtRead), Errno::kNoMem);
  EXPECT_EQ(k.Mprotect(p, a, 3 * kPage, kProtRead), Errno::kNoMem);
  EXPECT_EQ(k.Vmas(p).size(), 1u) << "a hole changes nothing";
  EXPECT_EQ(k.Vmas(p)[0].prot, kRW);
  EXPECT_REP_OK(k);
}

TEST(KernelTest, MprotectWriteBitsPrivateAndShared) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, p, 2, kRW, kMapPrivate);
  uint64_t s = MapOrDie(k, p, 1, kRW, kMapShared);
  ASSERT_EQ(k.CpuWrite(p, a, Fill(2 * kPage, 1)), Errno::kOk);
  ASSERT_EQ(k.CpuWrite(p, s, {1}), Errno::kOk);
  ASSERT_EQ(k.Mprotect(p, a + kPage, kPage, kProtRead), Errno::kOk);
  EXPECT_EQ(k.Vmas(p).size(), 3u);
  EXPECT_TRUE(PteAt(k, p, a)->write);
  EXPECT_FALSE(PteAt(k, p, a + kPage)->write);
  EXPECT_EQ(k.CpuWrite(p, a + kPage, {2}), Errno::kFault);
  ASSERT_EQ(k.Mprotect(p, a, 3 * kPage, kProtRead), Errno::kOk);
  EXPECT_FALSE(PteAt(k, p, s)->write);
  ASSERT_EQ(k.Mprotect(p, a, 3 * kPage, kRW), Errno::kOk);
  EXPECT_TRUE(PteAt(k, p, s)->write) << "shared PTEs gain write";
  EXPECT_FALSE(PteAt(k, p, a)->write) << "private PTEs wait for the fault";
  uint64_t pfn = PteAt(k, p, a)->pfn;
  ASSERT_EQ(k.CpuWrite(p, a, {2}), Errno::kOk);
  EXPECT_EQ(PteAt(k, p, a)->pfn, pfn) << "sole mapper: reused, not copied";
  EXPECT_REP_OK(k);
}

// --- MadviseDontneed ---

TEST(KernelTest, MadviseGuardRungsAndHole) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, p, 2, kRW, kMapPrivate);
  EXPECT_EQ(k.MadviseDontneed(p, a + 1, kPage), Errno::kInval);
  EXPECT_EQ(k.MadviseDontneed(p, a + 1, 0), Errno::kInval);
  EXPECT_EQ(k.MadviseDontneed(p, a, UINT64_MAX), Errno::kInval);
  EXPECT_EQ(k.MadviseDontneed(p, a, kTaskSize + 1), Errno::kInval);
  EXPECT_EQ(k.MadviseDontneed(p, UINT64_MAX - kPage + 1, kPage), Errno::kInval) << "wraps";
  EXPECT_EQ(k.MadviseDontneed(p, kTaskSize - kPage, 2 * kPage), Errno::kNoMem) << "a hole";
  EXPECT_EQ(k.MadviseDontneed(p, kTaskSize, kPage), Errno::kNoMem);
  EXPECT_EQ(k.MadviseDontneed(p, a, 0), Errno::kOk);
  ASSERT_EQ(k.CpuWrite(p, a, Fill(2 * kPage, 5)), Errno::kOk);
  // The mapped part is zapped even though the range runs into a hole.
  EXPECT_EQ(k.MadviseDontneed(p, a + kPage, 2 * kPage), Errno::kNoMem);
  EXPECT_EQ(k.Ptes(p).size(), 1u);
  EXPECT_EQ(k.CpuRead(p, a + kPage, 1).value, Fill(1, 0));
  EXPECT_EQ(k.CpuRead(p, a, 1).value, Fill(1, 5));
  EXPECT_EQ(k.Vmas(p).size(), 1u) << "madvise never splits";
  EXPECT_REP_OK(k);
}

// --- Introspection and metadata ---

TEST(KernelTest, MetadataBytesPerMappedPageBeatsStructPage) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  EXPECT_EQ(k.MetadataBytesPerMappedPage(), 0.0);
  uint64_t a = MapOrDie(k, p, 1024, kRW, kMapPrivate);
  for (uint64_t off = 0; off < 1024 * kPage; off += kMaxAccess) {
    ASSERT_EQ(k.CpuWrite(p, a + off, Fill(kMaxAccess, 1)), Errno::kOk);
  }
  double bytes = k.MetadataBytesPerMappedPage();
  EXPECT_GT(bytes, 16.0);
  EXPECT_LT(bytes, 64.0);
  ASSERT_EQ(k.Munmap(p, a, 1024 * kPage), Errno::kOk);
  EXPECT_EQ(k.MetadataBytesPerMappedPage(), 0.0);
  EXPECT_REP_OK(k);
}

}  // namespace
}  // namespace hmm::impl
