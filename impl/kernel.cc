// File: impl/kernel.cc
//
// The process table: construction, CreateProcess, Exit, and the lookup that
// every per-process operation starts with. The operations live by concept in
// mmap.cc, mremap.cc, fault.cc, fork.cc and gup.cc; introspection in
// introspect.cc; the representation invariant in rep_invariant.cc.

#include <mutex>
#include <shared_mutex>

#include "impl/kernel.h"
#include "impl/kernel_state.h"

namespace hmm::impl {

std::shared_ptr<Process> KernelState::FindProcess(Pid pid) const {
  std::shared_lock<std::shared_mutex> tasklist(tasklist_lock);
  auto it = procs.find(pid.value);
  return it == procs.end() ? nullptr : it->second;
}

std::vector<std::pair<uint64_t, std::shared_ptr<Process>>> KernelState::SnapshotProcs() const {
  std::shared_lock<std::shared_mutex> tasklist(tasklist_lock);
  return {procs.begin(), procs.end()};
}

MmapLockGuard::MmapLockGuard(const KernelState& ks, Pid pid, Mode mode)
    : proc_(ks.FindProcess(pid)), mode_(mode) {
  if (!proc_) return;
  if (mode_ == kWrite) {
    sched::LockAt("mmap_write_lock", proc_->mmap_lock);
  } else {
    sched::LockSharedAt("mmap_read_lock", proc_->mmap_lock);
  }
  // Did Exit tear the mm down between the lookup and the lock?
  live_ = !proc_->exited;
}

MmapLockGuard::~MmapLockGuard() {
  if (!proc_) return;
  if (mode_ == kWrite) {
    proc_->mmap_lock.unlock();
  } else {
    proc_->mmap_lock.unlock_shared();
  }
}

namespace {

Config RamOnly(uint64_t ram_pages) {
  Config config;
  config.ram_pages = ram_pages;
  return config;
}

}  // namespace

Kernel::Kernel(uint64_t ram_pages) : Kernel(RamOnly(ram_pages)) {}

Kernel::Kernel(const Config& config) : st_(std::make_unique<KernelState>(config)) {}

Kernel::~Kernel() = default;

uint64_t Kernel::ram_pages() const { return st_->pages.ram_pages(); }

uint64_t Kernel::ZeroPfn() const { return st_->pages.zero_pfn(); }

Config Kernel::config() const { return st_->config; }

// Mirrors: kernel/fork.c copy_process() for a process with an empty mm.
Result<Pid> Kernel::CreateProcess() {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  auto proc = std::make_shared<Process>();
  std::unique_lock<std::shared_mutex> tasklist(st_->tasklist_lock);
  // Is there room for one more process?
  if (st_->procs.size() + st_->forks_in_flight >= kMaxProcesses) return Errno::kAgain;
  uint64_t pid = st_->next_pid++;
  st_->procs.emplace(pid, std::move(proc));
  return Pid(pid);
}

// Mirrors: kernel/exit.c do_exit() -> exit_mm() -> mm/mmap.c exit_mmap().
Errno Kernel::Exit(Pid pid) {
  std::shared_lock<std::shared_mutex> quiesce(st_->quiesce);
  std::shared_ptr<Process> proc;
  {
    std::unique_lock<std::shared_mutex> tasklist(st_->tasklist_lock);
    auto it = st_->procs.find(pid.value);
    // Is the pid a live process?
    if (it == st_->procs.end()) return Errno::kSrch;
    proc = std::move(it->second);
    st_->procs.erase(it);
  }
  // Unlinked: no new operation finds it; those already holding it see
  // `exited` once they get the mmap_lock.
  std::unique_lock<std::shared_mutex> mmap_lock = MmapWriteLock(*proc);
  proc->exited = true;
  // Pins hold their own references, so pinned pages outlive the process.
  DoMunmap(*st_, *proc, 0, kTaskSize);
  return Errno::kOk;
}

}  // namespace hmm::impl
