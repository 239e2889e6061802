#!/usr/bin/env bash
# cvm benchmark: the ingest + RFM + profit job (bench/rfm_job.yaml) against the same RFM in
# DuckDB (one SQL statement) and pandas, on the same generated transactions file.
#
# Usage: bench/run.sh [--lines 1000000,10000000] [--runs 3] [--customers 100000] [--seed 1]
#                     [--keep] [--regen] [--no-install] [--cvm PATH] [--out FILE]
#
#   --lines L1,L2   data sizes (transaction lines), one table per size (default 1000000,10000000)
#   --runs N        runs of every configuration; the tables show the median wall time (default 3)
#   --customers N   customers in the generated data (default: lines / 100, at least 100, at
#                   most 999999: 10,000 for 1M lines, 100,000 for 10M)
#   --seed S        generator seed (default 1)
#   --keep          keep the work directory (every run's stdout, stderr, summary.json, run dir)
#   --regen         regenerate the data even if a matching file exists
#   --no-install    do not apt-get / npm install anything (fail if something is missing)
#   --cvm PATH      use this cvm binary instead of building one
#   --out FILE      results file (default bench/results-YYYY-MM-DD.md)
#
# Environment: BENCH_BUILD_DIR (default /tmp/cvm-bench-build), BENCH_DATA_DIR (default
# /tmp/cvm-bench-data), DUCKDB_PEER_DIR (default /tmp/duckdb-peer), PEERS_DIR (default
# ../shared/peers next to the repo, else /work/shared/peers), BENCH_TIMEOUT (seconds per run,
# default 1800).
#
# Every configuration is measured as a whole process with /usr/bin/time (wall seconds, peak
# RSS KiB, user and system CPU seconds). The runs are interleaved (run 1 of every configuration, then run 2,
# ...) so that a slow spell of a noisy machine does not hit one tool only. The data file is read
# once before the runs, so every tool reads it from the page cache.
# Exit status: 0 when every run succeeded and cvm's checks equal both peers' on every size,
# 1 otherwise (the results file is written in both cases), 2 on a usage error.
set -euo pipefail

die() { echo "bench/run.sh: error: $*" >&2; exit 1; }
note() { echo "bench/run.sh: $*" >&2; }

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"

LINES_LIST="1000000,10000000"
RUNS=3
CUSTOMERS=""
SEED=1
KEEP=0
REGEN=0
INSTALL=1
CVM=""
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --lines) LINES_LIST="${2:?--lines needs a value}"; shift 2 ;;
    --lines=*) LINES_LIST="${1#*=}"; shift ;;
    --runs) RUNS="${2:?--runs needs a value}"; shift 2 ;;
    --runs=*) RUNS="${1#*=}"; shift ;;
    --customers) CUSTOMERS="${2:?--customers needs a value}"; shift 2 ;;
    --customers=*) CUSTOMERS="${1#*=}"; shift ;;
    --seed) SEED="${2:?--seed needs a value}"; shift 2 ;;
    --seed=*) SEED="${1#*=}"; shift ;;
    --keep) KEEP=1; shift ;;
    --regen) REGEN=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    --cvm) CVM="${2:?--cvm needs a value}"; shift 2 ;;
    --cvm=*) CVM="${1#*=}"; shift ;;
    --out) OUT="${2:?--out needs a value}"; shift 2 ;;
    --out=*) OUT="${1#*=}"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
IFS=',' read -r -a SIZES <<< "$LINES_LIST"
[ ${#SIZES[@]} -gt 0 ] || { echo "bench/run.sh: --lines is empty" >&2; exit 2; }
for n in "${SIZES[@]}" "$RUNS" "${CUSTOMERS:-0}" "$SEED"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "bench/run.sh: '$n' is not a non-negative integer" >&2; exit 2; }
done
[ "$RUNS" -ge 1 ] || { echo "bench/run.sh: --runs must be at least 1" >&2; exit 2; }

BUILD_DIR="${BENCH_BUILD_DIR:-/tmp/cvm-bench-build}"
DATA_ROOT="${BENCH_DATA_DIR:-/tmp/cvm-bench-data}"
export DUCKDB_PEER_DIR="${DUCKDB_PEER_DIR:-/tmp/duckdb-peer}"
TIMEOUT="${BENCH_TIMEOUT:-1800}"
if [ -z "${PEERS_DIR:-}" ]; then
  if [ -f "$REPO/../shared/peers/rfm_pandas.py" ]; then PEERS_DIR="$(cd "$REPO/../shared/peers" && pwd)"
  else PEERS_DIR=/work/shared/peers; fi
fi
PY=/usr/bin/python3
JOB="$BENCH_DIR/rfm_job.yaml"
[ -f "$JOB" ] || die "missing $JOB"
[ -f "$BENCH_DIR/report.py" ] || die "missing $BENCH_DIR/report.py"
[ -f "$PEERS_DIR/rfm_pandas.py" ] || die "peer scripts not found in $PEERS_DIR (set PEERS_DIR)"
[ -f "$PEERS_DIR/rfm_duckdb.mjs" ] || die "missing $PEERS_DIR/rfm_duckdb.mjs"

WORK="$(mktemp -d /tmp/cvm-bench.XXXXXX)"
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  if [ "$KEEP" = 1 ]; then note "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- install
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_missing() {
  local p out=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || out+=("$p")
  done
  echo "${out[@]:-}"
}
# Build dependencies of cvm and the benchmark's own packages (Debian names). Node.js and npm
# count as present when the commands are there (a Node.js from elsewhere ships its own npm, and
# Debian's npm package would conflict with it).
APT_PKGS=(build-essential cmake pkg-config libgsl-dev libcsv-dev libyaml-dev libjansson-dev
          python3 python3-pandas python3-sklearn time)
command -v node > /dev/null || APT_PKGS+=(nodejs)
command -v npm > /dev/null || APT_PKGS+=(npm)
missing="$(apt_missing "${APT_PKGS[@]}")"
if [ -n "$missing" ]; then
  [ "$INSTALL" = 1 ] || die "missing Debian packages: $missing (run without --no-install)"
  note "installing Debian packages: $missing"
  # shellcheck disable=SC2086
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      --no-install-recommends $missing; } > "$WORK/apt.log" 2>&1 \
    || { tail -n 20 "$WORK/apt.log" >&2; die "apt-get install failed ($WORK/apt.log)"; }
fi
[ -x /usr/bin/time ] || die "/usr/bin/time missing (Debian package 'time')"
$PY -c 'import pandas' 2>/dev/null || die "$PY cannot import pandas (Debian package python3-pandas)"
command -v node > /dev/null || die "node missing (Debian package nodejs)"
if ! (cd "$DUCKDB_PEER_DIR" 2>/dev/null && node -e "require('@duckdb/node-api')") > /dev/null 2>&1; then
  [ "$INSTALL" = 1 ] || die "@duckdb/node-api not installed in $DUCKDB_PEER_DIR (run without --no-install)"
  note "installing @duckdb/node-api into $DUCKDB_PEER_DIR"
  mkdir -p "$DUCKDB_PEER_DIR"
  (cd "$DUCKDB_PEER_DIR" && npm install --no-audit --no-fund @duckdb/node-api) > "$WORK/npm.log" 2>&1 \
    || { tail -n 20 "$WORK/npm.log" >&2; die "npm install @duckdb/node-api failed ($WORK/npm.log)"; }
  (cd "$DUCKDB_PEER_DIR" && node -e "require('@duckdb/node-api')") \
    || die "@duckdb/node-api installed but cannot be loaded"
fi

# ---------------------------------------------------------------- build
if [ -z "$CVM" ]; then
  note "building cvm (Release) in $BUILD_DIR"
  { cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
      && cmake --build "$BUILD_DIR" -j "$(nproc)" --target cvm; } > "$WORK/build.log" 2>&1 \
    || { tail -n 30 "$WORK/build.log" >&2; die "building cvm failed (log above)"; }
  CVM="$BUILD_DIR/cvm"
fi
[ -x "$CVM" ] || die "cvm binary not found or not executable: $CVM"
CVM="$(cd "$(dirname "$CVM")" && pwd)/$(basename "$CVM")"
CVM_VERSION="$("$CVM" --version 2>&1 | head -n 1)" || die "$CVM --version failed"
GIT_REV="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | head -n 1)" ]; then
  GIT_REV="$GIT_REV (with uncommitted changes)"
fi
# The generator's source: a data file is reused only if it came from the same generator.
GEN_HASH="$(cat "$REPO"/jobs/gen.c "$REPO"/jobs/gen.h "$REPO"/jobs/gen_cli.c 2>/dev/null | sha1sum | cut -c1-12)"

# ---------------------------------------------------------------- machine
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
UPTIME_START="$(uptime)"
START_DATE="$(date -u +%Y-%m-%dT%H:%MZ)"
LOAD_LOG="$WORK/load.txt"
echo "start $(loadavg)" > "$LOAD_LOG"
CPU_MODEL="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
[ -n "$CPU_MODEL" ] || CPU_MODEL="unknown"
MEM_TOTAL_MB="$(awk '/^MemTotal/ {printf "%d", $2/1024}' /proc/meminfo)"
MEM_AVAIL_MB="$(awk '/^MemAvailable/ {printf "%d", $2/1024}' /proc/meminfo)"
PANDAS_VERSION="$($PY -c 'import pandas, sys; print(pandas.__version__, "on Python", sys.version.split()[0])')"
DUCKDB_VERSION="$(cd "$DUCKDB_PEER_DIR" && node -e "console.log(require('@duckdb/node-api/package.json').version)" 2>/dev/null || echo unknown)"
NODE_VERSION="$(node --version)"
CC_PATH="$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)"
CC_VERSION="$("${CC_PATH:-cc}" --version 2>/dev/null | head -n 1 || true)"

# ---------------------------------------------------------------- runs
# measure DIR CMD...: runs CMD once under /usr/bin/time; DIR gets time, stdout, stderr, rc.
measure() {
  local dir="$1"; shift
  mkdir -p "$dir"
  local rc=0 t0 t1
  t0="$EPOCHREALTIME"
  timeout "$TIMEOUT" /usr/bin/time -f '%e %M %U %S' -o "$dir/time" "$@" > "$dir/stdout" 2> "$dir/stderr" || rc=$?
  t1="$EPOCHREALTIME"
  echo "$rc" > "$dir/rc"
  # /usr/bin/time's %e has 10 ms steps: keep a finer wall time taken around it as well.
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }' > "$dir/wall"
  return 0
}

# run_config SIZE_DIR FILE NAME REP
run_config() {
  local sdir="$1" file="$2" name="$3" rep="$4" dir
  dir="$sdir/$name/run$rep"
  case "$name" in
    cvm-1|cvm-2)
      measure "$dir" "$CVM" run "$JOB" --set "input.transactions.path=$file" \
        --threads "${name#cvm-}" --out "$dir/out" --quiet
      if [ "$(cat "$dir/rc")" = 0 ]; then
        local rd
        rd="$(tail -n 1 "$dir/stdout")"
        if [ -f "$rd/summary.json" ]; then
          cp "$rd/summary.json" "$dir/summary.json"
          [ "$KEEP" = 1 ] || rm -rf "$dir/out"
        else
          echo "cvm printed '$rd' but there is no summary.json there" >> "$dir/stderr"
          echo 99 > "$dir/rc"
        fi
      fi ;;
    duckdb-1|duckdb-2)
      RETURN_PREFIX=RT measure "$dir" node "$PEERS_DIR/rfm_duckdb.mjs" "$file" "${name#duckdb-}" ;;
    pandas-1)
      measure "$dir" "$PY" "$PEERS_DIR/rfm_pandas.py" "$file" --return-prefix RT ;;
    *) die "unknown configuration $name" ;;
  esac
  local rc wall="?"
  rc="$(cat "$dir/rc")"
  [ -s "$dir/wall" ] && wall="$(cat "$dir/wall")"
  if [ "$rc" = 0 ]; then note "  run $rep $name: ${wall} s"
  else note "  run $rep $name: FAILED (exit $rc), see below"; tail -n 5 "$dir/stderr" >&2 || true; fi
}

CONFIGS=(cvm-1 cvm-2 duckdb-1 duckdb-2 pandas-1)
for L in "${SIZES[@]}"; do
  C="$CUSTOMERS"
  if [ -z "$C" ]; then C=$(( L / 100 )); [ "$C" -ge 100 ] || C=100; [ "$C" -le 999999 ] || C=999999; fi
  ddir="$DATA_ROOT/c${C}_l${L}_s${SEED}"
  file="$ddir/transactions.csv"
  stamp="customers=$C lines=$L seed=$SEED bad-rows=0 generator=$GEN_HASH"
  if [ "$REGEN" = 1 ] || [ ! -f "$ddir/.complete" ] || [ "$(cat "$ddir/.complete")" != "$stamp" ] \
      || [ ! -f "$file" ]; then
    # ~95 bytes a line for the transactions, plus the other files: ask for 1.3x.
    need_kb=$(( L * 95 * 13 / 10 / 1024 + 10240 ))
    mkdir -p "$DATA_ROOT"
    avail_kb="$(df -Pk "$DATA_ROOT" | awk 'NR==2 {print $4}')"
    [ "$avail_kb" -ge "$need_kb" ] \
      || die "not enough disk in $DATA_ROOT for $L lines: $((avail_kb/1024)) MiB free, ~$((need_kb/1024)) MiB needed"
    note "generating $L lines ($C customers, seed $SEED) into $ddir"
    rm -rf "$ddir"
    "$CVM" gen --customers "$C" --lines "$L" --seed "$SEED" --out "$ddir" --bad-rows 0 \
      > "$WORK/gen-$L.log" 2>&1 || { cat "$WORK/gen-$L.log" >&2; die "cvm gen failed for $L lines"; }
    echo "$stamp" > "$ddir/.complete"
  else
    note "reusing $file ($stamp)"
  fi
  sdir="$WORK/L$L"
  mkdir -p "$sdir"
  bytes="$(stat -c %s "$file")"
  rows=$(( $(wc -l < "$file") - 1 ))
  printf '{"lines": %s, "file": "%s", "bytes": %s, "rows": %s, "customers": %s, "seed": %s}\n' \
    "$L" "$file" "$bytes" "$rows" "$C" "$SEED" > "$sdir/meta.json"
  cat "$file" > /dev/null   # into the page cache: every tool reads it from memory
  note "size $L: $rows data rows, $bytes bytes; $RUNS run(s) of ${CONFIGS[*]}"
  echo "before-$L $(loadavg)" >> "$LOAD_LOG"
  head -n 1 /proc/stat > "$sdir/stat-before"
  for rep in $(seq 1 "$RUNS"); do
    for c in "${CONFIGS[@]}"; do
      run_config "$sdir" "$file" "$c" "$rep"
    done
  done
  head -n 1 /proc/stat > "$sdir/stat-after"
  echo "after-$L $(loadavg)" >> "$LOAD_LOG"
done
UPTIME_END="$(uptime)"
echo "end $(loadavg)" >> "$LOAD_LOG"

# ---------------------------------------------------------------- report
if [ -z "$OUT" ]; then
  OUT="$BENCH_DIR/results-$(date +%Y-%m-%d).md"
  [ ! -e "$OUT" ] || OUT="$BENCH_DIR/results-$(date +%Y-%m-%d-%H%M).md"
fi
R_DATE="$START_DATE"; R_NPROC="$(nproc)"; R_KERNEL="$(uname -r)"
export R_DATE R_NPROC R_KERNEL R_CPU="$CPU_MODEL" \
  R_MEM_TOTAL_MB="$MEM_TOTAL_MB" R_MEM_AVAIL_MB="$MEM_AVAIL_MB" \
  R_UPTIME_START="$UPTIME_START" R_UPTIME_END="$UPTIME_END" R_CVM="$CVM_VERSION" R_GIT="$GIT_REV" \
  R_CC="$CC_VERSION" R_DUCKDB="$DUCKDB_VERSION" R_NODE="$NODE_VERSION" R_PANDAS="$PANDAS_VERSION" \
  R_RUNS="$RUNS" R_SIZES="$LINES_LIST" R_CONFIGS="${CONFIGS[*]}"
rc=0
$PY "$BENCH_DIR/report.py" "$WORK" > "$WORK/results.md" || rc=$?
[ -s "$WORK/results.md" ] || die "report.py produced no output (exit $rc)"
cp "$WORK/results.md" "$OUT"
cat "$OUT"
note "results written to $OUT"
[ "$rc" = 0 ] || note "FAIL: a run failed or cvm's checks differ from the peers' (see the results)"
exit "$rc"
