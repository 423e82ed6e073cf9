# Shared by the tests/hosts/*_test.sh scripts (sourced): checks, the bed's lifetime, run
# helpers. Callers set `name` (for messages) before sourcing and pass CATLIP SOURCE_DIR.
# shellcheck shell=bash

catlip=${1:?usage: $0 CATLIP_BINARY SOURCE_DIR}
src=$(readlink -f "${2:?usage: $0 CATLIP_BINARY SOURCE_DIR}")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Everything the bed starts runs without the lock's descriptor (fd 9, below): a daemon left
# by a crash must not hold the lock.
bed_nolock() { "$here/bed.sh" "$@" 9>&-; }
bed=bed_nolock
failures=0
started=$(date +%s)

name=${name:?set name before sourcing lib.sh}
say() { echo "$name: $*"; }
check() {  # check CONDITION-STATUS DESCRIPTION
    if [ "$1" = 0 ]; then echo "ok    $2"; else echo "FAIL  $2"; failures=$((failures + 1)); fi
}
fatal() {
    echo "FAIL  $*" >&2
    failures=$((failures + 1))
    exit 1
}

[ "$(id -u)" = 0 ] || fatal "must run as root (the bed creates namespaces, a bridge, daemons); CI runs it as root"
[ -x "$catlip" ] || fatal "catlip binary $catlip not found"
catlip=$(readlink -f "$catlip")
for b in ip tc nsenter unshare mpirun ss; do
    command -v $b >/dev/null || fatal "$b not found (iproute2, util-linux, openmpi-bin)"
done

# The bed has fixed names: one at a time on this machine (another test waits here).
mkdir -p /run/lock
exec 9>/run/lock/catlip-bed.lock
flock -w 900 9 || fatal "another test bed held /run/lock/catlip-bed.lock for 15 minutes"

export CATLIP_BED=/var/tmp/catlip-bed
# Run directories and data: outside /tmp (each host has its own /tmp), so every host sees them,
# as a cluster's shared file system.
T=$(mktemp -d /var/tmp/catlip-hosts-test.XXXXXX) || fatal "mktemp failed"
chmod 755 "$T"
# A checkout or build under /tmp is invisible to the hosts (each has its own /tmp): run a copy
# of the test scripts and the binary from the shared directory instead.
if [[ $src == /tmp/* || $catlip == /tmp/* ]]; then
    mkdir -p "$T/src" && cp -a "$src/tests" "$src/deploy" "$src/configs" "$T/src/" &&
        cp "$catlip" "$T/src/catlip" || fatal "cannot copy the checkout under /tmp to $T/src"
    say "checkout or binary under /tmp, which the hosts do not see: running a copy in $T/src"
    src=$T/src
    here=$src/tests/hosts
    catlip=$src/catlip
fi
# A watchdog, outside this process tree (ctest kills the tree at its timeout): when this test
# is gone, however it ended, it takes the bed down (jobs, daemons, namespaces) and removes the
# test's directory, holding the lock until then so that the next test's bed is never the one
# it removes.
keep=${CATLIP_HOSTS_TEST_KEEP:+$T}
(setsid /bin/sh -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; "$2" down >/dev/null 2>&1
                    [ -n "$4" ] || rm -rf "$3"' \
    sh $$ "$here/bed.sh" "$T" "$keep" </dev/null >/dev/null 2>&1 &)
NET=10.77.31.0/24
# Open MPI between the hosts: TCP only (no shared memory, no other transport), on the bed's
# addresses only. The environment reaches mpirun and, through sbatch --export=ALL, srun.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=tcp,self OMPI_MCA_pml=ob1 OMPI_MCA_btl_tcp_if_include=$NET \
    OMPI_MCA_oob_tcp_if_include=$NET
# Under -DCATLIP_SANITIZE=ON: Open MPI's and PMIx's own one-time allocations are not leaks.
supp=$(readlink -f "$here/../text/lsan_mpi.supp")
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$supp"

bed_logs() {  # the daemons' logs, on failure
    local f
    for f in "$CATLIP_BED"/slurm/log/* "$T"/*.out "$T"/*.log; do
        [ -f "$f" ] || continue
        echo "----- $f (last 60 lines) -----"
        tail -n 60 "$f"
    done
}

cleanup() {
    local status=$?
    [ "$failures" -gt 0 ] && status=1
    trap - EXIT INT TERM
    [ "$status" != 0 ] && bed_logs
    "$bed" down
    if [ -n "$(ip netns list | grep catlip-bed-)" ]; then echo "FAIL  bed down left namespaces"; status=1; fi
    if [ "$status" != 0 ]; then say "FAILED ($failures failure(s)) after $(($(date +%s) - started)) s"
    else say "all checks passed in $(($(date +%s) - started)) s"; fi
    if [ -n "${CATLIP_HOSTS_TEST_KEEP:-}" ]; then say "kept $T"; else rm -rf "$T"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# A small model on synthetic data: the tests check the runtime across hosts, not the math.
cat >"$T/run.yaml" <<'EOF'
seed: 3
model: {name: vit_tiny, image_size: 64, patch_size: 16, dim: 48, depth: 2, heads: 3, num_classes: 400}
data: {train: synthetic}
train: {steps: 40, global_batch: 12, threads: 1, worker_timeout: 15}
optim: {lr: 0.002, warmup_steps: 3, weight_decay: 0.05}
checkpoint: {every_steps: 20, keep: 5}
log: {every_steps: 1}
EOF

metrics_lines() { wc -l 2>/dev/null <"$1/metrics.jsonl" || echo 0; }
wait_steps() {  # wait_steps RUN_DIR N SECONDS: until metrics.jsonl has N lines
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        [ "$(metrics_lines "$1")" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}
last_step() { tail -n 1 "$1/metrics.jsonl" 2>/dev/null | sed -n 's/.*"step": *\([0-9]*\).*/\1/p'; }
digests() { grep -o 'worker [0-9]*: step [0-9]*, weights digest [0-9a-f]*' "$1" 2>/dev/null | awk '{print $7}' | sort -u; }

# compare_losses A B [FROM TO]: the largest relative difference of the losses of run dirs A
# and B over the steps both have (or FROM..TO); "missing" when a step is missing.
compare_losses() {
    /usr/bin/python3 - "$@" <<'EOF'
import json, sys
def losses(d):
    out = {}
    for line in open(d + "/metrics.jsonl"):
        r = json.loads(line)
        out[r["step"]] = r["loss"]
    return out
a, b = losses(sys.argv[1]), losses(sys.argv[2])
steps = range(int(sys.argv[3]), int(sys.argv[4]) + 1) if len(sys.argv) > 4 else sorted(set(a) & set(b))
if not steps or any(s not in a or s not in b for s in steps):
    print("missing")
else:
    print("%.3g" % max(abs(a[s] - b[s]) / abs(b[s]) for s in steps))
EOF
}
rel_below() { /usr/bin/python3 -c "import sys; sys.exit(0 if sys.argv[1] != 'missing' and float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$1" "$2"; }

# The catlip processes of a run (by its run directory), and those on one host.
run_pids() { pgrep -f "^$catlip train .*run_dir=$1( |\$)"; }
pids_on() {  # pids_on HOST PID...: those of PID... that run on HOST
    local h=$1 p on
    shift
    on=" $("$bed" pids "$h" | tr '\n' ' ') "
    for p in "$@"; do case $on in *" $p "*) echo "$p" ;; esac; done
}
host_of() {  # host_of PID: the bed host whose network namespace the process is in
    local h ino
    ino=$(stat -L -c %i "/proc/$1/ns/net" 2>/dev/null) || { echo "?"; return; }
    for h in head $("$bed" hosts); do
        [ "$(stat -L -c %i "/run/netns/catlip-bed-$h" 2>/dev/null)" = "$ino" ] && { echo "$h"; return; }
    done
    echo "?"
}

# ---- SLURM (bed.sh up --slurm) ----------------------------------------------------------------
sl() { "$bed" sl "$@"; }
# submit NAME NODES WORKERS_PER_NODE [catlip train args...] -> job id (the batch script's
# variables; run dir $T/NAME, log $T/NAME.out; SBATCH_EXTRA from the environment)
submit() {
    local run=$1 nodes=$2 wpn=$3
    shift 3
    sl env CATLIP="$catlip" CONFIG="$T/run.yaml" RUN_DIR="$T/$run" NODES="$nodes" \
        WORKERS_PER_NODE="$wpn" CPUS_PER_WORKER=1 TIME_LIMIT=10 SIGNAL_LEAD=120 JOB_NAME="$run" \
        OUTPUT="$T/$run.out" SBATCH_EXTRA="${SBATCH_EXTRA:-}" \
        /bin/sh -c 'cd "$0" && exec "$@"' "$T" "$src/deploy/slurm/catlip.sbatch" "$@"
}
job_field() { sl scontrol show job -o "$1" 2>/dev/null | grep -o "\b$2=[^ ]*" | head -n 1 | cut -d= -f2; }
wait_done() {  # wait_done JOB SECONDS -> final JobState on stdout
    local s='' i
    for ((i = 0; i < $2 * 4; i++)); do
        s=$(job_field "$1" JobState)
        case $s in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED) break ;; esac
        sleep 0.25
    done
    echo "$s"
}
wait_idle() {  # wait_idle N SECONDS: until N nodes are idle
    local i
    for ((i = 0; i < $2 * 4; i++)); do
        [ "$(sl sinfo -h -t idle -o %D 2>/dev/null)" = "$1" ] && return 0
        sleep 0.25
    done
    return 1
}
ckpt_steps() {
    find "$1/checkpoints" -maxdepth 1 -name 'ckpt-*.pb' -printf '%f\n' 2>/dev/null |
        sed -n 's/^ckpt-0*\([0-9][0-9]*\)\.pb$/\1/p' | sort -n | tr '\n' ' '
}

# placement RUN_DIR: one line per catlip rank of a running job:
#   "rank host task-mask thread-masks", rank from SLURM_PROCID, host from the namespace, the
# task's CPUs from SLURM_CPU_BIND_LIST (the SLURM_LOCALID-th mask, cyclic, as SLURM applies
# them), each thread's binding from hwloc-ps -t -c (hex cpusets).
placement() {
    local p env rank lid list mask threads
    for p in $(run_pids "$1"); do
        env=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null) || continue
        rank=$(sed -n 's/^SLURM_PROCID=//p' <<<"$env")
        lid=$(sed -n 's/^SLURM_LOCALID=//p' <<<"$env")
        list=$(sed -n 's/^SLURM_CPU_BIND_LIST=//p' <<<"$env")
        mask=none
        if [ -n "$list" ]; then
            IFS=, read -r -a masks <<<"$list"
            mask=${masks[$((lid % ${#masks[@]}))]}
        fi
        threads=$(hwloc-ps -t -c --pid "$p" 2>/dev/null | awk 'NR > 1 {print $2}' | paste -sd,)
        echo "$rank $(host_of "$p") $mask $threads"
    done | sort -n
}
