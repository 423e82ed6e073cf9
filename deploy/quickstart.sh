#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a pre-trained, evaluated ViT on real data:
# install the packages, build, turn Debian's Open Clip Art Library (openclipart-png pictures,
# openclipart-svg titles/descriptions/keywords as captions; public domain) into shards, build
# the synset vocabulary, pre-train a small ViT with 2 workers + a coordinator (mpirun), then
# evaluate multi-label mAP on a held-out split and zero-shot classification (the synset head, no
# training) of the held-out drawings' top-level categories, and the same for a control (the same
# model at its random initialisation). deploy/quickstart_check.py prints control, label-frequency
# prior and trained model side by side and gives the verdict; the script exits non-zero on FAIL.
#
#   deploy/quickstart.sh                     the whole thing (a few minutes of training)
#   deploy/quickstart.sh --ci                a short version (small data, few steps); both
#                                            fail unless the model beats control, prior and chance
#   options: --skip-install  --build-dir DIR (use/build catlip there; default build)
#            --work DIR (data and run; default runs/openclipart)  --epochs N  --limit N
#            --precision fp32|bf16 (train.precision of the pre-training run; default fp32)
#            --seed N (seed of the pre-training run; default 0)
#            --objective catlip|clip (default catlip). clip: CLIP's contrastive objective on the
#                same image tower (a word tokenizer from the training captions, the text_tiny
#                tower); evaluated by zero-shot classification with prompt ensembles (no multi-label
#                mAP: CLIP has no synset head); fails unless its zero-shot top-1 beats the
#                majority-class rate and the control's
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

ci=0 install=1 build_dir=build work="" epochs="" limit="" precision=fp32 seed=0 objective=catlip
while [ $# -gt 0 ]; do
    case "$1" in
        --ci) ci=1; install=0 ;;
        --skip-install) install=0 ;;
        --build-dir) build_dir=$2; shift ;;
        --work) work=$2; shift ;;
        --epochs) epochs=$2; shift ;;
        --limit) limit=$2; shift ;;
        --precision) precision=$2; shift ;;
        --seed) seed=$2; shift ;;
        --objective) objective=$2; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "quickstart: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
    esac
    shift
done
case "$objective" in
    catlip) : "${work:=runs/openclipart}" ;;
    # CLIP learns these categories more slowly per step than CatLIP: 15 epochs in --ci.
    clip) : "${work:=runs/openclipart-clip}"; if [ $ci = 1 ]; then : "${epochs:=15}"; fi ;;
    *) echo "quickstart: --objective must be catlip or clip, not '$objective'" >&2; exit 2 ;;
esac
if [ $ci = 1 ]; then
    : "${epochs:=10}" "${limit:=2000}"; max_side=64; batch=48
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
data=$work/data run_dir=$work/run control_dir=$work/control

say "preparing Open Clip Art (openclipart-png + openclipart-svg) in $data"
/usr/bin/python3 deploy/prepare_openclipart.py "$data" --max-side $max_side ${limit:+--limit $limit}
for split in train val; do
    rm -rf "$data/shards-$split"
    "$catlip" shards make --tsv "$data/$split.tsv" -o "$data/shards-$split" --samples-per-shard 1000 --max-side $max_side | tail -1
done
rm -rf "$data/shards-zeroshot"
"$catlip" shards make --tsv "$data/zeroshot.tsv" --cls -o "$data/shards-zeroshot" --samples-per-shard 1000 --max-side $max_side | tail -1

min_count=$([ $ci = 1 ] && echo 5 || echo 10)
# The data and model settings, shared by the trained model and the control.
model_set=(--set "data.train=$data/shards-train/*.tar"
    --set model.name=vit_tiny --set model.image_size=64 --set model.patch_size=16
    --set model.depth=4 --set train.global_batch=$batch --set optim.weight_decay=0.05)
if [ "$objective" = clip ]; then
    say "building the word tokenizer of the text tower"
    # Words in fewer captions are <unk>. Kept, the rare words (titles, one-off keywords) let the
    # contrastive loss match each drawing to its own caption by them, which does not carry over
    # to held-out drawings (--ci, 15 epochs: zero-shot top-1 0.45 with --min-count 20, 0.12
    # with 12; 10 epochs: 0.06 with 5).
    tokenizer_min_count=$([ $ci = 1 ] && echo 20 || echo 40)
    "$catlip" tokenizer build --data "$data/shards-train/*.tar" --min-count $tokenizer_min_count \
        -o "$data/tokenizer.tsv" --quiet
    model_set+=(--set model.objective=clip --set data.tokenizer="$data/tokenizer.tsv" --set model.text=text_tiny
        --set model.embed_dim=64)
    # Prompt ensemble for zero-shot: words the Open Clip Art captions use (no "drawing" or
    # "clip art" in them: the preparation drops those as boilerplate).
    prompts=(--prompts "{}" --prompts "a {} icon" --prompts "a picture of a {}")
    tower="a small ViT and a text_tiny tower (CLIP)"
else
    say "building the synset vocabulary"
    "$catlip" vocab build --data "$data/shards-train/*.tar" --min-count $min_count -o "$data/vocab.tsv" --quiet
    model_set+=(--set data.vocab="$data/vocab.tsv" --set model.num_classes=0)
    tower="a small ViT"
fi

say "pre-training $tower: 2 workers + coordinator, $epochs epochs (progress below)"
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_btl_vader_single_copy_mechanism=none
rm -rf "$run_dir"
mpirun --oversubscribe -n 3 "$catlip" train --set run_dir="$run_dir" "${model_set[@]}" \
    --set train.epochs=$epochs --set optim.lr=0.002 --set optim.warmup_steps=50 \
    --set train.precision="$precision" --set seed="$seed" \
    --set log.every_steps=20 --set checkpoint.every_steps=500

# The control: the same model, one step at learning rate 0 (no warmup, no floor), so AdamW moves
# no weight (decoupled weight decay is scaled by the learning rate too) and the EMA stays equal to
# them: the random initialisation, evaluated by the same commands as the trained model.
say "control: the same model at its random initialisation (1 step at learning rate 0)"
rm -rf "$control_dir"
"$catlip" train --set run_dir="$control_dir" "${model_set[@]}" --set train.steps=1 \
    --set optim.lr=0 --set optim.min_lr=0 --set optim.warmup_init_lr=0 --set optim.warmup_steps=0 \
    --set log.every_steps=1 --set checkpoint.every_steps=0 >"$work/control_train.log" 2>&1 ||
    { cat "$work/control_train.log" >&2; exit 1; }

if [ "$objective" = clip ]; then
    evaluate() {  # evaluate RUN_DIR PREFIX: zero-shot by prompt ensembles into PREFIX_zeroshot.json
        "$catlip" eval zeroshot --checkpoint "$1" --classes "$data/classes.txt" --data "$data/shards-zeroshot/*.tar" \
            "${prompts[@]}" --json "$2_zeroshot.json" ${3:+"$3"}
    }
    say "zero-shot classification of held-out drawings into their top-level categories (CLIP prompt ensembles)"
else
    evaluate() {  # evaluate RUN_DIR PREFIX: the multi-label and zero-shot evaluations into PREFIX_*.json
        "$catlip" eval multilabel --checkpoint "$1" --data "$data/shards-val/*.tar" --json "$2_multilabel.json"
        "$catlip" eval zeroshot --checkpoint "$1" --classes "$data/classes.txt" --data "$data/shards-zeroshot/*.tar" \
            --calibrate-on "$data/shards-val/*.tar" --json "$2_zeroshot.json" ${3:+"$3"}
    }
    say "multi-label mAP on the held-out split, and zero-shot classification of held-out drawings into their top-level categories (the synset head, no training)"
fi
evaluate "$run_dir" "$work/eval"
say "the same evaluations of the control"
evaluate "$control_dir" "$work/control" --quiet

say "done: control (random weights), prior and trained model"
set +e
if [ "$objective" = clip ]; then
    /usr/bin/python3 deploy/quickstart_check.py --objective clip --trained "$work/eval_zeroshot.json" \
        --control "$work/control_zeroshot.json" --json "$work/quickstart_result.json"
else
    /usr/bin/python3 deploy/quickstart_check.py --trained "$work/eval_multilabel.json" "$work/eval_zeroshot.json" \
        --control "$work/control_multilabel.json" "$work/control_zeroshot.json" --json "$work/quickstart_result.json"
fi
verdict=$?
set -e
if [ "$objective" = clip ]; then
    echo "checkpoint:   $run_dir/checkpoints/latest   (catlip embed --checkpoint $run_dir -o f.npy IMAGE...)"
    echo "metrics:      $run_dir/metrics.jsonl, $work/eval_zeroshot.json"
    echo "control:      $control_dir, $work/control_zeroshot.json"
else
    echo "checkpoint:   $run_dir/checkpoints/latest   (catlip predict --checkpoint $run_dir IMAGE...)"
    echo "metrics:      $run_dir/metrics.jsonl, $work/eval_multilabel.json, $work/eval_zeroshot.json"
    echo "control:      $control_dir, $work/control_multilabel.json, $work/control_zeroshot.json"
fi
echo "verdict:      $work/quickstart_result.json"
echo "status page:  $run_dir/status.json   (catlip status --run-dir $run_dir)"
exit $verdict
