#!/bin/bash
# A host lost under deploy/slurm/catlip.sbatch on the bed's multi-node SLURM cluster
# (tests/hosts/bed.sh up --slurm; train.worker_timeout 15 s, KillWait 10 s, SlurmdTimeout 300 s
# so that SLURM's own node-failure handling does not end the job first).
#
#   tests/hosts/slurm_kill_test.sh CATLIP_BINARY SOURCE_DIR        (as root)
#
# 1. the one-host run (one process on node1) as the reference;
# 2. NODES=3 x 2 workers of 1 CPU: two workers per host get different CPUs, and catlip binds
#    each worker's compute thread inside its task's CPUs (hwloc-ps);
#    then every process of node3 (slurmd, slurmstepd, ranks) is killed mid-run: the job must
#    end promptly (the coordinator aborts at the worker timeout, srun gives up on the dead
#    node's step after KillWait + 2 s) with a non-zero exit, and the log must say which host or
#    rank was lost (node3, ranks 5-6);
# 3. node3 marked down; `--resume auto` with NODES=2 continues from the last checkpoint on 2
#    workers on the same sample order (the reference run's losses);
# 4. node3 back; NODES=3 again; node2's processes killed and SIGTERM sent at once to the
#    surviving ranks (what a scancel, a preemption or the time limit does): the survivors must
#    exit within the worker timeout (plus a margin), not hang.
set -u
name=slurm_kill_test
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
command -v hwloc-ps >/dev/null || fatal "hwloc-ps not found: apt-get install hwloc (deploy/debian-packages.txt)"

"$bed" up --hosts 3 --rate 1gbit --slurm || fatal "bed.sh up --slurm failed"
total=60
timeout=15      # train.worker_timeout in run.yaml
killwait=10     # KillWait in the bed's slurm.conf

# ---- 1: one host, one process ----------------------------------------------------------------
"$bed" exec node1 "$catlip" train -c "$T/run.yaml" --set "run_dir=$T/ref" --set train.steps=$total \
    >"$T/ref.log" 2>&1
check $? "one-host run (one process on node1) completes"

# ---- 2: a host dies --------------------------------------------------------------------------
job=$(submit lost 3 2 --set train.steps=$total) || fatal "submitting the batch script failed: $job"
say "job $job submitted (NODES=3 x 2 workers, $total steps)"
wait_steps "$T/lost" 3 90
check $? "lost-host run: training under way"
place=$(placement "$T/lost")
echo "$place" | sed 's/^/    rank host task-cpus thread-bindings: /'
check "$([ "$(awk '{print $1 ":" $2}' <<<"$place" | paste -sd' ')" = "0:node1 1:node1 2:node1 3:node2 4:node2 5:node3 6:node3" ]; echo $?)" \
    "lost-host run: coordinator (rank 0) on node1, two workers on each host"
bound=$(/usr/bin/python3 - "$place" <<'EOF'
import sys
bad, per_host = [], {}
for line in sys.argv[1].splitlines():
    f = line.split()
    if len(f) < 4 or f[0] == "0":
        continue  # the coordinator binds nothing
    task = int(f[2], 16)
    threads = [int(m, 16) for m in f[3].split(",")]
    single = [m for m in threads if bin(m).count("1") == 1]
    if not single or any(m & ~task for m in threads):
        bad.append("rank %s: threads %s outside task CPUs %s" % (f[0], f[3], f[2]))
    per_host.setdefault(f[1], []).append(single[0] if single else 0)
for host, cpus in per_host.items():
    if len(set(cpus)) != len(cpus):
        bad.append("%s: workers share a CPU (%s)" % (host, cpus))
print("; ".join(bad))
EOF
)
check "$([ -n "$place" ] && [ -z "$bound" ]; echo $?)" \
    "lost-host run: each worker's compute thread on its own CPU, inside its SLURM task's CPUs${bound:+ (not: $bound)}"
wait_steps "$T/lost" 25 120   # past the step-20 checkpoint
# shellcheck disable=SC2046  # one pid a word
lost_pids=$(pids_on node3 $(run_pids "$T/lost") | paste -sd' ')
t0=$(date +%s)
"$bed" kill node3
say "killed every process of node3 (catlip pids $lost_pids) at step $(last_step "$T/lost")"
out=$T/lost.out
# The job's end on the live hosts: the batch script's line after srun returns. (SLURM itself
# keeps the job COMPLETING until it declares node3 down: SlurmdTimeout, or the admin below.)
for _ in $(seq $(((timeout + killwait + 2 + 30) * 4))); do
    grep -q 'catlip exited with status' "$out" && break
    sleep 0.25
done
took=$(($(date +%s) - t0))
rc=$(sed -n 's/.*catlip exited with status \([0-9]*\).*/\1/p' "$out" | tail -n 1)
check "$([ -n "$rc" ] && [ "$rc" != 0 ]; echo $?)" "lost-host run: catlip exited non-zero (${rc:-no exit line})"
check "$([ -n "$rc" ] && [ "$took" -le $((timeout + killwait + 2 + 15)) ]; echo $?)" \
    "lost-host run: the job ended on the live hosts $took s after node3 died (worker timeout $timeout s + srun's KillWait $killwait s + 2 s, + 15 s margin)"
abort=$(grep -m 1 -o '^\[[0-9:]* r0\] error: .*aborting the job' "$out")
check "$([ -n "$abort" ]; echo $?)" "lost-host run: the coordinator aborted the job at the worker timeout"
grep -E '(error|warning):' "$out" | grep -v 'Open MPI' | sed 's/^/    log: /' | head -n 8
# The log must name what was lost: node3, or one of its ranks (5, 6) or workers (4, 5).
check "$(grep -E '(error|warning)' "$out" | grep -q -E 'node3|rank [56]\b|worker [45]\b'; echo $?)" \
    "lost-host run: the log names the lost host or its ranks (node3, ranks 5-6)"
# The coordinator's abort line names every silent worker with its host: exactly node3's.
check "$(grep -q -E 'rank 5 \(host node3' <<<"$abort" && grep -q -E 'rank 6 \(host node3' <<<"$abort"; echo $?)" \
    "lost-host run: the abort names ranks 5 and 6 on node3: ${abort#*error: }"
check "$(! grep -q -E 'rank [1-4] \(host' <<<"$abort"; echo $?)" \
    "lost-host run: the abort blames no rank on a live host"
for h in node1 node2; do
    # shellcheck disable=SC2046  # one pid a word
    check "$([ -z "$(pids_on "$h" $(run_pids "$T/lost"))" ]; echo $?)" "lost-host run: no catlip process left on $h"
done

# ---- 3: resume on the two hosts left -----------------------------------------------------------
sl scontrol update nodename=node3 state=down reason="host lost (test)"
from=$(ckpt_steps "$T/lost")
from=${from% }
from=${from##* }
job=$(submit lost 2 1 --set train.steps=$total) || fatal "submitting the batch script failed: $job"
state=$(wait_done "$job" 120)
check "$([ "$state" = COMPLETED ]; echo $?)" "NODES=2 resume: job $job COMPLETED (got '$state', nodes $(job_field "$job" NodeList))"
check "$(grep -q "resuming from .* at step ${from:-x} " "$out"; echo $?)" "NODES=2 resume: --resume auto took the step-${from:-?} checkpoint"
check "$(grep -q 'written by 6 workers, now 2' "$out"; echo $?)" "NODES=2 resume: logged the worker change (6 -> 2)"
check "$([ "$(last_step "$T/lost")" = $total ]; echo $?)" "NODES=2 resume: metrics.jsonl ends at step $total"
rel=$(compare_losses "$T/lost" "$T/ref" $((${from:-0} + 1)) $total)
check "$(rel_below "$rel" 1e-3; echo $?)" \
    "NODES=2 resume: same samples, same losses as the one-host run over steps $((${from:-0} + 1))..$total (worst relative difference $rel)"

# ---- 4: SIGTERM while a peer is gone ------------------------------------------------------------
"$bed" reboot node3
sl scontrol update nodename=node3 state=resume
wait_idle 3 60 || check 1 "node3 back after its reboot"
job=$(submit term 3 1 --set train.steps=100000) || fatal "submitting the batch script failed: $job"
wait_steps "$T/term" 10 90
check $? "SIGTERM run: training under way"
ranks=$(run_pids "$T/term")
gone=$(pids_on node2 $ranks | paste -sd' ')
survivors=$(for p in $ranks; do case " $gone " in *" $p "*) ;; *) echo "$p" ;; esac; done | paste -sd' ')
"$bed" kill node2
sleep 1   # the survivors' connections to node2 are reset by now: the peer is gone
# shellcheck disable=SC2086
kill -TERM $survivors
t0=$(date +%s)
left=$survivors
for _ in $(seq $(((timeout + 15) * 4))); do
    left=$(for p in $survivors; do [ -d "/proc/$p" ] && echo "$p"; done | paste -sd' ')
    [ -z "$left" ] && break
    sleep 0.25
done
took=$(($(date +%s) - t0))
if [ -z "$left" ]; then what="took $took s"; else what="still running after $took s: $left"; fi
check "$([ -z "$left" ]; echo $?)" \
    "SIGTERM run: the survivors ($survivors) exited within the worker timeout + 15 s after node2 died and SIGTERM came ($what)"
if [ -n "$left" ] && command -v gdb >/dev/null; then
    # Where they are stuck: catlip's frames of each main thread.
    for p in $left; do
        say "rank $(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | sed -n 's/^SLURM_PROCID=//p') (pid $p) main thread:" \
            "$(timeout 20 gdb -p "$p" -batch -ex bt 2>/dev/null | grep -E '^#' |
               grep -o -E ' in [A-Za-z_0-9]+' | sed 's/^ in //' | head -n 9 | paste -sd'<' | sed 's/</ <- /g')"
    done
fi
sl scancel "$job"

[ "$failures" = 0 ]
