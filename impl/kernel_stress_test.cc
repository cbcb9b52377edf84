// File: impl/kernel_stress_test.cc
//
// Real threads on one Kernel: 4 threads, 2 per process, each running a
// bounded random mix of faults, writes, reads, mprotect, munmap, madvise,
// fork + COW + exit, pin + unpin and introspection. Every thread keeps a copy
// of what its own private pages must hold and checks it as it goes (no write
// lost to a COW break, a fork or a neighbour's mprotect); every thread also
// writes its own slot of each shared page, checked from both processes at
// the end. RepInvariant() (which quiesces the kernel) runs mid-flight and at
// the end. A second case does the same for device-private memory. Run it
// under --config=tsan and --config=asan as well.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "impl/kernel.h"
#include "impl/kernel_test_util.h"
#include "model/types.h"

namespace hmm::impl {
namespace {

constexpr int kThreads = 4;
constexpr int kOpsPerThread = 2000;
constexpr uint64_t kOwnPages = 4;
constexpr uint64_t kSharedPages = 8;
constexpr uint64_t kSlot = 8;  // bytes of each shared page that belong to one thread
constexpr uint32_t kRW = kProtRead | kProtWrite;
constexpr uint64_t kPage = kPageSize;

struct World {
  Kernel k{4096};
  Pid procs[2];
  uint64_t shared = 0;  // same address in both processes
  // last[t][page]: the value thread t last wrote into its slot of that page.
  uint8_t last[kThreads][kSharedPages] = {};
};

using test_util::Join;

class Worker {
 public:
  Worker(World& w, int id) : w_(w), id_(id), me_(w.procs[id % 2]), rng_(id + 1) {}

  void Run() {
    own_ = w_.k.Mmap(me_, 0, kOwnPages * kPage, kRW, kMapPrivate).value;
    ASSERT_NE(own_, 0u);
    expect_.assign(kOwnPages * kPage, 0);
    for (int op = 0; op < kOpsPerThread; ++op) Step(op);
    VerifyOwn(me_);
    EXPECT_EQ(w_.k.Munmap(me_, own_, kOwnPages * kPage), Errno::kOk);
  }

 private:
  void Step(int op) {
    switch (rng_() % 10) {
      case 0:
      case 1: WriteOwn(op); break;
      case 2: VerifyOwnPage(me_, rng_() % kOwnPages); break;
      case 3: WriteShared(op); break;
      case 4: ProtectOwn(); break;
      case 5: Scratch(op, /*madvise=*/false); break;
      case 6: ForkAndCow(op); break;
      case 7: PinOwn(); break;
      case 8: Scratch(op, /*madvise=*/true); break;
      default: Introspect(op); break;
    }
  }

  void WriteOwn(int op) {
    uint64_t off = rng_() % (kOwnPages * kPage - 64);
    std::vector<uint8_t> bytes(64, static_cast<uint8_t>(op * 7 + id_));
    ASSERT_EQ(w_.k.CpuWrite(me_, own_ + off, bytes), Errno::kOk);
    std::memcpy(&expect_[off], bytes.data(), bytes.size());
  }

  void VerifyOwnPage(Pid pid, uint64_t page) {
    Result<std::vector<uint8_t>> got = w_.k.CpuRead(pid, own_ + page * kPage, kPage);
    ASSERT_TRUE(got.ok()) << ErrnoName(got.err);
    ASSERT_EQ(0, std::memcmp(got.value.data(), &expect_[page * kPage], kPage))
        << "thread " << id_ << " lost data in page " << page;
  }

  void VerifyOwn(Pid pid) {
    for (uint64_t page = 0; page < kOwnPages; ++page) VerifyOwnPage(pid, page);
  }

  void WriteShared(int op) {
    uint64_t page = rng_() % kSharedPages;
    uint8_t value = static_cast<uint8_t>(op | 1);
    Pid via = w_.procs[rng_() % 2];
    std::vector<uint8_t> bytes(kSlot, value);
    ASSERT_EQ(w_.k.CpuWrite(via, w_.shared + page * kPage + id_ * kSlot, bytes), Errno::kOk);
    w_.last[id_][page] = value;
  }

  void ProtectOwn() {
    ASSERT_EQ(w_.k.Mprotect(me_, own_, kOwnPages * kPage, kProtRead), Errno::kOk);
    EXPECT_EQ(w_.k.CpuWrite(me_, own_, {1}), Errno::kFault);
    VerifyOwnPage(me_, rng_() % kOwnPages);
    ASSERT_EQ(w_.k.Mprotect(me_, own_, kOwnPages * kPage, kRW), Errno::kOk);
  }

  void Scratch(int op, bool madvise) {
    uint32_t flags = (op % 2) ? kMapShared : kMapPrivate;
    Result<uint64_t> a = w_.k.Mmap(me_, 0, 2 * kPage, kRW, flags);
    ASSERT_TRUE(a.ok());
    ASSERT_EQ(w_.k.CpuWrite(me_, a.value + kPage - 4, std::vector<uint8_t>(8, 9)), Errno::kOk);
    if (madvise) {
      ASSERT_EQ(w_.k.MadviseDontneed(me_, a.value, 2 * kPage), Errno::kOk);
      uint8_t want = flags == kMapShared ? 9 : 0;  // shmem keeps its pages
      EXPECT_EQ(w_.k.CpuRead(me_, a.value + kPage, 1).value, std::vector<uint8_t>{want});
    }
    ASSERT_EQ(w_.k.Munmap(me_, a.value, 2 * kPage), Errno::kOk);
  }

  void ForkAndCow(int op) {
    Result<Pid> child = w_.k.Fork(me_);
    ASSERT_TRUE(child.ok()) << ErrnoName(child.err);
    uint64_t page = rng_() % kOwnPages;
    VerifyOwnPage(child.value, page);
    ASSERT_EQ(w_.k.CpuWrite(child.value, own_ + page * kPage, std::vector<uint8_t>(kPage, 0xEE)),
              Errno::kOk);
    VerifyOwnPage(me_, page);  // the child's write broke COW
    if (op % 2) WriteOwn(op);   // the parent's own write after the fork
    ASSERT_EQ(w_.k.Exit(child.value), Errno::kOk);
  }

  void PinOwn() {
    Result<PinId> pin = w_.k.PinUserPages(me_, own_ + (rng_() % kOwnPages) * kPage, 1);
    ASSERT_TRUE(pin.ok()) << ErrnoName(pin.err);
    if (rng_() % 2) ForkAndCow(0);  // a fork while pinned copies the page
    ASSERT_EQ(w_.k.UnpinUserPages(pin.value), Errno::kOk);
  }

  void Introspect(int op) {
    EXPECT_FALSE(w_.k.Vmas(me_).empty());
    (void)w_.k.Ptes(me_);
    (void)w_.k.PagesInUse();
    (void)w_.k.Objects();
    (void)w_.k.Pins();
    if (op % 50 == 0) {
      std::vector<std::string> rep = w_.k.RepInvariant();
      EXPECT_TRUE(rep.empty()) << Join(rep);
    }
  }

  World& w_;
  const int id_;
  const Pid me_;
  std::minstd_rand rng_;
  uint64_t own_ = 0;
  std::vector<uint8_t> expect_;
};

TEST(KernelStressTest, ThreadsForkFaultAndUnmapWithoutLosingData) {
  World w;
  w.procs[0] = w.k.CreateProcess().value;
  w.shared = w.k.Mmap(w.procs[0], 0, kSharedPages * kPage, kRW, kMapShared).value;
  ASSERT_NE(w.shared, 0u);
  w.procs[1] = w.k.Fork(w.procs[0]).value;
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&w, &ready, t] {
      // Start together, so the threads' operations overlap.
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      Worker(w, t).Run();
    });
  }
  for (std::thread& t : threads) t.join();

  for (Pid pid : w.procs) {
    for (uint64_t page = 0; page < kSharedPages; ++page) {
      std::vector<uint8_t> got = w.k.CpuRead(pid, w.shared + page * kPage, kThreads * kSlot).value;
      for (int t = 0; t < kThreads; ++t) {
        EXPECT_EQ(got[t * kSlot], w.last[t][page]) << "pid " << pid.value << " page " << page;
      }
    }
  }
  std::vector<std::string> rep = w.k.RepInvariant();
  EXPECT_TRUE(rep.empty()) << Join(rep);
  EXPECT_EQ(w.k.Pids().size(), 2u);
  ASSERT_EQ(w.k.Exit(w.procs[0]), Errno::kOk);
  ASSERT_EQ(w.k.Exit(w.procs[1]), Errno::kOk);
  EXPECT_TRUE(w.k.PagesInUse().empty());
  EXPECT_TRUE(w.k.Objects().empty());
  rep = w.k.RepInvariant();
  EXPECT_TRUE(rep.empty()) << Join(rep);
}

// Threads of two processes (parent and fork child) write the same pages at
// once: first touches of fresh shared pages race in DoSharedFault, and COW
// breaks of one page race between the processes and between two threads of
// one process. Each thread owns an 8-byte slot per page; after each round a
// process's private pages hold its own threads' slots and the original fill
// elsewhere, while the shared pages hold every thread's slot.
TEST(KernelStressTest, FirstTouchAndCowBreaksRace) {
  constexpr int kRounds = 40;
  constexpr uint64_t kPages = 8;
  Kernel k(1024);
  Pid parent = k.CreateProcess().value;
  for (int round = 0; round < kRounds; ++round) {
    uint64_t priv = k.Mmap(parent, 0, kPages * kPage, kRW, kMapPrivate).value;
    uint64_t shared = k.Mmap(parent, 0, kPages * kPage, kRW, kMapShared).value;
    ASSERT_EQ(k.CpuWrite(parent, priv, std::vector<uint8_t>(kPages * kPage, 0x11)), Errno::kOk);
    Pid procs[2] = {parent, k.Fork(parent).value};
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        ready.fetch_add(1);
        while (ready.load() < kThreads) std::this_thread::yield();
        std::vector<uint8_t> slot(kSlot, static_cast<uint8_t>(0x20 + t));
        for (uint64_t page = 0; page < kPages; ++page) {
          EXPECT_EQ(k.CpuWrite(procs[t % 2], priv + page * kPage + t * kSlot, slot), Errno::kOk);
          EXPECT_EQ(k.CpuWrite(procs[t % 2], shared + page * kPage + t * kSlot, slot), Errno::kOk);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    for (int side = 0; side < 2; ++side) {
      for (uint64_t page = 0; page < kPages; ++page) {
        const uint64_t len = kThreads * kSlot;
        std::vector<uint8_t> p = k.CpuRead(procs[side], priv + page * kPage, len).value;
        std::vector<uint8_t> s = k.CpuRead(procs[side], shared + page * kPage, len).value;
        for (int t = 0; t < kThreads; ++t) {
          EXPECT_EQ(p[t * kSlot], t % 2 == side ? 0x20 + t : 0x11) << "round " << round;
          EXPECT_EQ(s[t * kSlot], 0x20 + t) << "round " << round;
        }
      }
    }
    std::vector<std::string> rep = k.RepInvariant();
    ASSERT_TRUE(rep.empty()) << Join(rep);
    ASSERT_EQ(k.Exit(procs[1]), Errno::kOk);
    ASSERT_EQ(k.Munmap(parent, priv, kPages * kPage), Errno::kOk);
    ASSERT_EQ(k.Munmap(parent, shared, kPages * kPage), Errno::kOk);
  }
  EXPECT_TRUE(k.PagesInUse().empty());
}

// Device-private memory under real threads: 4 threads, 2 per process, share
// one region. Each thread allocates pages from it, installs them into its own
// private mapping (read or write), puts them, faults on them (which
// migrates them back), forks (the child's entries hold the pages until it
// exits or touches them), zaps them
// (madvise, munmap + MAP_FIXED), downgrades them with mprotect, and adds and
// removes a scratch region and a hot-added RAM range of its own, while the
// others do the same. At the end every page is free again, each allocation
// has had exactly one page_free, and the region can be removed.
class DevmemWorker {
 public:
  static constexpr uint64_t kSlots = 8;

  DevmemWorker(Kernel& k, Pid me, uint64_t devmem, int id)
      : k_(k), me_(me), devmem_(devmem), id_(id), rng_(id + 100) {}

  void Run() {
    area_ = k_.Mmap(me_, 0, kSlots * kPage, kRW, kMapPrivate).value;
    ASSERT_NE(area_, 0u);
    for (int op = 0; op < kOpsPerThread; ++op) Step(op);
    ASSERT_EQ(k_.Munmap(me_, area_, kSlots * kPage), Errno::kOk);
    for (uint64_t pfn : held_) ASSERT_EQ(k_.DevicePagePut(pfn), Errno::kOk);
  }

 private:
  void Step(int op) {
    switch (rng_() % 10) {
      case 0: Alloc(); break;
      case 1:
      case 2: Install(); break;
      case 3: Put(); break;
      case 4: FaultOnEntry(); break;
      case 5: Zap(op); break;
      case 6: ForkAndExit(); break;
      case 7: ProtectArea(); break;
      case 8: ScratchRegion(op); break;
      default: Introspect(op); break;
    }
  }

  void Alloc() {
    if (held_.size() >= 4) return;
    Result<uint64_t> pfn = k_.DevicePageAlloc(devmem_);
    ASSERT_TRUE(pfn.ok() || pfn.err == Errno::kNoMem) << ErrnoName(pfn.err);
    if (pfn.ok()) held_.push_back(pfn.value);
  }

  void Install() {
    if (held_.empty()) return;
    uint64_t slot = rng_() % kSlots;
    if (mapped_[slot]) return;
    uint64_t pfn = held_[rng_() % held_.size()];
    // One entry per page: a page entered twice (once writable) would come
    // back from the device as a writable private page mapped twice, which
    // InvWritablePrivatePageExclusive rejects (migration keeps write bits).
    if (std::find(std::begin(mapped_), std::end(mapped_), pfn) != std::end(mapped_)) return;
    ASSERT_EQ(k_.DeviceEntryInstall(me_, area_ + slot * kPage, pfn, rng_() % 2), Errno::kOk);
    mapped_[slot] = pfn;
  }

  void Put() {
    if (held_.empty()) return;
    ASSERT_EQ(k_.DevicePagePut(held_.back()), Errno::kOk);
    held_.pop_back();
  }

  void FaultOnEntry() {
    for (uint64_t slot = 0; slot < kSlots; ++slot) {
      if (!mapped_[slot]) continue;
      // A device page comes back to RAM (migrate_to_ram); a page reads as is.
      EXPECT_EQ(k_.CpuRead(me_, area_ + slot * kPage + 8, 8).err, Errno::kOk);
      return;
    }
  }

  void Zap(int op) {
    if (op % 4 == 0) {
      ASSERT_TRUE(k_.Mmap(me_, area_, kSlots * kPage, kRW, kMapPrivate | kMapFixed).ok());
      for (uint64_t& m : mapped_) m = 0;
      return;
    }
    uint64_t slot = rng_() % kSlots;
    ASSERT_EQ(k_.MadviseDontneed(me_, area_ + slot * kPage, kPage), Errno::kOk);
    mapped_[slot] = 0;
  }

  void ForkAndExit() {
    Result<Pid> child = k_.Fork(me_);
    ASSERT_TRUE(child.ok()) << ErrnoName(child.err);
    for (uint64_t slot = 0; slot < kSlots; ++slot) {
      if (!mapped_[slot]) continue;
      EXPECT_EQ(k_.CpuWrite(child.value, area_ + slot * kPage, {1}), Errno::kOk);
      break;
    }
    ASSERT_EQ(k_.Exit(child.value), Errno::kOk);
  }

  void ProtectArea() {
    ASSERT_EQ(k_.Mprotect(me_, area_, kSlots * kPage, kProtRead), Errno::kOk);
    for (const PteInfo& pte : k_.Ptes(me_)) {
      bool mine = pte.vpn >= area_ / kPage && pte.vpn < area_ / kPage + kSlots;
      EXPECT_FALSE(mine && pte.write) << "vpn " << pte.vpn;
    }
    ASSERT_EQ(k_.Mprotect(me_, area_, kSlots * kPage, kRW), Errno::kOk);
  }

  // A region and a RAM range of this thread's own, added and removed while
  // the others use the shared region.
  void ScratchRegion(int op) {
    const uint64_t ram = static_cast<uint64_t>(id_ + 1) << 32;
    ASSERT_EQ(k_.RamHotAdd(ram, kPage), Errno::kOk);
    Result<uint64_t> scratch = k_.HmmDevmemAdd(DeviceId(id_), kPage);
    ASSERT_TRUE(scratch.ok()) << ErrnoName(scratch.err);
    uint64_t pfn = k_.DevicePageAlloc(scratch.value).value;
    uint64_t slot = rng_() % kSlots;
    if (!mapped_[slot] && op % 2) {
      ASSERT_EQ(k_.DeviceEntryInstall(me_, area_ + slot * kPage, pfn, true), Errno::kOk);
      EXPECT_EQ(k_.HmmDevmemRemove(scratch.value), Errno::kBusy);
      ASSERT_EQ(k_.MadviseDontneed(me_, area_ + slot * kPage, kPage), Errno::kOk);
    }
    ASSERT_EQ(k_.DevicePagePut(pfn), Errno::kOk);
    // A neighbour's fork child may still hold an entry of the page, until it exits.
    Errno removed;
    while ((removed = k_.HmmDevmemRemove(scratch.value)) == Errno::kBusy) std::this_thread::yield();
    ASSERT_EQ(removed, Errno::kOk);
    ASSERT_EQ(k_.RamHotRemove(ram, kPage), Errno::kOk);
  }

  void Introspect(int op) {
    (void)k_.Devmems();
    (void)k_.DeviceEvents();
    (void)k_.Resources();
    (void)k_.Ptes(me_);
    (void)k_.PageFrees(devmem_);
    if (op % 50 == 0) {
      std::vector<std::string> rep = k_.RepInvariant();
      EXPECT_TRUE(rep.empty()) << Join(rep);
    }
  }

  Kernel& k_;
  const Pid me_;
  const uint64_t devmem_;
  const int id_;
  std::minstd_rand rng_;
  uint64_t area_ = 0;
  std::vector<uint64_t> held_;
  uint64_t mapped_[kSlots] = {};  // the device page entered at each slot; 0: none
};

TEST(KernelStressTest, DeviceEntriesUnderForkZapAndPut) {
  Config config;
  config.section_bytes = kPage;
  Kernel k(config);
  const uint64_t kRegionPages = 16;  // fewer than the threads could hold: kNoMem happens
  uint64_t devmem = k.HmmDevmemAdd(DeviceId(1), kRegionPages * kPage).value;
  Pid procs[2] = {k.CreateProcess().value, k.CreateProcess().value};
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      DevmemWorker(k, procs[t % 2], devmem, t).Run();
    });
  }
  for (std::thread& t : threads) t.join();

  std::vector<std::string> rep = k.RepInvariant();
  EXPECT_TRUE(rep.empty()) << Join(rep);
  uint64_t allocations = 0;
  for (const DevmemInfo& d : k.Devmems()) {
    ASSERT_EQ(d.id, devmem) << "every scratch region is gone";
    for (const DevicePageInfo& page : d.pages) {
      EXPECT_FALSE(page.held);
      allocations += page.allocations;
    }
  }
  EXPECT_GT(allocations, 0u);
  EXPECT_EQ(k.PageFrees(devmem).value, allocations) << "one page_free per allocation";
  EXPECT_EQ(k.HmmDevmemRemove(devmem), Errno::kOk);
  EXPECT_EQ(k.Resources().size(), 1u);
  for (Pid pid : procs) ASSERT_EQ(k.Exit(pid), Errno::kOk);
  rep = k.RepInvariant();
  EXPECT_TRUE(rep.empty()) << Join(rep);
}

}  // namespace
}  // namespace hmm::impl
