"""Bundle adjustment of a Reconstruction: flatten to arrays, solve, write back.

``bundle_adjust(reconstruction, options, config, image_ids=None)`` never works on the object
graph inside the solver: it builds a :class:`BAProblem` (structure of arrays) once, runs
:func:`solve_bundle` and copies poses, intrinsics and points back.

Ids versus indices: here ``config.fixed_images`` / ``fixed_cameras`` / ``fixed_points`` /
``fixed_params`` hold *ids* of the reconstruction (image_id, camera_id, point3D_id).

Local bundle adjustment: with ``image_ids`` only those images are variable; every point they
observe is included with its whole track, and the other registered images of those tracks are
added with their pose held fixed (COLMAP's scheme).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..geometry.rigid import Rigid3
from ..scene.reconstruction import Reconstruction
from .config import BAConfig, BAOptions
from .problem import BAProblem
from .solver import BAReport, solve_bundle


@dataclass
class FlatReconstruction:
    """A BAProblem plus the ids of its rows: image_ids (I,), camera_ids (C,), point3D_ids (N,)."""

    problem: BAProblem
    image_ids: np.ndarray
    camera_ids: np.ndarray
    point3D_ids: np.ndarray


def flatten_reconstruction(reconstruction: Reconstruction, image_ids: Sequence[int] | None = None
                           ) -> tuple[FlatReconstruction, np.ndarray]:
    """Structure of arrays of the registered images (or of ``image_ids`` and the images sharing
    their points). Returns (flat, variable (I,) bool: image is in ``image_ids``)."""
    if not isinstance(reconstruction, Reconstruction):
        raise ValueError(f"reconstruction must be a Reconstruction, got {type(reconstruction).__name__}")
    registered = np.array(reconstruction.registered_image_ids, dtype=np.int64)
    obs_iid, obs_pid, obs_uv = reconstruction.observations()
    if image_ids is None:
        chosen = registered
    else:
        chosen = np.unique(np.asarray(list(image_ids), dtype=np.int64))
        missing = np.setdiff1d(chosen, registered)
        if len(missing):
            raise ValueError(f"image_ids: image {int(missing[0])} is not registered (or does not exist)")
        pts = np.unique(obs_pid[np.isin(obs_iid, chosen)])
        keep = np.isin(obs_pid, pts)
        obs_iid, obs_pid, obs_uv = obs_iid[keep], obs_pid[keep], obs_uv[keep]
    img_ids = np.union1d(chosen, np.unique(obs_iid)).astype(np.int64)
    pt_ids = np.unique(obs_pid).astype(np.int64)
    cam_ids = np.unique([reconstruction.images[int(i)].camera_id for i in img_ids]).astype(np.int64)
    poses = [reconstruction.images[int(i)].cam_from_world for i in img_ids]
    R = np.array([T.R for T in poses]).reshape(-1, 3, 3)
    t = np.array([T.t for T in poses]).reshape(-1, 3)
    cams = [reconstruction.cameras[int(c)] for c in cam_ids]
    img_cam = np.searchsorted(cam_ids, [reconstruction.images[int(i)].camera_id for i in img_ids])
    X = np.array([reconstruction.points3D[int(p)].xyz for p in pt_ids]).reshape(-1, 3)
    problem = BAProblem.from_arrays(
        R, t, img_cam, [c.model for c in cams], [c.params for c in cams], X,
        np.searchsorted(img_ids, obs_iid), np.searchsorted(pt_ids, obs_pid), obs_uv,
    )
    variable = np.isin(img_ids, chosen)
    return FlatReconstruction(problem, img_ids, cam_ids, pt_ids), variable


def write_back(reconstruction: Reconstruction, flat: FlatReconstruction) -> None:
    """Copy poses, camera parameters and points of ``flat.problem`` into ``reconstruction``."""
    p = flat.problem
    # cameras first: Camera validates its parameters, so a failure leaves the reconstruction untouched
    cams = {int(cid): reconstruction.cameras[int(cid)].with_params(p.cam_params[k, : p.cam_nparams[k]])
            for k, cid in enumerate(flat.camera_ids)}
    reconstruction.cameras.update(cams)
    for k, iid in enumerate(flat.image_ids):
        reconstruction.images[int(iid)].cam_from_world = Rigid3(p.R[k], p.t[k], check=False)
    for k, pid in enumerate(flat.point3D_ids):
        reconstruction.points3D[int(pid)].xyz = p.X[k].copy()


def _config_to_indices(config: BAConfig, flat: FlatReconstruction, variable: np.ndarray,
                       reconstruction: Reconstruction) -> BAConfig:
    """The config with ids replaced by array indices; ids of things outside this problem (e.g.
    images outside a local bundle) are dropped, ids the reconstruction does not have raise."""

    def idx(ids, table, known, what):
        ids = [int(i) for i in ids]
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ValueError(f"config: {what} id {unknown[0]} does not exist in the reconstruction")
        pos = np.searchsorted(table, ids)
        return tuple(int(q) for q, i in zip(pos, ids) if q < len(table) and table[q] == i)

    rec = reconstruction
    fixed_images = set(idx(config.fixed_images, flat.image_ids, rec.images, "fixed_images: image"))
    fixed_images |= set(np.flatnonzero(~variable).tolist())
    idx(config.fixed_params, flat.camera_ids, rec.cameras, "fixed_params: camera")
    cam_pos = {int(c): k for k, c in enumerate(flat.camera_ids)}
    return replace(
        config,
        fixed_images=tuple(sorted(fixed_images)),
        fixed_cameras=idx(config.fixed_cameras, flat.camera_ids, rec.cameras, "fixed_cameras: camera"),
        fixed_points=idx(config.fixed_points, flat.point3D_ids, rec.points3D, "fixed_points: point3D"),
        fixed_params={cam_pos[c]: v for c, v in config.fixed_params.items() if c in cam_pos},
    )


def bundle_adjust(reconstruction: Reconstruction, options: BAOptions | None = None, config: BAConfig | None = None,
                  *, image_ids: Sequence[int] | None = None, printer=None) -> BAReport:
    """Refine poses, points and (per ``config``) intrinsics of ``reconstruction`` in place.

    ``config`` names fixed things by id (image_id, camera_id, point3D_id). Images sharing a
    camera_id share its intrinsics. With ``image_ids`` only those poses are refined (local BA).
    Raises ``ValueError`` when an observed point is behind its camera at the start.
    """
    options = BAOptions() if options is None else options
    config = BAConfig() if config is None else config
    flat, variable = flatten_reconstruction(reconstruction, image_ids)
    report = solve_bundle(flat.problem, options, _config_to_indices(config, flat, variable, reconstruction),
                          printer=printer)
    write_back(reconstruction, flat)
    return report
