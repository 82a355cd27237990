"""Camera intrinsics: COLMAP's model names and parameter order, plus a full K with skew.

Pixel convention: (0, 0) is the centre of the top-left pixel (OpenCV, Strecha). COLMAP files
put that centre at (0.5, 0.5); only ``geomvision.io`` converts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import as_array, as_points, check_int, check_positive
from . import _camera_kernels as kern


@dataclass(frozen=True)
class CameraModelInfo:
    name: str
    model_id: int  # id used by the numba kernels
    colmap_id: int | None  # id in COLMAP binary files (None: not a COLMAP model)
    param_names: tuple[str, ...]


CAMERA_MODELS: dict[str, CameraModelInfo] = {
    info.name: info
    for info in [
        CameraModelInfo("SIMPLE_PINHOLE", kern.SIMPLE_PINHOLE, 0, ("f", "cx", "cy")),
        CameraModelInfo("PINHOLE", kern.PINHOLE, 1, ("fx", "fy", "cx", "cy")),
        CameraModelInfo("SIMPLE_RADIAL", kern.SIMPLE_RADIAL, 2, ("f", "cx", "cy", "k")),
        CameraModelInfo("RADIAL", kern.RADIAL, 3, ("f", "cx", "cy", "k1", "k2")),
        CameraModelInfo("OPENCV", kern.OPENCV, 4, ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2")),
        CameraModelInfo("OPENCV_FISHEYE", kern.OPENCV_FISHEYE, 5, ("fx", "fy", "cx", "cy", "k1", "k2", "k3", "k4")),
        CameraModelInfo("PINHOLE_SKEW", kern.PINHOLE_SKEW, None, ("fx", "fy", "skew", "cx", "cy")),
    ]
}
COLMAP_MODEL_NAMES: dict[int, str] = {i.colmap_id: n for n, i in CAMERA_MODELS.items() if i.colmap_id is not None}

UNPROJECT_TOL_PX = 1e-10


class Camera:
    """Intrinsics of one camera: ``Camera(model="PINHOLE", width=640, height=480, params=[fx, fy, cx, cy])``.

    ``model`` is one of ``CAMERA_MODELS`` (COLMAP names and parameter order, plus
    ``PINHOLE_SKEW`` = fx, fy, skew, cx, cy). ``params`` is copied to a float64 array.
    """

    __slots__ = ("model", "width", "height", "params")

    def __init__(self, model: str, width: int, height: int, params) -> None:
        if not isinstance(model, str) or model.upper() not in CAMERA_MODELS:
            raise ValueError(f"model: unknown camera model {model!r}; choose one of {', '.join(CAMERA_MODELS)}")
        self.model = model.upper()
        self.width = check_int(width, "width", minimum=1)
        self.height = check_int(height, "height", minimum=1)
        names = CAMERA_MODELS[self.model].param_names
        p = np.array(params, dtype=np.float64).ravel() if np.ndim(params) else np.array([params], dtype=np.float64)
        if p.shape != (len(names),):
            raise ValueError(
                f"params: {self.model} takes {len(names)} parameters ({', '.join(names)}), got {p.size}"
            )
        if not np.isfinite(p).all():
            raise ValueError(f"params contains NaN or inf: {p}")
        fx, fy = self._focals(p)
        if fx <= 0 or fy <= 0:
            raise ValueError(f"params: focal lengths must be positive, got fx={fx}, fy={fy}")
        self.params = p

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_K(cls, K: np.ndarray, width: int, height: int) -> Camera:
        """PINHOLE camera from a 3x3 K (PINHOLE_SKEW when K[0, 1] is not zero)."""
        K = as_array(K, "K", (3, 3))
        if not np.allclose(K[2], [0, 0, 1]) or abs(K[1, 0]) > 1e-12 * abs(K[1, 1]):
            raise ValueError(f"K must be upper triangular with last row [0, 0, 1], got\n{K}")
        if abs(K[0, 1]) > 1e-12 * abs(K[0, 0]):
            return cls("PINHOLE_SKEW", width, height, [K[0, 0], K[1, 1], K[0, 1], K[0, 2], K[1, 2]])
        return cls("PINHOLE", width, height, [K[0, 0], K[1, 1], K[0, 2], K[1, 2]])

    @classmethod
    def from_focal(cls, focal: float, width: int, height: int, model: str = "SIMPLE_PINHOLE") -> Camera:
        """Camera with focal length ``focal`` (pixels), the principal point at the image centre
        ((width - 1) / 2, (height - 1) / 2) and zero distortion, as from EXIF."""
        f = check_positive(focal, "focal")
        w = check_int(width, "width", minimum=1)
        h = check_int(height, "height", minimum=1)
        if not isinstance(model, str) or model.upper() not in CAMERA_MODELS:
            raise ValueError(f"model: unknown camera model {model!r}; choose one of {', '.join(CAMERA_MODELS)}")
        values = {"f": f, "fx": f, "fy": f, "cx": (w - 1) / 2.0, "cy": (h - 1) / 2.0}
        names = CAMERA_MODELS[model.upper()].param_names
        return cls(model, w, h, [values.get(n, 0.0) for n in names])

    # --- model layout -------------------------------------------------------------------------
    @property
    def model_id(self) -> int:
        return CAMERA_MODELS[self.model].model_id

    @property
    def param_names(self) -> tuple[str, ...]:
        return CAMERA_MODELS[self.model].param_names

    def _focals(self, p: np.ndarray) -> tuple[float, float]:
        names = CAMERA_MODELS[self.model].param_names
        if names[0] == "f":
            return float(p[0]), float(p[0])
        return float(p[0]), float(p[1])

    def param(self, name: str) -> float:
        """Value of a named parameter, e.g. ``camera.param("k1")``."""
        try:
            return float(self.params[self.param_names.index(name)])
        except ValueError:
            raise ValueError(f"name: {self.model} has no parameter {name!r} (it has {', '.join(self.param_names)})") from None

    @property
    def focal_length_x(self) -> float:
        return self._focals(self.params)[0]

    @property
    def focal_length_y(self) -> float:
        return self._focals(self.params)[1]

    @property
    def mean_focal_length(self) -> float:
        fx, fy = self._focals(self.params)
        return 0.5 * (fx + fy)

    @property
    def principal_point(self) -> np.ndarray:
        names = self.param_names
        return np.array([self.params[names.index("cx")], self.params[names.index("cy")]])

    @property
    def skew(self) -> float:
        return float(self.params[2]) if self.model == "PINHOLE_SKEW" else 0.0

    @property
    def num_affine_params(self) -> int:
        """Number of leading focal / skew / principal-point parameters; the rest are distortion."""
        return self.param_names.index("cy") + 1

    @property
    def has_distortion(self) -> bool:
        """True unless the model is an exact pinhole (the fisheye model always distorts)."""
        return self.model == "OPENCV_FISHEYE" or bool(np.any(self.params[self.num_affine_params :] != 0.0))

    @property
    def K(self) -> np.ndarray:
        """The 3x3 calibration matrix of the affine part (distortion is not in K)."""
        fx, fy = self._focals(self.params)
        cx, cy = self.principal_point
        return np.array([[fx, self.skew, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    # --- projection ---------------------------------------------------------------------------
    def img_from_cam(self, X_cam: np.ndarray, *, jacobians: bool = False):
        """Project camera-frame points (N,3) to pixels (N,2); rows with Z <= 0 are NaN.

        With ``jacobians=True`` returns ``(uv, J_point, J_params)``: d uv / d X_cam (N,2,3)
        and d uv / d params (N,2,P) in ``param_names`` order.
        """
        X = as_points(X_cam, "X_cam", 3, allow_single=False)
        if jacobians:
            return kern.project_points_jac(self.model_id, self.params, X)
        return kern.project_points(self.model_id, self.params, X)

    def cam_from_img(self, uv: np.ndarray) -> np.ndarray:
        """Unproject pixels (N,2) to camera-frame directions (N,3) on the plane z = 1.

        ``X_cam = depth * cam_from_img(uv)``. Distortion is inverted iteratively to 1e-10 px;
        pixels outside the invertible region of the lens model give NaN rows.
        """
        uv = as_points(uv, "uv", 2)
        return kern.unproject_rays(self.model_id, self.params, uv, UNPROJECT_TOL_PX)

    def bearings_from_img(self, uv: np.ndarray) -> np.ndarray:
        """Unit bearing vectors (N,3) of pixels (N,2): ``cam_from_img`` normalised."""
        rays = self.cam_from_img(uv)
        return rays / np.linalg.norm(rays, axis=1, keepdims=True)

    # --- variants -----------------------------------------------------------------------------
    def with_params(self, params) -> Camera:
        return Camera(self.model, self.width, self.height, params)

    def rescaled(self, width: int, height: int) -> Camera:
        """The same lens for an image resized to ``width`` x ``height`` (focal and principal
        point scaled; the pixel-centre convention is kept: u' = s (u + 0.5) - 0.5)."""
        w = check_int(width, "width", minimum=1)
        h = check_int(height, "height", minimum=1)
        sx, sy = w / self.width, h / self.height
        p = self.params.copy()
        names = self.param_names
        if names[0] == "f":
            if abs(sx - sy) > 1e-9 * max(sx, sy):
                raise ValueError(f"{self.model} has one focal length: rescale with the same factor in x and y")
            p[0] *= sx
        else:
            p[0] *= sx
            p[1] *= sy
        if self.model == "PINHOLE_SKEW":
            p[2] *= sx
        i_cx, i_cy = names.index("cx"), names.index("cy")
        p[i_cx] = sx * (p[i_cx] + 0.5) - 0.5
        p[i_cy] = sy * (p[i_cy] + 0.5) - 0.5
        return Camera(self.model, w, h, p)

    # --- value semantics ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"model": self.model, "width": self.width, "height": self.height, "params": self.params.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Camera:
        return cls(d["model"], d["width"], d["height"], d["params"])

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, Camera)
            and self.model == other.model
            and self.width == other.width
            and self.height == other.height
            and np.array_equal(self.params, other.params)
        )

    __hash__ = None

    def __repr__(self) -> str:
        ps = ", ".join(f"{n}={v:.6g}" for n, v in zip(self.param_names, self.params))
        return f"Camera({self.model}, {self.width}x{self.height}, {ps})"
