// File: cli/report_diagrams.cc
//
// The Graphviz diagrams of the report and the lane tables of traces.

#include "cli/report_diagrams.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "props/trace.h"

namespace hmm::cli::report {
namespace {

bool RunDot(const std::string& dot, std::string* svg) {
  if (std::system("command -v dot >/dev/null 2>&1") != 0) return false;
  char path[] = "/tmp/hmmref-report-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return false;
  close(fd);
  // popen gives one direction: the DOT source goes to dot's stdin, the SVG
  // to a temporary file read back below.
  FILE* pipe = popen(("dot -Tsvg -o " + std::string(path) + " 2>/dev/null").c_str(), "w");
  bool ok = pipe != nullptr;
  if (ok) {
    ok = fwrite(dot.data(), 1, dot.size(), pipe) == dot.size();
    ok = pclose(pipe) == 0 && ok;
  }
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  std::remove(path);
  *svg = text.str();
  // Drop the XML prolog and DOCTYPE: inline SVG starts at <svg.
  size_t start = svg->find("<svg");
  if (start == std::string::npos) return false;
  *svg = svg->substr(start);
  return ok;
}

void AddDiagram(const std::string& title, const std::string& about, const std::string& dot,
                const DotRenderer& render, std::vector<Block>* blocks) {
  blocks->push_back(Heading(title));
  blocks->push_back(Paragraph(about));
  std::string svg;
  if (render && render(dot, &svg)) {
    blocks->push_back(Svg(svg, "(drawn by Graphviz in index.html; DOT source:)\n\n```dot\n" + dot +
                                   "```"));
    return;
  }
  blocks->push_back(Paragraph("Graphviz dot was not found on PATH, so the diagram is shown as "
                              "its DOT source (install graphviz and run hmmref report again "
                              "to draw it)."));
  blocks->push_back(Pre(dot));
}

}  // namespace

DotRenderer SystemDot() { return RunDot; }

DotRenderer NoDot() {
  return [](const std::string&, std::string*) { return false; };
}

std::string PageLifecycleDot() {
  return R"dot(digraph page_lifecycle {
  node [shape=box, style="rounded,filled", fillcolor="#f3f5f7", fontname="sans-serif"];
  edge [fontname="sans-serif", fontsize=10];
  free [label="free\n(RAM page: not in pages;\ndevice page: refcount 1)", fillcolor="#e8f6ea"];
  allocated [label="allocated\n(AllocPage / devpage_alloc:\nrefcount 1 -> 2)"];
  subgraph cluster_mapped { label="mapped"; style=dashed;
    present [label="present PTE\n(private page)"];
    zero [label="zero page\n(read fault, never writable)"];
    cow [label="COW-shared\n(2+ PTEs, all read-only)"];
    devpriv [label="device-private entry\n(refcount 1 + held + entries)", fillcolor="#fff1dc"];
  }
  freed [label="freed\n(RAM: unreachable -> dropped;\ndevice: refcount 2 -> 1, page_free logged once)", fillcolor="#fdecea"];
  free -> allocated [label="fault / devpage_alloc"];
  allocated -> present [label="write fault"];
  free -> zero [label="read fault (private)"];
  zero -> present [label="write fault: copy"];
  present -> cow [label="fork"];
  cow -> present [label="write fault: wp_page_copy\nor last sharer: reuse"];
  allocated -> devpriv [label="devmap (+1)"];
  devpriv -> devpriv [label="fork (+1, write -> read)"];
  present -> freed [label="munmap / madvise / exit\n(last reference, no pin)"];
  cow -> freed [label="last PTE gone"];
  devpriv -> freed [label="last entry gone and put:\nrefcount back to 1"];
  freed -> free [label="reusable", constraint=false];
}
)dot";
}

std::string CpuFaultPathDot() {
  return R"dot(digraph cpu_fault {
  node [shape=box, style="rounded,filled", fillcolor="#f3f5f7", fontname="sans-serif"];
  edge [fontname="sans-serif", fontsize=10];
  access [label="CPU read / write / pin\n(page by page, in address order)", fillcolor="#e7f0ff"];
  vma [label="inside a VMA?", shape=diamond];
  prot [label="VMA allows the access?\n(access_error)", shape=diamond];
  dev [label="device-private entry?", shape=diamond];
  kind [label="read or write?", shape=diamond];
  efault [label="kFault\n(pages before it stay faulted in)", fillcolor="#fdecea"];
  devfault [label="devmem fault callback logged;\nSIGBUS -> kFault, entry stays", fillcolor="#fff1dc"];
  rf [label="ReadFault: PTE present? done;\nshared: object's page; private: zero page"];
  wf [label="WriteFault: none -> new page / object page;\nread-only shared -> make writable;\nzero or 2+ PTEs -> wp_page_copy (COW break);\nsole PTE -> reuse"];
  nomem [label="kNoMem when RAM is full", fillcolor="#fdecea"];
  ok [label="access the page", fillcolor="#e8f6ea"];
  access -> vma; vma -> efault [label="no"]; vma -> prot [label="yes"];
  prot -> efault [label="no"]; prot -> dev [label="yes"];
  dev -> devfault [label="yes"]; dev -> kind [label="no"];
  kind -> rf [label="read"]; kind -> wf [label="write / pin"];
  rf -> ok; wf -> ok; rf -> nomem [style=dashed]; wf -> nomem [style=dashed];
}
)dot";
}

// The seed's snapshot protocol (docs/mirror.md): a range is registered
// valid; an overlapping invalidation marks it invalid and erases the device's
// entries; the commit checks range_done under the same update lock.
std::string MirrorProtocolDot() {
  return R"dot(digraph mirror_protocol {
  node [shape=box, style="rounded,filled", fillcolor="#f3f5f7", fontname="sans-serif"];
  edge [fontname="sans-serif", fontsize=10];
  snap [label="HmmVmaGetPfns / HmmVmaFault\nregister range (valid), walk, fill HMM_PFN_*", fillcolor="#e7f0ff"];
  cpu [label="CPU page-table change on [s,e)\n(munmap, mprotect, COW, fork, madvise, mremap, exit)"];
  inval [label="mmu notifier: every mirror of the mm\nerases its device entries in [s,e);\noverlapping ranges: valid = false, entries zeroed", fillcolor="#fff1dc"];
  lock [label="driver: take update lock"];
  done [label="HmmVmaRangeDone: valid?", shape=diamond];
  commit [label="install VALID|READ entries\n(write iff WRITE)", fillcolor="#e8f6ea"];
  retry [label="drop lock, retry", fillcolor="#fdecea"];
  snap -> lock; cpu -> inval; inval -> snap [style=dashed, label="overlaps an open range"];
  lock -> done; done -> commit [label="true"]; done -> retry [label="false"]; retry -> snap;
}
)dot";
}

// The phases of migrate_vma() as hmmref runs them (docs/migrate.md;
// model/migrate.cc Kernel::MigrateVma, impl/migrate.cc).
std::string MigrationPhasesDot() {
  return R"dot(digraph migrate_vma {
  rankdir=LR;
  node [shape=box, style="rounded,filled", fillcolor="#f3f5f7", fontname="sans-serif"];
  edge [fontname="sans-serif", fontsize=10];
  guards [label="0 guards\n(kSrch; kInval: unaligned, empty,\nnot inside one VMA, nothing selected)"];
  collect [label="1 collect (MMU_NOTIFY_MIGRATE bracket:\nother devices' mirrors drop entries)\nsystem page, device page of owner,\nempty slot; trylock; migration entry"];
  unmap [label="2 unmap + pin check\n(other mappings -> migration entries;\npinned system page: restore, skip)"];
  copy [label="3 alloc_and_copy\n(driver: copy engine)", fillcolor="#e7f0ff"];
  pages [label="4 pages\n(no dst, shmem -> device: skip;\nempty slot: insert)"];
  owner [label="owner device's mirrors\ninvalidated where entries change", fillcolor="#fff1dc"];
  fin [label="5 finalize_and_map\n(driver maps what moved)", fillcolor="#e7f0ff"];
  remove [label="6 finalize\n(every migration entry -> new or old page,\nsame write bit; page_free once)", fillcolor="#e8f6ea"];
  guards -> collect -> unmap -> copy -> pages -> owner -> fin -> remove;
  unmap -> remove [style=dashed, label="page not migrated"];
}
)dot";
}

std::vector<Block> DiagramBlocks(const DotRenderer& dot) {
  std::vector<Block> blocks;
  AddDiagram("Page life cycle",
             "A page from free to allocated, mapped (present, zero page, COW-shared, or "
             "device-private) and freed. A device page is free at refcount 1; each holder and "
             "each entry adds one, and page_free is logged exactly once when it returns to 1 "
             "(InvPageFreeOncePerAllocation).",
             PageLifecycleDot(), dot, &blocks);
  AddDiagram("CPU-fault path",
             "What a CPU access does at each page (model/fault.cc Kernel::FaultIn, after "
             "mm/memory.c handle_mm_fault()).",
             CpuFaultPathDot(), dot, &blocks);
  AddDiagram("Snapshot protocol",
             "How a device commits a snapshot or fault of the CPU page table safely "
             "(mm/hmm.c hmm_vma_get_pfns(), hmm_vma_range_done(), hmm_invalidate_range()): "
             "InvValidRangeMatchesCpu makes every commit preserve InvMirrorSubsetOfCpu.",
             MirrorProtocolDot(), dot, &blocks);
  AddDiagram("Migration phases",
             "MigrateVma (mm/migrate.c migrate_vma(), 6.1 mm/migrate_device.c): each page "
             "fails or moves on its own, keeps its write bit, and no migration entry "
             "survives the call (InvMigrationPerPageAtomic, InvNoMigrationEntry).",
             MigrationPhasesDot(), dot, &blocks);
  return blocks;
}

std::string LaneOf(props::OpKind kind) {
  using props::OpKind;
  switch (kind) {
    case OpKind::kRead:
    case OpKind::kWrite:
    case OpKind::kPin:
    case OpKind::kUnpin: return "cpu";
    case OpKind::kDevmemAdd:
    case OpKind::kDevmemRemove:
    case OpKind::kDevPageAlloc:
    case OpKind::kDevPagePut:
    case OpKind::kDevMap:
    case OpKind::kPageFrees:
    case OpKind::kPhysmemBits:
    case OpKind::kSection:
    case OpKind::kProfile:
    case OpKind::kMirror:
    case OpKind::kUnmirror:
    case OpKind::kGetPfns:
    case OpKind::kHmmFault:
    case OpKind::kRangeDone:
    case OpKind::kCommit:
    case OpKind::kDread:
    case OpKind::kDwrite:
    case OpKind::kSnapshot:
    case OpKind::kDfault:
    case OpKind::kMigrateToDev:
    case OpKind::kMigrateToSys:
    case OpKind::kRelease:
    case OpKind::kDflags: return "device";
    default: return "mm";
  }
}

namespace {

constexpr const char* kLanes[] = {"cpu", "mm", "device"};

// One row: the step, the op in its lane (the other lanes idle), the results.
std::vector<Cell> LaneRow(size_t index, const props::Op& op, const std::string& model,
                          const std::string& impl, bool failing) {
  std::vector<Cell> row;
  row.push_back({std::to_string(index), failing ? "fail" : ""});
  const std::string lane = LaneOf(op.kind);
  for (const char* l : kLanes) {
    if (lane == l) {
      row.push_back({props::FormatOp(op), std::string("lane ") + l + (failing ? " fail" : "")});
    } else {
      row.push_back({"", failing ? "lane fail" : "lane idle"});
    }
  }
  row.push_back({model, failing ? "res fail" : "res"});
  row.push_back({impl, failing ? "res fail" : "res"});
  return row;
}

}  // namespace

std::vector<Block> SequenceDiagram(const std::vector<props::Op>& ops,
                                   const props::RunReport& replay) {
  std::vector<Block> blocks;
  blocks.push_back(Paragraph(
      replay.ok ? "All " + std::to_string(replay.steps_run) + " steps agree."
                : "Step " + std::to_string(replay.failing_step) + " fails check '" +
                      replay.check + "' (highlighted)."));
  DocTable table;
  table.head = {"step", "CPU", "mm", "device", "model", "impl"};
  table.style = "lanes";
  for (const props::StepRecord& s : replay.steps) {
    table.rows.push_back(LaneRow(s.index, s.op, props::FormatResult(s.model),
                                 props::FormatResult(s.impl), s.index == replay.failing_step));
  }
  for (size_t i = replay.steps.size(); i < ops.size(); ++i) {
    table.rows.push_back(LaneRow(i + 1, ops[i], "not run", "not run", false));
  }
  blocks.push_back(TableBlock(std::move(table)));
  if (!replay.ok && !replay.problems.empty()) {
    std::string problems;
    for (const std::string& p : replay.problems) problems += p + "\n";
    blocks.push_back(Pre(problems));
  }
  return blocks;
}

}  // namespace hmm::cli::report
