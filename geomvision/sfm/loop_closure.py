"""Loop correction: a verified revisit pulls the drifted side of a model back onto the old one.

A model grown image by image (or keyframe by keyframe) drifts: in position, rotation and, with
one camera, in scale. When image ``i`` is found to see the points of an image ``j`` far back in
the growth order (a *loop*), :func:`correct_loop`

1. builds the Sim(3) pose graph of the model's images: an edge for every pair sharing at least
   ``min_shared_points`` points and for consecutive images, each measuring the current relative
   pose (scale 1), plus the loop edge ``j -> i`` with the corrected pose of i (its pose against
   j's points, and the scale ratio of its points' depths on the two sides); image j is held fixed
   and i's covisible images start from the loop's correction (as ORB-SLAM does);
2. optimises it (:func:`geomvision.optim.optimize_pose_graph`), which spreads the correction
   over the loop;
3. moves every image to its new pose and every point with the image that last observed it
   (its position in that camera scaled and carried along);
4. fuses the points seen on both sides (``MapperState.merge_tracks``) and adds i's new
   observations of the old points;
5. bundle-adjusts the whole model (the batch verb ``adjust_global_bundle``).

Batch and online mapping call the same function; they differ in how they find and verify the
loop (``OnlineMapper`` at each keyframe: VLAD retrieval among keyframes that share no point
with the new one, then absolute pose against the candidate's points).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..geometry.rigid import Rigid3
from ..geometry.sim3 import Sim3
from ..optim.pose_graph import PoseGraphOptions, optimize_pose_graph
from ..scene.pose_graph import PoseGraph
from .mapper import IncrementalMapper
from .options import LoopClosureOptions

log = logging.getLogger(__name__)

SIGNIFICANT = 3.0  # a correction runs the pose graph when it exceeds this many times its uncertainty


@dataclass
class LoopCorrection:
    """What :func:`correct_loop` did: the loop's two images, the correction it applied to image
    i (translation, rotation in degrees, scale) and how uncertain its translation was, whether the
    pose graph ran and how far it moved the images (max camera displacement), points fused, new
    observations, and the model's rms reprojection error before / after."""

    i: int
    j: int
    inliers: int
    translation: float
    rotation_deg: float
    scale: float
    uncertainty: float
    pose_graph: bool
    max_image_shift: float
    fused_points: int
    new_observations: int
    rms_before_px: float
    rms_after_px: float

    def as_dict(self) -> dict:
        """JSON-ready values (floats rounded, NaN as None)."""
        return {k: ((round(v, 6) if np.isfinite(v) else None) if isinstance(v, float) else v)
                for k, v in self.__dict__.items()}


def covisibility(state, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (P,2) ``a < b`` of ``images`` that share points (active observations of valid
    points) and how many (P,)."""
    s = state
    sel = np.zeros(s.n_images, bool)
    sel[np.asarray(images, np.int64)] = True
    obs = np.flatnonzero(s.obs_active & sel[s.obs_img] & s.point_valid[s.obs_track])
    if len(obs) == 0:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    A = sp.csr_matrix((np.ones(len(obs)), (s.obs_track[obs], s.obs_img[obs])), shape=(s.num_tracks, s.n_images))
    C = sp.triu(A.T @ A, k=1).tocoo()
    return np.column_stack([C.row, C.col]).astype(np.int64), C.data.astype(np.int64)


def _world_from_cam(T: Rigid3, scale: float = 1.0) -> Sim3:
    """The Sim(3) world_from_cam of a cam_from_world pose whose camera frame is scaled by ``scale``."""
    return Sim3(scale, T.R.T, -T.R.T @ T.t, check=False)


def _rms(state, mapper: IncrementalMapper) -> float:
    s = state
    in_model = s.image_model == mapper.model
    obs = np.flatnonzero(s.obs_active & in_model[s.obs_img] & s.point_valid[s.obs_track])
    if len(obs) == 0:
        return float("nan")
    e = s.sq_errors(obs)
    return float(np.sqrt(np.mean(e[np.isfinite(e)])))


def _distribute(mapper: IncrementalMapper, imgs: np.ndarray, i: int, j: int, N_i_new: Sim3,
                o: LoopClosureOptions) -> tuple[float, int]:
    """Pose-graph correction: move the images (and their points) so that i sits at ``N_i_new``
    (world_from_cam on j's side), spreading the change over the loop. Returns the largest image
    displacement and the optimiser's iterations."""
    s = mapper.state
    pairs, shared = covisibility(s, imgs)
    strong = pairs[shared >= o.min_shared_points]
    chain = np.column_stack([imgs[:-1], imgs[1:]])
    edges = np.unique(np.vstack([strong, chain]), axis=0)
    old = {int(k): _world_from_cam(s.pose(int(k))) for k in imgs}
    G = N_i_new @ old[i].inverse()  # loop-side world from i-side world, as seen at i
    # i's neighbourhood starts corrected (those sharing points with i), the rest where it is
    near = {i} | {int(b if a == i else a) for a, b in pairs[(pairs == i).any(axis=1)]}
    near.discard(j)
    graph = PoseGraph(kind="sim3")
    for k in imgs:
        k = int(k)
        graph.add_node(k, G @ old[k] if k in near else old[k].copy())
    i_ids, j_ids = edges[:, 0], edges[:, 1]
    rel = [old[int(a)].inverse() @ old[int(b)] for a, b in edges]
    loop_rel = old[j].inverse() @ N_i_new
    R = np.array([r.R for r in rel] + [loop_rel.R])
    t = np.array([r.t for r in rel] + [loop_rel.t])
    sc = np.array([r.scale for r in rel] + [loop_rel.scale])
    graph = PoseGraph(nodes=graph.nodes, i_ids=np.r_[i_ids, j].astype(np.int64), j_ids=np.r_[j_ids, i].astype(np.int64),
                      i_from_j_R=R, i_from_j_t=t, information=np.tile(np.eye(7), (len(R), 1, 1)), fixed={j},
                      kind="sim3", i_from_j_scale=sc)
    result, report = optimize_pose_graph(graph, PoseGraphOptions(init="file", max_iterations=50))
    new = result.nodes
    # points move with the image that observed them last
    in_model = s.image_model == mapper.model
    obs = np.flatnonzero(s.obs_active & in_model[s.obs_img] & s.point_valid[s.obs_track])
    ref = np.full(s.num_tracks, -1, np.int64)
    np.maximum.at(ref, s.obs_track[obs], s.obs_img[obs])
    trk = np.flatnonzero(ref >= 0)
    X = s.X[trk].copy()
    shift = 0.0
    for k in imgs:
        k = int(k)
        m = ref[trk] == k
        T_old = s.pose(k)
        if m.any():
            X[m] = new[k].apply(X[m] @ T_old.R.T + T_old.t)
        Nk = new[k]
        T_new = Rigid3(Nk.R.T, -Nk.R.T @ Nk.t, check=False)
        shift = max(shift, float(np.linalg.norm(Nk.t - old[k].t)))
        s.register(k, T_new, mapper.model)
    s.move_points(trk, X)
    return shift, report.iterations


def correct_loop(mapper: IncrementalMapper, i: int, j: int, cam_i_from_world_loop: Rigid3, scale: float,
                 fuse: np.ndarray, new_obs: np.ndarray, inliers: int, uncertainty: float = 0.0,
                 options: LoopClosureOptions | None = None) -> LoopCorrection:
    """Close the loop between images ``i`` (new) and ``j`` (old) of the mapper's current model.

    ``cam_i_from_world_loop``: the pose of i against j's side of the map; ``scale``: depth of i's
    points on j's side / on i's side; ``fuse`` (F,2): track pairs (i's side, j's side) seeing
    the same point; ``new_obs`` (K,2): (j-side track, keypoint of i) observations to add;
    ``uncertainty``: how far off (world units) the loop's position of i may be. The pose graph
    runs only when i's correction exceeds ``SIGNIFICANT`` times that: a smaller one is within
    what the loop can tell, and the fused points and global bundle adjustment close it with every
    observation weighed as it should be.
    """
    o = options or LoopClosureOptions()
    s = mapper.state
    imgs = np.flatnonzero(s.image_model == mapper.model)
    rms_before = _rms(s, mapper)
    old_i = _world_from_cam(s.pose(i))
    N_i_new = _world_from_cam(cam_i_from_world_loop, scale)
    translation = float(np.linalg.norm(old_i.t - N_i_new.t))
    use_graph = translation > SIGNIFICANT * uncertainty
    shift, n_iter = 0.0, 0
    if use_graph:
        shift, n_iter = _distribute(mapper, imgs, i, j, N_i_new, o)
    # fuse the duplicated points, then i sees j's side
    fuse = np.asarray(fuse, np.int64).reshape(-1, 2)
    ok = s.point_valid[fuse[:, 0]] & s.point_valid[fuse[:, 1]] & (fuse[:, 0] != fuse[:, 1])
    fuse = fuse[ok]
    fuse = fuse[np.unique(fuse[:, 0], return_index=True)[1]]
    fuse = fuse[np.unique(fuse[:, 1], return_index=True)[1]]
    fuse = fuse[~np.isin(fuse[:, 0], fuse[:, 1])]
    s.merge_tracks(fuse[:, 1], fuse[:, 0])
    n_new = 0
    new_obs = np.asarray(new_obs, np.int64).reshape(-1, 2)
    if len(new_obs):
        free = s.kp_track[i][new_obs[:, 1]] < 0
        seen = np.isin(new_obs[:, 0], s.obs_track[s.observations_of_image(i)])
        new_obs = new_obs[free & ~seen & s.point_valid[new_obs[:, 0]]]
        new_obs = new_obs[np.unique(new_obs[:, 0], return_index=True)[1]]
        if len(new_obs):
            added = s.add_observations(new_obs[:, 0], np.full(len(new_obs), i), new_obs[:, 1])
            good = s.sq_errors(added) <= mapper.opt.filter_max_error_px**2
            s.activate_observations(added[good])
            n_new = int(good.sum())
    mapper.adjust_global_bundle()
    delta = old_i.inverse() @ N_i_new  # i's correction in its own camera frame
    c = LoopCorrection(int(i), int(j), int(inliers), translation, float(np.degrees(np.linalg.norm(delta.rotvec))),
                       float(N_i_new.scale), float(uncertainty), bool(use_graph), shift, len(fuse), n_new,
                       rms_before, _rms(s, mapper))
    log.info("loop %d -> %d closed: %s (pose graph: %d iterations)", i, j, c.as_dict(), n_iter)
    return c
