#!/usr/bin/env bash
# ferry's main job on the built-in lab, from a fresh Debian 12 machine (root):
# install what is needed, build, bring up a 2-host lab with a shaped 1 Gbit/s
# migration link, check and provision the live-migration testbed on it
# (migration network, QEMU, libvirt for TCP migration, nova.conf), show it.
# The lab stays up for you to explore; `ferry lab down --name demo` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
cargo build --release
FERRY=./target/release/ferry
INV=$($FERRY lab up --name demo --hosts 2 --link-rate 1gbit | tail -1)
echo "inventory: $INV"
$FERRY check -i "$INV" playbooks/testbed.yml
$FERRY run -i "$INV" playbooks/testbed.yml
$FERRY lab status --name demo
echo "next: $FERRY exec -i $INV compute -- virsh list --all;  $FERRY lab down --name demo"
