"""Input checks shared by the public API.

Every public function validates its arguments here so that bad input raises a
``ValueError`` that names the argument and says what was expected, instead of
failing deep inside numpy or numba (or, worse, returning garbage).
"""

from __future__ import annotations

import numbers
import os

import numpy as np

RngLike = np.random.Generator | int | None


def as_rng(rng: RngLike, name: str = "rng") -> np.random.Generator:
    """Return a ``numpy.random.Generator`` from a Generator, an int seed or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValueError(f"{name} must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def as_array(
    a,
    name: str,
    shape: tuple[int | None, ...],
    *,
    finite: bool = True,
    dtype=np.float64,
) -> np.ndarray:
    """Convert ``a`` to a C-contiguous array of ``dtype`` and check its shape.

    ``shape`` uses ``None`` for a free dimension, e.g. ``(None, 2)`` for (N,2) pixels.
    Raises ``ValueError`` naming ``name`` when the shape is wrong or (for floats,
    with ``finite=True``) when the array holds NaN or inf.
    """
    try:
        arr = np.ascontiguousarray(a, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be convertible to a {np.dtype(dtype).name} array: {exc}") from None
    want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
    if arr.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, arr.shape)):
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if finite and arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or inf value(s); remove or fix them first")
    return arr


def as_points(a, name: str, dim: int, *, finite: bool = True, allow_single: bool = False) -> np.ndarray:
    """Check an (N, dim) float array of points; with ``allow_single`` a (dim,) vector becomes (1, dim)."""
    arr = np.asarray(a, dtype=np.float64) if not isinstance(a, np.ndarray) else a
    if allow_single and arr.ndim == 1:
        arr = arr[None, :]
    return as_array(arr, name, (None, dim), finite=finite)


def check_same_length(**arrays: np.ndarray) -> int:
    """Raise unless all arrays have the same first dimension; return it."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise ValueError(f"arrays must have the same number of rows: {desc}")
    return next(iter(lengths.values())) if lengths else 0


def check_positive(value, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as float, raising unless it is finite and positive (or zero when allowed)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        cond = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be finite and {cond}, got {value!r}")
    return v


def check_int(value, name: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as int, raising unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def check_probability(value, name: str, *, open_interval: bool = True) -> float:
    """Return ``value`` as float in (0, 1) (or [0, 1] with ``open_interval=False``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}") from None
    ok = (0.0 < v < 1.0) if open_interval else (0.0 <= v <= 1.0)
    if not ok:
        rng = "(0, 1)" if open_interval else "[0, 1]"
        raise ValueError(f"{name} must lie in {rng}, got {value!r}")
    return v


class ArgumentOrderError(TypeError, ValueError):
    """A writer called as ``write_x(path, object)``: every geomvision writer takes ``(object, path)``.

    A TypeError (the arguments are of the wrong kinds) that is also a ValueError, so that callers
    and the CLI, which treat the library's ValueErrors as bad input, handle it like any other
    (numpy's AxisError is a ValueError and an IndexError for the same reason)."""


def check_writer_arguments(obj, name: str, order: str) -> None:
    """Raise :class:`ArgumentOrderError` when a writer's object argument ``obj`` is a path, naming
    the order ``order`` (e.g. ``"(problem, path)"``) that ``name`` takes."""
    if isinstance(obj, (str, bytes, os.PathLike)):
        raise ArgumentOrderError(
            f"{name} takes {order}, like every geomvision writer, but its first argument is the path "
            f"{os.fsdecode(obj)!r}: the arguments are swapped; call {name}{order}"
        )
