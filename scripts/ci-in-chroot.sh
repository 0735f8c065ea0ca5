#!/usr/bin/env bash
# Runs CI (`CI=true bash .ci/run`) in a clean Debian 12 root that has nothing but
# Rust added, to prove that .ci/setup installs everything the suite uses.
#
#   bash scripts/ci-in-chroot.sh [--root DIR] [--ref REF] [--fresh] [--log FILE] [-- COMMAND...]
#
# --root DIR   the Debian 12 root (default /srv/bookworm). Made with
#              `debootstrap --variant=minbase bookworm DIR` when it does not exist.
# --ref REF    what to test: a branch or commit of this repository (default HEAD).
#              It is cloned into DIR/ci/ferry (git clone, then a detached checkout of
#              the commit; `git clean -ffdx` except target/, so a later run keeps the
#              build), with ../shared beside it (DIR/ci/shared, a copy).
# --fresh      remove DIR/ci/ferry first (a cold build: a new clone, no target/).
# --log FILE   where the run's output goes as well as the terminal
#              (default /srv/ci-logs/ci-<commit>-<UTC>.log).
# COMMAND      run instead of `CI=true bash .ci/run`, in the checkout, e.g.
#              -- cargo nextest run --test lab
#
# Everything runs in a mount namespace of its own (nothing mounted leaks to the
# host, and all of it is unmounted on exit by the trap), in a cgroup of its own
# (every process the run leaves behind is listed and killed by PID on exit).
# The root gets what a CI machine has: proc, sysfs (the host's cgroup mounts with
# it), /dev, /dev/pts, a tmpfs /dev/shm and /run, /etc/resolv.conf, an /etc/hosts
# with localhost as every Debian install has, and the host's /run/ferry bound
# over its own, so the lab's name and range locks are shared with labs run on the
# host at the same time. Network and PIDs are the host's. See docs/ci.md.
set -euo pipefail

ROOT=/srv/bookworm
REF=HEAD
FRESH=0
LOG=
REPO=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
SHARED=$REPO/../shared
CMD=()
while [ $# -gt 0 ]; do
  case $1 in
    --root) ROOT=$2; shift 2 ;;
    --ref) REF=$2; shift 2 ;;
    --fresh) FRESH=1; shift ;;
    --log) LOG=$2; shift 2 ;;
    --) shift; CMD=("$@"); break ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "ci-in-chroot: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "ci-in-chroot: run as root (it mounts, chroots and makes labs)" >&2; exit 1; }
ROOT=$(realpath -m "$ROOT")

# The rest runs in a private mount namespace: the mounts vanish with it even if
# this script is killed before its trap runs.
if [ -z "${FERRY_CI_CHROOT_NS:-}" ]; then
  args=(--root "$ROOT" --ref "$REF" ${LOG:+--log "$LOG"})
  [ "$FRESH" = 1 ] && args+=(--fresh)
  FERRY_CI_CHROOT_NS=1 exec unshare --mount --propagation private "$0" "${args[@]}" -- "${CMD[@]}"
fi

COMMIT=$(git -C "$REPO" rev-parse --verify "$REF^{commit}")
mkdir -p /srv/ci-logs
LOG=${LOG:-/srv/ci-logs/ci-${COMMIT:0:10}-$(date -u +%Y%m%dT%H%M%SZ).log}
exec > >(tee -a "$LOG") 2>&1
echo "ci-in-chroot: root $ROOT, commit $COMMIT ($REF), log $LOG, $(date -u +%FT%TZ)"

# 1. The root: a plain minbase bookworm, with the sources a Debian install has.
if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
  debootstrap --variant=minbase bookworm "$ROOT" http://deb.debian.org/debian
fi
cat > "$ROOT/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
# Every Debian install has these two lines (the installer writes them); minbase does not.
[ -s "$ROOT/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"
# This machine's own certificate authorities (/usr/local/share/ca-certificates: e.g.
# an egress proxy that inspects https) are part of its network, not of the project:
# a CI machine on the same network carries them too. ca-certificates (installed by
# .ci/setup) adds them to the system store.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  [ -x "$ROOT/usr/sbin/update-ca-certificates" ] && chroot "$ROOT" update-ca-certificates >/dev/null
fi
# Packages' maintainer scripts do not start daemons here (exit 101, the usual
# arrangement in a chroot): this root shares the host's network, and a second sshd
# on port 22 or a libvirtd would be the host's business. The suite starts what it
# needs itself, inside its lab hosts.
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

# 2. Rust, and nothing else: the host's stable toolchain (rustup's proxies and
# home) and cargo-nextest. The cargo registry is not copied: cargo fetches the
# crates from crates.io as a fresh CI machine does.
stable=$(readlink -f /root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu)
if [ ! -x "$ROOT/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/rustc" ]; then
  echo "ci-in-chroot: copying the Rust toolchain"
  mkdir -p "$ROOT/root/.rustup/toolchains" "$ROOT/root/.cargo/bin"
  cp -a /root/.rustup/settings.toml "$ROOT/root/.rustup/"
  [ -e /root/.rustup/update-hashes ] && cp -a /root/.rustup/update-hashes "$ROOT/root/.rustup/"
  cp -a "$stable" "$ROOT/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu"
  for t in /root/.rustup/toolchains/*; do  # version-named links to stable (e.g. 1.95.0)
    [ -L "$t" ] && [ "$(readlink -f "$t")" = "$stable" ] && cp -a "$t" "$ROOT/root/.rustup/toolchains/"
  done
  cp -a /root/.cargo/bin/. "$ROOT/root/.cargo/bin/"
fi
cp -a "$(command -v cargo-nextest)" "$ROOT/root/.cargo/bin/cargo-nextest"

# 3. The checkout: a clean clone of COMMIT, with ../shared beside it.
mkdir -p "$ROOT/ci"
[ "$FRESH" = 1 ] && rm -rf "$ROOT/ci/ferry"
if [ ! -d "$ROOT/ci/ferry/.git" ]; then
  git clone -q --no-hardlinks --no-checkout "$REPO" "$ROOT/ci/ferry"
fi
git -C "$ROOT/ci/ferry" fetch -q "$REPO" "$COMMIT"
git -C "$ROOT/ci/ferry" checkout -q -f --detach "$COMMIT"
git -C "$ROOT/ci/ferry" clean -q -ffdx -e /target
rm -rf "$ROOT/ci/shared"
cp -a "$(realpath "$SHARED")" "$ROOT/ci/shared"

# 4. What a CI machine has mounted. Undone in reverse order on exit.
mounted=()
mnt() { # mnt TARGET mount-args...
  local t=$1; shift
  [ -e "$t" ] || mkdir -p "$t"
  mount "$@" "$t"
  mounted=("$t" "${mounted[@]}")
}
CG=/sys/fs/cgroup/unified/ferry-ci-chroot-$$
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Out of the cgroup first, so the listing below holds only the run's processes.
  echo $$ > /sys/fs/cgroup/unified/cgroup.procs 2>/dev/null || true
  # Every process the run left behind (lab anchors, sshd, libvirtd, QEMU), by PID.
  if [ -d "$CG" ]; then
    local pids
    pids=$(find "$CG" -name cgroup.procs -exec cat {} + || true)
    if [ -n "$pids" ]; then
      echo "ci-in-chroot: stopping what the run left: $(echo $pids)"
      ps -o pid=,args= -p "$(echo $pids | tr ' ' ,)" || true
      kill -TERM $pids 2>/dev/null || true
      sleep 2
      pids=$(find "$CG" -name cgroup.procs -exec cat {} + || true)
      [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
      sleep 1
    fi
  fi
  for t in "${mounted[@]}"; do
    umount -R "$t" 2>/dev/null || umount -R -l "$t" || echo "ci-in-chroot: could not unmount $t"
  done
  find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  echo "ci-in-chroot: exit $rc, $(date -u +%FT%TZ), log $LOG"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir "$CG"
echo $$ > "$CG/cgroup.procs"

mnt "$ROOT" --bind "$ROOT"              # / is a mount point on a real machine
mnt "$ROOT/proc" -t proc proc
mnt "$ROOT/sys" --rbind /sys            # with this machine's cgroup mounts
mount --make-rslave "$ROOT/sys"
mnt "$ROOT/dev" --bind /dev
mnt "$ROOT/dev/pts" --bind /dev/pts
mnt "$ROOT/dev/shm" -t tmpfs -o mode=1777,nosuid,nodev shm
mnt "$ROOT/run" -t tmpfs -o mode=755,nosuid,nodev run
mkdir -p -m 700 /run/ferry
mnt "$ROOT/run/ferry" --bind /run/ferry # lab name and range locks, shared with the host's labs
mkdir -p "$ROOT/run/lock" && chmod 1777 "$ROOT/run/lock"
cp /etc/resolv.conf "$ROOT/run/ci-resolv.conf"
mnt "$ROOT/etc/resolv.conf" --bind "$ROOT/run/ci-resolv.conf"

# 5. The run, with a login's environment and nothing of this shell's.
if [ ${#CMD[@]} -eq 0 ]; then CMD=(bash .ci/run); fi
echo "ci-in-chroot: running ${CMD[*]}"
# In the background and waited for, so a TERM or INT to this script runs its trap at
# once (bash holds a trap until a foreground child ends).
set +e
# The root becomes / of a mount namespace of the run's own (pivot_root, as in a
# container), not a chroot: a chroot's processes see /proc/PID/root of a lab host's
# anchor (its own mount namespace) as a path outside their root, and the lab then
# takes its hosts for dead ("host ... is not running").
mkdir -p "$ROOT/.oldroot"
unshare --mount --propagation private /bin/sh -c '
  cd "$1" && pivot_root . .oldroot && umount -l /.oldroot && shift && exec chroot / "$@"' \
  pivot "$ROOT" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM=dumb CI=true \
  PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/bash -c 'cd /ci/ferry && exec "$@"' ci "${CMD[@]}" </dev/null &
wait $!
rc=$?
set -e
echo "ci-in-chroot: ${CMD[*]} exited $rc"
exit $rc
