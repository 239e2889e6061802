#!/usr/bin/env bash
# Installs the Debian 12 packages cvm needs to build, test and benchmark.
# Usage: scripts/install-deps.sh [--bench]   (as root, or with sudo available)
set -euo pipefail
# libsqlite3-dev: cvm.sqlite; libpq-dev: the PostgreSQL load; postgresql: the
# server tests/test_postgres.c starts for itself; chromium: tests/test_report.c
# renders report.html headless.
pkgs=(build-essential cmake pkg-config libgsl-dev libcsv-dev libcmocka-dev libyaml-dev
      libjansson-dev libxxhash-dev clang libclang-rt-14-dev python3 libsqlite3-dev libpq-dev postgresql
      chromium)
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(python3-pandas python3-sklearn python3-scipy nodejs npm time)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
