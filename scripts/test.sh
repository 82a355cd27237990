#!/usr/bin/env bash
# Run the whole test suite (installs what it needs first). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev,viz,bench,sparse,dask
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
# two pytest workers fill the two cores: numba's OpenMP threads should sleep between parallel
# regions, not spin on the core the other worker needs (measured 9 % off a two-file subset)
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
