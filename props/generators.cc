// File: props/generators.cc

#include "props/generators.h"

#include <utility>

namespace hmm::props {
namespace {

using rc::gen::element;
using rc::gen::inRange;
using rc::gen::weightedElement;
using rc::gen::weightedOneOf;

constexpr uint64_t kPage = kPageSize;

rc::Gen<uint64_t> GenAddr() {
  return weightedOneOf<uint64_t>({
      {20, GenWindowPage()},
      {2, rc::gen::map(rc::gen::pair(GenWindowPage(), inRange<uint64_t>(1, kPage)),
                       [](const std::pair<uint64_t, uint64_t>& p) { return p.first + p.second; })},
      {1, element(uint64_t{0}, uint64_t{kTaskSize - kPage}, uint64_t{kTaskSize}, ~uint64_t{0} - kPage + 1)},
  });
}

rc::Gen<uint64_t> GenLen() {
  return weightedOneOf<uint64_t>({
      {20, rc::gen::map(inRange<uint64_t>(1, 5), [](uint64_t n) { return n * kPage; })},
      {2, inRange<uint64_t>(1, 2 * kPage)},
      {1, rc::gen::just<uint64_t>(0)},
      {1, element(uint64_t{kTaskSize}, uint64_t{1} << 47, ~uint64_t{0} - kPage + 1)},
  });
}

rc::Gen<uint32_t> GenProt() {
  return weightedElement<uint32_t>({{4, kProtRead | kProtWrite}, {3, kProtRead},
                                    {1, kProtNone}, {1, kProtWrite}, {1, 8}});
}

rc::Gen<uint32_t> GenMapFlags() {
  return weightedElement<uint32_t>({{8, kMapPrivate | kMapFixed}, {4, kMapShared | kMapFixed},
                                    {3, kMapPrivate}, {2, kMapShared}, {1, 0},
                                    {1, kMapPrivate | kMapShared}});
}

rc::Gen<uint32_t> GenMremapFlags() {
  return weightedElement<uint32_t>({{4, kMremapMaymove}, {3, 0},
                                    {3, kMremapMaymove | kMremapFixed}, {1, kMremapFixed}, {1, 8}});
}

// Short writes are arbitrary bytes; page-crossing ones are one byte repeated,
// so shrinking them moves two numbers instead of thousands of bytes.
rc::Gen<std::vector<uint8_t>> GenBytes() {
  auto byte = rc::gen::map(inRange<int>(0, 256), [](int b) { return static_cast<uint8_t>(b); });
  auto short_write = rc::gen::mapcat(inRange<size_t>(1, 9), [byte](size_t n) {
    return rc::gen::container<std::vector<uint8_t>>(n, byte);
  });
  auto long_fill = rc::gen::map(rc::gen::pair(byte, inRange<size_t>(4090, 4200)),
                                [](const std::pair<uint8_t, size_t>& p) {
                                  return std::vector<uint8_t>(p.second, p.first);
                                });
  return weightedOneOf<std::vector<uint8_t>>({{12, short_write}, {1, long_fill}});
}

rc::Gen<uint64_t> GenAccessAddr() {
  return weightedOneOf<uint64_t>({
      {8, rc::gen::map(rc::gen::pair(GenWindowPage(), inRange<uint64_t>(0, kPage)),
                       [](const std::pair<uint64_t, uint64_t>& p) { return p.first + p.second; })},
      {1, GenAddr()},
  });
}

// Fills the fields one operation kind reads; the others stay zero.
void FillOp(Op* op) {
  switch (op->kind) {
    case OpKind::kCreateProcess:
      return;
    case OpKind::kExit:
      // Rarely pid 1: once it exits, most of the rest of the trace is kSrch.
      op->pid = *weightedElement<uint64_t>({{1, 1}, {4, 2}, {3, 3}, {1, 70}});
      return;
    case OpKind::kFork:
      op->pid = *GenPid();
      return;
    case OpKind::kMmap:
      op->pid = *GenPid();
      op->addr = *GenAddr();
      op->len = *GenLen();
      op->prot = *GenProt();
      op->flags = *GenMapFlags();
      return;
    case OpKind::kMunmap:
    case OpKind::kMadviseDontneed:
      op->pid = *GenPid();
      op->addr = *GenAddr();
      op->len = *GenLen();
      return;
    case OpKind::kMprotect:
      op->pid = *GenPid();
      op->addr = *GenAddr();
      op->len = *GenLen();
      op->prot = *GenProt();
      return;
    case OpKind::kRead:
      op->pid = *GenPid();
      op->addr = *GenAccessAddr();
      op->len = *weightedOneOf<uint64_t>({{12, inRange<uint64_t>(1, 17)},
                                          {1, rc::gen::just<uint64_t>(0)},
                                          {1, inRange<uint64_t>(4000, 5000)}});
      return;
    case OpKind::kWrite:
      op->pid = *GenPid();
      op->addr = *GenAccessAddr();
      op->data = *GenBytes();
      return;
    case OpKind::kPin:
      op->pid = *GenPid();
      op->addr = *GenAddr();
      op->len = *weightedElement<uint64_t>({{12, 1}, {4, 2}, {2, 3}, {1, 0}, {1, 600}});
      return;
    case OpKind::kUnpin:
      op->pin = *weightedElement<uint64_t>({{6, 1}, {4, 2}, {2, 3}, {1, 0}, {1, 9}});
      return;
    case OpKind::kMremap:
      op->pid = *GenPid();
      op->addr = *GenAddr();
      op->len = *GenLen();
      op->new_len = *GenLen();
      op->flags = *GenMremapFlags();
      op->new_addr = *GenAddr();
      return;
  }
}

}  // namespace

rc::Gen<uint64_t> GenPid() {
  // Mostly pid 1 (the one process every trace starts with): pids 2 and 3 exist
  // only after a fork or a second `process`, and an unknown pid is a kSrch.
  return weightedElement<uint64_t>({{16, 1}, {4, 2}, {2, 3}, {1, 0}, {1, 70}});
}

rc::Gen<uint64_t> GenWindowPage() {
  // Half the time the first four pages, where first-fit mmaps land, so that
  // accesses find a mapping more often than not.
  auto index = weightedOneOf<uint64_t>({{1, inRange<uint64_t>(0, 4)},
                                        {1, inRange<uint64_t>(0, kWindowPages)}});
  return rc::gen::map(index, [](uint64_t i) { return kMmapBase + i * kPage; });
}

rc::Gen<Op> GenCpuOp() {
  return rc::gen::exec([] {
    Op op;
    op.kind = *weightedElement<OpKind>({
        {2, OpKind::kCreateProcess}, {1, OpKind::kExit}, {12, OpKind::kMmap},
        {5, OpKind::kMunmap}, {6, OpKind::kMprotect}, {4, OpKind::kMadviseDontneed},
        {12, OpKind::kRead}, {14, OpKind::kWrite}, {3, OpKind::kPin},
        {2, OpKind::kUnpin}, {5, OpKind::kFork}, {4, OpKind::kMremap},
    });
    FillOp(&op);
    return op;
  });
}

rc::Gen<std::vector<Op>> GenCpuPrologue() {
  return rc::gen::map(weightedOneOf<uint64_t>({{4, rc::gen::just<uint64_t>(0)},
                                               {1, inRange<uint64_t>(4, 25)}}),
                      [](uint64_t ram) {
                        std::vector<Op> ops(ram == 0 ? 1 : 2);
                        ops.back().kind = OpKind::kCreateProcess;
                        if (ram != 0) {
                          ops.front().kind = OpKind::kRam;
                          ops.front().len = ram;
                        }
                        return ops;
                      });
}

rc::Gen<std::vector<Op>> GenOps(rc::Gen<Op> op, uint64_t max_steps) {
  return rc::gen::resize(static_cast<int>(max_steps),
                         rc::gen::container<std::vector<Op>>(std::move(op)));
}

rc::Gen<std::vector<Op>> GenCpuTrace(uint64_t max_steps) { return GenOps(GenCpuOp(), max_steps); }

}  // namespace hmm::props
