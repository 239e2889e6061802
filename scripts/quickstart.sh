#!/usr/bin/env bash
# Quick start, step 1: install, build, and run the sample nightly job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target cvm
run_dir=$(build/cvm run jobs/nightly.yaml --out out)
echo
echo "Outputs of the sample nightly job are in: $run_dir (also out/latest)"
ls -l "$run_dir"
