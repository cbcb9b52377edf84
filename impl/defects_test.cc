// File: impl/defects_test.cc
//
// Each seeded defect is reachable and changes what an operation does; all
// but the harmless one also break the representation invariant. The property
// suites (props/defects_test.cc) must find them through the model; this test
// only proves the hooks are wired.

#include "impl/defects.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "impl/kernel.h"
#include "model/types.h"

namespace hmm::impl {
namespace {

constexpr uint32_t kRW = kProtRead | kProtWrite;

bool RepMentions(const Kernel& k, const std::string& name) {
  for (const std::string& line : k.RepInvariant()) {
    if (line.rfind(name, 0) == 0) return true;
  }
  return false;
}

class DefectsTest : public ::testing::Test {
 protected:
  void TearDown() override { SetSeededDefect(Defect::kNone); }
};

TEST_F(DefectsTest, NamesAreTheEnumerators) {
  EXPECT_STREQ(DefectName(Defect::kNone), "kNone");
  EXPECT_STREQ(DefectName(Defect::kForkCopiesSharedPtes), "kForkCopiesSharedPtes");
  EXPECT_FALSE(DefectActive(Defect::kCowNotBroken));
  SetSeededDefect(Defect::kCowNotBroken);
  EXPECT_TRUE(DefectActive(Defect::kCowNotBroken));
  EXPECT_FALSE(DefectActive(Defect::kNone));
}

TEST_F(DefectsTest, CowNotBrokenLeaksTheChildsWriteIntoTheParent) {
  SetSeededDefect(Defect::kCowNotBroken);
  Kernel k;
  Pid parent = k.CreateProcess().value;
  uint64_t a = k.Mmap(parent, 0, kPageSize, kRW, kMapPrivate).value;
  ASSERT_EQ(k.CpuWrite(parent, a, {1}), Errno::kOk);
  Pid child = k.Fork(parent).value;
  ASSERT_EQ(k.CpuWrite(child, a, {2}), Errno::kOk);
  EXPECT_EQ(k.CpuRead(parent, a, 1).value, std::vector<uint8_t>{2});
  EXPECT_TRUE(RepMentions(k, "InvWritablePrivatePageExclusive"));
}

TEST_F(DefectsTest, ZeroPageWrittenInPlaceDirtiesTheZeroPage) {
  SetSeededDefect(Defect::kZeroPageWrittenInPlace);
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = k.Mmap(p, 0, 2 * kPageSize, kRW, kMapPrivate).value;
  ASSERT_TRUE(k.CpuRead(p, a, 1).ok());
  ASSERT_EQ(k.CpuWrite(p, a, {3}), Errno::kOk);
  EXPECT_EQ(k.CpuRead(p, a + kPageSize, 1).value, std::vector<uint8_t>{3});
  EXPECT_TRUE(k.PagesInUse().empty());
  EXPECT_TRUE(RepMentions(k, "InvZeroPtePresentReadOnly"));
  EXPECT_TRUE(RepMentions(k, "InvZeroPageZeroed"));
}

TEST_F(DefectsTest, MunmapLeaksRefKeepsTheUnmappedPage) {
  SetSeededDefect(Defect::kMunmapLeaksRef);
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = k.Mmap(p, 0, kPageSize, kRW, kMapPrivate).value;
  ASSERT_EQ(k.CpuWrite(p, a, {4}), Errno::kOk);
  ASSERT_EQ(k.Munmap(p, a, kPageSize), Errno::kOk);
  EXPECT_EQ(k.PagesInUse().size(), 1u);
  EXPECT_TRUE(RepMentions(k, "InvPageRefcountMatchesHolders"));
}

TEST_F(DefectsTest, MprotectKeepsWriteLeavesWritablePtes) {
  SetSeededDefect(Defect::kMprotectKeepsWrite);
  Kernel k;
  Pid p = k.CreateProcess().value;
  uint64_t a = k.Mmap(p, 0, kPageSize, kRW, kMapPrivate).value;
  ASSERT_EQ(k.CpuWrite(p, a, {5}), Errno::kOk);
  ASSERT_EQ(k.Mprotect(p, a, kPageSize, kProtRead), Errno::kOk);
  EXPECT_TRUE(k.Ptes(p)[0].write);
  EXPECT_TRUE(RepMentions(k, "InvPteWriteImpliesVmaWrite"));
}

TEST_F(DefectsTest, ForkCopiesSharedPtesGivesTheChildPtes) {
  SetSeededDefect(Defect::kForkCopiesSharedPtes);
  Kernel k;
  Pid parent = k.CreateProcess().value;
  uint64_t s = k.Mmap(parent, 0, kPageSize, kRW, kMapShared).value;
  ASSERT_EQ(k.CpuWrite(parent, s, {6}), Errno::kOk);
  Pid child = k.Fork(parent).value;
  EXPECT_EQ(k.Ptes(child).size(), 1u);
  EXPECT_TRUE(k.RepInvariant().empty()) << "harmless to the representation";
}

TEST_F(DefectsTest, WithoutADefectTheSameStepsAreClean) {
  Kernel k;
  Pid parent = k.CreateProcess().value;
  uint64_t a = k.Mmap(parent, 0, kPageSize, kRW, kMapPrivate).value;
  ASSERT_EQ(k.CpuWrite(parent, a, {1}), Errno::kOk);
  Pid child = k.Fork(parent).value;
  ASSERT_EQ(k.CpuWrite(child, a, {2}), Errno::kOk);
  EXPECT_EQ(k.CpuRead(parent, a, 1).value, std::vector<uint8_t>{1});
  ASSERT_EQ(k.Mprotect(parent, a, kPageSize, kProtRead), Errno::kOk);
  ASSERT_EQ(k.Munmap(child, a, kPageSize), Errno::kOk);
  EXPECT_TRUE(k.RepInvariant().empty());
}

}  // namespace
}  // namespace hmm::impl
