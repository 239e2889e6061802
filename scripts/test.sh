#!/usr/bin/env bash
# Quick start, step 2: install, build and run the whole test suite.
# --sanitize: the same suite built with AddressSanitizer + UBSan.
# --fuzz N: also build the libFuzzer targets (clang) and fuzz each for N s.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
dir=build
flags=(-DCMAKE_BUILD_TYPE=Release -DCVM_WERROR=ON)
fuzz=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DCVM_WERROR=ON -DCVM_SANITIZE=ON) ;;
    --fuzz) fuzz="$2"; shift ;;
    *) echo "usage: scripts/test.sh [--sanitize] [--fuzz SECONDS]" >&2; exit 2 ;;
  esac
  shift
done
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
(cd "$dir" && ctest --output-on-failure -j2)
if [ "$fuzz" != 0 ]; then
  CC=clang cmake -S . -B build-fuzz -DCVM_FUZZ=ON -DCVM_TESTS=OFF -DCVM_OPENMP=OFF >/dev/null
  cmake --build build-fuzz -j"$(nproc)"
  for t in build-fuzz/fuzz_*; do
    name=$(basename "$t"); corpus="tests/fuzz/corpus_${name#fuzz_}"
    work=$(mktemp -d); cp -r "$corpus"/. "$work"/ 2>/dev/null || true
    echo "fuzzing $name for $fuzz s"
    "$t" -max_total_time="$fuzz" -timeout=10 "$work" 2>&1 | tail -3
    rm -rf "$work"
  done
fi
