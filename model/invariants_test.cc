// File: model/invariants_test.cc
//
// Each named invariant holds on a state built by real operations and is
// reported, by name, once that state is broken by hand in the one way the
// invariant forbids.

#include "model/invariants.h"

#include <functional>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "model/kernel.h"
#include "model/test_util.h"

namespace hmm::model {
namespace {

const Pid kParent(1);
const Pid kChild(2);
const Vpn kPriv = AddrToVpn(kMmapBase);             // 2 private pages, COW-shared with the child
const Vpn kShm = AddrToVpn(kMmapBase + Pages(2));   // 2 shared pages (object 1)
const Vpn kZero = AddrToVpn(kMmapBase + Pages(4));  // 1 private page mapping the zero page
const Vpn kDev = AddrToVpn(kMmapBase + Pages(5));   // 2 private pages holding device entries
constexpr uint64_t kRam = 64;
constexpr uint64_t kDevStart = uint64_t{1} << 46;   // devmem 1, default placement
constexpr uint64_t kPfn = kDevStart >> kPageShift;  // its first page

// Parent: private [kPriv, +2) written, its second page pinned (so exclusive
// again); shared [kShm, +2) written; [kZero, +1) read. Child (forked before
// the pin): shares the first private page read-only, maps the first shared page.
// Devmem 1: kPfn mapped at kDev by parent and child (read-only since the
// fork), put by the driver; kPfn + 1 held and mapped writable at kDev + 1 in
// the parent; kPfn + 2 allocated and put (one page_free). Mirror 1 (device 0,
// the parent) maps [kPriv, +2) in its pt; range 1 of it, open and valid, saw
// [kZero, +1) (the zero page).
State Healthy() {
  Kernel k(kRam);
  const Pid pid = k.CreateProcess().value;
  EXPECT_EQ(k.Mmap(pid, 0, Pages(2), kRw, kMapPrivate).value, VpnToAddr(kPriv));
  EXPECT_EQ(k.Mmap(pid, 0, Pages(2), kRw, kMapShared).value, VpnToAddr(kShm));
  EXPECT_EQ(k.Mmap(pid, 0, Pages(1), kRw, kMapPrivate).value, VpnToAddr(kZero));
  EXPECT_EQ(k.Mmap(pid, 0, Pages(2), kRw, kMapPrivate).value, VpnToAddr(kDev));
  EXPECT_EQ(k.CpuWrite(pid, VpnToAddr(kPriv), std::vector<uint8_t>(Pages(4), 3)), Errno::kOk);
  EXPECT_TRUE(k.CpuRead(pid, VpnToAddr(kZero), 1).ok());
  EXPECT_EQ(k.HmmDevmemAdd(DeviceId(1), Pages(3)).value, 1u);
  EXPECT_EQ(k.DevicePageAlloc(1).value, kPfn);
  EXPECT_EQ(k.DeviceEntryInstall(pid, VpnToAddr(kDev), kPfn, true), Errno::kOk);
  EXPECT_EQ(k.DevicePagePut(kPfn), Errno::kOk);
  EXPECT_EQ(k.Fork(pid).value, kChild);
  EXPECT_TRUE(k.PinUserPages(pid, VpnToAddr(Vpn(kPriv.value + 1)), 1).ok());
  EXPECT_TRUE(k.CpuRead(kChild, VpnToAddr(kShm), 1).ok());
  EXPECT_EQ(k.DevicePageAlloc(1).value, kPfn + 1);
  EXPECT_EQ(k.DeviceEntryInstall(pid, VpnToAddr(Vpn(kDev.value + 1)), kPfn + 1, true), Errno::kOk);
  EXPECT_EQ(k.DevicePageAlloc(1).value, kPfn + 2);
  EXPECT_EQ(k.DevicePagePut(kPfn + 2), Errno::kOk);
  EXPECT_EQ(k.PageFrees(1).value, 1u);
  EXPECT_EQ(k.HmmMirrorRegister(DeviceId(0), pid).value, 1u);
  EXPECT_EQ(k.DmirrorRead(1, VpnToAddr(kPriv), 2).err, Errno::kOk);
  EXPECT_EQ(k.HmmVmaGetPfns(1, VpnToAddr(kZero), 1).value, 1u);
  return k.state();
}

Pte& PteOf(State& s, Pid pid, Vpn vpn) { return s.procs.at(pid).ptes.at(vpn); }

struct Breakage {
  std::string invariant;
  std::function<void(State&)> breaks;
  uint64_t ram_pages = kRam;
};

// One way to break each invariant, in the order of AllInvariants().
std::vector<Breakage> Breakages() {
  return {
      {"InvVmaSortedDisjoint", [](State& s) { s.procs.at(kParent).vmas.at(kPriv).end = kZero; }},
      {"InvVmaObjectExists", [](State& s) { s.procs.at(kParent).vmas.at(kShm).object = 99; }},
      {"InvPteInsideVma",
       [](State& s) {
         s.procs.at(kParent).ptes[Vpn(5)] = Pte{true, 0, false};
       }},
      {"InvPteWriteImpliesVmaWrite",
       [](State& s) { s.procs.at(kParent).vmas.at(kPriv).prot = kProtRead; }},
      {"InvZeroPageNeverWritable", [](State& s) { PteOf(s, kParent, kZero).write = true; }},
      {"InvCowSharedPageReadOnly", [](State& s) { PteOf(s, kParent, kPriv).write = true; }},
      {"InvSharedPteMatchesObject",
       [](State& s) {
         PteOf(s, kParent, kShm).page = PteOf(s, kParent, Vpn(kShm.value + 1)).page;
       }},
      {"InvPrivateAndSharedPagesDisjoint",
       [](State& s) { PteOf(s, kParent, kZero) = PteOf(s, kParent, kShm); }},
      {"InvObjectPageUnique",
       [](State& s) { s.objects.at(1).pages[1] = s.objects.at(1).pages.at(0); }},
      {"InvPageReachable", [](State& s) { s.pages[s.next_page++] = Page{}; }},
      {"InvPinnedPrivatePageExclusive",
       [](State& s) {
         const Vpn pinned = Vpn(kPriv.value + 1);
         PteOf(s, kParent, pinned).write = false;
         s.procs.at(kChild).ptes[pinned] = PteOf(s, kParent, pinned);
       }},
      {"InvPinWithinLimit", [](State& s) { s.pins.begin()->second.clear(); }},
      {"InvObjectMapped", [](State& s) { s.objects[s.next_object++] = SharedObject{}; }},
      {"InvRamWithinCapacity", [](State&) {}, /*ram_pages=*/1},
      {"InvProcessCountWithinLimit",
       [](State& s) {
         while (s.procs.size() <= kMaxProcesses) s.procs[Pid(s.next_pid++)] = Process{};
       }},
      {"InvIdsBelowNext", [](State& s) { s.next_page = 1; }},
      {"InvResourcesDisjoint",
       [](State& s) {
         s.resources[Pages(1)] = Resource{Pages(1), Pages(2), false, false, 0};
       }},
      {"InvDevmemMatchesResource", [](State& s) { s.resources.erase(kDevStart); }},
      {"InvDeviceRangePlacement", [](State& s) { s.config.profile = Profile::kV18; }},
      {"InvDeviceEntryTargetsLivePage",
       [](State& s) { PteOf(s, kChild, kDev).device_pfn = kPfn + 3; }},
      {"InvDeviceEntryPrivateVma",
       [](State& s) { s.procs.at(kParent).ptes[Vpn(5)] = PteOf(s, kParent, kDev); }},
      {"InvDeviceEntryWriteImpliesVmaWrite",
       [](State& s) { s.procs.at(kParent).vmas.at(kDev).prot = kProtRead; }},
      {"InvPageFreeOncePerAllocation",
       [](State& s) {
         s.events.push_back(DeviceEvent{DeviceEvent::kPageFree, 1, kPfn, 0, 0});
       }},
      {"InvDevicePageNeverPresent",
       [](State& s) { PteOf(s, kParent, kPriv).device_pfn = kPfn + 1; }},
      {"InvMirrorOfLiveProcess", [](State& s) { s.mirrors.at(1).pid = Pid(99); }},
      {"InvMirrorSubsetOfCpu", [](State& s) { s.mirrors.at(1).pt.at(kPriv).write = true; }},
      {"InvValidRangeMatchesCpu", [](State& s) { s.ranges.at(1).pfns[0].flags |= kHmmPfnWrite; }},
      {"InvRangeWithinOneVma",
       [](State& s) {
         s.ranges.at(1).end = kDev;
         s.ranges.at(1).start = kShm;
         s.ranges.at(1).pfns.assign(kDev.value - kShm.value, HmmPfn{kHmmPfnEmpty});
       }},
      {"InvRangeOfLiveMirror", [](State& s) { s.ranges.at(1).mirror = 99; }},
  };
}

TEST(InvariantsTest, HealthyStateHoldsThemAll) {
  EXPECT_EQ(CheckAllInvariants(Healthy(), kRam), std::vector<std::string>{});
}

TEST(InvariantsTest, EachBreakageIsReportedByName) {
  for (const Breakage& b : Breakages()) {
    State s = Healthy();
    b.breaks(s);
    const std::vector<std::string> lines = CheckAllInvariants(s, b.ram_pages);
    EXPECT_TRUE(Reports(lines, b.invariant)) << b.invariant << " not reported";
  }
}

TEST(InvariantsTest, DanglingReferenceIsUnreachablePage) {
  State s = Healthy();
  s.pins.begin()->second.push_back(999);
  EXPECT_TRUE(Reports(CheckAllInvariants(s, kRam), "InvPageReachable"));
}

TEST(InvariantsTest, EveryInvariantIsListedOnceAndBroken) {
  std::set<std::string> listed;
  for (const InvariantInfo& info : AllInvariants()) {
    EXPECT_EQ(std::string(info.name).rfind("Inv", 0), 0u) << info.name;
    EXPECT_NE(std::string(info.statement), "");
    EXPECT_NE(std::string(info.source).find(':'), std::string::npos) << info.name;
    EXPECT_TRUE(listed.insert(info.name).second) << info.name << " listed twice";
  }
  std::set<std::string> broken;
  for (const Breakage& b : Breakages()) broken.insert(b.invariant);
  EXPECT_EQ(listed, broken);
}

TEST(InvariantsTest, DetailNamesWhereAndBothValues) {
  State s = Healthy();
  PteOf(s, kParent, kZero).write = true;
  const std::vector<std::string> lines = InvZeroPageNeverWritable(s);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "pid 1 vpn 0x10004 zero page: write=1 page=0, expected write=0 page=0");
}

TEST(InvariantsTest, DeviceDetailNamesTheEntry) {
  State s = Healthy();
  s.procs.at(kParent).vmas.at(kDev).prot = kProtRead;
  EXPECT_EQ(InvDeviceEntryWriteImpliesVmaWrite(s),
            Violations{"pid 1 vpn 0x10006 device pfn 0x400000001: entry.write=1 vma.prot=1"});
}

}  // namespace
}  // namespace hmm::model
