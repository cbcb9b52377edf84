#!/usr/bin/env bash
# File: cli/cli_test.sh
#
# Runs the built hmmref program for its interface contract (cli/commands.h):
# usage errors are exactly one line on stderr and exit 2; help exits 0; a
# malformed .hmm file is reported as FILE:LINE: message and exits 2.
#
# Usage: cli_test.sh HMMREF MALFORMED.hmm...   (Bazel passes both; cli/BUILD)
set -uo pipefail

hmmref=$1
shift
tmp=${TEST_TMPDIR:-$(mktemp -d)}
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# run_case NAME ARGS...: runs hmmref; leaves the status in $status, the
# output in $tmp/out and $tmp/err.
run_case() {
  "$hmmref" "$@" >"$tmp/out" 2>"$tmp/err"
  status=$?
}

# expect_usage_error PATTERN ARGS...: exit 2, exactly one stderr line that
# matches the extended regex PATTERN, nothing on stdout.
expect_usage_error() {
  local pattern=$1
  shift
  run_case "$@"
  local lines
  lines=$(wc -l <"$tmp/err")
  [[ $status -eq 2 ]] || fail "hmmref $*: exit $status, want 2"
  [[ $lines -eq 1 ]] || fail "hmmref $*: $lines stderr lines, want 1: $(cat "$tmp/err")"
  grep -Eq "$pattern" "$tmp/err" || fail "hmmref $*: stderr '$(cat "$tmp/err")' !~ /$pattern/"
  [[ ! -s $tmp/out ]] || fail "hmmref $*: wrote to stdout: $(head -3 "$tmp/out")"
}

# expect_help PATTERN ARGS...: exit 0, stdout matches PATTERN, stderr empty.
expect_help() {
  local pattern=$1
  shift
  run_case "$@"
  [[ $status -eq 0 ]] || fail "hmmref $*: exit $status, want 0"
  grep -Eq "$pattern" "$tmp/out" || fail "hmmref $*: stdout !~ /$pattern/"
  [[ ! -s $tmp/err ]] || fail "hmmref $*: wrote to stderr: $(cat "$tmp/err")"
}

see() { echo "; see 'hmmref $1--help'\$"; }

# --- help and version ---
expect_help 'Usage: hmmref <command>' --help
expect_help 'Usage: hmmref <command>' -h
expect_help 'Usage: hmmref <command>' help
expect_help '^hmmref [0-9]+\.[0-9]+\.[0-9]+$' --version
for cmd in check run prove; do
  expect_help "Usage: hmmref $cmd" "$cmd" --help
  expect_help "Usage: hmmref $cmd" "$cmd" -h
  expect_help "Usage: hmmref $cmd" help "$cmd"
  expect_help 'Exit status:' "$cmd" --help
  expect_help 'Examples:' "$cmd" --help
done
# Help wins over a bad flag given with it.
expect_help 'Usage: hmmref check' check --runs abc --help

# --- usage errors: one line, exit 2 ---
expect_usage_error "^hmmref: no command given.*$(see '')" 
expect_usage_error "^hmmref: unknown command 'frobnicate'$(see '')" frobnicate
expect_usage_error "^hmmref: unknown flag '--bogus'$(see '')" --bogus
expect_usage_error "^hmmref: unknown command 'nope'$(see '')" help nope
expect_usage_error "^hmmref: unknown flag '--bogus'$(see 'check ')" check --bogus
expect_usage_error "did you mean '--runs'\?" check --rnus 3
expect_usage_error "^hmmref: --runs needs a value \(N\)$(see 'check ')" check --runs
expect_usage_error "^hmmref: --runs wants a whole number, got 'abc'$(see 'check ')" check --runs abc
expect_usage_error "^hmmref: --runs must be at least 1, got '0'$(see 'check ')" check --runs 0
expect_usage_error "^hmmref: --seed wants a whole number or 'random', got '-1'" check --seed -1
expect_usage_error "^hmmref: --max-steps wants a whole number" check --max-steps=1.5
expect_usage_error "^hmmref: --quiet takes no value" check --quiet=yes
expect_usage_error "^hmmref: unexpected argument 'extra'$(see 'check ')" check extra
expect_usage_error "^hmmref: unknown suite 'nosuch' \(suites: [a-z]" check --suite nosuch
expect_usage_error "^hmmref: --profile wants 'default' or 'v18', got 'v19'$(see 'check ')" check --profile v19
expect_usage_error "^hmmref: --profile needs a value \(NAME\)$(see 'check ')" check --profile
expect_usage_error "^hmmref: run needs at least one FILE$(see 'run ')" run
expect_usage_error "^hmmref: unknown flag '--bogus'$(see 'run ')" run --bogus x.hmm
expect_usage_error "^hmmref: unknown lemma 'NoSuchLemma' \(lemmas: [A-Za-z]" prove --lemma NoSuchLemma
expect_usage_error "^hmmref: unexpected argument 'x'$(see 'prove ')" prove x

# --- input errors: FILE:LINE (or FILE: cannot read) and exit 2 ---
expect_usage_error "^$tmp/missing.hmm: cannot read" run "$tmp/missing.hmm"
malformed=0
for file in "$@"; do
  [[ -n $file ]] || continue
  malformed=$((malformed + 1))
  expect_usage_error "^${file//./\\.}:[0-9]+: ." run "$file"
done
# Every file is parsed before any runs, and every bad one is named.
if [[ $# -gt 0 && -n $1 ]]; then
  run_case run "$1" "$tmp/missing.hmm"
  [[ $status -eq 2 && $(wc -l <"$tmp/err") -eq 2 && ! -s $tmp/out ]] ||
    fail "hmmref run BAD MISSING: exit $status, stderr: $(cat "$tmp/err")"
fi
echo "checked $malformed malformed scenarios"

# A wrong expected value fails the run and is named at its file line.
cat >"$tmp/wrong_faults.hmm" <<'TRACE'
# anon_write with a wrong expectation: the kernel (and hmmref) give faults=1.
process                                  -> 1
mirror 0 1                               -> 1
mmap 1 0 0x8000 rw private               -> 0x10000000

dwrite 1 0x10000000 fill:0x5a*0x8000     -> ok cpages=8 faults=2
read 1 0x10000000 4                      -> "ZZZZ"
TRACE
run_case run "$tmp/wrong_faults.hmm"
if [[ $status -ne 1 ]] || ! grep -q "^$tmp/wrong_faults.hmm:6: FAILED at step 4 of 5 (expect)$" "$tmp/out" ||
  ! grep -q "expected ok cpages=8 faults=2, both sides gave ok cpages=8 faults=1" "$tmp/out"; then
  fail "hmmref run with a wrong faults= value: exit $status, stdout: $(cat "$tmp/out")"
fi

# --- the lists ---
expect_help '^[a-z]+$' check --list
expect_help '^race$' check --list
expect_help '^[A-Za-z]+$' prove --list
expect_help 'profile NAME' check --help

# --- the race suite (docs/concurrency.md) ---
# v18: the invalidate-after-change hazard, as a minimized interleaving that
# names it, written under --out; exit 1.
run_case check --suite race --profile v18 --runs 300 --quiet --out "$tmp/race"
race_txt="$tmp/race/race-seed1.txt"
if [[ $status -ne 1 ]] || ! grep -q "^hazard InvMirrorSubsetOfCpu\|  hazard InvMirrorSubsetOfCpu: device " "$tmp/out" ||
  ! grep -q "pte_changed" "$tmp/out" || ! grep -q "^hmmref check: FAILED (suite race)$" "$tmp/out" ||
  ! grep -q "^replay: .* check --suite race --seed 1 --runs 300 .*--profile v18" "$tmp/out" ||
  ! grep -q "failing check: InvMirrorSubsetOfCpu" "$race_txt"; then
  fail "check --suite race --profile v18: exit $status, stdout: $(head -40 "$tmp/out")"
fi
# The same search again gives the same interleaving.
cp "$race_txt" "$tmp/race-first.txt"
run_case check --suite race --profile v18 --runs 300 --quiet --out "$tmp/race"
cmp -s "$race_txt" "$tmp/race-first.txt" || fail "the race suite's replay differs: $(diff "$race_txt" "$tmp/race-first.txt" | head)"
# The default profile: the same budget finds nothing.
run_case check --suite race --profile default --runs 300 --quiet
[[ $status -eq 0 ]] || fail "check --suite race --profile default: exit $status, stdout: $(head -60 "$tmp/out")"

if [[ $failures -gt 0 ]]; then
  echo "$failures failures" >&2
  exit 1
fi
echo "all passed"
