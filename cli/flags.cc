// File: cli/flags.cc

#include "cli/flags.h"

#include <algorithm>
#include <limits>

namespace hmm::cli {
namespace {

bool IsHelp(const std::string& arg) { return arg == "-h" || arg == "--help"; }

// Levenshtein distance, for "did you mean" on a misspelt flag.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string UsageError(const std::string& command, const std::string& what) {
  std::string see = command.empty() ? "hmmref --help" : "hmmref " + command + " --help";
  return "hmmref: " + what + "; see '" + see + "'";
}

bool ParseUint64(const std::string& text, uint64_t* out) {
  if (text.empty()) return false;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (kMax - digit) / 10) return false;
    value = value * 10 + digit;
  }
  *out = value;
  return true;
}

void Flags::Bool(const std::string& name, bool* target, const std::string& help) {
  flags_.push_back({name, "", help, [target](const std::string&, std::string*) {
                      *target = true;
                      return true;
                    }});
}

void Flags::Uint(const std::string& name, const std::string& value_name, uint64_t* target,
                 uint64_t min, uint64_t max, const std::string& help) {
  Custom(name, value_name,
         [name, target, min, max](const std::string& value, std::string* error) {
           bool digits = !value.empty() &&
                         value.find_first_not_of("0123456789") == std::string::npos;
           uint64_t v = 0;
           if (!digits) {
             *error = "--" + name + " wants a whole number, got '" + value + "'";
           } else if (!ParseUint64(value, &v) || v > max) {
             *error = "--" + name + " must be at most " + std::to_string(max) + ", got '" +
                      value + "'";
           } else if (v < min) {
             *error = "--" + name + " must be at least " + std::to_string(min) + ", got '" +
                      value + "'";
           } else {
             *target = v;
             return true;
           }
           return false;
         },
         help);
}

void Flags::String(const std::string& name, const std::string& value_name,
                   std::string* target, const std::string& help) {
  Custom(name, value_name,
         [name, value_name, target](const std::string& value, std::string* error) {
           if (value.empty()) {
             *error = "--" + name + " wants a non-empty " + value_name;
             return false;
           }
           *target = value;
           return true;
         },
         help);
}

namespace {

// "'a'", "'a' or 'b'", "'a', 'b' or 'c'".
std::string Alternatives(const std::vector<std::string>& choices) {
  std::string text;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) text += i + 1 == choices.size() ? " or " : ", ";
    text += "'" + choices[i] + "'";
  }
  return text;
}

}  // namespace

void Flags::Choice(const std::string& name, const std::string& value_name, std::string* target,
                   const std::vector<std::string>& choices, const std::string& help) {
  Custom(name, value_name,
         [name, target, choices](const std::string& value, std::string* error) {
           if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
             *error = "--" + name + " wants " + Alternatives(choices) + ", got '" + value + "'";
             return false;
           }
           *target = value;
           return true;
         },
         help);
}

void Flags::Custom(const std::string& name, const std::string& value_name, Setter setter,
                   const std::string& help) {
  flags_.push_back({name, value_name, help, std::move(setter)});
}

const Flags::Flag* Flags::Find(const std::string& name) const {
  for (const Flag& flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

std::string Flags::Suggest(const std::string& name) const {
  const Flag* best = nullptr;
  size_t best_distance = 3;  // suggest only within two edits
  for (const Flag& flag : flags_) {
    size_t d = EditDistance(name, flag.name);
    if (d < best_distance) {
      best = &flag;
      best_distance = d;
    }
  }
  return best == nullptr ? "" : " (did you mean '--" + best->name + "'?)";
}

bool Flags::Parse(const std::vector<std::string>& args, std::string* error) {
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (IsHelp(arg)) {
      help_ = true;
      return true;
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positional_.insert(positional_.end(), args.begin() + i + 1, args.end());
      return true;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional_.push_back(arg);
    } else if (!ParseFlag(args, &i, error)) {
      return false;
    }
  }
  return true;
}

// Parses the flag at args[*i]; advances *i past a separate value.
bool Flags::ParseFlag(const std::vector<std::string>& args, size_t* i, std::string* error) {
  const std::string& arg = args[*i];
  if (arg[1] != '-') {
    *error = "unknown flag '" + arg + "'";
    return false;
  }
  size_t eq = arg.find('=');
  std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
  const Flag* flag = Find(name);
  if (flag == nullptr) {
    *error = "unknown flag '--" + name + "'" + Suggest(name);
    return false;
  }
  if (flag->value_name.empty()) {
    if (eq == std::string::npos) return flag->set("", error);
    *error = "--" + name + " takes no value";
    return false;
  }
  if (eq != std::string::npos) return flag->set(arg.substr(eq + 1), error);
  if (*i + 1 >= args.size() || args[*i + 1].rfind("--", 0) == 0) {
    *error = "--" + name + " needs a value (" + flag->value_name + ")";
    return false;
  }
  ++*i;
  return flag->set(args[*i], error);
}

std::string Flags::Describe() const {
  std::vector<std::pair<std::string, std::string>> rows;
  for (const Flag& flag : flags_) {
    std::string left = "--" + flag.name;
    if (!flag.value_name.empty()) left += " " + flag.value_name;
    rows.emplace_back(left, flag.help);
  }
  rows.emplace_back("-h, --help", "show this help");
  size_t width = 0;
  for (const auto& row : rows) width = std::max(width, row.first.size());
  std::string out;
  for (const auto& row : rows) {
    out += "  " + row.first + std::string(width - row.first.size() + 2, ' ') + row.second +
           "\n";
  }
  return out;
}

}  // namespace hmm::cli
