// File: props/migrate_checks_test.cc
//
// The transition properties of migration (props/migrate_checks.h) on
// hand-built model states: a correct migration passes every property, and
// each property fails on a transition broken the way it forbids (and only
// that property, where the breakage touches nothing else).

#include "props/migrate_checks.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace hmm::props {
namespace {

constexpr uint64_t kVpn = kMmapBase >> kPageShift;
constexpr uint64_t kPfn = 0x100000;

model::Pte PagePte(model::PageId page, bool write) {
  model::Pte pte;
  pte.page = page;
  pte.write = write;
  return pte;
}

model::Pte ZeroPte() {
  model::Pte pte;
  pte.zero = true;
  return pte;
}

model::Pte DevicePte(uint64_t pfn, bool write) {
  model::Pte pte;
  pte.device = true;
  pte.device_pfn = pfn;
  pte.write = write;
  return pte;
}

model::Page Bytes(uint8_t first) {
  model::Page page;
  page.Set(0, first);
  return page;
}

// Process 1 maps 4 pages rw private: page#1 (writable, "a"), the zero page,
// page#2 (read-only, "b", also mapped by process 2 after a fork), no entry.
// Device 0 has a devmem of 16 pages at kPfn, none allocated.
model::State Before() {
  model::State s;
  for (uint64_t pid : {1, 2}) {
    model::Process& p = s.procs[Pid(pid)];
    p.vmas[Vpn(kVpn)] = model::Vma{Vpn(kVpn), Vpn(kVpn + 4), kProtRead | kProtWrite, false, 0, 0};
    p.ptes[Vpn(kVpn + 2)] = PagePte(2, false);
  }
  model::Process& p1 = s.procs[Pid(1)];
  p1.ptes[Vpn(kVpn)] = PagePte(1, true);
  p1.ptes[Vpn(kVpn + 1)] = ZeroPte();
  s.pages[1] = Bytes('a');
  s.pages[2] = Bytes('b');
  model::Devmem& d = s.devmems[1];
  d.device = DeviceId(0);
  d.first_pfn = kPfn;
  d.npages = 16;
  s.next_page = 3;
  return s;
}

void AllocDevice(model::State* s, uint64_t pfn, const model::Page& data) {
  model::DevicePage& page = s->devmems[1].pages[pfn];
  ++page.allocations;
  page.data = data;
}

// migrate_to_dev of process 1's 4 pages done right: page#1 -> kPfn (w),
// the zero page -> kPfn+1 (an empty slot: writable, the VMA is), page#2 ->
// kPfn+2 at both its mappings (r), the hole -> kPfn+3 (w).
model::State After() {
  model::State s = Before();
  model::Process& p1 = s.procs[Pid(1)];
  p1.ptes[Vpn(kVpn)] = DevicePte(kPfn, true);
  p1.ptes[Vpn(kVpn + 1)] = DevicePte(kPfn + 1, true);
  p1.ptes[Vpn(kVpn + 2)] = DevicePte(kPfn + 2, false);
  p1.ptes[Vpn(kVpn + 3)] = DevicePte(kPfn + 3, true);
  s.procs[Pid(2)].ptes[Vpn(kVpn + 2)] = DevicePte(kPfn + 2, false);
  AllocDevice(&s, kPfn, Bytes('a'));
  AllocDevice(&s, kPfn + 1, model::Page{});
  AllocDevice(&s, kPfn + 2, Bytes('b'));
  AllocDevice(&s, kPfn + 3, model::Page{});
  s.pages.clear();
  return s;
}

Op MigrateOp() {
  Op op;
  op.kind = OpKind::kMigrateToDev;
  op.mirror = 1;
  op.addr = kMmapBase;
  op.len = 4;
  return op;
}

// The names of the properties `after` breaks.
std::set<std::string> Broken(const model::State& before, const model::State& after,
                             const Op& op = MigrateOp()) {
  std::set<std::string> names;
  for (const std::string& line : CheckMigrationStep(op, before, after)) {
    names.insert(line.substr(0, line.find(':')));
  }
  return names;
}

using Names = std::set<std::string>;

TEST(MigrateChecks, ACorrectMigrationAndItsReverseHoldEveryProperty) {
  EXPECT_EQ(CheckMigrationStep(MigrateOp(), Before(), After()), Violations{});
  // Back to new system pages (page#3..#6), the data copied.
  model::State back = After();
  back.procs[Pid(1)].ptes[Vpn(kVpn)] = PagePte(3, true);
  back.procs[Pid(1)].ptes[Vpn(kVpn + 1)] = PagePte(4, true);
  back.procs[Pid(1)].ptes[Vpn(kVpn + 2)] = PagePte(5, false);
  back.procs[Pid(2)].ptes[Vpn(kVpn + 2)] = PagePte(5, false);
  back.procs[Pid(1)].ptes[Vpn(kVpn + 3)] = PagePte(6, true);
  back.pages = {{3, Bytes('a')}, {4, {}}, {5, Bytes('b')}, {6, {}}};
  EXPECT_EQ(CheckMigrationStep(MigrateOp(), After(), back), Violations{});
  // Nothing moved at all (every page declined).
  EXPECT_EQ(CheckMigrationStep(MigrateOp(), Before(), Before()), Violations{});
}

TEST(MigrateChecks, PerPageAtomicFailsOnASplitOrLostOrStalePage) {
  model::State split = After();  // process 2 keeps page#2: its two mappings disagree
  split.procs[Pid(2)].ptes[Vpn(kVpn + 2)] = PagePte(2, false);
  split.pages[2] = Bytes('b');
  EXPECT_EQ(Broken(Before(), split), Names{"InvMigrationPerPageAtomic"});

  model::State lost = After();  // an entry vanished (its page is gone with it)
  lost.procs[Pid(1)].ptes.erase(Vpn(kVpn));
  EXPECT_TRUE(Broken(Before(), lost).count("InvMigrationPerPageAtomic"));

  model::State write = After();  // the write bit flipped
  write.procs[Pid(1)].ptes[Vpn(kVpn + 2)].write = true;
  write.procs[Pid(2)].ptes[Vpn(kVpn + 2)].write = true;
  EXPECT_EQ(Broken(Before(), write), Names{"InvMigrationPerPageAtomic"});

  model::State stale = After();  // kPfn+5 was allocated before the step: not a new page
  AllocDevice(&stale, kPfn + 5, Bytes('a'));
  model::State stale_before = Before();
  AllocDevice(&stale_before, kPfn + 5, Bytes('a'));
  stale.procs[Pid(1)].ptes[Vpn(kVpn)] = DevicePte(kPfn + 5, true);
  EXPECT_EQ(Broken(stale_before, stale), Names{"InvMigrationPerPageAtomic"});

  model::State merged = After();  // the zero page and the empty slot became one device page
  merged.procs[Pid(1)].ptes[Vpn(kVpn + 3)] = DevicePte(kPfn + 1, true);
  EXPECT_EQ(Broken(Before(), merged), Names{"InvMigrationPerPageAtomic"});
}

TEST(MigrateChecks, PreservesBytesFailsWhenACopyIsLost) {
  model::State lost = After();
  lost.devmems[1].pages[kPfn].data = model::Page{};  // "a" was not copied
  EXPECT_EQ(Broken(Before(), lost), Names{"InvMigrationPreservesBytes"});
  model::State dirty = After();
  dirty.devmems[1].pages[kPfn + 3].data = Bytes('z');  // an empty slot must read zeros
  EXPECT_EQ(Broken(Before(), dirty), Names{"InvMigrationPreservesBytes"});
}

TEST(MigrateChecks, SkipsPinnedFailsWhenAPinnedPageMoves) {
  model::State before = Before();
  before.pins[PinId(1)] = {1};
  model::State after = After();
  after.pins[PinId(1)] = {1};
  after.pages[1] = Bytes('a');
  EXPECT_EQ(Broken(before, after), Names{"InvMigrationSkipsPinned"});
  after.procs[Pid(1)].ptes[Vpn(kVpn)] = PagePte(1, true);  // skipped: it stays
  after.devmems[1].pages.erase(kPfn);
  EXPECT_EQ(Broken(before, after), Names{});
}

TEST(MigrateChecks, OnlyPrivateAnonToDeviceFailsOnASharedPage) {
  model::State before = Before();
  model::Vma& vma = before.procs[Pid(1)].vmas[Vpn(kVpn)];
  vma.shared = true;
  vma.object = 1;
  before.objects[1].pages = {{0, 1}, {2, 2}};
  before.procs[Pid(1)].ptes.erase(Vpn(kVpn + 1));  // no zero page in a shared VMA
  model::State after = before;
  after.procs[Pid(1)].ptes[Vpn(kVpn)] = DevicePte(kPfn, true);
  AllocDevice(&after, kPfn, Bytes('a'));
  after.objects[1].pages.erase(0);
  after.pages.erase(1);
  EXPECT_EQ(Broken(before, after), Names{"InvMigrationOnlyPrivateAnonToDevice"});
}

TEST(MigrateChecks, AStepsOwnStoreAndWriteFaultAreItsOwnBusiness) {
  // A CPU write of "x" to page#2 (read-only, shared with process 2 by fork):
  // the page breaks COW into a new writable page#3 that holds the store.
  Op write;
  write.kind = OpKind::kWrite;
  write.pid = 1;
  write.addr = kMmapBase + 2 * kPageSize;
  write.data = {'x'};
  model::State after = Before();
  after.procs[Pid(1)].ptes[Vpn(kVpn + 2)] = PagePte(3, true);
  after.pages[3] = Bytes('x');
  EXPECT_EQ(CheckMigrationStep(write, Before(), after), Violations{});
  // The same change as a read is a violation of two properties.
  Op read = write;
  read.kind = OpKind::kRead;
  read.len = 1;
  EXPECT_EQ(Broken(Before(), after, read),
            (Names{"InvMigrationPerPageAtomic", "InvMigrationPreservesBytes"}));
  // Process 2's mapping is not the write's own: changing it is still caught.
  after.procs[Pid(2)].ptes[Vpn(kVpn + 2)] = PagePte(3, true);
  EXPECT_TRUE(Broken(Before(), after, write).count("InvMigrationPerPageAtomic"));
}

TEST(MigrateChecks, MigrationStepsAreTheMigrationsAndAccessesThatReachADeviceEntry) {
  const model::State s = After();
  EXPECT_TRUE(IsMigrationStep(MigrateOp(), Before()));
  Op release;
  release.kind = OpKind::kRelease;
  EXPECT_TRUE(IsMigrationStep(release, Before()));
  Op read;
  read.kind = OpKind::kRead;
  read.pid = 1;
  read.addr = kMmapBase + 4 * kPageSize - 1;
  read.len = 1;
  EXPECT_TRUE(IsMigrationStep(read, s));
  EXPECT_FALSE(IsMigrationStep(read, Before()));  // no device entry there
  read.addr = kMmapBase + 4 * kPageSize;
  EXPECT_FALSE(IsMigrationStep(read, s));  // past the last one
  Op dread;
  dread.kind = OpKind::kDread;
  dread.mirror = 1;
  dread.addr = kMmapBase;
  dread.len = 1;
  EXPECT_FALSE(IsMigrationStep(dread, s));  // no mirror 1
  model::State mirrored = s;
  mirrored.mirrors[1].device = DeviceId(0);
  mirrored.mirrors[1].pid = Pid(1);
  EXPECT_FALSE(IsMigrationStep(dread, mirrored));  // its own device's page stays
  mirrored.mirrors[1].device = DeviceId(1);
  EXPECT_TRUE(IsMigrationStep(dread, mirrored));  // another device's page comes back
  Op mmap;
  mmap.kind = OpKind::kMmap;
  EXPECT_FALSE(IsMigrationStep(mmap, s));
}

}  // namespace
}  // namespace hmm::props
