#!/bin/sh
# Builds a status fuzz target with clang's libFuzzer (+ASan/UBSan) and runs it for a bounded
# time from a small seed corpus; any crash, sanitizer report or trap fails the test.
#   fuzz.sh CLANG SOURCE_DIR BINARY_DIR protobuf|http SECONDS
set -eu
CLANG=$1 SRC=$2 BIN=$3 TARGET=$4 SECONDS=$5
OUT=$BIN/tests/status/fuzz
mkdir -p "$OUT"
EXE=$OUT/fuzz_$TARGET
"$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE \
  -I"$SRC" -I"$SRC/common" -I"$BIN/proto" \
  "$SRC/tests/status/fuzz_$TARGET.c" "$SRC/coordinator/status_protocol.c" "$SRC/coordinator/http_status.c" \
  "$SRC/coordinator/status_render.c" "$SRC/common/io/framing.c" "$SRC/common/core/check.c" \
  "$SRC/common/core/log.c" "$BIN/proto/catlip.pb-c.c" \
  -lhttp_parser -ljansson -lprotobuf-c -lpthread -lm -o "$EXE"
CORPUS=$OUT/corpus_$TARGET
rm -rf "$CORPUS"
mkdir -p "$CORPUS"
if [ "$TARGET" = http ]; then
  printf '\377GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n' > "$CORPUS/metrics"
  printf '\003GET /status HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n' > "$CORPUS/pipelined"
  printf '\000POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc' > "$CORPUS/post"
  printf '\010GET /?a=b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' > "$CORPUS/chunked"
else
  printf '\377\002\012\000' > "$CORPUS/status"          # StatusRequest{}
  printf '\001\004\012\002\010\001' > "$CORPUS/workers"  # StatusRequest{include_workers}
  printf '\377\006\022\004\010\001\022\000' > "$CORPUS/control"  # ControlRequest{CHECKPOINT_NOW, ""}
  printf '\377\200\200\200\200\020' > "$CORPUS/huge"      # a 4 GiB prefix
fi
# -rss_limit_mb bounds memory (ASan's quarantine included); -malloc_limit_mb fails any single
# allocation over 64 MiB: the decoder and parser must never need one.
status=0
"$EXE" -max_total_time="$SECONDS" -rss_limit_mb=1024 -malloc_limit_mb=64 -max_len=65536 -timeout=10 \
  -print_final_stats=1 -artifact_prefix="$OUT/crash_${TARGET}_" "$CORPUS" > "$OUT/log_$TARGET" 2>&1 || status=$?
tail -n 25 "$OUT/log_$TARGET"
[ "$status" -eq 0 ] || echo "fuzz_$TARGET failed (exit $status); the input is in $OUT/crash_${TARGET}_*"
exit "$status"
