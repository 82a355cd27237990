"""One RANSAC engine, generic over an estimator protocol.

Design
------
An estimator (a subclass of :class:`Estimator`) says *what* is estimated: its sample size, how a
minimal sample becomes 0..k models, the squared error of every point under a model, how to refit
on many points and refine on weighted inliers, which samples are degenerate. The engine says *how*:
uniform or PROSAC sampling, MSAC scoring (or a Geman-McClure-shaped variant, ``score_scale``),
LO-RANSAC, the adaptive stopping rule, min / max iterations. A new model is a new estimator
class; the engine never branches on the model type.

The whole loop runs in numba (``_core.ransac_core``). Measured on the 2-core development machine
for a 1000-point line: the numba loop costs 2.1 us per iteration including the scoring; a Python
loop around the same numba kernels pays ~0.5 us per kernel call, ~14 us per sample drawn with
``Generator.choice`` and ~9 us for a numpy MSAC reduction, i.e. ~10x more per iteration, which
matters for the SfM pipeline's thousands of pairs. So each estimator hands its numba kernels to
the engine as first-class functions, and models travel as flat float64 vectors (``model_dim``
numbers: a line's (a, b, c), a homography's 9 entries, a pose's [R | t] row-major).
Numba does not cache a function whose arguments are dispatchers, so each estimator module defines
a three-line ``@njit(cache=True)`` wrapper, ``_run(data, order, groups, params_i, params_f, seed)``, that
calls ``ransac_core`` with its kernels as globals: the loop is written once and compiled (and
cached) once per estimator (see ``_core``'s docstring for why the loop is inlined).

Local optimisation (LO-RANSAC): every minimal model that beats the best *minimal* model so far
(not only the best refined one, so that LO also starts from other promising basins) is refined
by a non-minimal refit on its inliers (first LO only; it rarely wins later and costs the most)
and rounds of iteratively reweighted LM on the points within ``lo_threshold_mult`` times the
threshold; the model with the lowest MSAC score is kept. So is a minimal model with at least
half the best minimal model's support (beyond its own sample) unless four in five of its inliers
are the best model's (``_core.SAME_BASIN_SHARE``): at low inlier ratios the true consensus and
wrong ones (repeated structure) are drawn about equally rarely, and one lucky minimal model of a
wrong set used to keep every noisier all-inlier sample of the true set from reaching LO (issue
15). Such an LO runs up to ``OTHER_BASIN_ROUNDS`` times the rounds, stops once it beats the best
model and gives up after ``ABORT_ROUNDS`` rounds that do not beat the best minimal model. The
final model gets longer reweighted refinement. Each estimator's refinement minimises the same
error it is scored with.

Shared keypoints: two-view estimators group the matches that share a pixel in one image and go
to different pixels in the other (:func:`shared_keypoint_groups`); a group counts once in the
score, with its lowest cost, and its selected members share one point's weight in each refinement.

The same kernels are reachable from Python through the readable protocol methods
``fit_minimal(sample)``, ``sq_errors(model)`` and ``refine(model, inliers)`` of every estimator.

Randomness: a splitmix64 generator inside the loop, seeded from the caller's ``rng``
(Generator, int or None) with one draw, so the same seed gives the same result and no global
state is touched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from .._interrupt import check as check_interrupt
from .._rows import row_groups
from .._union_find import find_root
from .._validation import RngLike, as_array, as_points, as_rng, check_positive, check_same_length
from ..geometry.rigid import Rigid3
from . import _core as core
from .options import RansacOptions, resolve_options

# draws per kernel call: a fundamental matrix on 8192 matches takes ~0.2 ms per draw, so a chunk
# is ~50 ms and Ctrl-C is seen within it (the chunks give the same result as one call)
CHUNK_ITERATIONS = 256


@dataclass(frozen=True)
class RansacStats:
    """What a RANSAC run did.

    ``iterations`` samples drawn; ``num_inliers`` / ``inlier_ratio`` of the returned model;
    ``score`` its score (MSAC: sum of min(e^2, t^2), in squared error units; see
    ``RansacOptions.score_scale``); ``lo_runs`` local optimisations (including the final
    refinement) and ``lo_improvements`` accepted LO steps;
    ``success`` False when no model has at least ``min_num_inliers`` inliers;
    ``message`` says why when it failed (or what was noticed, e.g. a degeneracy).
    """

    success: bool
    iterations: int
    num_inliers: int
    inlier_ratio: float
    score: float
    lo_runs: int
    lo_improvements: int
    message: str = ""


class RansacResult(NamedTuple):
    """``(model, inliers, stats)``: the model (None on failure), a boolean inlier mask (N,) and
    :class:`RansacStats`."""

    model: Any
    inliers: np.ndarray
    stats: RansacStats

    def failed(self, message: str) -> RansacResult:
        """This result turned into a failure (no model, no inliers, ``success=False``) with
        ``message``: for the whole-set degeneracy checks the estimate functions run after RANSAC."""
        stats = dataclasses.replace(self.stats, success=False, message=message)
        return RansacResult(None, np.zeros_like(self.inliers), stats)


class Estimator:
    """The estimator protocol.

    Class attributes: ``sample_size`` (points per minimal sample), ``model_dim`` (length of the
    flat model vector), ``max_models`` (models a minimal sample can give), ``name``,
    ``default_max_iterations`` (the cap on draws when the options leave it to the estimator),
    ``default_score_scale`` (the score's Geman-McClure scale when the options leave it to the estimator),
    ``default_relax_radius`` (the radius of the relaxation of local optima, likewise).
    Numba kernels (module-level ``@njit`` functions, see ``_core``): ``k_fit_minimal``,
    ``k_fit_nonminimal``, ``k_refine``, ``k_sq_errors`` (over a range of points), ``k_degenerate_sample``, ``k_repair``,
    and ``k_run`` (the estimator's cached RANSAC loop). Instances hold ``data``, the tuple of
    arrays the kernels read, and ``num_points``.

    Subclasses implement ``decode(vec) -> model`` (and ``encode(model) -> vec`` if models are
    passed back in from Python).
    """

    name = "estimator"
    default_max_iterations = 10_000  # RansacOptions.max_iterations=None takes this
    default_score_scale = 0.0  # RansacOptions.score_scale=None takes this (0: MSAC)
    default_relax_radius = 0.0  # RansacOptions.relax_radius=None takes this (0: none)
    sample_size: int
    model_dim: int
    max_models: int
    k_fit_minimal: Callable
    k_fit_nonminimal: Callable = staticmethod(core.no_nonminimal)
    k_refine: Callable = staticmethod(core.refine_identity)
    k_sq_errors: Callable
    k_degenerate_sample: Callable = staticmethod(core.no_degeneracy)
    k_repair: Callable = staticmethod(core.no_repair)
    k_run: Callable

    def __init__(self, data: tuple, num_points: int, keypoint_groups: np.ndarray | None = None) -> None:
        self.data = data
        self.num_points = int(num_points)
        # (N,) int64: each match's group of matches sharing a keypoint, -1 for none
        # (:func:`shared_keypoint_groups`); None: no match shares one
        self.keypoint_groups = keypoint_groups

    # --- model conversion ---------------------------------------------------------------------
    def decode(self, vec: np.ndarray) -> Any:
        return vec.copy()

    def encode(self, model: Any) -> np.ndarray:
        return as_array(model, "model", (self.model_dim,)).copy()

    # --- the readable protocol (Python access to the kernels) ---------------------------------
    def fit_minimal(self, sample: np.ndarray) -> list:
        """Models (0..max_models) of the points ``sample`` (sample_size indices)."""
        sample = np.ascontiguousarray(sample, dtype=np.int64)
        if sample.shape != (self.sample_size,):
            raise ValueError(f"sample must hold {self.sample_size} indices, got shape {sample.shape}")
        if self.k_degenerate_sample(self.data, sample):
            return []
        out = np.zeros((self.max_models, self.model_dim))
        k = self.k_fit_minimal(self.data, sample, out)
        return [self.decode(out[j]) for j in range(k)]

    def sq_errors(self, model: Any) -> np.ndarray:
        """Squared error (N,) of every point under ``model`` (in the squared threshold's units)."""
        out = np.empty(self.num_points)
        self.k_sq_errors(self.data, self.encode(model), 0, self.num_points, out)
        return out

    def refine(self, model: Any, inliers: np.ndarray, weights: np.ndarray | None = None, max_iters: int = 20) -> Any:
        """``model`` refined on the points ``inliers`` (bool mask or indices) with ``weights``."""
        idx = np.flatnonzero(inliers) if np.asarray(inliers).dtype == bool else np.asarray(inliers, dtype=np.int64)
        w = np.ones(len(idx)) if weights is None else as_array(weights, "weights", (len(idx),))
        return self.decode(self.k_refine(self.data, self.encode(model), idx, w, int(max_iters)))


class PoseEstimator(Estimator):
    """An estimator whose model is a rigid transform (``Rigid3``), carried as [R | t] row-major."""

    model_dim = 12
    pose_name = "pose"

    def decode(self, vec: np.ndarray) -> Rigid3:
        return Rigid3(vec[:9].reshape(3, 3), vec[9:], check=False)

    def encode(self, model: Any) -> np.ndarray:
        if not isinstance(model, Rigid3):
            raise ValueError(f"model must be a Rigid3 {self.pose_name}, got {type(model).__name__}")
        return np.concatenate([model.R.ravel(), model.t])


class MatrixEstimator(Estimator):
    """An estimator of a 3x3 matrix between two images (homography, fundamental matrix) from
    pixel correspondences x1, x2 (N,2), carried row-major."""

    model_dim = 9
    matrix_name = "matrix"

    def __init__(self, x1: np.ndarray, x2: np.ndarray) -> None:
        a = as_points(x1, "x1", 2)
        b = as_points(x2, "x2", 2)
        check_same_length(x1=a, x2=b)
        super().__init__((a, b), len(a), shared_keypoint_groups(a, b))

    def decode(self, vec: np.ndarray) -> np.ndarray:
        return vec.reshape(3, 3).copy()

    def encode(self, model: Any) -> np.ndarray:
        M = np.asarray(model, dtype=np.float64)
        if M.shape != (3, 3):
            raise ValueError(f"model must be a (3, 3) {self.matrix_name}, got shape {M.shape}")
        return np.ascontiguousarray(M.ravel())


def shared_keypoint_groups(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """Groups (N,) int64 of matches x1[i] <-> x2[i] (N,2) joined by a pixel they share in one
    image while differing in the other (0..G-1; -1 for a match that joins no other).

    A keypoint is the image of one 3D point, so of k matches through it to k different places
    (many-to-one matches of a ratio test) at most one is right; RANSAC counts a group once, with
    its best-fitting match. Counted k times, k matches onto one pixel of image 2 (all of which fit
    any pose whose epipole is there) outscored the true pose of real wide pairs (Strecha
    fountain-P11 views 1-9: 12 matches onto one keypoint). Repeats of one pixel pair (a location
    described at two orientations in both images) make no group: they agree on where it is."""
    if len(x1) == 0:
        return np.zeros(0, dtype=np.int64)
    pair = _row_ids(np.hstack([x1, x2]))
    return _join_shared(pair, _row_ids(x1), _row_ids(x2), int(pair.max()) + 1)


def _row_ids(rows: np.ndarray) -> np.ndarray:
    """(N,) int64 id of each row of ``rows`` (N,k) among the distinct rows, numbered in their
    lexicographic order (as ``np.unique(rows, axis=0, return_inverse=True)``)."""
    order, group = row_groups(rows)
    ids = np.empty(len(rows), dtype=np.int64)
    ids[order] = group
    return ids


@njit(cache=True)
def _join_shared(pair, pixel1, pixel2, m):
    """Groups of :func:`shared_keypoint_groups` from each match's pixel-pair id ``pair`` (0..m-1)
    and pixel ids in the two images: the pixel pairs linked through a shared pixel form a set
    (its root the lowest pixel pair); sets of two or more pixel pairs are numbered by root."""
    n = pair.shape[0]
    parent = np.arange(m)
    for pixel in (pixel1, pixel2):
        first = np.full(pixel.max() + 1, m)  # the lowest pixel pair through each pixel
        for i in range(n):
            first[pixel[i]] = min(first[pixel[i]], pair[i])
        for i in range(n):
            ra = find_root(parent, pair[i])
            rb = find_root(parent, first[pixel[i]])
            if ra < rb:
                parent[rb] = ra
            elif rb < ra:
                parent[ra] = rb
    size = np.zeros(m, dtype=np.int64)
    for p in range(m):
        size[find_root(parent, p)] += 1
    number = np.full(m, -1, dtype=np.int64)
    g = 0
    for p in range(m):
        if parent[p] == p and size[p] > 1:
            number[p] = g
            g += 1
    groups = np.empty(n, dtype=np.int64)
    for i in range(n):
        groups[i] = number[find_root(parent, pair[i])]
    return groups


def ransac(
    estimator: Estimator,
    sq_threshold: float,
    options: RansacOptions | None = None,
    *,
    rng: RngLike = None,
    quality: np.ndarray | None = None,
) -> RansacResult:
    """Robustly fit ``estimator``'s model with MSAC-type scoring at ``sq_threshold`` (squared error
    units of the estimator). ``quality`` (N,), higher is better, orders PROSAC's samples."""
    if not isinstance(estimator, Estimator):
        raise ValueError(f"estimator must be a geomvision.robust.Estimator, got {type(estimator).__name__}")
    opts = resolve_options(options, {})
    sq_threshold = check_positive(sq_threshold, "sq_threshold")
    n = estimator.num_points
    s = estimator.sample_size
    if n < s:
        raise ValueError(f"{estimator.name} needs at least {s} points (its minimal sample), got {n}")
    gen = as_rng(rng)

    order = np.arange(n, dtype=np.int64)
    groups = np.full(n, -1, dtype=np.int64) if estimator.keypoint_groups is None else estimator.keypoint_groups
    if quality is not None:
        q = as_array(quality, "quality", (n,))
        order = np.argsort(-q, kind="stable").astype(np.int64)

    params_i = np.zeros(core.NUM_PARAMS_I, dtype=np.int64)
    params_i[core.P_N] = n
    params_i[core.P_SAMPLE_SIZE] = s
    params_i[core.P_MAX_MODELS] = estimator.max_models
    params_i[core.P_MODEL_DIM] = estimator.model_dim
    max_iter = estimator.default_max_iterations if opts.max_iterations is None else opts.max_iterations
    params_i[core.P_MIN_ITER] = min(opts.min_iterations, max_iter)
    params_i[core.P_MAX_ITER] = max_iter
    params_i[core.P_PROSAC] = opts.sampler == "prosac"
    params_i[core.P_LO] = opts.local_optimization
    params_i[core.P_LO_ITERS] = opts.lo_iterations
    params_i[core.P_REFINE_ITERS] = opts.refine_iterations
    params_i[core.P_FINAL_ITERS] = opts.final_refinement_rounds
    params_i[core.P_PROSAC_MAX] = opts.prosac_max_draws
    params_i[core.P_FINAL_REFINE_ITERS] = opts.final_refine_iterations
    params_i[core.P_LO_MAX_POINTS] = opts.lo_max_points
    params_i[core.P_POLISH_ROUNDS] = opts.polish_rounds if opts.polish_scale > 0 else 0
    params_i[core.P_CHUNK_ITERS] = CHUNK_ITERATIONS
    params_f = np.zeros(core.NUM_PARAMS_F + estimator.model_dim)
    params_f[core.P_SQ_THRESHOLD] = sq_threshold
    params_f[core.P_CONFIDENCE] = opts.confidence
    params_f[core.P_LO_THRESHOLD_MULT] = opts.lo_threshold_mult
    params_f[core.P_POLISH_SCALE] = opts.polish_scale
    params_f[core.P_SCORE_SCALE] = estimator.default_score_scale if opts.score_scale is None else opts.score_scale
    params_f[core.P_RELAX_MULT] = estimator.default_relax_radius if opts.relax_radius is None else opts.relax_radius
    seed = int(gen.integers(0, 2**63 - 1))

    while True:  # chunks of CHUNK_ITERATIONS draws; Ctrl-C is seen between them
        vec, score, num_inl, mask, iters, lo_runs, lo_imp, found = estimator.k_run(
            estimator.data, order, groups, params_i, params_f, seed
        )
        if params_i[core.S_DONE]:
            break
        check_interrupt()
    min_inl = opts.min_num_inliers if opts.min_num_inliers is not None else s + 1
    success = bool(found) and num_inl >= min_inl
    if not found:
        message = "no non-degenerate sample gave a model"
    elif not success:
        message = f"best model has {num_inl} inliers, fewer than min_num_inliers={min_inl}"
    else:
        message = ""
    stats = RansacStats(
        success=success,
        iterations=int(iters),
        num_inliers=int(num_inl) if found else 0,
        inlier_ratio=float(num_inl) / n if found else 0.0,
        score=float(score),
        lo_runs=int(lo_runs),
        lo_improvements=int(lo_imp),
        message=message,
    )
    if not success:
        return RansacResult(None, np.zeros(n, dtype=bool), stats)
    return RansacResult(estimator.decode(vec), mask, stats)
