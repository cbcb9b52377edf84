// File: props/trace.cc
//
// One table (kSpecs) says, for each line keyword, its OpKind, its arguments
// in order and what it returns; parsing and formatting both walk that table,
// so a new operation is one row plus the Op fields it fills
// (docs/scenario-format.md, "Growing the language").
//
// Every input byte is untrusted: lines are cut into tokens first (strings,
// words, "->"), and each token is checked against what its position allows.
// The spelling of each value (numbers, prot and flag lists, data) is
// props/trace_values.h; this file is the lines: tokens, arity, results.

#include "props/trace.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include "props/trace_values.h"

namespace hmm::props {
namespace {

using trace_values::Dec;
using trace_values::Fail;
using trace_values::FormatData;
using trace_values::FormatMmapFlags;
using trace_values::FormatMremapFlags;
using trace_values::FormatProfile;
using trace_values::FormatProt;
using trace_values::Hex;
using trace_values::IsDataToken;
using trace_values::ParseData;
using trace_values::ParseMmapFlags;
using trace_values::ParseMremapFlags;
using trace_values::ParseNumber;
using trace_values::ParseProfile;
using trace_values::ParseProt;
using trace_values::Show;
using trace_values::StartsWithDigit;

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
  kProfile,      // Op::flags: default or v18 (hmm::Profile)
  kProt,         // Op::prot: none r w rw, PROT_*, numbers, joined by '|'
  kMmapFlags,    // Op::flags: shared private fixed, MAP_*, numbers
  kMremapFlags,  // Op::flags: maymove fixed, MREMAP_*, numbers
  kData,         // Op::data: "text", hex:HEX or fill:BYTE*COUNT
  kDontneed,     // the word `dontneed` (MADV_DONTNEED); no field
};

// What a successful operation returns, so which "-> RESULT" forms fit.
enum class Returns : uint8_t { kNothing, kPid, kAddr, kPinId, kBytes, kDevmemId, kPfn, kCount };

// The returns whose result is a number, and whether it prints in hex.
bool ReturnsValue(Returns r) { return r != Returns::kNothing && r != Returns::kBytes; }
bool ReturnsHex(Returns r) { return r == Returns::kAddr || r == Returns::kPfn; }

struct OpSpec {
  OpKind kind;
  const char* name;
  const char* signature;  // for messages: "PID ADDR LEN"
  Returns returns;
  int optional;            // trailing arguments that may be left out
  bool variadic;           // the last argument may be several words (mmap flags)
  std::vector<Arg> args;
};

const std::vector<OpSpec>& Specs() {
  static const std::vector<OpSpec> kSpecs = {
      {OpKind::kCreateProcess, "process", "", Returns::kPid, 0, false, {}},
      {OpKind::kExit, "exit", "PID", Returns::kNothing, 0, false, {Arg::kPid}},
      {OpKind::kMmap, "mmap", "PID ADDR LEN PROT FLAGS", Returns::kAddr, 0, true,
       {Arg::kPid, Arg::kAddr, Arg::kLen, Arg::kProt, Arg::kMmapFlags}},
      {OpKind::kMunmap, "munmap", "PID ADDR LEN", Returns::kNothing, 0, false,
       {Arg::kPid, Arg::kAddr, Arg::kLen}},
      {OpKind::kMprotect, "mprotect", "PID ADDR LEN PROT", Returns::kNothing, 0, false,
       {Arg::kPid, Arg::kAddr, Arg::kLen, Arg::kProt}},
      {OpKind::kMadviseDontneed, "madvise", "PID ADDR LEN dontneed", Returns::kNothing, 0,
       false, {Arg::kPid, Arg::kAddr, Arg::kLen, Arg::kDontneed}},
      {OpKind::kRead, "read", "PID ADDR LEN", Returns::kBytes, 0, false,
       {Arg::kPid, Arg::kAddr, Arg::kLen}},
      {OpKind::kWrite, "write", "PID ADDR DATA", Returns::kNothing, 0, false,
       {Arg::kPid, Arg::kAddr, Arg::kData}},
      {OpKind::kPin, "pin", "PID ADDR NPAGES", Returns::kPinId, 0, false,
       {Arg::kPid, Arg::kAddr, Arg::kNpages}},
      {OpKind::kUnpin, "unpin", "PIN", Returns::kNothing, 0, false, {Arg::kPin}},
      {OpKind::kFork, "fork", "PID", Returns::kPid, 0, false, {Arg::kPid}},
      {OpKind::kMremap, "mremap", "PID OLD_ADDR OLD_LEN NEW_LEN FLAGS [NEW_ADDR]",
       Returns::kAddr, 1, false,
       {Arg::kPid, Arg::kAddr, Arg::kLen, Arg::kNewLen, Arg::kMremapFlags, Arg::kNewAddr}},
      // Device-private memory (docs/devmem.md).
      {OpKind::kDevmemAdd, "devmem_add", "DEVICE SIZE", Returns::kDevmemId, 0, false,
       {Arg::kDevice, Arg::kLen}},
      {OpKind::kDevmemRemove, "devmem_remove", "DEVMEM", Returns::kNothing, 0, false,
       {Arg::kDevmem}},
      {OpKind::kRamHotAdd, "ram_hotadd", "START SIZE", Returns::kNothing, 0, false,
       {Arg::kAddr, Arg::kLen}},
      {OpKind::kRamHotRemove, "ram_hotremove", "START SIZE", Returns::kNothing, 0, false,
       {Arg::kAddr, Arg::kLen}},
      {OpKind::kDevPageAlloc, "devpage_alloc", "DEVMEM", Returns::kPfn, 0, false,
       {Arg::kDevmem}},
      {OpKind::kDevPagePut, "devpage_put", "PFN", Returns::kNothing, 0, false, {Arg::kPfn}},
      {OpKind::kDevMap, "devmap", "PID ADDR PFN PROT", Returns::kNothing, 0, false,
       {Arg::kPid, Arg::kAddr, Arg::kPfn, Arg::kProt}},
      {OpKind::kPageFrees, "page_frees", "DEVMEM", Returns::kCount, 0, false, {Arg::kDevmem}},
      // Set-up lines (IsSetupKind): before every operation, each at most once.
      {OpKind::kRam, "ram", "PAGES", Returns::kNothing, 0, false, {Arg::kNpages}},
      {OpKind::kPhysmemBits, "physmem_bits", "N", Returns::kNothing, 0, false, {Arg::kNpages}},
      {OpKind::kSection, "section", "BYTES", Returns::kNothing, 0, false, {Arg::kLen}},
      {OpKind::kProfile, "profile", "default|v18", Returns::kNothing, 0, false,
       {Arg::kProfile}},
  };
  return kSpecs;
}

const OpSpec* FindSpec(const std::string& name) {
  for (const OpSpec& s : Specs()) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

const OpSpec* SpecOf(OpKind kind) {
  for (const OpSpec& s : Specs()) {
    if (kind == s.kind) return &s;
  }
  return nullptr;
}

// --- Tokens ---

bool IsSpace(char c) { return c == ' ' || c == '\t'; }
bool IsArrowAt(const std::string& line, size_t i) {
  return line[i] == '-' && i + 1 < line.size() && line[i + 1] == '>';
}

std::string UnexpectedByte(unsigned char c) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "unexpected byte 0x%02x", c);
  return buf;
}

// Cuts one line (no newline) into words, "->" and whole quoted strings, up to
// a '#' outside a string. Outside strings only printable ASCII is allowed.
bool Tokenize(const std::string& line, std::vector<std::string>* tokens, std::string* msg) {
  size_t i = 0;
  while (i < line.size()) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    if (IsSpace(line[i])) { ++i; continue; }
    if (c == '#') break;
    if (IsArrowAt(line, i)) { tokens->push_back("->"); i += 2; continue; }
    if (c < 0x21 || c > 0x7e) return Fail(msg, UnexpectedByte(c));
    size_t j = i + 1;
    if (c == '"') {
      while (j < line.size() && line[j] != '"') j += line[j] == '\\' ? 2 : 1;
      if (j >= line.size()) return Fail(msg, "unterminated string");
      ++j;
      if (j < line.size() && !IsSpace(line[j]) && line[j] != '#' && !IsArrowAt(line, j)) {
        return Fail(msg, "expected a space after the string, got " + Show(line.substr(j, 1)));
      }
    } else {
      while (j < line.size() && !IsSpace(line[j]) && line[j] != '#' && !IsArrowAt(line, j)) {
        unsigned char d = static_cast<unsigned char>(line[j]);
        if (d < 0x21 || d > 0x7e) return Fail(msg, UnexpectedByte(d));
        if (d == '"') {
          return Fail(msg, "unexpected '\"' after " + Show(line.substr(i, j - i)));
        }
        ++j;
      }
    }
    tokens->push_back(line.substr(i, j - i));
    i = j;
  }
  return true;
}

// --- Lines ---

bool ParseArg(Arg arg, const std::string& token, Op* op, std::string* msg) {
  switch (arg) {
    case Arg::kPid: return ParseNumber(token, 64, &op->pid, msg);
    case Arg::kAddr: return ParseNumber(token, 64, &op->addr, msg);
    case Arg::kLen: return ParseNumber(token, 64, &op->len, msg);
    case Arg::kNewLen: return ParseNumber(token, 64, &op->new_len, msg);
    case Arg::kNewAddr: return ParseNumber(token, 64, &op->new_addr, msg);
    case Arg::kNpages: return ParseNumber(token, 64, &op->len, msg);
    case Arg::kPin: return ParseNumber(token, 64, &op->pin, msg);
    case Arg::kDevice: return ParseNumber(token, 64, &op->device, msg);
    case Arg::kDevmem: return ParseNumber(token, 64, &op->devmem, msg);
    case Arg::kPfn: return ParseNumber(token, 64, &op->pfn, msg);
    case Arg::kProfile: return ParseProfile(token, &op->flags, msg);
    case Arg::kProt: return ParseProt(token, &op->prot, msg);
    case Arg::kMmapFlags: return ParseMmapFlags(token, &op->flags, msg);
    case Arg::kMremapFlags: return ParseMremapFlags(token, &op->flags, msg);
    case Arg::kData: return ParseData(token, &op->data, msg);
    case Arg::kDontneed:
      if (token == "dontneed" || token == "MADV_DONTNEED") return true;
      return Fail(msg, "unknown advice " + Show(token) + " (expected dontneed)");
  }
  return Fail(msg, "internal: unhandled argument kind");
}

std::string ArityMessage(const OpSpec& spec, size_t got) {
  const size_t n = spec.args.size();
  std::string expected;
  if (n == 0) expected = "no arguments";
  else if (spec.optional > 0) expected = Dec(n - spec.optional) + " or " + Dec(n) + " arguments";
  else expected = Dec(n) + (n == 1 ? " argument" : " arguments");
  std::string sig = n == 0 ? "" : std::string(" (") + spec.signature + ")";
  return "expected " + expected + " for " + spec.name + sig + ", got " + Dec(got);
}

// args: the tokens after the keyword, before any "->".
bool ParseArgs(const OpSpec& spec, std::vector<std::string> args, Op* op, std::string* msg) {
  const size_t n = spec.args.size();
  if (args.size() < n - spec.optional || (args.size() > n && !spec.variadic)) {
    return Fail(msg, ArityMessage(spec, args.size()));
  }
  while (args.size() > n) {  // "private fixed" is "private|fixed"
    args[args.size() - 2] += "|" + args.back();
    args.pop_back();
  }
  for (size_t i = 0; i < args.size(); ++i) {
    if (!ParseArg(spec.args[i], args[i], op, msg)) return false;
  }
  if (op->kind == OpKind::kMremap && (op->flags & kMremapFixed) != 0 && args.size() < n) {
    return Fail(msg, "mremap with fixed needs NEW_ADDR");
  }
  return true;
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
  }
  return "";
}

bool ParseResult(const OpSpec& spec, const std::string& token, Expect* e, std::string* msg) {
  const bool is_value = ReturnsValue(spec.returns);
  const bool is_number = StartsWithDigit(token);
  if (token == "ok" || ParseErrno(token.c_str(), &e->err)) return true;
  if ((is_number && !is_value) || (IsDataToken(token) && spec.returns != Returns::kBytes)) {
    return Fail(msg, std::string(spec.name) + " " + ReturnsPhrase(spec.returns) + ", got " +
                         Show(token));
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

// Sets *has_op when the line holds an operation (not blank, not a comment).
bool ParseLine(const std::string& line, Op* op, bool* has_op, std::string* msg) {
  std::vector<std::string> tokens;
  if (!Tokenize(line, &tokens, msg)) return false;
  *has_op = !tokens.empty();
  if (tokens.empty()) return true;
  if (tokens[0] == "->") return Fail(msg, "expected an operation before '->'");
  const OpSpec* spec = FindSpec(tokens[0]);
  if (spec == nullptr) return Fail(msg, "unknown operation " + Show(tokens[0]));
  op->kind = spec->kind;
  auto arrow = std::find(tokens.begin(), tokens.end(), "->");
  if (!ParseArgs(*spec, std::vector<std::string>(tokens.begin() + 1, arrow), op, msg)) {
    return false;
  }
  if (arrow == tokens.end()) return true;
  if (arrow + 1 == tokens.end()) return Fail(msg, "expected a result after '->'");
  if (arrow + 2 != tokens.end()) {
    return Fail(msg, "unexpected " + Show(arrow[2]) + " after the result");
  }
  op->expect.emplace();
  return ParseResult(*spec, arrow[1], &*op->expect, msg);
}

std::string FormatArg(Arg arg, const Op& op) {
  switch (arg) {
    case Arg::kPid: return Dec(op.pid);
    case Arg::kAddr: return Hex(op.addr);
    case Arg::kLen: return Hex(op.len);
    case Arg::kNewLen: return Hex(op.new_len);
    case Arg::kNewAddr: return Hex(op.new_addr);
    case Arg::kNpages: return Dec(op.len);
    case Arg::kPin: return Dec(op.pin);
    case Arg::kDevice: return Dec(op.device);
    case Arg::kDevmem: return Dec(op.devmem);
    case Arg::kPfn: return Hex(op.pfn);
    case Arg::kProfile: return FormatProfile(op.flags);
    case Arg::kProt: return FormatProt(op.prot);
    case Arg::kMmapFlags: return FormatMmapFlags(op.flags);
    case Arg::kMremapFlags: return FormatMremapFlags(op.flags);
    case Arg::kData: return FormatData(op.data);
    case Arg::kDontneed: return "dontneed";
  }
  return "?";
}

std::string FormatBody(const Op& op) {
  const OpSpec* spec = SpecOf(op.kind);
  if (spec == nullptr) return OpName(op.kind);
  std::string out = spec->name;
  for (Arg arg : spec->args) {
    bool fixed = (op.flags & kMremapFixed) != 0;
    if (arg == Arg::kNewAddr && !fixed && op.new_addr == 0) continue;
    out += " " + FormatArg(arg, op);
  }
  return out;
}

// "" when the op has no expectation.
std::string FormatResult(const Op& op) {
  const OpSpec* spec = SpecOf(op.kind);
  if (!op.expect.has_value() || spec == nullptr) return "";
  const Expect& e = *op.expect;
  if (e.err != Errno::kOk) return ErrnoName(e.err);
  if (spec->returns == Returns::kBytes) return e.data ? FormatData(*e.data) : "ok";
  if (!ReturnsValue(spec->returns) || !e.value) return "ok";
  return ReturnsHex(spec->returns) ? Hex(*e.value) : Dec(*e.value);
}

}  // namespace

namespace {

// Set-up lines (IsSetupKind) configure the kernels before they exist, so they
// come before every operation, each kind at most once, with values the kernels
// accept (model/types.h Config bounds). `ram` keeps its original messages.
class SetupRule {
 public:
  bool Check(const Op& op, std::string* msg) {
    if (!IsSetupKind(op.kind)) {
      seen_operation_ = true;
      return true;
    }
    const std::string name = OpName(op.kind);
    if (seen_operation_) return Fail(msg, "'" + name + "' must come before every operation");
    const size_t bit = static_cast<size_t>(op.kind);
    if ((seen_kinds_ >> bit) & 1u) return Fail(msg, "'" + name + "' given twice");
    seen_kinds_ |= uint64_t{1} << bit;
    return CheckValue(op, msg);
  }

 private:
  static bool CheckValue(const Op& op, std::string* msg) {
    switch (op.kind) {
      case OpKind::kRam:
        if (op.len < kMinTraceRamPages || op.len > kMaxTraceRamPages) {
          return Fail(msg, "ram wants " + Dec(kMinTraceRamPages) + " to " +
                               Dec(kMaxTraceRamPages) + " pages, got " + Dec(op.len));
        }
        return true;
      case OpKind::kPhysmemBits:
        if (op.len < kMinPhysmemBits || op.len > kMaxPhysmemBits) {
          return Fail(msg, "physmem_bits wants " + Dec(kMinPhysmemBits) + " to " +
                               Dec(kMaxPhysmemBits) + ", got " + Dec(op.len));
        }
        return true;
      case OpKind::kSection:
        if (op.len < kMinSectionBytes || op.len > kMaxSectionBytes ||
            (op.len & (op.len - 1)) != 0) {
          return Fail(msg, "section wants a power of two from " + Dec(kMinSectionBytes) +
                               " to " + Dec(kMaxSectionBytes) + " bytes, got " + Hex(op.len));
        }
        return true;
      default:  // profile: its word was checked when the line was parsed
        return true;
    }
  }

  bool seen_operation_ = false;
  uint64_t seen_kinds_ = 0;  // bit per OpKind
  static_assert(static_cast<size_t>(OpKind::kProfile) < 64, "seen_kinds_ has a bit per kind");
};

}  // namespace

bool ParseTrace(const std::string& text, const std::string& filename, std::vector<Op>* ops,
                std::string* error) {
  std::vector<Op> parsed;
  SetupRule setup;
  size_t lineno = 0;
  for (size_t pos = 0; pos <= text.size();) {
    size_t end = std::min(text.find('\n', pos), text.size());
    std::string line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    ++lineno;
    Op op;
    op.line = static_cast<int>(std::min<size_t>(lineno, INT_MAX));
    bool has_op = false;
    std::string msg;
    if (!ParseLine(line, &op, &has_op, &msg)) {
      if (error != nullptr) *error = filename + ":" + Dec(lineno) + ": " + msg;
      return false;
    }
    if (has_op && !setup.Check(op, &msg)) {
      if (error != nullptr) *error = filename + ":" + Dec(lineno) + ": " + msg;
      return false;
    }
    if (has_op) parsed.push_back(std::move(op));
    pos = end + 1;
  }
  if (ops != nullptr) *ops = std::move(parsed);
  return true;
}

bool ParseTraceFile(const std::string& path, std::vector<Op>* ops, std::string* error) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  std::string text;
  ssize_t n = fd < 0 ? -1 : 0;
  char buf[65536];
  while (fd >= 0 && (n = read(fd, buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  int saved = errno;
  if (fd >= 0) close(fd);
  if (n < 0) {
    if (error != nullptr) *error = path + ": cannot read: " + std::strerror(saved);
    return false;
  }
  return ParseTrace(text, path, ops, error);
}

std::string FormatOp(const Op& op) {
  std::string result = FormatResult(op);
  return FormatBody(op) + (result.empty() ? "" : " -> " + result);
}

std::string FormatTrace(const std::vector<Op>& ops, const std::string& header_comment) {
  std::string out;
  for (size_t pos = 0; pos < header_comment.size();) {
    size_t end = std::min(header_comment.find('\n', pos), header_comment.size());
    std::string line = header_comment.substr(pos, end - pos);
    out += line.empty() ? "#\n" : "# " + line + "\n";
    pos = end + 1;
  }
  constexpr size_t kMaxColumn = 48;  // arrows align up to here; longer bodies push theirs
  size_t column = 0;
  for (const Op& op : ops) {
    if (op.expect.has_value()) column = std::max(column, FormatBody(op).size());
  }
  column = std::min(column, kMaxColumn);
  for (const Op& op : ops) {
    std::string body = FormatBody(op);
    std::string result = FormatResult(op);
    if (!result.empty()) body += std::string(column > body.size() ? column - body.size() : 0, ' ');
    out += body + (result.empty() ? "" : " -> " + result) + "\n";
  }
  return out;
}

std::string OpName(OpKind kind) {
  const OpSpec* spec = SpecOf(kind);
  return spec != nullptr ? spec->name : "unknown-op-" + Dec(static_cast<uint64_t>(kind));
}

Expect ExpectFromResult(OpKind kind, const OpResult& result) {
  Expect e;
  e.err = result.err;
  const OpSpec* spec = SpecOf(kind);
  if (result.err != Errno::kOk || spec == nullptr) return e;
  if (spec->returns == Returns::kBytes) e.data = result.data;
  if (ReturnsValue(spec->returns)) e.value = result.value;
  return e;
}

namespace {

bool SameExpect(const std::optional<Expect>& a, const std::optional<Expect>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a.has_value()) return true;
  return a->err == b->err && a->value == b->value && a->data == b->data;
}

}  // namespace

bool SameOp(const Op& a, const Op& b) {
  return a.kind == b.kind && a.pid == b.pid && a.addr == b.addr && a.len == b.len &&
         a.new_len == b.new_len && a.new_addr == b.new_addr && a.prot == b.prot &&
         a.flags == b.flags && a.pin == b.pin && a.devmem == b.devmem && a.pfn == b.pfn &&
         a.device == b.device && a.data == b.data && SameExpect(a.expect, b.expect);
}

}  // namespace hmm::props
