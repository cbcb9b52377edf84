// File: props/generators_migrate.cc
//
// Generators for the migrate suite (docs/migrate.md). Migrations aim at small
// ranges of the CPU window (props/generators.h kWindowPages), where CPU
// operations then fault device pages back, fork them, pin, protect and unmap
// them; mirrors of other devices and processes read them; `release` and
// `migrate_to_sys` bring them back; `dflags fail_alloc` makes the next
// allocation fail. One machine in five has 4 to 24 pages of RAM
// (GenDevmemConfig), so moving back runs out of RAM as well.

#include "props/generators.h"

namespace hmm::props {
namespace {

using rc::gen::inRange;
using rc::gen::weightedElement;
using rc::gen::weightedOneOf;

// migrate_to_dev, migrate_to_sys, release, dflags.
rc::Gen<Op> GenMigrationOp() {
  return GenMirrorOpOf(weightedElement<OpKind>({{5, OpKind::kMigrateToDev},
                                                {3, OpKind::kMigrateToSys},
                                                {1, OpKind::kRelease}, {1, OpKind::kDflags}}));
}

// The dummy device's read, write and snapshot, and more mirrors: devices 0
// to 2 of processes 1 and 2 (another device's read moves a page back).
rc::Gen<Op> GenDeviceAccessOp() {
  return GenMirrorOpOf(weightedElement<OpKind>({{3, OpKind::kDread}, {2, OpKind::kDwrite},
                                                {3, OpKind::kSnapshot}, {2, OpKind::kMirror}}));
}

// A region for the dummy device to allocate from before it adds its own.
rc::Gen<Op> GenRegionOp(const Config& c) {
  return rc::gen::map(rc::gen::pair(inRange<uint64_t>(0, 3), inRange<uint64_t>(1, 3)),
                      [c](const std::pair<uint64_t, uint64_t>& p) {
                        Op op;
                        op.kind = OpKind::kDevmemAdd;
                        op.device = p.first;
                        op.len = p.second * c.section_bytes;
                        return op;
                      });
}

rc::Gen<Op> GenMigrateSuiteOp(const Config& c) {
  return weightedOneOf<Op>({{6, GenCpuOp()}, {6, GenMigrationOp()}, {3, GenDeviceAccessOp()},
                            {1, GenRegionOp(c)}});
}

}  // namespace

std::vector<Op> MigratePrologue(const Config& config) {
  std::vector<Op> ops = WindowPrologue(config);
  ops.push_back(MirrorLine(0, 1));
  return ops;
}

rc::Gen<std::vector<Op>> GenMigrateTrace(const Config& c, uint64_t max_steps) {
  return GenOps(GenMigrateSuiteOp(c), max_steps);
}

}  // namespace hmm::props
