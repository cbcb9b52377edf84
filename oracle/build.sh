#!/usr/bin/env bash
# oracle/build.sh: builds what `hmmref oracle run` boots: Linux 6.1 (Debian's
# linux-source-6.1) with the HMM test driver, hmmref's static guest runner and
# the base initramfs, in a cache folder outside the repository. Reuses the
# cache when its stamp matches. See docs/oracle.md.
set -euo pipefail
# shellcheck source=oracle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<MSG
Usage: ./hmmref oracle build [--jobs N] [--force]

Installs the Debian packages the oracle needs (as root; otherwise prints the
apt-get line and exits 2), unpacks linux-source-6.1 into the cache, configures
x86_64_defconfig plus oracle/kernel.config, builds bzImage and test_hmm.ko
(nice -n 19 make -jN), then builds the static guest runner against the
source's lib/test_hmm_uapi.h and the base initramfs (busybox, runner,
test_hmm.ko, init). Each step is skipped when its stamp matches.

Flags:
  --jobs N   make's parallelism (default 2)
  --force    rebuild the kernel even when the cache stamp matches
  -h, --help this help

Cache: \${HMMREF_ORACLE_CACHE:-\${XDG_CACHE_HOME:-\$HOME/.cache}/hmmref/oracle}/<version>-<config hash>
Exit status: 0 built (or up to date), 2 usage or setup error, 1 build failed.
MSG
}

JOBS=2
FORCE=0

parse_args() {
  while [[ $# -gt 0 ]]; do
    case $1 in
      -h | --help) usage; exit 0 ;;
      --jobs)
        [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a positive number; see './hmmref oracle build --help'"
        JOBS=$2; shift 2 ;;
      --force) FORCE=1; shift ;;
      *) die "oracle build: unknown argument '$1'; see './hmmref oracle build --help'" ;;
    esac
  done
}

# Prints "N objects, T s" every 30 s while make (pid $1) runs.
progress() {
  local pid=$1 tree=$2 start=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    kill -0 "$pid" 2>/dev/null || break
    log "  building... $(find "$tree" -name '*.o' -newer "$tree/.config" | wc -l) objects, $((SECONDS - start)) s"
  done
}

# Every option set to y or m in the fragment must have survived olddefconfig.
check_config() {
  local tree=$1 line bad=0
  while IFS= read -r line; do
    [[ $line =~ ^(CONFIG_[A-Z0-9_]+=[ym])$ ]] || continue
    grep -qx "$line" "$tree/.config" || { log "config: $line did not survive olddefconfig"; bad=1; }
  done <"$ORACLE_DIR/kernel.config"
  [[ $bad -eq 0 ]] || die "kernel configuration is missing options (see above)" 1
}

build_kernel() {
  local cache=$1 tree=$1/linux-source-6.1 stamp want
  want="$(oracle_source_version) $(sha256sum "$ORACLE_DIR/kernel.config" | cut -c1-64)"
  stamp=$cache/kernel.stamp
  if [[ $FORCE -eq 0 && -f $stamp && $(cat "$stamp") == "$want" && -f $cache/bzImage ]]; then
    log "kernel: up to date in $cache"
    return 0
  fi
  rm -f "$stamp"
  mkdir -p "$cache"
  if [[ ! -f $tree/Makefile ]]; then
    log "kernel: unpacking $KERNEL_TARBALL"
    nice -n 19 tar -xJf "$KERNEL_TARBALL" -C "$cache"
  fi
  log "kernel: configuring x86_64_defconfig + oracle/kernel.config"
  (cd "$tree" && make -s x86_64_defconfig >/dev/null &&
    scripts/kconfig/merge_config.sh -m .config "$ORACLE_DIR/kernel.config" >/dev/null &&
    make -s olddefconfig >/dev/null) || die "kernel configuration failed" 1
  check_config "$tree"
  log "kernel: nice -n 19 make -j$JOBS bzImage modules (log: $cache/build.log)"
  local start=$SECONDS status=0
  (cd "$tree" && nice -n 19 make -j"$JOBS" bzImage modules) >"$cache/build.log" 2>&1 &
  local pid=$!
  progress "$pid" "$tree" &
  local progress_pid=$!
  wait "$pid" || status=$?
  kill "$progress_pid" 2>/dev/null || true
  wait "$progress_pid" 2>/dev/null || true
  if [[ $status -ne 0 ]]; then
    tail -n 20 "$cache/build.log" >&2
    die "kernel build failed (status $status); full log: $cache/build.log" 1
  fi
  cp "$tree/arch/x86/boot/bzImage" "$cache/bzImage"
  cp "$tree/lib/test_hmm.ko" "$cache/test_hmm.ko"
  strip --strip-debug "$cache/test_hmm.ko"
  echo "$want" >"$stamp"
  log "kernel: built in $((SECONDS - start)) s"
}

build_guest() {
  local cache=$1 tree=$1/linux-source-6.1 want stamp=$1/guest.stamp
  want=$(oracle_guest_hash)
  if [[ $FORCE -eq 0 && -f $stamp && $(cat "$stamp") == "$want" && -f $cache/base.cpio ]]; then
    log "guest: up to date"
    return 0
  fi
  [[ -f $tree/lib/test_hmm_uapi.h ]] || die "missing $tree/lib/test_hmm_uapi.h" 1
  log "guest: g++ -static -O2 oracle/guest_runner.cc"
  g++ -std=c++17 -static -O2 -Wall -Wextra -I"$tree/lib" \
    -o "$cache/runner" "$ORACLE_DIR/guest_runner.cc" || die "building the guest runner failed" 1
  local root=$cache/initramfs
  rm -rf "$root"
  mkdir -p "$root"/{bin,dev,proc,sys,traces}
  cp /bin/busybox "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  cp "$cache/runner" "$root/bin/runner"
  cp "$cache/test_hmm.ko" "$root/test_hmm.ko"
  install -m 0755 "$ORACLE_DIR/init.sh" "$root/init"
  (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$cache/base.cpio"
  echo "$want" >"$stamp"
  log "guest: $cache/base.cpio ($(du -k "$cache/base.cpio" | cut -f1) KiB)"
}

main() {
  parse_args "$@"
  local start=$SECONDS cache
  oracle_ensure_packages
  cache=$(oracle_cache_dir)
  mkdir -p "$cache"
  exec 9>"$cache.lock"
  flock -n 9 || { log "another build holds $cache.lock; waiting"; flock 9; }
  log "cache: $cache"
  build_kernel "$cache"
  build_guest "$cache"
  log "done in $((SECONDS - start)) s"
}

main "$@"
