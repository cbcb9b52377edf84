// File: props/trace_spec.h
//
// The line table of the trace language (props/trace.h) and the results a line
// may assert. Internal to the `trace` library: props/trace_spec.cc holds the
// table (one row per keyword: its OpKind, argument slots in order, what it
// returns), props/trace_result.cc the "-> RESULT" part of a line, and
// props/trace.cc the lines themselves (tokens, arguments, files). A new
// operation is one row in Specs() plus the Op fields it fills
// (docs/scenario-format.md, "Growing the language").

#ifndef HMMREF_PROPS_TRACE_SPEC_H_
#define HMMREF_PROPS_TRACE_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "props/op.h"

namespace hmm::props::trace_spec {

// What one argument position holds, and so how it parses and prints.
enum class Arg : uint8_t {
  kPid,          // Op::pid, decimal
  kAddr,         // Op::addr, hex
  kLen,          // Op::len, hex
  kNewLen,       // Op::new_len, hex
  kNewAddr,      // Op::new_addr, hex
  kNpages,       // Op::len, decimal (pin NPAGES, ram PAGES, physmem_bits N)
  kPin,          // Op::pin, decimal
  kDevice,       // Op::device, decimal
  kDevmem,       // Op::devmem, decimal
  kPfn,          // Op::pfn, hex
  kMirror,       // Op::mirror, decimal
  kRange,        // Op::range, decimal
  kProfile,      // Op::flags: default, v18 or linux-6.1 (hmm::Profile)
  kProt,         // Op::prot: none r w rw, PROT_*, numbers, joined by '|'
  kMmapFlags,    // Op::flags: shared private fixed, MAP_*, numbers
  kMremapFlags,  // Op::flags: maymove fixed, MREMAP_*, numbers
  kDmirrorFlags, // Op::flags: fail_alloc, HMM_DMIRROR_FLAG_*, numbers
  kData,         // Op::data: "text", hex:HEX or fill:BYTE*COUNT
  kDontneed,     // the word `dontneed` (MADV_DONTNEED); no field
};

// What a successful operation returns, so which "-> RESULT" forms fit.
enum class Returns : uint8_t {
  kNothing,
  kPid,
  kAddr,
  kPinId,
  kBytes,
  kDevmemId,
  kPfn,
  kCount,
  kMirrorId,
  kRangeId,
  kValid,         // 0 or 1 (range_done, commit)
  // The dummy device's ioctls: `ok [cpages=N] [faults=N] [DATA]`.
  kDmirrorRead,   // cpages, faults, the bytes read
  kDmirrorWrite,  // cpages, faults; no bytes
  kSnapshot,      // cpages, one byte per page (printed as hex: or fill:)
  // Migration: `ok [cpages=N] [DATA]` and `ok [cpages=N]` (no faults counter).
  kMigrateToDev,  // cpages, the bytes read back from the device
  kMigrateToSys,  // cpages; no bytes
};

// The returns whose result is one number, and whether it prints in hex.
bool ReturnsValue(Returns r);
bool ReturnsHex(Returns r);
// The returns whose result is `ok [cpages=N] [faults=N] [DATA]` (the
// migrations' without faults=N).
bool ReturnsIoctl(Returns r);
// The ioctl returns that have a faults counter.
bool ReturnsFaults(Returns r);

struct OpSpec {
  OpKind kind;
  const char* name;
  const char* signature;  // for messages: "PID ADDR LEN"
  Returns returns;
  int optional;            // trailing arguments that may be left out
  bool variadic;           // the last argument may be several words (mmap flags)
  std::vector<Arg> args;
};

// Every keyword, in OpKind order; null when there is no such keyword or kind.
const std::vector<OpSpec>& Specs();
const OpSpec* FindSpec(const std::string& name);
const OpSpec* SpecOf(OpKind kind);

// --- Results (props/trace_result.cc) ---

// `tokens`: the tokens after "->" (at least one). Fills *e; false with *msg
// set when they do not form a result of spec.returns.
bool ParseResult(const OpSpec& spec, const std::vector<std::string>& tokens, Expect* e,
                 std::string* msg);

// The canonical text after "->" for `e` (never empty).
std::string FormatExpect(const OpSpec& spec, const Expect& e);

// The expectation that says exactly `result`, in the shape FormatExpect prints.
Expect ExpectOf(const OpSpec& spec, const OpResult& result);

bool SameExpect(const Expect& a, const Expect& b);

}  // namespace hmm::props::trace_spec

#endif  // HMMREF_PROPS_TRACE_SPEC_H_
