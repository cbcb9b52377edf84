// File: impl/page_test.cc

#include "impl/page.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace hmm::impl {
namespace {

TEST(PageTest, AllocHandsOutAscendingZeroedPagesThenNoMem) {
  PageArray pages(3);
  for (uint64_t want = 0; want < 3; ++want) {
    std::optional<uint64_t> pfn = pages.AllocPage(kPgAnon);
    ASSERT_TRUE(pfn.has_value());
    EXPECT_EQ(*pfn, want);
    EXPECT_EQ(pages.page(*pfn).refcount.load(), 1u);
    EXPECT_EQ(pages.page(*pfn).flags.load(), kPgAnon);
    pages.data(*pfn)[17] = 0xAB;
  }
  EXPECT_FALSE(pages.AllocPage(kPgAnon).has_value());
  EXPECT_EQ(pages.nr_free(), 0u);
  pages.PutPage(1);
  std::optional<uint64_t> again = pages.AllocPage(kPgShmem);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, 1u);
  EXPECT_EQ(pages.data(1)[17], 0) << "a reused page must come back zeroed";
}

TEST(PageTest, PutPageFreesOnLastReference) {
  PageArray pages(2);
  uint64_t pfn = *pages.AllocPage(kPgAnon);
  pages.GetPage(pfn);
  pages.PutPage(pfn);
  EXPECT_EQ(pages.InUse(), std::vector<uint64_t>{pfn});
  pages.PutPage(pfn);
  EXPECT_TRUE(pages.InUse().empty());
  EXPECT_EQ(pages.nr_free(), 2u);
  std::vector<std::string> problems;
  pages.CheckFreeList(&problems);
  EXPECT_TRUE(problems.empty()) << problems.front();
}

TEST(PageTest, ZeroPageIsNeverCounted) {
  PageArray pages(1);
  uint64_t zero = pages.zero_pfn();
  EXPECT_EQ(zero, 1u);
  EXPECT_TRUE(pages.IsZero(zero));
  pages.GetPage(zero);
  pages.PutPage(zero);
  EXPECT_EQ(pages.page(zero).refcount.load(), 0u);
  EXPECT_EQ(pages.page(zero).flags.load(), kPgReserved);
  EXPECT_TRUE(pages.InUse().empty());
}

TEST(PageTest, TrylockFailsWhileLocked) {
  PageArray pages(1);
  uint64_t pfn = *pages.AllocPage(kPgAnon);
  EXPECT_TRUE(pages.TrylockPage(pfn));
  EXPECT_FALSE(pages.TrylockPage(pfn));
  pages.UnlockPage(pfn);
  pages.LockPage(pfn);
  EXPECT_FALSE(pages.TrylockPage(pfn));
  pages.UnlockPage(pfn);
  EXPECT_EQ(pages.page(pfn).flags.load(), kPgAnon) << "unlock must keep the other flags";
}

TEST(PageTest, PageLockSerializesDataAccess) {
  PageArray pages(1);
  uint64_t pfn = *pages.AllocPage(kPgAnon);
  auto* counter = reinterpret_cast<uint64_t*>(pages.data(pfn));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        pages.LockPage(pfn);
        ++*counter;
        pages.UnlockPage(pfn);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(*counter, 4000u);
}

TEST(PageTest, ConcurrentGetPutKeepsCount) {
  PageArray pages(1);
  uint64_t pfn = *pages.AllocPage(kPgAnon);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        pages.GetPage(pfn);
        pages.PutPage(pfn);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(pages.page(pfn).refcount.load(), 1u);
  pages.PutPage(pfn);
  EXPECT_EQ(pages.nr_free(), 1u);
}

}  // namespace
}  // namespace hmm::impl
