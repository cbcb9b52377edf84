// File: props/trace_values.cc
//
// Numbers, bit lists and data literals (props/trace_values.h). Each kind has
// a parser that checks every byte of its token and a formatter that writes
// the canonical spelling; the three bit lists share one table-driven pair
// (ParseBits, FormatBits) over a BitName table each.

#include "props/trace_values.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "model/types.h"
#include "props/trace.h"

namespace hmm::props::trace_values {
namespace {

int DigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool StartsWith(const std::string& s, const char* prefix) {
  return s.compare(0, std::strlen(prefix), prefix) == 0;
}

}  // namespace

// --- Messages and numbers ---

std::string Show(const std::string& token) {
  constexpr size_t kMaxShown = 60;
  std::string out = "'";
  for (size_t i = 0; i < token.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(token[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (token.size() > kMaxShown) out += "...";
  return out + "'";
}

bool Fail(std::string* msg, std::string text) {
  *msg = std::move(text);
  return false;
}

std::string Dec(uint64_t v) { return std::to_string(v); }

bool StartsWithDigit(const std::string& token) {
  return !token.empty() && DigitValue(token[0]) >= 0 && DigitValue(token[0]) < 10;
}

bool ParseNumber(const std::string& s, int bits, uint64_t* out, std::string* msg) {
  bool hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  uint64_t base = hex ? 16 : 10;
  size_t i = hex ? 2 : 0;
  if (s.empty() || s == "0x" || s == "0X") return Fail(msg, "bad number " + Show(s));
  uint64_t v = 0;
  bool overflow = false;
  for (; i < s.size(); ++i) {
    int d = DigitValue(s[i]);
    if (d < 0 || static_cast<uint64_t>(d) >= base) return Fail(msg, "bad number " + Show(s));
    if (v > (UINT64_MAX - static_cast<uint64_t>(d)) / base) overflow = true;
    v = v * base + static_cast<uint64_t>(d);
  }
  if (overflow || (bits < 64 && (v >> bits) != 0)) {
    return Fail(msg, "number " + Show(s) + " overflows " + std::to_string(bits) + " bits");
  }
  *out = v;
  return true;
}

// --- Bit lists ---

namespace {

struct BitName {
  uint32_t bits;
  const char* name;   // canonical
  const char* alias;  // the kernel macro
};

// The prot words; r, w and rw are combined by FormatProt, not by this order.
constexpr BitName kProtNames[] = {{kProtNone, "none", "PROT_NONE"},
                                  {kProtRead, "r", "PROT_READ"},
                                  {kProtWrite, "w", "PROT_WRITE"},
                                  {kProtRead | kProtWrite, "rw", "rw"}};
constexpr BitName kMmapNames[] = {{kMapShared, "shared", "MAP_SHARED"},
                                  {kMapPrivate, "private", "MAP_PRIVATE"},
                                  {kMapFixed, "fixed", "MAP_FIXED"}};
constexpr BitName kMremapNames[] = {{kMremapMaymove, "maymove", "MREMAP_MAYMOVE"},
                                    {kMremapFixed, "fixed", "MREMAP_FIXED"}};
constexpr BitName kDmirrorFlagNames[] = {
    {kDmirrorFlagFailAlloc, "fail_alloc", "HMM_DMIRROR_FLAG_FAIL_ALLOC"}};

// `a|b|0x10`: the union of named bits and numbers. `what` names the kind of
// word for messages ("protection", "mmap flag").
template <size_t N>
bool ParseBits(const std::string& token, const BitName (&names)[N], const char* what,
               uint32_t* out, std::string* msg) {
  uint32_t bits = 0;
  size_t pos = 0;
  while (true) {
    size_t bar = std::min(token.find('|', pos), token.size());
    std::string part = token.substr(pos, bar - pos);
    const BitName* hit = nullptr;
    for (const BitName& n : names) {
      if (part == n.name || part == n.alias) hit = &n;
    }
    uint64_t number = 0;
    if (part.empty()) return Fail(msg, std::string("bad ") + what + " list " + Show(token));
    if (hit != nullptr) {
      bits |= hit->bits;
    } else if (StartsWithDigit(part)) {
      if (!ParseNumber(part, 32, &number, msg)) return false;
      bits |= static_cast<uint32_t>(number);
    } else {
      return Fail(msg, std::string("unknown ") + what + " " + Show(part));
    }
    if (bar == token.size()) break;
    pos = bar + 1;
  }
  *out = bits;
  return true;
}

// Named bits in table order, then any other bits as one hex number; 0 is "0".
template <size_t N>
std::string FormatBits(uint32_t bits, const BitName (&names)[N]) {
  std::string out;
  for (const BitName& n : names) {
    if ((bits & n.bits) == 0) continue;
    out += (out.empty() ? "" : "|") + std::string(n.name);
    bits &= ~n.bits;
  }
  if (bits != 0 || out.empty()) out += (out.empty() ? "" : "|") + Hex(bits);
  return out == "0x0" ? "0" : out;
}

}  // namespace

bool ParseProt(const std::string& token, uint32_t* out, std::string* msg) {
  return ParseBits(token, kProtNames, "protection", out, msg);
}

bool ParseMmapFlags(const std::string& token, uint32_t* out, std::string* msg) {
  return ParseBits(token, kMmapNames, "mmap flag", out, msg);
}

bool ParseMremapFlags(const std::string& token, uint32_t* out, std::string* msg) {
  return ParseBits(token, kMremapNames, "mremap flag", out, msg);
}

bool ParseDmirrorFlags(const std::string& token, uint32_t* out, std::string* msg) {
  return ParseBits(token, kDmirrorFlagNames, "dmirror flag", out, msg);
}

std::string FormatProt(uint32_t prot) {
  static const char* const kWords[] = {"none", "r", "w", "rw"};
  std::string word = kWords[prot & kProtMask];
  uint32_t other = prot & ~kProtMask;
  if (other == 0) return word;
  return (prot & kProtMask) == 0 ? Hex(other) : word + "|" + Hex(other);
}

std::string FormatMmapFlags(uint32_t flags) { return FormatBits(flags, kMmapNames); }

std::string FormatMremapFlags(uint32_t flags) { return FormatBits(flags, kMremapNames); }

std::string FormatDmirrorFlags(uint32_t flags) { return FormatBits(flags, kDmirrorFlagNames); }

// --- Words ---

namespace {

// A word for each value of an enum (profiles, counters).
template <typename T>
struct Word {
  T value;
  const char* name;
};

// The entry of `words` named `name`, or of value `value`; null when none is.
template <typename T, size_t N>
const Word<T>* Named(const Word<T> (&words)[N], const std::string& name) {
  for (const Word<T>& w : words) {
    if (name == w.name) return &w;
  }
  return nullptr;
}
template <typename T, size_t N>
const Word<T>* Valued(const Word<T> (&words)[N], uint64_t value) {
  for (const Word<T>& w : words) {
    if (value == static_cast<uint64_t>(w.value)) return &w;
  }
  return nullptr;
}

constexpr Word<Profile> kProfileNames[] = {
    {Profile::kDefault, "default"}, {Profile::kV18, "v18"}, {Profile::kLinux61, "linux-6.1"}};
constexpr Word<Counter> kCounterNames[] = {{Counter::kCpages, "cpages"},
                                           {Counter::kFaults, "faults"}};

}  // namespace

bool ParseProfile(const std::string& token, uint32_t* out, std::string* msg) {
  const Word<Profile>* p = Named(kProfileNames, token);
  if (p == nullptr) {
    return Fail(msg, "unknown profile " + Show(token) + " (expected default, v18 or linux-6.1)");
  }
  *out = static_cast<uint32_t>(p->value);
  return true;
}

std::string FormatProfile(uint32_t profile) {
  const Word<Profile>* p = Valued(kProfileNames, profile);
  return p != nullptr ? p->name : Dec(profile);
}

// --- Data ---

namespace {

// `token` starts with '"'; the line tokenizer only cuts whole strings, so the
// guard below holds for every token that comes from a line.
bool DecodeString(const std::string& token, std::vector<uint8_t>* out, std::string* msg) {
  if (token.size() < 2 || token.back() != '"') return Fail(msg, "unterminated string");
  const std::string body = token.substr(1, token.size() - 2);
  for (size_t i = 0; i < body.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(body[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "control byte 0x%02x in string (write it as \\x%02x)", c, c);
      return Fail(msg, buf);
    }
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    char e = ++i < body.size() ? body[i] : '\0';
    static const char kFrom[] = "ntr0\\\"";
    static const char kTo[] = "\n\t\r\0\\\"";
    const char* hit = e != '\0' ? std::strchr(kFrom, e) : nullptr;
    if (hit != nullptr) {
      out->push_back(static_cast<uint8_t>(kTo[hit - kFrom]));
    } else if (e == 'x' && i + 2 < body.size() && DigitValue(body[i + 1]) >= 0 &&
               DigitValue(body[i + 2]) >= 0) {
      out->push_back(static_cast<uint8_t>(DigitValue(body[i + 1]) * 16 + DigitValue(body[i + 2])));
      i += 2;
    } else if (e == 'x') {
      return Fail(msg, "bad escape in string " + Show(token) + " (\\x needs two hex digits)");
    } else {
      return Fail(msg, "unknown escape " + Show(std::string("\\") + e) + " in string");
    }
  }
  return true;
}

bool DecodeHex(const std::string& token, std::vector<uint8_t>* out, std::string* msg) {
  const size_t start = std::strlen("hex:");
  for (size_t i = start; i < token.size(); ++i) {
    if (DigitValue(token[i]) < 0) {
      return Fail(msg, "bad hex digit " + Show(token.substr(i, 1)) + " in " + Show(token));
    }
  }
  if ((token.size() - start) % 2 != 0) {
    return Fail(msg, "odd number of hex digits in " + Show(token));
  }
  for (size_t i = start; i < token.size(); i += 2) {
    out->push_back(static_cast<uint8_t>(DigitValue(token[i]) * 16 + DigitValue(token[i + 1])));
  }
  return true;
}

bool DecodeFill(const std::string& token, std::vector<uint8_t>* out, std::string* msg) {
  const size_t start = std::strlen("fill:");
  const size_t star = token.find('*', start);
  if (star == std::string::npos) {
    return Fail(msg, "bad fill " + Show(token) + " (expected fill:BYTE*COUNT)");
  }
  uint64_t byte = 0;
  uint64_t count = 0;
  if (!ParseNumber(token.substr(start, star - start), 8, &byte, msg)) return false;
  if (!ParseNumber(token.substr(star + 1), 64, &count, msg)) return false;
  if (count > kMaxFillBytes) {
    return Fail(msg, "fill count " + Dec(count) + " exceeds " + Dec(kMaxFillBytes));
  }
  out->assign(count, static_cast<uint8_t>(byte));
  return true;
}

// Bytes FormatData writes as a quoted string: printable ASCII, \n, \t, \r.
bool IsStringByte(uint8_t c) {
  return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t' || c == '\r';
}

std::string QuotedString(const std::vector<uint8_t>& data) {
  std::string out = "\"";
  for (uint8_t c : data) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == '\\' || c == '"') out += std::string("\\") + static_cast<char>(c);
    else out += static_cast<char>(c);
  }
  return out + "\"";
}

}  // namespace

bool IsDataToken(const std::string& token) {
  return StartsWith(token, "\"") || StartsWith(token, "hex:") || StartsWith(token, "fill:");
}

bool ParseData(const std::string& token, std::vector<uint8_t>* out, std::string* msg) {
  out->clear();
  if (StartsWith(token, "\"")) return DecodeString(token, out, msg);
  if (StartsWith(token, "hex:")) return DecodeHex(token, out, msg);
  if (StartsWith(token, "fill:")) return DecodeFill(token, out, msg);
  return Fail(msg, "bad data " + Show(token) + " (expected \"TEXT\", hex:HEX or fill:BYTE*COUNT)");
}

namespace {

// fill: for 8 to kMaxFillBytes equal bytes (else it would not parse); "" otherwise.
std::string FillOf(const std::vector<uint8_t>& data) {
  bool uniform = std::all_of(data.begin(), data.end(), [&](uint8_t c) { return c == data[0]; });
  if (data.size() < 8 || data.size() > kMaxFillBytes || !uniform) return "";
  return "fill:" + Hex(data[0]) + "*" + Dec(data.size());
}

std::string HexOf(const std::vector<uint8_t>& data) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out = "hex:";
  for (uint8_t c : data) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

}  // namespace

std::string FormatData(const std::vector<uint8_t>& data) {
  std::string fill = FillOf(data);
  if (!fill.empty()) return fill;
  if (std::all_of(data.begin(), data.end(), IsStringByte)) return QuotedString(data);
  return HexOf(data);
}

std::string FormatBinary(const std::vector<uint8_t>& data) {
  std::string fill = FillOf(data);
  return fill.empty() ? HexOf(data) : fill;
}

// --- Counters ---

bool IsCounterToken(const std::string& token) {
  return !IsDataToken(token) && token.find('=') != std::string::npos;
}

bool ParseCounter(const std::string& token, Counter* counter, uint64_t* value,
                  std::string* msg) {
  const size_t eq = token.find('=');
  const std::string name = token.substr(0, eq);
  const std::string number = eq == std::string::npos ? "" : token.substr(eq + 1);
  const Word<Counter>* c = Named(kCounterNames, name);
  if (c == nullptr) {
    return Fail(msg, "unknown counter " + Show(token) + " (expected cpages=N or faults=N)");
  }
  if (!StartsWithDigit(number)) {
    return Fail(msg, "bad counter " + Show(token) + " (expected " + name + "=N)");
  }
  *counter = c->value;
  return ParseNumber(number, 64, value, msg);
}

std::string FormatCounter(Counter counter, uint64_t value) {
  const Word<Counter>* c = Valued(kCounterNames, static_cast<uint64_t>(counter));
  return std::string(c != nullptr ? c->name : "?") + "=" + Dec(value);
}

}  // namespace hmm::props::trace_values
