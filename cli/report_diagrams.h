// File: cli/report_diagrams.h
//
// The drawings of `hmmref report`: the two Graphviz diagrams (the page life
// cycle and the CPU-fault path), rendered to inline SVG by `dot` when it is
// on PATH and shown as their DOT source otherwise; and each replayed .hmm
// trace as a sequence diagram, a table with one lane each for CPU, mm and
// device.

#ifndef HMMREF_CLI_REPORT_DIAGRAMS_H_
#define HMMREF_CLI_REPORT_DIAGRAMS_H_

#include <functional>
#include <string>
#include <vector>

#include "cli/report_doc.h"
#include "props/op.h"
#include "props/runner.h"

namespace hmm::cli::report {

// Renders DOT source to SVG. Returns false when it cannot (no `dot`, or dot
// failed); then *svg is unspecified.
using DotRenderer = std::function<bool(const std::string& dot, std::string* svg)>;

// The renderer that runs `dot -Tsvg` (after `command -v dot` finds it).
DotRenderer SystemDot();
// A renderer that always fails, as if dot were not installed (for tests).
DotRenderer NoDot();

// The DOT sources, written for this report.
std::string PageLifecycleDot();
std::string CpuFaultPathDot();

// The diagrams section's blocks: each diagram as SVG from `dot`, else its DOT
// source in a <pre> under a line saying dot was not found.
std::vector<Block> DiagramBlocks(const DotRenderer& dot);

// The lane of an op: "cpu" (read, write, pin, unpin), "device" (devmem_*,
// devpage_*, devmap, page_frees, and the placement set-up lines) or "mm"
// (process, mmap family, fork, exit, ram lines).
std::string LaneOf(props::OpKind kind);

// One replayed trace, drawn: a line with its verdict, then the lanes table
// (step, CPU, mm, device, model, impl), the failing step's row highlighted,
// and the failing check's problems. Ops after the failing step (never run)
// are listed as "not run".
std::vector<Block> SequenceDiagram(const std::vector<props::Op>& ops,
                                   const props::RunReport& replay);

}  // namespace hmm::cli::report

#endif  // HMMREF_CLI_REPORT_DIAGRAMS_H_
