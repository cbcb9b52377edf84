// File: model/linux61_test.cc
//
// The linux-6.1 profile's CPU-side rules (docs/divergences.md), each against
// the default profile where they differ: TASK_SIZE, mmap's flags and prot
// (D2, D3), mprotect's PROT_SEM and its partial effect (D4, D5), mremap
// without a VMA check when not growing (D6), shared memory that does not
// grow (D7), VMA merging (D16), fork's anon_vma rules (D17), mprotect's
// write upgrade and rewrite (D20, D21), and shmem fault-around (D22).

#include <vector>

#include "gtest/gtest.h"
#include "model/kernel.h"
#include "model/linux61_test_util.h"
#include "model/test_util.h"

namespace hmm::model {
namespace {

using Linux61CpuTest = Linux61Test;

// arch/x86/include/asm/page_64_types.h TASK_SIZE_MAX: 2^47 - 4096.
TEST_F(Linux61CpuTest, TaskSizeIsX86s) {
  constexpr uint64_t kTop = (uint64_t{1} << 47) - kPageSize;
  EXPECT_EQ(k_.Mmap(pid_, kTop - kPageSize, kPageSize, kRw, kMapPrivate | kMapFixed).err,
            Errno::kOk);
  EXPECT_EQ(k_.Mmap(pid_, kTop, kPageSize, kRw, kMapPrivate | kMapFixed).err, Errno::kNoMem);
  EXPECT_EQ(k_.Munmap(pid_, kTop, kPageSize), Errno::kInval);
  // An unaligned fixed address past it: ENOMEM before EINVAL (get_unmapped_area()).
  EXPECT_EQ(k_.Mmap(pid_, kTop + 8, kPageSize, kRw, kMapPrivate | kMapFixed).err, Errno::kNoMem);
}

// D2, D3: mm/mmap.c do_mmap() never checks prot, and checks MAP_TYPE last.
TEST_F(Linux61CpuTest, MmapTakesUnknownBitsAndExec) {
  EXPECT_EQ(k_.Mmap(pid_, kA, kPageSize, kRw, kMapPrivate | 0x100 | kMapFixed).err, Errno::kOk);
  EXPECT_EQ(k_.Mmap(pid_, kA + Pages(1), kPageSize, kProtExec, kMapPrivate | kMapFixed).err,
            Errno::kOk);
  // An executable page is readable on x86, not writable.
  EXPECT_EQ(k_.CpuRead(pid_, kA + Pages(1), 1).err, Errno::kOk);
  EXPECT_EQ(k_.CpuWrite(pid_, kA + Pages(1), Bytes("x")), Errno::kFault);
  // Neither shared nor private, or both (MAP_SHARED_VALIDATE): EINVAL, after the length.
  EXPECT_EQ(k_.Mmap(pid_, 0, kPageSize, kRw, 0).err, Errno::kInval);
  EXPECT_EQ(k_.Mmap(pid_, 0, 0, kRw, 0).err, Errno::kInval);
  EXPECT_EQ(k_.Mmap(pid_, 0, uint64_t{1} << 48, kRw, 0).err, Errno::kNoMem);
  EXPECT_EQ(k_.Mmap(pid_, 0, kPageSize, kRw, kMapShared | kMapPrivate).err, Errno::kInval);
  // MAP_SHARED with MAP_GROWSDOWN (0x100).
  EXPECT_EQ(k_.Mmap(pid_, 0, kPageSize, kRw, kMapShared | 0x100).err, Errno::kInval);
}

// D4: arch_validate_prot() takes PROT_EXEC and PROT_SEM; PROT_SEM is kept nowhere.
TEST_F(Linux61CpuTest, MprotectTakesExecAndSem) {
  MapAt(kA, 2);
  EXPECT_EQ(k_.Mprotect(pid_, kA, Pages(1), kProtSem), Errno::kOk);
  EXPECT_EQ(Proc(pid_).vmas.at(AddrToVpn(kA)).prot, kProtNone);
  EXPECT_EQ(k_.Mprotect(pid_, kA, Pages(1), kProtExec), Errno::kOk);
  EXPECT_EQ(Proc(pid_).vmas.at(AddrToVpn(kA)).prot, kProtExec);
  EXPECT_EQ(k_.Mprotect(pid_, kA, Pages(1), 0x10), Errno::kInval);
}

// D5: do_mprotect_pkey() changes each VMA before it finds the hole.
TEST_F(Linux61CpuTest, MprotectAppliesUpToTheHole) {
  MapAt(kA, 1);
  MapAt(kA + Pages(2), 1);
  EXPECT_EQ(k_.Mprotect(pid_, kA, Pages(3), kProtRead), Errno::kNoMem);
  EXPECT_EQ(k_.CpuWrite(pid_, kA, Bytes("x")), Errno::kFault);             // changed
  EXPECT_EQ(k_.CpuWrite(pid_, kA + Pages(2), Bytes("x")), Errno::kOk);     // untouched
  // A hole at the start changes nothing.
  EXPECT_EQ(k_.Mprotect(pid_, kA + Pages(1), Pages(2), kProtNone), Errno::kNoMem);
  EXPECT_EQ(k_.CpuWrite(pid_, kA + Pages(2), Bytes("y")), Errno::kOk);
}

// D6: mremap() allows a shrinking remap before looking at the range.
TEST_F(Linux61CpuTest, MremapNotGrowingChecksOnlyTheFirstVma) {
  MapAt(kA, 2);
  MapAt(kA + Pages(2), 2, kProtRead);
  EXPECT_EQ(k_.Mremap(pid_, kA, Pages(3), Pages(3), kMremapMaymove, 0).value, kA);
  EXPECT_EQ(k_.Mremap(pid_, kA, Pages(4), Pages(1), 0, 0).value, kA);
  EXPECT_EQ(k_.CpuRead(pid_, kA + Pages(2), 1).err, Errno::kFault);  // unmapped
  // Growing checks the old range (vma_to_resize()), and a VMA at old_addr first.
  MapAt(kA + Pages(1), 1, kProtRead);
  EXPECT_EQ(k_.Mremap(pid_, kA, Pages(2), Pages(4), kMremapMaymove, 0).err, Errno::kFault);
  EXPECT_EQ(k_.Mremap(pid_, kA + Pages(8), Pages(1), Pages(1), 0, 0).err, Errno::kFault);
}

// D6: old_len 0 duplicates a shared mapping, and is EINVAL for a private one.
TEST_F(Linux61CpuTest, MremapOldLenZeroDuplicatesShared) {
  MapAt(kA, 1, kRw, kMapShared);
  ASSERT_EQ(k_.CpuWrite(pid_, kA, Bytes("dup")), Errno::kOk);
  Result<uint64_t> dup = k_.Mremap(pid_, kA, 0, Pages(1), kMremapMaymove, 0);
  ASSERT_EQ(dup.err, Errno::kOk);
  EXPECT_EQ(k_.CpuRead(pid_, dup.value, 3).value, Bytes("dup"));
  MapAt(kA + Pages(4), 1);
  EXPECT_EQ(k_.Mremap(pid_, kA + Pages(4), 0, Pages(1), kMremapMaymove, 0).err, Errno::kInval);
}

// D7: shmem_zero_setup() sizes the file once; a page past it is SIGBUS.
TEST_F(Linux61CpuTest, SharedMemoryDoesNotGrowWithItsVma) {
  MapAt(kA, 1, kRw, kMapShared);
  ASSERT_EQ(k_.Mremap(pid_, kA, Pages(1), Pages(2), 0, 0).value, kA);
  EXPECT_EQ(k_.CpuWrite(pid_, kA, Bytes("in")), Errno::kOk);
  EXPECT_EQ(k_.CpuWrite(pid_, kA + Pages(1), Bytes("past")), Errno::kFault);
  EXPECT_EQ(k_.CpuRead(pid_, kA + Pages(1), 1).err, Errno::kFault);
}

// D16: vma_merge() joins a new mapping, and an mprotect that restores the
// flags, with a compatible neighbour; an unchanged mprotect splits nothing.
TEST_F(Linux61CpuTest, CompatibleNeighboursMerge) {
  MapAt(kA, 2);
  MapAt(kA + Pages(2), 2);
  EXPECT_EQ(Proc(pid_).vmas.size(), 1u);
  ASSERT_EQ(k_.Mprotect(pid_, kA + Pages(1), Pages(1), kProtRead), Errno::kOk);
  EXPECT_EQ(Proc(pid_).vmas.size(), 3u);
  ASSERT_EQ(k_.Mprotect(pid_, kA + Pages(1), Pages(1), kRw), Errno::kOk);
  EXPECT_EQ(Proc(pid_).vmas.size(), 1u);
  ASSERT_EQ(k_.Mprotect(pid_, kA + Pages(1), Pages(1), kRw), Errno::kOk);
  EXPECT_EQ(Proc(pid_).vmas.size(), 1u);
  // VM_ACCOUNT stays once a private mapping was writable: a read-only
  // mapping does not merge with a read-only one that was writable.
  MapAt(kA + Pages(8), 1);
  ASSERT_EQ(k_.Mprotect(pid_, kA + Pages(8), Pages(1), kProtRead), Errno::kOk);
  MapAt(kA + Pages(9), 1, kProtRead);
  EXPECT_EQ(Proc(pid_).vmas.size(), 3u);
}

// D16: a new mapping merges with next first, then with prev only if prev's
// anon_vma may merge with next's (__mmap_region()).
TEST_F(Linux61CpuTest, ANewMappingMergesWithNextFirst) {
  MapAt(kA, 16);
  MapAt(kA + Pages(1), 2, kProtSem);  // no access, no VM_ACCOUNT: three VMAs
  ASSERT_EQ(k_.CpuWrite(pid_, kA + Pages(5), Bytes("x")), Errno::kOk);  // [3,16) has an anon_vma
  MapAt(kA + Pages(1), 2);
  EXPECT_EQ(Proc(pid_).vmas.size(), 2u);
  EXPECT_EQ(Proc(pid_).vmas.at(AddrToVpn(kA)).end, AddrToVpn(kA + Pages(1)));
}

// D16: copy_vma() gives an anonymous VMA never faulted in its new place's
// pgoff, so a moved VMA merges with its new neighbour.
TEST_F(Linux61CpuTest, AMovedUnfaultedVmaMerges) {
  MapAt(kA, 16);
  ASSERT_EQ(k_.Mremap(pid_, kA + Pages(2), Pages(2), Pages(1), kMremapMaymove | kMremapFixed,
                      kA + Pages(1)).value, kA + Pages(1));
  EXPECT_EQ(Proc(pid_).vmas.at(AddrToVpn(kA)).end, AddrToVpn(kA + Pages(2)));
  EXPECT_EQ(k_.Mremap(pid_, kA, Pages(2), uint64_t{1} << 47, 0, 0).err, Errno::kNoMem);
}

// D17: copy_page_range() copies nothing of, and notifies nothing for, a
// private VMA without an anon_vma (only the zero page was ever mapped).
TEST_F(Linux61CpuTest, ForkSkipsAVmaWithoutAnonVma) {
  MapAt(kA, 1);
  MapAt(kA + Pages(4), 1);
  ASSERT_EQ(k_.CpuRead(pid_, kA, 1).err, Errno::kOk);               // zero page only
  ASSERT_EQ(k_.CpuWrite(pid_, kA + Pages(4), Bytes("w")), Errno::kOk);  // an anon page
  ASSERT_EQ(Dread(kA, 1).value.faults, 1u);
  ASSERT_EQ(Dread(kA + Pages(4), 1).value.faults, 1u);
  const Pid child = k_.Fork(pid_).value;
  EXPECT_TRUE(InPt(kA));                  // not notified
  EXPECT_FALSE(InPt(kA + Pages(4)));      // notified
  EXPECT_EQ(Proc(child).ptes.count(AddrToVpn(kA)), 0u);
  EXPECT_EQ(Proc(child).ptes.count(AddrToVpn(kA + Pages(4))), 1u);
}

// D20: can_change_pte_writable(): mprotect() makes a dirty PTE of an
// exclusive anonymous page writable at once; not the zero page's, not one a
// fork shared (even after the child exited).
TEST_F(Linux61CpuTest, MprotectMakesExclusiveDirtyPtesWritable) {
  MapAt(kA, 2);
  ASSERT_EQ(k_.CpuWrite(pid_, kA, Bytes("a")), Errno::kOk);
  ASSERT_EQ(k_.CpuRead(pid_, kA + Pages(1), 1).err, Errno::kOk);  // the zero page
  ASSERT_EQ(k_.Mprotect(pid_, kA, Pages(2), kProtRead), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, kA, Pages(2), kRw), Errno::kOk);
  EXPECT_TRUE(Proc(pid_).ptes.at(AddrToVpn(kA)).write);
  EXPECT_FALSE(Proc(pid_).ptes.at(AddrToVpn(kA + Pages(1))).write);
  const Pid child = k_.Fork(pid_).value;
  ASSERT_EQ(k_.Exit(child), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, kA, Pages(1), kProtRead), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, kA, Pages(1), kRw), Errno::kOk);
  EXPECT_FALSE(Proc(pid_).ptes.at(AddrToVpn(kA)).write);
}

// D21: change_pte_range() rewrites a private entry read-only unless
// can_change_pte_writable(): a clean writable entry (migrated back from the
// device) and a device-private entry lose write even when prot keeps it.
TEST_F(Linux61CpuTest, MprotectRewritesPrivateEntries) {
  MapAt(kA, 2);
  ASSERT_EQ(k_.DmirrorMigrateToDev(1, kA, 2).err, Errno::kOk);
  ASSERT_EQ(k_.DmirrorMigrateToSys(1, kA + Pages(1), 1).err, Errno::kOk);
  ASSERT_TRUE(Proc(pid_).ptes.at(AddrToVpn(kA + Pages(1))).write);  // clean
  ASSERT_EQ(k_.Mprotect(pid_, kA, Pages(2), kProtWrite), Errno::kOk);
  ASSERT_EQ(k_.Mprotect(pid_, kA, Pages(2), kRw), Errno::kOk);
  EXPECT_FALSE(Proc(pid_).ptes.at(AddrToVpn(kA)).write);             // device entry
  EXPECT_FALSE(Proc(pid_).ptes.at(AddrToVpn(kA + Pages(1))).write);  // clean page
}

// D22: do_fault_around(): a shmem read fault maps the object's pages around it.
TEST_F(Linux61CpuTest, ShmemReadFaultMapsItsNeighbours) {
  MapAt(kA, 2, kRw, kMapShared);
  ASSERT_EQ(k_.CpuWrite(pid_, kA + Pages(1), Bytes("b")), Errno::kOk);
  ASSERT_EQ(k_.MadviseDontneed(pid_, kA + Pages(1), Pages(1)), Errno::kOk);
  ASSERT_EQ(k_.CpuRead(pid_, kA, 1).err, Errno::kOk);
  EXPECT_EQ(Proc(pid_).ptes.count(AddrToVpn(kA + Pages(1))), 1u);
  EXPECT_TRUE(Proc(pid_).ptes.at(AddrToVpn(kA + Pages(1))).write);
}

// The default profile keeps its own rules on the same calls.
TEST(Linux61Contrast, DefaultProfileKeepsItsRules) {
  Kernel k;
  const Pid pid = k.CreateProcess().value;
  EXPECT_EQ(k.Mmap(pid, 0, kPageSize, kRw, kMapPrivate | 0x100).err, Errno::kInval);
  ASSERT_EQ(k.Mmap(pid, kMmapBase, Pages(1), kRw, kMapPrivate | kMapFixed).err, Errno::kOk);
  EXPECT_EQ(k.Mprotect(pid, kMmapBase, Pages(1), kProtSem), Errno::kInval);
  EXPECT_EQ(k.Mprotect(pid, kMmapBase, Pages(2), kProtRead), Errno::kNoMem);
  EXPECT_EQ(k.CpuWrite(pid, kMmapBase, Bytes("x")), Errno::kOk);  // all or nothing
  EXPECT_EQ(k.HmmMirrorRegister(DeviceId(4), pid).err, Errno::kInval);
  EXPECT_TRUE(k.splats().empty());
}

}  // namespace
}  // namespace hmm::model
