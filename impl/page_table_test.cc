// File: impl/page_table_test.cc

#include "impl/page_table.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "model/types.h"

namespace hmm::impl {
namespace {

std::vector<std::pair<uint64_t, pte_t>> Leaves(const PageTable& pt, uint64_t start, uint64_t end) {
  std::vector<std::pair<uint64_t, pte_t>> out;
  pt.ForEachLeaf(start, end, [&](uint64_t vpn, pte_t e) { out.emplace_back(vpn, e); });
  return out;
}

void ExpectWellFormed(const PageTable& pt) {
  std::vector<std::string> problems;
  pt.CheckWellFormed("test", &problems);
  EXPECT_TRUE(problems.empty()) << problems.front();
}

TEST(PageTableTest, EmptyTableHasOnlyThePgd) {
  PageTable pt;
  EXPECT_EQ(pt.nr_tables(), 1u);
  EXPECT_EQ(pt.Get(12345), 0u);
  EXPECT_EQ(pt.Lookup(12345), nullptr);
  EXPECT_TRUE(Leaves(pt, 0, kMaxVpn).empty());
  ExpectWellFormed(pt);
}

TEST(PageTableTest, MapThenUnmapLeavesNone) {
  PageTable pt;
  pte_t pte = MakePresentPte(7, true, true, true, false);
  *pt.WalkAlloc(0x10000) = pte;
  EXPECT_EQ(pt.nr_tables(), 4u) << "PGD, PUD, PMD and one PTE table";
  EXPECT_EQ(pt.Get(0x10000), pte);
  EXPECT_EQ(PtePfn(pt.Get(0x10000)), 7u);
  ExpectWellFormed(pt);
  *pt.Lookup(0x10000) = 0;
  pt.FreeEmptyTables(0x10000, 0x10001);
  EXPECT_EQ(pt.nr_tables(), 1u);
  EXPECT_EQ(pt.Get(0x10000), 0u);
  ExpectWellFormed(pt);
}

TEST(PageTableTest, ForEachLeafVisitsRangeInOrderAcrossTables) {
  PageTable pt;
  // 511 and 512 straddle two PTE tables; 1 << 27 lies under another PGD slot.
  const std::vector<uint64_t> vpns = {3, 511, 512, 1000, uint64_t{1} << 27, kMaxVpn - 1};
  for (uint64_t vpn : vpns) {
    *pt.WalkAlloc(vpn) = MakePresentPte(vpn % 100, false, false, true, false);
  }
  std::vector<uint64_t> seen;
  for (const auto& [vpn, e] : Leaves(pt, 0, kMaxVpn)) seen.push_back(vpn);
  EXPECT_EQ(seen, vpns);
  seen.clear();
  for (const auto& [vpn, e] : Leaves(pt, 511, 1000)) seen.push_back(vpn);
  EXPECT_EQ(seen, (std::vector<uint64_t>{511, 512}));
  ExpectWellFormed(pt);
}

TEST(PageTableTest, ForEachLeafMayClearEntries) {
  PageTable pt;
  for (uint64_t vpn = 100; vpn < 700; ++vpn) {
    *pt.WalkAlloc(vpn) = MakePresentPte(1, false, false, true, false);
  }
  pt.ForEachLeaf(200, 600, [](uint64_t, pte_t& e) { e = 0; });
  EXPECT_EQ(Leaves(pt, 0, kMaxVpn).size(), 200u);
  pt.FreeEmptyTables(200, 600);
  EXPECT_EQ(pt.nr_tables(), 5u) << "both PTE tables still hold entries";
  pt.ForEachLeaf(0, kMaxVpn, [](uint64_t, pte_t& e) { e = 0; });
  pt.FreeEmptyTables(0, kMaxVpn);
  EXPECT_EQ(pt.nr_tables(), 1u);
  ExpectWellFormed(pt);
}

TEST(PageTableTest, FreeEmptyTablesKeepsTablesOutsideTheRange) {
  PageTable pt;
  *pt.WalkAlloc(5) = MakePresentPte(1, false, false, true, false);
  pt.WalkAlloc(uint64_t{1} << 10);  // an empty PTE table elsewhere
  EXPECT_EQ(pt.nr_tables(), 5u);
  pt.FreeEmptyTables(0, 512);
  EXPECT_EQ(pt.nr_tables(), 5u) << "the range's table holds vpn 5";
  pt.FreeEmptyTables(uint64_t{1} << 10, (uint64_t{1} << 10) + 1);
  EXPECT_EQ(pt.nr_tables(), 4u);
  ExpectWellFormed(pt);
}

// ForEachLeafRun covers the range exactly, one call per leaf table or hole.
TEST(PageTableTest, ForEachLeafRunCoversTheRangeInRuns) {
  PageTable pt;
  const std::vector<uint64_t> vpns = {3, 511, 512, 1000, uint64_t{1} << 27};
  for (uint64_t vpn : vpns) *pt.WalkAlloc(vpn) = MakePresentPte(vpn, false, false, true, false);
  struct Run {
    uint64_t vpn, n;
    bool table;
  };
  std::vector<Run> runs;
  std::vector<uint64_t> seen;
  const uint64_t start = 2, end = (uint64_t{1} << 27) + 10;
  pt.ForEachLeafRun(start, end, [&](uint64_t vpn, const pte_t* leaves, uint64_t n) {
    runs.push_back({vpn, n, leaves != nullptr});
    for (uint64_t i = 0; leaves != nullptr && i < n; ++i) {
      if (leaves[i] != 0) seen.push_back(vpn + i);
    }
  });
  EXPECT_EQ(seen, vpns);
  uint64_t at = start;
  for (const Run& r : runs) {
    EXPECT_EQ(r.vpn, at) << "no gap, no overlap";
    EXPECT_GT(r.n, 0u);
    if (r.table) {
      EXPECT_LE(r.vpn % 512 + r.n, 512u) << "a table run stays in its table";
    }
    at += r.n;
  }
  EXPECT_EQ(at, end);
  EXPECT_TRUE(runs[0].table && runs[0].vpn == 2 && runs[0].n == 510);
  EXPECT_TRUE(runs[1].table && runs[1].n == 512);
  EXPECT_FALSE(runs[2].table) << "a hole between the PMD's tables";
  // A hole is one run per empty entry of the tables on the way, whatever its
  // span: here the PMD's and the PUD's empty entries.
  EXPECT_EQ(runs.size(), 2u + 510u + 511u + 1u);
  EXPECT_EQ(runs.back().n, 10u);
}

// Freed tables are reused and every slab goes with the table.
TEST(PageTableTest, TablesAreReusedAfterFree) {
  PageTable pt;
  for (int round = 0; round < 3; ++round) {
    for (uint64_t vpn = 0; vpn < 64 * 512; vpn += 512) {
      *pt.WalkAlloc(vpn) = MakePresentPte(1, false, false, true, false);
    }
    EXPECT_EQ(pt.nr_tables(), 3u + 64u);
    pt.ForEachLeaf(0, kMaxVpn, [](uint64_t, pte_t& e) { e = 0; });
    pt.FreeEmptyTables(0, kMaxVpn);
    EXPECT_EQ(pt.nr_tables(), 1u);
    ExpectWellFormed(pt);
  }
}

}  // namespace
}  // namespace hmm::impl
