// File: props/model_query.cc

#include "props/model_query.h"

#include <algorithm>

namespace hmm::props {

const model::Process* FindProcess(const model::State& s, uint64_t pid) {
  auto it = s.procs.find(Pid(pid));
  return it == s.procs.end() ? nullptr : &it->second;
}

const model::Pte* FindPte(const model::Process& p, uint64_t vpn) {
  auto it = p.ptes.find(Vpn(vpn));
  return it == p.ptes.end() ? nullptr : &it->second;
}

const model::Vma* FindVma(const model::Process& p, uint64_t vpn) {
  auto it = p.vmas.upper_bound(Vpn(vpn));
  if (it == p.vmas.begin()) return nullptr;
  --it;
  return vpn < it->second.end.value ? &it->second : nullptr;
}

bool NamesPage(const model::Pte& pte) { return !pte.zero && !pte.device && pte.page != 0; }

bool ByteSpan(uint64_t addr, uint64_t len, uint64_t* first, uint64_t* end) {
  if (len == 0 || addr >= kTaskSize) return false;
  const uint64_t last_byte = len - 1 > kTaskSize - 1 - addr ? kTaskSize - 1 : addr + len - 1;
  *first = addr >> kPageShift;
  *end = (last_byte >> kPageShift) + 1;
  return true;
}

bool PageRange(uint64_t addr, uint64_t npages, uint64_t* first, uint64_t* end) {
  if (npages == 0 || addr >= kTaskSize) return false;
  *first = addr >> kPageShift;
  *end = npages > kMaxVpn - *first ? kMaxVpn : *first + npages;
  return true;
}

size_t CountDeviceEntries(const model::State& s) {
  size_t n = 0;
  for (const auto& proc : s.procs) {
    n += static_cast<size_t>(std::count_if(proc.second.ptes.begin(), proc.second.ptes.end(),
                                           [](const auto& e) { return e.second.device; }));
  }
  return n;
}

const model::Devmem* FindDevmemOf(const model::State& s, uint64_t pfn) {
  for (const auto& d : s.devmems) {
    if (pfn >= d.second.first_pfn && pfn - d.second.first_pfn < d.second.npages) return &d.second;
  }
  return nullptr;
}

const model::DevicePage* FindDevicePage(const model::State& s, uint64_t pfn) {
  const model::Devmem* d = FindDevmemOf(s, pfn);
  if (d == nullptr) return nullptr;
  auto it = d->pages.find(pfn);
  return it == d->pages.end() ? nullptr : &it->second;
}

const model::Mirror* FindMirror(const model::State& s, uint64_t id) {
  auto it = s.mirrors.find(id);
  return it == s.mirrors.end() ? nullptr : &it->second;
}

bool OpRange(const Op& op, uint64_t* first, uint64_t* end) {
  switch (op.kind) {
    case OpKind::kRead:
    case OpKind::kMunmap:
    case OpKind::kMprotect:
    case OpKind::kMadviseDontneed: return ByteSpan(op.addr, op.len, first, end);
    case OpKind::kWrite:
    case OpKind::kDwrite: return ByteSpan(op.addr, op.data.size(), first, end);
    case OpKind::kPin:
    case OpKind::kHmmFault:
    case OpKind::kDfault:
    case OpKind::kDread:
    case OpKind::kSnapshot:
    case OpKind::kMigrateToDev:
    case OpKind::kMigrateToSys: return PageRange(op.addr, op.len, first, end);
    default: return false;
  }
}

uint64_t OpPid(const Op& op, const model::State& s) {
  if (op.kind < OpKind::kMirror) return op.pid;  // the CPU and device-memory lines
  const model::Mirror* m = FindMirror(s, op.mirror);
  return m != nullptr ? m->pid.value : 0;
}

bool ReachesDeviceEntry(const model::State& s, uint64_t pid, uint64_t first, uint64_t end,
                        const DeviceId* other_than) {
  const model::Process* proc = FindProcess(s, pid);
  bool found = false;
  if (proc == nullptr) return false;
  ForEachDeviceEntryIn(*proc, first, end, [&](uint64_t, const model::Pte& pte) {
    const model::Devmem* d = FindDevmemOf(s, pte.device_pfn);
    found = found || other_than == nullptr || d == nullptr || d->device != *other_than;
  });
  return found;
}

}  // namespace hmm::props
