// File: impl/migrate_to_ram_test.cc
//
// A CPU access to a device-private entry (docs/migrate.md, "CPU access to a
// device-private entry"): the region's fault callback runs (logged), then
// migrate_to_ram brings the page back with its bytes and its entry's write
// bit, and the access goes on; when RAM is full the access fails with kFault
// (SIGBUS) and the entry stays, with the partial rule of docs/model.md. The
// hold of the driver keeps the device page allocated either way.

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_test_util.h"
#include "model/types.h"

namespace hmm::impl {
namespace {

using namespace ::hmm::impl::test_util;  // NOLINT: test helpers

TEST(MigrateToRamTest, CpuAccessRunsTheFaultCallbackAndMigratesBack) {
  DevmemFixture f(2);
  ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, f.a + kPage, f.pfn, false), Errno::kOk);
  // The page comes back to RAM with its bytes (never written: zeros), read-only as its entry.
  EXPECT_EQ(f.k.CpuRead(f.pid, f.a + kPage + 5, 3).value, Fill(3, 0));
  const DeviceEventInfo fault = Fault(f.devmem, f.pfn, f.pid, f.a + kPage);
  EXPECT_EQ(Events(f.k), Show({fault}));
  std::optional<PteInfo> pte = PteAt(f.k, f.pid, f.a + kPage);
  ASSERT_TRUE(pte.has_value());
  EXPECT_FALSE(pte->device);
  EXPECT_FALSE(pte->write);
  EXPECT_TRUE(f.k.Devmems()[0].pages[0].held) << "the driver still holds its page";
  EXPECT_REP_OK(f.k);
  // From now on it is a page like any: written in place, pinned as RAM.
  EXPECT_EQ(f.k.CpuWrite(f.pid, f.a + kPage - 2, Fill(4, 9)), Errno::kOk);
  EXPECT_TRUE(PteAt(f.k, f.pid, f.a + kPage)->write);
  Result<PinId> pin = f.k.PinUserPages(f.pid, f.a, 2);
  ASSERT_TRUE(pin.ok());
  EXPECT_EQ(f.k.Pins()[0].second[1], PteAt(f.k, f.pid, f.a + kPage)->pfn);
  EXPECT_EQ(f.k.DeviceEvents().size(), 1u);
  ASSERT_EQ(f.k.DevicePagePut(f.pfn), Errno::kOk);
  EXPECT_EQ(Events(f.k), Show({fault, PageFree(f.devmem, f.pfn)}));
  ASSERT_EQ(f.k.UnpinUserPages(pin.value), Errno::kOk);
  EXPECT_REP_OK(f.k);
}

TEST(MigrateToRamTest, CpuAccessFailsWhenThePageCannotComeBack) {
  DevmemFixture f(3, SmallConfig(Profile::kDefault, /*ram_pages=*/2));
  ASSERT_EQ(f.k.DeviceEntryInstall(f.pid, f.a + 2 * kPage, f.pfn, true), Errno::kOk);
  ASSERT_EQ(f.k.CpuWrite(f.pid, f.a, Fill(2 * kPage, 1)), Errno::kOk);  // RAM is full
  // SIGBUS: the entry stays. Partial: the bytes before the device page are written.
  EXPECT_EQ(f.k.CpuRead(f.pid, f.a + 2 * kPage, 1).err, Errno::kFault);
  EXPECT_EQ(f.k.CpuWrite(f.pid, f.a + 2 * kPage - 2, Fill(4, 9)), Errno::kFault);
  EXPECT_EQ(f.k.CpuRead(f.pid, f.a + 2 * kPage - 2, 2).value, Fill(2, 9));
  EXPECT_EQ(f.k.PinUserPages(f.pid, f.a, 3).err, Errno::kFault);
  EXPECT_TRUE(f.k.Pins().empty());
  const DeviceEventInfo fault = Fault(f.devmem, f.pfn, f.pid, f.a + 2 * kPage);
  EXPECT_EQ(Events(f.k), Show({fault, fault, fault}));
  EXPECT_TRUE(PteAt(f.k, f.pid, f.a + 2 * kPage)->device);
  EXPECT_REP_OK(f.k);
  // No access reaches it through PROT_NONE: no callback.
  ASSERT_EQ(f.k.Mprotect(f.pid, f.a, 3 * kPage, kProtNone), Errno::kOk);
  EXPECT_EQ(f.k.CpuRead(f.pid, f.a + 2 * kPage, 1).err, Errno::kFault);
  EXPECT_EQ(f.k.DeviceEvents().size(), 3u);
  // With RAM free again the page comes back, writable as its entry was.
  ASSERT_EQ(f.k.Mprotect(f.pid, f.a, 3 * kPage, kRW), Errno::kOk);
  ASSERT_EQ(f.k.Munmap(f.pid, f.a, kPage), Errno::kOk);
  EXPECT_EQ(f.k.CpuRead(f.pid, f.a + 2 * kPage, 1).value, Fill(1, 0));
  EXPECT_FALSE(PteAt(f.k, f.pid, f.a + 2 * kPage)->device);
  EXPECT_REP_OK(f.k);
}

}  // namespace
}  // namespace hmm::impl
