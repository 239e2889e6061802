#!/usr/bin/env bash
# cvm k-means against scikit-learn's KMeans on the same scaled matrix, same k, n_init, tol,
# max_iter and seed: wall time of the fit and final inertia.
#
# Usage: bench/kmeans_bench.sh [--sizes 100000,1000000] [--runs 3] [--k 8] [--d 8]
#                              [--n-init 10] [--tol 1e-4] [--threads 1,2] [--seed 1]
#                              [--build DIR] [--no-install] [--out FILE]
#
#   --sizes N1,N2   rows of the generated matrices (default 100000,1000000)
#   --runs N        runs of every configuration; the table shows the median (default 3)
#   --threads T,..  thread counts for both tools (default 1,2)
#   --build DIR     cvm build directory holding libcvm_models.a and libcvm_engine.a
#                   (default /tmp/build-kmeans; configured and built if missing)
#   --no-install    do not apt-get install python3-sklearn when it is missing
#   --out FILE      results file (default bench/results-kmeans.md)
#
# The bench program (bench/kmeans_bench.c) is compiled against the build directory's static
# libraries. It writes the matrix (k Gaussian blobs, unit sd, centres N(0, 5^2), every column
# z-scored) as CSV with %.17g, and both tools read that file, so they cluster the same doubles.
# Both time the fit only (sklearn: KMeans(...).fit(X); cvm: cvm_kmeans_fit), not the CSV
# parsing. sklearn runs algorithm=lloyd, its default; cvm runs algorithm=auto (Hamerly here).
# Runs are interleaved (run 1 of every configuration, then run 2, ...) so that a noisy spell
# of the shared machine does not hit one tool only; `uptime` load averages are recorded.
set -euo pipefail

die() { echo "bench/kmeans_bench.sh: error: $*" >&2; exit 1; }
note() { echo "bench/kmeans_bench.sh: $*" >&2; }

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
SIZES="100000,1000000"
RUNS=3
K=8
D=8
N_INIT=10
TOL=1e-4
MAX_ITER=300
THREADS="1,2"
SEED=1
BUILD=/tmp/build-kmeans
INSTALL=1
OUT="$BENCH_DIR/results-kmeans.md"
PEERS="${PEERS_DIR:-}"
[ -n "$PEERS" ] || { [ -d "$REPO/../shared/peers" ] && PEERS="$REPO/../shared/peers" || PEERS=/work/shared/peers; }

while [ $# -gt 0 ]; do
    case "$1" in
        --sizes) SIZES="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --k) K="$2"; shift 2 ;;
        --d) D="$2"; shift 2 ;;
        --n-init) N_INIT="$2"; shift 2 ;;
        --tol) TOL="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --seed) SEED="$2"; shift 2 ;;
        --build) BUILD="$2"; shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "bench/kmeans_bench.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

PEER="$PEERS/kmeans_sklearn.py"
[ -f "$PEER" ] || die "no scikit-learn peer at $PEER (set PEERS_DIR)"
if ! /usr/bin/python3 -c 'import sklearn' 2>/dev/null; then
    [ "$INSTALL" = 1 ] || die "python3-sklearn is missing (apt-get install -y python3-sklearn)"
    note "installing python3-sklearn"
    apt-get install -y python3-sklearn >/dev/null || { apt-get update >/dev/null && apt-get install -y python3-sklearn >/dev/null; }
fi

if [ ! -f "$BUILD/libcvm_models.a" ] || [ ! -f "$BUILD/libcvm_engine.a" ]; then
    note "building cvm in $BUILD"
    cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j2 --target cvm_models >/dev/null
fi
WORK="$(mktemp -d /tmp/cvm-kmeans-bench-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
BIN="$WORK/kmeans_bench"
# shellcheck disable=SC2046
gcc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O2 -fopenmp -Wall -Wextra \
    -I"$REPO/models" -I"$REPO/engine" "$BENCH_DIR/kmeans_bench.c" \
    "$BUILD/libcvm_models.a" "$BUILD/libcvm_engine.a" \
    $(pkg-config --cflags --libs gsl jansson yaml-0.1) -lcsv -lm -o "$BIN" \
    || die "cannot build the bench program"

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }

IFS=, read -r -a SIZE_LIST <<< "$SIZES"
IFS=, read -r -a THREAD_LIST <<< "$THREADS"
CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
SKL="$(/usr/bin/python3 -c 'import sklearn, numpy; print(f"scikit-learn {sklearn.__version__}, numpy {numpy.__version__}")')"

{
    echo "# k-means: cvm against scikit-learn"
    echo
    echo "$(date -u +%Y-%m-%d), $(nproc) cores ($CPU), $SKL."
    echo "Matrix: $K Gaussian blobs (unit sd, centres N(0, 5²)) in $D dimensions, columns z-scored, seed $SEED;"
    echo "k $K, n_init $N_INIT, tol $TOL, max_iter $MAX_ITER, the same random seed value for both"
    echo "(the generators differ, so the seedings differ). Time: the fit only, median of $RUNS runs."
    echo "sklearn: algorithm=lloyd (its default); cvm: algorithm=auto. Produced by bench/kmeans_bench.sh."
    echo
} > "$WORK/head.md"

: > "$WORK/rows.md"
for N in "${SIZE_LIST[@]}"; do
    M="$WORK/m$N.csv"
    "$BIN" --gen "$N" --d "$D" --k "$K" --seed "$SEED" --out "$M" || die "cannot generate $M"
    cat "$M" > /dev/null
    LOAD_BEFORE="$(uptime | sed 's/.*load average: //')"
    for r in $(seq 1 "$RUNS"); do
        for T in "${THREAD_LIST[@]}"; do
            /usr/bin/python3 "$PEER" "$M" --k "$K" --n-init "$N_INIT" --tol "$TOL" --max-iter "$MAX_ITER" \
                --seed "$SEED" --threads "$T" >> "$WORK/sk-$N-$T.txt" || die "sklearn failed on $M"
            "$BIN" "$M" --k "$K" --n-init "$N_INIT" --tol "$TOL" --max-iter "$MAX_ITER" --seed "$SEED" \
                --threads "$T" >> "$WORK/cvm-$N-$T.txt" || die "cvm failed on $M"
            note "n=$N threads=$T run $r: sklearn $(tail -1 "$WORK/sk-$N-$T.txt" | field fit_seconds) s," \
                 "cvm $(tail -1 "$WORK/cvm-$N-$T.txt" | field fit_seconds) s"
        done
    done
    LOAD_AFTER="$(uptime | sed 's/.*load average: //')"
    for T in "${THREAD_LIST[@]}"; do
        SK_T="$(field fit_seconds < "$WORK/sk-$N-$T.txt" | median)"
        SK_I="$(field inertia < "$WORK/sk-$N-$T.txt" | head -1)"
        CV_T="$(field fit_seconds < "$WORK/cvm-$N-$T.txt" | median)"
        CV_I="$(field inertia < "$WORK/cvm-$N-$T.txt" | head -1)"
        CV_IT="$(field iterations < "$WORK/cvm-$N-$T.txt" | head -1)"
        SK_IT="$(field iterations < "$WORK/sk-$N-$T.txt" | head -1)"
        RATIO="$(awk -v a="$CV_I" -v b="$SK_I" 'BEGIN {printf "%.6f", a / b}')"
        SPEED="$(awk -v a="$SK_T" -v b="$CV_T" 'BEGIN {printf "%.1f", a / b}')"
        printf '| %s | scikit-learn | %s | %s | %s | 1 | %s | |\n' "$N" "$T" "$SK_T" "$SK_I" "$SK_IT" >> "$WORK/rows.md"
        printf '| %s | cvm | %s | %s | %s | %s | %s | %s× |\n' "$N" "$T" "$CV_T" "$CV_I" "$RATIO" "$CV_IT" "$SPEED" >> "$WORK/rows.md"
    done
    echo "n=$N: load averages before $LOAD_BEFORE, after $LOAD_AFTER" >> "$WORK/loads.txt"
done

{
    cat "$WORK/head.md"
    echo "| n | tool | threads | wall s (fit) | inertia | inertia ratio to sklearn | iterations (best run) | speed-up |"
    echo "|---|---|---|---|---|---|---|---|"
    cat "$WORK/rows.md"
    echo
    echo "Load (uptime, 1/5/15 min):"
    echo
    sed 's/^/- /' "$WORK/loads.txt"
    echo
    echo "The machine is shared: with a load above its 2 cores, the 2-thread times of both tools"
    echo "include waits for preempted threads (scikit-learn's OpenMP loops synchronise often, cvm"
    echo "runs whole restarts per thread). Compare ratios within one run, not absolute times."
    echo
    echo "Raw lines (every run):"
    echo
    echo '```'
    for f in "$WORK"/sk-*.txt "$WORK"/cvm-*.txt; do
        echo "# $(basename "$f" .txt)"
        cat "$f"
    done
    echo '```'
} > "$OUT"
cat "$OUT"
