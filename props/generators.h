// File: props/generators.h
//
// rapidcheck generators of traces for the CPU suite. Biased as ShardStore's:
// most addresses fall in a 16-page window at kMmapBase where first-fit mmaps
// also land, so operations collide with existing mappings; a steady share is
// malformed (unaligned, zero length, ranges past 2^48 or wrapping 2^64,
// unknown pids and pins) and must give the same Errno from model and impl.

#ifndef HMMREF_PROPS_GENERATORS_H_
#define HMMREF_PROPS_GENERATORS_H_

#include <vector>

#include <rapidcheck.h>

#include "props/op.h"

namespace hmm::props {

// Pages in the address window the generators aim at.
constexpr uint64_t kWindowPages = 16;

// A pid: mostly 1..3, sometimes one that never exists.
rc::Gen<uint64_t> GenPid();
// A page-aligned address in the window.
rc::Gen<uint64_t> GenWindowPage();

rc::Gen<Op> GenCpuOp();

// Up to `max_steps` ops of `op` (a suite's trace after its prologue).
rc::Gen<std::vector<Op>> GenOps(rc::Gen<Op> op, uint64_t max_steps);

// The first lines of every suite trace: one sequence in five starts with a
// `ram` line of 4 to 24 pages, so allocation failures (kNoMem in faults, pins
// and fork) are reached as often as the rest; then a `process` line.
rc::Gen<std::vector<Op>> GenCpuPrologue();

// A trace of at most `max_steps` operations (shrinks by dropping steps and
// simplifying each). It does not start with `process`: the suite adds one.
rc::Gen<std::vector<Op>> GenCpuTrace(uint64_t max_steps);

// --- The devmem suite (props/generators_devmem.cc) ---

// The machine of a devmem trace: physmem_bits 32 and 64 KiB sections (16 KiB
// in one trace in four, so regions run out), so the placement limit is
// 0x100000000 and device pfns start near 0x100000; one trace in four uses the
// v18 profile (placement below the limit).
rc::Gen<Config> GenDevmemConfig();

// Set-up lines for `config`, then a `process` line.
std::vector<Op> DevmemPrologue(const Config& config);

// One device-memory operation (devmem_add, devpage_alloc, devmap, ...) aimed
// at `config`'s placement.
rc::Gen<Op> GenDeviceMemoryOp(const Config& config);

// A trace mixing CPU operations with device-memory operations whose pfns,
// ranges and ids aim at what `config`'s placement produces.
rc::Gen<std::vector<Op>> GenDevmemTrace(const Config& config, uint64_t max_steps);

// --- The mirror suite (props/generators_mirror.cc) ---

// The devmem machine's set-up lines and `process`, then the window mapped
// read-write private by process 1.
std::vector<Op> WindowPrologue(const Config& config);

// `mirror DEVICE PID`.
Op MirrorLine(uint64_t device, uint64_t pid);

// A mirroring or migration op of a kind `kind` draws, its fields filled as
// the mirror suite's (mirror ids mostly 1, ranges aimed at the window).
rc::Gen<Op> GenMirrorOpOf(rc::Gen<OpKind> kind);

// WindowPrologue, then a `devmem_add` of one section for device 0 with one
// page allocated, and `mirror 0 1`: device operations meet mapped pages, a
// mirror and a device page from the first step.
std::vector<Op> MirrorPrologue(const Config& config);

// A trace mixing CPU operations, device-memory operations (for device-private
// entries) and mirroring: mirrors on devices 0..2 of processes 1..2, the
// snapshot/fault/commit protocol, and the dummy device's read, write and
// snapshot, aimed at the same 16-page window as the CPU operations.
rc::Gen<std::vector<Op>> GenMirrorTrace(const Config& config, uint64_t max_steps);

// --- The migrate suite (props/generators_migrate.cc) ---

// WindowPrologue, then `mirror 0 1`: the dummy device allocates its own device
// memory as migrations need it (docs/migrate.md).
std::vector<Op> MigratePrologue(const Config& config);

// A trace mixing CPU operations (faults move device pages back), migrations
// to and from the device on small ranges of the window, release, dflags
// fail_alloc, the dummy device's read, write and snapshot, more mirrors (1 to
// 3 devices, processes 1 and 2) and devmem_add.
rc::Gen<std::vector<Op>> GenMigrateTrace(const Config& config, uint64_t max_steps);

}  // namespace hmm::props

#endif  // HMMREF_PROPS_GENERATORS_H_
