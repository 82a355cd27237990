"""Initial intrinsics for the SfM pipeline: a known K, EXIF focal length, or a prior.

Order of preference (per image, or once for all images when shared):
1. a known K (``--K K.txt`` holding a 3x3 matrix, or ``--K fx,fy,cx,cy``): kept fixed by default;
2. the EXIF focal length (35 mm equivalent) of the image;
3. a prior of ``1.2 * max(width, height)`` with the principal point at the image centre,
   refined by bundle adjustment (a warning says so).

A given K is checked against the size of the images it is used for (:func:`check_K_for_image`:
principal point inside the image, focal length within ``KNOWN_FOCAL_RANGE`` x max(width,
height)); ``run_sfm`` also compares its focal length with the one the fundamental matrices of
the images imply (:func:`focal_from_fundamental_profile`) and warns when they disagree.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from .._stats import sign_test_pvalue
from ..geometry.camera import CAMERA_MODELS, Camera
from ..geometry.epipolar import sampson_sq_errors
from ..solvers import fundamental_8pt

FOCAL_PRIOR_FACTOR = 1.2
# focal lengths a K may have, x max(width, height): a 170-degree to a 3-degree field of view.
# Outside, K is almost certainly not in pixels of these images (millimetres, another resolution)
KNOWN_FOCAL_RANGE = (0.05, 20.0)
# a focal length the fundamental matrices determine: E = K^T F K must depart from an essential
# matrix (two equal singular values) by this much at half and at twice the best focal length
FOCAL_DETERMINED_MIN_ASYMMETRY = 0.005
FOCAL_DETERMINED_NOISE_FACTOR = 5.0  # ... and by this factor more than at the best focal length
# the radial distortion searched for a camera (radial_distortion), as kappa = k (half-diagonal / f)^2:
# the relative displacement k r^2 of a point at the half-diagonal; -0.5 moves it inwards by half
RADIAL_SEARCH_RANGE = (-0.5, 0.5)
RADIAL_COARSE_STEP, RADIAL_FINE_STEP = 0.04, 0.004
# the distortion found is kept only when so many of the pairs fit better with it than with none
# that a fair coin would rarely do it (one-sided sign test at this level); else k starts at 0
RADIAL_SIGN_TEST_LEVEL = 0.05


@dataclass
class IntrinsicsGuess:
    camera: Camera
    source: str  # "K", "exif" or "prior"
    known: bool  # True when the calibration is trusted (K given): not refined by default


def parse_K(spec: str | os.PathLike | np.ndarray) -> np.ndarray:
    """A 3x3 K from a file holding a 3x3 matrix, a string ``"fx,fy,cx,cy"`` or an array.

    Raises ``ValueError`` that names the problem and the accepted forms.
    """
    forms = "a file with a 3x3 matrix or 'fx,fy,cx,cy'"
    if isinstance(spec, np.ndarray):
        K = np.asarray(spec, dtype=float)
    else:
        text = str(spec)
        path = Path(text)
        if path.is_file():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # numpy's "input contained no data"
                    K = np.loadtxt(path, dtype=float, ndmin=2)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ValueError(f"--K file {path}: not a 3x3 matrix of numbers ({exc})") from None
            if K.size == 0:
                raise ValueError(f"--K file {path} is empty; give {forms}")
            if K.shape != (3, 3):
                raise ValueError(f"--K file {path}: expected a 3x3 matrix, got shape {K.shape}")
        else:
            parts = text.replace(" ", "").split(",")
            if len(parts) != 4:
                if len(parts) == 1 and not path.exists() and ("/" in text or text.endswith(".txt")):
                    raise ValueError(f"--K: file {text} does not exist; give {forms}")
                raise ValueError(f"--K: cannot read {text!r}; give {forms}")
            try:
                fx, fy, cx, cy = (float(p) for p in parts)
            except ValueError:
                raise ValueError(f"--K: {text!r} has a value that is not a number; give {forms}") from None
            K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    if K.shape != (3, 3) or not np.isfinite(K).all():
        raise ValueError(f"--K must be a finite 3x3 matrix, got {_one_line(K)}")
    if K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0, 0, 1]) or K[1, 0] != 0:
        raise ValueError(f"--K must be upper triangular with positive focal lengths and last row [0, 0, 1], "
                         f"got {_one_line(K)}")
    return K


def _one_line(a: np.ndarray) -> str:
    """An array as one line of text (error messages stay one line)."""
    return np.array2string(np.asarray(a), separator=", ", max_line_width=10**6).replace("\n", "")


def check_K_for_image(K: np.ndarray, width: int, height: int) -> None:
    """Raise ``ValueError`` when K (3,3) cannot be the calibration of a ``width`` x ``height``
    image: its principal point outside the image (pixel centres from (0, 0) to (width - 1,
    height - 1), so the image spans -0.5 .. width - 0.5), or a focal length outside
    ``KNOWN_FOCAL_RANGE`` x max(width, height). The message names the likely cause: K in
    millimetres, or calibrated at another resolution (scale fx, fy, cx, cy by the size ratio)."""
    K = np.asarray(K, dtype=float)
    fix = ("K must be in pixels of these images (a K calibrated at another resolution must be scaled: "
           "fx, fy, cx, cy times the size ratio)")
    cx, cy = K[0, 2], K[1, 2]
    if not (-0.5 <= cx <= width - 0.5 and -0.5 <= cy <= height - 0.5):
        raise ValueError(f"--K: principal point ({cx:g}, {cy:g}) lies outside the {width} x {height} image "
                         f"(its centre is ({(width - 1) / 2:g}, {(height - 1) / 2:g})); {fix}")
    size = max(width, height)
    lo, hi = KNOWN_FOCAL_RANGE[0] * size, KNOWN_FOCAL_RANGE[1] * size
    for name, f in (("fx", K[0, 0]), ("fy", K[1, 1])):
        if not lo <= f <= hi:
            raise ValueError(f"--K: focal length {name} = {f:g} px is implausible for a {width} x {height} image "
                             f"(expected {lo:g} to {hi:g} px, {KNOWN_FOCAL_RANGE[0]:g} to {KNOWN_FOCAL_RANGE[1]:g} "
                             f"x max(width, height)); {fix}, not in millimetres")


def focal_from_fundamental_profile(F: np.ndarray, pp, size: float, num: int = 121) -> tuple[float, bool]:
    """The focal length (pixels) shared by both images of F (3,3) that a principal point ``pp``
    (2,) implies, and whether F determines it.

    For each focal length f on a log grid over ``KNOWN_FOCAL_RANGE`` x ``size`` (``num``
    values), E(f) = K^T F K must be an essential matrix, whose two non-zero singular values are
    equal: the asymmetry (s1 - s2) / (s1 + s2) is minimised over f. Some camera motions (optical
    axes that meet at one point, as on an orbit around an object) leave f undetermined: every f
    fits about as well. The focal length counts as determined when the asymmetry at half and at
    twice the best f exceeds ``FOCAL_DETERMINED_MIN_ASYMMETRY`` and
    ``FOCAL_DETERMINED_NOISE_FACTOR`` x its minimum, i.e. when F tells a factor of 2 apart.
    """
    F = np.asarray(F, dtype=float)
    px, py = float(pp[0]), float(pp[1])

    def asymmetry(f: float) -> float:
        K = np.array([[f, 0.0, px], [0.0, f, py], [0.0, 0.0, 1.0]])
        sv = np.linalg.svd(K.T @ F @ K, compute_uv=False)
        return float((sv[0] - sv[1]) / (sv[0] + sv[1])) if sv[0] > 0 else 1.0

    focals = size * np.geomspace(KNOWN_FOCAL_RANGE[0], KNOWN_FOCAL_RANGE[1], num)
    asym = np.array([asymmetry(f) for f in focals])
    k = int(np.argmin(asym))
    # refined between the grid neighbours of the best grid value
    lo, hi = np.log(focals[max(k - 1, 0)]), np.log(focals[min(k + 1, num - 1)])
    res = minimize_scalar(lambda lf: asymmetry(float(np.exp(lf))), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-4})
    f, best = (float(np.exp(res.x)), float(res.fun)) if res.fun < asym[k] else (float(focals[k]), float(asym[k]))
    floor = max(FOCAL_DETERMINED_MIN_ASYMMETRY, FOCAL_DETERMINED_NOISE_FACTOR * best)
    determined = asymmetry(0.5 * f) > floor and asymmetry(2.0 * f) > floor
    return f, bool(determined)


def camera_from_K(K: np.ndarray, width: int, height: int, model: str) -> Camera:
    """Camera of ``model`` whose affine part is K and whose distortion is zero; K is checked
    against the image size first (:func:`check_K_for_image`)."""
    model = model.upper()
    if model not in CAMERA_MODELS:
        raise ValueError(f"camera_model: unknown model {model!r}; choose one of {', '.join(CAMERA_MODELS)}")
    names = CAMERA_MODELS[model].param_names
    if K[0, 1] != 0 and model != "PINHOLE_SKEW":
        raise ValueError(f"--K has skew {K[0, 1]}; use --camera-model PINHOLE_SKEW")
    f_mean = 0.5 * (K[0, 0] + K[1, 1])
    if names[0] == "f" and abs(K[0, 0] - K[1, 1]) > 1e-3 * f_mean:
        raise ValueError(f"--K has fx != fy but {model} has one focal length; use PINHOLE or OPENCV")
    check_K_for_image(K, width, height)
    values = {"f": f_mean, "fx": K[0, 0], "fy": K[1, 1], "skew": K[0, 1], "cx": K[0, 2], "cy": K[1, 2]}
    return Camera(model, width, height, [values.get(n, 0.0) for n in names])


def guess_intrinsics(
    width: int,
    height: int,
    model: str,
    K: np.ndarray | None = None,
    exif_focal_px: float | None = None,
) -> IntrinsicsGuess:
    """The initial camera of one image (see module docstring for the order of preference)."""
    if K is not None:
        return IntrinsicsGuess(camera_from_K(K, width, height, model), "K", True)
    if exif_focal_px is not None and np.isfinite(exif_focal_px) and exif_focal_px > 0:
        return IntrinsicsGuess(Camera.from_focal(exif_focal_px, width, height, model), "exif", False)
    f = FOCAL_PRIOR_FACTOR * max(width, height)
    return IntrinsicsGuess(Camera.from_focal(f, width, height, model), "prior", False)


@dataclass(frozen=True)
class RadialDistortion:
    """What :func:`radial_distortion` found: the parameter's value ``k`` (0 when not
    ``determined``), the value the pairs' summed cost preferred, and how many of the
    ``num_pairs`` pairs fit better with that than with no distortion."""

    k: float
    best_k: float
    pairs_preferring: int
    num_pairs: int
    determined: bool


def radial_distortion(pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], camera: Camera,
                      k_name: str, max_error_px: float) -> RadialDistortion:
    """The radial distortion shared by the images of ``camera``: the value of its parameter
    ``k_name`` (SIMPLE_RADIAL's k, k1 of RADIAL or OPENCV; the others as they are) under which
    fundamental matrices best fit the pairs' matches. Each pair is (inliers in image 1, in image
    2, all matches in image 1, in image 2), pixels (M,2) and (N,2): the camera with a candidate
    value unprojects them (exactly, as bundle adjustment will), the verified inliers (found under
    no distortion) start an 8-point F that is refitted four times on all the matches with Cauchy
    weights, and the pair scores the MSAC cost of all its matches' Sampson errors (pixels,
    threshold ``max_error_px``; matches beyond the lens's invertible region count as outliers):
    matches far out, which a wrong distortion keeps off every F, join at the right one. The
    pairs' costs are summed (one lens) over a grid of ``RADIAL_SEARCH_RANGE`` (the distortion
    at the image's half-diagonal: k = kappa (f / half-diagonal)^2), then a finer one about its
    best. (Fitzgibbon 2001 solves one pair under the division model as a polynomial eigenvalue
    problem; the 1-D search needs no minimal solver and keeps the camera's own model.)

    A lens bends every pair alike; matches on repeated structure that a distorted F happens to
    fit pull a few pairs each their own way. The value is kept (``determined``) only when the
    pairs that fit it better than no distortion are more than a fair coin would give at
    ``RADIAL_SIGN_TEST_LEVEL`` (one-sided sign test: 5 of 5, 10 of 12), else ``k`` is 0."""
    names = camera.param_names
    slot = names.index(k_name)
    f = camera.mean_focal_length
    to_k = (f / (0.5 * float(np.hypot(camera.width, camera.height)))) ** 2
    t2 = (max_error_px / f) ** 2

    def costs(kappa: float) -> np.ndarray:
        p = camera.params.copy()
        p[slot] = kappa * to_k
        cam = camera.with_params(p)
        out = np.full(len(pairs), np.inf)
        for q, (a_in, b_in, a, b) in enumerate(pairs):
            ra_in, rb_in, ra, rb = (cam.cam_from_img(x)[:, :2] for x in (a_in, b_in, a, b))
            ok_in = np.isfinite(ra_in[:, 0]) & np.isfinite(rb_in[:, 0])
            ok = np.isfinite(ra[:, 0]) & np.isfinite(rb[:, 0])
            if np.sum(ok_in) < 8 or np.sum(ok) < 8:
                continue
            F = fundamental_8pt(ra_in[ok_in], rb_in[ok_in])
            e = None
            for _ in range(4):
                if F is None:
                    break
                e = sampson_sq_errors(F, ra[ok], rb[ok])
                F = fundamental_8pt(ra[ok], rb[ok], 1.0 / (1.0 + e / t2))
            if F is not None:
                out[q] = float(np.sum(np.minimum(e, t2))) + t2 * float(np.sum(~ok))
        return out

    lo, hi = RADIAL_SEARCH_RANGE
    coarse = np.arange(lo, hi + 1e-9, RADIAL_COARSE_STEP)
    best = float(coarse[np.argmin([np.sum(costs(v)) for v in coarse])])
    fine = np.arange(best - RADIAL_COARSE_STEP, best + RADIAL_COARSE_STEP + 1e-9, RADIAL_FINE_STEP)
    per_pair = [costs(v) for v in fine]
    b = int(np.argmin([np.sum(c) for c in per_pair]))
    best = float(fine[b])
    preferring = int(np.sum(per_pair[b] < costs(0.0)))
    determined = sign_test_pvalue(preferring, len(pairs)) < RADIAL_SIGN_TEST_LEVEL  # a coin does as well?
    return RadialDistortion(best * to_k if determined else 0.0, best * to_k, preferring, len(pairs), determined)

