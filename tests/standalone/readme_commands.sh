#!/usr/bin/env bash
# The README's two set-up commands, each standing alone, in either order, in fresh clones of
# this repository (committed HEAD): not part of ctest (it runs the whole suite twice and the
# full quickstart: about 45 minutes on 2 cores). Run as root on a Debian 12 machine.
#
#   tests/standalone/readme_commands.sh [WORK_DIR]
#
#   1. a fresh clone: ./deploy/quickstart.sh, then ./deploy/test.sh   (quickstart first)
#   2. a fresh clone: ./deploy/test.sh alone                          (nothing run before)
#   3. in clone 2: ./deploy/quickstart.sh --skip-install              (tests first, then quickstart)
# Each must exit 0; prints one line per step and the log paths.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d /var/tmp/catlip-readme.XXXXXX)}
mkdir -p "$work"
failed=0
step() {  # step NAME DIR COMMAND...
    local name=$1 dir=$2; shift 2
    local t0=$SECONDS
    if (cd "$dir" && "$@") >"$work/$name.log" 2>&1; then
        echo "ok   $name ($((SECONDS - t0)) s): $*"
    else
        echo "FAIL $name ($((SECONDS - t0)) s, exit $?): $*  -- see $work/$name.log"
        tail -5 "$work/$name.log"
        failed=1
    fi
}
rm -rf "$work/a" "$work/b"
git clone -q "$repo" "$work/a" && git clone -q "$repo" "$work/b" || exit 1
step 1-quickstart "$work/a" ./deploy/quickstart.sh
step 1-test-after-quickstart "$work/a" ./deploy/test.sh
step 2-test-alone "$work/b" ./deploy/test.sh
step 3-quickstart-after-test "$work/b" ./deploy/quickstart.sh --skip-install
echo "logs: $work"
[ $failed = 0 ] && echo "readme_commands: PASS" || echo "readme_commands: FAIL"
exit $failed
