#!/bin/bash
# deploy/mpirun.sh: the command it builds, and a short 2-worker run through it.
#
#   tests/slurm/mpirun_test.sh CATLIP_BINARY SOURCE_DIR
set -u
catlip=$(readlink -f "${1:?usage: mpirun_test.sh CATLIP_BINARY SOURCE_DIR}")
helper=${2:?usage: mpirun_test.sh CATLIP_BINARY SOURCE_DIR}/deploy/mpirun.sh
failures=0
# Under -DCATLIP_SANITIZE=ON: what Open MPI, PMIx, hwloc and OpenBLAS allocate once and never
# free is not catlip's leak (the suppressions the MPI text test uses; jobs inherit this env).
supp=$(readlink -f "$(dirname "$0")/../text/lsan_mpi.supp")
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$supp"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
check() {  # check STATUS DESCRIPTION
    if [ "$1" = 0 ]; then echo "ok    $2"; else echo "FAIL  $2"; failures=$((failures + 1)); fi
}
T=$(mktemp -d /tmp/catlip-mpirun-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
export CATLIP=$catlip

# The command line, without running it.
cmd=$(DRY_RUN=1 "$helper" 2 --set train.steps=5)
check "$(grep -q -- '--bind-to none' <<<"$cmd"; echo $?)" "binds nothing itself (catlip binds its threads): $cmd"
check "$(grep -q -- "-n 3 " <<<"$cmd"; echo $?)" "2 workers -> 3 ranks"
check "$(grep -q -- "--set train.threads=[1-9]" <<<"$cmd"; echo $?)" "sets train.threads from cores / workers"
if [ "$(id -u)" = 0 ]; then
    check "$(grep -q -- '--allow-run-as-root' <<<"$cmd"; echo $?)" "as root: --allow-run-as-root"
else
    check "$(! grep -q -- '--allow-run-as-root' <<<"$cmd"; echo $?)" "not root: no --allow-run-as-root"
fi
cmd=$(DRY_RUN=1 "$helper" 3 --set train.threads=1)
check "$(grep -o 'train.threads=' <<<"$cmd" | wc -l | grep -qx 1; echo $?)" "keeps the user's train.threads"
cmd=$(DRY_RUN=1 "$helper" 64)
check "$(grep -q -- '--oversubscribe' <<<"$cmd"; echo $?)" "65 ranks: --oversubscribe"
"$helper" 0 >/dev/null 2>&1
check "$([ $? = 2 ]; echo $?)" "0 workers: usage error (exit 2)"

# A real run: 2 workers on distinct cores, trains to the end.
out=$("$helper" 2 --set run_dir="$T/run" --set model.image_size=32 --set model.patch_size=8 \
    --set model.dim=48 --set model.depth=2 --set model.heads=3 --set model.num_classes=40 \
    --set train.global_batch=12 --set train.steps=20 --set log.every_steps=5 \
    --set checkpoint.every_steps=0 2>&1)
rc=$?
check "$([ $rc = 0 ]; echo $?)" "2-worker run exits 0 (got $rc)"
check "$(grep -q 'info: done' <<<"$out"; echo $?)" "2-worker run says done"
pus=$(grep -o 'bound to PUs [0-9,]*' <<<"$out" | sed 's/,$//' | sort)
ncores=$(DRY_RUN=1 "$helper" 1 | grep -o 'train.threads=[0-9]*' | cut -d= -f2)
if [ "${ncores:-1}" -ge 2 ]; then
    check "$([ "$(wc -l <<<"$pus")" = 2 ] && [ "$(uniq <<<"$pus" | wc -l)" = 2 ]; echo $?)" \
        "the workers' threads are bound to distinct cores: $(tr '\n' ';' <<<"$pus")"
fi
[ "$failures" = 0 ] || { echo "$out" | tail -n 40; exit 1; }
