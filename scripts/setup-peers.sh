#!/usr/bin/env bash
# System packages of the benchmark peers that pip cannot install (Debian/Ubuntu; root or sudo):
# Ceres' headers and a compiler for benchmarks/ceres_bal (Ceres with BAL's own cost, bench_ba
# part 3). The Python peers (pycolmap, pyceres, GTSAM, PoseLib) come with `scripts/setup.sh bench`.
set -euo pipefail
pkgs=(libceres-dev g++)
command -v apt-get >/dev/null 2>&1 || { echo "[setup-peers] not a Debian-like system: install Ceres (dev) and g++" >&2; exit 1; }
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { echo "[setup-peers] nothing to install"; exit 0; }
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
echo "[setup-peers] installing: ${missing[*]}"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
