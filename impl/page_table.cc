// File: impl/page_table.cc

#include "impl/page_table.h"

#include <algorithm>
#include <cassert>
#include <new>

namespace hmm::impl {

PageTable::PageTable() : pgd_(AllocTable()), nr_tables_(1) {}

PageTable::~PageTable() {
  // Every table lives in a slab: freeing the slabs frees them all.
  for (TablePage* slab : slabs_) ::operator delete(slab, std::align_val_t(kTableBytes));
}

TablePage* PageTable::AllocTable() {
  TablePage* t;
  if (!free_.empty()) {
    t = free_.back();
    free_.pop_back();
  } else {
    if (slab_used_ == slab_size_) {
      // The next slab, twice the last (kMinSlabTables .. kMaxSlabTables tables).
      slab_size_ = slabs_.empty() ? kMinSlabTables : std::min(2 * slab_size_, kMaxSlabTables);
      void* raw = ::operator new(slab_size_ * sizeof(TablePage), std::align_val_t(kTableBytes));
      slabs_.push_back(static_cast<TablePage*>(raw));
      slab_used_ = 0;
    }
    t = slabs_.back() + slab_used_++;
  }
  return new (t) TablePage();  // zeroed, as __GFP_ZERO gives it
}

void PageTable::FreeTable(TablePage* t) { free_.push_back(t); }

pte_t PageTable::Get(uint64_t vpn) const {
  const TablePage* t = pgd_;
  for (unsigned level = kTableLevels - 1; level > 0; --level) {
    pte_t e = t->e[(vpn >> Shift(level)) % kPtrsPerTable];
    if (e == 0) return 0;
    t = Child(e);
  }
  return t->e[vpn % kPtrsPerTable];
}

pte_t* PageTable::Lookup(uint64_t vpn) {
  TablePage* t = pgd_;
  for (unsigned level = kTableLevels - 1; level > 0; --level) {
    pte_t e = t->e[(vpn >> Shift(level)) % kPtrsPerTable];
    if (e == 0) return nullptr;
    t = Child(e);
  }
  return &t->e[vpn % kPtrsPerTable];
}

pte_t* PageTable::WalkAlloc(uint64_t vpn) {
  TablePage* t = pgd_;
  for (unsigned level = kTableLevels - 1; level > 0; --level) {
    pte_t& e = t->e[(vpn >> Shift(level)) % kPtrsPerTable];
    if (e == 0) {
      // Mirrors: mm/memory.c __pmd_alloc() / __pte_alloc() then pmd_populate().
      TablePage* table = AllocTable();
      ++nr_tables_;
      e = static_cast<pte_t>(reinterpret_cast<uintptr_t>(table)) | kTableBits;
    }
    t = Child(e);
  }
  return &t->e[vpn % kPtrsPerTable];
}

void PageTable::FreeEmptyTables(uint64_t start, uint64_t end) {
  if (start < end) FreeEmpty(pgd_, kTableLevels - 1, 0, start, end);
}

// Returns true when t holds no entry after its children in range were freed.
bool PageTable::FreeEmpty(TablePage* t, unsigned level, uint64_t base, uint64_t start,
                          uint64_t end) {
  uint64_t step = uint64_t{1} << Shift(level);
  if (level > 0) {
    unsigned first = start > base ? static_cast<unsigned>((start - base) >> Shift(level)) : 0;
    for (unsigned i = first; i < kPtrsPerTable && base + i * step < end; ++i) {
      pte_t& e = t->e[i];
      if (e == 0) continue;
      if (FreeEmpty(Child(e), level - 1, base + i * step, start, end)) {
        FreeTable(Child(e));
        --nr_tables_;
        e = 0;
      }
    }
  }
  for (pte_t e : t->e) {
    if (e != 0) return false;
  }
  return true;
}

void PageTable::CheckWellFormed(const std::string& who, std::vector<std::string>* out) const {
  uint64_t reachable = CheckTable(pgd_, kTableLevels - 1, who, out);
  if (reachable != nr_tables_) {
    out->push_back("InvPageTableCount: " + who + " reachable=" + std::to_string(reachable) +
                   " nr_tables=" + std::to_string(nr_tables_));
  }
}

// Returns the number of table pages reachable from t, t included.
uint64_t PageTable::CheckTable(const TablePage* t, unsigned level, const std::string& who,
                               std::vector<std::string>* out) const {
  uint64_t count = 1;
  if (level == 0) return count;
  for (unsigned i = 0; i < kPtrsPerTable; ++i) {
    pte_t e = t->e[i];
    if (e == 0) continue;
    // Is the entry a table address with exactly the _PAGE_TABLE bits?
    if ((e & ~kTableAddrMask) != kTableBits || (e & kTableAddrMask) == 0) {
      out->push_back("InvPageTableEntryWellFormed: " + who + " level " + std::to_string(level) +
                     " index " + std::to_string(i) + " entry=" + std::to_string(e));
      continue;
    }
    count += CheckTable(Child(e), level - 1, who, out);
  }
  return count;
}

}  // namespace hmm::impl
