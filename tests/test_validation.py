"""Input-check helpers used by every public function."""

import numpy as np
import pytest

from geomvision._validation import as_array, as_rng, check_int, check_positive, check_probability


def test_as_rng_accepts_generator_int_none_only():
    g = np.random.default_rng(1)
    assert as_rng(g) is g
    assert as_rng(3).random() == np.random.default_rng(3).random()
    assert isinstance(as_rng(None), np.random.Generator)
    for bad in ("3", 3.0, True, np.random.RandomState(0)):
        with pytest.raises(ValueError, match="rng must be"):
            as_rng(bad)


def test_as_array_names_the_argument():
    with pytest.raises(ValueError, match=r"pts must have shape \(N, 2\), got \(3, 3\)"):
        as_array(np.zeros((3, 3)), "pts", (None, 2))
    with pytest.raises(ValueError, match="pts contains 2 NaN or inf"):
        as_array([[np.nan, np.inf]], "pts", (None, 2))
    with pytest.raises(ValueError, match="pts must be convertible"):
        as_array([["a", "b"]], "pts", (None, 2))
    out = as_array([[1, 2]], "pts", (None, 2))
    assert out.dtype == np.float64 and out.flags.c_contiguous


def test_scalar_checks():
    assert check_positive(2, "x") == 2.0
    with pytest.raises(ValueError, match="max_error must be finite and positive"):
        check_positive(0, "max_error")
    with pytest.raises(ValueError, match="max_error must be finite"):
        check_positive(float("nan"), "max_error")
    with pytest.raises(ValueError, match="n must be >= 1"):
        check_int(0, "n", minimum=1)
    with pytest.raises(ValueError, match="n must be an integer"):
        check_int(1.5, "n")
    with pytest.raises(ValueError, match=r"confidence must lie in \(0, 1\)"):
        check_probability(1.0, "confidence")


def test_subpackages_are_attributes_of_the_package():
    import subprocess
    import sys

    code = "import geomvision as gv; print(gv.io.read_model.__module__, gv.optim.optimize_pose_graph.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["geomvision.io.colmap", "optimize_pose_graph"]
