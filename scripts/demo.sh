#!/usr/bin/env bash
# ferry's main job on the built-in lab, from a fresh Debian 12 machine (root):
# install what is needed, build, bring up a lab, show it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
cargo build --release
FERRY=./target/release/ferry
INV=$($FERRY lab up --name demo --hosts 3 | tail -1)
echo "inventory: $INV"
$FERRY lab status --name demo
