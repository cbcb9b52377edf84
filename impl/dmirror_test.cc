// File: impl/dmirror_test.cc
//
// The dummy device (docs/mirror.md; 6.1 lib/test_hmm.c): ioctl guards in
// the documented order, the kernel's own test cases (hmm-tests.c anon_read,
// anon_read_prot, anon_write, anon_write_prot, ...) with their exact cpages
// and faults, the driver fault's chunks, device memory seen through the
// device, SNAPSHOT's bytes, and the device page table torn down by CPU
// operations. Both profiles, each step ending with the representation
// invariant intact.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_test_util.h"
#include "model/types.h"

namespace hmm::impl {
namespace {

using test_util::CpuReadAll;
using test_util::CpuWriteAll;
using test_util::Fill;
using test_util::kPage;
using test_util::kRW;
using test_util::MapOrDie;
using test_util::Pattern;
using test_util::PtOf;

class DmirrorTest : public ::testing::TestWithParam<Profile> {
 protected:
  DmirrorTest() : k_(test_util::SmallConfig(GetParam())) {
    pid_ = k_.CreateProcess().value;
    mirror_ = k_.HmmMirrorRegister(DeviceId(0), pid_).value;
  }
  void TearDown() override { EXPECT_REP_OK(k_); }

  uint64_t Map(uint64_t npages, uint32_t prot = kRW, uint32_t flags = kMapPrivate) {
    return MapOrDie(k_, pid_, npages, prot, flags);
  }
  DmirrorResult Read(uint64_t addr, uint64_t npages) {
    Result<DmirrorResult> r = k_.DmirrorRead(mirror_, addr, npages);
    EXPECT_TRUE(r.ok()) << ErrnoName(r.err);
    return r.value;
  }
  DmirrorResult Write(uint64_t addr, const std::vector<uint8_t>& data) {
    Result<DmirrorResult> r = k_.DmirrorWrite(mirror_, addr, data);
    EXPECT_TRUE(r.ok()) << ErrnoName(r.err);
    return r.value;
  }
  std::vector<uint8_t> Snapshot(uint64_t addr, uint64_t npages) {
    Result<DmirrorResult> r = k_.DmirrorSnapshot(mirror_, addr, npages);
    EXPECT_TRUE(r.ok()) << ErrnoName(r.err);
    EXPECT_EQ(r.value.cpages, npages);
    EXPECT_EQ(r.value.faults, 0u);
    return r.value.data;
  }

  Kernel k_;
  Pid pid_;
  uint64_t mirror_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Profiles, DmirrorTest, ::testing::Values(Profile::kDefault, Profile::kV18),
                         test_util::ProfileParamName);

TEST_P(DmirrorTest, GuardsInOrder) {
  uint64_t a = Map(2);
  EXPECT_EQ(k_.DmirrorRead(9, a + 1, 0).err, Errno::kNoEnt);
  EXPECT_EQ(k_.DmirrorWrite(9, a, {}).err, Errno::kNoEnt);
  EXPECT_EQ(k_.DmirrorSnapshot(9, a, kMaxDmirrorPages + 1).err, Errno::kNoEnt);
  EXPECT_EQ(k_.DmirrorRead(mirror_, a + 1, 1).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorRead(mirror_, a, 0).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorSnapshot(mirror_, kTaskSize - kPage, 2).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorSnapshot(mirror_, kTaskSize, kMaxDmirrorPages + 1).err, Errno::kInval)
      << "the range before the bounce buffer";
  EXPECT_EQ(k_.DmirrorWrite(mirror_, a, {}).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorWrite(mirror_, a, Fill(kPage + 1, 1)).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorRead(mirror_, a, kMaxDmirrorPages + 1).err, Errno::kNoMem);
  EXPECT_EQ(k_.DmirrorWrite(mirror_, a, Fill((kMaxDmirrorPages + 1) * kPage, 1)).err,
            Errno::kNoMem);
  EXPECT_EQ(k_.DmirrorSnapshot(mirror_, a, kMaxDmirrorPages + 1).err, Errno::kNoMem);
  ASSERT_EQ(k_.Exit(pid_), Errno::kOk);
  EXPECT_EQ(k_.DmirrorRead(mirror_, a, 1).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorWrite(mirror_, a, Fill(kPage, 1)).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorSnapshot(mirror_, a, 1).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorRead(mirror_, a, kMaxDmirrorPages + 1).err, Errno::kNoMem) << "before";
}

// hmm-tests.c anon_read: the device reads what the CPU wrote; one fault.
TEST_P(DmirrorTest, AnonRead) {
  const uint64_t n = 100;
  uint64_t a = Map(n);
  std::vector<uint8_t> data = Pattern(n, 1);
  ASSERT_EQ(CpuWriteAll(k_, pid_, a, data), Errno::kOk);
  DmirrorResult r = Read(a, n);
  EXPECT_EQ(r.cpages, n);
  EXPECT_EQ(r.faults, 1u);
  EXPECT_EQ(r.data, data);
  std::vector<PteInfo> pt = PtOf(k_, mirror_), cpu = k_.Ptes(pid_);
  ASSERT_EQ(pt.size(), n);
  for (uint64_t i = 0; i < n; ++i) {
    EXPECT_EQ(pt[i].pfn, cpu[i].pfn);
    EXPECT_TRUE(pt[i].write) << "write iff the CPU entry is writable";
  }
  r = Read(a, n);
  EXPECT_EQ(r.faults, 0u) << "the second read finds every page in pt";
  EXPECT_EQ(r.cpages, n);
}

// hmm-tests.c anon_read_prot: an unreadable VMA is -EFAULT, nothing copied back.
TEST_P(DmirrorTest, AnonReadProt) {
  uint64_t a = Map(4);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Pattern(4, 2)), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, a, 4 * kPage, kProtNone), Errno::kOk);
  EXPECT_EQ(k_.DmirrorRead(mirror_, a, 4).err, Errno::kFault);
  EXPECT_TRUE(PtOf(k_, mirror_).empty());
}

// hmm-tests.c anon_write: the CPU reads what the device wrote; one fault.
TEST_P(DmirrorTest, AnonWrite) {
  const uint64_t n = 70;
  uint64_t a = Map(n);
  std::vector<uint8_t> data = Pattern(n, 3);
  DmirrorResult r = Write(a, data);
  EXPECT_EQ(r.cpages, n);
  EXPECT_EQ(r.faults, 1u);
  EXPECT_TRUE(r.data.empty());
  EXPECT_EQ(CpuReadAll(k_, pid_, a, n * kPage), data);
  EXPECT_EQ(Write(a, data).faults, 0u);
}

// hmm-tests.c anon_write_prot: write to a read-only VMA is -EPERM; after
// mprotect the zero page is replaced.
TEST_P(DmirrorTest, AnonWriteProt) {
  const uint64_t n = 8;
  uint64_t a = Map(n, kProtRead);
  DmirrorResult r = Read(a, 1);
  EXPECT_EQ(r.cpages, 1u);
  EXPECT_EQ(r.faults, 1u);
  EXPECT_EQ(r.data, Fill(kPage, 0));
  ASSERT_TRUE(PtOf(k_, mirror_)[0].zero);
  std::vector<uint8_t> data = Pattern(n, 4);
  EXPECT_EQ(k_.DmirrorWrite(mirror_, a, data).err, Errno::kPerm);
  ASSERT_EQ(k_.Mprotect(pid_, a, n * kPage, kRW), Errno::kOk);
  r = Write(a, data);
  EXPECT_EQ(r.cpages, n);
  EXPECT_EQ(r.faults, 1u);
  EXPECT_EQ(CpuReadAll(k_, pid_, a, n * kPage), data);
  for (const PteInfo& p : PtOf(k_, mirror_)) EXPECT_FALSE(p.zero);
}

// hmm-tests.c anon_write_child: after fork the device write breaks COW in
// the parent only.
TEST_P(DmirrorTest, WriteAfterForkBreaksCow) {
  const uint64_t n = 4;
  uint64_t a = Map(n);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Fill(n * kPage, 5)), Errno::kOk);
  Pid child = k_.Fork(pid_).value;
  std::vector<uint8_t> data = Pattern(n, 6);
  DmirrorResult r = Write(a, data);
  EXPECT_EQ(r.faults, 1u);
  EXPECT_EQ(CpuReadAll(k_, pid_, a, n * kPage), data);
  EXPECT_EQ(k_.CpuRead(child, a, n * kPage).value, Fill(n * kPage, 5));
  ASSERT_EQ(k_.Exit(child), Errno::kOk);
}

// dmirror_fault() goes in chunks of kDmirrorFaultChunk pages from the first
// missing page; a failing chunk stores nothing, earlier ones stay.
TEST_P(DmirrorTest, FaultChunks) {
  const uint64_t n = 2 * kDmirrorFaultChunk + 10;
  uint64_t a = Map(n);
  ASSERT_EQ(k_.Munmap(pid_, a + (kDmirrorFaultChunk + 5) * kPage, kPage), Errno::kOk);
  EXPECT_EQ(k_.DmirrorRead(mirror_, a, n).err, Errno::kFault) << "a hole";
  EXPECT_EQ(PtOf(k_, mirror_).size(), kDmirrorFaultChunk);
  ASSERT_TRUE(k_.Mmap(pid_, a + (kDmirrorFaultChunk + 5) * kPage, kPage, kRW,
                      kMapPrivate | kMapFixed).ok());
  DmirrorResult r = Read(a, n);
  EXPECT_EQ(r.faults, 1u) << "one dmirror_fault() from page 64 on, in two chunks";
  EXPECT_EQ(r.cpages, n);
  EXPECT_EQ(PtOf(k_, mirror_).size(), n);
  ASSERT_EQ(k_.MadviseDontneed(pid_, a + 3 * kPage, kPage), Errno::kOk);
  r = Read(a, n);
  EXPECT_EQ(r.faults, 1u);
  EXPECT_EQ(r.cpages, n) << "pages copied before the fault count once";
}

TEST_P(DmirrorTest, DeviceMemoryThroughTheDevice) {
  uint64_t a = Map(3);
  uint64_t own = k_.HmmDevmemAdd(DeviceId(0), kPage).value;
  uint64_t other = k_.HmmDevmemAdd(DeviceId(1), kPage).value;
  uint64_t own_pfn = k_.DevicePageAlloc(own).value;
  uint64_t other_pfn = k_.DevicePageAlloc(other).value;
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, a, own_pfn, true), Errno::kOk);
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, a + 2 * kPage, other_pfn, true), Errno::kOk);
  std::vector<uint8_t> data = Pattern(1, 7);
  DmirrorResult r = Write(a, data);  // the device writes its own page in place
  EXPECT_EQ(r.faults, 1u);
  EXPECT_EQ(k_.DevicePageData(own_pfn), data);
  EXPECT_TRUE(PtOf(k_, mirror_)[0].device);
  std::vector<uint8_t> two = data;
  two.resize(2 * kPage, 0);  // then a zero page
  EXPECT_EQ(Read(a, 2).data, two);
  EXPECT_TRUE(k_.DeviceEvents().empty());
  // Another device's page: its owner's callback runs and migrates it back
  // (docs/migrate.md), and the device maps the system page that holds it.
  ASSERT_EQ(k_.DevicePagePut(other_pfn), Errno::kOk);
  r = Read(a, 3);
  EXPECT_EQ(r.faults, 1u);
  two.resize(3 * kPage, 0);  // the other device's page was never written: zeros
  EXPECT_EQ(r.data, two);
  EXPECT_FALSE(PtOf(k_, mirror_)[2].device);
  EXPECT_EQ(test_util::Events(k_),
            test_util::Show({test_util::Fault(other, other_pfn, pid_, a + 2 * kPage),
                             test_util::PageFree(other, other_pfn)}));
  // Contents are zero again at each allocation.
  ASSERT_EQ(k_.Munmap(pid_, a, 3 * kPage), Errno::kOk);
  ASSERT_EQ(k_.DevicePagePut(own_pfn), Errno::kOk);
  EXPECT_EQ(k_.DevicePageData(own_pfn), data);
  ASSERT_EQ(k_.DevicePageAlloc(own).value, own_pfn);
  EXPECT_EQ(k_.DevicePageData(own_pfn), Fill(kPage, 0));
  EXPECT_EQ(k_.DevicePageData(12345), Fill(kPage, 0));
}

TEST_P(DmirrorTest, SnapshotBytes) {
  uint64_t a = Map(7);
  uint64_t none = Map(1, kProtNone);
  ASSERT_TRUE(k_.CpuRead(pid_, a + kPage, 1).ok());
  ASSERT_EQ(k_.CpuWrite(pid_, a + 2 * kPage, {1}), Errno::kOk);
  ASSERT_EQ(k_.CpuWrite(pid_, a + 3 * kPage, {1}), Errno::kOk);
  Pid child = k_.Fork(pid_).value;  // page 3 read-only now (so is 2)
  ASSERT_EQ(k_.CpuWrite(pid_, a + 2 * kPage, {2}), Errno::kOk);  // 2 writable again
  uint64_t own = k_.HmmDevmemAdd(DeviceId(0), 2 * kPage).value;
  uint64_t other = k_.HmmDevmemAdd(DeviceId(3), kPage).value;
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, a + 4 * kPage, k_.DevicePageAlloc(own).value, false),
            Errno::kOk);
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, a + 5 * kPage, k_.DevicePageAlloc(own).value, true),
            Errno::kOk);
  ASSERT_EQ(k_.DeviceEntryInstall(pid_, a + 6 * kPage, k_.DevicePageAlloc(other).value, true),
            Errno::kOk);
  std::vector<PteInfo> before = k_.Ptes(pid_);
  std::vector<uint8_t> want = {0x00, 0x11, 0x02, 0x01, 0x21, 0x22, 0x00, 0xff};
  EXPECT_EQ(Snapshot(a, 8), want);  // page 7 is `none`, a PROT_NONE VMA
  EXPECT_EQ(none, a + 7 * kPage);
  EXPECT_EQ(Snapshot(none + kPage, 2), (std::vector<uint8_t>{0xff, 0xff})) << "no VMA";
  EXPECT_EQ(k_.Ptes(pid_).size(), before.size()) << "a snapshot changes nothing";
  EXPECT_TRUE(PtOf(k_, mirror_).empty());
  EXPECT_TRUE(k_.DeviceEvents().empty());
  ASSERT_EQ(k_.Exit(child), Errno::kOk);
}

// The device page table follows the CPU's: every notifying operation erases
// what it changed.
TEST_P(DmirrorTest, CpuOperationsTearDownTheDevicePageTable) {
  const uint64_t n = 8;
  uint64_t a = Map(n);
  uint64_t s = Map(2, kRW, kMapShared);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Pattern(n, 8)), Errno::kOk);
  EXPECT_EQ(Read(a, n).faults, 1u);
  EXPECT_EQ(Read(s, 2).faults, 1u);
  ASSERT_EQ(k_.Munmap(pid_, a + 6 * kPage, 2 * kPage), Errno::kOk);
  EXPECT_EQ(PtOf(k_, mirror_).size(), 8u);
  ASSERT_EQ(k_.Mprotect(pid_, a, kPage, kProtRead), Errno::kOk);
  EXPECT_EQ(PtOf(k_, mirror_).size(), 7u);
  ASSERT_EQ(k_.MadviseDontneed(pid_, a + kPage, kPage), Errno::kOk);
  EXPECT_EQ(PtOf(k_, mirror_).size(), 6u);
  Pid child = k_.Fork(pid_).value;
  EXPECT_EQ(PtOf(k_, mirror_).size(), 2u) << "the shared pages stay";
  DmirrorResult r = Read(a, 6);
  EXPECT_EQ(r.faults, 1u);
  for (const PteInfo& p : PtOf(k_, mirror_)) {
    bool shared = p.vpn >= s / kPage && p.vpn < s / kPage + 2;
    EXPECT_EQ(p.write, shared) << "vpn " << p.vpn << ": COW pages read-only";
  }
  ASSERT_EQ(k_.CpuWrite(pid_, a + 2 * kPage, {9}), Errno::kOk);  // a COW break
  EXPECT_EQ(PtOf(k_, mirror_).size(), 7u);
  ASSERT_EQ(k_.Exit(child), Errno::kOk);
  ASSERT_TRUE(k_.Mremap(pid_, a + 3 * kPage, 3 * kPage, 3 * kPage, kMremapMaymove | kMremapFixed,
                        a + 100 * kPage)
                  .ok());
  EXPECT_EQ(PtOf(k_, mirror_).size(), 4u);
  ASSERT_EQ(k_.Exit(pid_), Errno::kOk);
  EXPECT_TRUE(PtOf(k_, mirror_).empty()) << "exit erases everything";
  EXPECT_EQ(k_.Mirrors().size(), 1u) << "the mirror stays until unregistered";
  EXPECT_EQ(k_.HmmMirrorUnregister(mirror_), Errno::kOk);
}

TEST_P(DmirrorTest, SeveralMirrorsOfOneProcess) {
  uint64_t a = Map(2);
  uint64_t second = k_.HmmMirrorRegister(DeviceId(0), pid_).value;
  ASSERT_EQ(Write(a, Pattern(2, 9)).faults, 1u);
  Result<DmirrorResult> r = k_.DmirrorRead(second, a, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value.faults, 1u) << "each file has its own pt";
  EXPECT_EQ(r.value.data, Pattern(2, 9));
  ASSERT_EQ(k_.HmmMirrorUnregister(second), Errno::kOk);
  ASSERT_EQ(k_.Munmap(pid_, a, 2 * kPage), Errno::kOk);
  EXPECT_TRUE(PtOf(k_, mirror_).empty());
}

}  // namespace
}  // namespace hmm::impl
