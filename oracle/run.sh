#!/usr/bin/env bash
# oracle/run.sh: replays .hmm traces on Linux 6.1 under QEMU and compares
# every line with the model (docs/oracle.md). Called by `./hmmref oracle run`,
# which builds the hmmref program first and passes it in HMMREF_BIN.
set -euo pipefail
# shellcheck source=oracle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<MSG
Usage: ./hmmref oracle run [--profile linux-6.1|trace] [--keep DIR] [--timeout SECONDS]
                           [--known FILE | --no-known] FILE...

Runs each .hmm trace on the model, lowers it for hmmref's guest runner, boots
the kernel built by './hmmref oracle build' once for all of them (QEMU, TCG),
and prints every line with the kernel's result and the model's, then
"N lines compared, K known differences, U unexplained". The model runs the
linux-6.1 profile (Linux 6.1 with its test driver: its bounds, its driver's
WARNING and oopses), or with --profile trace each trace's own profile line
(default without one). A difference listed in the known divergences
(docs/divergences.md; oracle/known_divergences.txt, or with --profile trace
oracle/known_divergences_trace.txt) is printed as "known ID" instead of
DIFFERS; a listed line that no longer differs is reported as a "stale known
divergence" (a warning). A trace during which the guest crashed is reported
as incomplete (unless the model predicted that oops) and the remaining
traces run in a fresh boot.

Flags:
  --profile P        the model's profile: linux-6.1 (default) or trace
  --keep DIR         keep the lowered traces, results and console logs in DIR
                     (default: a temporary folder, removed at the end)
  --timeout SECONDS  the limit for one boot (default 600)
  --known FILE       the known divergences, 'ID PATH LINE [KIND]' a line
                     (default oracle/known_divergences.txt; with --profile
                     trace oracle/known_divergences_trace.txt)
  --no-known         no known divergences: every difference is unexplained
  -h, --help         this help

Exit status: 0 no unexplained difference (known ones and stale entries
allowed), 1 an unexplained difference (or a kernel warning or crash), 2 usage
or setup error (no kernel built yet: run './hmmref oracle build'; a malformed
known-divergences line, reported as FILE:LINE: why).
MSG
}

# norandmaps: the runner's own mappings stay out of the traces' range;
# memmap: the special-purpose memory of the coherent devices 2 and 3.
# shellcheck disable=SC2016  # the $ is memmap's syntax, not an expansion
KERNEL_CMDLINE='console=ttyS0 transparent_hugepage=madvise norandmaps quiet panic=-1 oops=panic memmap=512M$0x100000000'
KEEP=""
TIMEOUT=600
PROFILE=linux-6.1
KNOWN=default
FILES=()

parse_args() {
  while [[ $# -gt 0 ]]; do
    case $1 in
      -h | --help) usage; exit 0 ;;
      --keep)
        [[ $# -ge 2 ]] || die "--keep needs a folder; see './hmmref oracle run --help'"
        KEEP=$2; shift 2 ;;
      --timeout)
        [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || die "--timeout needs a positive number of seconds; see './hmmref oracle run --help'"
        TIMEOUT=$2; shift 2 ;;
      --known)
        [[ $# -ge 2 ]] || die "--known needs a file; see './hmmref oracle run --help'"
        KNOWN=$2; shift 2 ;;
      --profile)
        [[ $# -ge 2 && ( $2 == linux-6.1 || $2 == trace ) ]] ||
          die "--profile needs linux-6.1 or trace; see './hmmref oracle run --help'"
        PROFILE=$2; shift 2 ;;
      --no-known) KNOWN=""; shift ;;
      --) shift; FILES+=("$@"); break ;;
      -*) die "oracle run: unknown flag '$1'; see './hmmref oracle run --help'" ;;
      *) FILES+=("$1"); shift ;;
    esac
  done
  [[ ${#FILES[@]} -gt 0 ]] || die "oracle run needs at least one .hmm FILE; see './hmmref oracle run --help'"
  if [[ $KNOWN == default ]]; then
    KNOWN=$ORACLE_DIR/known_divergences.txt
    [[ $PROFILE == linux-6.1 ]] || KNOWN=$ORACLE_DIR/known_divergences_trace.txt
  fi
  [[ -z $KNOWN || ( -f $KNOWN && -r $KNOWN ) ]] || die "oracle run: no such readable known-divergences file: $KNOWN"
  local f
  for f in "${FILES[@]}"; do
    [[ -f $f && -r $f ]] || die "oracle run: no such readable file: $f"
  done
  [[ ${HMMREF_ORACLE_CHECK_ARGS:-} != 1 ]] || exit 0
  [[ -n ${HMMREF_BIN:-} && -x ${HMMREF_BIN:-} ]] ||
    die "HMMREF_BIN is not set to the hmmref program; run this through './hmmref oracle run'"
}

# The files (NNNN) of the lowered traces (named NNNN-HASH) whose END, or
# start, the results show.
finished_traces() { sed -n 's/^E \([0-9]*\).*/\1/p' "$1" | sort -u; }
started_traces() { sed -n 's/^T \([0-9]*\).*/\1/p' "$1" | sort -u; }

# Boots once with the traces named in $3.. ; results in $2, console in $1.
boot() {
  local console=$1 results=$2 work=$WORK
  shift 2
  rm -rf "$work/initrd.d"
  mkdir -p "$work/initrd.d/traces"
  local name
  for name in "$@"; do cat "$work/lowered/$name.lt"; done >"$work/initrd.d/traces/all.lt"
  (cd "$work/initrd.d" && find traces | cpio -o -H newc --quiet) >"$work/traces.cpio"
  cat "$CACHE/base.cpio" "$work/traces.cpio" >"$work/initrd.cpio"
  local status=0
  nice -n 19 timeout "$TIMEOUT" qemu-system-x86_64 -m 4G -smp 1 -no-reboot \
    -kernel "$CACHE/bzImage" -initrd "$work/initrd.cpio" \
    -append "$KERNEL_CMDLINE" \
    -display none -monitor none -serial "file:$console" -serial "file:$results" \
    </dev/null >"$work/qemu.out" 2>&1 || status=$?
  [[ $status -eq 0 ]] || log "qemu exited with status $status$([[ $status -eq 124 ]] && echo " (timed out after $TIMEOUT s)")"
  tr -d '\r' <"$results" >>"$work/results.log"
}

# Reports a malformed known-divergences file (FILE:LINE: why) before booting:
# a compare with no results reads it and stops with status 2.
check_known() {
  [[ -n $KNOWN ]] || return 0
  local status=0
  "$HMMREF_BIN" oracle compare --profile "$PROFILE" --results "$WORK/results.log" \
    --known "$KNOWN" "${FILES[@]}" >/dev/null || status=$?
  [[ $status -ne 2 ]] || die "the known divergences $KNOWN are malformed (above)" 2
}

# Prints the console lines that say why the kernel stopped.
crash_excerpt() {
  grep -E 'BUG|Oops|WARNING|panic|RIP:|Call Trace|Kernel panic' "$1" | head -n 12 | sed 's/^/    console: /' >&2 || true
}

main() {
  parse_args "$@"
  oracle_ensure_packages
  CACHE=$(oracle_cache_dir)
  [[ -f $CACHE/kernel.stamp && -f $CACHE/bzImage ]] ||
    die "no kernel built in $CACHE; run './hmmref oracle build' first"
  "$ORACLE_DIR/build.sh" >/dev/null 2>"$CACHE/guest-refresh.log" ||
    { cat "$CACHE/guest-refresh.log" >&2; die "refreshing the guest runner failed" 1; }
  if [[ -n $KEEP ]]; then
    mkdir -p "$KEEP"
    WORK=$(cd "$KEEP" && pwd)
    rm -rf "$WORK/lowered" "$WORK/results.log" "$WORK"/console-*.log
  else
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
  fi
  mkdir -p "$WORK/lowered"
  "$HMMREF_BIN" oracle lower --profile "$PROFILE" --out "$WORK/lowered" "${FILES[@]}" \
    >"$WORK/lower.log" || {
    cat "$WORK/lower.log" >&2
    die "lowering failed" 2
  }
  : >"$WORK/results.log"
  check_known
  local pending=() name n=0 start=$SECONDS
  for ((i = 0; i < ${#FILES[@]}; i++)); do pending+=("$(printf %04d "$i")"); done
  while [[ ${#pending[@]} -gt 0 ]]; do
    n=$((n + 1))
    local t0=$SECONDS part=$WORK/results-$n.part
    log "boot $n: ${#pending[@]} trace(s)"
    boot "$WORK/console-$n.log" "$part" "${pending[@]}"
    log "boot $n: $((SECONDS - t0)) s"
    local done_list started_list rest=()
    done_list=$(finished_traces "$part")
    started_list=$(started_traces "$part")
    if [[ -z $started_list ]]; then
      tail -n 20 "$WORK/console-$n.log" >&2 || true
      grep -h '@@HMMREF-ORACLE-ERROR' "$part" >&2 || true
      die "the guest ran no trace (console above; kept in $WORK if --keep)" 1
    fi
    for name in "${pending[@]}"; do
      if grep -qx "$name" <<<"$done_list"; then continue; fi
      if grep -qx "$name" <<<"$started_list"; then
        log "trace $name stopped the guest (a kernel crash; the comparison says whether the model predicted it); the rest runs in a new boot"
        crash_excerpt "$WORK/console-$n.log"
        continue
      fi
      rest+=("$name")
    done
    pending=("${rest[@]+"${rest[@]}"}")
  done
  local elapsed=$((SECONDS - start)) status=0
  local known=()
  [[ -z $KNOWN ]] || known=(--known "$KNOWN")
  "$HMMREF_BIN" oracle compare --profile "$PROFILE" --results "$WORK/results.log" \
    "${known[@]+"${known[@]}"}" "${FILES[@]}" || status=$?
  log "${#FILES[@]} trace(s), $n boot(s), $elapsed s on the kernel side ($((elapsed * 1000 / ${#FILES[@]})) ms per trace, boot included)"
  return "$status"
}

main "$@"
