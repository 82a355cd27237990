"""Motion-only and structure-only refinement, the two small problems of incremental SfM.

- :func:`refine_pose`: one ``cam_from_world`` from 2D-3D matches (points fixed), optionally with
  the camera's focal length / distortion.
- :func:`refine_points`: 3-D points from their observations with every pose and camera fixed.

Both build a :class:`BAProblem` and run the same LM driver as full bundle adjustment; the
Schur system degenerates to the 6x6 (plus intrinsics) pose block, or to independent 3x3 point
blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._validation import as_points, check_same_length
from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3
from .config import BAConfig, BAOptions
from .problem import BAProblem
from .solver import BAReport, solve_bundle


def refine_pose(
    uv: np.ndarray,
    X_world: np.ndarray,
    camera: Camera,
    cam_from_world: Rigid3,
    options: BAOptions | None = None,
    *,
    refine_focal_length: bool = False,
    refine_extra_params: bool = False,
) -> tuple[Rigid3, Camera, BAReport]:
    """Refine one pose on the reprojection error of 2D-3D matches uv (N,2) <-> X_world (N,3).

    Points are held fixed; use ``options.loss`` (e.g. ``BAOptions(loss="huber", loss_scale=2)``)
    for matches with outliers. Returns (cam_from_world, camera, report). Matches whose point is
    behind the initial camera raise ``ValueError`` (drop them first).
    """
    uv = as_points(uv, "uv", 2)
    X_world = as_points(X_world, "X_world", 3)
    n = check_same_length(uv=uv, X_world=X_world)
    if not isinstance(camera, Camera) or not isinstance(cam_from_world, Rigid3):
        raise ValueError("camera must be a Camera and cam_from_world a Rigid3")
    problem = BAProblem.from_arrays(
        cam_from_world.R[None], cam_from_world.t[None], [0], [camera.model], [camera.params], X_world,
        np.zeros(n, np.int64), np.arange(n), uv,
    )
    config = BAConfig(refine_points=False, refine_focal_length=refine_focal_length,
                      refine_extra_params=refine_extra_params)
    report = solve_bundle(problem, options, config)
    pose = Rigid3(problem.R[0], problem.t[0], check=False)
    return pose, camera.with_params(problem.cam_params[0, : problem.cam_nparams[0]]), report


def refine_points(
    X_world: np.ndarray,
    obs_point_idx: np.ndarray,
    obs_image_idx: np.ndarray,
    obs_uv: np.ndarray,
    cameras: Sequence[Camera],
    cams_from_world: Sequence[Rigid3],
    options: BAOptions | None = None,
    *,
    image_cameras: Sequence[int] | None = None,
) -> tuple[np.ndarray, BAReport]:
    """Structure-only refinement: X_world (N,3) from observations (obs_point_idx, obs_image_idx,
    obs_uv (M,2)) with every pose and camera fixed. ``image_cameras`` gives the camera index of
    each image (default: image k uses ``cameras[k]``). Returns (refined X_world (N,3), report)."""
    X_world = as_points(X_world, "X_world", 3)
    obs_uv = as_points(obs_uv, "obs_uv", 2)
    if image_cameras is None:
        if len(cameras) != len(cams_from_world):
            raise ValueError("cameras: give one camera per image, or image_cameras")
        image_cameras = np.arange(len(cams_from_world))
    problem = BAProblem.from_arrays(
        np.array([T.R for T in cams_from_world]).reshape(-1, 3, 3), np.array([T.t for T in cams_from_world]).reshape(-1, 3),
        image_cameras, [c.model for c in cameras], [c.params for c in cameras], X_world, obs_image_idx,
        obs_point_idx, obs_uv,
    )
    config = BAConfig(refine_poses=False, refine_focal_length=False, refine_extra_params=False)
    report = solve_bundle(problem, options, config)
    return problem.X.copy(), report
