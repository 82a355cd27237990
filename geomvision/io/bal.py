"""Bundle Adjustment in the Large (BAL) text files <-> :class:`~geomvision.optim.BAProblem`.

Format (Agarwal et al., ECCV 2010)::

    n_cams n_pts n_obs
    cam_idx pt_idx x y                (n_obs lines)
    9 numbers per camera              angle-axis R (3), t (3), f, k1, k2
    3 numbers per point               X Y Z

BAL camera model: P = R X + t, p = -P / P.z, pixel = f (1 + k1 |p|^2 + k2 |p|^4) p with the
origin at the principal point, x right, y up; the camera looks down -z.

**Choice: BAL is mapped onto geomvision's RADIAL model exactly, not given a projection of its
own.** With D = diag(1, -1, -1) (a rotation by 180 degrees about x, det +1), R' = D R and
t' = D t give P' = D P, so P'.z = -P.z > 0 for points in front, and P'.x / P'.z = p.x,
P'.y / P'.z = -p.y. RADIAL (f, cx = 0, cy = 0, k1, k2) then projects to (u, v) = (x, -y) of the
BAL pixel: the same radial factor, the same |p|. So with observed v = -y every residual, and
hence every RMS, cost and optimum, is identical to BAL's (``tests/io/test_bal.py`` checks it
against a direct implementation of the BAL formula). One camera model and one set of
FD-verified Jacobians then serve both, and a BAL problem is an ordinary geomvision
reconstruction (y down, camera looking down +z). cx and cy stay 0 and are held fixed by the
default ``BAConfig`` (``refine_principal_point=False``); ``write_bal`` refuses a problem whose
principal point moved.

**Points behind a camera are kept and projected as BAL's model does.** BAL divides by -P.z and
never tests its sign, so a point behind the camera (P.z > 0, P'.z < 0 here) projects through the
centre to the mirrored position and is an ordinary residual. Real BAL files have such points at
the start (Ladybug: 31 of 31,843 observations), and Ceres's BAL examples solve the file with
them. ``read_bal`` and ``bal_to_problem`` therefore return a problem with ``cheirality=False``
(x = X / Z whatever the sign of Z; only Z = 0 does not project): the cost, the optimum and the
iterations are those of the file's own model. To drop those observations instead:
``problem_without_observations(problem, problem.depths() < 0)`` and ``cheirality=True``
(``geomvision ba --drop-behind`` does this and says how many).

Reading is token-based like Ceres's reader (line breaks are not significant); the text is parsed
in one ``np.fromstring`` call, and only a malformed file is re-read line by line to name the
line and the problem in the ``ValueError``. Writing is atomic (temp file + ``os.replace``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..geometry.camera import CAMERA_MODELS
from ..geometry.rotation import so3_exp, so3_log
from .._atomic import atomic_write_text
from .._validation import check_writer_arguments
from ..optim.problem import BAProblem

_FLIP = np.array([1.0, -1.0, -1.0])  # D = diag(1, -1, -1)
_RADIAL = CAMERA_MODELS["RADIAL"].model_id


def bal_to_problem(cameras: np.ndarray, points: np.ndarray, cam_idx: np.ndarray, pt_idx: np.ndarray,
                   xy: np.ndarray) -> BAProblem:
    """BAL arrays (cameras (C,9), points (N,3), observations cam_idx (M,), pt_idx (M,), xy (M,2))
    -> a BAProblem with one RADIAL camera (f, 0, 0, k1, k2) per image and ``cheirality=False``
    (BAL's projection: points behind a camera project too; see module docstring)."""
    cameras = np.asarray(cameras, dtype=np.float64).reshape(-1, 9)
    if not np.isfinite(cameras).all():
        raise ValueError("cameras: BAL camera parameters contain NaN or inf")
    R = so3_exp(cameras[:, 0:3]).reshape(-1, 3, 3) if len(cameras) else np.zeros((0, 3, 3))
    R = _FLIP[None, :, None] * R
    t = _FLIP[None, :] * cameras[:, 3:6]
    params = np.column_stack([cameras[:, 6], np.zeros(len(cameras)), np.zeros(len(cameras)), cameras[:, 7:9]])
    uv = np.column_stack([xy[:, 0], -xy[:, 1]]) if len(xy) else np.zeros((0, 2))
    return BAProblem.from_arrays(R, t, np.arange(len(cameras)), ["RADIAL"] * len(cameras), params, points,
                                 cam_idx, pt_idx, uv, cheirality=False)


def problem_to_bal(problem: BAProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`bal_to_problem`: (cameras (C,9), points, cam_idx, pt_idx, xy)."""
    if not np.array_equal(problem.img_cam, np.arange(problem.num_images)) or problem.num_cameras != problem.num_images:
        raise ValueError("problem: BAL needs one camera per image (img_cam = 0..I-1)")
    if np.any(problem.cam_model != _RADIAL):
        raise ValueError("problem: BAL cameras must be RADIAL models (f, cx, cy, k1, k2)")
    if np.any(problem.cam_params[:, 1:3] != 0.0):
        raise ValueError("problem: BAL has no principal point; cx and cy must stay 0 (keep refine_principal_point=False)")
    R = _FLIP[None, :, None] * problem.R
    t = _FLIP[None, :] * problem.t
    rotvec = so3_log(R).reshape(-1, 3) if len(R) else np.zeros((0, 3))
    p = problem.cam_params
    cameras = np.column_stack([rotvec, t, p[:, 0], p[:, 3], p[:, 4]])
    xy = np.column_stack([problem.obs_uv[:, 0], -problem.obs_uv[:, 1]])
    return cameras, problem.X.copy(), problem.obs_img.copy(), problem.obs_pt.copy(), xy


def read_bal(path: str | os.PathLike) -> BAProblem:
    """Read a BAL text file into a :class:`BAProblem`; malformed files raise ``ValueError``
    naming the file, the line and the problem."""
    path = Path(path)
    text = path.read_text()
    n_cams, n_pts, n_obs = _header(path, text)
    n_expected = 3 + 4 * n_obs + 9 * n_cams + 3 * n_pts
    try:
        with warnings.catch_warnings():  # older numpy warns and stops at a malformed token
            warnings.simplefilter("ignore", DeprecationWarning)
            values = np.fromstring(text, sep=" ")
    except ValueError:  # numpy >= 2.3 raises at a malformed token
        values = None
    if values is None or len(values) != n_expected or not np.isfinite(values).all():
        _diagnose(path, text, n_cams, n_pts, n_obs)
        raise ValueError(f"{path}: expected {n_expected} numbers for {n_cams} cameras, {n_pts} points and "
                         f"{n_obs} observations, found {0 if values is None else len(values)}")
    obs = values[3 : 3 + 4 * n_obs].reshape(n_obs, 4)
    cam_idx = obs[:, 0]
    pt_idx = obs[:, 1]
    for name, idx, n, col in (("camera index", cam_idx, n_cams, 0), ("point index", pt_idx, n_pts, 1)):
        bad = np.flatnonzero((idx != np.round(idx)) | (idx < 0) | (idx >= n))
        if len(bad):
            k = int(bad[0])
            raise ValueError(f"{path}: line {k + 2}: {name} {obs[k, col]:g} is not an integer in [0, {n}) "
                             f"({len(bad)} such observations)")
    o = 3 + 4 * n_obs
    cameras = values[o : o + 9 * n_cams].reshape(n_cams, 9)
    points = values[o + 9 * n_cams :].reshape(n_pts, 3)
    try:
        return bal_to_problem(cameras, points, cam_idx.astype(np.int64), pt_idx.astype(np.int64), obs[:, 2:4])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _header(path: Path, text: str) -> tuple[int, int, int]:
    first = text.split("\n", 1)[0].split()
    if len(first) != 3:
        raise ValueError(f"{path}: line 1: expected 'n_cams n_pts n_obs', got {' '.join(first)!r}")
    try:
        counts = [int(tok) for tok in first]
    except ValueError:
        raise ValueError(f"{path}: line 1: the counts must be integers, got {' '.join(first)!r}") from None
    if min(counts) < 0:
        raise ValueError(f"{path}: line 1: negative count in {' '.join(first)!r}")
    return counts[0], counts[1], counts[2]


def _diagnose(path: Path, text: str, n_cams: int, n_pts: int, n_obs: int) -> None:
    """Walk the file token by token and raise at the first malformed line."""
    sections = [(n_obs * 4, "observation"), (n_cams * 9, "camera parameter"), (n_pts * 3, "point coordinate")]
    sec = 0
    used = 0
    lines = text.split("\n")
    for lineno, line in enumerate(lines[1:], start=2):
        toks = line.split()
        if sec < 3 and sec == 0 and toks and len(toks) != 4 and used < n_obs * 4:
            raise ValueError(f"{path}: line {lineno}: an observation line needs 'cam_idx pt_idx x y', got {line.strip()!r}")
        for tok in toks:
            while sec < 3 and used >= sections[sec][0]:
                sec += 1
                used = 0
            if sec >= 3:
                raise ValueError(f"{path}: line {lineno}: unexpected extra value {tok!r} after the last point")
            try:
                v = float(tok)
            except ValueError:
                raise ValueError(f"{path}: line {lineno}: {sections[sec][1]} {tok!r} is not a number") from None
            if not np.isfinite(v):
                raise ValueError(f"{path}: line {lineno}: {sections[sec][1]} is {tok} (NaN or inf)")
            used += 1
    while sec < 3 and used >= sections[sec][0]:
        sec += 1
        used = 0
    if sec < 3:
        raise ValueError(f"{path}: line {len(lines)}: file ends early, in the {sections[sec][1]}s "
                         f"({used} of {sections[sec][0]} values read)")


def write_bal(problem: BAProblem, path: str | os.PathLike) -> None:
    """Write ``problem`` (one RADIAL camera per image, cx = cy = 0) as a BAL text file, atomically.
    Numbers are written as Python's shortest round-trip repr, so doubles survive exactly.
    ``(object, path)`` like every writer of geomvision (``write_model``, ``write_ply``, ``write_g2o``)."""
    check_writer_arguments(problem, "write_bal", "(problem, path)")
    if not isinstance(problem, BAProblem):
        raise ValueError(f"problem must be a BAProblem, got {type(problem).__name__}")
    cameras, points, cam_idx, pt_idx, xy = problem_to_bal(problem)
    path = Path(path)
    lines = [f"{len(cameras)} {len(points)} {len(cam_idx)}"]
    lines += [f"{c} {p} {x!r} {y!r}" for c, p, x, y in zip(cam_idx.tolist(), pt_idx.tolist(), xy[:, 0].tolist(),
                                                            xy[:, 1].tolist())]
    lines += map(repr, cameras.ravel().tolist())
    lines += map(repr, points.ravel().tolist())
    atomic_write_text(path, "\n".join(lines) + "\n")
