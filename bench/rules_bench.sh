#!/usr/bin/env bash
# Benchmark of the rules miner (`cvm rules`) on generated FIMI data shaped
# like the public retail set (88,162 baskets, 16,470 items, skewed) and the
# IBM Quest sets T10I4D100K / T10I4D1000K. For each set, minimum support
# (0.1%, 0.05%, 0.01%) and thread count (1, 2): wall time, peak memory
# (/usr/bin/time), itemsets, rules (confidence >= 0.5, redundant ones pruned;
# the best 10,000 are written) and rules per second of rule generation,
# median of REPEAT runs. Wall time includes reading the file and writing
# rules.csv and itemsets.csv.
#
#   bench/rules_bench.sh [BUILD_DIR] [DATA_DIR]
#   REPEAT=3 SETS="retail t10i4d100k t10i4d1000k" SUPPORTS="0.1% 0.05% 0.01%" bench/rules_bench.sh build
#
# BUILD_DIR (default build/) must hold a Release build of cvm (its static
# libraries); DATA_DIR (default /tmp/cvm-rules-bench) receives the data files
# (generated once, seeded: the same bytes every time) and the outputs.
# Prints a Markdown table; bench/results-rules.md records a run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
data=${2:-/tmp/cvm-rules-bench}
repeat=${REPEAT:-3}
sets=${SETS:-"retail t10i4d100k t10i4d1000k"}
supports=${SUPPORTS:-"0.1% 0.05% 0.01%"}
threads=${THREADS:-"1 2"}
mkdir -p "$data"

# The driver: `cvm rules` plus the generators, linked against the build.
bin="$data/rules_bench"
gcc -O2 -fopenmp -I"$src/engine" -I"$src/models" -I"$src/jobs" "$here/rules_bench.c" -o "$bin" \
    "$build/libcvm_jobs.a" "$build/libcvm_models.a" "$build/libcvm_engine.a" \
    $(pkg-config --libs gsl yaml-0.1 jansson) -lcsv -lm

gen() {
    local name=$1 f="$data/$1.dat"
    [ -s "$f" ] && return 0
    case $name in
    retail) "$bin" retail 88162 16470 1 "$f" ;;
    t10i4d100k) "$bin" quest 100000 10 4 2000 1000 1 "$f" ;;
    t10i4d1000k) "$bin" quest 1000000 10 4 2000 1000 2 "$f" ;;
    *) echo "unknown set $name" >&2; exit 2 ;;
    esac
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "machine: $(nproc) cores, $(uname -m); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| set | baskets | items | min support | count | threads | wall s | read+mine s | peak MB | itemsets | rules | rules/s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for set in $sets; do
    gen "$set"
    for sup in $supports; do
        for t in $threads; do
            walls=() mines=() peaks=() line=""
            for ((r = 0; r < repeat; r++)); do
                out="$data/out-$set"
                if ! /usr/bin/time -f "TIME %e %M" "$bin" rules --baskets "$data/$set.dat" \
                        --min-support "$sup" --max-len 0 --min-confidence 0.5 --max-rules 10000 \
                        --max-itemsets 50000000 --threads "$t" --out "$out" 2> "$data/err"; then
                    line="failed: $(head -c 300 "$data/err")"
                    break
                fi
                line=$(grep '^cvm rules:' "$data/err")
                tm=$(grep '^TIME' "$data/err")
                walls+=("$(echo "$tm" | cut -d' ' -f2)")
                peaks+=("$(echo "$tm" | awk '{printf "%.0f", $3 / 1024}')")
                rd=$(echo "$line" | sed -E 's/.*read ([0-9.]+) s.*/\1/')
                mn=$(echo "$line" | sed -E 's/.*mine ([0-9.]+) s.*/\1/')
                mines+=("$(echo "$rd $mn" | awk '{printf "%.3f", $1 + $2}')")
            done
            if [[ $line == failed* ]]; then
                echo "| $set | | | $sup | | $t | $line | | | | | |"
                continue
            fi
            nb=$(echo "$line" | sed -E 's/cvm rules: ([0-9]+) baskets.*/\1/')
            ni=$(echo "$line" | sed -E 's/.*baskets, ([0-9]+) items.*/\1/')
            mc=$(echo "$line" | sed -E 's/.*min count ([0-9]+):.*/\1/')
            nis=$(echo "$line" | sed -E 's/.*: ([0-9]+) itemsets.*/\1/')
            nr=$(echo "$line" | sed -E 's/.*\(([0-9]+) passing\);.*/\1/')
            rt=$(echo "$line" | sed -E 's/.*rules ([0-9.]+) s,.*/\1/')
            rps=$(echo "$nr $rt" | awk '{ if ($2 > 0) printf "%.0f", $1 / $2; else print "-" }')
            w=$(printf '%s\n' "${walls[@]}" | median)
            m=$(printf '%s\n' "${mines[@]}" | median)
            p=$(printf '%s\n' "${peaks[@]}" | median)
            echo "| $set | $nb | $ni | $sup | $mc | $t | $w | $m | $p | $nis | $nr | $rps |"
        done
    done
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
