#!/usr/bin/python3
"""A test that cannot run here must show in ctest's summary as Skipped, never as Passed.

Runs ctest (on build/tests, so the outer ctest's log is left alone) over every test that holds a
CPU-specific path, with CATLIP_CPU_DISABLE=avx512,sse42: catlip then behaves as on a CPU without
AVX-512 and SSE4.2. Exactly the tests of those paths must be reported as Skipped, every other
one as Passed, and none may fail. Then the same tests without the mask must all pass or be
skipped only for what this CPU really lacks.

  check_skips.py BUILD_DIR
"""
import os
import re
import subprocess
import sys

# Tests holding a CPU path, and which of them need AVX-512 or SSE4.2.
SELECT = (r"^(unit\.test_kernels|unit\.test_gemm|unit\.test_gemm_bf16|unit\.test_io_crc32c|"
          r"unit\.test_data_transform|reference\.small|reference\.small\.bf16)\.")
# Masking avx512 also masks avx512_bf16 (core/cpu.c), so the bf16 instruction paths skip too.
NEEDS_MASKED = {"unit.test_kernels.avx512", "unit.test_gemm.avx512", "unit.test_io_crc32c.sse42",
                "unit.test_data_transform.avx512", "reference.small.avx512",
                "unit.test_gemm_bf16.avx512_bf16", "reference.small.bf16.avx512_bf16"}
EXPECTED_ALL = NEEDS_MASKED | {"unit.test_kernels.avx2", "unit.test_gemm.openblas", "unit.test_io_crc32c.table",
                               "unit.test_data_transform.scalar", "unit.test_data_transform.avx2",
                               "reference.small.scalar", "reference.small.avx2", "reference.small.openblas",
                               "unit.test_gemm_bf16.emulated", "reference.small.bf16.emulated"}


def run_ctest(build, mask):
    env = dict(os.environ)
    env.pop("CATLIP_CPU_DISABLE", None)
    if mask:
        env["CATLIP_CPU_DISABLE"] = mask
    p = subprocess.run(["ctest", "--test-dir", os.path.join(build, "tests"), "-R", SELECT],
                       env=env, capture_output=True, text=True)
    results = {}
    for m in re.finditer(r"Test +#\d+: (\S+) \.+\s*(\*\*\*)?(\w+)", p.stdout):
        results[m.group(1)] = m.group(3)
    return p, results


def cpu_has(flag):
    with open("/proc/cpuinfo") as f:
        return any(flag in line.split() for line in f if line.startswith("flags"))


def main():
    build = sys.argv[1]
    problems = []
    p, got = run_ctest(build, "avx512,sse42")
    print(p.stdout[-3000:])
    if set(got) != EXPECTED_ALL:
        problems.append(f"ctest ran {sorted(got)}, expected {sorted(EXPECTED_ALL)}")
    for name, status in sorted(got.items()):
        want = "Skipped" if name in NEEDS_MASKED else "Passed"
        if status != want:
            problems.append(f"CATLIP_CPU_DISABLE=avx512,sse42: {name} is {status}, want {want}")
    for name in sorted(NEEDS_MASKED):
        if f"{name} (Skipped)" not in p.stdout:
            problems.append(f"the summary's 'did not run' list lacks '{name} (Skipped)'")

    p, got = run_ctest(build, "")
    lacks = {"unit.test_io_crc32c.sse42"} if not cpu_has("sse4_2") else set()
    if not cpu_has("avx512f"):
        lacks |= {n for n in NEEDS_MASKED if n.endswith("avx512") or n.endswith("avx512_bf16")}
    elif not cpu_has("avx512_bf16"):
        lacks |= {n for n in NEEDS_MASKED if n.endswith("avx512_bf16")}
    for name, status in sorted(got.items()):
        want = "Skipped" if name in lacks else "Passed"
        if status != want:
            problems.append(f"without a mask: {name} is {status}, want {want}")
    print(f"without a mask: {sum(s == 'Passed' for s in got.values())} passed, "
          f"{sum(s == 'Skipped' for s in got.values())} skipped (this CPU lacks {sorted(lacks) or 'nothing'})")

    for pr in problems:
        print("FAIL:", pr)
    print("check_skips:", "FAIL" if problems else "PASS")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
