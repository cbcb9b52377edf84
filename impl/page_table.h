// File: impl/page_table.h
//
// A process's 4-level radix page table, in the shape of x86-64's
// (arch/x86/include/asm/pgtable_64_types.h): PGD, PUD, PMD and PTE tables of
// 512 packed 64-bit entries (9 bits of the vpn per level, 36 bits in all, so
// the walk covers the whole 48-bit user address space). Leaf entries use the
// encoding of impl/pte.h; a non-leaf entry holds the next table's address
// with the bits of _PAGE_TABLE (present, write, user, accessed), as
// pmd_populate() writes it.
//
// Table pages come from the C++ heap, not from the RAM of impl/page.h:
// docs/model.md counts only data pages against ram_pages. They are allocated
// on demand by WalkAlloc (mm/memory.c __pte_alloc()) and freed by
// FreeEmptyTables (mm/memory.c free_pgtables()) once they hold no entry,
// from and to the PageTable's own slabs (AllocTable), which go with it.
//
// Thread safety
//   Not synchronized. The owning process's page-table lock (ptl, see
//   impl/kernel_state.h) guards every call, reads included.
//
// Invariants:
//   1. Every non-leaf entry is 0 or a 4 KiB-aligned table address | kTableBits.
//      Holds because only WalkAlloc writes non-leaf entries, and only that.
//   2. nr_tables() == number of table pages reachable from the PGD. WalkAlloc
//      counts each allocation, FreeEmptyTables each free.
//   3. The PGD is never freed before the PageTable is destroyed.

#ifndef HMMREF_IMPL_PAGE_TABLE_H_
#define HMMREF_IMPL_PAGE_TABLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "impl/pte.h"

namespace hmm::impl {

constexpr unsigned kPtrsPerTable = 512;  // PTRS_PER_PTE
constexpr unsigned kTableIndexBits = 9;
constexpr unsigned kTableLevels = 4;  // PTE = level 0, PMD 1, PUD 2, PGD 3
constexpr uint64_t kTableBytes = kPtrsPerTable * sizeof(pte_t);
// _PAGE_TABLE (arch/x86/include/asm/pgtable_types.h).
constexpr pte_t kTableBits = kPtePresent | kPteWrite | kPteUser | kPteAccessed;
constexpr pte_t kTableAddrMask = ~pte_t{kTableBytes - 1};

struct alignas(kTableBytes) TablePage {
  pte_t e[kPtrsPerTable] = {};
};
static_assert(sizeof(TablePage) == kTableBytes, "a table is one 4 KiB page");

class PageTable {
 public:
  PageTable();  // mm/pgtable.c pgd_alloc()
  ~PageTable();  // frees every table page; leaves must already be zapped
  PageTable(const PageTable&) = delete;
  PageTable& operator=(const PageTable&) = delete;

  // The leaf entry for vpn, or 0 when no PTE table covers it.
  pte_t Get(uint64_t vpn) const;
  // Mirrors: mm/memory.c __pte_alloc() + pte_offset_map(): the leaf slot for
  // vpn, allocating the missing tables on the way. REQUIRES: vpn < kMaxVpn.
  pte_t* WalkAlloc(uint64_t vpn);
  // The leaf slot for vpn, or nullptr when no PTE table covers it.
  pte_t* Lookup(uint64_t vpn);

  // Calls f(vpn, pte_t& entry) for every non-zero leaf with start <= vpn < end,
  // in ascending vpn, skipping absent tables (mm/memory.c zap_p4d_range() ...).
  // f may change the entry; it must not add or free tables.
  template <typename F>
  void ForEachLeaf(uint64_t start, uint64_t end, F&& f) {
    Walk(pgd_, kTableLevels - 1, 0, start, end, f);
  }
  template <typename F>
  void ForEachLeaf(uint64_t start, uint64_t end, F&& f) const {
    auto g = [&f](uint64_t vpn, pte_t& e) { f(vpn, static_cast<const pte_t&>(e)); };
    Walk(pgd_, kTableLevels - 1, 0, start, end, g);
  }

  // Calls f(vpn, const pte_t* leaves, uint64_t n) for consecutive runs that
  // cover [start, end) exactly, in ascending vpn: `leaves` points at the n
  // leaf slots of vpn .. vpn + n - 1 inside one PTE table, or is nullptr
  // where no PTE table covers the run (every entry none). One call per leaf
  // table, so a caller scans leaves as plain arrays (mm/pagewalk.c
  // walk_pmd_range() with its pte_hole callback).
  template <typename F>
  void ForEachLeafRun(uint64_t start, uint64_t end, F&& f) const {
    if (start < end) WalkRuns(pgd_, kTableLevels - 1, 0, start, end, f);
  }

  // Mirrors: mm/memory.c free_pgtables(): frees every table below the PGD that
  // covers part of [start, end) and holds no entry.
  void FreeEmptyTables(uint64_t start, uint64_t end);

  uint64_t nr_tables() const { return nr_tables_; }
  // Checks invariants 1 and 2; one line per violation, prefixed by `who`.
  void CheckWellFormed(const std::string& who, std::vector<std::string>* out) const;

 private:
  static unsigned Shift(unsigned level) { return level * kTableIndexBits; }
  static uint64_t Span(unsigned level) { return uint64_t{1} << Shift(level + 1); }
  static TablePage* Child(pte_t entry) {
    return reinterpret_cast<TablePage*>(static_cast<uintptr_t>(entry & kTableAddrMask));
  }

  // Visits the entries of table t (at `level`, mapping vpns from `base`) that
  // intersect [start, end); descends into present non-leaf entries.
  template <typename F>
  static void Walk(TablePage* t, unsigned level, uint64_t base, uint64_t start, uint64_t end,
                   F& f) {
    uint64_t step = uint64_t{1} << Shift(level);
    unsigned first = start > base ? static_cast<unsigned>((start - base) >> Shift(level)) : 0;
    for (unsigned i = first; i < kPtrsPerTable; ++i) {
      uint64_t lo = base + i * step;
      if (lo >= end) return;
      pte_t& e = t->e[i];
      if (e == 0) continue;
      if (level == 0) {
        f(lo, e);
      } else {
        Walk(Child(e), level - 1, lo, start, end, f);
      }
    }
  }
  // ForEachLeafRun's descent: table t (at `level` >= 1, mapping vpns from
  // `base`), entries intersecting [start, end).
  template <typename F>
  static void WalkRuns(const TablePage* t, unsigned level, uint64_t base, uint64_t start,
                       uint64_t end, F& f) {
    uint64_t step = uint64_t{1} << Shift(level);
    unsigned first = start > base ? static_cast<unsigned>((start - base) >> Shift(level)) : 0;
    for (unsigned i = first; i < kPtrsPerTable; ++i) {
      uint64_t lo = base + i * step;
      if (lo >= end) return;
      uint64_t from = lo > start ? lo : start;
      uint64_t to = lo + step < end ? lo + step : end;
      pte_t e = t->e[i];
      if (e == 0) {
        f(from, static_cast<const pte_t*>(nullptr), to - from);
      } else if (level == 1) {
        f(from, static_cast<const pte_t*>(&Child(e)->e[from - lo]), to - from);
      } else {
        WalkRuns(Child(e), level - 1, lo, start, end, f);
      }
    }
  }
  bool FreeEmpty(TablePage* t, unsigned level, uint64_t base, uint64_t start, uint64_t end);
  uint64_t CheckTable(const TablePage* t, unsigned level, const std::string& who,
                      std::vector<std::string>* out) const;

  // Mirrors: mm/memory.c __pte_alloc() -> pte_alloc_one() (a zeroed page) and
  // pte_free(). Tables come from slabs of consecutive pages, so the tables of
  // a range populated in order lie in order in memory, as the kernel's table
  // pages sit in its huge-page direct map: a walk reads them as one stream.
  TablePage* AllocTable();
  void FreeTable(TablePage* t);

  static constexpr uint64_t kMinSlabTables = 4;
  static constexpr uint64_t kMaxSlabTables = 512;  // 2 MiB
  std::vector<TablePage*> slabs_;  // each slab_size_-ish tables; freed with the PageTable
  std::vector<TablePage*> free_;   // freed tables, reused first
  uint64_t slab_size_ = 0;         // tables in slabs_.back()
  uint64_t slab_used_ = 0;         // tables handed out of slabs_.back()

  TablePage* pgd_;
  uint64_t nr_tables_ = 0;
};

}  // namespace hmm::impl

#endif  // HMMREF_IMPL_PAGE_TABLE_H_
