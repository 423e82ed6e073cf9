#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a training run:
# install dependencies, build, and train the quickstart configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then ./deploy/install-deps.sh; else sudo ./deploy/install-deps.sh; fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
./build/catlip train -c configs/quickstart.yaml "$@"
