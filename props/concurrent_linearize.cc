// File: props/concurrent_linearize.cc
//
// The linearizability check of a concurrent run (props/concurrent.h): the
// steps a device ioctl really takes, what a concurrent run may legitimately
// vary from the model's results, and the search over a migration's per-page
// outcomes.
//
// The dummy device's READ and WRITE are not atomic in the kernel
// (lib/test_hmm.c): they fault the range in (hmm_range_fault(), under the
// mmap_lock), then copy (under the driver's lock) page by page, retrying
// the fault when an invalidation took a page away; another thread may run
// in between, see the fault's effects, or write a page between two. So each
// stands in the history for its steps, all inside its [invoke, respond]
// (any may come first: the checker knows no order inside one interval):
//   - its fault-in, whose result says nothing: a dfault of the range (the
//     dummy device's fault alone, nothing copied), a read fault for a READ,
//     a write fault (which breaks COW, or allocates a page of zeros) for a
//     WRITE;
//   - its copy, the operation itself; per page when it succeeded, each
//     page's result its share (cpages=1, its bytes). A READ that failed
//     stays whole (what it read is not returned); a WRITE that failed is,
//     for each page but the last, that page's copy or nothing, then the
//     write from one of its pages on, which fails the same way: its earlier
//     pages may have been copied long before the failure.
//
// And a migration is atomic per page, not per call (docs/migrate.md): a
// page another thread holds (its lock, a transient reference) is skipped,
// which no sequential state explains. So a migrate_to_dev whose result
// cannot say which pages moved (MaySkipPages: kNoEnt; or ok or kInval while
// another actor's operation touched its range), or a migrate_to_sys that
// moved fewer pages than it covers, stands for one of its parts:
// the whole range, a contiguous part of it, or nothing (an empty range,
// which the model refuses with kInval and no effect).
//
// Each such step is a list of alternatives (props/linearize.h
// LinearizeInput::alternatives): the search tries each when it linearizes
// the step, so every combination is covered at no more cost than the
// configurations it reaches; the run is linearizable when one is.

#include <algorithm>
#include <utility>

#include "props/concurrent.h"

namespace hmm::props {
namespace {

// Op::line marks what a step of the checked history stands for (0 when
// generated, as every history's op is).
enum Mark : int {
  kMigrationPart = -1,     // a migration, or part of its range: its effect
  kMayMeetMigration = -2,  // a snapshot that overlapped an op that may move pages
  kFaultIn = -3,           // a device ioctl's fault-in (a dfault): its effect only
  kNothing = -4,           // a step that did not happen (an empty dwrite: kInval, no effect)
  kPageCopy = -5,          // a failed dwrite's page copied before the failure
  kFailingTail = -6,       // a failed dwrite from the page it failed at: its errno
};

// The fault a dread or dwrite `op` takes before its copy, alone: a dfault
// of its range (a write fault for a dwrite), marked kFaultIn.
Op FaultInOf(const Op& op) {
  Op fault;
  fault.kind = OpKind::kDfault;
  fault.mirror = op.mirror;
  fault.addr = op.addr;
  const bool write = op.kind == OpKind::kDwrite;
  fault.len = write ? op.data.size() / kPageSize : op.len;
  fault.prot = write ? kProtRead | kProtWrite : kProtRead;
  fault.line = kFaultIn;
  return fault;
}

// One step of `e`, `op`, at times doubled: [2i, 2r-1] for a fault-in,
// [2i+1, 2r] for a copy, so the steps of one operation overlap (any may
// come first) and all stay inside the original.
HistoryOp StepOf(const HistoryOp& e, const Op& op, bool copy) {
  HistoryOp step = e;
  step.op = op;
  step.invoke = 2 * e.invoke + (copy ? 1 : 0);
  step.respond = 2 * e.respond - (copy ? 0 : 1);
  return step;
}

// Page `i` of a dread or dwrite that succeeded, with its share of the result.
HistoryOp PageOf(const HistoryOp& e, uint64_t i) {
  HistoryOp page = e;
  page.op.addr = e.op.addr + i * kPageSize;
  page.result.cpages = 1;
  if (e.op.kind == OpKind::kDread) {
    page.op.len = 1;
    page.result.data.assign(e.result.data.begin() + i * kPageSize,
                            e.result.data.begin() + (i + 1) * kPageSize);
  } else {
    page.op.data.assign(e.op.data.begin() + i * kPageSize,
                        e.op.data.begin() + (i + 1) * kPageSize);
  }
  return page;
}

// dwrite `op` from page `first` on, marked `mark`.
Op WriteFrom(const Op& op, uint64_t first, Mark mark) {
  Op tail = op;
  tail.addr += first * kPageSize;
  tail.data.erase(tail.data.begin(), tail.data.begin() + first * kPageSize);
  tail.line = mark;
  return tail;
}

// A multi-page dwrite that failed: the pages before the one it failed at
// were copied, each maybe long before the failure. Steps: one per page but
// the last, each that page's copy or nothing, then the failing part, from
// one of its pages on (LinearizeRun tries each: Alternatives).
void AddFailedWrite(const HistoryOp& e, uint64_t npages, std::vector<HistoryOp>* out) {
  for (uint64_t i = 0; i + 1 < npages; ++i) {
    Op page = WriteFrom(e.op, i, kPageCopy);
    page.data.resize(kPageSize);
    out->push_back(StepOf(e, page, /*copy=*/true));
  }
  out->push_back(StepOf(e, WriteFrom(e.op, 0, kFailingTail), /*copy=*/true));
}

// A dread or dwrite as its steps: its fault-in (FaultInOf), then its copy,
// per page when it succeeded (the copy goes page by page, and another
// thread may write a page between two).
void AddDeviceAccess(const HistoryOp& e, std::vector<HistoryOp>* out) {
  const bool read = e.op.kind == OpKind::kDread;
  out->push_back(StepOf(e, FaultInOf(e.op), /*copy=*/false));
  const uint64_t npages = read ? e.op.len : e.op.data.size() / kPageSize;
  const bool ok = e.result.err == Errno::kOk && e.result.cpages == npages &&
                  (!read || e.result.data.size() == npages * kPageSize);
  if (!ok && !read && npages >= 2 && e.op.data.size() == npages * kPageSize) {
    return AddFailedWrite(e, npages, out);
  }
  if (!ok || npages < 2) return out->push_back(StepOf(e, e.op, /*copy=*/true));
  for (uint64_t i = 0; i < npages; ++i) {
    const HistoryOp page = PageOf(e, i);
    out->push_back(StepOf(page, page.op, /*copy=*/true));
  }
}

// A step that did not happen: an empty dwrite, refused with no effect.
Op Nothing(const Op& op) {
  Op nothing = op;
  nothing.data.clear();
  nothing.line = kNothing;
  return nothing;
}

// A failed dwrite's failing part: from each of its pages on.
std::vector<Op> FailingTails(const Op& op) {
  std::vector<Op> tails;
  for (uint64_t first = 0; first * kPageSize < op.data.size(); ++first) {
    tails.push_back(WriteFrom(op, first, kFailingTail));
  }
  return tails;
}

// The history to check: each dread and dwrite as its steps, the rest as
// they are (times doubled); origin[k]: the history index of step k.
std::vector<HistoryOp> Steps(const std::vector<HistoryOp>& history, std::vector<size_t>* origin) {
  std::vector<HistoryOp> out;
  for (const HistoryOp& e : history) {
    if (e.op.kind == OpKind::kDread || e.op.kind == OpKind::kDwrite) {
      AddDeviceAccess(e, &out);
    } else {
      HistoryOp d = e;
      d.invoke *= 2;
      d.respond *= 2;
      out.push_back(d);
    }
    origin->resize(out.size(), static_cast<size_t>(&e - history.data()));
  }
  return out;
}

// A witness over the steps as one over the operations: each in the place of
// its last step.
std::vector<size_t> OperationOrder(const std::vector<size_t>& steps,
                                   const std::vector<size_t>& origin) {
  std::vector<size_t> order;
  for (size_t k = steps.size(); k-- > 0;) {
    const size_t op = origin[steps[k]];
    if (std::find(order.begin(), order.end(), op) == order.end()) order.push_back(op);
  }
  std::reverse(order.begin(), order.end());
  return order;
}

// Did another actor's operation that touches migration `m`'s range (or
// forks) overlap it in time? A migration is atomic per page, not per call: a page another
// thread holds (its lock, a transient reference: a fork copying its entry, a
// pin, a fault) is skipped, and an empty slot another's fault filled
// since collect is lost at insertion (docs/migrate.md).
bool PageMayBeBusy(const HistoryOp& m, const std::vector<HistoryOp>& steps) {
  for (const HistoryOp& o : steps) {
    if (OverlapInTime(o, m) && TouchSamePages(o.op, m.op)) return true;
  }
  return false;
}

// Could the migration `e` have skipped pages, with no result to say so?
// MIGRATE_TO_DEV reads its range back through the device's page table
// after migrating: kNoEnt when a page is not there (not migrated, or
// invalidated since); ok when a skipped page's old entry is still there (the
// migration's own invalidation skips the owner's mirror) or a device fault
// of its mirror mapped the page that took a lost slot; kInval, without the
// read-back, when it met a hole after the pages before it. MIGRATE_TO_SYS
// reports the pages it moved.
bool MaySkipPages(const HistoryOp& e, const std::vector<HistoryOp>& steps) {
  if (e.op.kind == OpKind::kMigrateToDev) {
    const Errno err = e.result.err;
    return err == Errno::kNoEnt ||
           ((err == Errno::kOk || err == Errno::kInval) && PageMayBeBusy(e, steps));
  }
  return e.op.kind == OpKind::kMigrateToSys && e.result.err == Errno::kOk &&
         e.result.cpages < e.op.len;
}

// The whole range first, then each shorter contiguous part, nothing last.
std::vector<Op> Parts(const Op& op) {
  std::vector<Op> parts;
  for (uint64_t count = op.len; count-- > 0;) {
    for (uint64_t first = 0; first + count + 1 <= op.len; ++first) {
      Op part = op;
      part.addr += first * kPageSize;
      part.len = count + 1;
      part.line = kMigrationPart;
      parts.push_back(part);
    }
  }
  Op none = op;
  none.len = 0;
  none.line = kMigrationPart;
  parts.push_back(none);
  return parts;
}

// Could `k` move a page between RAM and a device (a migration, or a CPU or
// device access that faults a device page back)?
bool MayMovePages(OpKind k) {
  return k == OpKind::kMigrateToDev || k == OpKind::kMigrateToSys || k == OpKind::kRead ||
         k == OpKind::kWrite || k == OpKind::kDread || k == OpKind::kDwrite;
}

// Marks the snapshots that overlapped in time an operation that may move pages.
void MarkSnapshots(std::vector<HistoryOp>* h) {
  for (HistoryOp& s : *h) {
    if (s.op.kind != OpKind::kSnapshot) continue;
    for (const HistoryOp& o : *h) {
      if (MayMovePages(o.op.kind) && OverlapInTime(o, s)) {
        s.op.line = kMayMeetMigration;
      }
    }
  }
}

// A part of a migration: migrate_to_dev's result says nothing of what it
// moved when it may have skipped pages (MaySkipPages); migrate_to_sys
// reports the pages it moved.
bool PartExplains(const Op& op, const OpResult& model, const OpResult& impl) {
  if (op.kind == OpKind::kMigrateToDev) return true;
  if (op.len == 0) return impl.cpages == 0;
  return model.err == Errno::kOk && model.cpages == impl.cpages;
}

// A snapshot that met a migration entry reports the page as absent (0).
bool SnapshotExplains(const OpResult& model, const OpResult& impl) {
  if (model.err != impl.err || model.cpages != impl.cpages || model.faults != impl.faults ||
      model.data.size() != impl.data.size()) {
    return false;
  }
  for (size_t i = 0; i < impl.data.size(); ++i) {
    if (impl.data[i] != model.data[i] && impl.data[i] != 0) return false;
  }
  return true;
}

// For each step, the ops it may stand for (empty: only its own).
std::vector<std::vector<Op>> Alternatives(const std::vector<HistoryOp>& steps) {
  std::vector<std::vector<Op>> alternatives(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    const Op& op = steps[i].op;
    if (MaySkipPages(steps[i], steps)) alternatives[i] = Parts(op);
    if (op.line == kPageCopy) alternatives[i] = {op, Nothing(op)};
    if (op.line == kFailingTail) alternatives[i] = FailingTails(op);
  }
  return alternatives;
}

}  // namespace

bool ConcurrentSameResult(const Op& op, const OpResult& model, const OpResult& impl) {
  switch (op.line) {
    case kMigrationPart: return PartExplains(op, model, impl);
    case kMayMeetMigration: return SnapshotExplains(model, impl);
    case kFaultIn:
    case kNothing: return true;
    case kPageCopy: return model.err == Errno::kOk;
    case kFailingTail: return model.err == impl.err;
    default: break;
  }
  if (op.kind != OpKind::kDread && op.kind != OpKind::kDwrite) return model == impl;
  OpResult retried = impl;
  retried.faults = model.faults;
  return model == retried;
}

LinearizeResult LinearizeRun(const std::vector<Op>& setup, const std::vector<HistoryOp>& history,
                             const std::function<std::string(const model::Kernel&)>& final_check,
                             const LinearizeOptions& options) {
  LinearizeInput in;
  in.setup = setup;
  std::vector<size_t> origin;
  in.history = Steps(history, &origin);
  in.same_result = &ConcurrentSameResult;
  in.final_check = final_check;
  MarkSnapshots(&in.history);
  // Each step that may stand for several ops: the search tries each when it
  // linearizes the step (every range whole and every fault-in a read fault
  // first).
  in.alternatives = Alternatives(in.history);
  LinearizeResult r = CheckLinearizable(in, options);
  if (r.ok) r.order = OperationOrder(r.order, origin);
  return r;
}

}  // namespace hmm::props
