"""Shared fixtures: a seeded rng, the shared datasets (fail in CI when missing), synthetic scenes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from geomvision.io.datasets import data_root, load_strecha_scene

STRECHA_SCENES = ("fountain-P11", "Herz-Jesus-P8", "entry-P10")

# the CLI's first-run warm-up (geomvision._warmup) compiles every kernel in worker processes; tests
# compile what they use, on first use, as before (tests/test_first_run.py turns it on where tested)
os.environ.setdefault("GEOMVISION_WARMUP", "0")


def pytest_configure(config):
    # once per session, in the controlling process (not in xdist workers): cached numba kernels
    # that inline a changed kernel of another module would otherwise run stale code
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        from geomvision._numba_cache import drop_stale_cache

        drop_stale_cache(also=(Path(__file__).parent,))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of ../shared/datasets. Missing data skips locally but fails when CI is set."""
    root = data_root()
    if root is None or not root.is_dir():
        msg = "shared datasets not found: set GEOMVISION_DATA or put ../shared beside the checkout"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return root


@pytest.fixture(scope="session")
def fountain(shared_data):
    return load_strecha_scene(shared_data / "strecha" / "fountain-P11")


def require_module(name: str):
    """Import an optional peer (pycolmap, poselib ...); skip locally, fail in CI when missing."""
    try:
        return __import__(name)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (install the 'bench' extra)")
        pytest.skip(f"{name} not installed")
