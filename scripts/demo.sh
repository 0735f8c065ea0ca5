#!/usr/bin/env bash
# ferry's main job on the built-in lab, from a fresh Debian 12 machine (root):
# install what is needed, build, bring up a 3-host lab (two compute hosts and a
# prober) with a shaped migration link, check and provision the live-migration
# testbed on it (migration network, QEMU, libvirt for TCP migration, nova.conf),
# run the scaled experiment `experiments/lab-quick.yml` (the lab guest onto the
# hosts, then 8 live migrations and a warm-up: 2 flavors x pre-/post-copy x
# idle/memory load on a 1 Gbit/s link; about 4 minutes on an idle machine), and write its report. The last line printed is the path of report.html.
# The lab stays up for you to explore; `ferry lab down --name demo` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
cargo build --release
FERRY=./target/release/ferry
INV=$($FERRY lab up --name demo --hosts 3 --link-rate 1gbit | tail -1)
echo "inventory: $INV"
$FERRY check -i "$INV" playbooks/testbed.yml experiments/lab-quick.yml
$FERRY run -i "$INV" playbooks/testbed.yml
RESULTS=$($FERRY run -i "$INV" experiments/lab-quick.yml | tail -1)
echo "results: $RESULTS"
$FERRY report "$RESULTS" | tail -1
