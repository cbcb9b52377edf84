// File: model/fault_test.cc
//
// The fault paths of model::Kernel and what depends on them: CpuRead,
// CpuWrite, PinUserPages, Fork (copy-on-write, pinned pages), RAM exhaustion,
// Page contents and Canonicalize; ends with a pseudo-random run that checks
// every invariant after every step.

#include <iterator>
#include <random>

#include "gtest/gtest.h"
#include "model/kernel.h"
#include "model/test_util.h"

namespace hmm::model {
namespace {

const Pid kNoPid(99);

// --- CpuRead, CpuWrite ---

using CpuAccessTest = ModelTest;

TEST_F(CpuAccessTest, ReadArgumentRungs) {
  EXPECT_EQ(k_.CpuRead(kNoPid, kMmapBase, 1).err, Errno::kSrch);
  EXPECT_EQ(k_.CpuRead(pid_, kMmapBase, 0).err, Errno::kInval);
  EXPECT_EQ(k_.CpuRead(pid_, kMmapBase, kMaxAccess + 1).err, Errno::kInval);
  EXPECT_EQ(k_.CpuRead(pid_, kTaskSize - 1, 2).err, Errno::kFault);
  EXPECT_EQ(k_.CpuRead(pid_, UINT64_MAX, 2).err, Errno::kFault);
}

TEST_F(CpuAccessTest, WriteArgumentRungs) {
  EXPECT_EQ(k_.CpuWrite(kNoPid, kMmapBase, Bytes("x")), Errno::kSrch);
  EXPECT_EQ(k_.CpuWrite(pid_, kMmapBase, {}), Errno::kInval);
  EXPECT_EQ(k_.CpuWrite(pid_, kMmapBase, std::vector<uint8_t>(kMaxAccess + 1)), Errno::kInval);
  EXPECT_EQ(k_.CpuWrite(pid_, kTaskSize - 1, Bytes("xy")), Errno::kFault);
}

TEST_F(CpuAccessTest, NoVmaOrNoPermissionIsFault) {
  const uint64_t none = Map(1, kProtNone);
  const uint64_t ro = Map(1, kProtRead);
  const uint64_t wo = Map(1, kProtWrite);
  EXPECT_EQ(k_.CpuRead(pid_, kMmapBase + Pages(10), 1).err, Errno::kFault);
  EXPECT_EQ(k_.CpuRead(pid_, none, 1).err, Errno::kFault);
  EXPECT_EQ(k_.CpuWrite(pid_, ro, Bytes("x")), Errno::kFault);
  EXPECT_EQ(Read(pid_, wo, 1), std::string(1, '\0'));  // x86: write implies read
}

TEST_F(CpuAccessTest, PrivateReadMapsZeroPageWithoutAllocating) {
  const uint64_t a = Map(1);
  EXPECT_EQ(Read(pid_, a, 3), std::string(3, '\0'));
  EXPECT_TRUE(PteAt(pid_, a).zero);
  EXPECT_FALSE(PteAt(pid_, a).write);
  EXPECT_TRUE(k_.state().pages.empty());
}

TEST_F(CpuAccessTest, WriteOnZeroPageCopiesIntoNewPage) {
  const uint64_t a = Map(1);
  Read(pid_, a, 1);
  ASSERT_EQ(k_.CpuWrite(pid_, a + 10, Bytes("hi")), Errno::kOk);
  EXPECT_FALSE(PteAt(pid_, a).zero);
  EXPECT_TRUE(PteAt(pid_, a).write);
  EXPECT_EQ(Read(pid_, a + 9, 4), std::string("\0hi\0", 4));
}

TEST_F(CpuAccessTest, WriteAcrossPagesIntoHoleKeepsEarlierPages) {
  const uint64_t a = Map(1);
  EXPECT_EQ(k_.CpuWrite(pid_, a + Pages(1) - 2, Bytes("abcd")), Errno::kFault);
  EXPECT_EQ(Read(pid_, a + Pages(1) - 2, 2), "ab");
}

TEST_F(CpuAccessTest, SharedReadFaultIsWritableIffVmaIs) {
  const uint64_t rw = Map(1, kRw, kMapShared);
  const uint64_t ro = Map(1, kProtRead, kMapShared);
  Read(pid_, rw, 1);
  Read(pid_, ro, 1);
  EXPECT_TRUE(PteAt(pid_, rw).write);
  EXPECT_FALSE(PteAt(pid_, ro).write);
  EXPECT_EQ(k_.state().pages.size(), 2u);  // shmem allocates on the first read
}

// --- RAM ---

TEST(RamTest, AllocationBeyondRamIsNoMemAfterEarlierPages) {
  Kernel k(/*ram_pages=*/2);
  const Pid pid = k.CreateProcess().value;
  const uint64_t a = k.Mmap(pid, 0, Pages(3), kRw, kMapPrivate).value;
  EXPECT_EQ(k.CpuWrite(pid, a, std::vector<uint8_t>(Pages(3), 9)), Errno::kNoMem);
  EXPECT_EQ(k.state().pages.size(), 2u);
  EXPECT_EQ(k.CpuRead(pid, a + Pages(1), 1).value, std::vector<uint8_t>{9});
  EXPECT_EQ(k.state().procs.at(pid).ptes.count(AddrToVpn(a + Pages(2))), 0u);
  ExpectInvariantsHold(k);
}

TEST(RamTest, SharedReadFaultWithRamFullIsNoMem) {
  Kernel k(/*ram_pages=*/1);
  const Pid pid = k.CreateProcess().value;
  const uint64_t a = k.Mmap(pid, 0, Pages(2), kRw, kMapShared).value;
  EXPECT_EQ(k.CpuRead(pid, a, Pages(2)).err, Errno::kNoMem);
  EXPECT_EQ(k.state().pages.size(), 1u);
  ExpectInvariantsHold(k);
}

// --- Fork ---

using ForkTest = ModelTest;

TEST_F(ForkTest, GuardRungs) {
  EXPECT_EQ(k_.Fork(kNoPid).err, Errno::kSrch);
  for (uint64_t i = 1; i < kMaxProcesses; ++i) ASSERT_TRUE(k_.CreateProcess().ok());
  EXPECT_EQ(k_.Fork(pid_).err, Errno::kAgain);
}

TEST_F(ForkTest, PrivatePagesAreSharedReadOnlyUntilWritten) {
  const uint64_t a = Map(1);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("parent")), Errno::kOk);
  const Pid child = k_.Fork(pid_).value;
  EXPECT_EQ(PteAt(child, a), PteAt(pid_, a));
  EXPECT_FALSE(PteAt(pid_, a).write);
  ASSERT_EQ(k_.CpuWrite(child, a, Bytes("child!")), Errno::kOk);  // COW break
  EXPECT_NE(PteAt(child, a).page, PteAt(pid_, a).page);
  EXPECT_EQ(Read(pid_, a, 6), "parent");
  EXPECT_EQ(Read(child, a, 6), "child!");
}

TEST_F(ForkTest, LastMapperReusesPageOnWrite) {
  const uint64_t a = Map(1);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("x")), Errno::kOk);
  const PageId page = PteAt(pid_, a).page;
  const Pid child = k_.Fork(pid_).value;
  ASSERT_EQ(k_.Exit(child), Errno::kOk);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("y")), Errno::kOk);
  EXPECT_EQ(PteAt(pid_, a).page, page);  // wp_page_reuse(): no copy
  EXPECT_TRUE(PteAt(pid_, a).write);
}

TEST_F(ForkTest, ZeroPageIsCopiedAsIs) {
  const uint64_t a = Map(1);
  Read(pid_, a, 1);
  const Pid child = k_.Fork(pid_).value;
  EXPECT_TRUE(PteAt(child, a).zero);
}

TEST_F(ForkTest, SharedMappingSeenByParentAndChild) {
  const uint64_t a = Map(1, kRw, kMapShared);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("one")), Errno::kOk);
  const Pid child = k_.Fork(pid_).value;
  EXPECT_TRUE(Proc(child).ptes.empty());  // faulted in on demand
  ASSERT_EQ(k_.CpuWrite(child, a, Bytes("two")), Errno::kOk);
  EXPECT_EQ(Read(pid_, a, 3), "two");
  EXPECT_EQ(PteAt(child, a).page, PteAt(pid_, a).page);
}

TEST_F(ForkTest, PinnedPageIsCopiedForChild) {
  const uint64_t a = Map(1);
  const PinId pin = k_.PinUserPages(pid_, a, 1).value;
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("dma")), Errno::kOk);
  const Pid child = k_.Fork(pid_).value;
  EXPECT_NE(PteAt(child, a).page, PteAt(pid_, a).page);
  EXPECT_TRUE(PteAt(child, a).write);
  EXPECT_TRUE(PteAt(pid_, a).write);  // unchanged: the pin keeps seeing parent writes
  EXPECT_EQ(k_.state().pins.at(pin).front(), PteAt(pid_, a).page);
  EXPECT_EQ(Read(child, a, 3), "dma");
}

TEST(ForkRamTest, NoMemUndoesTheWholeFork) {
  Kernel k(/*ram_pages=*/2);
  const Pid pid = k.CreateProcess().value;
  const uint64_t a = k.Mmap(pid, 0, Pages(2), kRw, kMapPrivate).value;
  ASSERT_TRUE(k.PinUserPages(pid, a, 2).ok());
  const State before = k.state();
  EXPECT_EQ(k.Fork(pid).err, Errno::kNoMem);
  EXPECT_EQ(k.state(), before);
  ExpectInvariantsHold(k);
}

// --- PinUserPages ---

using PinTest = ModelTest;

TEST_F(PinTest, ArgumentRungs) {
  EXPECT_EQ(k_.PinUserPages(kNoPid, kMmapBase, 1).err, Errno::kSrch);
  EXPECT_EQ(k_.PinUserPages(pid_, kMmapBase + 1, 1).err, Errno::kInval);
  EXPECT_EQ(k_.PinUserPages(pid_, kMmapBase, 0).err, Errno::kInval);
  EXPECT_EQ(k_.PinUserPages(pid_, kMmapBase, kMaxPinPages + 1).err, Errno::kInval);
  EXPECT_EQ(k_.PinUserPages(pid_, kTaskSize - Pages(1), 2).err, Errno::kFault);
}

TEST_F(PinTest, NoVmaOrReadOnlyIsFault) {
  const uint64_t ro = Map(1, kProtRead);
  EXPECT_EQ(k_.PinUserPages(pid_, kMmapBase + Pages(5), 1).err, Errno::kFault);
  EXPECT_EQ(k_.PinUserPages(pid_, ro, 1).err, Errno::kFault);
}

TEST_F(PinTest, BreaksCowSoThePageIsExclusive) {
  const uint64_t a = Map(1);
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("x")), Errno::kOk);
  const Pid child = k_.Fork(pid_).value;
  const PinId pin = k_.PinUserPages(pid_, a, 1).value;
  EXPECT_TRUE(PteAt(pid_, a).write);
  EXPECT_NE(PteAt(pid_, a).page, PteAt(child, a).page);
  EXPECT_EQ(k_.state().pins.at(pin), std::vector<PageId>{PteAt(pid_, a).page});
}

TEST_F(PinTest, PageOutlivesMunmapUntilUnpinned) {
  const uint64_t a = Map(1);
  const PinId pin = k_.PinUserPages(pid_, a, 1).value;
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("pinned")), Errno::kOk);
  ASSERT_EQ(k_.Munmap(pid_, a, Pages(1)), Errno::kOk);
  ASSERT_EQ(k_.state().pages.size(), 1u);
  EXPECT_EQ(k_.state().pages.begin()->second.At(0), 'p');
  ASSERT_EQ(k_.UnpinUserPages(pin), Errno::kOk);
  EXPECT_TRUE(k_.state().pages.empty());
}

TEST_F(PinTest, FailurePartWayDropsPinsKeepsFaults) {
  const uint64_t a = Map(1);
  const uint64_t next_pin = k_.state().next_pin;
  EXPECT_EQ(k_.PinUserPages(pid_, a, 2).err, Errno::kFault);
  EXPECT_TRUE(k_.state().pins.empty());
  EXPECT_EQ(k_.state().next_pin, next_pin);
  EXPECT_TRUE(PteAt(pid_, a).write);  // the first page stays faulted in
}

TEST_F(PinTest, SharedPageStaysSharedWhenPinned) {
  const uint64_t a = Map(1, kRw, kMapShared);
  const Pid child = k_.Fork(pid_).value;
  ASSERT_TRUE(k_.PinUserPages(child, a, 1).ok());
  ASSERT_EQ(k_.CpuWrite(pid_, a, Bytes("s")), Errno::kOk);
  EXPECT_EQ(PteAt(child, a).page, PteAt(pid_, a).page);
}

// --- Page, Canonicalize ---

TEST(PageTest, SetZeroErasesTheByte) {
  model::Page p;
  p.Set(5, 1);
  EXPECT_EQ(p.At(5), 1);
  p.Set(5, 0);
  EXPECT_TRUE(p.bytes.empty());
  EXPECT_EQ(p, model::Page{});
}

TEST(CanonicalizeTest, StatesEqualUpToRenamingCompareEqual) {
  Kernel x;
  Kernel y;
  for (Kernel* k : {&x, &y}) {
    const Pid pid = k->CreateProcess().value;
    ASSERT_EQ(k->Mmap(pid, 0, Pages(2), kRw, kMapShared).value, kMmapBase);
  }
  // x allocates the first page first, y the second: ids differ.
  ASSERT_EQ(x.CpuWrite(Pid(1), kMmapBase, Bytes("a")), Errno::kOk);
  ASSERT_EQ(x.CpuWrite(Pid(1), kMmapBase + Pages(1), Bytes("b")), Errno::kOk);
  ASSERT_EQ(y.CpuWrite(Pid(1), kMmapBase + Pages(1), Bytes("b")), Errno::kOk);
  ASSERT_EQ(y.CpuWrite(Pid(1), kMmapBase, Bytes("a")), Errno::kOk);
  EXPECT_FALSE(x.state() == y.state());
  EXPECT_EQ(Canonicalize(x.state()), Canonicalize(y.state()));
}

TEST(CanonicalizeTest, DifferentContentsStayDifferent) {
  Kernel x;
  Kernel y;
  for (Kernel* k : {&x, &y}) {
    const Pid pid = k->CreateProcess().value;
    ASSERT_TRUE(k->Mmap(pid, 0, Pages(1), kRw, kMapPrivate).ok());
  }
  ASSERT_EQ(x.CpuWrite(Pid(1), kMmapBase, Bytes("a")), Errno::kOk);
  ASSERT_EQ(y.CpuWrite(Pid(1), kMmapBase, Bytes("b")), Errno::kOk);
  EXPECT_FALSE(Canonicalize(x.state()) == Canonicalize(y.state()));
}

TEST(CanonicalizeTest, ResetsPageAndObjectCountersOnly) {
  Kernel k;
  const Pid pid = k.CreateProcess().value;
  const uint64_t a = k.Mmap(pid, 0, Pages(4), kRw, kMapShared).value;
  ASSERT_EQ(k.CpuWrite(pid, a, std::vector<uint8_t>(Pages(4), 1)), Errno::kOk);
  ASSERT_EQ(k.Munmap(pid, a, Pages(3)), Errno::kOk);
  ASSERT_TRUE(k.PinUserPages(pid, a + Pages(3), 1).ok());
  const State c = Canonicalize(k.state());
  EXPECT_EQ(c.next_page, 5u);  // the object keeps all four pages
  EXPECT_EQ(c.next_object, 2u);
  EXPECT_EQ(c.next_pid, k.state().next_pid);
  EXPECT_EQ(c.next_pin, k.state().next_pin);
  EXPECT_EQ(c.pins.begin()->second, std::vector<PageId>{1});  // first in pid 1's PTEs
  EXPECT_EQ(Canonicalize(c), c);
}

// --- Every invariant after every step of a pseudo-random run ---

// One pseudo-random operation on a small window of the address space, with
// lengths that are sometimes unaligned and a few live processes, so that
// guards, splits, COW, pins and RAM exhaustion all happen within a few
// thousand steps. A flat switch, one operation per line.
void RandomStep(Kernel& k, std::mt19937_64& rng) {
  auto pick = [&rng](uint64_t n) { return rng() % n; };
  const auto& procs = k.state().procs;
  const size_t n = procs.size();
  const Pid pid = n == 0 ? Pid(1) : std::next(procs.begin(), pick(n))->first;
  const uint64_t addr = kMmapBase + Pages(pick(12));
  const uint64_t len = Pages(1 + pick(4)) - (pick(4) == 0 ? 100 : 0);
  const uint32_t kind = pick(2) ? kMapShared : kMapPrivate;
  const uint32_t flags = kind | (pick(2) ? uint32_t{kMapFixed} : 0u);
  const uint64_t dst = kMmapBase + Pages(pick(16));
  const std::vector<uint8_t> bytes(len, static_cast<uint8_t>(1 + pick(2)));
  // clang-format off
  switch (pick(16)) {
    case 0: (void)(n < 3 ? k.CreateProcess().err : k.Munmap(pid, addr, len)); break;
    case 1: (void)k.Mmap(pid, addr, len, pick(4), flags); break;
    case 2: (void)k.Mmap(pid, addr, len, kRw, kind); break;
    case 3: (void)k.Munmap(pid, addr, len); break;
    case 4: (void)k.Mprotect(pid, addr, len, pick(4)); break;
    case 5: (void)k.Mremap(pid, addr, len, Pages(1 + pick(4)), pick(4), dst); break;
    case 6: (void)(n < 6 ? k.Fork(pid).err : k.Exit(pid)); break;
    case 7: (void)k.MadviseDontneed(pid, addr, len); break;
    case 8: case 9: (void)k.CpuRead(pid, addr + pick(kPageSize), len); break;
    case 10: case 11: (void)k.CpuWrite(pid, addr + pick(kPageSize), bytes); break;
    case 12: (void)k.PinUserPages(pid, addr, 1 + pick(3)); break;
    case 13: (void)k.UnpinUserPages(PinId(1 + pick(k.state().next_pin))); break;
    case 14: (void)(n > 3 ? k.Exit(pid) : k.Fork(pid).err); break;
    default: (void)k.Mmap(pid, addr, len, kRw, kind); break;
  }
  // clang-format on
}

TEST(RandomRunTest, EveryStepKeepsEveryInvariant) {
  std::mt19937_64 rng(12345);
  Kernel k(/*ram_pages=*/24);
  for (int step = 0; step < 5000; ++step) {
    RandomStep(k, rng);
    ASSERT_EQ(CheckAllInvariants(k.state(), k.ram_pages()), std::vector<std::string>{})
        << "after step " << step;
  }
  EXPECT_FALSE(k.state().pages.empty());
}

}  // namespace
}  // namespace hmm::model
