#!/bin/bash
# The multi-host test bed itself (tests/hosts/bed.sh): hosts with their own names, addresses
# and /tmp, joined by a bridge and nothing else; tbf rate limits that hold; teardown that
# leaves nothing; a second `up` over a crashed bed.
#
#   tests/hosts/bed_test.sh CATLIP_BINARY SOURCE_DIR        (as root)
set -u
name=bed_test
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# A crashed run's leftovers: a half-made bed (a namespace and a stray switch port).
ip netns add catlip-bed-node1 2>/dev/null
ip link add clb-stray type veth peer name clb-stray2 2>/dev/null
"$bed" up --hosts 3 --rate 1gbit || fatal "bed.sh up failed"
check "$([ -z "$(ip -o link show | grep -E ': clb-stray')" ]; echo $?)" "up removed a crashed bed's leftovers"

hosts=$("$bed" hosts | paste -sd' ')
check "$([ "$hosts" = "node1 node2 node3" ]; echo $?)" "three hosts: $hosts"
for h in node1 node2 node3; do
    got=$("$bed" exec "$h" sh -c 'echo "$(hostname) $(ip -4 -o addr show dev eth0 | awk "{print \$4}") $(getent hosts node1 | cut -d" " -f1)"')
    n=${h#node}
    check "$([ "$got" = "$h 10.77.31.$((10 + n))/24 10.77.31.11" ]; echo $?)" \
        "$h: own hostname, own address, bed names resolve ('$got')"
    # Only the bed's subnet: no default route, nothing outside reachable.
    routes=$("$bed" exec "$h" ip -4 route show | sed 's/ *$//' | paste -sd';')
    check "$([ "$routes" = "10.77.31.0/24 dev eth0 proto kernel scope link src 10.77.31.$((10 + n))" ]; echo $?)" \
        "$h: one route, the bed's subnet ('$routes')"
done
"$bed" exec node1 sh -c 'echo node1 > /tmp/who'
check "$([ ! -e "$CATLIP_BED/h/node2/tmp/who" ] && [ "$("$bed" exec node2 sh -c 'cat /tmp/who 2>/dev/null || echo none')" = none ] &&
         [ "$(cat "$CATLIP_BED/h/node1/tmp/who")" = node1 ]; echo $?)" "each host has its own /tmp"
check "$("$bed" exec node2 test -r "$T/run.yaml"; echo $?)" "the shared file system ($T) is seen from the hosts"

# Rate limits: a TCP stream node1 -> node2 at each rate.
probe() {  # probe RATE MIB -> Mbit/s
    "$bed" rate "$1"
    "$bed" exec node2 /usr/bin/python3 "$here/netprobe.py" serve 5001 >"$T/probe.out" 2>&1 &
    local srv=$!
    "$bed" exec node1 /usr/bin/python3 "$here/netprobe.py" send node2 5001 "$2" >/dev/null 2>&1
    wait "$srv"
    sed -n 's/.*: \([0-9.]*\) Mbit\/s.*/\1/p' "$T/probe.out" | head -n 1
}
for spec in "100mbit 12 80 101" "1gbit 64 400 1010" "unlimited 64 1100 1000000"; do
    read -r rate mib lo hi <<<"$spec"
    got=$(probe "$rate" "$mib")
    check "$(/usr/bin/python3 -c "import sys; sys.exit(0 if $lo <= float('${got:-0}') <= $hi else 1)"; echo $?)" \
        "rate $rate: measured ${got:-?} Mbit/s (expected $lo..$hi)"
done
tc -n catlip-bed-node1 qdisc show dev eth0 | grep -q noqueue
check $? "unlimited removes the tbf qdisc"
"$bed" rate 100mbit
check "$(tc -n catlip-bed-node1 qdisc show dev eth0 | grep -q 'tbf .*rate 100Mbit' &&
         tc -n catlip-bed-switch qdisc show dev clb-node1 | grep -q 'tbf .*rate 100Mbit'; echo $?)" \
    "tbf on both ends of each link (host eth0 and its switch port)"

# Host death and reboot.
("$bed" exec node3 sleep 600 >/dev/null 2>&1 &)
sleep 0.5
check "$([ -n "$("$bed" pids node3)" ]; echo $?)" "a process on node3 is seen as node3's"
"$bed" kill node3
sleep 0.3
check "$([ -z "$("$bed" pids node3)" ]; echo $?)" "bed.sh kill node3 leaves nothing running on node3"

"$bed" down
check "$([ -z "$(ip netns list | grep catlip-bed-)" ] && [ -z "$(ip -o link show | grep ': clb-')" ]; echo $?)" \
    "down removes every namespace and switch port"
[ "$failures" = 0 ]
