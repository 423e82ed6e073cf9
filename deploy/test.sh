#!/usr/bin/env bash
# Every test, from a fresh Debian 12 machine or any state of this checkout: install the Debian
# packages the build and the tests need (deploy/debian-packages.txt), configure, build every
# target (not only catlip: the tests have their own programs), and run the whole ctest suite.
# CI runs exactly this (.ci/run).
#
#   deploy/test.sh                    everything (about 15 minutes on 2 cores)
#   deploy/test.sh --skip-install     packages already installed
#   deploy/test.sh [--build-dir DIR] [-- CTEST_ARGS...]   e.g. -- -R 'unit\.' to run a subset
#
# As root it allows Open MPI to run as root (the integration and SLURM tests launch mpirun).
set -euo pipefail
cd "$(dirname "$0")/.."

install=1 build_dir=build
while [ $# -gt 0 ]; do
    case "$1" in
        --skip-install) install=0 ;;
        --build-dir) build_dir=$2; shift ;;
        --) shift; break ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "test.sh: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
    esac
    shift
done

if [ $install = 1 ]; then
    if [ "$(id -u)" -eq 0 ]; then ./deploy/install-deps.sh; else sudo ./deploy/install-deps.sh; fi
fi
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCATLIP_WERROR=ON -DCATLIP_TESTS=ON
cmake --build "$build_dir" -j"$(nproc)"
# Two tests at a time (one per core here): the suite's serial time grew past 15 minutes.
# Timing-sensitive tests (integration.*, hosts.*) are RUN_SERIAL and still run alone.
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" "$@"
