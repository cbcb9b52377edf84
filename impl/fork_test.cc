// File: impl/fork_test.cc
//
// Fork and COW, shared objects across processes, and pins (their life across
// munmap, madvise and exit, and fork's copy of pinned pages and its undo).

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

// --- Fork and COW ---

TEST(ForkTest, ForkSharesPrivatePagesCopyOnWrite) {
  Kernel k;
  Pid parent = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, parent, 2, kRW, kMapPrivate);
  ASSERT_EQ(k.CpuWrite(parent, a, Fill(2 * kPage, 1)), Errno::kOk);
  Pid child = k.Fork(parent).value;
  EXPECT_EQ(child, Pid(2));
  EXPECT_REP_OK(k);
  EXPECT_EQ(k.PagesInUse().size(), 2u);
  std::optional<PteInfo> pp = PteAt(k, parent, a), cp = PteAt(k, child, a);
  EXPECT_EQ(pp->pfn, cp->pfn);
  EXPECT_FALSE(pp->write);
  EXPECT_FALSE(cp->write);
  // The child's write copies; the parent keeps its bytes.
  ASSERT_EQ(k.CpuWrite(child, a, {2}), Errno::kOk);
  EXPECT_EQ(k.PagesInUse().size(), 3u);
  EXPECT_EQ(k.CpuRead(parent, a, 1).value, Fill(1, 1));
  EXPECT_EQ(k.CpuRead(child, a, 2).value, (std::vector<uint8_t>{2, 1}));
  EXPECT_REP_OK(k);
  // The parent is now the page's only mapper: its write reuses it.
  uint64_t before = PteAt(k, parent, a)->pfn;
  ASSERT_EQ(k.CpuWrite(parent, a, {3}), Errno::kOk);
  EXPECT_EQ(PteAt(k, parent, a)->pfn, before);
  EXPECT_TRUE(PteAt(k, parent, a)->write);
  EXPECT_EQ(k.PagesInUse().size(), 3u);
  EXPECT_REP_OK(k);
  ASSERT_EQ(k.Exit(child), Errno::kOk);
  EXPECT_EQ(k.PagesInUse().size(), 2u);
  EXPECT_REP_OK(k);
}

TEST(ForkTest, ForkCopiesPinnedPagesAndKeepsTheParentsPte) {
  Kernel k;
  Pid parent = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, parent, 2, kRW, kMapPrivate);
  ASSERT_EQ(k.CpuWrite(parent, a, Fill(2 * kPage, 6)), Errno::kOk);
  PinId pin = k.PinUserPages(parent, a, 1).value;
  Pid child = k.Fork(parent).value;
  EXPECT_REP_OK(k);
  std::optional<PteInfo> pp = PteAt(k, parent, a), cp = PteAt(k, child, a);
  EXPECT_NE(pp->pfn, cp->pfn);
  EXPECT_TRUE(pp->write);
  EXPECT_TRUE(cp->write);
  EXPECT_EQ(k.PageData(cp->pfn), Fill(kPage, 6));
  EXPECT_FALSE(PteAt(k, parent, a + kPage)->write) << "the unpinned page is COW-shared";
  ASSERT_EQ(k.UnpinUserPages(pin), Errno::kOk);
  EXPECT_REP_OK(k);
}

TEST(ForkTest, ForkOutOfRamLeavesNoChildAndAnUnchangedParent) {
  Kernel k(3);
  Pid parent = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, parent, 3, kRW, kMapPrivate);
  ASSERT_EQ(k.CpuWrite(parent, a, Fill(2 * kPage, 8)), Errno::kOk);
  PinId pin = k.PinUserPages(parent, a, 2).value;
  ASSERT_EQ(k.CpuWrite(parent, a + 2 * kPage, {1}), Errno::kOk);  // RAM now full
  std::vector<PteInfo> ptes = k.Ptes(parent);
  std::vector<uint64_t> in_use = k.PagesInUse();
  EXPECT_EQ(k.Fork(parent).err, Errno::kNoMem);
  EXPECT_EQ(k.Pids(), std::vector<Pid>{parent});
  std::vector<PteInfo> after = k.Ptes(parent);
  ASSERT_EQ(after.size(), ptes.size());
  for (size_t i = 0; i < ptes.size(); ++i) {
    EXPECT_EQ(after[i].pfn, ptes[i].pfn);
    EXPECT_EQ(after[i].write, ptes[i].write) << "write bits restored at vpn " << ptes[i].vpn;
  }
  EXPECT_EQ(k.PagesInUse(), in_use);
  EXPECT_REP_OK(k);
  // The failed fork used no pid; with RAM back it succeeds.
  ASSERT_EQ(k.UnpinUserPages(pin), Errno::kOk);
  EXPECT_EQ(k.Fork(parent).value, Pid(2));
  EXPECT_REP_OK(k);
}

TEST(ForkTest, ForkDoesNotCopySharedPtes) {
  Kernel k;
  Pid parent = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, parent, 1, kRW, kMapShared);
  ASSERT_EQ(k.CpuWrite(parent, a, {4}), Errno::kOk);
  Pid child = k.Fork(parent).value;
  EXPECT_TRUE(k.Ptes(child).empty());
  EXPECT_TRUE(PteAt(k, parent, a)->write);
  EXPECT_EQ(k.Vmas(child)[0].object, k.Vmas(parent)[0].object);
  EXPECT_EQ(k.CpuRead(child, a, 1).value, Fill(1, 4));
  ASSERT_EQ(k.CpuWrite(child, a, {5}), Errno::kOk);
  EXPECT_EQ(k.CpuRead(parent, a, 1).value, Fill(1, 5));
  EXPECT_EQ(PteAt(k, child, a)->pfn, PteAt(k, parent, a)->pfn);
  EXPECT_EQ(k.PagesInUse().size(), 1u);
  EXPECT_REP_OK(k);
}

// --- Shared objects ---

TEST(ForkTest, SharedObjectLivesWhileAVmaMapsIt) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, p, 4, kProtRead, kMapShared);
  EXPECT_EQ(k.CpuRead(p, a + 2 * kPage, 1).value, Fill(1, 0));
  std::optional<PteInfo> pte = PteAt(k, p, a + 2 * kPage);
  EXPECT_FALSE(pte->zero) << "shared reads map the object's page";
  EXPECT_FALSE(pte->write);
  ASSERT_EQ(k.Objects().size(), 1u);
  uint64_t obj = k.Objects()[0];
  EXPECT_EQ(k.ObjectPages(obj), (std::vector<std::pair<uint64_t, uint64_t>>{{2, pte->pfn}}));
  // Splitting keeps one object with advancing pgoffs.
  ASSERT_EQ(k.Munmap(p, a + kPage, kPage), Errno::kOk);
  std::vector<VmaInfo> vmas = k.Vmas(p);
  ASSERT_EQ(vmas.size(), 2u);
  EXPECT_EQ(vmas[1].object, obj);
  EXPECT_EQ(vmas[1].pgoff, 2u);
  EXPECT_EQ(k.PagesInUse().size(), 1u) << "the object still holds its page";
  ASSERT_EQ(k.Munmap(p, a, 4 * kPage), Errno::kOk);
  EXPECT_TRUE(k.Objects().empty());
  EXPECT_TRUE(k.PagesInUse().empty());
  EXPECT_REP_OK(k);
}

// --- Pins ---

TEST(ForkTest, PinGuardRungs) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t ro = MapOrDie(k, p, 1, kProtRead, kMapPrivate);
  uint64_t rw = MapOrDie(k, p, 2, kRW, kMapPrivate);
  EXPECT_EQ(k.PinUserPages(p, rw + 1, 1).err, Errno::kInval);
  EXPECT_EQ(k.PinUserPages(p, rw, 0).err, Errno::kInval);
  EXPECT_EQ(k.PinUserPages(p, rw, kMaxPinPages + 1).err, Errno::kInval);
  EXPECT_EQ(k.PinUserPages(p, kTaskSize - kPage, 2).err, Errno::kFault);
  EXPECT_EQ(k.PinUserPages(p, ro, 1).err, Errno::kFault);
  // A pin running off the mapping drops its pins but keeps its faults.
  EXPECT_EQ(k.PinUserPages(p, rw, 3).err, Errno::kFault);
  EXPECT_EQ(k.Ptes(p).size(), 2u);
  EXPECT_TRUE(k.Pins().empty());
  EXPECT_REP_OK(k);
  EXPECT_EQ(k.PinUserPages(p, rw, 2).value, PinId(1));
  EXPECT_EQ(k.UnpinUserPages(PinId(1)), Errno::kOk);
  EXPECT_EQ(k.UnpinUserPages(PinId(1)), Errno::kNoEnt);
  EXPECT_REP_OK(k);
}

TEST(ForkTest, PinOutlivesMunmapMadviseAndExit) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, p, 2, kRW, kMapPrivate);
  ASSERT_EQ(k.CpuWrite(p, a, Fill(2 * kPage, 3)), Errno::kOk);
  PinId pin = k.PinUserPages(p, a, 2).value;
  std::vector<std::pair<PinId, std::vector<uint64_t>>> pins = k.Pins();
  ASSERT_EQ(pins.size(), 1u);
  uint64_t pfn0 = pins[0].second[0];
  ASSERT_EQ(k.Munmap(p, a, kPage), Errno::kOk);
  ASSERT_EQ(k.MadviseDontneed(p, a + kPage, kPage), Errno::kOk);
  EXPECT_EQ(k.PagesInUse().size(), 2u);
  EXPECT_EQ(k.PageData(pfn0), Fill(kPage, 3));
  EXPECT_REP_OK(k);
  ASSERT_EQ(k.Exit(p), Errno::kOk);
  EXPECT_EQ(k.PagesInUse().size(), 2u);
  ASSERT_EQ(k.UnpinUserPages(pin), Errno::kOk);
  EXPECT_TRUE(k.PagesInUse().empty());
  EXPECT_REP_OK(k);
}

TEST(ForkTest, PinBreaksCowAndPinnedSharedPageOutlivesItsObject) {
  Kernel k;
  Pid parent = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, parent, 1, kRW, kMapPrivate);
  uint64_t s = MapOrDie(k, parent, 1, kRW, kMapShared);
  ASSERT_EQ(k.CpuWrite(parent, a, {1}), Errno::kOk);
  Pid child = k.Fork(parent).value;
  PinId pin = k.PinUserPages(child, a, 1).value;
  EXPECT_NE(PteAt(k, child, a)->pfn, PteAt(k, parent, a)->pfn);
  PinId spin = k.PinUserPages(parent, s, 1).value;
  ASSERT_EQ(k.Exit(child), Errno::kOk);
  ASSERT_EQ(k.Exit(parent), Errno::kOk);
  EXPECT_TRUE(k.Objects().empty());
  EXPECT_EQ(k.PagesInUse().size(), 2u);
  EXPECT_REP_OK(k);
  ASSERT_EQ(k.UnpinUserPages(pin), Errno::kOk);
  ASSERT_EQ(k.UnpinUserPages(spin), Errno::kOk);
  EXPECT_TRUE(k.PagesInUse().empty());
  EXPECT_REP_OK(k);
}

}  // namespace
}  // namespace hmm::impl
