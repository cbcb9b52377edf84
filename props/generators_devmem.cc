// File: props/generators_devmem.cc
//
// Generators for the devmem suite. Device pfns and hot-add ranges are aimed at
// where the configured placement puts device memory (just above the limit by
// default, just below it under v18), so allocation, mapping, put, collision
// and removal meet each other within a few steps.

#include "props/generators.h"

namespace hmm::props {
namespace {

using rc::gen::element;
using rc::gen::inRange;
using rc::gen::weightedElement;
using rc::gen::weightedOneOf;

uint64_t Limit(const Config& c) { return uint64_t{1} << c.max_physmem_bits; }

// Device pfns: a few pages into one of the first regions the placement hands
// out (allocation takes the lowest free pfn, so low offsets are the ones that
// get allocated), plus a few that name no device page (0, a RAM pfn, far away).
rc::Gen<uint64_t> GenDevicePfn(const Config& c) {
  const uint64_t limit_pfn = Limit(c) >> kPageShift;
  const uint64_t section_pages = c.section_bytes >> kPageShift;
  const bool v18 = c.profile == Profile::kV18;
  auto region = weightedElement<uint64_t>({{6, 0}, {2, 1}, {1, 2}});  // mostly the first
  auto base = rc::gen::map(region, [=](uint64_t k) {
    return v18 ? limit_pfn - (k + 1) * section_pages : limit_pfn + k * section_pages;
  });
  auto offset = weightedElement<uint64_t>({{8, 0}, {4, 1}, {2, 2}, {1, 3}});
  auto near = rc::gen::map(rc::gen::pair(base, offset),
                           [](const std::pair<uint64_t, uint64_t>& p) { return p.first + p.second; });
  return weightedOneOf<uint64_t>(
      {{12, near}, {1, element(uint64_t{0}, uint64_t{5}, limit_pfn << 4)}});
}

rc::Gen<uint64_t> GenDevmemId() {
  return weightedElement<uint64_t>({{8, 1}, {4, 2}, {2, 3}, {1, 0}, {1, 9}});
}

// Hot-add candidates: just below the limit (where v18 places device memory),
// at the limit (refused: above), low free RAM space, boot RAM, unaligned.
rc::Gen<uint64_t> GenHotplugStart(const Config& c) {
  const uint64_t limit = Limit(c);
  const uint64_t sec = c.section_bytes;
  return weightedOneOf<uint64_t>({
      {8, rc::gen::map(inRange<uint64_t>(1, 4), [=](uint64_t k) { return limit - k * sec; })},
      {2, element(limit, limit / 2, uint64_t{0})},
      {1, rc::gen::map(inRange<uint64_t>(1, sec), [=](uint64_t off) { return limit - sec + off; })},
  });
}

rc::Gen<uint64_t> GenRegionSize(const Config& c) {
  const uint64_t sec = c.section_bytes;
  return weightedOneOf<uint64_t>({
      {10, rc::gen::map(inRange<uint64_t>(1, 3), [=](uint64_t k) { return k * sec; })},
      {2, inRange<uint64_t>(1, sec)},  // rounded up to a section
      {1, element(uint64_t{0}, Limit(c) + sec, ~uint64_t{0})},
  });
}

void FillDeviceOp(const Config& c, Op* op) {
  switch (op->kind) {
    case OpKind::kDevmemAdd:
      op->device = *inRange<uint64_t>(0, 3);
      op->len = *GenRegionSize(c);
      return;
    case OpKind::kDevmemRemove:
    case OpKind::kDevPageAlloc:
    case OpKind::kPageFrees:
      op->devmem = *GenDevmemId();
      return;
    case OpKind::kRamHotAdd:
    case OpKind::kRamHotRemove:
      op->addr = *GenHotplugStart(c);
      op->len = *GenRegionSize(c);
      return;
    case OpKind::kDevPagePut:
      op->pfn = *GenDevicePfn(c);
      return;
    case OpKind::kDevMap:
      op->pid = *weightedElement<uint64_t>({{8, 1}, {1, 2}, {1, 70}});
      op->addr = *GenWindowPage();
      op->pfn = *GenDevicePfn(c);
      op->prot = *weightedElement<uint32_t>({{3, kProtRead | kProtWrite}, {2, kProtRead}});
      return;
    default:
      return;
  }
}

}  // namespace

rc::Gen<Op> GenDeviceMemoryOp(const Config& c) {
  return rc::gen::exec([c] {
    Op op;
    op.kind = *weightedElement<OpKind>({
        {4, OpKind::kDevmemAdd}, {2, OpKind::kDevmemRemove}, {2, OpKind::kRamHotAdd},
        {1, OpKind::kRamHotRemove}, {8, OpKind::kDevPageAlloc}, {5, OpKind::kDevPagePut},
        {10, OpKind::kDevMap}, {2, OpKind::kPageFrees},
    });
    FillDeviceOp(c, &op);
    return op;
  });
}

namespace {

rc::Gen<Op> GenDevmemOp(const Config& c) {
  return weightedOneOf<Op>({{1, GenCpuOp()}, {1, GenDeviceMemoryOp(c)}});
}

}  // namespace

rc::Gen<Config> GenDevmemConfig() {
  // One machine in four has 16 KiB sections, so a region is only 4 pages and
  // running out of device pages (kNoMem) is reachable in a short trace.
  auto profile = weightedElement<int>({{3, 0}, {1, 1}});
  auto section = weightedElement<uint64_t>({{3, 0x10000}, {1, 0x4000}});
  auto ram = weightedOneOf<uint64_t>({{4, rc::gen::just<uint64_t>(0)}, {1, inRange<uint64_t>(4, 25)}});
  return rc::gen::apply(
      [](int v18, uint64_t section_bytes, uint64_t ram_pages) {
        Config c;
        c.max_physmem_bits = 32;
        c.section_bytes = section_bytes;
        c.profile = v18 == 1 ? Profile::kV18 : Profile::kDefault;
        if (ram_pages != 0) c.ram_pages = ram_pages;
        return c;
      },
      profile, section, ram);
}

std::vector<Op> DevmemPrologue(const Config& c) {
  const Config defaults;
  std::vector<Op> ops;
  auto setup = [&ops](OpKind kind, uint64_t len, uint32_t flags) {
    Op op;
    op.kind = kind;
    op.len = len;
    op.flags = flags;
    ops.push_back(op);
  };
  // Only the lines that differ from the defaults, so traces stay short.
  if (c.ram_pages != defaults.ram_pages) setup(OpKind::kRam, c.ram_pages, 0);
  if (c.max_physmem_bits != defaults.max_physmem_bits) {
    setup(OpKind::kPhysmemBits, c.max_physmem_bits, 0);
  }
  if (c.section_bytes != defaults.section_bytes) setup(OpKind::kSection, c.section_bytes, 0);
  if (c.profile != defaults.profile) setup(OpKind::kProfile, 0, static_cast<uint32_t>(c.profile));
  setup(OpKind::kCreateProcess, 0, 0);
  return ops;
}

rc::Gen<std::vector<Op>> GenDevmemTrace(const Config& c, uint64_t max_steps) {
  return GenOps(GenDevmemOp(c), max_steps);
}

}  // namespace hmm::props
