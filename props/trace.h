// File: props/trace.h
//
// The trace language: `.hmm` files, one operation per line, each optionally
// followed by its expected result. Hand-written scenarios (scenarios/),
// minimized counterexamples and the regression corpus all use it, and all of
// them parse into the same props::Op that the property suites generate
// (props/op.h). docs/scenario-format.md is the user's reference: grammar,
// every line kind, the error messages and the rule for growing the language.
//
//   # comment; blank lines are ignored
//   process                                    -> 1
//   mmap 1 0 0x2000 rw private                 -> 0x10000000
//   write 1 0x10000010 "hello\n"               -> ok
//   read 1 0x10000010 5                        -> "hello"
//   munmap 1 0x10000001 0x1000                 -> kInval
//
// The parser takes untrusted bytes (it is fuzzed): any input gives either ops
// or a "FILE:LINE: message" error, never a crash, and no allocation larger
// than the input except fill: data, which is capped at kMaxFillBytes.

#ifndef HMMREF_PROPS_TRACE_H_
#define HMMREF_PROPS_TRACE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "props/op.h"

namespace hmm::props {

// The largest COUNT accepted in `fill:BYTE*COUNT` (16 times model kMaxAccess,
// so over-long writes stay expressible while a hostile input cannot make the
// parser allocate gigabytes).
constexpr uint64_t kMaxFillBytes = uint64_t{1} << 20;

// Parses a whole trace. `filename` only prefixes error messages.
// Set-up lines (props/op.h IsSetupKind: ram, physmem_bits, section, profile)
// must come before every operation, each kind at most once, with values inside
// the Config bounds of model/types.h.
// Returns true iff every line is well formed; then *ops holds one Op per
// operation line, in order, each with `line` set to its 1-based line number.
// Returns false at the first malformed line, with *error (if not null) set to
// "FILENAME:LINE: message"; *ops is then left unchanged.
bool ParseTrace(const std::string& text, const std::string& filename, std::vector<Op>* ops,
                std::string* error);

// Reads `path` and parses it with `path` as the file name. An unreadable file
// gives "PATH: cannot read: <strerror>".
bool ParseTraceFile(const std::string& path, std::vector<Op>* ops, std::string* error);

// One line in canonical syntax, without a newline, ending in " -> RESULT" when
// op.expect is set. Only the part of the expectation that op.kind can return
// is printed: an errno other than kOk wins; else bytes for read, the value for
// process, fork, mmap, mremap, pin, devmem_add, devpage_alloc, page_frees,
// mirror, get_pfns, hmm_fault, range_done and commit (addresses and pfns in
// hex, the rest in decimal), `ok` then the cpages=N, faults=N and bytes it
// holds for dread, dwrite (no bytes) and snapshot (bytes as hex: or fill:),
// and `ok` for the rest.
// ParseTrace(FormatOp(op)) gives back `op` (apart from `line`) for every op
// whose expectation has that shape; ExpectFromResult builds one.
std::string FormatOp(const Op& op);

// `header_comment` as comment lines ("# " + line; empty header: none), then one
// FormatOp line per op with the "->" arrows aligned. Ends in a newline.
std::string FormatTrace(const std::vector<Op>& ops, const std::string& header_comment);

// The keyword that starts a line of this kind ("process", "mmap", "madvise").
std::string OpName(OpKind kind);

// Whether two ops are the same line: every field but `line` (the source line).
bool SameOp(const Op& a, const Op& b);

// Every part an expectation holds, whatever the kind returns: the errno when
// it is not kOk; else "ok", then the value in hex, cpages=N, faults=N and the
// bytes (fill: for 8 or more equal bytes, else hex:), each only when present:
// "ok 0x10000000", "ok cpages=4 faults=1 fill:0x0*16384". For reports
// (props/runner.h FormatResult), not for trace lines: FormatOp prints what
// the kind returns, in its canonical form.
std::string FormatOutcome(const Expect& e);

// The expectation that says exactly `result` for an op of `kind`, in the shape
// FormatOp prints: the errno; when kOk, also the value or the bytes if `kind`
// returns one. For writing a run's observed results out as a trace.
Expect ExpectFromResult(OpKind kind, const OpResult& result);

}  // namespace hmm::props

#endif  // HMMREF_PROPS_TRACE_H_
