"""Initial intrinsics for the SfM pipeline: a known K, EXIF focal length, or a prior.

Order of preference (per image, or once for all images when shared):
1. a known K (``--K K.txt`` holding a 3x3 matrix, or ``--K fx,fy,cx,cy``): kept fixed by default;
2. the EXIF focal length (35 mm equivalent) of the image;
3. a prior of ``1.2 * max(width, height)`` with the principal point at the image centre,
   refined by bundle adjustment (a warning says so).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..geometry.camera import CAMERA_MODELS, Camera

FOCAL_PRIOR_FACTOR = 1.2


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
                K = np.loadtxt(path, dtype=float, ndmin=2)
            except ValueError as exc:
                raise ValueError(f"--K file {path}: not a 3x3 matrix of numbers ({exc})") from None
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
        raise ValueError(f"--K must be a finite 3x3 matrix, got {K}")
    if K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0, 0, 1]) or K[1, 0] != 0:
        raise ValueError(f"--K must be upper triangular with positive focal lengths and last row [0, 0, 1], got\n{K}")
    return K


def camera_from_K(K: np.ndarray, width: int, height: int, model: str) -> Camera:
    """Camera of ``model`` whose affine part is K and whose distortion is zero."""
    model = model.upper()
    if model not in CAMERA_MODELS:
        raise ValueError(f"camera_model: unknown model {model!r}; choose one of {', '.join(CAMERA_MODELS)}")
    names = CAMERA_MODELS[model].param_names
    if K[0, 1] != 0 and model != "PINHOLE_SKEW":
        raise ValueError(f"--K has skew {K[0, 1]}; use --camera-model PINHOLE_SKEW")
    f_mean = 0.5 * (K[0, 0] + K[1, 1])
    if names[0] == "f" and abs(K[0, 0] - K[1, 1]) > 1e-3 * f_mean:
        raise ValueError(f"--K has fx != fy but {model} has one focal length; use PINHOLE or OPENCV")
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
