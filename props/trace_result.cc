// File: props/trace_result.cc
//
// The "-> RESULT" part of a line (props/trace_spec.h): one token (ok, an
// errno, a number or bytes), or for the dummy device's ioctls `ok`, then
// optional `cpages=N`, `faults=N` and bytes, in that order.

#include "props/trace.h"
#include "props/trace_spec.h"
#include "props/trace_values.h"

namespace hmm::props::trace_spec {
namespace {

using trace_values::Counter;
using trace_values::Dec;
using trace_values::Fail;
using trace_values::Hex;
using trace_values::IsCounterToken;
using trace_values::IsDataToken;
using trace_values::ParseCounter;
using trace_values::ParseData;
using trace_values::ParseNumber;
using trace_values::Show;
using trace_values::StartsWithDigit;

bool ReturnsBytes(Returns r) {
  return r == Returns::kBytes || r == Returns::kDmirrorRead || r == Returns::kSnapshot ||
         r == Returns::kMigrateToDev;
}

const char* ReturnsPhrase(Returns r) {
  switch (r) {
    case Returns::kNothing: return "returns no value: expected ok or an errno";
    case Returns::kPid: return "returns a pid: expected ok, an errno or a number";
    case Returns::kAddr: return "returns an address: expected ok, an errno or a number";
    case Returns::kPinId: return "returns a pin id: expected ok, an errno or a number";
    case Returns::kBytes: return "returns bytes: expected ok, an errno or bytes";
    case Returns::kDevmemId: return "returns a devmem id: expected ok, an errno or a number";
    case Returns::kPfn: return "returns a pfn: expected ok, an errno or a number";
    case Returns::kCount: return "returns a count: expected ok, an errno or a number";
    case Returns::kMirrorId: return "returns a mirror id: expected ok, an errno or a number";
    case Returns::kRangeId: return "returns a range id: expected ok, an errno or a number";
    case Returns::kValid: return "returns 0 or 1: expected ok, an errno or a number";
    case Returns::kDmirrorRead:
      return "returns cpages, faults and bytes: expected ok [cpages=N] [faults=N] [DATA] or "
             "an errno";
    case Returns::kDmirrorWrite:
      return "returns cpages and faults: expected ok [cpages=N] [faults=N] or an errno";
    case Returns::kSnapshot:
      return "returns cpages and a byte per page: expected ok [cpages=N] [faults=N] [DATA] or "
             "an errno";
    case Returns::kMigrateToDev:
      return "returns cpages and bytes: expected ok [cpages=N] [DATA] or an errno";
    case Returns::kMigrateToSys: return "returns cpages: expected ok [cpages=N] or an errno";
  }
  return "";
}

bool DoesNotFit(const OpSpec& spec, const std::string& token, std::string* msg) {
  return Fail(msg, std::string(spec.name) + " " + ReturnsPhrase(spec.returns) + ", got " +
                       Show(token));
}

// "ok", or an errno; kOk spelt as an errno ("kOk", "OK") is "ok".
bool IsOk(const std::string& token) {
  Errno err = Errno::kOk;
  return token == "ok" || (ParseErrno(token.c_str(), &err) && err == Errno::kOk);
}

// One token: ok, an errno, a number or bytes.
bool ParseSingle(const OpSpec& spec, const std::string& token, Expect* e, std::string* msg) {
  const bool is_number = StartsWithDigit(token);
  if (token == "ok" || ParseErrno(token.c_str(), &e->err)) return true;
  if ((is_number && !ReturnsValue(spec.returns)) ||
      (IsDataToken(token) && spec.returns != Returns::kBytes) || IsCounterToken(token)) {
    return DoesNotFit(spec, token, msg);
  }
  if (is_number) {
    uint64_t v = 0;
    if (!ParseNumber(token, 64, &v, msg)) return false;
    e->value = v;
    return true;
  }
  if (IsDataToken(token)) {
    std::vector<uint8_t> data;
    if (!ParseData(token, &data, msg)) return false;
    e->data = std::move(data);
    return true;
  }
  return Fail(msg, "unknown result " + Show(token) +
                       " (expected ok, an errno such as kFault or EFAULT, a number or bytes)");
}

// The part after `ok` of an ioctl's result: [cpages=N] [faults=N] [DATA]
// (faults=N only where the ioctl has that counter, DATA where it returns bytes).
// `stage` counts the parts seen: 1 cpages, 2 faults, 3 data.
bool ParseIoctlPart(const OpSpec& spec, const std::string& prev, const std::string& token,
                    int* stage, Expect* e, std::string* msg) {
  int part = 3;
  Counter counter = Counter::kCpages;
  uint64_t value = 0;
  if (IsCounterToken(token)) {
    if (!ParseCounter(token, &counter, &value, msg)) return false;
    part = counter == Counter::kCpages ? 1 : 2;
    if (part == 2 && !ReturnsFaults(spec.returns)) return DoesNotFit(spec, token, msg);
  } else if (!IsDataToken(token) || !ReturnsBytes(spec.returns)) {
    return DoesNotFit(spec, token, msg);
  }
  if (part <= *stage) {
    return Fail(msg, "unexpected " + Show(token) + " after " + Show(prev) +
                         " (the order is ok cpages=N faults=N DATA)");
  }
  *stage = part;
  if (part == 1) e->cpages = value;
  if (part == 2) e->faults = value;
  if (part != 3) return true;
  std::vector<uint8_t> data;
  if (!ParseData(token, &data, msg)) return false;
  e->data = std::move(data);
  return true;
}

bool ParseIoctl(const OpSpec& spec, const std::vector<std::string>& tokens, Expect* e,
                std::string* msg) {
  if (IsCounterToken(tokens[0])) return Fail(msg, "expected ok before " + Show(tokens[0]));
  if (!IsOk(tokens[0])) {  // an errno: the kernel copies nothing back
    if (!ParseErrno(tokens[0].c_str(), &e->err)) return DoesNotFit(spec, tokens[0], msg);
    if (tokens.size() == 1) return true;
    return Fail(msg, "unexpected " + Show(tokens[1]) + " after the result");
  }
  int stage = 0;
  for (size_t i = 1; i < tokens.size(); ++i) {
    if (!ParseIoctlPart(spec, tokens[i - 1], tokens[i], &stage, e, msg)) return false;
  }
  return true;
}

}  // namespace

bool ParseResult(const OpSpec& spec, const std::vector<std::string>& tokens, Expect* e,
                 std::string* msg) {
  if (ReturnsIoctl(spec.returns)) return ParseIoctl(spec, tokens, e, msg);
  if (tokens.size() > 1) return Fail(msg, "unexpected " + Show(tokens[1]) + " after the result");
  return ParseSingle(spec, tokens[0], e, msg);
}

namespace {

// " cpages=N faults=N", each part only when present.
std::string Counters(const Expect& e) {
  std::string out;
  if (e.cpages) out += " " + trace_values::FormatCounter(Counter::kCpages, *e.cpages);
  if (e.faults) out += " " + trace_values::FormatCounter(Counter::kFaults, *e.faults);
  return out;
}

}  // namespace

std::string FormatExpect(const OpSpec& spec, const Expect& e) {
  if (e.err != Errno::kOk) return ErrnoName(e.err);
  if (ReturnsIoctl(spec.returns)) {
    Expect shown = e;  // only the counters this ioctl has
    if (!ReturnsFaults(spec.returns)) shown.faults.reset();
    std::string out = "ok" + Counters(shown);
    if (!e.data || !ReturnsBytes(spec.returns)) return out;
    return out + " " + (spec.returns == Returns::kSnapshot ? trace_values::FormatBinary(*e.data)
                                                           : trace_values::FormatData(*e.data));
  }
  if (spec.returns == Returns::kBytes) return e.data ? trace_values::FormatData(*e.data) : "ok";
  if (!ReturnsValue(spec.returns) || !e.value) return "ok";
  return ReturnsHex(spec.returns) ? Hex(*e.value) : Dec(*e.value);
}

Expect ExpectOf(const OpSpec& spec, const OpResult& result) {
  Expect e;
  e.err = result.err;
  if (result.err != Errno::kOk) return e;
  if (ReturnsBytes(spec.returns)) e.data = result.data;
  if (ReturnsValue(spec.returns)) e.value = result.value;
  if (ReturnsIoctl(spec.returns)) e.cpages = result.cpages;
  if (spec.returns == Returns::kDmirrorRead || spec.returns == Returns::kDmirrorWrite) {
    e.faults = result.faults;
  }
  return e;
}

bool SameExpect(const Expect& a, const Expect& b) {
  return a.err == b.err && a.value == b.value && a.data == b.data && a.cpages == b.cpages &&
         a.faults == b.faults;
}

}  // namespace hmm::props::trace_spec

namespace hmm::props {

std::string FormatOutcome(const Expect& e) {
  if (e.err != Errno::kOk) return ErrnoName(e.err);
  std::string out = "ok";
  if (e.value) out += " " + Hex(*e.value);
  out += trace_spec::Counters(e);
  if (e.data) out += " " + trace_values::FormatBinary(*e.data);
  return out;
}

}  // namespace hmm::props
