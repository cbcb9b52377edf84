// File: cli/flags.h
//
// A small command-line flag parser for the hmmref subcommands. Each command
// declares its flags (boolean, unsigned integer, string, or a custom value
// checked by a function), then parses the arguments that follow the command
// name. Accepted forms:
//   --flag            (boolean flags only)
//   --flag=value      (value flags; the value may be empty or start with '-')
//   --flag value      (value flags; the next argument is the value unless it
//                      starts with "--", which is reported as a missing value)
//   --                (everything after it is positional)
//   -h, --help        (anywhere before "--": help wins over every other error)
// Anything else that starts with '-' (except "-" alone) is an unknown flag;
// everything else is positional. A flag given twice keeps its last value.
//
// Errors are short phrases without the program name ("unknown flag '--rnus'
// (did you mean '--runs'?)"); UsageError() turns one into the single line
// that hmmref prints on stderr before exiting with status 2.

#ifndef HMMREF_CLI_FLAGS_H_
#define HMMREF_CLI_FLAGS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hmm::cli {

// "hmmref: WHAT; see 'hmmref COMMAND --help'" (no newline). An empty command
// points at the top-level help: "see 'hmmref --help'".
std::string UsageError(const std::string& command, const std::string& what);

// Returns true iff `text` is a non-empty run of decimal digits whose value
// fits in 64 bits; then stores the value in *out. No sign, no spaces, no 0x.
bool ParseUint64(const std::string& text, uint64_t* out);

class Flags {
 public:
  // Checks and stores one value. On a bad value returns false and sets
  // *error to a phrase naming the flag ("--runs must be at least 1, got '0'").
  using Setter = std::function<bool(const std::string& value, std::string* error)>;

  // REQUIRES: each name is declared once, without the leading "--", and is
  // not "help".
  void Bool(const std::string& name, bool* target, const std::string& help);
  // A whole number in [min, max], e.g. Uint("runs", "N", &runs, 1, 1000, "...").
  void Uint(const std::string& name, const std::string& value_name, uint64_t* target,
            uint64_t min, uint64_t max, const std::string& help);
  // Any non-empty string.
  void String(const std::string& name, const std::string& value_name, std::string* target,
              const std::string& help);
  // One of `choices`, e.g. Choice("profile", "NAME", &profile, {"default",
  // "v18"}, "..."); anything else is "--profile wants 'default' or 'v18',
  // got 'v19'".
  void Choice(const std::string& name, const std::string& value_name, std::string* target,
              const std::vector<std::string>& choices, const std::string& help);
  // A value checked by `setter`.
  void Custom(const std::string& name, const std::string& value_name, Setter setter,
              const std::string& help);

  // Parses `args` (the arguments after the command name). Returns false on
  // the first error and sets *error; targets set before the error keep their
  // new values. Returns true when -h/--help is present (help() is then true
  // and nothing else is parsed).
  bool Parse(const std::vector<std::string>& args, std::string* error);

  bool help() const { return help_; }
  const std::vector<std::string>& positional() const { return positional_; }

  // One line per flag, aligned, in declaration order, then -h/--help:
  //   "  --runs N        sequences per suite (default 200)"
  std::string Describe() const;

 private:
  struct Flag {
    std::string name;
    std::string value_name;  // empty for boolean flags
    std::string help;
    Setter set;
  };

  const Flag* Find(const std::string& name) const;
  std::string Suggest(const std::string& name) const;
  bool ParseFlag(const std::vector<std::string>& args, size_t* i, std::string* error);

  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
  bool help_ = false;
};

}  // namespace hmm::cli

#endif  // HMMREF_CLI_FLAGS_H_
