// File: props/apply.h
//
// The one place that maps a trace line (props::Op) onto an operation.
// model::Kernel and impl::Kernel have the same signatures, so Apply is a
// template over the side; set-up lines are folded into a Config before either
// kernel exists (ApplySetup) and are no-ops here.

#ifndef HMMREF_PROPS_APPLY_H_
#define HMMREF_PROPS_APPLY_H_

#include "model/types.h"
#include "props/op.h"

namespace hmm::props {

template <typename T>
OpResult FromResult(const Result<T>& r, uint64_t value) {
  OpResult out;
  out.err = r.err;
  if (r.ok()) out.value = value;
  return out;
}

inline OpResult FromErrno(Errno e) {
  OpResult out;
  out.err = e;
  return out;
}

// A set-up line's effect on the machine.
inline void ApplySetup(const Op& op, Config* config) {
  switch (op.kind) {
    case OpKind::kRam: config->ram_pages = op.len; return;
    case OpKind::kPhysmemBits: config->max_physmem_bits = static_cast<unsigned>(op.len); return;
    case OpKind::kSection: config->section_bytes = op.len; return;
    case OpKind::kProfile: config->profile = static_cast<Profile>(op.flags); return;
    default: return;
  }
}

// A dummy-device ioctl's outcome: cpages, faults and data only on success
// (the kernel copies the command back only then).
inline OpResult FromDmirror(const Result<DmirrorResult>& r) {
  OpResult out = FromErrno(r.err);
  if (!r.ok()) return out;
  out.cpages = r.value.cpages;
  out.faults = r.value.faults;
  out.data = r.value.data;
  return out;
}

// Migration (docs/migrate.md): the dummy device's migration ioctls.
template <typename Kernel>
OpResult ApplyMigrate(Kernel& k, const Op& op) {
  switch (op.kind) {
    case OpKind::kMigrateToDev:
      return FromDmirror(k.DmirrorMigrateToDev(op.mirror, op.addr, op.len));
    case OpKind::kMigrateToSys:
      return FromDmirror(k.DmirrorMigrateToSys(op.mirror, op.addr, op.len));
    case OpKind::kRelease: return FromErrno(k.DmirrorRelease(op.mirror));
    case OpKind::kDflags: return FromErrno(k.DmirrorFlags(op.mirror, op.flags));
    default: return FromErrno(Errno::kOk);  // set-up lines: consumed by ApplySetup
  }
}

template <typename Kernel>
OpResult ApplyMirror(Kernel& k, const Op& op) {
  switch (op.kind) {
    case OpKind::kMirror: {
      auto r = k.HmmMirrorRegister(DeviceId(op.device), Pid(op.pid));
      return FromResult(r, r.value);
    }
    case OpKind::kUnmirror: return FromErrno(k.HmmMirrorUnregister(op.mirror));
    case OpKind::kGetPfns: {
      auto r = k.HmmVmaGetPfns(op.mirror, op.addr, op.len);
      return FromResult(r, r.value);
    }
    case OpKind::kHmmFault: {
      auto r = k.HmmVmaFault(op.mirror, op.addr, op.len, (op.prot & kProtWrite) != 0);
      return FromResult(r, r.value);
    }
    case OpKind::kRangeDone: {
      auto r = k.HmmVmaRangeDone(op.range);
      return FromResult(r, r.value ? 1 : 0);
    }
    case OpKind::kCommit: {
      auto r = k.DmirrorCommit(op.range);
      return FromResult(r, r.value ? 1 : 0);
    }
    case OpKind::kDread: return FromDmirror(k.DmirrorRead(op.mirror, op.addr, op.len));
    case OpKind::kDwrite: return FromDmirror(k.DmirrorWrite(op.mirror, op.addr, op.data));
    case OpKind::kSnapshot: return FromDmirror(k.DmirrorSnapshot(op.mirror, op.addr, op.len));
    case OpKind::kDfault:
      return FromErrno(k.DmirrorFaultRange(op.mirror, op.addr, op.len, (op.prot & kProtWrite) != 0));
    default: return ApplyMigrate(k, op);
  }
}

template <typename Kernel>
OpResult ApplyDevice(Kernel& k, const Op& op) {
  switch (op.kind) {
    case OpKind::kDevmemAdd: {
      auto r = k.HmmDevmemAdd(DeviceId(op.device), op.len);
      return FromResult(r, r.value);
    }
    case OpKind::kDevmemRemove: return FromErrno(k.HmmDevmemRemove(op.devmem));
    case OpKind::kRamHotAdd: return FromErrno(k.RamHotAdd(op.addr, op.len));
    case OpKind::kRamHotRemove: return FromErrno(k.RamHotRemove(op.addr, op.len));
    case OpKind::kDevPageAlloc: {
      auto r = k.DevicePageAlloc(op.devmem);
      return FromResult(r, r.value);
    }
    case OpKind::kDevPagePut: return FromErrno(k.DevicePagePut(op.pfn));
    case OpKind::kDevMap:
      return FromErrno(k.DeviceEntryInstall(Pid(op.pid), op.addr, op.pfn, (op.prot & kProtWrite) != 0));
    case OpKind::kPageFrees: {
      auto r = k.PageFrees(op.devmem);
      return FromResult(r, r.value);
    }
    default: return ApplyMirror(k, op);
  }
}

template <typename Kernel>
OpResult Apply(Kernel& k, const Op& op) {
  const Pid pid(op.pid);
  switch (op.kind) {
    case OpKind::kCreateProcess: {
      auto r = k.CreateProcess();
      return FromResult(r, r.value.value);
    }
    case OpKind::kExit: return FromErrno(k.Exit(pid));
    case OpKind::kMmap: {
      auto r = k.Mmap(pid, op.addr, op.len, op.prot, op.flags);
      return FromResult(r, r.value);
    }
    case OpKind::kMunmap: return FromErrno(k.Munmap(pid, op.addr, op.len));
    case OpKind::kMprotect: return FromErrno(k.Mprotect(pid, op.addr, op.len, op.prot));
    case OpKind::kMadviseDontneed: return FromErrno(k.MadviseDontneed(pid, op.addr, op.len));
    case OpKind::kRead: {
      auto r = k.CpuRead(pid, op.addr, op.len);
      OpResult out = FromErrno(r.err);
      if (r.ok()) out.data = r.value;
      return out;
    }
    case OpKind::kWrite: return FromErrno(k.CpuWrite(pid, op.addr, op.data));
    case OpKind::kPin: {
      auto r = k.PinUserPages(pid, op.addr, op.len);
      return FromResult(r, r.value.value);
    }
    case OpKind::kUnpin: return FromErrno(k.UnpinUserPages(PinId(op.pin)));
    case OpKind::kFork: {
      auto r = k.Fork(pid);
      return FromResult(r, r.value.value);
    }
    case OpKind::kMremap: {
      auto r = k.Mremap(pid, op.addr, op.len, op.new_len, op.flags, op.new_addr);
      return FromResult(r, r.value);
    }
    default: return ApplyDevice(k, op);
  }
}

}  // namespace hmm::props

#endif  // HMMREF_PROPS_APPLY_H_
