#!/bin/sh
# `catlip vocab build` over tiny shards made here: run directly (one process, no launcher) and
# with mpirun -n 3, the files must be identical; also checks the counts, the header, --max-size,
# the TSV reader on the result, and a clear error for a missing shard.
# usage: vocab_build_mpi.sh CATLIP_BINARY
set -eu
catlip=$1
dir=$(mktemp -d /tmp/catlip_vocab_test_XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/shards"
# 5 shards x 40 samples: "dog" in every caption, "frisbee" in 1 of 2, "grass" in 1 of 5, one
# caption with invalid UTF-8, a .jpg member that must be ignored, one caption without nouns.
/usr/bin/python3 - "$dir/shards" <<'PY'
import io, sys, tarfile
out = sys.argv[1]
for s in range(5):
    with tarfile.open("%s/%05d.tar" % (out, s), "w", format=tarfile.GNU_FORMAT) as tar:
        for i in range(40):
            key = "%05d%04d" % (s, i)
            words = ["a dog"]
            if i % 2 == 0: words.append("catching a frisbee")
            if i % 5 == 0: words.append("on the grass")
            text = " ".join(words)
            if s == 3 and i == 7: text = "a dog \xff\xfe here"
            if s == 4 and i == 39: text = "and or but"
            data = text.encode("latin-1") if "\xff" in text else text.encode()
            for name, payload in (("%s.txt" % key, data), ("%s.jpg" % key, b"\xff\xd8not really")):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
PY
pattern="$dir/shards/{00000..00004}.tar"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Under -DCATLIP_SANITIZE=ON: ignore Open MPI's own never-freed allocations. Its components are
# unloaded before the leak check, so full (slow) stacks are needed to see the library that
# loaded them.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$(cd "$(dirname "$0")" && pwd)/lsan_mpi.supp"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
"$catlip" vocab build --data "$pattern" --min-count 10 -o "$dir/one.tsv" --quiet
mpirun -n 3 --oversubscribe "$catlip" vocab build --data "$pattern" --min-count 10 -o "$dir/three.tsv" --quiet
cmp "$dir/one.tsv" "$dir/three.tsv"
cat "$dir/one.tsv"
# 200 captions, 199 with a dog; frisbee 100; grass 40.
expected="# catlip vocabulary: min_count=10 captions=200 labeler=nouns source=$pattern
n02084071	dog	199
n03397947	Frisbee	100
n12102133	grass	40"
[ "$(cat "$dir/one.tsv")" = "$expected" ] || { echo "FAIL: unexpected vocabulary"; exit 1; }
# --max-size keeps the most frequent; --min-count drops grass.
"$catlip" vocab build --data "$pattern" --min-count 50 --max-size 1 -o "$dir/top.tsv" --quiet
[ "$(tail -n +2 "$dir/top.tsv")" = "n02084071	dog	199" ] || { echo "FAIL: --max-size"; exit 1; }
# The result is a valid vocabulary for vocab label.
"$catlip" vocab label --vocab "$dir/one.tsv" "a cat and a dog" > "$dir/label.txt"
grep -q "n02121620  cat" "$dir/label.txt"
grep -q "not in the vocabulary" "$dir/label.txt"
# A missing shard is a clear error with a non-zero exit, and no file.
if mpirun -n 3 --oversubscribe "$catlip" vocab build --data "$dir/shards/{00000..00005}.tar" --min-count 1 \
    -o "$dir/bad.tsv" --quiet 2> "$dir/err.txt"; then
    echo "FAIL: a missing shard was not an error"; exit 1
fi
grep -q "00005.tar" "$dir/err.txt" || { echo "FAIL: error does not name the shard"; cat "$dir/err.txt"; exit 1; }
[ ! -e "$dir/bad.tsv" ] || { echo "FAIL: wrote a vocabulary despite the error"; exit 1; }
echo "vocab build: 1 rank and 3 ranks wrote identical files"
