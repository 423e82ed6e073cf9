#!/bin/bash
# A multi-host test bed on one machine: hosts as Linux network + UTS (+ mount) namespaces.
#
#   tests/hosts/bed.sh up [--hosts N] [--rate RATE] [--slurm]
#                                                     N compute hosts node1..nodeN (default 3)
#                                                     plus a head host; RATE: tbf rate of every
#                                                     host's link (100mbit, 1gbit, ...) or
#                                                     unlimited (default); --slurm: a SLURM
#                                                     cluster on it (munged and slurmctld on
#                                                     head, one slurmd per node)
#   tests/hosts/bed.sh sl CMD [ARGS...]               a SLURM client command (sbatch, scontrol,
#                                                     ...) on head against the bed's cluster
#   tests/hosts/bed.sh rate RATE                      change the link rate of a running bed
#   tests/hosts/bed.sh exec HOST CMD [ARGS...]        run CMD on HOST (head, node1, ...)
#   tests/hosts/bed.sh rsh HOST WORDS...              Open MPI's rsh agent: WORDS through sh -c
#   tests/hosts/bed.sh reboot HOST                    HOST comes back after `kill`: fresh /tmp,
#                                                     its slurmd started again
#   tests/hosts/bed.sh pids HOST                      the pids of every process on HOST
#   tests/hosts/bed.sh kill HOST                      SIGKILL every process on HOST (host death)
#   tests/hosts/bed.sh down                           kill every process on the bed, remove it
#   tests/hosts/bed.sh hosts                          the compute hosts, one a line
#
# Must run as root. State lives in $CATLIP_BED (default /var/tmp/catlip-bed): the settings, a
# generated /etc/hosts, each host's private /tmp (h/HOST/tmp), and `rsh`, the agent to give
# mpirun (--mca plm_rsh_agent "$CATLIP_BED/rsh"). Everything outside /tmp (the build tree,
# /var/tmp) is the hosts' shared filesystem, as a cluster's home or project file system.
#
# Network: a "switch" namespace holds a bridge; each host namespace has eth0, one end of a veth
# pair whose other end is a port of that bridge, addressed in $CATLIP_BED_NET (default
# 10.77.31.0/24: head .1, nodeK .(10+K)) and nothing else (no route out of the bed). The host
# names resolve through a bed-generated /etc/hosts bound over /etc/hosts on every host. A
# rate limit is a tbf qdisc on the egress of every host's eth0 and of every bridge port (so
# each direction of each link is limited once).
#
# A command on a host runs under `nsenter --net` into the host's namespace, inside a fresh
# `unshare --uts --mount` (not `ip netns exec`, which remounts /sys: slurmd would lose its
# cgroups) that sets the hostname and binds the host's /tmp and /etc/hosts. Processes are not
# in a PID namespace: the bed tells a host's processes by their network namespace.
#
# SLURM (--slurm): auth/munge with a key generated here, munged and slurmctld on head, slurmd
# -N nodeK on each node (its own hostname, /tmp and spool), one NodeName line per node with
# this machine's CPU layout (slurmd -C), TaskPlugin=task/affinity (each task bound to the CPUs
# it was given; no cgroups needed), proctrack/linuxproc, select/cons_tres CR_Core, MpiDefault
# none (the batch script asks for pmix). Config, state, spool, logs under $CATLIP_BED/slurm.
#
# Names: namespaces "catlip-bed-*", switch ports "clb-*". `up` first removes any leftover bed
# (a crashed run), `down` removes everything, also what a crashed run left.
set -u

S=${CATLIP_BED:-/var/tmp/catlip-bed}
PREFIX=catlip-bed-
NET=${CATLIP_BED_NET:-10.77.31.0/24}
here=$(cd "$(dirname "$0")" && pwd)
self=$here/$(basename "$0")

die() { echo "bed.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root (it creates namespaces, veths and a bridge)"

base=${NET%.*}          # 10.77.31
[ "${NET#*/}" = 24 ] && [ -n "$base" ] || die "CATLIP_BED_NET must be a /24, got $NET"

addr_of() {  # addr_of HOST
    case $1 in
        head) echo "$base.1" ;;
        node*) echo "$base.$((10 + ${1#node}))" ;;
        *) return 1 ;;
    esac
}

# Every namespace of a bed, running or left by a crashed run.
bed_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX" || true; }

netns_pids() {  # the pids whose network namespace is /run/netns/NAME
    [ -e "/run/netns/$1" ] && ip netns pids "$1" 2>/dev/null
    return 0
}

tbf() {  # tbf NETNS DEV RATE
    tc -n "$1" qdisc del dev "$2" root 2>/dev/null
    [ "$3" = unlimited ] && return 0
    # burst: 4 ms at the rate (at least 64 KiB, a TSO frame); at most 50 ms of queue.
    local bits
    bits=$(tc_bits "$3") || die "cannot read rate '$3' (e.g. 100mbit, 1gbit, unlimited)"
    local burst=$((bits / 8 / 250))
    [ "$burst" -ge 65536 ] || burst=65536
    tc -n "$1" qdisc add dev "$2" root tbf rate "$3" burst "$burst" latency 50ms ||
        die "tc qdisc add tbf on $2 in $1 failed"
}

tc_bits() {  # 100mbit -> 100000000
    local n unit
    n=$(sed -n 's/^\([0-9][0-9]*\).*/\1/p' <<<"$1") unit=$(sed 's/^[0-9]*//' <<<"$1" | tr A-Z a-z)
    [ -n "$n" ] || return 1
    case $unit in
        bit) echo "$n" ;; kbit) echo $((n * 1000)) ;; mbit) echo $((n * 1000000)) ;;
        gbit) echo $((n * 1000000000)) ;; *) return 1 ;;
    esac
}

hosts_of_bed() { [ -f "$S/hosts.list" ] && cat "$S/hosts.list"; }

cmd_down() {
    local ns p
    for ns in $(bed_netns); do
        for _ in 1 2 3 4 5; do
            p=$(netns_pids "$ns")
            [ -z "$p" ] && break
            # shellcheck disable=SC2086
            kill -KILL $p 2>/dev/null
            sleep 0.2
        done
    done
    for ns in $(bed_netns); do ip netns del "$ns" 2>/dev/null; done
    # veth ends left in the root namespace by an `up` that died half way
    for p in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^clb-'); do
        ip link del "$p" 2>/dev/null
    done
    [ -d "$S/h" ] && rm -rf "$S/h"
    rm -f "$S/hosts.list" "$S/etc-hosts" "$S/rate" "$S/rsh"
    [ -d "$S/slurm" ] && [ -z "${CATLIP_BED_KEEP:-}" ] && rm -rf "$S/slurm"
    return 0
}

cmd_up() {
    local n=3 rate=unlimited slurm=
    while [ $# -gt 0 ]; do
        case $1 in
            --slurm) slurm=1; shift ;;
            --hosts) n=$2; shift 2 ;;
            --rate) rate=$2; shift 2 ;;
            *) die "up: unknown option $1" ;;
        esac
    done
    case $n in '' | *[!0-9]*) die "--hosts must be a number" ;; esac
    [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "--hosts between 1 and 200"
    [ "$rate" = unlimited ] || tc_bits "$rate" >/dev/null || die "bad --rate '$rate'"
    for b in ip tc nsenter unshare; do command -v $b >/dev/null || die "$b not found (iproute2, util-linux)"; done
    # The bed's subnet must be one that nothing on this machine uses.
    if ip -o addr show | grep -v " ${PREFIX}" | grep -q " inet $base\."; then
        cmd_down
        ip -o addr show | grep -q " inet $base\." &&
            die "subnet $NET is in use on this machine: set CATLIP_BED_NET to a free /24"
    fi
    cmd_down   # leftovers of a crashed run
    mkdir -p "$S/h"
    chmod 755 "$S"
    local sw=${PREFIX}switch
    ip netns add "$sw" || die "ip netns add $sw failed"
    ip -n "$sw" link add br0 type bridge || die "cannot create a bridge"
    ip -n "$sw" link set br0 up
    ip -n "$sw" link set lo up
    {
        echo "127.0.0.1 localhost"
        echo "::1 localhost ip6-localhost ip6-loopback"
    } >"$S/etc-hosts"
    : >"$S/hosts.list"
    local h hosts=(head)
    for ((i = 1; i <= n; i++)); do hosts+=("node$i"); done
    for h in "${hosts[@]}"; do
        local ns=$PREFIX$h port=clb-$h
        ip netns add "$ns" || die "ip netns add $ns failed"
        ip link add "$port" type veth peer name eth0 netns "$ns" || die "veth for $h failed"
        ip link set "$port" netns "$sw" || die "moving $port to the switch failed"
        ip -n "$sw" link set "$port" master br0 || die "bridge port $port failed"
        ip -n "$sw" link set "$port" up
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "$(addr_of "$h")/24" dev eth0
        ip -n "$ns" link set eth0 up
        mkdir -p "$S/h/$h/tmp"
        chmod 1777 "$S/h/$h/tmp"
        echo "$(addr_of "$h") $h" >>"$S/etc-hosts"
        [ "$h" = head ] || echo "$h" >>"$S/hosts.list"
    done
    printf '#!/bin/sh\n# Open MPI rsh agent of the catlip test bed: HOST WORDS...\nexec %q rsh "$@"\n' \
        "$self" >"$S/rsh"
    chmod 755 "$S/rsh"
    cmd_rate "$rate"
    # Wait for every bridge port to forward (without STP at once, but the link comes up async).
    for h in "${hosts[@]}"; do
        local ok=
        for _ in $(seq 50); do
            bridge -n "$sw" link show dev "clb-$h" 2>/dev/null | grep -q 'state forwarding' &&
                ip -n "$PREFIX$h" link show eth0 | grep -q LOWER_UP && { ok=1; break; }
            sleep 0.1
        done
        [ -n "$ok" ] || die "the link of $h did not come up"
    done
    echo "bed.sh: up: head + $n host(s) on $NET, rate $rate, state in $S"
    [ -z "$slurm" ] || slurm_up
}

slurm_up() {
    local d=$S/slurm h hw
    for b in munged slurmctld slurmd sinfo; do
        command -v $b >/dev/null || die "$b not found: apt-get install munge slurmctld slurmd slurm-client"
    done
    rm -rf "$d"
    mkdir -p "$d/munge" "$d/ctld" "$d/log"
    chmod 700 "$d/munge"
    dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 2>/dev/null
    chmod 400 "$d/munge/munge.key"
    "$self" exec head munged --force --key-file="$d/munge/munge.key" --socket="$d/munge/munge.sock" \
        --pid-file="$d/munge/munged.pid" --log-file="$d/log/munged.log" --seed-file="$d/munge/seed" ||
        die "munged did not start"
    # This machine's layout (sockets, cores, threads, memory), given to every node.
    hw=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')
    case $hw in CPUs=*) ;; *) die "slurmd -C printed '$hw'" ;; esac
    {
        echo "# Generated by tests/hosts/bed.sh: the bed's cluster (head + $(hosts_of_bed | wc -l) nodes)."
        echo "ClusterName=catlip-bed"
        echo "SlurmctldHost=head($(addr_of head))"
        echo "SlurmctldPort=6817"
        echo "SlurmdPort=6818"
        echo "SlurmUser=root"
        echo "SlurmdUser=root"
        echo "AuthType=auth/munge"
        echo "CredType=cred/munge"
        echo "# cred_expire: a requeued job waits this long (default 120 s) before it may start again."
        echo "AuthInfo=socket=$d/munge/munge.sock,cred_expire=10"
        echo "StateSaveLocation=$d/ctld"
        echo "SlurmdSpoolDir=$d/spool-%n"
        echo "SlurmctldPidFile=$d/slurmctld.pid"
        echo "SlurmdPidFile=$d/slurmd-%n.pid"
        echo "SlurmctldLogFile=$d/log/slurmctld.log"
        echo "SlurmdLogFile=$d/log/slurmd-%n.log"
        echo "SlurmctldDebug=info"
        echo "SlurmdDebug=info"
        echo "ProctrackType=proctrack/linuxproc"
        echo "TaskPlugin=task/affinity"
        echo "SelectType=select/cons_tres"
        echo "SelectTypeParameters=CR_Core"
        echo "SchedulerType=sched/backfill"
        echo "SchedulerParameters=bf_interval=1,sched_interval=1"
        echo "MpiDefault=none"
        echo "ReturnToService=2"
        echo "# A killed host is DOWN after this long; the tests mark it down themselves, so that"
        echo "# SLURM's own node-failure handling does not hide how catlip copes with the loss."
        echo "SlurmdTimeout=300"
        echo "JobCompType=jobcomp/none"
        echo "AccountingStorageType=accounting_storage/none"
        echo "JobAcctGatherType=jobacct_gather/none"
        echo "MailProg=/bin/true"
        echo "KillWait=10"
        echo "MinJobAge=600"
        for h in $(hosts_of_bed); do echo "NodeName=$h NodeAddr=$(addr_of "$h") $hw State=UNKNOWN"; done
        echo "PartitionName=bed Nodes=$(hosts_of_bed | paste -sd,) Default=YES MaxTime=INFINITE State=UP"
    } >"$d/slurm.conf"
    SLURM_CONF=$d/slurm.conf "$self" exec head slurmctld -D -f "$d/slurm.conf" >"$d/log/slurmctld.stderr" 2>&1 &
    for h in $(hosts_of_bed); do start_slurmd "$h"; done
    local idle=
    for _ in $(seq 240); do
        idle=$(cmd_sl sinfo -h -o '%t %D' 2>/dev/null)
        [ "$idle" = "idle $(hosts_of_bed | wc -l)" ] && break
        sleep 0.25
    done
    [ "$idle" = "idle $(hosts_of_bed | wc -l)" ] ||
        die "the nodes did not all become idle within 60 s (sinfo: '$idle'; logs in $d/log)"
    echo "bed.sh: SLURM up: slurmctld on head, slurmd on $(hosts_of_bed | paste -sd' '); SLURM_CONF=$d/slurm.conf"
}

start_slurmd() {  # start_slurmd HOST
    local d=$S/slurm
    SLURM_CONF=$d/slurm.conf setsid "$self" exec "$1" slurmd -D -f "$d/slurm.conf" -N "$1" \
        >>"$d/log/slurmd-$1.stderr" 2>&1 </dev/null &
}

cmd_sl() {  # a SLURM client on head
    [ -f "$S/slurm/slurm.conf" ] || die "no SLURM cluster on the bed (bed.sh up --slurm)"
    ( export SLURM_CONF=$S/slurm/slurm.conf; "$self" exec head "$@" )
}

cmd_rate() {
    local rate=${1:?rate RATE}
    local sw=${PREFIX}switch h
    [ -f "$S/hosts.list" ] || die "no bed is up"
    for h in head $(hosts_of_bed); do
        tbf "$PREFIX$h" eth0 "$rate"
        tbf "$sw" "clb-$h" "$rate"
    done
    echo "$rate" >"$S/rate"
}

cmd_exec() {
    local h=${1:?exec HOST CMD...}
    shift
    [ $# -ge 1 ] || die "exec $h: no command"
    [ -e "/run/netns/$PREFIX$h" ] || die "no host '$h' on the bed (bed.sh up?)"
    exec nsenter --net="/run/netns/$PREFIX$h" -- unshare --uts --mount --propagation private -- \
        /bin/sh -c 'hostname "$1" && mount --bind "$2" /tmp && mount --bind "$3" /etc/hosts &&
                    shift 3 && exec "$@"' sh "$h" "$S/h/$h/tmp" "$S/etc-hosts" "$@"
}

case ${1:-} in
    up) shift; cmd_up "$@" ;;
    down) cmd_down ;;
    rate) shift; cmd_rate "$@" ;;
    exec) shift; cmd_exec "$@" ;;
    sl) shift; cmd_sl "$@" ;;
    reboot)
        # A host that comes back: nothing of it runs any more, its /tmp and slurmd spool are
        # empty (a reboot clears them; stale PMIx sockets there break the next job step).
        h=${2:?reboot HOST}
        [ -e "/run/netns/$PREFIX$h" ] || die "no host '$h' on the bed"
        for _ in 1 2 3 4 5; do
            p=$(netns_pids "$PREFIX$h")
            [ -z "$p" ] && break
            # shellcheck disable=SC2086
            kill -KILL $p 2>/dev/null
            sleep 0.2
        done
        find "$S/h/$h/tmp" -mindepth 1 -delete 2>/dev/null
        if [ -f "$S/slurm/slurm.conf" ]; then
            rm -rf "$S/slurm/spool-$h"
            start_slurmd "$h"
        fi ;;
    rsh)
        # ssh semantics: the words after the host are one command line for the remote shell.
        shift
        h=${1:?rsh HOST WORDS...}
        shift
        cmd_exec "$h" /bin/sh -c "$*" ;;
    pids) netns_pids "$PREFIX${2:?pids HOST}" ;;
    kill)
        p=$(netns_pids "$PREFIX${2:?kill HOST}")
        # shellcheck disable=SC2086
        [ -n "$p" ] && kill -KILL $p 2>/dev/null
        exit 0 ;;
    hosts) hosts_of_bed ;;
    *) sed -n '2,30p' "$0" >&2; exit 2 ;;
esac
