#!/bin/sh
# Run by the `script` op: writes what it was given into the target dir.
set -e
dir=$1
shift
echo "setup: $*" > "$dir/script.out"
echo "ran setup with $*"
