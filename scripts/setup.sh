#!/usr/bin/env bash
# Prepare a machine for geomvision: system packages (Debian/Ubuntu), a virtual environment in
# .venv and the package with the extras given as arguments (default: viz).
#   scripts/setup.sh               # core + viz (the open3d viewer)
#   scripts/setup.sh dev,viz,bench # what the test suite needs
# Safe to re-run: it skips what is already in place. Works as root or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-viz}"

# --- system packages: open3d needs libusb; offscreen rendering needs Vulkan (llvmpipe on CPU)
sys_pkgs=(libusb-1.0-0 libvulkan1 mesa-vulkan-drivers libgl1 libgomp1)
# the 'sparse' extra (CHOLMOD through scikit-sparse) builds against SuiteSparse and runs at BLAS
# speed only with an optimised BLAS: the reference BLAS makes CHOLMOD 4x slower on pose graphs
case ",$extras," in *,sparse,*) sys_pkgs+=(libsuitesparse-dev libopenblas0-pthread) ;; esac
# the tests render the HTML report in a headless browser (tests/viz/test_report_in_browser.py)
case ",$extras," in *,dev,*) sys_pkgs+=(chromium) ;; esac
if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${sys_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    echo "[setup] installing system packages: ${missing[*]}"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "[setup] not a Debian-like system: install libusb-1.0 and a Vulkan driver yourself for the open3d viewer"
fi

# --- virtual environment
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || { echo "[setup] geomvision needs Python >= 3.11 (found $($py --version 2>&1))" >&2; exit 1; }
  echo "[setup] creating .venv"
  "$py" -m venv .venv
fi

# --- the package; reinstall only when pyproject.toml or the extras changed
# The core package goes in first; then the extras' requirements install in the background while the
# numba kernels compile in the foreground (`geomvision warmup`: every core, with progress), which
# would otherwise fall on the first run (minutes on a 2-core machine).
stamp=".venv/.geomvision-installed"
want="$(sha256sum pyproject.toml | cut -c1-16) $extras"
fail_install() {
  cat .venv/install.log >&2
  echo "[setup] pip install failed (see above)" >&2
  exit 1
}
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing geomvision[$extras] into .venv (log: .venv/install.log)"
  # pip's build chatter goes to the log; it is shown only when the install fails
  { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e . ; } \
    > .venv/install.log 2>&1 || fail_install
  # the extras' requirements only (reinstalling geomvision itself would race with the warm-up's imports)
  extra_reqs_text="$(.venv/bin/python -c '
import sys, tomllib
optional = tomllib.load(open("pyproject.toml", "rb"))["project"].get("optional-dependencies", {})
for extra in filter(None, sys.argv[1].split(",")):
    if extra not in optional:
        sys.exit(f"[setup] unknown extra {extra!r}; pyproject.toml has {sorted(optional)}")
    print("\n".join(optional[extra]))
' "$extras")"
  mapfile -t extra_reqs <<< "$extra_reqs_text"
  pip_pid=""
  if [ -n "$extra_reqs_text" ]; then
    .venv/bin/python -m pip install -q "${extra_reqs[@]}" >> .venv/install.log 2>&1 &
    pip_pid=$!
  fi
  .venv/bin/geomvision warmup || echo "[setup] warning: kernel compilation failed; the first run compiles them"
  if [ -n "$pip_pid" ]; then
    wait "$pip_pid" || fail_install
  fi
  echo "$want" > "$stamp"
fi
# (later the first `geomvision sfm` / `demo` after a change of the kernel sources compiles them again, with progress)
