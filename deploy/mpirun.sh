#!/bin/bash
# catlip training on one machine under Open MPI's mpirun: 1 coordinator + WORKERS workers.
#
#   deploy/mpirun.sh WORKERS [catlip train arguments...]
#       e.g.  deploy/mpirun.sh 2 -c configs/quickstart.yaml --set train.steps=200
#
# - Binding: mpirun binds nothing (--bind-to none); catlip binds each worker's compute threads
#   itself with hwloc, worker on local rank r to cores r*T .. r*T+T-1 (mod the core count), so
#   workers get distinct cores and the coordinator (local rank 0, asleep in its event loop) has
#   none of its own.
# - Threads: T = cores / WORKERS (at least 1) as train.threads, unless the arguments set
#   train.threads (a config file given with -c that sets it wins too: it is read after).
# - --oversubscribe only when WORKERS + 1 ranks exceed the cores (mpirun's slots).
# - --allow-run-as-root only when run as root.
# Environment: CATLIP (the binary; default: catlip on PATH, else build/catlip of this
# checkout), MPIRUN_ARGS (more mpirun options), DRY_RUN=1 (print the command, run nothing).
# SIGUSR1/SIGTERM to this script reach mpirun (exec), which passes them to every rank:
# catlip checkpoints at the next step boundary and exits 0; rerun with --resume auto.
set -euo pipefail

usage() { echo "usage: deploy/mpirun.sh WORKERS [catlip train arguments...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
workers=$1
shift
case $workers in '' | *[!0-9]* | 0) echo "mpirun.sh: WORKERS must be a positive integer, got '$workers'" >&2; exit 2 ;; esac

here=$(cd "$(dirname "$0")" && pwd)
catlip=${CATLIP:-}
if [ -z "$catlip" ]; then
    if command -v catlip >/dev/null; then catlip=$(command -v catlip)
    elif [ -x "$here/../build/catlip" ]; then catlip=$(cd "$here/.." && pwd)/build/catlip
    else echo "mpirun.sh: no catlip binary: set CATLIP=/path/to/catlip or put catlip on PATH" >&2; exit 2
    fi
fi
[ -x "$catlip" ] || { echo "mpirun.sh: $catlip is not an executable" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "mpirun.sh: mpirun not found (apt-get install openmpi-bin)" >&2; exit 2; }

# Physical cores this process may use (its cpuset), as catlip's thread pool counts them.
cores_available() {
    local list cpu lo hi
    list=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status 2>/dev/null)
    if [ -z "$list" ] || [ ! -r /sys/devices/system/cpu/cpu0/topology/core_id ]; then
        nproc
        return
    fi
    for range in ${list//,/ }; do
        lo=${range%-*} hi=${range#*-}
        for ((cpu = lo; cpu <= hi; cpu++)); do
            echo "$(cat /sys/devices/system/cpu/cpu$cpu/topology/physical_package_id 2>/dev/null)" \
                 "$(cat /sys/devices/system/cpu/cpu$cpu/topology/core_id 2>/dev/null)"
        done
    done | sort -u | wc -l
}
cores=$(cores_available)
[ "$cores" -ge 1 ] 2>/dev/null || cores=1
ranks=$((workers + 1))

opts=(-n "$ranks" --bind-to none)
[ "$ranks" -gt "$cores" ] && opts+=(--oversubscribe)
[ "$(id -u)" = 0 ] && opts+=(--allow-run-as-root)
# shellcheck disable=SC2206  # MPIRUN_ARGS is a list of options
[ -n "${MPIRUN_ARGS:-}" ] && opts+=(${MPIRUN_ARGS})

train=()
if ! printf '%s\n' "$@" | grep -q 'train\.threads='; then
    threads=$((cores / workers))
    [ "$threads" -ge 1 ] || threads=1
    train+=(--set "train.threads=$threads")
fi

cmd=(mpirun "${opts[@]}" "$catlip" train "${train[@]}" "$@")
if [ -n "${DRY_RUN:-}" ]; then
    printf '%q ' "${cmd[@]}"
    echo
    exit 0
fi
exec "${cmd[@]}"
