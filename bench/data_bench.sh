#!/bin/sh
# The data-pipeline benchmark end to end: typical web JPEGs (longer side ~500 px, made from the
# photos Debian's python3-skimage ships), written as shards with `catlip shards make`, then
# `catlip bench data`, which times catlip's decode + augmentation per thread and the prefetching
# pipeline, runs torchvision's standard transform stack on the same shards in the same
# invocation (bench/data_torchvision.py; needs python3-torchvision), and times a vit_tiny
# training step on one core for comparison.
#
# usage: bench/data_bench.sh BUILD_DIR [IMAGES] [DECODE_THREADS]
set -eu
build=${1:?usage: bench/data_bench.sh BUILD_DIR [IMAGES] [DECODE_THREADS]}
count=${2:-512}
threads=${3:-1}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$here/data_make_images.py" "$tmp/images" "$count"
"$build/catlip" shards make --tsv "$tmp/images/list.tsv" -o "$tmp/shards" --samples-per-shard 256
"$build/catlip" shards index "$tmp/shards/*.tar"
CATLIP_SOURCE_DIR="$here/.." "$build/catlip" bench data "$tmp/shards/*.tar" --count "$count" --threads "$threads"
