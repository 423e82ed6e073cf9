#!/bin/bash
# A real one-node SLURM cluster on this machine, and deploy/slurm/catlip.sbatch run on it.
#
#   tests/slurm/slurm_test.sh CATLIP_BINARY SOURCE_DIR
#
# As root: generates a slurm.conf for this host (slurmd -C), a munge key, starts munged,
# slurmctld and slurmd (state, spool, pid and log files in a temp dir, ports on 127.0.0.1),
# then
#   1. submits the batch script (1 node, 1 coordinator + 2 workers of 1 CPU on the 2 CPUs
#      the job holds, a small model on synthetic data, 60 steps) and checks that it trained
#      and checkpointed;
#   2. submits the same run again, and once it is training sends
#      `scancel --batch --signal=USR1` (what --signal=B:USR1@T does before the time limit):
#      the run must checkpoint mid-run, exit 0, the script must requeue the job, and the
#      requeued job must resume and end bit-identical to run 1 (same weights digest);
#   3. tears everything down, also on failure (trap), printing the daemons' logs on failure.
# Auth is auth/munge with a key generated here (munged on its own socket).
# CATLIP_SLURM_TEST_KEEP=1 keeps the temp dir (config, logs, run dirs) for a look afterwards.
set -u

catlip=${1:?usage: slurm_test.sh CATLIP_BINARY SOURCE_DIR}
src=${2:?usage: slurm_test.sh CATLIP_BINARY SOURCE_DIR}
script=$src/deploy/slurm/catlip.sbatch
failures=0
# Under -DCATLIP_SANITIZE=ON: what Open MPI, PMIx, hwloc and OpenBLAS allocate once and never
# free is not catlip's leak (the suppressions the MPI text test uses; jobs inherit this env).
supp=$(readlink -f "$(dirname "$0")/../text/lsan_mpi.supp")
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$supp"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"

say() { echo "slurm_test: $*"; }
check() {  # check CONDITION-STATUS DESCRIPTION
    if [ "$1" = 0 ]; then echo "ok    $2"; else echo "FAIL  $2"; failures=$((failures + 1)); fi
}
fatal() {
    echo "FAIL  $*" >&2
    failures=$((failures + 1))
    exit 1
}

[ "$(id -u)" = 0 ] || fatal "the SLURM test must run as root (it starts munged, slurmctld and slurmd); CI runs it as root"
for b in munged slurmctld slurmd sbatch scontrol scancel sinfo srun; do
    command -v "$b" >/dev/null ||
        fatal "$b is not installed: apt-get install munge slurmctld slurmd slurm-client (deploy/debian-packages.txt)"
done
[ -x "$catlip" ] || fatal "catlip binary $catlip not found"
[ -x "$script" ] || fatal "batch script $script not found or not executable"
catlip=$(readlink -f "$catlip")

T=$(mktemp -d /tmp/catlip-slurm-test.XXXXXX) || fatal "mktemp failed"
chmod 700 "$T"
mkdir -p "$T/munge" "$T/ctld" "$T/spool" "$T/log" "$T/work"
conf=$T/slurm.conf
sl() { SLURM_CONF=$conf "$@"; }  # a SLURM client command against this cluster

# Processes of this cluster carry one of these in their environment: the daemons (and the
# slurmstepd/slurmscriptd they start) the first, the job's processes (catlip ranks) the second.
daemon_mark="CATLIP_SLURM_TEST_DAEMON=$T"
job_mark="CATLIP_SLURM_TEST_JOB=$T"

marked_pids() {
    local p
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$p" = $$ ] && continue
        if grep -qzxF -e "$daemon_mark" -e "$job_mark" "/proc/$p/environ" 2>/dev/null; then
            echo "$p"
        fi
    done
}

cleanup() {
    local status=$?
    [ "$failures" -gt 0 ] && status=1
    trap - EXIT INT TERM
    if [ -f "$conf" ]; then
        sl scancel --full --quiet --signal=KILL --state=RUNNING --user=root >/dev/null 2>&1
        sl scancel --quiet --user=root >/dev/null 2>&1
    fi
    # Everything this test started, by pid: daemons first by their pid files, then stragglers.
    for f in "$T/slurmd.pid" "$T/slurmctld.pid" "$T/munge/munged.pid"; do
        [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
    done
    for _ in $(seq 50); do [ -z "$(marked_pids)" ] && break; sleep 0.1; done
    for p in $(marked_pids); do kill -KILL "$p" 2>/dev/null; done
    if [ "$status" != 0 ]; then
        for f in "$T"/log/* "$T"/work/*.out; do
            [ -f "$f" ] || continue
            echo "----- $f (last 80 lines) -----"
            tail -n 80 "$f"
        done
        echo "slurm_test: FAILED ($failures failure(s))"
    else
        echo "slurm_test: all checks passed"
    fi
    if [ -n "${CATLIP_SLURM_TEST_KEEP:-}" ]; then echo "slurm_test: kept $T"; else rm -rf "$T"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- cluster -------------------------------------------------------------------------------
node=$(hostname -s)
hw=$(slurmd -C | head -n 1)   # NodeName=... CPUs=... Boards=... ... RealMemory=...
case $hw in NodeName=*) ;; *) fatal "slurmd -C printed '$hw'" ;; esac
cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
# The job holds 2 CPUs (2 workers of 1); on a 1-CPU machine declare 2.
[ "${cpus:-0}" -ge 2 ] || hw="NodeName=$node CPUs=2 RealMemory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")"
port=$((20000 + RANDOM % 20000))

dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$T/munge/munge.key"
env "$daemon_mark" munged --force --key-file="$T/munge/munge.key" --socket="$T/munge/munge.sock" \
    --pid-file="$T/munge/munged.pid" --log-file="$T/log/munged.log" --seed-file="$T/munge/seed" ||
    fatal "munged did not start"

cat >"$conf" <<EOF
# Generated by tests/slurm/slurm_test.sh: one node, everything on 127.0.0.1.
ClusterName=catlip-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job waits this long (default 120 s) before it may start again.
AuthInfo=socket=$T/munge/munge.sock,cred_expire=10
StateSaveLocation=$T/ctld
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=1
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MailProg=/bin/true
KillWait=10
MinJobAge=600
$hw NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF

env "$daemon_mark" SLURM_CONF="$conf" slurmctld -D -f "$conf" >"$T/log/slurmctld.stderr" 2>&1 &
env "$daemon_mark" SLURM_CONF="$conf" slurmd -D -f "$conf" -N "$node" >"$T/log/slurmd.stderr" 2>&1 &
state=
for _ in $(seq 120); do
    state=$(sl sinfo -h -n "$node" -o %t 2>/dev/null)
    [ "$state" = idle ] && break
    sleep 0.5
done
[ "$state" = idle ] || fatal "node $node did not become idle within 60 s (sinfo says '$state')"
say "cluster up: node $node ($hw), slurmctld on 127.0.0.1:$port"

# ---- helpers -------------------------------------------------------------------------------
cat >"$T/work/run.yaml" <<'EOF'
# Small model on synthetic data: runtime, not math.
seed: 3
model: {name: vit_tiny, image_size: 32, patch_size: 8, dim: 48, depth: 4, heads: 3, num_classes: 4000}
data: {train: synthetic}
train: {steps: 60, global_batch: 12}
optim: {lr: 0.002, warmup_steps: 3, weight_decay: 0.05}
checkpoint: {every_steps: 20, keep: 5}
log: {every_steps: 1}
EOF
total=60

submit() {  # submit NAME -> job id on stdout; the variables are the batch script's
    (cd "$T/work" && env "$job_mark" SLURM_CONF="$conf" CATLIP="$catlip" CONFIG="$T/work/run.yaml" \
        RUN_DIR="$T/work/$1" NODES=1 WORKERS_PER_NODE=2 CPUS_PER_WORKER=1 TIME_LIMIT=10 \
        SIGNAL_LEAD=120 JOB_NAME="$1" OUTPUT="$T/work/$1.out" "$script")
}
job_field() { sl scontrol show job -o "$1" 2>/dev/null | grep -o "\b$2=[^ ]*" | head -n 1 | cut -d= -f2; }
wait_done() {  # wait_done JOB SECONDS -> final JobState on stdout
    local s=
    for _ in $(seq $((${2} * 4))); do
        s=$(job_field "$1" JobState)
        case $s in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED) break ;; esac
        sleep 0.25
    done
    echo "$s"
}
last_step() { tail -n 1 "$1" 2>/dev/null | sed -n 's/.*"step": *\([0-9]*\).*/\1/p'; }
ckpt_steps() {
    find "$1/checkpoints" -maxdepth 1 -name 'ckpt-*.pb' -printf '%f\n' 2>/dev/null |
        sed -n 's/^ckpt-0*\([0-9][0-9]*\)\.pb$/\1/p' | sort -n | tr '\n' ' '
}
digest() { grep -o 'worker 0: step [0-9]*, weights digest [0-9a-f]*' "$1" 2>/dev/null | tail -n 1 | awk '{print $4 $7}'; }

# ---- 1: a whole run ------------------------------------------------------------------------
t0=$(date +%s)
job=$(submit plain) || fatal "submitting the batch script failed: $job"
say "job $job submitted (plain run, $total steps)"
state=$(wait_done "$job" 120)
out=$T/work/plain.out
check "$([ "$state" = COMPLETED ]; echo $?)" "plain run: job $job COMPLETED (got '$state', exit $(job_field "$job" ExitCode))"
check "$([ "$(last_step "$T/work/plain/metrics.jsonl")" = $total ]; echo $?)" \
    "plain run: metrics.jsonl ends at step $total (got '$(last_step "$T/work/plain/metrics.jsonl")')"
check "$(grep -q 'info: done; metrics in' "$out"; echo $?)" "plain run: the job log says done"
check "$(grep -q '2 workers' "$out"; echo $?)" "plain run: 1 coordinator + 2 workers (one MPI job through srun --mpi=pmix)"
check "$([ "$(ckpt_steps "$T/work/plain")" = "20 40 60 " ]; echo $?)" \
    "plain run: checkpoints at steps 20 40 60 (got '$(ckpt_steps "$T/work/plain")')"
check "$([ -s "$T/work/plain/checkpoints/latest" ]; echo $?)" "plain run: checkpoints/latest written"
ref=$(digest "$out")
check "$([ -n "$ref" ]; echo $?)" "plain run: final weights digest reported ($ref)"
say "plain run took $(($(date +%s) - t0)) s from submission to completion"

# ---- 2: USR1 to the batch shell, checkpoint, requeue, resume --------------------------------
t0=$(date +%s)
job=$(submit preempted) || fatal "submitting the batch script failed: $job"
say "job $job submitted (to be signalled)"
metrics=$T/work/preempted/metrics.jsonl
for _ in $(seq 1200); do
    [ "$(wc -l 2>/dev/null <"$metrics" || echo 0)" -ge 3 ] && break
    sleep 0.05
done
check "$([ "$(wc -l 2>/dev/null <"$metrics" || echo 0)" -ge 3 ]; echo $?)" "signalled run: training under way before the signal"
sl scancel --batch --signal=USR1 "$job"
check $? "scancel --batch --signal=USR1 $job accepted"
# The script requeues the job: it shows up as restarted (and pending for cred_expire seconds).
restarts=0
for _ in $(seq 240); do
    restarts=$(job_field "$job" Restarts)
    [ "${restarts:-0}" -ge 1 ] && break
    sleep 0.25
done
out=$T/work/preempted.out
check "$([ "${restarts:-0}" = 1 ]; echo $?)" "signalled run: job $job requeued by the batch script (Restarts=$restarts)"
say "requeued at $(date -u +%T), eligible again at $(job_field "$job" EligibleTime)"
check "$(grep -q 'SIGUSR1 received, forwarding' "$out"; echo $?)" "signalled run: the batch shell got SIGUSR1 and forwarded it"
check "$(grep -q 'User defined signal 1: checkpointing' "$out"; echo $?)" "signalled run: catlip's coordinator got SIGUSR1"
check "$(grep -q 'catlip exited with status 0' "$out"; echo $?)" "signalled run: catlip exited 0 after the signal"
mid=$(ckpt_steps "$T/work/preempted")
mid=${mid% }
mid=${mid##* }  # the newest one: the checkpoint the signal caused
check "$([ -n "$mid" ] && [ "$mid" -gt 0 ] && [ "$mid" -lt $total ]; echo $?)" \
    "signalled run: checkpointed mid-run (step ${mid:-none} of $total)"
state=$(wait_done "$job" 150)
check "$([ "$state" = COMPLETED ]; echo $?)" "requeued run: job $job COMPLETED (got '$state', exit $(job_field "$job" ExitCode))"
check "$(grep -q "resuming from .* at step $mid " "$out"; echo $?)" "requeued run: resumed from the step-$mid checkpoint"
check "$([ "$(last_step "$metrics")" = $total ]; echo $?)" "requeued run: metrics.jsonl ends at step $total (got '$(last_step "$metrics")')"
check "$([ -f "$T/work/preempted/checkpoints/ckpt-$(printf %010d $total).pb" ]; echo $?)" "requeued run: final checkpoint written"
check "$([ "$(grep -c 'info: done; metrics in' "$out")" = 2 ]; echo $?)" "requeued run: both parts of the job say done"
got=$(digest "$out")
check "$([ -n "$ref" ] && [ "$got" = "$ref" ]; echo $?)" \
    "requeued run ends bit-identical to the uninterrupted run ($got vs $ref)"
say "signal, requeue and resume took $(($(date +%s) - t0)) s from submission to completion"

[ "$failures" = 0 ]
