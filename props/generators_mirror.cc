// File: props/generators_mirror.cc
//
// Generators for the mirror suite. Device ranges aim at the CPU window
// (props/generators.h kWindowPages), so a dread, a snapshot or a commit meets
// the pages CPU operations fault, COW-break, protect and unmap; mirror and
// range ids are small, so most lines name one that exists; a steady share is
// malformed (unaligned, zero pages, past the bounce buffer, unknown ids).

#include "props/generators.h"

namespace hmm::props {
namespace {

using rc::gen::element;
using rc::gen::inRange;
using rc::gen::weightedElement;
using rc::gen::weightedOneOf;

rc::Gen<uint64_t> GenMirrorId() {
  return weightedElement<uint64_t>({{20, 1}, {4, 2}, {1, 3}, {1, 0}, {1, 9}});
}

rc::Gen<uint64_t> GenRangeId() {
  return weightedOneOf<uint64_t>({{12, inRange<uint64_t>(1, 5)}, {1, element(uint64_t{0}, uint64_t{40})}});
}

// A device range's start: a window page, sometimes unaligned or past 2^48.
rc::Gen<uint64_t> GenDeviceAddr() {
  return weightedOneOf<uint64_t>({
      {20, GenWindowPage()},
      {1, rc::gen::map(GenWindowPage(), [](uint64_t a) { return a + 8; })},
      {1, element(uint64_t{0}, kTaskSize - kPageSize, ~uint64_t{0} - kPageSize + 1)},
  });
}

// Pages: mostly 1..4 (a range often spans two VMAs or a hole), sometimes 0,
// a whole window, or more than the bounce buffer holds.
rc::Gen<uint64_t> GenNpages() {
  return weightedOneOf<uint64_t>({
      {16, inRange<uint64_t>(1, 5)},
      {2, rc::gen::just(uint64_t{kWindowPages})},
      {1, element(uint64_t{0}, kMaxDmirrorPages + 1, uint64_t{1} << 40)},
  });
}

// dwrite's buffer: whole pages of one byte (shrinks as two numbers), now and
// then a length that is not whole pages.
rc::Gen<std::vector<uint8_t>> GenPages() {
  auto byte = rc::gen::map(inRange<int>(1, 256), [](int b) { return static_cast<uint8_t>(b); });
  auto whole = rc::gen::map(rc::gen::pair(byte, inRange<size_t>(1, 4)),
                            [](const std::pair<uint8_t, size_t>& p) {
                              return std::vector<uint8_t>(p.second * kPageSize, p.first);
                            });
  auto ragged = rc::gen::map(byte, [](uint8_t b) { return std::vector<uint8_t>(100, b); });
  return weightedOneOf<std::vector<uint8_t>>({{12, whole}, {1, ragged}});
}

// Fills the fields of a mirroring or migration op of kind op->kind.
void FillMirrorOp(Op* op) {
  switch (op->kind) {
    case OpKind::kMirror:
      op->device = *weightedElement<uint64_t>({{8, 0}, {4, 1}, {2, 2}, {1, kMaxDevices}});
      op->pid = *weightedElement<uint64_t>({{8, 1}, {3, 2}, {1, 70}});
      return;
    case OpKind::kUnmirror:
    case OpKind::kRelease: op->mirror = *GenMirrorId(); return;
    case OpKind::kDflags:
      op->mirror = *GenMirrorId();
      op->flags = *weightedElement<uint32_t>({{6, kDmirrorFlagFailAlloc}, {1, 0}, {1, 2}, {1, 3}});
      return;
    case OpKind::kRangeDone:
    case OpKind::kCommit: op->range = *GenRangeId(); return;
    case OpKind::kDwrite:
      op->mirror = *GenMirrorId();
      op->addr = *GenDeviceAddr();
      op->data = *GenPages();
      return;
    default:  // get_pfns, hmm_fault, dfault, dread, snapshot, migrate_to_dev, migrate_to_sys
      op->mirror = *GenMirrorId();
      op->addr = *GenDeviceAddr();
      op->len = *GenNpages();
      op->prot = *weightedElement<uint32_t>({{1, kProtRead}, {1, kProtRead | kProtWrite}});
      if (op->kind != OpKind::kHmmFault && op->kind != OpKind::kDfault) op->prot = 0;
      return;
  }
}

}  // namespace

rc::Gen<Op> GenMirrorOpOf(rc::Gen<OpKind> kind) {
  return rc::gen::exec([kind] {
    Op op;
    op.kind = *kind;
    FillMirrorOp(&op);
    return op;
  });
}

namespace {

rc::Gen<Op> GenMirrorOp() {
  return GenMirrorOpOf(weightedElement<OpKind>({
      {2, OpKind::kMirror}, {1, OpKind::kUnmirror}, {5, OpKind::kGetPfns},
      {4, OpKind::kHmmFault}, {2, OpKind::kRangeDone}, {6, OpKind::kCommit},
      {8, OpKind::kDread}, {6, OpKind::kDwrite}, {4, OpKind::kSnapshot}, {2, OpKind::kDfault},
  }));
}

rc::Gen<Op> GenMirrorSuiteOp(const Config& c) {
  return weightedOneOf<Op>({{6, GenCpuOp()}, {2, GenDeviceMemoryOp(c)}, {6, GenMirrorOp()}});
}

}  // namespace

std::vector<Op> WindowPrologue(const Config& config) {
  std::vector<Op> ops = DevmemPrologue(config);
  // The window mapped read-write, so device ranges meet mapped pages rather
  // than holes; CPU operations then protect, unmap and remap parts of it.
  Op window;
  window.kind = OpKind::kMmap;
  window.pid = 1;
  window.addr = kMmapBase;
  window.len = kWindowPages * kPageSize;
  window.prot = kProtRead | kProtWrite;
  window.flags = kMapPrivate | kMapFixed;
  ops.push_back(window);
  return ops;
}

Op MirrorLine(uint64_t device, uint64_t pid) {
  Op mirror;
  mirror.kind = OpKind::kMirror;
  mirror.device = device;
  mirror.pid = pid;
  return mirror;
}

std::vector<Op> MirrorPrologue(const Config& config) {
  std::vector<Op> ops = WindowPrologue(config);
  // One region of device 0 with its first page allocated, so a devmap of that
  // pfn reaches device entries (snapshot 0x21/0x22, dread of a device page).
  Op region;
  region.kind = OpKind::kDevmemAdd;
  region.device = 0;
  region.len = config.section_bytes;
  ops.push_back(region);
  Op alloc;
  alloc.kind = OpKind::kDevPageAlloc;
  alloc.devmem = 1;
  ops.push_back(alloc);
  ops.push_back(MirrorLine(0, 1));
  return ops;
}

rc::Gen<std::vector<Op>> GenMirrorTrace(const Config& c, uint64_t max_steps) {
  return GenOps(GenMirrorSuiteOp(c), max_steps);
}

}  // namespace hmm::props
