// File: impl/mremap_test.cc
//
// Mremap: the guard rungs, shrink, grow in place, move, fixed move of a
// shared range.

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

// --- Mremap ---

TEST(MremapTest, MremapGuardRungs) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, p, 2, kRW, kMapPrivate);
  EXPECT_EQ(k.Mremap(p, a, kPage, kPage, 4, 0).err, Errno::kInval);
  EXPECT_EQ(k.Mremap(p, a, kPage, kPage, kMremapFixed, 0x100000).err, Errno::kInval);
  EXPECT_EQ(k.Mremap(p, a + 1, kPage, kPage, 0, 0).err, Errno::kInval);
  EXPECT_EQ(k.Mremap(p, a, kPage, 0, 0, 0).err, Errno::kInval);
  EXPECT_EQ(k.Mremap(p, a, kPage, UINT64_MAX, 0, 0).err, Errno::kInval);
  EXPECT_EQ(k.Mremap(p, a, 0, kPage, 0, 0).err, Errno::kInval);
  const uint32_t mf = kMremapMaymove | kMremapFixed;
  EXPECT_EQ(k.Mremap(p, a, kPage, kPage, mf, 0x100001).err, Errno::kInval);
  EXPECT_EQ(k.Mremap(p, a, kPage, 2 * kPage, mf, kTaskSize - kPage).err, Errno::kInval);
  EXPECT_EQ(k.Mremap(p, a, 2 * kPage, kPage, mf, a + kPage).err, Errno::kInval);
  EXPECT_EQ(k.Mremap(p, a, kPage, 2 * kPage, mf, a - kPage).err, Errno::kInval);
  // Overlap is decided on mathematical integers: an old range running past
  // 2^64 still overlaps a new range above old_addr (then kFault would follow).
  EXPECT_EQ(k.Mremap(p, a, UINT64_MAX - kPage, kPage, mf, a + 2 * kPage).err, Errno::kInval);
  EXPECT_EQ(k.Mremap(p, 0x100000, kPage, kPage, 0, 0).err, Errno::kFault);
  EXPECT_EQ(k.Mremap(p, a, 3 * kPage, kPage, 0, 0).err, Errno::kFault);
  EXPECT_REP_OK(k);
}

TEST(MremapTest, MremapShrinkGrowInPlaceAndMove) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, p, 4, kRW, kMapPrivate);
  ASSERT_EQ(k.CpuWrite(p, a, Fill(4 * kPage, 2)), Errno::kOk);
  EXPECT_EQ(k.Mremap(p, a, 4 * kPage, 2 * kPage, 0, 0).value, a);
  EXPECT_EQ(k.PagesInUse().size(), 2u);
  EXPECT_EQ(k.Mremap(p, a, 2 * kPage, 3 * kPage, 0, 0).value, a) << "grows in place";
  EXPECT_EQ(k.Vmas(p)[0].end, a + 3 * kPage);
  uint64_t blocker = MapOrDie(k, p, 1, kRW, kMapPrivate);
  EXPECT_EQ(blocker, a + 3 * kPage);
  EXPECT_EQ(k.Mremap(p, a, 3 * kPage, 4 * kPage, 0, 0).err, Errno::kNoMem);
  uint64_t pfn = PteAt(k, p, a + kPage)->pfn;
  Result<uint64_t> moved = k.Mremap(p, a, 3 * kPage, 4 * kPage, kMremapMaymove, 0);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved.value, a + 4 * kPage) << "first fit above the blocker";
  EXPECT_EQ(PteAt(k, p, moved.value + kPage)->pfn, pfn) << "same page, same offset";
  EXPECT_TRUE(PteAt(k, p, moved.value + kPage)->write);
  EXPECT_FALSE(PteAt(k, p, moved.value + 2 * kPage)) << "no PTE where none was";
  EXPECT_EQ(k.CpuRead(p, moved.value, 2).value, Fill(2, 2));
  EXPECT_EQ(k.CpuRead(p, a, 1).err, Errno::kFault);
  EXPECT_REP_OK(k);
}

TEST(MremapTest, MremapFixedMovesASharedRangeWithItsPgoff) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t s = MapOrDie(k, p, 4, kRW, kMapShared);
  ASSERT_EQ(k.CpuWrite(p, s + 2 * kPage, {7}), Errno::kOk);
  uint64_t dst = 0x7000000;
  const uint32_t mf = kMremapMaymove | kMremapFixed;
  EXPECT_EQ(k.Mremap(p, s + 2 * kPage, 2 * kPage, kPage, mf, dst).value, dst);
  std::vector<VmaInfo> vmas = k.Vmas(p);
  ASSERT_EQ(vmas.size(), 2u);
  EXPECT_EQ(vmas[0].start, dst);
  EXPECT_EQ(vmas[0].pgoff, 2u);
  EXPECT_EQ(vmas[0].object, vmas[1].object);
  EXPECT_EQ(vmas[1].end, s + 2 * kPage) << "the old range and its shrunk tail are gone";
  EXPECT_EQ(k.CpuRead(p, dst, 1).value, Fill(1, 7));
  EXPECT_REP_OK(k);
}

TEST(MremapTest, SameLengthInPlaceChangesNothing) {
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = MapOrDie(k, p, 2, kRW, kMapPrivate);
  // docs/model.md: "the tail ... is unmapped (nothing when equal)"; the
  // kernel returns old_addr without touching the VMA, so no split either.
  EXPECT_EQ(k.Mremap(p, a, 1, kPage, kMremapMaymove, 0).value, a);
  std::vector<VmaInfo> vmas = k.Vmas(p);
  ASSERT_EQ(vmas.size(), 1u);
  EXPECT_EQ(vmas[0].end, a + 2 * kPage);
  EXPECT_REP_OK(k);
}

}  // namespace
}  // namespace hmm::impl
