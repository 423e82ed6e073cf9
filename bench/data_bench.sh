#!/bin/sh
# The data-pipeline benchmark end to end: typical web JPEGs (longer side ~500 px, made from the
# photos Debian's python3-skimage ships), written as shards with `catlip shards make`, then
# `catlip bench data`, which times catlip's decode + augmentation per thread and the prefetching
# pipeline, runs two peers on the same images in the same invocation (bench/data_torchvision.py):
# torchvision's standard transform stack (needs python3-torchvision) and PIL-draft, the
# fastest plain-PIL path (JPEG decoded at a reduced DCT scale with Image.draft; needs
# python3-numpy), and times a vit_tiny training step on one core for comparison.
# Arguments after the first three go to `catlip bench data` (e.g. --peers pil-draft, --no-peer).
#
# usage: bench/data_bench.sh BUILD_DIR [IMAGES] [DECODE_THREADS] [BENCH DATA OPTIONS...]
set -eu
build=${1:?usage: bench/data_bench.sh BUILD_DIR [IMAGES] [DECODE_THREADS] [BENCH DATA OPTIONS...]}
count=${2:-512}
threads=${3:-1}
if [ $# -gt 3 ]; then shift 3; else set --; fi
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$here/data_make_images.py" "$tmp/images" "$count"
"$build/catlip" shards make --tsv "$tmp/images/list.tsv" -o "$tmp/shards" --samples-per-shard 256
"$build/catlip" shards index "$tmp/shards/*.tar"
CATLIP_SOURCE_DIR="$here/.." "$build/catlip" bench data "$tmp/shards/*.tar" --count "$count" --threads "$threads" "$@"
