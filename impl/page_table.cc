// File: impl/page_table.cc

#include "impl/page_table.h"

#include <cassert>

namespace hmm::impl {

PageTable::PageTable() : pgd_(new TablePage), nr_tables_(1) {}

PageTable::~PageTable() { FreeAll(pgd_, kTableLevels - 1); }

void PageTable::FreeAll(TablePage* t, unsigned level) {
  if (level > 0) {
    for (pte_t e : t->e) {
      if (e != 0) FreeAll(Child(e), level - 1);
    }
  }
  delete t;
}

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
      auto* table = new TablePage;
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
        delete Child(e);
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
