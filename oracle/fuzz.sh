#!/usr/bin/env bash
# oracle/fuzz.sh: random traces on Linux 6.1 and on the model, compared line
# by line; a disagreement is shrunk and written as a .hmm regression
# (docs/oracle.md). Called by `./hmmref oracle fuzz`, which builds the hmmref
# program first and passes it in HMMREF_BIN.
set -euo pipefail
# shellcheck shell=bash source=oracle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<MSG
Usage: ./hmmref oracle fuzz [--traces N] [--seed S] [--steps M] [--suite NAME]
                            [--batch B] [--shrink K] [--out DIR] [--profile P]

Draws N random traces from a property suite's generators (only the lines
Linux 6.1 exposes to user space), replays them on the kernel built by
'./hmmref oracle build' (B traces per boot) and on the model, and compares
every line. Each of the first K traces with an unexplained difference is then
shrunk: every round lowers the trace with one run of lines removed (halving
run lengths) and replays all of them in one boot; the shortest that still
differs is kept, until none does. The kernel re-confirms every step, so the
result is a trace that differs on the kernel, written to DIR/regression-S-I.hmm.

Flags:
  --traces N   traces to draw (default 100)
  --seed S     the seed (default 1); the same seed draws the same traces
  --steps M    the most steps a trace draws (default 40)
  --suite NAME the generators: mirror or migrate (default mirror)
  --batch B    traces per boot (default 500)
  --shrink K   shrink at most K differing traces (default 3; 0: none)
  --out DIR    where the traces, logs and regressions go (default: a new
               folder under \${TMPDIR:-/tmp}, kept and named at the end)
  --profile P  the model's profile: linux-6.1 (default) or trace (the
               suite's, default)
  -h, --help   this help

Exit status: 0 no unexplained difference, 1 at least one (regressions
written), 2 usage or setup error.
MSG
}

TRACES=100 SEED=1 STEPS=40 SUITE=mirror BATCH=500 SHRINK=3 OUT="" PROFILE=linux-6.1

parse_args() {
  while [[ $# -gt 0 ]]; do
    case $1 in
      -h | --help) usage; exit 0 ;;
      --traces | --seed | --steps | --batch | --shrink)
        [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || die "$1 needs a number; see './hmmref oracle fuzz --help'"
        case $1 in
          --traces) TRACES=$2 ;; --seed) SEED=$2 ;; --steps) STEPS=$2 ;;
          --batch) BATCH=$2 ;; --shrink) SHRINK=$2 ;;
        esac
        shift 2 ;;
      --suite | --out)
        [[ $# -ge 2 ]] || die "$1 needs a value; see './hmmref oracle fuzz --help'"
        if [[ $1 == --suite ]]; then SUITE=$2; else OUT=$2; fi
        shift 2 ;;
      --profile)
        [[ $# -ge 2 && ( $2 == linux-6.1 || $2 == trace ) ]] ||
          die "--profile needs linux-6.1 or trace; see './hmmref oracle fuzz --help'"
        PROFILE=$2; shift 2 ;;
      *) die "oracle fuzz: unknown argument '$1'; see './hmmref oracle fuzz --help'" ;;
    esac
  done
  [[ $TRACES -ge 1 && $BATCH -ge 1 && $STEPS -ge 1 ]] ||
    die "--traces, --batch and --steps must be at least 1"
  [[ ${HMMREF_ORACLE_CHECK_ARGS:-} != 1 ]] || exit 0
  [[ -n ${HMMREF_BIN:-} && -x ${HMMREF_BIN:-} ]] ||
    die "HMMREF_BIN is not set to the hmmref program; run this through './hmmref oracle fuzz'"
}

# Replays the files $3.. in one run.sh (boots as needed); log in $1, kept
# files under $2. Prints nothing; returns run.sh's status.
replay() {
  local log_file=$1 keep=$2
  shift 2
  "$ORACLE_DIR/run.sh" --profile "$PROFILE" --no-known --keep "$keep" "$@" >"$log_file" 2>&1
}

# The FILEs with an unexplained difference in the run log $1, one a line.
differing() { sed -n 's/^unexplained difference at \(.*\):[0-9]*$/\1/p' "$1" | sort -u; }

# Shrinks the trace $1 (a differing one) to $2: rounds of candidates, each
# round one replay; the first (shortest) differing candidate wins a round.
shrink() {
  local best=$1 out=$2 round=0
  while :; do
    round=$((round + 1))
    local dir=$OUT/shrink/$(basename "$out" .hmm)-$round
    mkdir -p "$dir/cands"
    "$HMMREF_BIN" oracle candidates --out "$dir/cands" "$best" >/dev/null
    local cands=("$dir"/cands/cand-*.hmm)
    [[ -e ${cands[0]} ]] || break
    replay "$dir/run.log" "$dir/keep" "${cands[@]}" || true
    local found
    found=$(differing "$dir/run.log" | head -n 1)
    [[ -n $found ]] || break
    log "shrink $(basename "$out"): round $round: $(grep -vc '^#' "$found") lines"
    best=$found
  done
  { echo "# hmmref oracle fuzz --seed $SEED --suite $SUITE: a trace on which Linux 6.1 and the"
    echo "# model differ, shrunk from $1 ($round rounds, each re-confirmed on the kernel)."
    grep -v '^#' "$best"; } >"$out"
}

main() {
  parse_args "$@"
  [[ -n $OUT ]] || OUT=$(mktemp -d "${TMPDIR:-/tmp}/hmmref-fuzz.XXXXXX")
  mkdir -p "$OUT/gen"
  OUT=$(cd "$OUT" && pwd)
  "$HMMREF_BIN" oracle gen --out "$OUT/gen" --traces "$TRACES" --seed "$SEED" \
    --steps "$STEPS" --suite "$SUITE" --profile "$PROFILE" >"$OUT/gen.log" ||
    die "oracle gen failed (above)" 2
  local files=("$OUT"/gen/fuzz-*.hmm) start=$SECONDS status=0 b=0
  : >"$OUT/differing.txt"
  for ((i = 0; i < ${#files[@]}; i += BATCH)); do
    b=$((b + 1))
    log "batch $b: traces $i..$((i + BATCH - 1 < ${#files[@]} - 1 ? i + BATCH - 1 : ${#files[@]} - 1))"
    replay "$OUT/batch-$b.log" "$OUT/batch-$b" "${files[@]:i:BATCH}" || status=1
    grep -h 'lines compared' "$OUT/batch-$b.log" | sed 's/^/  /' >&2 || true
    differing "$OUT/batch-$b.log" >>"$OUT/differing.txt"
    grep -q 'lines compared' "$OUT/batch-$b.log" || { tail -n 20 "$OUT/batch-$b.log" >&2; die "batch $b did not finish (log above)" 1; }
  done
  local elapsed=$((SECONDS - start)) ndiff
  ndiff=$(wc -l <"$OUT/differing.txt")
  log "$TRACES traces, $ndiff with an unexplained difference, $elapsed s ($((elapsed * 1000 / TRACES)) ms per trace, boots included)"
  local k=0 f
  while read -r f && [[ $k -lt $SHRINK ]]; do
    k=$((k + 1))
    shrink "$f" "$OUT/regression-$SEED-$(basename "$f" .hmm | sed 's/.*-//').hmm"
    log "regression: $OUT/regression-$SEED-$(basename "$f" .hmm | sed 's/.*-//').hmm"
  done <"$OUT/differing.txt"
  log "kept in $OUT"
  [[ $ndiff -eq 0 && $status -eq 0 ]] || exit 1
}

main "$@"
