// File: props/trace_random_ops.h
//
// Random ops of every kind, each with only the fields its line prints, and
// (three times in four) an expectation in the shape ExpectFromResult builds:
// for the round-trip tests of the trace language (trace_more_test.cc).

#ifndef HMMREF_PROPS_TRACE_RANDOM_OPS_H_
#define HMMREF_PROPS_TRACE_RANDOM_OPS_H_

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include "props/trace.h"

namespace hmm::props::testing {

class RandomOps {
 public:
  static constexpr uint64_t kNumKinds = static_cast<uint64_t>(kLastOpKind) + 1;

  explicit RandomOps(uint32_t seed) : rng_(seed) {}

  Op Next() {
    Op op;
    op.kind = static_cast<OpKind>(Below(kNumKinds));
    op.pid = Number();
    if (!FillCpu(&op) && !FillDevice(&op) && !FillMirror(&op)) FillSetup(&op);
    if (Below(4) != 0) op.expect = ExpectFor(op.kind);
    return op;
  }

 private:
  // The CPU lines; false for another kind.
  bool FillCpu(Op* op) {
    switch (op->kind) {
      case OpKind::kCreateProcess: op->pid = 0; return true;
      case OpKind::kExit:
      case OpKind::kFork: return true;
      case OpKind::kMmap:
        Range(op);
        op->prot = Bits();
        op->flags = Bits();
        return true;
      case OpKind::kMunmap:
      case OpKind::kMadviseDontneed:
      case OpKind::kRead:
      case OpKind::kPin: Range(op); return true;
      case OpKind::kMprotect:
        Range(op);
        op->prot = Bits();
        return true;
      case OpKind::kWrite:
        op->addr = Number();
        op->data = Data();
        return true;
      case OpKind::kUnpin:
        op->pid = 0;
        op->pin = Number();
        return true;
      case OpKind::kMremap:
        Range(op);
        op->new_len = Number();
        op->flags = Bits();
        if ((op->flags & kMremapFixed) != 0 || Below(2) == 0) op->new_addr = Number();
        return true;
      default: return false;
    }
  }

  // The device-memory lines; false for another kind.
  bool FillDevice(Op* op) {
    switch (op->kind) {
      case OpKind::kDevmemAdd:
        op->pid = 0;
        op->device = Number();
        op->len = Number();
        return true;
      case OpKind::kDevmemRemove:
      case OpKind::kDevPageAlloc:
      case OpKind::kPageFrees:
        op->pid = 0;
        op->devmem = Number();
        return true;
      case OpKind::kRamHotAdd:
      case OpKind::kRamHotRemove:
        op->pid = 0;
        Range(op);
        return true;
      case OpKind::kDevPagePut:
        op->pid = 0;
        op->pfn = Number();
        return true;
      case OpKind::kDevMap:
        op->addr = Number();
        op->pfn = Number();
        op->prot = Bits();
        return true;
      default: return false;
    }
  }

  // The mirroring lines; false for another kind.
  bool FillMirror(Op* op) {
    switch (op->kind) {
      case OpKind::kMirror: op->device = Number(); return true;
      case OpKind::kUnmirror: break;
      case OpKind::kRelease: break;
      case OpKind::kGetPfns:
      case OpKind::kDread:
      case OpKind::kSnapshot:
      case OpKind::kMigrateToDev:
      case OpKind::kMigrateToSys: Range(op); break;
      case OpKind::kDflags: op->flags = Bits(); break;
      case OpKind::kHmmFault:
      case OpKind::kDfault:
        Range(op);
        op->prot = Bits();
        break;
      case OpKind::kDwrite:
        op->addr = Number();
        op->data = Data();
        break;
      case OpKind::kRangeDone:
      case OpKind::kCommit:
        op->pid = 0;
        op->range = Number();
        return true;
      default: return false;
    }
    op->pid = 0;
    op->mirror = Number();
    return true;
  }

  // Set-up lines: only values inside their bounds parse.
  void FillSetup(Op* op) {
    op->pid = 0;
    switch (op->kind) {
      case OpKind::kRam:
        op->len = kMinTraceRamPages + Below(kMaxTraceRamPages - kMinTraceRamPages + 1);
        return;
      case OpKind::kPhysmemBits:
        op->len = kMinPhysmemBits + Below(kMaxPhysmemBits - kMinPhysmemBits + 1);
        return;
      case OpKind::kSection:
        op->len = kMinSectionBytes << Below(19);  // 4 KiB .. 1 GiB
        return;
      default:  // profile
        op->flags = static_cast<uint32_t>(
            std::array<Profile, 3>{Profile::kDefault, Profile::kV18, Profile::kLinux61}[Below(3)]);
        return;
    }
  }

  uint64_t Below(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }

  uint64_t Number() {
    switch (Below(4)) {
      case 0: return Below(16);
      case 1: return kMmapBase + Below(64) * kPageSize;
      case 2: return UINT64_MAX - Below(4);
      default: return std::uniform_int_distribution<uint64_t>()(rng_);
    }
  }

  uint32_t Bits() {
    return Below(3) == 0 ? static_cast<uint32_t>(Number()) : static_cast<uint32_t>(Below(8));
  }

  void Range(Op* op) {
    op->addr = Number();
    op->len = Number();
  }

  std::vector<uint8_t> Data() {
    size_t n = Below(3) == 0 ? Below(5000) : Below(40);
    std::vector<uint8_t> data(n);
    switch (Below(4)) {
      case 0:  // printable, quotes and backslashes included
        for (uint8_t& c : data) c = static_cast<uint8_t>(0x20 + Below(0x5f));
        break;
      case 1:  // text with \n \t \r, and '=' as in counters
        for (uint8_t& c : data) c = "ab\"\\\n\t\r #->="[Below(13)];
        break;
      case 2:  // uniform
        std::fill(data.begin(), data.end(), static_cast<uint8_t>(Below(256)));
        break;
      default:  // any byte
        for (uint8_t& c : data) c = static_cast<uint8_t>(Below(256));
    }
    return data;
  }

  Expect ExpectFor(OpKind kind) {
    OpResult r;
    r.err = Below(3) == 0 ? static_cast<Errno>(Below(12)) : Errno::kOk;
    r.value = Number();
    r.data = Data();
    r.cpages = Number();
    r.faults = Number();
    Expect e = ExpectFromResult(kind, r);
    if (Below(5) == 0) {  // a bare "ok"
      e.value.reset();
      e.data.reset();
    }
    if (Below(4) == 0) e.cpages.reset();  // each part of an ioctl's result is optional
    if (Below(4) == 0) e.faults.reset();
    return e;
  }

  std::mt19937 rng_;
};

}  // namespace hmm::props::testing

#endif  // HMMREF_PROPS_TRACE_RANDOM_OPS_H_
