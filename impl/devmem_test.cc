// File: impl/devmem_test.cc
//
// Device-private memory (docs/devmem.md): every rung of the guard ladders,
// both placements, RAM hotplug, the lowest-free allocator, page_free once
// per allocation in both orders, and what fork, mprotect, mremap, munmap,
// madvise and exit do with device-private entries (CPU access, which
// migrates the page back: migrate_to_ram_test.cc). Every step ends with the
// representation invariant intact.

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_test_util.h"
#include "model/types.h"

namespace hmm::impl {
namespace {

using namespace ::hmm::impl::test_util;  // NOLINT: test helpers

constexpr uint64_t kSection = uint64_t{1} << 27;  // the default, 128 MiB
constexpr uint64_t kLimit = uint64_t{1} << 46;    // 2^max_physmem_bits, the default

// Four-page sections, so a one-section region has four device pages.
Config SmallSections(Profile profile = Profile::kDefault) { return SmallConfig(profile); }

std::vector<ResourceInfo> DeviceResources(const Kernel& k) {
  std::vector<ResourceInfo> out;
  for (const ResourceInfo& r : k.Resources()) {
    if (r.device) out.push_back(r);
  }
  return out;
}

using Fixture = DevmemFixture;

// --- HmmDevmemAdd, placement, HmmDevmemRemove ---

TEST(DevmemTest, AddRoundsToSectionsAndPlacesAboveTheLimit) {
  Kernel k;
  EXPECT_EQ(k.MetadataBytesPerDevicePage(), 0.0);
  Result<uint64_t> first = k.HmmDevmemAdd(DeviceId(1), 1);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first.value, 1u);
  Result<uint64_t> second = k.HmmDevmemAdd(DeviceId(2), kSection + 1);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second.value, 2u);
  EXPECT_REP_OK(k);
  std::vector<ResourceInfo> res = k.Resources();
  ASSERT_EQ(res.size(), 3u);
  EXPECT_TRUE(res[0].boot && !res[0].device);
  EXPECT_EQ(res[0].end, 1024 * kPage);
  EXPECT_EQ(res[1].start, kLimit);
  EXPECT_EQ(res[1].end, kLimit + kSection);
  EXPECT_TRUE(res[1].device);
  EXPECT_EQ(res[1].devmem, 1u);
  EXPECT_EQ(res[2].start, kLimit + kSection);
  EXPECT_EQ(res[2].end, kLimit + 3 * kSection);
  std::vector<DevmemInfo> dm = k.Devmems();
  ASSERT_EQ(dm.size(), 2u);
  EXPECT_EQ(dm[0].device, 1u);
  EXPECT_EQ(dm[0].first_pfn, kLimit / kPage);
  EXPECT_EQ(dm[0].npages, kSection / kPage);
  EXPECT_TRUE(dm[0].pages.empty());
  EXPECT_EQ(dm[1].npages, 2 * kSection / kPage);
  EXPECT_GT(k.MetadataBytesPerDevicePage(), 0.0);
  EXPECT_LT(k.MetadataBytesPerDevicePage(), 1.0) << "the memmap comes on demand";
}

TEST(DevmemTest, AddGuardsAndErrorsChangeNothing) {
  Kernel k;
  // Is size non-zero?
  EXPECT_EQ(k.HmmDevmemAdd(DeviceId(1), 0).err, Errno::kInval);
  // Does it round to sections without overflow?
  EXPECT_EQ(k.HmmDevmemAdd(DeviceId(1), UINT64_MAX).err, Errno::kInval);
  EXPECT_EQ(k.HmmDevmemAdd(DeviceId(1), UINT64_MAX - kSection).err, Errno::kInval);
  // Within 2^max_physmem_bits?
  EXPECT_EQ(k.HmmDevmemAdd(DeviceId(1), kLimit + 1).err, Errno::kInval);
  EXPECT_TRUE(k.Devmems().empty());
  EXPECT_EQ(k.Resources().size(), 1u);
  EXPECT_REP_OK(k);
  // Exactly 2^max_physmem_bits fits: [2^46, 2^47). No id was used by the errors.
  EXPECT_EQ(k.HmmDevmemAdd(DeviceId(1), kLimit).value, 1u);
  EXPECT_EQ(DeviceResources(k)[0].end, 2 * kLimit);
  EXPECT_REP_OK(k);
}

TEST(DevmemTest, DefaultPlacementTakesTheLowestFreeWindow) {
  Kernel k;
  uint64_t a = k.HmmDevmemAdd(DeviceId(1), kSection).value;
  uint64_t b = k.HmmDevmemAdd(DeviceId(1), kSection).value;
  uint64_t c = k.HmmDevmemAdd(DeviceId(1), kSection).value;
  ASSERT_EQ(k.HmmDevmemRemove(b), Errno::kOk);
  EXPECT_REP_OK(k);
  // Two sections do not fit b's hole; one does.
  uint64_t d = k.HmmDevmemAdd(DeviceId(1), 2 * kSection).value;
  uint64_t e = k.HmmDevmemAdd(DeviceId(1), kSection).value;
  EXPECT_EQ(d, 4u);
  std::vector<DevmemInfo> dm = k.Devmems();
  ASSERT_EQ(dm.size(), 4u);
  EXPECT_EQ(dm[0].id, a);
  EXPECT_EQ(dm[1].id, c);
  EXPECT_EQ(dm[1].first_pfn, (kLimit + 2 * kSection) / kPage);
  EXPECT_EQ(dm[2].first_pfn, (kLimit + 3 * kSection) / kPage);
  EXPECT_EQ(dm[3].id, e);
  EXPECT_EQ(dm[3].first_pfn, (kLimit + kSection) / kPage);
  EXPECT_REP_OK(k);
}

TEST(DevmemTest, DefaultPlacementEndsWhereADevicePfnStopsFitting) {
  Config c;
  c.max_physmem_bits = 52;
  Kernel k(c);
  // [2^52 * n, 2^52 * (n + 1)) for n = 1 .. 63 lies below 2^(12 + 46) = 2^58.
  for (uint64_t n = 1; n < 64; ++n) {
    ASSERT_EQ(k.HmmDevmemAdd(DeviceId(n), uint64_t{1} << 52).value, n);
  }
  EXPECT_EQ(k.HmmDevmemAdd(DeviceId(64), uint64_t{1} << 52).err, Errno::kRange);
  EXPECT_EQ(k.HmmDevmemAdd(DeviceId(64), kSection).err, Errno::kRange);
  EXPECT_EQ(DeviceResources(k).back().end, uint64_t{1} << 58);
  // A region of 2^40 pages costs nothing until its pages are used.
  Result<uint64_t> pfn = k.DevicePageAlloc(63);
  ASSERT_TRUE(pfn.ok());
  EXPECT_EQ(pfn.value, (uint64_t{63} << 52) / kPage);
  EXPECT_LT(k.MetadataBytesPerDevicePage(), 0.001);
  EXPECT_REP_OK(k);
}

TEST(DevmemTest, V18PlacesTopDownBelowTheLimitAndSkipsResources) {
  Config c;
  c.max_physmem_bits = 32;
  c.profile = Profile::kV18;
  Kernel k(c);
  const uint64_t top = uint64_t{1} << 32;
  ASSERT_EQ(k.HmmDevmemAdd(DeviceId(1), kSection).value, 1u);
  ASSERT_EQ(k.HmmDevmemAdd(DeviceId(1), kSection).value, 2u);
  std::vector<ResourceInfo> dev = DeviceResources(k);
  EXPECT_EQ(dev[0].start, top - 2 * kSection);
  EXPECT_EQ(dev[1].start, top - kSection);
  // RAM hot-added over a v18 range is refused, not silently overlapped.
  EXPECT_EQ(k.RamHotAdd(top - kSection, kSection), Errno::kBusy);
  ASSERT_EQ(k.RamHotAdd(top / 2, kSection), Errno::kOk);
  // 1 GiB: [3 GiB, 4 GiB) holds the regions, [2 GiB, 3 GiB) the RAM.
  ASSERT_EQ(k.HmmDevmemAdd(DeviceId(1), top / 4).value, 3u);
  EXPECT_EQ(DeviceResources(k)[0].start, top / 4);
  // The whole space always meets the boot RAM.
  EXPECT_EQ(k.HmmDevmemAdd(DeviceId(1), top).err, Errno::kRange);
  EXPECT_REP_OK(k);
}

TEST(DevmemTest, RemoveRefusesWhileAPageIsHeldOrMapped) {
  Fixture f;
  // Is it a live devmem?
  EXPECT_EQ(f.k.HmmDevmemRemove(99), Errno::kNoEnt);
  // Held:
  EXPECT_EQ(f.k.HmmDevmemRemove(f.devmem), Errno::kBusy);
  ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, f.a, f.pfn, true), Errno::kOk);
  ASSERT_EQ(f.k.DevicePagePut(f.pfn), Errno::kOk);
  // Mapped only:
  EXPECT_EQ(f.k.HmmDevmemRemove(f.devmem), Errno::kBusy);
  EXPECT_REP_OK(f.k);
  ASSERT_EQ(f.k.Munmap(f.pid, f.a, kPage), Errno::kOk);
  ASSERT_EQ(f.k.HmmDevmemRemove(f.devmem), Errno::kOk);
  EXPECT_REP_OK(f.k);
  EXPECT_TRUE(f.k.Devmems().empty());
  EXPECT_TRUE(DeviceResources(f.k).empty());
  EXPECT_EQ(f.k.HmmDevmemRemove(f.devmem), Errno::kNoEnt);
  EXPECT_EQ(f.k.DevicePageAlloc(f.devmem).err, Errno::kNoEnt);
  EXPECT_EQ(f.k.DevicePagePut(f.pfn), Errno::kNoEnt);
  EXPECT_EQ(f.k.PageFrees(f.devmem).err, Errno::kNoEnt);
  // Ids are never reused.
  EXPECT_EQ(f.k.HmmDevmemAdd(DeviceId(7), 1).value, f.devmem + 1);
  EXPECT_REP_OK(f.k);
}

// --- RAM hotplug ---

TEST(DevmemTest, RamHotAddGuards) {
  Kernel k;
  // Section-aligned start and size, size non-zero?
  EXPECT_EQ(k.RamHotAdd(kSection + kPage, kSection), Errno::kInval);
  EXPECT_EQ(k.RamHotAdd(kSection, kPage), Errno::kInval);
  EXPECT_EQ(k.RamHotAdd(kSection, 0), Errno::kInval);
  // Below 2^max_physmem_bits, without wrapping?
  EXPECT_EQ(k.RamHotAdd(kLimit, kSection), Errno::kRange);
  EXPECT_EQ(k.RamHotAdd(kLimit - kSection, 2 * kSection), Errno::kRange);
  EXPECT_EQ(k.RamHotAdd(0 - kSection, 2 * kSection), Errno::kRange);
  // Clear of every resource?
  EXPECT_EQ(k.RamHotAdd(0, kSection), Errno::kBusy);
  EXPECT_EQ(k.Resources().size(), 1u);
  ASSERT_EQ(k.RamHotAdd(kLimit - kSection, kSection), Errno::kOk);
  EXPECT_EQ(k.RamHotAdd(kLimit - 2 * kSection, 2 * kSection), Errno::kBusy);
  std::vector<ResourceInfo> res = k.Resources();
  ASSERT_EQ(res.size(), 2u);
  EXPECT_FALSE(res[1].boot || res[1].device);
  EXPECT_EQ(res[1].start, kLimit - kSection);
  EXPECT_REP_OK(k);
  // The default placement stays above the limit, clear of hot-added RAM.
  ASSERT_TRUE(k.HmmDevmemAdd(DeviceId(1), 1).ok());
  EXPECT_EQ(DeviceResources(k)[0].start, kLimit);
  EXPECT_REP_OK(k);
}

TEST(DevmemTest, RamHotRemoveTakesExactlyAHotAddedRange) {
  Config c;
  c.section_bytes = 1024 * kPage;  // the boot RAM is exactly one section
  Kernel k(c);
  const uint64_t s = c.section_bytes;
  ASSERT_EQ(k.RamHotAdd(4 * s, 2 * s), Errno::kOk);
  ASSERT_TRUE(k.HmmDevmemAdd(DeviceId(1), s).ok());
  // Section-aligned start and size, size non-zero?
  EXPECT_EQ(k.RamHotRemove(4 * s + kPage, s), Errno::kInval);
  EXPECT_EQ(k.RamHotRemove(4 * s, 0), Errno::kInval);
  // Exactly a System RAM resource? Part of one, a gap, a device range are not.
  EXPECT_EQ(k.RamHotRemove(4 * s, s), Errno::kNoEnt);
  EXPECT_EQ(k.RamHotRemove(8 * s, s), Errno::kNoEnt);
  EXPECT_EQ(k.RamHotRemove(kLimit, s), Errno::kNoEnt);
  // The boot RAM?
  EXPECT_EQ(k.RamHotRemove(0, s), Errno::kBusy);
  EXPECT_EQ(k.Resources().size(), 3u);
  ASSERT_EQ(k.RamHotRemove(4 * s, 2 * s), Errno::kOk);
  EXPECT_EQ(k.RamHotRemove(4 * s, 2 * s), Errno::kNoEnt);
  EXPECT_EQ(k.Resources().size(), 2u);
  EXPECT_REP_OK(k);
}

// --- The driver's allocator ---

TEST(DevmemTest, AllocTakesTheLowestFreePfn) {
  Kernel k(SmallSections());
  uint64_t id = k.HmmDevmemAdd(DeviceId(1), 1).value;
  const uint64_t first = kLimit / kPage;
  for (uint64_t i = 0; i < 4; ++i) EXPECT_EQ(k.DevicePageAlloc(id).value, first + i);
  // Is a page free?
  EXPECT_EQ(k.DevicePageAlloc(id).err, Errno::kNoMem);
  ASSERT_EQ(k.DevicePagePut(first + 2), Errno::kOk);
  ASSERT_EQ(k.DevicePagePut(first), Errno::kOk);
  EXPECT_REP_OK(k);
  EXPECT_EQ(k.DevicePageAlloc(id).value, first);
  EXPECT_EQ(k.DevicePageAlloc(id).value, first + 2);
  EXPECT_EQ(k.PageFrees(id).value, 2u);
  std::vector<DevicePageInfo> pages = k.Devmems()[0].pages;
  ASSERT_EQ(pages.size(), 4u);
  EXPECT_EQ(pages[0].allocations, 2u);
  EXPECT_EQ(pages[1].allocations, 1u);
  EXPECT_TRUE(pages[2].held);
  EXPECT_EQ(Events(k), Show({PageFree(id, first + 2), PageFree(id, first)}));
  EXPECT_REP_OK(k);
}

TEST(DevmemTest, AllocAcrossManyMemmapChunks) {
  Config c;
  c.section_bytes = kPage;
  Kernel k(c);
  const uint64_t n = 1500;  // three chunks of 512, the last one short
  uint64_t id = k.HmmDevmemAdd(DeviceId(1), n * kPage).value;
  const uint64_t first = kLimit / kPage;
  for (uint64_t i = 0; i < n; ++i) ASSERT_EQ(k.DevicePageAlloc(id).value, first + i);
  EXPECT_EQ(k.DevicePageAlloc(id).err, Errno::kNoMem);
  EXPECT_REP_OK(k);
  for (uint64_t i : {1300u, 700u, 5u}) ASSERT_EQ(k.DevicePagePut(first + i), Errno::kOk);
  for (uint64_t i : {5u, 700u, 1300u}) EXPECT_EQ(k.DevicePageAlloc(id).value, first + i);
  EXPECT_EQ(k.Devmems()[0].pages.size(), n);
  EXPECT_REP_OK(k);
}

TEST(DevmemTest, AllocAndPutGuards) {
  Fixture f;
  // Is it a live devmem?
  EXPECT_EQ(f.k.DevicePageAlloc(f.devmem + 1).err, Errno::kNoEnt);
  // Is pfn a page of a live devmem?
  EXPECT_EQ(f.k.DevicePagePut(5), Errno::kNoEnt);
  EXPECT_EQ(f.k.DevicePagePut(f.pfn + 4), Errno::kNoEnt);
  EXPECT_EQ(f.k.DevicePagePut(f.pfn - 1), Errno::kNoEnt);
  // Does the driver hold it?
  EXPECT_EQ(f.k.DevicePagePut(f.pfn + 1), Errno::kInval);
  ASSERT_EQ(f.k.DevicePagePut(f.pfn), Errno::kOk);
  EXPECT_EQ(f.k.DevicePagePut(f.pfn), Errno::kInval);
  EXPECT_EQ(f.k.PageFrees(f.devmem).value, 1u);
  EXPECT_EQ(f.k.PageFrees(f.devmem + 1).err, Errno::kNoEnt);
  EXPECT_REP_OK(f.k);
}

// --- Device-private entries ---

TEST(DevmemTest, InstallGuardsInOrder) {
  Fixture f;
  uint64_t shared = MapOrDie(f.k, f.pid, 1, kRW, kMapShared);
  const uint64_t unmapped = f.a + 64 * kPage;
  // Is the pid live?
  EXPECT_EQ(f.k.DeviceEntryInstall(Pid(99), f.a + 1, 5, true), Errno::kSrch);
  // Is addr page aligned?
  EXPECT_EQ(f.k.DeviceEntryInstall(f.pid, f.a + 1, 5, true), Errno::kInval);
  // Is pfn a page of a live devmem?
  EXPECT_EQ(f.k.DeviceEntryInstall(f.pid, unmapped, 5, true), Errno::kNoEnt);
  // Is the page allocated? (never, then freed)
  EXPECT_EQ(f.k.DeviceEntryInstall(f.pid, unmapped, f.pfn + 1, true), Errno::kInval);
  uint64_t freed = f.k.DevicePageAlloc(f.devmem).value;
  ASSERT_EQ(f.k.DevicePagePut(freed), Errno::kOk);
  EXPECT_EQ(f.k.DeviceEntryInstall(f.pid, unmapped, freed, true), Errno::kInval);
  // Is there a VMA? Is it private?
  EXPECT_EQ(f.k.DeviceEntryInstall(f.pid, unmapped, f.pfn, true), Errno::kFault);
  EXPECT_EQ(f.k.DeviceEntryInstall(f.pid, shared, f.pfn, true), Errno::kInval);
  // Is the PTE none? (a page, the zero page, a device entry)
  ASSERT_EQ(f.k.CpuWrite(f.pid, f.a, {1}), Errno::kOk);
  ASSERT_TRUE(f.k.CpuRead(f.pid, f.a + kPage, 1).ok());
  EXPECT_EQ(f.k.DeviceEntryInstall(f.pid, f.a, f.pfn, true), Errno::kBusy);
  EXPECT_EQ(f.k.DeviceEntryInstall(f.pid, f.a + kPage, f.pfn, true), Errno::kBusy);
  ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, f.a + 2 * kPage, f.pfn, true), Errno::kOk);
  EXPECT_EQ(f.k.DeviceEntryInstall(f.pid, f.a + 2 * kPage, f.pfn, true), Errno::kBusy);
  EXPECT_REP_OK(f.k);
  std::optional<PteInfo> pte = PteAt(f.k, f.pid, f.a + 2 * kPage);
  ASSERT_TRUE(pte.has_value());
  EXPECT_TRUE(pte->device && pte->write && !pte->zero);
  EXPECT_EQ(pte->pfn, f.pfn);
  EXPECT_EQ(Events(f.k), Show({PageFree(f.devmem, freed)}));
}

TEST(DevmemTest, InstallIsWriteOnlyInAWritableVmaAndOnlyOnce) {
  Fixture f;
  uint64_t ro = MapOrDie(f.k, f.pid, 1, kProtRead, kMapPrivate);
  ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, ro, f.pfn, true), Errno::kOk);
  // A page mapped read-only gets more entries, all read-only.
  ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, f.a, f.pfn, false), Errno::kOk);
  ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, f.a + kPage, f.pfn, true), Errno::kOk);
  EXPECT_FALSE(PteAt(f.k, f.pid, ro)->write);
  EXPECT_FALSE(PteAt(f.k, f.pid, f.a)->write);
  EXPECT_FALSE(PteAt(f.k, f.pid, f.a + kPage)->write) << "a second entry is read-only";
  // A page mapped writable gets no second entry, in this process or another.
  uint64_t other = f.k.DevicePageAlloc(f.devmem).value;
  ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, f.a + 2 * kPage, other, true), Errno::kOk);
  EXPECT_TRUE(PteAt(f.k, f.pid, f.a + 2 * kPage)->write);
  EXPECT_EQ(f.k.DeviceEntryInstall(f.pid, f.a + 3 * kPage, other, false), Errno::kBusy);
  Pid p2 = f.k.CreateProcess().value;
  uint64_t b = MapOrDie(f.k, p2, 1, kRW, kMapPrivate);
  EXPECT_EQ(f.k.DeviceEntryInstall(p2, b, other, true), Errno::kBusy);
  EXPECT_REP_OK(f.k);
}

TEST(DevmemTest, PageFreeOncePerAllocationPutThenZap) {
  Fixture f;
  ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, f.a, f.pfn, true), Errno::kOk);
  ASSERT_EQ(f.k.DevicePagePut(f.pfn), Errno::kOk);
  EXPECT_TRUE(f.k.DeviceEvents().empty()) << "the entry still holds the page";
  EXPECT_REP_OK(f.k);
  ASSERT_EQ(f.k.Munmap(f.pid, f.a, kPage), Errno::kOk);
  EXPECT_EQ(Events(f.k), Show({PageFree(f.devmem, f.pfn)}));
  EXPECT_EQ(f.k.PageFrees(f.devmem).value, 1u);
  EXPECT_FALSE(f.k.Devmems()[0].pages[0].held);
  EXPECT_REP_OK(f.k);
}

TEST(DevmemTest, PageFreeOncePerAllocationZapThenPut) {
  Fixture f;
  ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, f.a, f.pfn, true), Errno::kOk);
  ASSERT_EQ(f.k.MadviseDontneed(f.pid, f.a, kPage), Errno::kOk);
  EXPECT_TRUE(f.k.DeviceEvents().empty()) << "the driver still holds the page";
  EXPECT_FALSE(PteAt(f.k, f.pid, f.a).has_value());
  EXPECT_REP_OK(f.k);
  ASSERT_EQ(f.k.DevicePagePut(f.pfn), Errno::kOk);
  EXPECT_EQ(Events(f.k), Show({PageFree(f.devmem, f.pfn)}));
  // A second allocation of the same page ends in a second page_free.
  ASSERT_EQ(f.k.DevicePageAlloc(f.devmem).value, f.pfn);
  ASSERT_EQ(f.k.DevicePagePut(f.pfn), Errno::kOk);
  EXPECT_EQ(f.k.PageFrees(f.devmem).value, 2u);
  EXPECT_EQ(f.k.Devmems()[0].pages[0].allocations, 2u);
  EXPECT_REP_OK(f.k);
}

TEST(DevmemTest, ForkCopiesEntriesReadOnlyOnBothSides) {
  Fixture f;
  ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, f.a, f.pfn, true), Errno::kOk);
  Pid child = f.k.Fork(f.pid).value;
  EXPECT_REP_OK(f.k);
  for (Pid p : {f.pid, child}) {
    std::optional<PteInfo> pte = PteAt(f.k, p, f.a);
    ASSERT_TRUE(pte.has_value());
    EXPECT_TRUE(pte->device);
    EXPECT_FALSE(pte->write);
    EXPECT_EQ(pte->pfn, f.pfn);
  }
  ASSERT_EQ(f.k.DevicePagePut(f.pfn), Errno::kOk);
  ASSERT_EQ(f.k.Munmap(f.pid, f.a, kPage), Errno::kOk);
  EXPECT_TRUE(f.k.DeviceEvents().empty()) << "the child's entry still holds the page";
  // The child's access brings the page back; nothing maps or holds it then.
  EXPECT_EQ(f.k.CpuRead(child, f.a, 1).value, Fill(1, 0));
  EXPECT_EQ(Events(f.k), Show({Fault(f.devmem, f.pfn, child, f.a), PageFree(f.devmem, f.pfn)}));
  ASSERT_EQ(f.k.Exit(child), Errno::kOk);
  EXPECT_EQ(f.k.DeviceEvents().size(), 2u);
  EXPECT_REP_OK(f.k);
}

TEST(DevmemTest, MprotectWithoutWriteDowngradesForGood) {
  Fixture f;
  ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, f.a, f.pfn, true), Errno::kOk);
  ASSERT_EQ(f.k.Mprotect(f.pid, f.a, 4 * kPage, kProtRead), Errno::kOk);
  EXPECT_FALSE(PteAt(f.k, f.pid, f.a)->write);
  EXPECT_REP_OK(f.k);
  ASSERT_EQ(f.k.Mprotect(f.pid, f.a, 4 * kPage, kRW), Errno::kOk);
  EXPECT_FALSE(PteAt(f.k, f.pid, f.a)->write) << "a write fault would decide, as for a page";
  EXPECT_REP_OK(f.k);
}

TEST(DevmemTest, MremapMovesEntriesAndZapsTheCutTail) {
  Fixture f;
  ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, f.a, f.pfn, true), Errno::kOk);
  uint64_t tail = f.k.DevicePageAlloc(f.devmem).value;
  ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, f.a + 3 * kPage, tail, true), Errno::kOk);
  ASSERT_EQ(f.k.DevicePagePut(tail), Errno::kOk);
  const uint64_t to = f.a + 256 * kPage;
  Result<uint64_t> moved =
      f.k.Mremap(f.pid, f.a, 4 * kPage, 2 * kPage, kMremapMaymove | kMremapFixed, to);
  ASSERT_TRUE(moved.ok()) << ErrnoName(moved.err);
  EXPECT_EQ(Events(f.k), Show({PageFree(f.devmem, tail)}));
  std::vector<PteInfo> ptes = f.k.Ptes(f.pid);
  ASSERT_EQ(ptes.size(), 1u);
  EXPECT_EQ(ptes[0].vpn, to / kPage);
  EXPECT_TRUE(ptes[0].device && ptes[0].write);
  EXPECT_REP_OK(f.k);
}

TEST(DevmemTest, ExitAndMapFixedZapInAddressOrder) {
  Fixture f(8);
  std::vector<uint64_t> pfns = {f.pfn};
  for (int i = 0; i < 3; ++i) pfns.push_back(f.k.DevicePageAlloc(f.devmem).value);
  // Installed high address first; freed in address order.
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, f.a + (7 - i) * kPage, pfns[i], true), Errno::kOk);
    ASSERT_EQ(f.k.DevicePagePut(pfns[i]), Errno::kOk);
  }
  EXPECT_REP_OK(f.k);
  // MAP_FIXED over the top page replaces its entry.
  ASSERT_TRUE(f.k.Mmap(f.pid, f.a + 7 * kPage, kPage, kRW, kMapPrivate | kMapFixed).ok());
  ASSERT_EQ(f.k.Exit(f.pid), Errno::kOk);
  EXPECT_EQ(Events(f.k), Show({PageFree(f.devmem, pfns[0]), PageFree(f.devmem, pfns[3]),
                               PageFree(f.devmem, pfns[2]), PageFree(f.devmem, pfns[1])}));
  EXPECT_EQ(f.k.PageFrees(f.devmem).value, 4u);
  ASSERT_EQ(f.k.HmmDevmemRemove(f.devmem), Errno::kOk);
  EXPECT_REP_OK(f.k);
}

TEST(DevmemTest, MetadataPerDevicePageOnceEveryPageExists) {
  Config c;
  c.section_bytes = 4 * kPage;
  Kernel k(c);
  const uint64_t n = 4096;
  uint64_t id = k.HmmDevmemAdd(DeviceId(1), n * kPage).value;
  for (uint64_t i = 0; i < n; ++i) ASSERT_TRUE(k.DevicePageAlloc(id).ok());
  double bytes = k.MetadataBytesPerDevicePage();
  EXPECT_GE(bytes, 16.0);
  EXPECT_LT(bytes, 17.0);
  EXPECT_REP_OK(k);
}

}  // namespace
}  // namespace hmm::impl
