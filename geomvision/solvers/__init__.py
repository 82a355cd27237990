"""Geometric solvers: minimal and non-minimal estimators returning 0..k candidate models.

Conventions: ``x2 ~ H x1``; ``x2^T F x1 = 0``; ``E = [t]_x R`` for ``cam2_from_cam1 = (R, t)``
with unit t; absolute poses are ``cam_from_world``. Rays are camera-frame directions of any
length (``Camera.cam_from_img`` output), so ray-based solvers work for every camera model.

The Python functions validate input and return lists / ``None`` / ``Rigid3``. Each wraps a
numba core that RANSAC loops call directly from ``@njit`` code (no validation there: pass
C-contiguous float64 arrays; minimal cores read only the first k rows):

| core | signature |
| --- | --- |
| ``homography.homography_4pt_nb`` | ``(x1 (>=4,2), x2 (>=4,2)) -> (H (3,3), ok)`` |
| ``homography.homography_dlt_nb`` | ``(x1 (N,2), x2 (N,2), w (N,)) -> (H (3,3), ok)`` |
| ``essential.essential_5pt_nb`` | ``(rays1 (>=5,3), rays2 (>=5,3)) -> (Es (10,3,3), n)`` |
| ``essential.relative_pose_5pt_nb`` | ``(rays1, rays2, always_polish, all_in_front) -> (Rs (10,3,3), ts (10,3), n)`` cam2_from_cam1 |
| ``essential.essential_8pt_nb`` | ``(rays1 (N,3), rays2 (N,3), w (N,)) -> (E (3,3), ok)`` |
| ``essential.decompose_essential_nb`` | ``(E) -> (Rs (4,3,3), ts (4,3), ok)`` |
| ``essential.count_in_front_nb`` | ``(R, t, rays1 (N,3), rays2 (N,3)) -> int`` |
| ``essential.relative_pose_from_essential_nb`` | ``(E, rays1, rays2) -> (R, t, n_in_front)`` |
| ``essential.best_cheirality_nb`` | ``(R, t, rays1, rays2) -> (R, t, n_in_front)`` of the 4 poses of [t]_x R |
| ``fundamental.fundamental_7pt_nb`` | ``(x1 (>=7,2), x2 (>=7,2)) -> (Fs (3,3,3), n)`` |
| ``fundamental.fundamental_8pt_nb`` | ``(x1 (N,2), x2 (N,2), w (N,)) -> (F (3,3), ok)`` |
| ``absolute.p3p_nb`` | ``(rays (>=3,3), X_world (>=3,3)) -> (Rs (4,3,3), ts (4,3), n)`` cam_from_world |
| ``absolute.epnp_nb`` | ``(rays (N,3), X_world (N,3)) -> (R (3,3), t (3,), ok)`` cam_from_world |
| ``similarity.sim3_from_points_nb`` | ``(X_a (N>=3,3), X_b (N,3), w (N,), with_scale) -> (s, R, t, ok)`` b_from_a |
| ``focal.focal_from_fundamental_nb`` | ``(F, pp1 (2,), pp2 (2,)) -> (f1, f2)`` NaN when imaginary |
| ``focal.shared_focal_from_fundamental_nb`` | ``(F, pp (2,), scale) -> f`` NaN when none |
| ``refine.refine_homography_nb`` | ``(H, x1, x2, w, max_iter, ftol, xtol, gtol) -> (H, iters, cost0, cost)`` |
| ``refine.refine_fundamental_nb`` | ``(F, x1, x2, w, max_iter, ftol, xtol, gtol) -> (F, iters, cost0, cost)`` |
| ``refine.refine_relative_pose_nb`` | ``(R, t, rays1, rays2, w, on_sphere, max_iter, ftol, xtol, gtol) -> (R, t, iters, cost0, cost)`` |
| ``refine.refine_absolute_pose_nb`` | ``(R, t, uv, X_world, model_id, params, w, max_iter, ftol, xtol, gtol) -> (R, t, iters, cost0, cost)`` |

Plane decompositions (numpy, a few per model; each returns the candidates of a two-fold ambiguity):
``decompose_homography(H)`` the (up to 4) motions and normals ``R + t n^T`` of a calibrated
homography, ``relative_poses_from_homography(H, rays1, rays2)`` those with the plane in front of
both cameras, ``planar_pose_ippe(rays, X_world)`` the two poses of a plane seen by one camera.

Refiners minimise sum_i w_i r_i^2 (w_i = 0 ignores a point): homography on the one-sided
transfer error (pixels^2), fundamental on the Sampson error (pixels^2, rank 2 kept), relative
pose on the Sampson error of E on the z = 1 plane (``on_sphere=False``, needs every ray z > 0)
or in the bearings' tangent planes (``on_sphere=True``, any direction), absolute pose on the
pixel reprojection error through the camera model (``Camera.model_id``, ``Camera.params``).
Typical options: ``max_iter=100, ftol=1e-12, xtol=1e-12, gtol=1e-14``.

Per-call CPU time from numba (benchmarks/RESULTS.md, "Minimal solvers"): homography_4pt 0.2 us,
p3p 0.7 us, fundamental_7pt 2 us, essential_5pt 11 us (relative_pose_5pt 12 us).
"""

from .absolute import epnp, p3p, planar_pose_ippe
from .essential import (
    decompose_essential,
    essential_5pt,
    essential_8pt,
    relative_pose_5pt,
    relative_pose_from_essential,
)
from .focal import focal_from_fundamental, shared_focal_from_fundamental
from .fundamental import fundamental_7pt, fundamental_8pt
from .homography import decompose_homography, homography_4pt, homography_dlt, relative_poses_from_homography
from .refine import RefineInfo, refine_absolute_pose, refine_fundamental, refine_homography, refine_relative_pose
from .similarity import sim3_from_points

__all__ = [
    "RefineInfo",
    "decompose_essential",
    "decompose_homography",
    "epnp",
    "essential_5pt",
    "essential_8pt",
    "focal_from_fundamental",
    "fundamental_7pt",
    "fundamental_8pt",
    "homography_4pt",
    "homography_dlt",
    "p3p",
    "planar_pose_ippe",
    "refine_absolute_pose",
    "refine_fundamental",
    "refine_homography",
    "refine_relative_pose",
    "relative_pose_5pt",
    "relative_pose_from_essential",
    "relative_poses_from_homography",
    "shared_focal_from_fundamental",
    "sim3_from_points",
]
