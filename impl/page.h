// File: impl/page.h
//
// The struct-page array of system RAM (include/linux/mm_types.h struct page)
// and its page allocator (mm/page_alloc.c), reduced to what hmmref needs: per
// page an atomic refcount, an atomic mapcount, a flags word whose bit 0 is the
// page lock (include/linux/pagemap.h lock_page()), and a free-list link; the
// 4 KiB of data live in one separate array, as the kernel's direct map does.
//
// pfns 0 .. ram_pages-1 are RAM; pfn ram_pages is the shared zero page
// (mm/memory.c ZERO_PAGE, include/linux/pgtable.h my_zero_pfn()). Like the
// kernel's, the zero page is never refcounted: GetPage/PutPage ignore it and
// its refcount and mapcount stay 0 (vm_normal_page() returns NULL for it).
//
// Counting, kernel-like but without the kernel's biases:
//   refcount = PTEs mapping the page + pins + 1 if a shmem object holds it
//              (+ short-lived references a fault hands to its caller);
//   mapcount = PTEs mapping the page (0-based, where the kernel's _mapcount
//              starts at -1).
// A page is freed when its refcount reaches 0.
//
// Thread safety
//   refcount, mapcount and flags are atomics: any thread may change them
//   without a lock. The page lock (kPgLocked in flags) orders accesses to the
//   page's data: every reader or writer of data(pfn) holds it, except the
//   allocator, which owns a page between AllocPage and its publication. A
//   migration holds it from collect to finalize (impl/migrate.h), over its
//   whole copy; kernel_state.h places it in the lock order (2p).
//   The free list and nr_free are guarded by zone_lock_, the innermost lock
//   of impl/ (nothing is acquired while holding it).
//
// Invariants:
//   1. A page is on the free list iff kPgBuddy is set; then refcount == 0 and
//      mapcount == 0. Holds because FreePage sets both under zone_lock_ and
//      AllocPage clears kPgBuddy before it hands the page out.
//   2. nr_free == length of the free list <= ram_pages. Both change together
//      under zone_lock_.
//   3. The zero page is never on the free list and its data stays zero
//      (nothing writes it: a write fault on it copies; seeded defect aside).

#ifndef HMMREF_IMPL_PAGE_H_
#define HMMREF_IMPL_PAGE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace hmm::impl {

// Page flags (include/linux/page-flags.h).
enum PageFlag : uint32_t {
  kPgLocked = 1u << 0,    // PG_locked: the page lock
  kPgAnon = 1u << 1,      // PageAnon(): a private (anonymous) page
  kPgShmem = 1u << 2,     // PG_swapbacked of a shmem page: a shared object's page
  kPgBuddy = 1u << 3,     // PageBuddy(): on the free list
  kPgReserved = 1u << 4,  // PG_reserved: the zero page
};

// 16 bytes per page, data excluded (the kernel's struct page is 64).
struct Page {
  std::atomic<uint32_t> refcount{0};  // _refcount
  std::atomic<uint32_t> mapcount{0};  // _mapcount + 1
  std::atomic<uint32_t> flags{0};     // PageFlag bits
  uint32_t next_free = 0;             // buddy list link; guarded by zone_lock_
};
static_assert(sizeof(Page) == 16, "struct page grew");

class PageArray {
 public:
  explicit PageArray(uint64_t ram_pages);
  PageArray(const PageArray&) = delete;
  PageArray& operator=(const PageArray&) = delete;

  uint64_t ram_pages() const { return ram_pages_; }
  uint64_t zero_pfn() const { return ram_pages_; }
  bool IsZero(uint64_t pfn) const { return pfn == ram_pages_; }
  bool Valid(uint64_t pfn) const { return pfn <= ram_pages_; }

  // REQUIRES: Valid(pfn).
  Page& page(uint64_t pfn) { return pages_[pfn]; }
  const Page& page(uint64_t pfn) const { return pages_[pfn]; }
  // REQUIRES: Valid(pfn); the caller holds the page lock or owns the page.
  uint8_t* data(uint64_t pfn) { return data_.get() + pfn * kBytesPerPage; }
  const uint8_t* data(uint64_t pfn) const { return data_.get() + pfn * kBytesPerPage; }

  // Mirrors: mm/page_alloc.c alloc_pages(GFP_HIGHUSER | __GFP_ZERO).
  // Returns a zero-filled page with refcount 1 (the caller's reference),
  // mapcount 0 and flags `kind` (kPgAnon or kPgShmem); nullopt when RAM is
  // exhausted (the caller returns kNoMem). Without `zero` (GFP_HIGHUSER: a
  // migration destination the driver fills whole) the bytes are left as
  // they are.
  std::optional<uint64_t> AllocPage(uint32_t kind, bool zero = true);

  // Mirrors: include/linux/mm.h get_page(), put_page(). No-ops on the zero page.
  // PutPage frees the page (mm/page_alloc.c free_unref_page()) when the last
  // reference goes. REQUIRES: the caller owns the reference it drops.
  void GetPage(uint64_t pfn);
  void PutPage(uint64_t pfn);

  // Mirrors: include/linux/pagemap.h lock_page(), trylock_page(), unlock_page().
  // LockPage waits only with no lock held but mmap_locks (kernel_state.h 2p).
  void LockPage(uint64_t pfn);
  bool TrylockPage(uint64_t pfn);
  void UnlockPage(uint64_t pfn);
  // Mirrors: include/linux/pagemap.h wait_on_page_locked(): returns once the
  // lock is seen free (a fault that found the page busy, before it retries).
  void WaitPageUnlocked(uint64_t pfn) const;

  // Pages not on the free list, ascending, zero page excluded. Takes zone_lock_.
  std::vector<uint64_t> InUse() const;
  uint64_t nr_free() const;
  // Checks invariants 1 and 2 (free-list shape); appends one line per violation.
  // Takes zone_lock_.
  void CheckFreeList(std::vector<std::string>* out) const;

 private:
  static constexpr uint64_t kBytesPerPage = 4096;
  static constexpr uint32_t kNoPage = UINT32_MAX;

  void FreePage(uint64_t pfn);

  const uint64_t ram_pages_;
  std::unique_ptr<Page[]> pages_;  // ram_pages_ + 1 entries; the zero page last
  struct FreeDeleter {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, FreeDeleter> data_;  // calloc'ed: untouched pages cost nothing
  mutable std::mutex zone_lock_;
  uint32_t free_head_ = kNoPage;  // guarded by zone_lock_
  uint64_t nr_free_ = 0;          // guarded by zone_lock_
};

}  // namespace hmm::impl

#endif  // HMMREF_IMPL_PAGE_H_
