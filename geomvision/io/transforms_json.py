"""``transforms.json`` for nerfstudio (NeRF, splatfacto) and instant-ngp.

    write_nerfstudio(rec, "out/transforms.json", image_dir="images")   # + out/sparse_pc.ply
    write_instant_ngp(rec, "out/transforms.json", image_dir="images")

Both formats, from their loaders (nerfstudio's ``nerfstudio_dataparser.py`` and
``cameras.py``, instant-ngp's ``nerf_loader.cu`` and ``scripts/colmap2nerf.py``):

- ``transform_matrix`` is the 4x4 **camera-to-world** matrix of an **OpenGL** camera: x right,
  y up, looking down -z. geomvision's cameras are OpenCV's (y down, looking down +z), so the
  matrix is ``world_from_cam`` with its y and z columns negated.
- Intrinsics ``fl_x, fl_y, cx, cy, w, h`` in pixels with COLMAP's pixel origin: both loaders
  take pixel (i, j)'s centre at (i + 0.5, j + 0.5), so ``cx = cx_geomvision + 0.5``.
- Distortion: the OpenCV model ``k1, k2, p1, p2`` applied in the image's y-down frame (both
  loaders undistort before flipping y), and for fisheye cameras OpenCV's fisheye ``k1..k4``
  (nerfstudio: ``"camera_model": "OPENCV_FISHEYE"``; instant-ngp: ``"is_fisheye": true``; there
  ``p1, p2`` would overwrite ``k3, k4``, so they are not written). PINHOLE_SKEW has no place in
  either: undistort such models first.
- One camera: intrinsics at the top level; several: in every frame (both loaders read them there).
- ``file_path`` is relative to the json file's folder: ``image_dir``/name when ``image_dir`` is
  given, else ``images/<name>`` (nerfstudio's layout; put or link the images there).

**nerfstudio.** Poses stay in the model's world frame (nerfstudio orients, centres and scales the
poses itself); no ``applied_transform`` is written, so the point cloud ``sparse_pc.ply`` beside
the json (splatfacto's initialisation, ``ply_file_path``) is in the same frame as the poses.

**instant-ngp** wants the scene centred at the origin, z up and about 4 units from the cameras
(its unit cube is [-1.5, 1.5]^3 at the default scale 0.33), which ``colmap2nerf.py`` arranges.
The same similarity is applied here: rotate the mean camera up direction onto +z, move the point
the cameras' optical axes pass closest to (colmap2nerf's "centre of attention") to the origin,
scale the mean camera distance to 4. It is written as ``"geomvision_ngp_from_model"`` (4x4,
``X_ngp = s R X + t``; instant-ngp ignores the key). ``aabb_scale`` is the smallest power of two
(1..128) whose box holds 99% of the model's points (32 without points).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_text
from .._validation import check_writer_arguments
from ..geometry.camera import Camera
from ..geometry.rotation import hat
from ..scene.reconstruction import Reconstruction

__all__ = ["write_instant_ngp", "write_nerfstudio"]

_GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])  # right-multiplied: flips the camera's y and z axes
_NGP_SCALE = 0.33  # instant-ngp's default scene scale (NERF_SCALE)


def _intrinsics(camera: Camera, camera_id: int, flavour: str) -> dict:
    if camera.model == "PINHOLE_SKEW":
        raise ValueError(f"camera {camera_id} is PINHOLE_SKEW: {flavour} cameras have no skew; undistort the model "
                         "first (geomvision undistort writes PINHOLE cameras)")
    cx, cy = camera.principal_point + 0.5  # COLMAP's / NeRF's pixel origin
    out = {"fl_x": camera.focal_length_x, "fl_y": camera.focal_length_y, "cx": float(cx), "cy": float(cy),
           "w": camera.width, "h": camera.height}
    if camera.model == "OPENCV_FISHEYE":
        k = {n: camera.param(n) for n in ("k1", "k2", "k3", "k4")}
        if flavour == "nerfstudio":
            return {**out, "camera_model": "OPENCV_FISHEYE", **k, "p1": 0.0, "p2": 0.0}
        return {**out, "is_fisheye": True, **k}
    names = camera.param_names
    k1 = camera.param("k") if "k" in names else (camera.param("k1") if "k1" in names else 0.0)
    k2 = camera.param("k2") if "k2" in names else 0.0
    p1 = camera.param("p1") if "p1" in names else 0.0
    p2 = camera.param("p2") if "p2" in names else 0.0
    if flavour == "nerfstudio":
        return {**out, "camera_model": "OPENCV", "k1": k1, "k2": k2, "p1": p1, "p2": p2}
    return {**out, "k1": k1, "k2": k2, "p1": p1, "p2": p2,
            "camera_angle_x": 2.0 * math.atan(camera.width / (2.0 * camera.focal_length_x)),
            "camera_angle_y": 2.0 * math.atan(camera.height / (2.0 * camera.focal_length_y))}


def _check_args(rec, path, name: str) -> Path:
    check_writer_arguments(rec, name, "(rec, path)")
    if not isinstance(rec, Reconstruction):
        raise ValueError(f"rec must be a Reconstruction, got {type(rec).__name__}")
    if not rec.registered_image_ids:
        raise ValueError("the model has no registered image: there is no camera to export")
    target = Path(os.fspath(path))
    if target.suffix.lower() != ".json":
        raise ValueError(f"path: {str(target)!r} should be the transforms file (e.g. out/transforms.json)")
    return target


def _file_path(name: str, image_dir: str | os.PathLike | None, folder: Path) -> str:
    if image_dir is None:
        return (Path("images") / name).as_posix()
    return Path(os.path.relpath(Path(os.fspath(image_dir)) / name, folder)).as_posix()


def _frames(rec: Reconstruction, flavour: str, folder: Path, image_dir, world_from_model: np.ndarray) -> dict:
    """The intrinsics (top level for one camera) and one frame per registered image.
    ``world_from_model``: 4x4 similarity applied to the poses (identity for nerfstudio)."""
    image_ids = rec.registered_image_ids
    camera_ids = sorted({rec.images[i].camera_id for i in image_ids})
    intr = {cid: _intrinsics(rec.cameras[cid], cid, flavour) for cid in camera_ids}
    if flavour == "nerfstudio" and len({d["camera_model"] for d in intr.values()}) > 1:
        raise ValueError("nerfstudio takes one camera model per dataset; this model mixes fisheye and perspective "
                         "cameras: undistort it first (geomvision undistort)")
    out: dict = dict(intr[camera_ids[0]]) if len(camera_ids) == 1 else {}
    if flavour == "nerfstudio" and len(camera_ids) > 1:
        out["camera_model"] = intr[camera_ids[0]]["camera_model"]
    scale = np.cbrt(np.linalg.det(world_from_model[:3, :3]))
    frames = []
    for iid in image_ids:
        img = rec.images[iid]
        c2w = world_from_model @ img.cam_from_world.inverse().matrix4x4 @ _GL_FROM_CV
        c2w[:3, :3] /= scale  # a rotation again: the similarity's scale moves the centres only
        frame = {"file_path": _file_path(img.name, image_dir, folder), "transform_matrix": c2w.tolist()}
        if flavour == "nerfstudio":
            frame["colmap_im_id"] = int(iid)
        if len(camera_ids) > 1:
            frame.update({k: v for k, v in intr[img.camera_id].items() if k != "camera_model"})
        frames.append(frame)
    out["frames"] = frames
    return out


def write_nerfstudio(rec: Reconstruction, path: str | os.PathLike, *, image_dir: str | os.PathLike | None = None,
                     ply_name: str | None = "sparse_pc.ply") -> None:
    """Write nerfstudio's ``transforms.json`` (``path``) and, unless ``ply_name`` is None, the model's
    points as ``ply_name`` beside it (referenced as ``ply_file_path``, splatfacto's initial points),
    both atomically. Poses stay in the model's world frame (module docstring)."""
    from .ply import write_ply

    target = _check_args(rec, path, "write_nerfstudio")
    out = _frames(rec, "nerfstudio", target.parent, image_dir, np.eye(4))
    if ply_name is not None:
        if Path(ply_name).name != ply_name or not ply_name.lower().endswith(".ply"):
            raise ValueError(f"ply_name must be a file name ending in .ply, got {ply_name!r}")
        write_ply(rec, target.parent / ply_name, dtype="float32")
        out["ply_file_path"] = ply_name
    atomic_write_text(target, json.dumps(out, indent=2) + "\n")


def _rotation_onto_z(up: np.ndarray) -> np.ndarray:
    """The rotation taking the unit vector ``up`` onto +z (a half turn about x when up = -z)."""
    z = np.array([0.0, 0.0, 1.0])
    v = np.cross(up, z)
    c = float(up @ z)
    if c < -1.0 + 1e-12:
        return np.diag([1.0, -1.0, -1.0])
    K = hat(v)
    return np.eye(3) + K + K @ K / (1.0 + c)


def _centre_of_attention(centres: np.ndarray, axes: np.ndarray, max_cameras: int = 500) -> np.ndarray | None:
    """colmap2nerf's centre: the midpoints of the closest points of every two optical axes (points
    in front of both cameras), weighted by the squared sine of their angle; None when parallel."""
    if len(centres) > max_cameras:  # evenly spread subset: O(n^2) pairs
        keep = np.linspace(0, len(centres) - 1, max_cameras).round().astype(int)
        centres, axes = centres[keep], axes[keep]
    i, j = np.triu_indices(len(centres), k=1)
    oa, da, ob, db = centres[i], axes[i], centres[j], axes[j]
    c = np.cross(da, db)
    denom = np.sum(c * c, axis=1)
    ok = denom > 1e-5
    if not ok.any():
        return None
    oa, da, ob, db, c, denom = oa[ok], da[ok], ob[ok], db[ok], c[ok], denom[ok]
    t = ob - oa
    ta = np.sum(np.cross(t, db) * c, axis=1) / denom  # det([t, db, c])
    tb = np.sum(np.cross(t, da) * c, axis=1) / denom
    ta, tb = np.maximum(ta, 0.0), np.maximum(tb, 0.0)  # in front of the cameras
    mid = 0.5 * (oa + ta[:, None] * da + ob + tb[:, None] * db)
    return (mid * denom[:, None]).sum(axis=0) / denom.sum()


def ngp_from_model(rec: Reconstruction) -> np.ndarray:
    """The 4x4 similarity ``X_ngp = s R X + t`` that :func:`write_instant_ngp` applies (module docstring)."""
    poses = [rec.images[i].cam_from_world for i in rec.registered_image_ids]
    centres = np.array([T.inverse().t for T in poses])
    up = -np.array([T.R[1] for T in poses]).sum(axis=0)  # camera -y axes (image up) in the world
    R = _rotation_onto_z(up / np.linalg.norm(up)) if np.linalg.norm(up) > 1e-9 else np.eye(3)
    axes = np.array([T.R[2] for T in poses])  # optical axes (+z of the OpenCV camera) in the world
    centre = _centre_of_attention(centres, axes)
    if centre is None:
        centre = centres.mean(axis=0)
    dist = np.linalg.norm(centres - centre, axis=1).mean()
    s = 4.0 / dist if dist > 0 else 1.0
    M = np.eye(4)
    M[:3, :3] = s * R
    M[:3, 3] = -s * R @ centre
    return M


def write_instant_ngp(rec: Reconstruction, path: str | os.PathLike, *, image_dir: str | os.PathLike | None = None,
                      aabb_scale: int | None = None) -> np.ndarray:
    """Write instant-ngp's ``transforms.json`` (``path``) atomically; returns the 4x4 similarity
    ``ngp_from_model`` applied to the poses (module docstring). ``aabb_scale``: a power of two
    1..128, default from the points."""
    target = _check_args(rec, path, "write_instant_ngp")
    M = ngp_from_model(rec)
    if aabb_scale is None:
        _, xyz, _ = rec.point_arrays()
        if len(xyz):
            reach = np.quantile(np.abs(xyz @ M[:3, :3].T + M[:3, 3]).max(axis=1), 0.99)
            aabb_scale = int(min(128, 2 ** max(0, math.ceil(math.log2(max(reach * _NGP_SCALE * 2, 1e-12))))))
        else:
            aabb_scale = 32
    elif aabb_scale not in (1, 2, 4, 8, 16, 32, 64, 128):
        raise ValueError(f"aabb_scale must be a power of two from 1 to 128, got {aabb_scale!r}")
    out = _frames(rec, "ngp", target.parent, image_dir, M)
    out = {**{k: v for k, v in out.items() if k != "frames"}, "aabb_scale": aabb_scale,
           "geomvision_ngp_from_model": M.tolist(), "frames": out["frames"]}
    atomic_write_text(target, json.dumps(out, indent=2) + "\n")
    return M
