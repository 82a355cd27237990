"""Planar scenes: the plane's two-fold ambiguities resolved by all the evidence, and whether a
model rests on a plane (issue 18, item 2).

Points on one plane leave the geometry ambiguous where a general scene does not:

- **two views**: a homography has two decompositions ``(R, t, n)`` with the plane in front of
  both cameras (:func:`geomvision.solvers.homography.relative_poses_from_homography`), which
  explain every point on the plane exactly; an essential matrix fitted to those points is either
  of them, at random. :func:`planar_pair_pose` chooses by all the evidence: the pair's matches
  off the plane when they tell the two apart; else the rotations of the other verified pairs
  averaged (the pair's own left out) when one candidate is far nearer them; else further views
  as well: the points
  triangulated by each candidate must be seen by a third camera with the intrinsics it has, and
  only the true plane is (the wrong one is the true plane seen through a perspectivity from
  camera 1: no camera with those intrinsics images it exactly). The choice needs the better
  candidate to be ``AMBIGUITY_LIKELIHOOD_RATIO`` times as likely as the other; else the pair
  is refused.
- **one view of known points** (registration): two poses (IPPE); resolved by
  :func:`geomvision.robust.resolve_pose_ambiguity`.
- **self-calibration**: a fundamental matrix is undetermined by a plane, so the focal length
  cannot come from F; ``run_sfm`` refuses it and holds the intrinsics (the pipeline's
  docstring).

:func:`plane_support` measures how much of a model lies on one plane, for the warning that the
model rests on a plane.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar

from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3
from ..geometry.triangulation import triangulate_two_view
from ..robust import AbsolutePoseEstimator, RelativePoseEstimator, estimate_absolute_pose, resolve_pose_ambiguity
from ..robust.absolute_pose import AMBIGUITY_LIKELIHOOD_RATIO
from ..solvers.homography import homography_dlt, relative_poses_from_homography
from .state import MapperState
from .verification import TwoViewGeometry, median_triangulation_angle_deg
from .view_rotations import MAX_ROTATION_RESIDUAL_DEG

MAX_THIRD_VIEWS = 3  # further views that judge the two candidates of a planar pair (most shared tracks first)
_MEDIAN_CHI2_1DOF = 0.4549  # median of e^2 / sigma^2 for a 1-D Gaussian error (Sampson distance)
_MEDIAN_CHI2_2DOF = 2.0 * math.log(2.0)  # ... for a 2-D one (reprojection error)
# a scene is planar when this fraction of its verified pairs (panoramic ones aside) is planar
PLANAR_SCENE_MIN_PAIR_RATIO = 0.9
# a model rests on a plane when this fraction of its points lies within PLANE_MAX_DISTANCE_RATIO x
# the size of the scene (the range of the central 90 % of its points along their second principal
# axis) of one plane: relief below 2 % of the size leaves F, and the focal length, ill-determined
PLANE_MIN_INLIER_RATIO = 0.9
PLANE_MAX_DISTANCE_RATIO = 0.02


@dataclass
class PlanarPairPose:
    """What :func:`planar_pair_pose` decided.

    pose : ``cam_j_from_cam_i`` (unit translation) or None when refused (``reason`` says why).
    tri_angle_deg : median triangulation angle of the pair's matches under ``pose``.
    candidates : per decomposition: its cost on the pair and on each further view (pixels^2).
    cost : the chosen candidate's MSAC cost: the pair's, plus the further views' when they were
        asked (pixels^2; inf when no candidate was scored).
    noise_sq_px : the noise variance its residuals show (pixels^2).
    num_views : further views that judged the candidates (0 when the pair's own matches decided).
    decided_by : "pair" (its own matches), "rotations" (the other pairs' averaged rotations),
        "views" (further views), or "" when refused.
    """

    pose: Rigid3 | None
    tri_angle_deg: float = 0.0
    reason: str = ""
    candidates: list[dict] = field(default_factory=list)
    cost: float = math.inf
    noise_sq_px: float = float("nan")
    num_views: int = 0
    decided_by: str = ""


def _msac(sq: np.ndarray, t2: float) -> float:
    return float(np.sum(np.minimum(np.where(np.isfinite(sq), sq, t2), t2)))


def planar_pair_pose(state: MapperState, geom: TwoViewGeometry, i: int, j: int, *, max_error: float,
                     abs_pose_max_error: float, min_view_correspondences: int,
                     rng: np.random.Generator, camera_of: Callable[[int], Camera] | None = None,
                     pair_first: bool = True,
                     rotation_residual_deg: Callable[[np.ndarray], float | None] | None = None,
                     pair_only: bool = False) -> PlanarPairPose:
    """The relative pose ``cam_j_from_cam_i`` of a planar pair (i, j), chosen among the
    decompositions of its homography by all the evidence (module docstring).

    The homography is refitted on the rays of the pair's matches that the verified pixel
    homography explains within ``max_error`` (lens distortion removed by the cameras' current
    intrinsics). Each candidate is scored by the MSAC cost (threshold ``max_error``) of the
    pixel Sampson errors of all the pair's matches; when those off the plane tell the
    candidates apart (:func:`_decided_by_pair`) the best is chosen. Else, given
    ``rotation_residual_deg(R)`` (degrees between a candidate rotation and the one the other
    verified pairs' averaged rotations give the pair, or None when none join its views), the
    candidate nearest them is chosen when every other is farther by more than
    ``MAX_ROTATION_RESIDUAL_DEG`` and twice as far: at a corner of a walk, where each pair sees
    one wall, the loop of the other pairs knows the rotation (to a few degrees) that one further
    view on repeated windows may not. Else (or
    with ``pair_first=False``) each cost is added, for each of up to ``MAX_THIRD_VIEWS``
    further images that see at least ``min_view_correspondences`` of the tracks of i and j, the
    MSAC cost (threshold ``abs_pose_max_error``) of its best pose (RANSAC, then both planar pose
    minima) against the candidate's triangulated points. The lowest total wins when it is
    ``AMBIGUITY_LIKELIHOOD_RATIO`` times as likely as the next (Gaussian noise of the variance
    the winner's residuals show); else the pair is refused. The pair's matches come first: on
    repeated structure the further views' tracks hold wrong matches, and views close together
    (along a facade) see the wrong plane almost as well as the true one, so their costs can
    outweigh the pair's clear evidence by chance. ``pair_only``: the pair's own matches decide
    or the pose is None. ``camera_of(image)`` overrides the state's
    cameras (:func:`focal_from_plane` tries focal lengths with it, on the totals:
    ``pair_first=False``).
    """
    s = state
    camera_of = camera_of or (lambda k: s.cameras[s.img_cam[k]])
    ci, cj = camera_of(i), camera_of(j)
    x1 = s.images.keypoints[i][geom.inlier_matches[:, 0]]
    x2 = s.images.keypoints[j][geom.inlier_matches[:, 1]]
    r1, r2 = ci.cam_from_img(x1), cj.cam_from_img(x2)
    ok = np.isfinite(r1).all(axis=1) & np.isfinite(r2).all(axis=1)
    on_plane = ok.copy()
    if geom.H is not None:
        y = np.c_[x1, np.ones(len(x1))] @ geom.H.T
        with np.errstate(divide="ignore", invalid="ignore"):
            e = np.sum((y[:, :2] / y[:, 2:3] - x2) ** 2, axis=1)
        on_plane &= e <= max_error**2
    if on_plane.sum() < 8:
        return PlanarPairPose(None, reason=f"only {int(on_plane.sum())} matches on the plane")
    Hc = homography_dlt(r1[on_plane, :2], r2[on_plane, :2])
    if Hc is None:
        return PlanarPairPose(None, reason="the homography of the plane is degenerate")
    cands = [p for p, _n, _f in relative_poses_from_homography(Hc, r1[on_plane], r2[on_plane])]
    if not cands:
        return PlanarPairPose(None, reason="no decomposition of the homography puts the plane in front of both "
                                           "cameras with a baseline (a pure rotation?)")
    # --- the pair's own evidence: every match, on the plane or off it
    t2 = max_error**2
    est = RelativePoseEstimator(x1[ok], x2[ok], ci, cj)
    pair_sq = [est.sq_errors(p) for p in cands]
    costs = np.array([_msac(e, t2) for e in pair_sq])
    info = [{"pair_cost": round(float(c), 3), "views": {}} for c in costs]
    if pair_first and len(cands) > 1:
        decided = _decided_by_pair(pair_sq, ~on_plane[ok], t2)
        if decided is not None:
            best, noise = decided
            pose = cands[best]
            return PlanarPairPose(pose, median_triangulation_angle_deg(pose, r1[ok], r2[ok]), candidates=info,
                                  cost=float(costs[best]), noise_sq_px=noise, decided_by="pair")
    if pair_only:
        if len(cands) == 1:
            return PlanarPairPose(cands[0], median_triangulation_angle_deg(cands[0], r1[ok], r2[ok]),
                                  candidates=info, cost=float(costs[0]), decided_by="pair")
        return PlanarPairPose(None, reason="the pair's matches do not tell the plane's two poses apart",
                              candidates=info)
    # --- the other verified pairs' rotations: when one candidate is nearer their average by far
    if rotation_residual_deg is not None and len(cands) > 1:
        resid = [rotation_residual_deg(p.R) for p in cands]
        if all(r is not None for r in resid):
            for k, r in enumerate(resid):
                info[k]["rotation_residual_deg"] = round(float(r), 2)
            order = np.argsort(resid, kind="stable")
            best, near, far = int(order[0]), resid[order[0]], resid[order[1]]
            if far - near > MAX_ROTATION_RESIDUAL_DEG and far > 2.0 * near:
                pose = cands[best]
                return PlanarPairPose(pose, median_triangulation_angle_deg(pose, r1[ok], r2[ok]), candidates=info,
                                      cost=float(costs[best]), noise_sq_px=_pair_noise(pair_sq[best], t2),
                                      decided_by="rotations")
    # --- further views: each candidate's points must be seen by a camera with its intrinsics
    view_costs, view_sq = _third_view_costs(s, i, j, cands, abs_pose_max_error, min_view_correspondences, rng,
                                            camera_of)
    for k, (c, per_view) in enumerate(view_costs):
        costs[k] += c
        info[k]["views"] = {s.images.names[v]: round(float(x), 3) for v, x in per_view.items()}
    order = np.argsort(costs, kind="stable")
    best = int(order[0])
    if view_sq[best]:
        e = np.concatenate(view_sq[best])
        e = e[e <= abs_pose_max_error**2]
        noise = float(np.median(e)) / _MEDIAN_CHI2_2DOF if len(e) else float("nan")
    else:
        noise = _pair_noise(pair_sq[best], t2)
    for k, c in enumerate(costs):
        info[k]["total_cost"] = round(float(c), 3)
    n_views = len(view_costs[best][1])
    scored = dict(candidates=info, cost=float(costs[best]), noise_sq_px=noise, num_views=n_views)
    if len(cands) > 1:
        gap = float(costs[order[1]] - costs[best])
        if not gap > _decisive_gap(noise):
            return PlanarPairPose(None, reason=(
                f"the two poses this plane allows explain the pair and {n_views} further view(s) about equally well "
                f"(costs {costs[best]:.3g} and {costs[order[1]]:.3g} px^2, noise {math.sqrt(noise):.2g} px)"), **scored)
    pose = cands[best]
    angle = median_triangulation_angle_deg(pose, r1[ok], r2[ok])
    return PlanarPairPose(pose, angle, decided_by="views", **scored)


def _decisive_gap(noise_sq: float) -> float:
    """The MSAC cost gap (pixels^2) by which a candidate is ``AMBIGUITY_LIKELIHOOD_RATIO`` times
    as likely as another under Gaussian noise of variance ``noise_sq``."""
    return 2.0 * math.log(AMBIGUITY_LIKELIHOOD_RATIO) * noise_sq


def _pair_noise(sq: np.ndarray, t2: float) -> float:
    """Noise variance (pixels^2) that a candidate's Sampson errors ``sq`` within ``t2`` show; NaN without any."""
    e = sq[sq <= t2]
    return float(np.median(e)) / _MEDIAN_CHI2_1DOF if len(e) else float("nan")


def _decided_by_pair(pair_sq: list[np.ndarray], off_plane: np.ndarray, t2: float) -> tuple[int, float] | None:
    """(best candidate, noise variance) when the pair's matches off the plane (``off_plane``
    (M,) over ``pair_sq``'s matches; the plane's own fit both decompositions, up to the bias of
    the homography fitted to them) tell the candidates apart: the best's MSAC cost below every
    other's by more than one match's worth (``t2``: a wrong match on repeated structure can move
    a cost by no more) and by a likelihood ratio of ``AMBIGUITY_LIKELIHOOD_RATIO`` under the
    noise the best's residuals show; else None."""
    costs = np.array([_msac(e[off_plane], t2) for e in pair_sq])
    order = np.argsort(costs, kind="stable")
    best = int(order[0])
    noise = _pair_noise(pair_sq[best], t2)
    if not np.isfinite(noise):
        return None
    gap = float(costs[order[1]] - costs[best])
    if gap > max(t2, _decisive_gap(noise)):
        return best, noise
    return None


def _third_view_costs(s: MapperState, i: int, j: int, cands: list[Rigid3], max_error: float, min_corr: int,
                      rng: np.random.Generator, camera_of: Callable[[int], Camera]
                      ) -> tuple[list[tuple[float, dict]], list[list[np.ndarray]]]:
    """For each candidate ``cam_j_from_cam_i``: (total MSAC cost over the further views, {view:
    cost}), and the squared reprojection errors of each view under its best pose."""
    obs_i, obs_j = s.observations_of_image(i), s.observations_of_image(j)
    trk_i, trk_j = s.obs_track[obs_i], s.obs_track[obs_j]
    common, a, b = np.intersect1d(trk_i, trk_j, assume_unique=False, return_indices=True)
    empty = ([(0.0, {}) for _ in cands], [[] for _ in cands])
    if len(common) < min_corr:
        return empty
    ci, cj = camera_of(i), camera_of(j)
    xy_i = ci.cam_from_img(s.obs_uv[obs_i[a]])[:, :2]
    xy_j = cj.cam_from_img(s.obs_uv[obs_j[b]])[:, :2]
    ray = np.isfinite(xy_i).all(axis=1) & np.isfinite(xy_j).all(axis=1)  # beyond a lens's invertible region: none
    # the further views with the most observations of these tracks
    obs = np.flatnonzero(np.isin(s.obs_track, common))
    obs = obs[(s.obs_img[obs] != i) & (s.obs_img[obs] != j)]
    counts = np.bincount(s.obs_img[obs], minlength=s.n_images)
    views = [int(v) for v in np.argsort(-counts, kind="stable")[:MAX_THIRD_VIEWS] if counts[v] >= min_corr]
    if not views:
        return empty
    pos = {int(t): k for k, t in enumerate(common)}
    t2 = max_error**2
    out, sq_out = [], []
    for pose in cands:
        X = np.full((len(common), 3), np.nan)
        if ray.any():
            X[ray] = triangulate_two_view(Rigid3(), pose, xy_i[ray], xy_j[ray])  # camera i's frame is the world
        front = np.isfinite(X).all(axis=1) & (X[:, 2] > 0) & (pose.apply(np.nan_to_num(X))[:, 2] > 0)
        total, per_view, sqs = 0.0, {}, []
        for v in views:
            ov = obs[s.obs_img[obs] == v]
            idx = np.array([pos[int(t)] for t in s.obs_track[ov]], dtype=np.int64)
            keep = front[idx]
            uv, Xv = s.obs_uv[ov][keep], X[idx[keep]]
            n_all = len(ov)
            cost = n_all * t2  # nothing explained
            if len(uv) >= min_corr:
                cam = camera_of(v)
                res = estimate_absolute_pose(uv, Xv, cam, max_error=max_error, rng=rng)
                res, amb = resolve_pose_ambiguity(uv, Xv, cam, res, max_error=max_error)
                if res.model is not None:
                    cost = amb.cost + (n_all - len(uv)) * t2
                    sqs.append(AbsolutePoseEstimator(uv, Xv, cam).sq_errors(res.model))
            per_view[v] = cost
            total += cost
        out.append((total, per_view))
        sq_out.append(sqs)
    return out, sq_out


@dataclass
class PlaneSupport:
    """How much of a point set lies on its best plane.

    inlier_ratio : fraction of the points within ``max_distance`` of the plane.
    max_distance : ``PLANE_MAX_DISTANCE_RATIO`` x the size of the scene (the range of the central
        90 % of the points along their second principal axis).
    normal, offset : the plane ``normal . X = offset`` (unit normal).
    rms_ratio : RMS distance of the inliers to the plane / the size of the scene.
    """

    inlier_ratio: float
    max_distance: float
    normal: np.ndarray
    offset: float
    rms_ratio: float

    @property
    def planar(self) -> bool:
        return self.inlier_ratio >= PLANE_MIN_INLIER_RATIO

    def as_dict(self) -> dict:
        return {"planar": bool(self.planar), "inlier_ratio": round(self.inlier_ratio, 4),
                "max_distance": float(self.max_distance), "rms_ratio": float(self.rms_ratio),
                "normal": [round(float(v), 6) for v in self.normal], "offset": float(self.offset)}


def plane_support(X_world: np.ndarray, rng: np.random.Generator | int | None = 0) -> PlaneSupport | None:
    """The plane that most of the points X_world (N,3) lie on, and how many do: a RANSAC over
    point triples (distance threshold ``PLANE_MAX_DISTANCE_RATIO`` x the size of the scene: the
    range of the central 90 % of the points along their second principal axis), then a
    least-squares refit on the inliers. None for fewer than 3 points."""
    X = np.asarray(X_world, dtype=float).reshape(-1, 3)
    X = X[np.isfinite(X).all(axis=1)]
    if len(X) < 3:
        return None
    m = X.mean(axis=0)
    Vt = np.linalg.svd(X - m, full_matrices=False)[2]
    u = (X - m) @ Vt[1]
    extent = float(np.quantile(u, 0.95) - np.quantile(u, 0.05))
    if not extent > 0:
        return None
    thr = PLANE_MAX_DISTANCE_RATIO * extent
    gen = np.random.default_rng(rng)
    best_n, best = -1, None
    candidates = [(Vt[2], float(Vt[2] @ m))]  # the least-squares plane, then planes through triples
    for _ in range(200):
        p = X[gen.choice(len(X), 3, replace=False)]
        n = np.cross(p[1] - p[0], p[2] - p[0])
        if np.linalg.norm(n) > 0:
            n /= np.linalg.norm(n)
            candidates.append((n, float(n @ p[0])))
    for n, off in candidates:
        cnt = int(np.sum(np.abs(X @ n - off) <= thr))
        if cnt > best_n:
            best_n, best = cnt, (n, off)
    n, off = best
    for _ in range(3):  # refit on the inliers
        inl = X[np.abs(X @ n - off) <= thr]
        if len(inl) < 3:
            break
        m = inl.mean(axis=0)
        n = np.linalg.svd(inl - m, full_matrices=False)[2][2]
        off = float(n @ m)
    dist = np.abs(X @ n - off)
    inl = dist <= thr
    rms = float(np.sqrt(np.mean(dist[inl] ** 2))) / extent if inl.any() else float("nan")
    return PlaneSupport(float(inl.mean()), thr, n, off, rms)


# focal lengths the planar calibration searches, x max(width, height): item 1's range for a
# rotation's focal length (a 150-degree to a 6-degree field of view)
PLANE_FOCAL_RANGE = (0.1, 10.0)
PLANE_FOCAL_GRID = 33  # log-spaced focal lengths tried before the 1-D refinement (15 % apart)
# the focal length counts as determined when its likelihood interval (focal lengths the plane's
# views support within AMBIGUITY_LIKELIHOOD_RATIO of the best) is within this relative
# half-width: a focal length off by f % bends the model's angles by about as much
PLANE_FOCAL_MAX_UNCERTAINTY = 0.05


@dataclass
class PlaneFocal:
    """What :func:`focal_from_plane` found.

    focal_px : the focal length the views of the plane support best (NaN when none).
    interval_px : the focal lengths supported within ``AMBIGUITY_LIKELIHOOD_RATIO`` of the best
        (0 or inf: not bounded on that side within the search range).
    determined : the interval lies within ``PLANE_FOCAL_MAX_UNCERTAINTY`` of ``focal_px``.
    pair, num_views : the planar pair whose homography was decomposed, and the further views
        that judged each focal length.
    reason : why the focal length is not determined (empty when it is).
    """

    focal_px: float
    interval_px: tuple[float, float] = (float("nan"), float("nan"))
    determined: bool = False
    pair: tuple[int, int] | None = None
    num_views: int = 0
    reason: str = ""

    def as_dict(self) -> dict:
        return {"focal_px": round(self.focal_px, 2) if np.isfinite(self.focal_px) else None,
                "interval_px": [round(v, 1) if 0 < v < math.inf else None for v in self.interval_px],
                "determined": bool(self.determined), "pair": None if self.pair is None else list(self.pair),
                "num_views": self.num_views, **({"reason": self.reason} if self.reason else {})}


def camera_with_focal(camera: Camera, focal: float) -> Camera:
    """``camera`` with focal length(s) ``focal`` and no lens distortion."""
    p = camera.params.copy()
    for k, name in enumerate(camera.param_names):
        if name in ("f", "fx", "fy"):
            p[k] = focal
        elif name not in ("cx", "cy", "skew"):
            p[k] = 0.0
    return camera.with_params(p)


def focal_from_plane(state: MapperState, geometries: dict[tuple[int, int], TwoViewGeometry], camera: int, *,
                     max_error: float, abs_pose_max_error: float, min_view_correspondences: int,
                     seed: int = 0) -> PlaneFocal:
    """The focal length of camera ``camera`` (principal point known, square pixels, no
    distortion) from views of a plane: a fundamental matrix cannot give it (a plane leaves F
    undetermined), but more than two views of a plane can (Triggs, "Autocalibration from planar
    scenes", ECCV 1998): with the right focal length, one decomposition of a pair's homography
    reconstructs the plane so that further cameras with that focal length see it exactly; with a
    wrong one, no camera does.

    The strongest verified planar pair of the camera with at least one further view (sharing
    ``min_view_correspondences`` tracks) is scored by :func:`planar_pair_pose` at each focal
    length of a log grid over ``PLANE_FOCAL_RANGE`` x max(width, height), refined by a bounded
    1-D minimisation; the likelihood interval is where the cost stays within
    ``2 ln(AMBIGUITY_LIKELIHOOD_RATIO)`` noise variances of the best.
    """
    s = state
    cam = s.cameras[camera]
    size = max(cam.width, cam.height)
    pairs = sorted(((g.num_inliers, k) for k, g in geometries.items()
                    if g.config == "planar" and s.img_cam[k[0]] == camera and s.img_cam[k[1]] == camera),
                   key=lambda p: (-p[0], p[1]))
    kw = dict(max_error=max_error, abs_pose_max_error=abs_pose_max_error,
              min_view_correspondences=min_view_correspondences)
    for _, (i, j) in pairs:
        def run(log_f: float, i=i, j=j) -> PlanarPairPose:
            trial = camera_with_focal(cam, float(np.exp(log_f)))
            return planar_pair_pose(s, geometries[(i, j)], i, j, rng=np.random.default_rng([seed, 3, i, j]),
                                    camera_of=lambda k: trial if s.img_cam[k] == camera else s.cameras[s.img_cam[k]],
                                    pair_first=False, **kw)

        grid = np.linspace(np.log(PLANE_FOCAL_RANGE[0] * size), np.log(PLANE_FOCAL_RANGE[1] * size), PLANE_FOCAL_GRID)
        first = run(grid[PLANE_FOCAL_GRID // 2])
        if first.num_views == 0:
            continue  # no further view of this pair's points: the next pair
        costs = np.array([run(g).cost for g in grid])
        if not np.isfinite(costs).any():
            continue
        k = int(np.argmin(costs))
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
        res = minimize_scalar(lambda g: run(g).cost, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
        best_log = float(res.x) if res.fun <= costs[k] else float(grid[k])
        best = run(best_log)
        if not np.isfinite(best.noise_sq_px):
            continue
        limit = best.cost + _decisive_gap(best.noise_sq_px)

        def edge(direction: int) -> float:
            """The focal length where the cost crosses ``limit`` on one side (bisection between
            grid values), or 0 / inf when it does not within the range (not bounded)."""
            inside = best_log
            for g in grid[::direction]:
                if (g - best_log) * direction <= 0:
                    continue
                if run(g).cost > limit:
                    a, b = inside, g
                    for _ in range(12):
                        m = 0.5 * (a + b)
                        a, b = (m, b) if run(m).cost <= limit else (a, m)
                    return float(np.exp(0.5 * (a + b)))
                inside = g
            return math.inf if direction > 0 else 0.0

        f = float(np.exp(best_log))
        interval = (edge(-1), edge(1)) if grid[0] < best_log < grid[-1] else (0.0, math.inf)
        determined = interval[0] >= f / (1 + PLANE_FOCAL_MAX_UNCERTAINTY) and interval[1] <= f * (
            1 + PLANE_FOCAL_MAX_UNCERTAINTY)
        lo = f"{interval[0]:.0f} px" if interval[0] > 0 else f"below {np.exp(grid[0]):.0f} px"
        hi = f"{interval[1]:.0f} px" if interval[1] < math.inf else f"beyond {np.exp(grid[-1]):.0f} px"
        why = "" if determined else (
            f"the views of the plane support focal lengths from {lo} to {hi} about equally well (best {f:.0f} px), "
            f"not one within {100 * PLANE_FOCAL_MAX_UNCERTAINTY:.0f} %")
        return PlaneFocal(f, interval, determined, (i, j), best.num_views, why)
    return PlaneFocal(float("nan"), reason="no planar pair has a further view of its points (a plane needs three "
                                           "views to fix the focal length)")


def planar_scene_pairs(geometries: dict[tuple[int, int], TwoViewGeometry]) -> dict:
    """Whether the verified pairs say the scene is a plane: at least
    ``PLANAR_SCENE_MIN_PAIR_RATIO`` of the verified pairs that are not panoramic are planar (a
    homography explains their matches). Returns {"planar_scene", "num_planar_pairs", "num_pairs"}."""
    verified = [g for g in geometries.values() if g.verified and g.config != "panoramic"]
    n_planar = sum(g.config == "planar" for g in verified)
    planar = n_planar > 0 and n_planar >= PLANAR_SCENE_MIN_PAIR_RATIO * len(verified)
    return {"planar_scene": bool(planar), "num_planar_pairs": int(n_planar), "num_pairs": len(verified)}
