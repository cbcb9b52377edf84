// File: props/generators_race.h
//
// The race suite's generator (docs/concurrency.md, "How a race case is
// made"): a ConcurrentCase (props/concurrent.h) and its schedule, drawn
// together so that rapidcheck shrinks both: operations toward fewer and
// simpler ones, actors toward two, schedule bytes toward 0 (fewer context
// switches) and the schedule toward short.
//
// Everything aims at a window of kRaceWindowPages pages at kMmapBase, so the
// actors meet on the same pages: the prologue maps it, writes some of it,
// registers mirror 1 (device 0) and maybe mirror 2 (device 1), and warms the
// devices' page tables (dread, snapshot, migrate_to_dev), so a device actor
// finds entries the CPU actor can change under it.

#ifndef HMMREF_PROPS_GENERATORS_RACE_H_
#define HMMREF_PROPS_GENERATORS_RACE_H_

#include <cstdint>
#include <vector>

#include <rapidcheck.h>

#include "props/concurrent.h"
#include "props/op.h"

namespace hmm::props {

constexpr uint64_t kRaceWindowPages = 4;
// The most schedule bytes a case draws (a run of 2-3 actors of 1-4
// operations passes a few dozen yield points with a choice).
constexpr int kMaxRaceSchedule = 48;

// The prologue: `profile v18` when asked, `process`, the window, writes,
// mirrors, device warm-up.
rc::Gen<std::vector<Op>> GenRacePrologue(Profile profile);

// A CPU actor's operation: read, write, munmap, mprotect, madvise, fork on
// the window (pid 1, or the child a fork made).
rc::Gen<Op> GenRaceCpuOp();

// A device actor's operation on mirror 1 (or 2): dread, dwrite, snapshot,
// migrate_to_dev, migrate_to_sys on one or two pages of the window.
rc::Gen<Op> GenRaceDeviceOp();
// The same, of a kind `kind` draws.
rc::Gen<Op> GenRaceDeviceOpOf(rc::Gen<OpKind> kind);

// A whole case: prologue, a CPU actor "cpu0" and a device actor "dev1" of 1
// to 4 operations each, maybe a third ("cpu2" or "dev2"), and a schedule.
rc::Gen<ConcurrentCase> GenRaceCase(Profile profile);

}  // namespace hmm::props

#endif  // HMMREF_PROPS_GENERATORS_RACE_H_
