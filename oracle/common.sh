# shellcheck shell=bash
# oracle/common.sh: helpers shared by oracle/build.sh and oracle/run.sh
# (sourced, not run). See docs/oracle.md.

ORACLE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ORACLE_PACKAGES=(linux-source-6.1 flex bison libelf-dev libssl-dev bc cpio kmod
  qemu-system-x86 busybox-static g++ make xz-utils)
# shellcheck disable=SC2034  # used by build.sh
KERNEL_TARBALL=/usr/src/linux-source-6.1.tar.xz

log() { echo "oracle: $*" >&2; }
die() { echo "oracle: $1" >&2; exit "${2:-2}"; }

# Prints the packages of ORACLE_PACKAGES that dpkg does not report installed.
oracle_missing_packages() {
  local p info
  for p in "${ORACLE_PACKAGES[@]}"; do
    info=$(dpkg -s "$p" 2>/dev/null) || info=""
    [[ $info == *"Status: install ok installed"* ]] || echo "$p"
  done
}

# Installs what is missing (as root), or exits 2 with the apt-get line.
oracle_ensure_packages() {
  [[ ${HMMREF_SKIP_INSTALL:-} == 1 ]] && return 0
  command -v dpkg >/dev/null ||
    die "dpkg not found; install the packages of docs/oracle.md, then set HMMREF_SKIP_INSTALL=1"
  local missing
  missing=$(oracle_missing_packages | tr '\n' ' ')
  missing=${missing% }
  [[ -z $missing ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    cat >&2 <<MSG
oracle: missing Debian packages: $missing
Install them (as root), then run this again:
  sudo apt-get update && sudo apt-get install -y $missing
MSG
    exit 2
  fi
  log "installing $missing"
  # shellcheck disable=SC2086  # a list of package names
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; } >&2 ||
    die "apt-get failed installing: $missing"
}

# The kernel source's version (the Debian package's), e.g. 6.1.192-2.
oracle_source_version() {
  dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null ||
    die "linux-source-6.1 is not installed; run './hmmref oracle build'"
}

# The folder of this source version and kernel configuration:
# ${HMMREF_ORACLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hmmref/oracle}/<version>-<hash>.
oracle_cache_dir() {
  local base hash
  base=${HMMREF_ORACLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hmmref/oracle}
  hash=$(sha256sum "$ORACLE_DIR/kernel.config" | cut -c1-12)
  echo "$base/$(oracle_source_version)-$hash"
}

# A hash of what the guest side is built from (runner sources, init script).
oracle_guest_hash() {
  cat "$ORACLE_DIR/guest_runner.cc" "$ORACLE_DIR/guest_util.h" "$ORACLE_DIR/init.sh" | sha256sum | cut -c1-12
}
