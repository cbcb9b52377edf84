// File: props/trace.cc
//
// The lines of the trace language: tokens, arguments, set-up rules, files and
// formatting. What each keyword takes and returns is the table of
// props/trace_spec.h (a new operation is one row there plus the Op fields it
// fills; docs/scenario-format.md, "Growing the language"); the "-> RESULT"
// part is props/trace_result.cc; the spelling of each value (numbers, prot and
// flag lists, data, counters) is props/trace_values.h.
//
// Every input byte is untrusted: lines are cut into tokens first (strings,
// words, "->"), and each token is checked against what its position allows.

#include "props/trace.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include "props/trace_spec.h"
#include "props/trace_values.h"

namespace hmm::props {
namespace {

using trace_spec::Arg;
using trace_spec::FindSpec;
using trace_spec::OpSpec;
using trace_spec::SpecOf;
using trace_values::Dec;
using trace_values::Fail;
using trace_values::FormatData;
using trace_values::FormatMmapFlags;
using trace_values::FormatMremapFlags;
using trace_values::FormatProfile;
using trace_values::FormatProt;
using trace_values::Hex;
using trace_values::ParseData;
using trace_values::ParseMmapFlags;
using trace_values::ParseMremapFlags;
using trace_values::ParseNumber;
using trace_values::ParseProfile;
using trace_values::ParseProt;
using trace_values::Show;

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
    case Arg::kMirror: return ParseNumber(token, 64, &op->mirror, msg);
    case Arg::kRange: return ParseNumber(token, 64, &op->range, msg);
    case Arg::kProfile: return ParseProfile(token, &op->flags, msg);
    case Arg::kProt: return ParseProt(token, &op->prot, msg);
    case Arg::kMmapFlags: return ParseMmapFlags(token, &op->flags, msg);
    case Arg::kMremapFlags: return ParseMremapFlags(token, &op->flags, msg);
    case Arg::kDmirrorFlags: return trace_values::ParseDmirrorFlags(token, &op->flags, msg);
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
  op->expect.emplace();
  return trace_spec::ParseResult(*spec, std::vector<std::string>(arrow + 1, tokens.end()),
                                 &*op->expect, msg);
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
    case Arg::kMirror: return Dec(op.mirror);
    case Arg::kRange: return Dec(op.range);
    case Arg::kProfile: return FormatProfile(op.flags);
    case Arg::kProt: return FormatProt(op.prot);
    case Arg::kMmapFlags: return FormatMmapFlags(op.flags);
    case Arg::kMremapFlags: return FormatMremapFlags(op.flags);
    case Arg::kDmirrorFlags: return trace_values::FormatDmirrorFlags(op.flags);
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
  return trace_spec::FormatExpect(*spec, *op.expect);
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
  static_assert(static_cast<size_t>(kLastOpKind) < 64, "seen_kinds_ has a bit per kind");
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
  const OpSpec* spec = SpecOf(kind);
  if (spec != nullptr) return trace_spec::ExpectOf(*spec, result);
  Expect e;
  e.err = result.err;
  return e;
}

bool SameOp(const Op& a, const Op& b) {
  if (a.expect.has_value() != b.expect.has_value()) return false;
  if (a.expect.has_value() && !trace_spec::SameExpect(*a.expect, *b.expect)) return false;
  return a.kind == b.kind && a.pid == b.pid && a.addr == b.addr && a.len == b.len &&
         a.new_len == b.new_len && a.new_addr == b.new_addr && a.prot == b.prot &&
         a.flags == b.flags && a.pin == b.pin && a.devmem == b.devmem && a.pfn == b.pfn &&
         a.device == b.device && a.mirror == b.mirror && a.range == b.range &&
         a.data == b.data;
}

}  // namespace hmm::props
