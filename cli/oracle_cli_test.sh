#!/usr/bin/env bash
# File: cli/oracle_cli_test.sh
#
# The program's half of the kernel oracle, without a kernel (docs/oracle.md):
# `oracle lower` writes the guest's numbers-only form; `oracle gen` draws the
# same traces for the same seed and keeps only kernel-exposed lines;
# `oracle candidates` writes one shrinking round, shortest first; usage errors
# are one line and exit 2.
#
# Usage: oracle_cli_test.sh HMMREF SCENARIO.hmm...   (Bazel passes the
# scenario corpus; cli/BUILD; mirror_anon_read.hmm is the one lowered)
set -uo pipefail

hmmref=$1
shift
scenario=""
for f in "$@"; do [[ $f == */mirror_anon_read.hmm ]] && scenario=$f; done
tmp=${TEST_TMPDIR:-$(mktemp -d)}
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# lower: one .lt per FILE, a trace header, a spawn for the process line.
mkdir -p "$tmp/lowered"
"$hmmref" oracle lower --out "$tmp/lowered" "$scenario" >"$tmp/lower.out" || fail "lower exited $?"
grep -q '^trace 0000-' "$tmp/lowered/0000.lt" || fail "lower: no trace header in 0000.lt"
grep -q ' spawn$' "$tmp/lowered/0000.lt" || fail "lower: no spawn line in 0000.lt"

# gen: deterministic per seed, different across seeds, kernel lines only.
for d in a b c; do mkdir -p "$tmp/gen-$d"; done
"$hmmref" oracle gen --out "$tmp/gen-a" --traces 30 --seed 7 >/dev/null || fail "gen exited $?"
"$hmmref" oracle gen --out "$tmp/gen-b" --traces 30 --seed 7 >/dev/null || fail "gen (again) exited $?"
"$hmmref" oracle gen --out "$tmp/gen-c" --traces 30 --seed 8 >/dev/null || fail "gen (seed 8) exited $?"
[[ $(ls "$tmp/gen-a" | wc -l) -eq 30 ]] || fail "gen: $(ls "$tmp/gen-a" | wc -l) files, want 30"
diff -r "$tmp/gen-a" "$tmp/gen-b" >/dev/null || fail "gen: the same seed drew different traces"
diff -q "$tmp/gen-a/fuzz-7-00003.hmm" "$tmp/gen-c/fuzz-8-00003.hmm" >/dev/null &&
  fail "gen: seeds 7 and 8 drew the same trace 3"
bad=$(cat "$tmp"/gen-a/*.hmm | grep -v '^#' | awk '{print $1}' | sort -u |
  grep -Evx 'process|exit|mmap|munmap|mprotect|madvise|read|write|fork|mremap|mirror|unmirror|dread|dwrite|snapshot|migrate_to_dev|migrate_to_sys|release')
[[ -z $bad ]] || fail "gen: lines the kernel cannot run: $bad"
grep -hq '^dread\|^snapshot\|^dwrite' "$tmp"/gen-a/*.hmm || fail "gen: no device line in 30 traces"

# candidates: every candidate parses, is shorter, and they come shortest first.
mkdir -p "$tmp/cands"
src=$tmp/gen-a/fuzz-7-00010.hmm
n=$(grep -vc '^#' "$src")
"$hmmref" oracle candidates --out "$tmp/cands" "$src" >"$tmp/cands.out" || fail "candidates exited $?"
[[ $(wc -l <"$tmp/cands.out") -ge $n ]] || fail "candidates: $(wc -l <"$tmp/cands.out") candidates for $n lines, want >= $n"
awk '{print $2}' "$tmp/cands.out" | sort -c -n 2>/dev/null || fail "candidates: not shortest first"
awk -v n="$n" '$2 >= n {bad = 1} END {exit bad}' "$tmp/cands.out" || fail "candidates: one is not shorter than $n"
"$hmmref" oracle lower --out "$tmp/lowered" "$tmp"/cands/cand-00000.hmm >/dev/null || fail "candidates: cand-00000 does not parse"

# Usage errors: one line, exit 2.
usage() {
  "$hmmref" "$@" >"$tmp/out" 2>"$tmp/err"
  local s=$?
  [[ $s -eq 2 && $(wc -l <"$tmp/err") -eq 1 ]] || fail "hmmref $*: exit $s, $(wc -l <"$tmp/err") stderr lines"
}
usage oracle gen --traces 3
usage oracle gen --out "$tmp" --traces 0
usage oracle gen --out "$tmp" --suite nosuch
usage oracle candidates --out "$tmp"
usage oracle candidates --out "$tmp" "$src" "$src"
usage oracle fuzz

echo "oracle_cli_test: $failures failure(s)"
[[ $failures -eq 0 ]]
