#!/bin/sh
# Build the ferry lab guest: a kernel and a busybox initramfs for QEMU under TCG.
#
#   guest/build-guest.sh OUTDIR [KERNEL_VERSION]
#
# Writes OUTDIR/vmlinuz (copied from /boot), OUTDIR/initramfs.cpio.gz,
# OUTDIR/load (the static load program: the sender of an inbound network load on
# the prober, the load of a full guest) and OUTDIR/build.stamp.
# Needs: linux-image-amd64 (kernel + modules under /lib/modules), busybox-static,
# gcc with static libc (libc6-dev), cpio, gzip; for an SSH server in the guest
# (ferry.sshkey=, a full guest on the lab), dropbear-bin: its binary and shared
# libraries go into the initramfs when it is installed.
# Idempotent: when the inputs have not changed (same kernel, busybox, init
# and load.c) it rebuilds nothing and prints "unchanged".
set -eu
OUT=${1:?usage: build-guest.sh OUTDIR [KERNEL_VERSION]}
KVER=${2:-$(ls /lib/modules | sort -V | tail -n1)}
HERE=$(cd "$(dirname "$0")" && pwd)
for need in /boot/vmlinuz-$KVER /lib/modules/$KVER /bin/busybox; do
  [ -e "$need" ] || { echo "build-guest: missing $need (install linux-image-amd64 / busybox-static)" >&2; exit 1; }
done
command -v gcc >/dev/null || { echo "build-guest: gcc not found (install gcc libc6-dev)" >&2; exit 1; }
command -v cpio >/dev/null || { echo "build-guest: cpio not found (install cpio)" >&2; exit 1; }

DROPBEAR=$(command -v dropbear || { test -x /usr/sbin/dropbear && echo /usr/sbin/dropbear; } || true)
STAMP=$(cat "$HERE/init" "$HERE/load.c" "$HERE/build-guest.sh" /bin/busybox /boot/vmlinuz-$KVER ${DROPBEAR:+"$DROPBEAR"} | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/build.stamp" ] && [ "$(cat "$OUT/build.stamp")" = "$KVER $STAMP" ] \
   && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initramfs.cpio.gz" ] && [ -f "$OUT/load" ]; then
  echo "unchanged"
  exit 0
fi

mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
mkdir -p "$ROOT/bin" "$ROOT/dev" "$ROOT/proc" "$ROOT/sys" "$ROOT/tmp" "$ROOT/etc"
cp /bin/busybox "$ROOT/bin/busybox"
ln -s busybox "$ROOT/bin/sh"
cp "$HERE/init" "$ROOT/init"
chmod 755 "$ROOT/init"
gcc -static -O2 -Wall -pthread -o "$ROOT/bin/load" "$HERE/load.c"
if [ -n "$DROPBEAR" ]; then
  mkdir -p "$ROOT/usr/sbin" "$ROOT/root" "$ROOT/usr/local/bin"
  cp "$DROPBEAR" "$ROOT/usr/sbin/dropbear"
  for lib in $(ldd "$DROPBEAR" | grep -o '/[^ ]*'); do
    mkdir -p "$ROOT$(dirname "$lib")" && cp -L "$lib" "$ROOT$lib"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ROOT/etc/passwd"
  printf 'root:x:0:\n' > "$ROOT/etc/group"
  printf '/bin/sh\n' > "$ROOT/etc/shells"
else
  echo "build-guest: no dropbear: the guest gets no SSH server (install dropbear-bin for ferry.sshkey=)" >&2
fi
for m in kernel/drivers/virtio/virtio_ring kernel/drivers/virtio/virtio \
         kernel/drivers/virtio/virtio_pci_legacy_dev kernel/drivers/virtio/virtio_pci_modern_dev \
         kernel/drivers/virtio/virtio_pci kernel/drivers/block/virtio_blk kernel/net/core/failover \
         kernel/drivers/net/net_failover kernel/drivers/net/virtio_net; do
  src=/lib/modules/$KVER/$m.ko
  if [ -f "$src" ]; then
    mkdir -p "$ROOT/lib/modules/$KVER/$(dirname "$m")"
    cp "$src" "$ROOT/lib/modules/$KVER/$m.ko"
  elif [ -f "$src.xz" ]; then
    mkdir -p "$ROOT/lib/modules/$KVER/$(dirname "$m")"
    xz -dc "$src.xz" > "$ROOT/lib/modules/$KVER/$m.ko"
  fi
  # a module built into the kernel has no file: nothing to load then
done
(cd "$ROOT" && find . | cpio -o -H newc --quiet) | gzip -9 > "$WORK/initramfs.cpio.gz"
cp /boot/vmlinuz-$KVER "$WORK/vmlinuz"
mv "$WORK/initramfs.cpio.gz" "$OUT/initramfs.cpio.gz"
mv "$WORK/vmlinuz" "$OUT/vmlinuz"
cp "$ROOT/bin/load" "$OUT/load.new" && mv "$OUT/load.new" "$OUT/load"
echo "$KVER $STAMP" > "$OUT/build.stamp"
echo "built $OUT (kernel $KVER)"
