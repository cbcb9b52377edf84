// File: model/dmirror_test.cc
//
// The dummy device in model::Kernel (docs/mirror.md, lib/test_hmm.c 6.1): the
// guards of READ, WRITE and SNAPSHOT in order; the kernel tests' expectations
// at model level (anon_read, anon_read_prot, anon_write, anon_read_multiple);
// the fault in chunks from the first missing page; device entries of this
// device and of another; the snapshot's bytes; and the v18 commit. Each
// fixture checks every invariant when torn down.

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/kernel.h"
#include "model/mirror_test_util.h"
#include "model/test_util.h"

namespace hmm::model {
namespace {

using Holds = std::vector<bool>;
using DmirrorTest = MirrorTest;

std::vector<uint8_t> Concat(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST_F(DmirrorTest, GuardsInOrderChangeNothing) {
  const uint64_t a = Map(2);
  const Pid other = k_.CreateProcess().value;
  ASSERT_EQ(k_.HmmMirrorRegister(DeviceId(1), other).value, 2u);
  ASSERT_EQ(k_.Exit(other), Errno::kOk);
  const State before = k_.state();
  constexpr uint64_t kTooMany = kMaxDmirrorPages + 1;
  for (bool snapshot : {false, true}) {
    auto call = [&](uint64_t mirror, uint64_t addr, uint64_t npages) {
      return snapshot ? k_.DmirrorSnapshot(mirror, addr, npages).err
                      : k_.DmirrorRead(mirror, addr, npages).err;
    };
    EXPECT_EQ(call(99, a + 1, 0), Errno::kNoEnt);                  // the mirror first
    EXPECT_EQ(call(1, a + 1, kTooMany), Errno::kInval);            // unaligned
    EXPECT_EQ(call(1, a, 0), Errno::kInval);                       // no pages
    EXPECT_EQ(call(1, kTaskSize - Pages(1), 2), Errno::kInval);    // past kTaskSize
    EXPECT_EQ(call(1, a, UINT64_MAX), Errno::kInval);
    EXPECT_EQ(call(2, a, kTooMany), Errno::kNoMem);                // the bounce buffer
    EXPECT_EQ(call(1, a, kTooMany), Errno::kNoMem);
    EXPECT_EQ(call(2, a, 1), Errno::kInval);                       // the process exited
  }
  EXPECT_EQ(k_.DmirrorWrite(99, a + 1, {}).err, Errno::kNoEnt);
  EXPECT_EQ(k_.DmirrorWrite(1, a + 1, PagesOf(1, 1)).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorWrite(1, a, {}).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorWrite(1, a, Bytes("x")).err, Errno::kInval);  // not whole pages
  EXPECT_EQ(k_.DmirrorWrite(1, a, Concat(PagesOf(1, 1), Bytes("x"))).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorWrite(1, kTaskSize - Pages(1), PagesOf(2, 1)).err, Errno::kInval);
  EXPECT_EQ(k_.DmirrorWrite(2, a, PagesOf(kTooMany, 1)).err, Errno::kNoMem);
  EXPECT_EQ(k_.DmirrorWrite(2, a, PagesOf(1, 1)).err, Errno::kInval);
  EXPECT_EQ(k_.state(), before);
}

// --- The kernel's tests (tools/testing/selftests/mm/hmm-tests.c), 16 pages ---

constexpr uint64_t kN = 16;

TEST_F(DmirrorTest, AnonRead) {
  const uint64_t a = Map(kN);
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(2), PagesOf(kN - 2, 3)), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, a, Pages(kN), kProtRead), Errno::kOk);
  ASSERT_EQ(Read(pid_, a + Pages(1), 1), std::string(1, '\0'));  // maps the zero page
  const std::vector<uint8_t> want = Concat(std::vector<uint8_t>(Pages(2), 0), PagesOf(kN - 2, 3));
  EXPECT_EQ(Dread(a, kN), (DmirrorResult{kN, 1, want}));
  EXPECT_TRUE(PtAt(a + Pages(1)).zero);
  EXPECT_FALSE(PtAt(a + Pages(2)).write);
  // A second READ with no CPU change between: every page is in pt already.
  EXPECT_EQ(Dread(a, kN), (DmirrorResult{kN, 0, want}));
}

TEST_F(DmirrorTest, AnonReadProtNoneIsFaultNothingCopied) {
  const uint64_t a = Map(kN);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(kN, 1)), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, a, Pages(kN), kProtNone), Errno::kOk);
  const State before = k_.state();
  EXPECT_EQ(k_.DmirrorRead(1, a, kN).err, Errno::kFault);
  EXPECT_EQ(k_.state(), before);
  ASSERT_EQ(k_.Mprotect(pid_, a, Pages(kN), kProtRead), Errno::kOk);
  EXPECT_EQ(Read(pid_, a + Pages(kN - 1), 1), std::string(1, char(kN)));
  // Write-only is no better: the walk asks for PROT_READ.
  ASSERT_EQ(k_.Mprotect(pid_, a, Pages(kN), kProtWrite), Errno::kOk);
  EXPECT_EQ(k_.DmirrorRead(1, a, 1).err, Errno::kFault);
}

TEST_F(DmirrorTest, AnonWrite) {
  const uint64_t a = Map(kN);
  const std::vector<uint8_t> data = PagesOf(kN, 5);
  Result<DmirrorResult> r = k_.DmirrorWrite(1, a, data);
  ASSERT_EQ(r.err, Errno::kOk);
  EXPECT_EQ(r.value, (DmirrorResult{kN, 1, {}}));
  Result<std::vector<uint8_t>> cpu = k_.CpuRead(pid_, a, Pages(kN));
  EXPECT_EQ(cpu.value, data);
  EXPECT_TRUE(PtAt(a).write);
  EXPECT_EQ(k_.DmirrorWrite(1, a, data).value, (DmirrorResult{kN, 0, {}}));
}

TEST_F(DmirrorTest, AnonReadMultiple) {
  for (uint8_t c = 0; c < 10; ++c) {
    const uint64_t a = Map(kN);
    ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(kN, uint8_t(c + 1))), Errno::kOk);
    EXPECT_EQ(Dread(a, kN), (DmirrorResult{kN, 1, PagesOf(kN, uint8_t(c + 1))})) << int(c);
  }
}

// --- The driver's fault ---

TEST_F(DmirrorTest, FaultsFromFirstMissingPageInChunks) {
  const uint64_t a = Map(80);  // then a hole
  Dread(a, 10);
  // [10, 100) in chunks from page 10: [10, 74) is stored, [74, 100) meets the
  // hole at 80 and stores nothing, though its pages before the hole are faulted in.
  EXPECT_EQ(k_.DmirrorRead(1, a, 100).err, Errno::kFault);
  EXPECT_EQ(MirrorOf().pt.size(), 10 + kDmirrorFaultChunk);
  EXPECT_EQ(Proc(pid_).ptes.size(), 80u);
  EXPECT_EQ(Dread(a + Pages(1), 79), (DmirrorResult{79, 1, std::vector<uint8_t>(Pages(79), 0)}));
  EXPECT_EQ(MirrorOf().pt.size(), 80u);
}

TEST_F(DmirrorTest, FailedWriteKeepsPagesAlreadyWritten) {
  const uint64_t a = Map(70);  // then a hole
  ASSERT_TRUE(k_.DmirrorWrite(1, a, PagesOf(2, 1)).ok());
  EXPECT_EQ(k_.DmirrorWrite(1, a, PagesOf(100, 40)).err, Errno::kFault);
  EXPECT_EQ(Read(pid_, a, 1), std::string(1, char(40)));  // written before the fault
  EXPECT_EQ(Read(pid_, a + Pages(1), 1), std::string(1, char(41)));
  EXPECT_EQ(Read(pid_, a + Pages(2), 1), std::string(1, '\0'));  // faulted in, not written
  EXPECT_EQ(MirrorOf().pt.size(), 2 + kDmirrorFaultChunk);
}

TEST_F(DmirrorTest, WriteToReadOnlyVmaIsPerm) {
  const uint64_t a = Map(2, kProtRead);
  EXPECT_EQ(k_.DmirrorWrite(1, a, PagesOf(2, 1)).err, Errno::kPerm);
  EXPECT_EQ(Dread(a, 2), (DmirrorResult{2, 1, std::vector<uint8_t>(Pages(2), 0)}));
  EXPECT_EQ(k_.DmirrorWrite(1, a, PagesOf(2, 1)).err, Errno::kPerm);  // read-only pt entries
}

TEST_F(DmirrorTest, WriteBreaksCowLikeTheCpu) {
  const uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(2, 1)), Errno::kOk);
  const Pid child = k_.Fork(pid_).value;
  Dread(a, 2);  // read-only entries
  EXPECT_EQ(k_.DmirrorWrite(1, a, PagesOf(2, 8)).value, (DmirrorResult{2, 1, {}}));
  EXPECT_EQ(Read(pid_, a + Pages(1), 1), std::string(1, char(9)));
  EXPECT_EQ(Read(child, a + Pages(1), 1), std::string(1, char(2)));
  EXPECT_EQ(PtAt(a).page, PteAt(pid_, a).page);
}

TEST_F(DmirrorTest, FaultAloneBreaksCowAndCopiesNothing) {
  const uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(1, 1)), Errno::kOk);
  const Pid child = k_.Fork(pid_).value;
  const PageId shared = PteAt(pid_, a).page;
  // The same guards as READ.
  EXPECT_EQ(k_.DmirrorFaultRange(99, a, 1, false), Errno::kNoEnt);
  EXPECT_EQ(k_.DmirrorFaultRange(1, a + 1, 1, false), Errno::kInval);
  // A read fault: the empty page maps the zero page, the shared one stays.
  EXPECT_EQ(k_.DmirrorFaultRange(1, a, 2, false), Errno::kOk);
  EXPECT_TRUE(PteAt(pid_, a + Pages(1)).zero);
  EXPECT_EQ(PteAt(pid_, a).page, shared);
  EXPECT_FALSE(PtAt(a).write);
  // A write fault: the COW break and a page of zeros, the bytes unchanged.
  EXPECT_EQ(k_.DmirrorFaultRange(1, a, 2, true), Errno::kOk);
  EXPECT_NE(PteAt(pid_, a).page, shared);
  EXPECT_EQ(PteAt(child, a).page, shared);
  EXPECT_TRUE(PtAt(a).write);
  EXPECT_FALSE(PteAt(pid_, a + Pages(1)).zero);
  EXPECT_EQ(Read(pid_, a, 1), std::string(1, char(1)));
  EXPECT_EQ(Read(pid_, a + Pages(1), 1), std::string(1, char(0)));
  EXPECT_EQ(Dread(a, 2).faults, 0u);  // every page in pt
}

// --- Device entries ---

TEST_F(DmirrorTest, OwnDeviceEntryIsReadAndWrittenInDeviceMemory) {
  AddDeviceMemory();
  const uint64_t a = Map(2);
  const uint64_t pfn = DeviceEntryAt(1, a);  // devmem 1 is device 0's: this mirror's
  const std::vector<uint8_t> data = PagesOf(2, 7);
  EXPECT_EQ(k_.DmirrorWrite(1, a, data).value, (DmirrorResult{2, 1, {}}));
  Pte device;
  device.device = true;
  device.device_pfn = pfn;
  device.write = true;
  EXPECT_EQ(PtAt(a), device);
  EXPECT_EQ(k_.state().devmems.at(1).pages.at(pfn).data.At(kPageSize - 1), 7);
  EXPECT_EQ(Dread(a, 2), (DmirrorResult{2, 0, data}));
  EXPECT_TRUE(k_.state().events.empty());
  // The CPU never reads device memory: its read migrates the page back
  // (docs/migrate.md), and this mirror's entry goes with the device entry.
  EXPECT_EQ(Read(pid_, a, 1), std::string(1, char(7)));
  EXPECT_FALSE(PteAt(pid_, a).device);
  EXPECT_FALSE(InPt(a));
  EXPECT_TRUE(InPt(a + Pages(1)));
}

TEST_F(DmirrorTest, AnotherDevicesEntryMigratesBackThroughItsOwner) {
  AddDeviceMemory();
  const uint64_t a = Map(3);
  const uint64_t pfn = DeviceEntryAt(2, a + Pages(1));  // device 1's memory
  ASSERT_TRUE(k_.DevicePagePut(pfn) == Errno::kOk);     // only the entry holds it
  // Mirror 2, on device 1, owns it: its READ copies the device page.
  ASSERT_EQ(k_.HmmMirrorRegister(DeviceId(1), pid_).value, 2u);
  EXPECT_EQ(Dread(a + Pages(1), 1, 2), (DmirrorResult{1, 1, std::vector<uint8_t>(Pages(1), 0)}));
  EXPECT_TRUE(PtAt(a + Pages(1), 2).device);
  // Mirror 1's fault reaches it: its owner's callback migrates it back.
  EXPECT_EQ(Dread(a, 3), (DmirrorResult{3, 1, std::vector<uint8_t>(Pages(3), 0)}));
  EXPECT_EQ(k_.state().events,
            (std::vector<DeviceEvent>{{DeviceEvent::kFault, 2, pfn, pid_.value, a + Pages(1)},
                                      {DeviceEvent::kPageFree, 2, pfn, 0, 0}}));
  const Pte& pte = PteAt(pid_, a + Pages(1));
  EXPECT_EQ(PtAt(a + Pages(1)), (Pte{false, pte.page, true}));
  EXPECT_FALSE(InPt(a + Pages(1), 2));  // the owner's mirror lost its entry
}

TEST_F(DmirrorTest, DevicePageAllocZeroesItsData) {
  AddDeviceMemory();
  const uint64_t a = Map(1);
  const uint64_t pfn = DeviceEntryAt(1, a);
  ASSERT_TRUE(k_.DmirrorWrite(1, a, PagesOf(1, 9)).ok());
  ASSERT_EQ(k_.Munmap(pid_, a, Pages(1)), Errno::kOk);
  ASSERT_EQ(k_.DevicePagePut(pfn), Errno::kOk);
  EXPECT_EQ(k_.state().devmems.at(1).pages.at(pfn).data.At(0), 9);  // free, not yet reused
  ASSERT_EQ(k_.DevicePageAlloc(1).value, pfn);
  EXPECT_EQ(k_.state().devmems.at(1).pages.at(pfn).data, Page{});
  ASSERT_EQ(k_.DevicePagePut(pfn), Errno::kOk);
}

// --- SNAPSHOT ---

TEST_F(DmirrorTest, SnapshotBytes) {
  AddDeviceMemory();
  const uint64_t a = Map(7);
  ASSERT_EQ(Map(1, kProtNone), a + Pages(7));
  ASSERT_EQ(Map(1, kProtWrite), a + Pages(8));  // then a hole
  ASSERT_TRUE(k_.CpuRead(pid_, a + Pages(1), 1).ok());
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(2), PagesOf(2, 1)), Errno::kOk);
  ASSERT_TRUE(k_.Fork(pid_).ok());
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(2), Bytes("x")), Errno::kOk);
  DeviceEntryAt(1, a + Pages(4), /*write=*/true);
  DeviceEntryAt(1, a + Pages(5), /*write=*/false);
  DeviceEntryAt(2, a + Pages(6), /*write=*/true);
  const State before = k_.state();
  Result<DmirrorResult> r = k_.DmirrorSnapshot(1, a, 10);
  ASSERT_EQ(r.err, Errno::kOk);
  EXPECT_EQ(r.value.cpages, 10u);
  EXPECT_EQ(r.value.faults, 0u);
  EXPECT_EQ(r.value.data, (std::vector<uint8_t>{0x00, 0x11, 0x02, 0x01, 0x22, 0x21, 0x00, 0xff,
                                                0xff, 0xff}));
  EXPECT_EQ(k_.state(), before);
}

// --- The v18 commit ---

TEST_F(DmirrorTest, CommitInstallsValidReadEntriesOfThisDevice) {
  AddDeviceMemory();
  const uint64_t a = Map(6);
  ASSERT_TRUE(k_.CpuRead(pid_, a + Pages(1), 1).ok());
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(2), PagesOf(2, 1)), Errno::kOk);
  ASSERT_TRUE(k_.Fork(pid_).ok());
  ASSERT_EQ(k_.CpuWrite(pid_, a + Pages(2), Bytes("x")), Errno::kOk);
  const uint64_t local = DeviceEntryAt(1, a + Pages(4), /*write=*/false);
  DeviceEntryAt(2, a + Pages(5));
  const uint64_t range = Snap(a, 6);
  EXPECT_EQ(k_.DmirrorCommit(range).value, true);
  EXPECT_EQ(PtHolds(a, 6), (Holds{false, true, true, true, true, false}));
  EXPECT_EQ(PtAt(a + Pages(1)), (Pte{true, 0, false}));
  EXPECT_EQ(PtAt(a + Pages(2)), (Pte{false, PteAt(pid_, a + Pages(2)).page, true}));
  EXPECT_EQ(PtAt(a + Pages(3)), (Pte{false, PteAt(pid_, a + Pages(3)).page, false}));
  EXPECT_EQ(PtAt(a + Pages(4)), (Pte{false, 0, false, true, local}));
  EXPECT_TRUE(k_.state().ranges.empty());
  EXPECT_EQ(k_.DmirrorCommit(range).err, Errno::kNoEnt);
  EXPECT_EQ(k_.DmirrorCommit(99).err, Errno::kNoEnt);
}

TEST_F(DmirrorTest, CommitSkipsEntriesWithoutRead) {
  const uint64_t a = Map(2);
  const uint64_t w = Map(1, kProtWrite);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(2, 1)), Errno::kOk);
  ASSERT_EQ(k_.CpuWrite(pid_, w, PagesOf(1, 1)), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, a, Pages(2), kProtNone), Errno::kOk);
  EXPECT_EQ(k_.DmirrorCommit(Snap(a, 2)).value, true);
  EXPECT_EQ(k_.DmirrorCommit(Snap(w, 1)).value, true);
  EXPECT_TRUE(MirrorOf().pt.empty());
}

TEST_F(DmirrorTest, CommitOfInvalidatedRangeInstallsNothing) {
  const uint64_t a = Map(2);
  ASSERT_EQ(k_.CpuWrite(pid_, a, PagesOf(2, 1)), Errno::kOk);
  const uint64_t range = Snap(a, 2);
  ASSERT_EQ(k_.MadviseDontneed(pid_, a + Pages(1), Pages(1)), Errno::kOk);
  EXPECT_EQ(k_.DmirrorCommit(range).value, false);
  EXPECT_TRUE(MirrorOf().pt.empty());
  EXPECT_TRUE(k_.state().ranges.empty());
  // The driver's retry: a fresh snapshot, nothing in between, commits.
  EXPECT_EQ(k_.DmirrorCommit(Snap(a, 2)).value, true);
  EXPECT_EQ(PtHolds(a, 2), (Holds{true, false}));
}

}  // namespace
}  // namespace hmm::model
