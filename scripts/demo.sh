#!/usr/bin/env bash
# The main job: render geomvision's synthetic scene, reconstruct it with `geomvision sfm` and
# compare with the ground truth. Arguments go to `geomvision demo` (e.g. -o out/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh viz
exec .venv/bin/geomvision demo "$@"
