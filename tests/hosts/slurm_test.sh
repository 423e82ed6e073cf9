#!/bin/bash
# deploy/slurm/catlip.sbatch on a real multi-node SLURM cluster: munged + slurmctld on the
# bed's head host, one slurmd per host namespace (tests/hosts/bed.sh up --slurm), srun
# --mpi=pmix, Open MPI over TCP only between the hosts, links at 1 Gbit/s (tbf).
#
#   tests/hosts/slurm_test.sh CATLIP_BINARY SOURCE_DIR        (as root)
#
# 1. the one-host run (one process on node1) as the reference;
# 2. NODES=3 (1 worker of 1 CPU per node + the coordinator on the first node): trains and
#    checkpoints; the same losses as the one-host run (same global batch); the coordinator
#    and its status server on node1; each worker's compute thread bound (hwloc-ps) inside the
#    CPUs SLURM gave its task;
# 3. the same job sent `scancel --batch --signal=USR1` mid-run: checkpoint, exit 0, requeue,
#    resume from that checkpoint, end bit-identical to 2.
# 4. heterogeneous jobs (what deploy/slurm/catlip.sbatch's header says about them): a 1-CPU
#    coordinator component + a 2-node worker component runs as one MPI job (srun
#    --het-group=0,1 --mpi=pmix) with the coordinator on a node of its own; with 3 worker nodes
#    on this 3-node cluster it never starts (components do not share nodes). If SLURM changes
#    that, this part says so and the batch script's choice should be revisited.
set -u
name=slurm_test
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
command -v hwloc-ps >/dev/null || fatal "hwloc-ps not found: apt-get install hwloc (deploy/debian-packages.txt)"

"$bed" up --hosts 3 --rate 1gbit --slurm || fatal "bed.sh up --slurm failed"
total=40

# ---- 1: one host, one process ----------------------------------------------------------------
"$bed" exec node1 "$catlip" train -c "$T/run.yaml" --set "run_dir=$T/ref" >"$T/ref.log" 2>&1
check $? "one-host run (one process on node1) completes"

# ---- 2: three nodes --------------------------------------------------------------------------
t0=$(date +%s)
job=$(submit plain 3 1) || fatal "submitting the batch script failed: $job"
say "job $job submitted (NODES=3, $total steps)"
wait_steps "$T/plain" 3 90
check $? "plain run: training under way on the cluster"
place=$(placement "$T/plain")
echo "$place" | sed 's/^/    rank host task-cpus thread-bindings: /'
check "$([ "$(awk '{print $1 ":" $2}' <<<"$place" | paste -sd' ')" = "0:node1 1:node1 2:node2 3:node3" ]; echo $?)" \
    "plain run: coordinator (rank 0) on node1, one worker on each of node1 node2 node3"
spid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$T/plain/status.json" 2>/dev/null)
check "$([ -n "$spid" ] && [ "$(host_of "$spid")" = node1 ]; echo $?)" \
    "plain run: the status server (status.json pid ${spid:-?}) runs on node1"
bound=$(/usr/bin/python3 - "$place" <<'EOF'
import sys
bad = []
for line in sys.argv[1].splitlines():
    f = line.split()
    if len(f) < 4 or f[0] == "0":
        continue  # the coordinator binds nothing
    task = int(f[2], 16)
    threads = [int(m, 16) for m in f[3].split(",")]
    single = [m for m in threads if bin(m).count("1") == 1]
    if not single or any(m & ~task for m in threads):
        bad.append(line)
print("; ".join(bad))
EOF
)
check "$([ -n "$place" ] && [ -z "$bound" ]; echo $?)" \
    "plain run: every worker's compute thread bound to one CPU inside its SLURM task's CPUs${bound:+ (not: $bound)}"
# shellcheck disable=SC2046  # one pid a word
w2=$(pids_on node2 $(run_pids "$T/plain"))
conns=$("$bed" exec node2 ss -Htnp state established 2>/dev/null | grep "pid=${w2:-none}," |
        awk '{print $4}' | sed 's/:[0-9]*$//' | sort -u | paste -sd' ')
check "$([ -n "$w2" ] && grep -q 10.77.31.11 <<<"$conns" && grep -q 10.77.31.13 <<<"$conns"; echo $?)" \
    "plain run: node2's worker has TCP connections to node1 and node3 ($conns)"
notcp=
for p in $(run_pids "$T/plain"); do
    maps=$(cat "/proc/$p/maps" 2>/dev/null) || continue
    grep -q mca_btl_tcp <<<"$maps" && ! grep -q -E 'btl_vader|vader_segment|btl_sm' <<<"$maps" || notcp+="$p "
done
check "$([ -z "$notcp" ]; echo $?)" "plain run: every rank uses Open MPI's TCP transport, none maps shared memory (vader)${notcp:+ (not: $notcp)}"
state=$(wait_done "$job" 120)
out=$T/plain.out
check "$([ "$state" = COMPLETED ]; echo $?)" "plain run: job $job COMPLETED (got '$state', exit $(job_field "$job" ExitCode))"
check "$([ "$(last_step "$T/plain")" = $total ]; echo $?)" "plain run: metrics.jsonl ends at step $total"
check "$(grep -q '3 workers' "$out"; echo $?)" "plain run: 1 coordinator + 3 workers in one MPI job through srun --mpi=pmix"
check "$([ "$(ckpt_steps "$T/plain")" = "20 40 " ]; echo $?)" "plain run: checkpoints at steps 20 40 ($(ckpt_steps "$T/plain"))"
rel=$(compare_losses "$T/plain" "$T/ref")
check "$(rel_below "$rel" 1e-3; echo $?)" "plain run: the one-host losses, step for step (worst relative difference $rel)"
ref=$(digests "$out")
check "$([ "$(wc -w <<<"$ref")" = 1 ] && [ "$(grep -c 'weights digest' "$out")" = 3 ]; echo $?)" \
    "plain run: the 3 workers on 3 hosts end with identical weights ($ref)"
say "plain run: $(($(date +%s) - t0)) s from submission to completion"

# ---- 3: USR1, checkpoint, requeue, resume ------------------------------------------------------
t0=$(date +%s)
job=$(submit preempted 3 1) || fatal "submitting the batch script failed: $job"
wait_steps "$T/preempted" 5 90
check $? "signalled run: training under way before the signal"
sl scancel --batch --signal=USR1 "$job"
check $? "scancel --batch --signal=USR1 $job accepted"
restarts=0
for _ in $(seq 240); do
    restarts=$(job_field "$job" Restarts)
    [ "${restarts:-0}" -ge 1 ] && break
    sleep 0.25
done
out=$T/preempted.out
check "$([ "${restarts:-0}" = 1 ]; echo $?)" "signalled run: job $job requeued by the batch script (Restarts=$restarts)"
check "$(grep -q 'SIGUSR1 received, forwarding' "$out"; echo $?)" "signalled run: the batch shell on node1 got SIGUSR1 and forwarded it"
check "$(grep -q 'User defined signal 1: checkpointing' "$out"; echo $?)" "signalled run: catlip's coordinator got SIGUSR1"
check "$(grep -q 'catlip exited with status 0' "$out"; echo $?)" "signalled run: catlip exited 0 on every host after the signal"
mid=$(ckpt_steps "$T/preempted")
mid=${mid% }
mid=${mid##* }
check "$([ -n "$mid" ] && [ "$mid" -gt 0 ] && [ "$mid" -lt $total ]; echo $?)" \
    "signalled run: checkpointed at the signal (step ${mid:-none} of $total)"
seen=
for h in node1 node2 node3; do
    "$bed" exec "$h" test -s "$T/preempted/checkpoints/ckpt-$(printf %010d "${mid:-0}").pb" && seen+="$h "
done
check "$([ "$seen" = "node1 node2 node3 " ]; echo $?)" "signalled run: every host sees the checkpoint on the shared file system ($seen)"
state=$(wait_done "$job" 150)
check "$([ "$state" = COMPLETED ]; echo $?)" "requeued run: job $job COMPLETED (got '$state', exit $(job_field "$job" ExitCode))"
check "$(grep -q "resuming from .* at step $mid " "$out"; echo $?)" "requeued run: resumed from the step-$mid checkpoint"
check "$([ "$(last_step "$T/preempted")" = $total ]; echo $?)" "requeued run: metrics.jsonl ends at step $total"
got=$(digests "$out" | tail -n 1)
check "$([ -n "$ref" ] && [ "$(grep 'weights digest' "$out" | grep -c "step $total,")" = 3 ] &&
         [ "$(grep "step $total, weights digest" "$out" | awk '{print $NF}' | sort -u)" = "$ref" ]; echo $?)" \
    "requeued run ends bit-identical to the uninterrupted run on every worker ($got vs $ref)"
say "signal, requeue and resume: $(($(date +%s) - t0)) s from submission to completion"

# ---- 4: heterogeneous jobs -----------------------------------------------------------------
cat >"$T/het.sh" <<EOF
#!/bin/bash
echo "het: coordinator component on \$SLURM_JOB_NODELIST_HET_GROUP_0, workers on \$SLURM_JOB_NODELIST_HET_GROUP_1"
srun --mpi=pmix --het-group=0,1 --kill-on-bad-exit=1 "$catlip" train -c "$T/run.yaml" --set run_dir="\$1" --set train.steps=20
echo "het: catlip exited with status \$?"
EOF
chmod +x "$T/het.sh"
hsub() {  # hsub NAME WORKER_NODES
    sl /bin/sh -c 'cd "$1" && sbatch --parsable -o "$1/$2.out" --ntasks=1 --cpus-per-task=1 : --nodes="$3" \
        --ntasks-per-node=1 --cpus-per-task=1 "$1/het.sh" "$1/$2"' sh "$T" "$1" "$2"
}
job=$(hsub het2 2)
state=$(wait_done "$job" 90)
check "$([ "$state" = COMPLETED ] && grep -q 'coordinator component on node1, workers on node\[2-3\]' "$T/het2.out" &&
         grep -q 'catlip exited with status 0' "$T/het2.out" && grep -q '2 workers' "$T/het2.out"; echo $?)" \
    "heterogeneous job, 1-CPU coordinator component + 2 worker nodes: one MPI job, the coordinator alone on node1 (state '$state')"
job=$(hsub het3 3)
sleep 8
state=$(job_field "$job" JobState)
reason=$(job_field "$job" Reason)
say "heterogeneous job with 3 worker nodes on 3 nodes after 8 s: $state ($reason)"
check "$([ "$state" = PENDING ]; echo $?)" \
    "heterogeneous job, coordinator component + 3 worker nodes on 3 nodes: does not start (components never share a node; got $state $reason)"
sl scancel "$job"

[ "$failures" = 0 ]
