#!/bin/sh
# One fuzz target in ctest: replay the seeds and the regression inputs (every one must pass),
# then fuzz for SECONDS more from a scratch copy of the seeds. Any crash, sanitizer report,
# leak, timeout (-timeout) or memory blow-up (-rss_limit_mb / -malloc_limit_mb) fails the test;
# the input that did it is left in WORK/ and named in the output.
#   run_fuzz.sh FUZZER SEEDS_DIR REGRESSIONS_DIR WORK_DIR SECONDS
set -eu
FUZZER=$1 SEEDS=$2 REGRESSIONS=$3 WORK=$4 SECONDS=$5
if [ ! -x "$FUZZER" ]; then
  echo "fuzz: $FUZZER was not built (the fuzz.build test builds it; it needs clang)" >&2
  exit 1
fi
rm -rf "$WORK"
mkdir -p "$WORK/corpus"
# A target with no regression inputs yet has no folder in git.
[ -d "$REGRESSIONS" ] || REGRESSIONS=$WORK/corpus
[ -d "$SEEDS" ] || { echo "fuzz: no seeds at $SEEDS (the fuzz.seeds test writes them)" >&2; exit 1; }
OPTS="-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=5 -artifact_prefix=$WORK/"
# tests/fuzz/<target>.dict: tokens the fuzzer cannot see being compared (inside libraries
# built without coverage, such as jansson).
DICT=$(dirname "$0")/$(basename "$FUZZER" | sed 's/^fuzz_//').dict
[ -f "$DICT" ] && OPTS="$OPTS -dict=$DICT"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
echo "== replaying $SEEDS and $REGRESSIONS"
"$FUZZER" $OPTS -runs=0 "$SEEDS" "$REGRESSIONS" > "$WORK/replay.log" 2>&1 || {
  tail -n 40 "$WORK/replay.log"; echo "fuzz: replay of seeds/regressions failed: see $WORK/replay.log"; exit 1; }
tail -n 2 "$WORK/replay.log"
echo "== fuzzing for $SECONDS s"
"$FUZZER" $OPTS -max_total_time="$SECONDS" -print_final_stats=1 "$WORK/corpus" "$SEEDS" "$REGRESSIONS" \
  > "$WORK/fuzz.log" 2>&1 || {
  tail -n 40 "$WORK/fuzz.log"; echo "fuzz: new failure, input saved in $WORK/ (see $WORK/fuzz.log)"; exit 1; }
grep -E '^stat::number_of_executed_units|^Done' "$WORK/fuzz.log" || true
