// File: props/trace_values.h
//
// The value spellings of the trace language, one token each: numbers
// (decimal, or hex after 0x), `|` lists of prot and flag words, and data
// literals ("text", hex:HEX, fill:BYTE*COUNT). Each kind parses a token into
// the value an Op field holds and formats that value back in canonical form;
// Parse(Format(v)) == v for every value. docs/scenario-format.md ("Grammar",
// "Canonical form") is the user's reference.
//
// Internal to the trace library: props/trace.cc cuts lines into tokens and
// decides which kind each position holds (props/trace.h), props/trace_result.cc
// does the same for results. Every Parse* takes untrusted bytes:
// it returns true iff the token is well formed, and otherwise sets *msg to a
// message without the "FILE:LINE: " prefix and leaves *out unspecified.

#ifndef HMMREF_PROPS_TRACE_VALUES_H_
#define HMMREF_PROPS_TRACE_VALUES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "model/types.h"

namespace hmm::props::trace_values {

// --- Messages ---

// A token as a message shows it: quoted, non-printable bytes as \xNN, and cut
// after 60 bytes so that a megabyte-long token gives a one-line message.
std::string Show(const std::string& token);

// Sets *msg to `text` and returns false, so a guard is one line.
bool Fail(std::string* msg, std::string text);

// --- Numbers ---

using ::hmm::Hex;  // "0x1f" (model/types.h)
std::string Dec(uint64_t v);  // "31"

// True iff the token's first byte is a decimal digit: the token is meant as a
// number (and fails as a bad one rather than as an unknown word).
bool StartsWithDigit(const std::string& token);

// Decimal, or hex after 0x; the value must fit in `bits` bits (1..64).
bool ParseNumber(const std::string& token, int bits, uint64_t* out, std::string* msg);

// --- Bit lists: words and numbers joined by '|' ---

// none r w rw, PROT_NONE PROT_READ PROT_WRITE, numbers.
bool ParseProt(const std::string& token, uint32_t* out, std::string* msg);
// shared private fixed, MAP_SHARED MAP_PRIVATE MAP_FIXED, numbers.
bool ParseMmapFlags(const std::string& token, uint32_t* out, std::string* msg);
// maymove fixed, MREMAP_MAYMOVE MREMAP_FIXED, numbers.
bool ParseMremapFlags(const std::string& token, uint32_t* out, std::string* msg);
// fail_alloc, HMM_DMIRROR_FLAG_FAIL_ALLOC, numbers (dflags).
bool ParseDmirrorFlags(const std::string& token, uint32_t* out, std::string* msg);

// One of none r w rw, then any other bits as one hex number ("r|0x8").
std::string FormatProt(uint32_t prot);
// Named bits in table order, then any other bits as one hex number; 0 is "0".
std::string FormatMmapFlags(uint32_t flags);
std::string FormatMremapFlags(uint32_t flags);
std::string FormatDmirrorFlags(uint32_t flags);

// --- Words ---

// A `profile` line's word: default, v18 or linux-6.1, into the hmm::Profile value.
bool ParseProfile(const std::string& token, uint32_t* out, std::string* msg);
// The word for a hmm::Profile value; any other value as a decimal number (which
// does not parse back: no such profile exists).
std::string FormatProfile(uint32_t profile);

// --- Data: "text", hex:HEX, fill:BYTE*COUNT ---

// True iff the token has the shape of data (starts with '"', hex: or fill:),
// so it is parsed as data or rejected as such.
bool IsDataToken(const std::string& token);

// Clears *out, then decodes the token. A token starting with '"' is a whole
// string, closing quote included (else "unterminated string"). fill: COUNT is
// capped at kMaxFillBytes (props/trace.h).
bool ParseData(const std::string& token, std::vector<uint8_t>* out, std::string* msg);

// fill: for eight or more equal bytes (up to kMaxFillBytes), a quoted string
// when every byte is printable ASCII, \n, \t or \r, else hex:.
std::string FormatData(const std::vector<uint8_t>& data);

// As FormatData, but never a quoted string: fill: or hex:. For bytes that are
// not text (a snapshot's byte per page; the runner's results).
std::string FormatBinary(const std::vector<uint8_t>& data);

// --- Counters of a dummy-device result: cpages=N, faults=N ---

enum class Counter : uint8_t { kCpages, kFaults };

// True iff the token has the shape of a counter (a word with '='), so it is
// parsed as one or rejected as such.
bool IsCounterToken(const std::string& token);

// `cpages=N` or `faults=N`, N a number; its name into *counter.
bool ParseCounter(const std::string& token, Counter* counter, uint64_t* value,
                  std::string* msg);

// "cpages=4", "faults=0".
std::string FormatCounter(Counter counter, uint64_t value);

}  // namespace hmm::props::trace_values

#endif  // HMMREF_PROPS_TRACE_VALUES_H_
