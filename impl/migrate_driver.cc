// File: impl/migrate_driver.cc
//
// The driver's side of migration that is not the dummy device's ioctls
// (impl/migrate.h): the helpers a callback uses to allocate destination
// pages and reach the copy engine, MigrateVma on a whole Kernel, and the CPU
// fault's migrate_to_ram (docs/migrate.md, "CPU access to a device-private
// entry"), which fault.cc calls once it has dropped the ptl.

#include <mutex>
#include <shared_mutex>

#include "impl/kernel.h"
#include "impl/kernel_state.h"
#include "impl/migrate.h"
#include "impl/migrate_internal.h"
#include "impl/sched.h"

namespace hmm::impl {
namespace {

// Mirrors: 6.1 lib/test_hmm.c dmirror_devmem_fault_alloc_and_copy() (the
// mirror's pt is not the callback's to erase here: the pages phase tells
// every mirror): a system page for each device page, copied, write as src.
// Returns false when an allocation failed (RAM full).
bool FaultAllocAndCopy(KernelState& ks, MigrateVmaArgs& a) {
  CopyBatch batch;
  bool allocated = true;
  for (size_t i = 0; i < a.src.size(); ++i) {
    const uint64_t s = a.src[i];
    if (!(s & kMigratePfnValid) || !(s & kMigratePfnMigrate)) continue;
    const uint64_t d = MigrateAllocSystemDst(ks);
    if (d == 0) {
      allocated = false;
      continue;
    }
    batch.Copy(MigratePageRef(ks, s), MigratePageRef(ks, d));
    a.dst[i] = d | (s & kMigratePfnWrite);
  }
  CopyEngine& engine = *ks.copy_engine;
  engine.Wait(engine.Submit(batch));
  return allocated;
}

// Is the entry at addr still the device-private entry of pfn? Then the
// migration back failed for another thread's sake (the page locked, a fork
// copying its entry), and the fault waits for that thread.
bool DeviceEntryStill(Process& p, uint64_t addr, uint64_t pfn) {
  std::lock_guard<std::mutex> ptl(p.ptl);
  const pte_t e = p.pgtable.Get(AddrVpn(addr));
  return IsDeviceEntry(e) && SwpEntryPfn(e) == pfn;
}

}  // namespace

KernelState& StateOf(Kernel& k) { return *k.st_; }

Errno MigrateVma(Kernel& k, const MigrateVmaOps& ops, MigrateVmaArgs* args) {
  KernelState& ks = StateOf(k);
  std::shared_lock<std::shared_mutex> quiesce(ks.quiesce);
  return MigrateVma(ks, ops, args);
}

uint64_t MigrateAllocSystemDst(KernelState& ks) {
  std::optional<uint64_t> pfn = ks.pages.AllocPage(kPgAnon, /*zero=*/false);
  // Is RAM full?
  if (!pfn) return 0;
  ks.pages.TrylockPage(*pfn);  // ours alone: this takes it
  return MigratePfn(*pfn) | kMigratePfnLocked;
}

uint64_t MigrateAllocDeviceDst(KernelState& ks, uint64_t devmem_id) {
  std::shared_lock<std::shared_mutex> devmems(ks.devmems_lock);
  Devmem* devmem = ks.devmems.FindById(devmem_id);
  // Is it a live region?
  if (devmem == nullptr) return 0;
  std::lock_guard<std::mutex> region(devmem->lock);
  std::optional<uint64_t> pfn = devmem->AllocPage();
  // Is a page free?
  if (!pfn) return 0;
  devmem->TrylockPage(*pfn);  // a free page is never locked: this takes it
  return MigratePfn(*pfn) | kMigratePfnLocked;
}

PageRef MigratePageRef(const KernelState& ks, uint64_t entry) {
  const uint64_t pfn = MigratePfnToPfn(entry);
  return PageRef{pfn, !IsRamPfn(ks, pfn)};
}

CopyEngine& MigrateCopyEngine(KernelState& ks) { return *ks.copy_engine; }

Errno MigrateToRam(KernelState& ks, Process& p, Pid pid, uint64_t addr, uint64_t pfn,
                   DeviceId owner) {
  MigrateVmaArgs args;
  args.pid = pid;
  args.start = addr;
  args.end = addr + kPageSize;
  args.select = kMigrateVmaSelectDevicePrivate;
  args.owner = owner;
  args.fault_page = pfn;
  bool allocated = true;
  MigrateVmaOps ops;
  ops.alloc_and_copy = [&ks, &allocated](MigrateVmaArgs& a) {
    allocated = FaultAllocAndCopy(ks, a);
  };
  // Collect's trylock is the try a busy page's wait refers to.
  const uint64_t tried = sched::ProgressMark();
  // The VMA holds addr: the guards pass.
  if (MigrateVmaLocked(ks, p, ops, &args) != Errno::kOk) return Errno::kFault;
  // Did it move? If not for want of RAM, SIGBUS (invariant 29); if for
  // another reason (the entry changed, the page busy), the access retries.
  if (args.src[0] & kMigratePfnMigrate) return Errno::kOk;
  if (!allocated) return Errno::kFault;
  // Let whoever holds the page finish; an entry changed meanwhile is retried at once.
  if (DeviceEntryStill(p, addr, pfn)) sched::SpinYieldSince("migrate_to_ram_busy", tried);
  return Errno::kOk;
}

}  // namespace hmm::impl
