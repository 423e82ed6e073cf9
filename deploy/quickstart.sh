#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a pre-trained, evaluated ViT on real data:
# install the packages, build, turn Debian's Open Clip Art Library (openclipart-png pictures,
# openclipart-svg titles/descriptions/keywords as captions; public domain) into shards, build
# the synset vocabulary, pre-train a small ViT with 2 workers + a coordinator (mpirun), then
# evaluate multi-label mAP on a held-out split against the label-frequency prior and zero-shot
# classification (Transfer Init, no training) of the held-out drawings' top-level categories.
#
#   deploy/quickstart.sh                     the whole thing (a few minutes of training)
#   deploy/quickstart.sh --ci                a short version (small data, few steps) that
#                                            fails unless the model beats the prior and chance
#   options: --skip-install  --build-dir DIR (use/build catlip there; default build)
#            --work DIR (data and run; default runs/openclipart)  --epochs N  --limit N
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

ci=0 install=1 build_dir=build work=runs/openclipart epochs="" limit=""
while [ $# -gt 0 ]; do
    case "$1" in
        --ci) ci=1; install=0 ;;
        --skip-install) install=0 ;;
        --build-dir) build_dir=$2; shift ;;
        --work) work=$2; shift ;;
        --epochs) epochs=$2; shift ;;
        --limit) limit=$2; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "quickstart: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
    esac
    shift
done
if [ $ci = 1 ]; then
    : "${epochs:=6}" "${limit:=800}"; max_side=64; batch=48
else
    : "${epochs:=15}" "${limit:=0}"; max_side=96; batch=64
fi
say() { printf '\n== %s\n' "$*"; }

if [ $install = 1 ]; then
    say "installing Debian packages (deploy/debian-packages.txt)"
    if [ "$(id -u)" -eq 0 ]; then ./deploy/install-deps.sh; else sudo ./deploy/install-deps.sh; fi
fi
catlip=$build_dir/catlip
if [ $ci = 0 ] || [ ! -x "$catlip" ]; then
    say "building catlip in $build_dir"
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build_dir" -j"$(nproc)" --target catlip
fi
catlip=$(cd "$(dirname "$catlip")" && pwd)/catlip
mkdir -p "$work"
work=$(cd "$work" && pwd)
data=$work/data run_dir=$work/run

say "preparing Open Clip Art (openclipart-png + openclipart-svg) in $data"
/usr/bin/python3 deploy/prepare_openclipart.py "$data" --max-side $max_side ${limit:+--limit $limit}
for split in train val; do
    rm -rf "$data/shards-$split"
    "$catlip" shards make --tsv "$data/$split.tsv" -o "$data/shards-$split" --samples-per-shard 1000 --max-side $max_side | tail -1
done
rm -rf "$data/shards-zeroshot"
"$catlip" shards make --tsv "$data/zeroshot.tsv" --cls -o "$data/shards-zeroshot" --samples-per-shard 1000 --max-side $max_side | tail -1

say "building the synset vocabulary"
min_count=$([ $ci = 1 ] && echo 5 || echo 10)
"$catlip" vocab build --data "$data/shards-train/*.tar" --min-count $min_count -o "$data/vocab.tsv" --quiet

say "pre-training a small ViT: 2 workers + coordinator, $epochs epochs (progress below)"
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_btl_vader_single_copy_mechanism=none
rm -rf "$run_dir"
mpirun --oversubscribe -n 3 "$catlip" train --set run_dir="$run_dir" \
    --set "data.train=$data/shards-train/*.tar" --set data.vocab="$data/vocab.tsv" \
    --set model.name=vit_tiny --set model.num_classes=0 --set model.image_size=64 --set model.patch_size=16 \
    --set model.depth=4 --set train.epochs=$epochs --set train.global_batch=$batch \
    --set optim.lr=0.002 --set optim.warmup_steps=50 --set optim.weight_decay=0.05 \
    --set log.every_steps=20 --set checkpoint.every_steps=500

say "multi-label evaluation on the held-out split (vs the label-frequency prior)"
"$catlip" eval multilabel --checkpoint "$run_dir" --data "$data/shards-val/*.tar" --json "$work/eval_multilabel.json"

say "zero-shot classification of held-out drawings into their top-level categories (Transfer Init)"
"$catlip" eval zeroshot --checkpoint "$run_dir" --classes "$data/classes.txt" --data "$data/shards-zeroshot/*.tar" \
    --json "$work/eval_zeroshot.json"

verdict=$(/usr/bin/python3 - "$work" <<'PY'
import json, os, sys
ml = json.load(open(os.path.join(sys.argv[1], "eval_multilabel.json")))
zs = json.load(open(os.path.join(sys.argv[1], "eval_zeroshot.json")))
m, p = ml["model"]["map_macro"], ml["prior"]["map_macro"]
ok = m > 2 * p and ml["model"]["map_samples"] > ml["prior"]["map_samples"] and zs["top1"] > 2 * zs["chance"]
print(f"{'PASS' if ok else 'FAIL'}: mAP {m:.4f} vs prior {p:.4f} (macro, x{m / p:.1f}); "
      f"mAP {ml['model']['map_samples']:.4f} vs prior {ml['prior']['map_samples']:.4f} (samples); "
      f"zero-shot top-1 {zs['top1']:.4f} vs chance {zs['chance']:.4f} (x{zs['top1'] / zs['chance']:.1f}), "
      f"majority class {zs['majority']:.4f}")
PY
)
say "done"
echo "$verdict"
echo "checkpoint:   $run_dir/checkpoints/latest   (catlip predict --checkpoint $run_dir IMAGE...)"
echo "metrics:      $run_dir/metrics.jsonl, $work/eval_multilabel.json, $work/eval_zeroshot.json"
echo "status page:  $run_dir/status.json   (catlip status --run-dir $run_dir)"
case "$verdict" in PASS*) exit 0 ;; *) [ $ci = 1 ] && exit 1 || exit 0 ;; esac
