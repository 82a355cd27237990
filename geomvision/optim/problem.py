"""The structure-of-arrays bundle-adjustment problem that the kernels work on.

``BAProblem`` holds poses, intrinsics, points and observations as flat float64 / int64 arrays
(see ``_ba_kernels.py`` for the layout). It is built from a Reconstruction by
``bundle_adjustment.problem_from_reconstruction`` or from a BAL file by ``io.bal``; the solver
updates it in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.camera import CAMERA_MODELS
from . import _ba_kernels as kern

MODEL_NPARAMS = {info.model_id: len(info.param_names) for info in CAMERA_MODELS.values()}
MODEL_NAMES = {info.model_id: name for name, info in CAMERA_MODELS.items()}


@dataclass
class BAProblem:
    """Bundle-adjustment arrays. Shapes: I images, C cameras, N points, M observations.

    R (I,3,3), t (I,3): cam_from_world per image; img_cam (I,) camera index of each image;
    cam_model (C,) kernel model ids, cam_params (C,P) zero-padded, cam_nparams (C,);
    X (N,3) world points; obs_img (M,), obs_pt (M,), obs_uv (M,2) pixel observations;
    obs_inv_sigma (M,) 1 / standard deviation (pixels) of each observation (default 1: every
    residual weighs the same). The cost is ``0.5 sum rho(|r_k|^2 / sigma_k^2)``.

    ``cheirality``: True (geomvision's cameras, the default) - a point projects only when it is in
    front of its camera (Z > 0); an observation of a point behind is invalid (refused at the
    start, a step that puts a point behind is rejected). False - the point projects through the
    centre whatever the sign of its depth (x = X / Z): the camera model of BAL files
    (p = -P / P.z, the sign of P.z untested), which Ceres's BAL examples follow; ``io.read_bal``
    sets it so a BAL file is solved as its model defines it.
    """

    R: np.ndarray
    t: np.ndarray
    img_cam: np.ndarray
    cam_model: np.ndarray
    cam_params: np.ndarray
    cam_nparams: np.ndarray
    X: np.ndarray
    obs_img: np.ndarray
    obs_pt: np.ndarray
    obs_uv: np.ndarray
    obs_inv_sigma: np.ndarray | None = None
    cheirality: bool = True

    def __post_init__(self) -> None:
        if self.obs_inv_sigma is None:
            self.obs_inv_sigma = np.ones(len(self.obs_img))
        if not isinstance(self.cheirality, (bool, np.bool_)):
            raise ValueError(f"cheirality must be True or False, got {self.cheirality!r}")
        self.cheirality = bool(self.cheirality)

    @classmethod
    def from_arrays(
        cls,
        R,
        t,
        img_cam,
        cam_models,
        cam_params,
        X,
        obs_img,
        obs_pt,
        obs_uv,
        obs_sigma=None,
        *,
        cheirality: bool = True,
    ) -> BAProblem:
        """Validate and pack copies of the arrays. ``cam_models`` is a list of model names (or
        kernel ids); ``cam_params`` a list of per-camera parameter vectors (or a (C,P) array);
        ``obs_sigma`` (M,) the standard deviation in pixels of each observation (default 1);
        ``cheirality``: see the class docstring (False: BAL's projection)."""
        R = _float(R, "R")
        t = _float(t, "t")
        if R.ndim != 3 or R.shape[1:] != (3, 3):
            raise ValueError(f"R must have shape (I, 3, 3), got {R.shape}")
        if t.shape != (len(R), 3):
            raise ValueError(f"t must have shape ({len(R)}, 3) like R, got {t.shape}")
        err = np.abs(np.einsum("nij,nkj->nik", R, R) - np.eye(3)).max(axis=(1, 2)) if len(R) else np.zeros(0)
        bad = np.flatnonzero(~(err < 1e-6) | ~(np.linalg.det(R) > 0)) if len(R) else np.zeros(0, int)
        if len(bad):
            raise ValueError(f"R: {len(bad)} matrices are not rotations (first: image {bad[0]}); orthonormalise them")
        models = []
        for m in cam_models:
            if isinstance(m, str):
                if m.upper() not in CAMERA_MODELS:
                    raise ValueError(f"cam_models: unknown model {m!r}; choose one of {', '.join(CAMERA_MODELS)}")
                models.append(CAMERA_MODELS[m.upper()].model_id)
            else:
                if int(m) not in MODEL_NPARAMS:
                    raise ValueError(f"cam_models: unknown model id {m!r}")
                models.append(int(m))
        cam_model = np.array(models, dtype=np.int64)
        nparams = np.array([MODEL_NPARAMS[m] for m in models], dtype=np.int64)
        P = int(nparams.max()) if len(nparams) else 1
        params = np.zeros((len(models), P))
        rows = list(cam_params)
        if len(rows) != len(models):
            raise ValueError(f"cam_params has {len(rows)} cameras but cam_models has {len(models)}")
        for c, (row, n) in enumerate(zip(rows, nparams)):
            row = np.asarray(row, dtype=np.float64).ravel()
            if len(row) < n:
                raise ValueError(f"cam_params[{c}]: {MODEL_NAMES[models[c]]} takes {n} parameters, got {len(row)}")
            if np.any(row[n:] != 0):
                raise ValueError(f"cam_params[{c}]: {MODEL_NAMES[models[c]]} takes {n} parameters, got {len(row)}")
            params[c, :n] = row[:n]
        prob = cls(
            R=R,
            t=t,
            img_cam=_int(img_cam, "img_cam"),
            cam_model=cam_model,
            cam_params=params,
            cam_nparams=nparams,
            X=_float(X, "X"),
            obs_img=_int(obs_img, "obs_img"),
            obs_pt=_int(obs_pt, "obs_pt"),
            obs_uv=_float(obs_uv, "obs_uv"),
            obs_inv_sigma=None if obs_sigma is None else _inverse_sigma(obs_sigma),
            cheirality=cheirality,
        )
        prob.validate()
        return prob

    # --- sizes ----------------------------------------------------------------------------------
    @property
    def num_images(self) -> int:
        return len(self.R)

    @property
    def num_cameras(self) -> int:
        return len(self.cam_model)

    @property
    def num_points(self) -> int:
        return len(self.X)

    @property
    def num_observations(self) -> int:
        return len(self.obs_img)

    def copy(self) -> BAProblem:
        return BAProblem(**{k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v
                            for k, v in self.__dict__.items()})

    # --- checks -----------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ValueError`` on inconsistent shapes, indices out of range or NaN / inf values."""
        I, C, N, M = self.num_images, self.num_cameras, self.num_points, self.num_observations
        if self.X.ndim != 2 or self.X.shape[1] != 3:
            raise ValueError(f"X must have shape (N, 3), got {self.X.shape}")
        if self.obs_uv.shape != (M, 2) or self.obs_pt.shape != (M,):
            raise ValueError(
                f"observations: obs_img {self.obs_img.shape}, obs_pt {self.obs_pt.shape}, obs_uv {self.obs_uv.shape} "
                "must be (M,), (M,), (M, 2)"
            )
        if self.obs_inv_sigma.shape != (M,) or not np.all(np.isfinite(self.obs_inv_sigma) & (self.obs_inv_sigma > 0)):
            raise ValueError(f"obs_sigma must hold one positive, finite standard deviation per observation ({M})")
        if self.img_cam.shape != (I,):
            raise ValueError(f"img_cam must have one camera index per image, shape ({I},), got {self.img_cam.shape}")
        if self.cam_params.shape[0] != C or self.cam_nparams.shape != (C,):
            raise ValueError("cam_params / cam_nparams must have one row per camera")
        for name, idx, n in (("img_cam", self.img_cam, C), ("obs_img", self.obs_img, I), ("obs_pt", self.obs_pt, N)):
            bad = np.flatnonzero((idx < 0) | (idx >= n))
            if len(bad):
                raise ValueError(f"{name}: {len(bad)} indices out of range [0, {n}) (first at row {bad[0]}: {idx[bad[0]]})")
        for name in ("R", "t", "cam_params", "X", "obs_uv"):
            a = getattr(self, name)
            if not np.isfinite(a).all():
                bad = np.argwhere(~np.isfinite(a))[0]
                raise ValueError(f"{name} contains NaN or inf (first at index {tuple(int(b) for b in bad)})")
        f0 = self.cam_params[:, 0]
        if np.any(f0 <= 0):
            raise ValueError(f"cam_params: focal length must be positive (camera {int(np.argmin(f0))} has {f0.min()})")

    def depths(self) -> np.ndarray:
        """Depth (Z in the camera frame) of every observation (M,); negative: the point is behind."""
        R = self.R[self.obs_img]
        return np.einsum("nj,nj->n", R[:, 2, :], self.X[self.obs_pt]) + self.t[self.obs_img, 2]

    def sq_errors(self) -> np.ndarray:
        """Squared reprojection error per observation (M,) in px^2; NaN for points that do not
        project (behind the camera when ``cheirality`` holds)."""
        return kern.sq_errors(
            self.R, self.t, self.cam_model, self.cam_params, self.cam_nparams, self.img_cam, self.X,
            self.obs_img, self.obs_pt, self.obs_uv, self.cheirality,
        )

    def noise_sigma(self) -> float:
        """The noise the residuals show, robustly: the per-axis standard deviation of a 2-D
        Gaussian with their median squared norm (``median / (2 ln 2)``, square-rooted), each
        residual in units of its observation's sigma (``obs_inv_sigma``); NaN when none projects."""
        e = self.sq_errors() * self.obs_inv_sigma**2
        e = e[np.isfinite(e)]
        return float(np.sqrt(np.median(e) / (2.0 * np.log(2.0)))) if len(e) else float("nan")

    def rms_px(self) -> float:
        """Root mean square over observations of the 2-D reprojection error norm (pixels)."""
        e = self.sq_errors()
        return float(np.sqrt(np.mean(e))) if len(e) else float("nan")


def _inverse_sigma(obs_sigma) -> np.ndarray:
    sigma = _float(obs_sigma, "obs_sigma").ravel()
    if not np.all(np.isfinite(sigma) & (sigma > 0)):
        raise ValueError("obs_sigma must hold one positive, finite standard deviation per observation")
    return 1.0 / sigma


def _float(a, name: str) -> np.ndarray:
    try:
        return np.array(a, dtype=np.float64, order="C", copy=True)  # the solver updates in place
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a float array: {exc}") from None


def _int(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.size and arr.dtype.kind == "f" and (not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))):
        raise ValueError(f"{name} must hold integer indices")
    if arr.size and arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    return np.array(arr, dtype=np.int64, order="C", copy=True).ravel() if arr.ndim <= 1 else _bad_ndim(name, arr)


def _bad_ndim(name: str, arr: np.ndarray):
    raise ValueError(f"{name} must be a 1-D index array, got shape {arr.shape}")
