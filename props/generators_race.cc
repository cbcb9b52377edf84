// File: props/generators_race.cc
//
// The race suite's generator (props/generators_race.h). Kinds are listed in
// the order they shrink to (rapidcheck moves an element toward the first),
// pages toward the window's first, lengths toward one page.

#include "props/generators_race.h"

#include <utility>

namespace hmm::props {
namespace {

using rc::gen::inRange;
using rc::gen::weightedElement;
using rc::gen::weightedOneOf;

rc::Gen<uint64_t> GenRacePage() {
  return rc::gen::map(weightedElement<uint64_t>({{4, 0}, {3, 1}, {2, 2}, {1, 3}}),
                      [](uint64_t i) { return kMmapBase + i * kPageSize; });
}

rc::Gen<uint64_t> GenRaceNpages() { return weightedElement<uint64_t>({{3, 1}, {1, 2}}); }

rc::Gen<uint8_t> GenFillByte() {
  return rc::gen::map(inRange<int>(1, 256), [](int b) { return static_cast<uint8_t>(b); });
}

// A few bytes of one value for the CPU; whole pages of one value for a device.
rc::Gen<std::vector<uint8_t>> GenRaceBytes(bool whole_pages) {
  return rc::gen::map(rc::gen::pair(GenFillByte(), GenRaceNpages()),
                      [whole_pages](const std::pair<uint8_t, uint64_t>& p) {
                        return std::vector<uint8_t>(whole_pages ? p.second * kPageSize : 8,
                                                    p.first);
                      });
}

void FillRaceCpuOp(Op* op) {
  op->pid = *weightedElement<uint64_t>({{8, 1}, {1, 2}});
  op->addr = *GenRacePage();
  switch (op->kind) {
    case OpKind::kMunmap:
    case OpKind::kMadviseDontneed: op->len = *GenRaceNpages() * kPageSize; return;
    case OpKind::kMprotect:
      op->len = *GenRaceNpages() * kPageSize;
      op->prot = *weightedElement<uint32_t>(
          {{2, kProtRead}, {1, kProtNone}, {1, kProtRead | kProtWrite}});
      return;
    case OpKind::kRead: op->len = 8; return;
    case OpKind::kWrite: op->data = *GenRaceBytes(false); return;
    default: op->addr = 0; return;  // fork
  }
}

Op MirrorOf(uint64_t device) {
  Op op;
  op.kind = OpKind::kMirror;
  op.device = device;
  op.pid = 1;
  return op;
}

// process, then the window mapped read-write at kMmapBase (shared one time in five).
std::vector<Op> RaceHead(Profile profile, bool shared) {
  std::vector<Op> ops;
  if (profile != Profile::kDefault) {
    Op line;
    line.kind = OpKind::kProfile;
    line.flags = static_cast<uint32_t>(profile);
    ops.push_back(line);
  }
  ops.emplace_back();  // process
  Op window;
  window.kind = OpKind::kMmap;
  window.pid = 1;
  window.addr = kMmapBase;
  window.len = kRaceWindowPages * kPageSize;
  window.prot = kProtRead | kProtWrite;
  window.flags = (shared ? kMapShared : kMapPrivate) | kMapFixed;
  ops.push_back(window);
  return ops;
}

// Up to `n` ops of `gen`, shrinking toward none.
rc::Gen<std::vector<Op>> UpTo(int n, rc::Gen<Op> gen) {
  return rc::gen::resize(n, rc::gen::container<std::vector<Op>>(std::move(gen)));
}

// The CPU's set-up: writes that give the pages contents, a fork now and then.
rc::Gen<Op> GenCpuSetupOp() {
  return rc::gen::exec([] {
    Op op;
    op.kind = *weightedElement<OpKind>({{5, OpKind::kWrite}, {1, OpKind::kFork}});
    FillRaceCpuOp(&op);
    if (op.kind == OpKind::kFork) op.pid = 1;
    return op;
  });
}

// 1 to 4 operations of an actor.
rc::Gen<std::vector<Op>> GenActorOps(rc::Gen<Op> gen) {
  return rc::gen::resize(4, rc::gen::nonEmpty(rc::gen::container<std::vector<Op>>(std::move(gen))));
}

rc::Gen<std::vector<uint8_t>> GenSchedule() {
  auto byte = weightedElement<uint8_t>({{3, 0}, {2, 1}, {1, 2}});
  return rc::gen::resize(kMaxRaceSchedule, rc::gen::container<std::vector<uint8_t>>(byte));
}

}  // namespace

rc::Gen<Op> GenRaceCpuOp() {
  return rc::gen::exec([] {
    Op op;
    op.kind = *weightedElement<OpKind>({{3, OpKind::kMunmap}, {3, OpKind::kMprotect},
                                        {2, OpKind::kMadviseDontneed}, {3, OpKind::kRead},
                                        {4, OpKind::kWrite}, {2, OpKind::kFork}});
    FillRaceCpuOp(&op);
    return op;
  });
}

rc::Gen<Op> GenRaceDeviceOp() {
  // dwrite is rarer than the rest: its pages of one byte are 4096 bytes
  // each in every model state the linearizability search copies.
  return GenRaceDeviceOpOf(weightedElement<OpKind>({{4, OpKind::kDread}, {1, OpKind::kDwrite},
                                                    {2, OpKind::kSnapshot},
                                                    {3, OpKind::kMigrateToDev},
                                                    {2, OpKind::kMigrateToSys}}));
}

rc::Gen<Op> GenRaceDeviceOpOf(rc::Gen<OpKind> kind) {
  return rc::gen::exec([kind] {
    Op op;
    op.kind = *kind;
    op.mirror = *weightedElement<uint64_t>({{5, 1}, {1, 2}});
    op.addr = *GenRacePage();
    if (op.kind == OpKind::kDwrite) {
      op.data = *GenRaceBytes(true);
    } else {
      op.len = *GenRaceNpages();
    }
    return op;
  });
}

rc::Gen<std::vector<Op>> GenRacePrologue(Profile profile) {
  return rc::gen::exec([profile] {
    std::vector<Op> ops = RaceHead(profile, *weightedElement<bool>({{4, false}, {1, true}}));
    for (const Op& op : *UpTo(3, GenCpuSetupOp())) ops.push_back(op);
    ops.push_back(MirrorOf(0));
    if (*weightedElement<bool>({{1, false}, {1, true}})) ops.push_back(MirrorOf(1));
    // Device warm-up: the devices' page tables filled, pages migrated; no
    // dwrite (its pages would weigh on every state of the search).
    const auto warm = GenRaceDeviceOpOf(weightedElement<OpKind>(
        {{4, OpKind::kDread}, {2, OpKind::kSnapshot}, {3, OpKind::kMigrateToDev}}));
    for (const Op& op : *UpTo(3, warm)) ops.push_back(op);
    return ops;
  });
}

rc::Gen<ConcurrentCase> GenRaceCase(Profile profile) {
  return rc::gen::exec([profile] {
    ConcurrentCase c;
    c.prologue = *GenRacePrologue(profile);
    c.actors.push_back({"cpu0", *GenActorOps(GenRaceCpuOp())});
    c.actors.push_back({"dev1", *GenActorOps(GenRaceDeviceOp())});
    // A third actor: none, another CPU thread, another device thread.
    const int third = *weightedElement<int>({{2, 0}, {1, 1}, {1, 2}});
    if (third == 1) c.actors.push_back({"cpu2", *GenActorOps(GenRaceCpuOp())});
    if (third == 2) c.actors.push_back({"dev2", *GenActorOps(GenRaceDeviceOp())});
    c.schedule = *GenSchedule();
    return c;
  });
}

}  // namespace hmm::props
