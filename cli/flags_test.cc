// File: cli/flags_test.cc

#include "cli/flags.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace hmm::cli {
namespace {

// The flags of `hmmref check`, as commands.cc declares them.
struct CheckFlags {
  std::string suite;
  uint64_t runs = 200;
  uint64_t max_steps = 60;
  bool quiet = false;
  std::string seed = "1";
  std::string profile;
  Flags flags;

  CheckFlags() {
    flags.String("suite", "NAME", &suite, "run one suite");
    flags.Uint("runs", "N", &runs, 1, 1000000, "sequences per suite");
    flags.Uint("max-steps", "K", &max_steps, 1, 10000, "longest sequence");
    flags.Bool("quiet", &quiet, "no progress line");
    flags.Choice("profile", "NAME", &profile, {"default", "v18"}, "semantics profile");
    flags.Custom("seed", "S",
                 [this](const std::string& v, std::string* error) {
                   uint64_t unused;
                   if (v != "random" && !ParseUint64(v, &unused)) {
                     *error = "--seed wants a whole number or 'random', got '" + v + "'";
                     return false;
                   }
                   seed = v;
                   return true;
                 },
                 "seed");
  }

  // Returns the error, or "" on success.
  std::string Parse(const std::vector<std::string>& args) {
    std::string error;
    bool ok = flags.Parse(args, &error);
    EXPECT_EQ(ok, error.empty()) << error;
    return error;
  }
};

TEST(ParseUint64Test, AcceptsDecimalDigitsOnly) {
  uint64_t v = 7;
  EXPECT_TRUE(ParseUint64("0", &v));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(ParseUint64("18446744073709551615", &v));
  EXPECT_EQ(v, UINT64_MAX);
  for (const char* bad : {"", "-1", "+1", "1a", " 1", "0x10", "18446744073709551616", "1.5"}) {
    v = 7;
    EXPECT_FALSE(ParseUint64(bad, &v)) << bad;
    EXPECT_EQ(v, 7u) << bad;
  }
}

TEST(UsageErrorTest, NamesTheCommandHelp) {
  EXPECT_EQ(UsageError("check", "unknown flag '--x'"),
            "hmmref: unknown flag '--x'; see 'hmmref check --help'");
  EXPECT_EQ(UsageError("", "unknown command 'x'"),
            "hmmref: unknown command 'x'; see 'hmmref --help'");
}

TEST(FlagsTest, DefaultsStayWhenNothingIsGiven) {
  CheckFlags f;
  EXPECT_EQ(f.Parse({}), "");
  EXPECT_EQ(f.runs, 200u);
  EXPECT_FALSE(f.quiet);
  EXPECT_TRUE(f.flags.positional().empty());
  EXPECT_FALSE(f.flags.help());
}

TEST(FlagsTest, ValueAfterEqualsOrAsNextArgument) {
  CheckFlags f;
  EXPECT_EQ(f.Parse({"--runs=5", "--suite", "cpu", "--max-steps", "9", "--quiet"}), "");
  EXPECT_EQ(f.runs, 5u);
  EXPECT_EQ(f.suite, "cpu");
  EXPECT_EQ(f.max_steps, 9u);
  EXPECT_TRUE(f.quiet);
}

TEST(FlagsTest, LastValueWins) {
  CheckFlags f;
  EXPECT_EQ(f.Parse({"--runs", "5", "--runs=6"}), "");
  EXPECT_EQ(f.runs, 6u);
}

TEST(FlagsTest, PositionalArgumentsInOrder) {
  CheckFlags f;
  EXPECT_EQ(f.Parse({"a.hmm", "--quiet", "b.hmm", "-"}), "");
  EXPECT_EQ(f.flags.positional(), (std::vector<std::string>{"a.hmm", "b.hmm", "-"}));
}

TEST(FlagsTest, DoubleDashEndsFlags) {
  CheckFlags f;
  EXPECT_EQ(f.Parse({"--quiet", "--", "--runs", "-h"}), "");
  EXPECT_EQ(f.flags.positional(), (std::vector<std::string>{"--runs", "-h"}));
  EXPECT_EQ(f.runs, 200u);
  EXPECT_FALSE(f.flags.help());
}

TEST(FlagsTest, HelpWinsOverOtherErrors) {
  for (const char* help : {"-h", "--help"}) {
    CheckFlags f;
    EXPECT_EQ(f.Parse({"--runs", "abc", "--bogus", help}), "");
    EXPECT_TRUE(f.flags.help());
  }
}

TEST(FlagsTest, UnknownFlags) {
  EXPECT_EQ(CheckFlags().Parse({"--bogus"}), "unknown flag '--bogus'");
  EXPECT_EQ(CheckFlags().Parse({"--bogus=1"}), "unknown flag '--bogus'");
  EXPECT_EQ(CheckFlags().Parse({"-x"}), "unknown flag '-x'");
  EXPECT_EQ(CheckFlags().Parse({"-runs"}), "unknown flag '-runs'");
  EXPECT_EQ(CheckFlags().Parse({"---runs"}), "unknown flag '---runs' (did you mean '--runs'?)");
}

TEST(FlagsTest, MisspeltFlagGetsASuggestion) {
  EXPECT_EQ(CheckFlags().Parse({"--rnus", "3"}), "unknown flag '--rnus' (did you mean '--runs'?)");
  EXPECT_EQ(CheckFlags().Parse({"--max-step=3"}),
            "unknown flag '--max-step' (did you mean '--max-steps'?)");
  EXPECT_EQ(CheckFlags().Parse({"--verbose"}), "unknown flag '--verbose'");
}

TEST(FlagsTest, MissingValue) {
  EXPECT_EQ(CheckFlags().Parse({"--runs"}), "--runs needs a value (N)");
  EXPECT_EQ(CheckFlags().Parse({"--suite", "--quiet"}), "--suite needs a value (NAME)");
}

TEST(FlagsTest, BadIntegerValues) {
  EXPECT_EQ(CheckFlags().Parse({"--runs", "abc"}), "--runs wants a whole number, got 'abc'");
  EXPECT_EQ(CheckFlags().Parse({"--runs="}), "--runs wants a whole number, got ''");
  EXPECT_EQ(CheckFlags().Parse({"--runs", "-1"}), "--runs wants a whole number, got '-1'");
  EXPECT_EQ(CheckFlags().Parse({"--runs", "0"}), "--runs must be at least 1, got '0'");
  EXPECT_EQ(CheckFlags().Parse({"--max-steps=10001"}),
            "--max-steps must be at most 10000, got '10001'");
  EXPECT_EQ(CheckFlags().Parse({"--runs", "99999999999999999999999"}),
            "--runs must be at most 1000000, got '99999999999999999999999'");
}

TEST(FlagsTest, IntegerBoundsAreInclusive) {
  CheckFlags f;
  EXPECT_EQ(f.Parse({"--runs", "1", "--max-steps", "10000"}), "");
  EXPECT_EQ(f.runs, 1u);
  EXPECT_EQ(f.max_steps, 10000u);
}

TEST(FlagsTest, StringWantsNonEmptyValue) {
  EXPECT_EQ(CheckFlags().Parse({"--suite="}), "--suite wants a non-empty NAME");
  CheckFlags f;
  EXPECT_EQ(f.Parse({"--suite=-odd"}), "");
  EXPECT_EQ(f.suite, "-odd");
}

TEST(FlagsTest, BoolTakesNoValue) {
  EXPECT_EQ(CheckFlags().Parse({"--quiet=true"}), "--quiet takes no value");
}

TEST(FlagsTest, CustomSetterDecides) {
  CheckFlags f;
  EXPECT_EQ(f.Parse({"--seed", "random"}), "");
  EXPECT_EQ(f.seed, "random");
  EXPECT_EQ(f.Parse({"--seed=42"}), "");
  EXPECT_EQ(f.seed, "42");
  EXPECT_EQ(CheckFlags().Parse({"--seed", "-1"}),
            "--seed wants a whole number or 'random', got '-1'");
}

TEST(FlagsTest, ChoiceTakesOneOfItsValues) {
  CheckFlags f;
  EXPECT_EQ(f.Parse({"--profile", "v18"}), "");
  EXPECT_EQ(f.profile, "v18");
  EXPECT_EQ(f.Parse({"--profile=default"}), "");
  EXPECT_EQ(f.profile, "default");
  EXPECT_EQ(f.Parse({"--profile", "v19"}), "--profile wants 'default' or 'v18', got 'v19'");
  EXPECT_EQ(f.profile, "default");
  EXPECT_EQ(f.Parse({"--profile="}), "--profile wants 'default' or 'v18', got ''");
  EXPECT_EQ(f.Parse({"--profile"}), "--profile needs a value (NAME)");
  Flags three;
  std::string color;
  three.Choice("color", "C", &color, {"red", "green", "blue"}, "");
  std::string error;
  EXPECT_FALSE(three.Parse({"--color=pink"}, &error));
  EXPECT_EQ(error, "--color wants 'red', 'green' or 'blue', got 'pink'");
}

TEST(FlagsTest, StopsAtFirstError) {
  CheckFlags f;
  EXPECT_EQ(f.Parse({"--runs", "3", "--runs", "x", "--bogus"}),
            "--runs wants a whole number, got 'x'");
  EXPECT_EQ(f.runs, 3u);
}

TEST(FlagsTest, DescribeAlignsFlagsAndAddsHelp) {
  Flags flags;
  bool quiet = false;
  uint64_t runs = 0;
  flags.Uint("runs", "N", &runs, 1, 10, "sequences");
  flags.Bool("quiet", &quiet, "no progress");
  EXPECT_EQ(flags.Describe(),
            "  --runs N    sequences\n"
            "  --quiet     no progress\n"
            "  -h, --help  show this help\n");
}

}  // namespace
}  // namespace hmm::cli
