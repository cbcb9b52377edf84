#!/usr/bin/env bash
# File: cli/defect_walkthrough_test.sh
#
# What a user sees when an invariant breaks, end to end: the seeded-defect
# build (HMMREF_SEEDED_DEFECT=kCowNotBroken) fails `check` with exit 1, prints
# and writes the minimized .hmm trace and its step-indexed report, and the one
# reproduce command; the clean program replays the trace clean (the trace is
# right, the impl was wrong), the broken one replays it failing at the same
# step; the report marks the suite FAILED and draws the counterexample.
#
# Usage: defect_walkthrough_test.sh HMMREF HMMREF_DEFECTS
set -uo pipefail

clean=$1
broken=$2
tmp=${TEST_TMPDIR:-$(mktemp -d)}
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

export HMMREF_SEEDED_DEFECT=kCowNotBroken
"$broken" check --suite cpu --seed 7 --runs 1000 --out "$tmp/out" >"$tmp/check.out" 2>"$tmp/check.err"
status=$?
[[ $status -eq 1 ]] || fail "check with a seeded defect exited $status, want 1"
trace="$tmp/out/cpu-seed7.hmm"
[[ -s $trace ]] || fail "no counterexample at $trace"
[[ -s $tmp/out/cpu-seed7.txt ]] || fail "no step-indexed report next to it"
grep -q "reproduce:" "$tmp/check.out" || fail "no reproduce command printed"
grep -q "fails check" "$tmp/out/cpu-seed7.txt" || fail "the report names no failing check"
steps=$(grep -cv '^#' "$trace")
[[ $steps -le 8 ]] || fail "counterexample has $steps lines, want at most 8"

"$broken" run "$trace" >"$tmp/run_broken.out" 2>&1
[[ $? -eq 1 ]] || fail "the broken build replays the trace clean"
grep -q "FAILED at step" "$tmp/run_broken.out" || fail "replay names no failing step"

unset HMMREF_SEEDED_DEFECT
"$clean" run "$trace" >"$tmp/run_clean.out" 2>&1 || fail "the clean build fails the trace: $(cat "$tmp/run_clean.out")"

export HMMREF_SEEDED_DEFECT=kCowNotBroken
"$broken" report --out "$tmp/report" --runs 1000 --seed 7 --quiet >"$tmp/report.out" 2>&1 ||
  fail "report exited $?: $(cat "$tmp/report.out")"
grep -q "FAILED" "$tmp/report/index.html" || fail "the report does not mark the failure"
grep -q 'class="lanes"' "$tmp/report/index.html" || fail "the report draws no trace"

HMMREF_SEEDED_DEFECT=kNoSuchDefect "$broken" check >/dev/null 2>"$tmp/bad.err"
[[ $? -eq 2 ]] || fail "an unknown defect name is not a usage error"

if [[ $failures -ne 0 ]]; then
  echo "--- check output ---" >&2
  cat "$tmp/check.out" "$tmp/check.err" >&2
  exit 1
fi
echo "PASS"
