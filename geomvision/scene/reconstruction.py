"""The Reconstruction: cameras, images and 3-D points linked by id (COLMAP's scene model).

- ``cameras[camera_id]`` -> :class:`~geomvision.geometry.Camera`
- ``images[image_id]`` -> :class:`Image` (name, camera_id, keypoints (N,2) pixels,
  point3D_ids (N,) with -1 for none, ``cam_from_world`` or None when not registered)
- ``points3D[point3D_id]`` -> :class:`Point3D` (xyz, track (M,2) of (image_id, keypoint_idx),
  color (3,) uint8, error = mean reprojection error in pixels, -1 when unknown)

Mutate through the methods (``add_point3D``, ``add_observation``, ``delete_point3D`` ...) so
the two directions of the links stay consistent; ``check()`` verifies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._rows import row_groups
from .._validation import as_array, as_points
from ..geometry.camera import Camera
from ..geometry.projection import project_points
from ..geometry.rigid import Rigid3, camera_center


@dataclass
class Image:
    name: str
    camera_id: int
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    point3D_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cam_from_world: Rigid3 | None = None

    @property
    def registered(self) -> bool:
        return self.cam_from_world is not None

    @property
    def num_points3D(self) -> int:
        return int(np.count_nonzero(self.point3D_ids >= 0))

    @property
    def center(self) -> np.ndarray:
        if self.cam_from_world is None:
            raise ValueError(f"image {self.name!r} is not registered: it has no pose")
        return camera_center(self.cam_from_world)


@dataclass
class Point3D:
    xyz: np.ndarray
    track: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    color: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=np.uint8))
    error: float = -1.0

    @property
    def track_length(self) -> int:
        return len(self.track)


def _rows_in(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a),) True where the row of the int64 (N,3) array ``a`` also occurs in ``b``."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros(len(a), dtype=bool)
    order, group = row_groups(np.concatenate([a, b]))
    from_b = order >= len(a)
    has_b = np.zeros(group[-1] + 1, dtype=bool)
    has_b[group[from_b]] = True
    out = np.empty(len(order), dtype=bool)
    out[order] = has_b[group]
    return out[: len(a)]


def _repeated_rows(rows: np.ndarray) -> np.ndarray:
    """The distinct rows of an int64 (N,3) array that occur more than once."""
    if len(rows) == 0:
        return rows
    order, group = row_groups(rows)
    counts = np.bincount(group)
    first = np.ones(len(order), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    return rows[order[first]][counts > 1]


class Reconstruction:
    """Cameras, images and 3-D points linked by integer ids (see module docstring).

    Mutations keep the links; ``check()`` verifies them (vectorised, fast enough to run after
    every read).
    """

    def __init__(self) -> None:
        self.cameras: dict[int, Camera] = {}
        self.images: dict[int, Image] = {}
        self.points3D: dict[int, Point3D] = {}
        self._next_point3D_id = 1

    # --- adding -------------------------------------------------------------------------------
    def add_camera(self, camera: Camera, camera_id: int | None = None) -> int:
        if not isinstance(camera, Camera):
            raise ValueError(f"camera must be a geomvision.Camera, got {type(camera).__name__}")
        cid = (max(self.cameras, default=0) + 1) if camera_id is None else int(camera_id)
        if cid in self.cameras:
            raise ValueError(f"camera_id {cid} already exists")
        self.cameras[cid] = camera
        return cid

    def add_image(
        self,
        name: str,
        camera_id: int,
        keypoints: np.ndarray | None = None,
        cam_from_world: Rigid3 | None = None,
        image_id: int | None = None,
    ) -> int:
        if camera_id not in self.cameras:
            raise ValueError(f"camera_id {camera_id} does not exist; add the camera first")
        iid = (max(self.images, default=0) + 1) if image_id is None else int(image_id)
        if iid in self.images:
            raise ValueError(f"image_id {iid} already exists")
        kp = np.zeros((0, 2)) if keypoints is None else as_points(keypoints, "keypoints", 2).copy()
        if cam_from_world is not None and not isinstance(cam_from_world, Rigid3):
            raise ValueError("cam_from_world must be a Rigid3 or None")
        self.images[iid] = Image(name, camera_id, kp, np.full(len(kp), -1, dtype=np.int64), cam_from_world)
        return iid

    def add_point3D(
        self,
        xyz: np.ndarray,
        track: np.ndarray | None = None,
        color: np.ndarray | None = None,
        error: float = -1.0,
        point3D_id: int | None = None,
    ) -> int:
        """Add a point and link each (image_id, keypoint_idx) of its track; returns its id."""
        pid = self._next_point3D_id if point3D_id is None else int(point3D_id)
        if pid in self.points3D:
            raise ValueError(f"point3D_id {pid} already exists")
        xyz = as_array(xyz, "xyz", (3,)).copy()
        tr = np.zeros((0, 2), dtype=np.int64) if track is None else np.asarray(track, dtype=np.int64).reshape(-1, 2)
        for image_id, kp_idx in tr:
            self._check_free_keypoint(int(image_id), int(kp_idx))
        col = np.zeros(3, dtype=np.uint8) if color is None else np.asarray(color, dtype=np.uint8).reshape(3)
        self.points3D[pid] = Point3D(xyz, tr.copy(), col, float(error))
        for image_id, kp_idx in tr:
            self.images[int(image_id)].point3D_ids[kp_idx] = pid
        self._next_point3D_id = max(self._next_point3D_id, pid + 1)
        return pid

    def _check_free_keypoint(self, image_id: int, kp_idx: int) -> None:
        img = self.images.get(image_id)
        if img is None:
            raise ValueError(f"track refers to image_id {image_id}, which does not exist")
        if not 0 <= kp_idx < len(img.keypoints):
            raise ValueError(f"track refers to keypoint {kp_idx} of image {image_id}, which has {len(img.keypoints)}")
        if img.point3D_ids[kp_idx] >= 0:
            raise ValueError(f"keypoint {kp_idx} of image {image_id} already observes point {img.point3D_ids[kp_idx]}")

    def add_observation(self, point3D_id: int, image_id: int, keypoint_idx: int) -> None:
        self._check_free_keypoint(image_id, keypoint_idx)
        pt = self.points3D[point3D_id]
        pt.track = np.vstack([pt.track, np.array([[image_id, keypoint_idx]], dtype=np.int64)])
        self.images[image_id].point3D_ids[keypoint_idx] = point3D_id

    # --- removing -----------------------------------------------------------------------------
    def delete_point3D(self, point3D_id: int) -> None:
        pt = self.points3D.pop(point3D_id)
        for image_id, kp_idx in pt.track:
            self.images[int(image_id)].point3D_ids[kp_idx] = -1

    def delete_observation(self, image_id: int, keypoint_idx: int) -> None:
        """Unlink one observation; a point left with fewer than 2 observations is deleted."""
        img = self.images[image_id]
        pid = int(img.point3D_ids[keypoint_idx])
        if pid < 0:
            return
        pt = self.points3D[pid]
        keep = ~((pt.track[:, 0] == image_id) & (pt.track[:, 1] == keypoint_idx))
        pt.track = pt.track[keep]
        img.point3D_ids[keypoint_idx] = -1
        if len(pt.track) < 2:
            self.delete_point3D(pid)

    def deregister_image(self, image_id: int) -> None:
        """Drop an image's pose and all its observations."""
        img = self.images[image_id]
        for kp_idx in np.flatnonzero(img.point3D_ids >= 0):
            self.delete_observation(image_id, int(kp_idx))
        img.cam_from_world = None

    # --- queries ------------------------------------------------------------------------------
    @property
    def registered_image_ids(self) -> list[int]:
        return sorted(i for i, im in self.images.items() if im.registered)

    @property
    def num_registered_images(self) -> int:
        return sum(1 for im in self.images.values() if im.registered)

    def image_id_by_name(self, name: str) -> int:
        for iid, im in self.images.items():
            if im.name == name:
                return iid
        raise ValueError(f"no image named {name!r}")

    def point_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids (P,), xyz (P,3), colors (P,3) uint8) of all points, in id order."""
        ids = np.array(sorted(self.points3D), dtype=np.int64)
        xyz = np.array([self.points3D[i].xyz for i in ids]).reshape(-1, 3)
        col = np.array([self.points3D[i].color for i in ids], dtype=np.uint8).reshape(-1, 3)
        return ids, xyz, col

    def observations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat arrays over all observations of registered images:
        (image_ids (M,), point3D_ids (M,), uv (M,2))."""
        iids, pids, uvs = [], [], []
        for iid in self.registered_image_ids:
            img = self.images[iid]
            m = img.point3D_ids >= 0
            iids.append(np.full(int(m.sum()), iid, dtype=np.int64))
            pids.append(img.point3D_ids[m])
            uvs.append(img.keypoints[m])
        if not iids:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2))
        return np.concatenate(iids), np.concatenate(pids), np.concatenate(uvs)

    def reprojection_errors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per observation: (image_ids (M,), point3D_ids (M,), error in pixels (M,); inf behind)."""
        iids, pids, uv = self.observations()
        err = np.empty(len(iids))
        ids = np.fromiter(self.points3D.keys(), np.int64, len(self.points3D))
        order = np.argsort(ids)
        xyz_all = np.array([pt.xyz for pt in self.points3D.values()]).reshape(-1, 3)
        xyz = xyz_all[order[np.searchsorted(ids, pids, sorter=order)]] if len(pids) else np.zeros((0, 3))
        # per image, over its run of observations (grouped by image; one pass, not one per image)
        by_img = np.argsort(iids, kind="stable")
        uniq, start = np.unique(iids[by_img], return_index=True)
        for iid, lo, hi in zip(uniq, start, np.r_[start[1:], len(iids)]):
            m = by_img[lo:hi]
            img = self.images[int(iid)]
            proj, depth = project_points(xyz[m], self.cameras[img.camera_id], img.cam_from_world)
            e = np.linalg.norm(proj - uv[m], axis=1)
            e[~(depth > 0)] = np.inf
            err[m] = e
        return iids, pids, err

    def update_point_errors(self) -> float:
        """Set every point's ``error`` to its mean reprojection error; return the mean over observations."""
        _, pids, err = self.reprojection_errors()
        if len(err) == 0:
            return float("nan")
        order = np.argsort(pids, kind="stable")
        uniq, start, counts = np.unique(pids[order], return_index=True, return_counts=True)
        sums = np.add.reduceat(err[order], start)
        for pid, s, c in zip(uniq, sums, counts):
            self.points3D[int(pid)].error = float(s / c)
        return float(err.mean())

    def transform(self, scale: float, new_from_old: Rigid3) -> None:
        """Apply the similarity ``X_new = scale * (R X_old + t)`` with ``new_from_old = (R, t)``
        in place to points and camera poses; every camera sees the same pixels afterwards
        (``cam_from_world`` becomes ``(R_c R^T, s t_c - s R_c R^T t)``)."""
        s = float(scale)
        R, t = new_from_old.R, new_from_old.t
        for pt in self.points3D.values():
            pt.xyz = s * (R @ pt.xyz + t)
        for img in self.images.values():
            if img.cam_from_world is None:
                continue
            Rc, tc = img.cam_from_world.R, img.cam_from_world.t
            Rn = Rc @ R.T
            img.cam_from_world = Rigid3(Rn, s * tc - Rn @ (s * t), check=False)

    # --- consistency --------------------------------------------------------------------------
    def check(self) -> None:
        """Raise ``ValueError`` listing every broken link or malformed item (no-op when consistent).

        Vectorised over observations: both directions of the links, (image, keypoint) -> point
        in the images and point -> (image, keypoint) in the tracks, must hold the same triples.
        """
        problems: list[str] = []
        img_sides = []
        for iid, img in self.images.items():
            if img.camera_id not in self.cameras:
                problems.append(f"image {iid} ({img.name}) uses missing camera {img.camera_id}")
            if img.keypoints.ndim != 2 or img.keypoints.shape[1] != 2:
                problems.append(f"image {iid} keypoints have shape {img.keypoints.shape}, expected (N, 2)")
            if img.point3D_ids.shape != (len(img.keypoints),):
                problems.append(f"image {iid} has {len(img.point3D_ids)} point3D_ids for {len(img.keypoints)} keypoints")
                continue
            if img.num_points3D and not img.registered:
                problems.append(f"image {iid} ({img.name}) observes points but has no pose")
            kp = np.flatnonzero(img.point3D_ids >= 0)
            img_sides.append(np.stack([np.full(len(kp), iid), kp, img.point3D_ids[kp]], axis=1))
        # (image_id, keypoint_idx, point3D_id) triples seen from the images ...
        from_images = np.concatenate(img_sides).astype(np.int64) if img_sides else np.zeros((0, 3), np.int64)
        # ... and from the points' tracks
        pids = np.fromiter(self.points3D, dtype=np.int64, count=len(self.points3D))
        tracks = [pt.track.reshape(-1, 2) for pt in self.points3D.values()]
        lengths = np.array([len(t) for t in tracks], dtype=np.int64)
        from_tracks = (np.column_stack([np.concatenate(tracks), np.repeat(pids, lengths)]).astype(np.int64)
                       if len(tracks) and lengths.sum() else np.zeros((0, 3), np.int64))
        xyz = np.array([pt.xyz for pt in self.points3D.values()]).reshape(-1, 3) if pids.size else np.zeros((0, 3))
        for k in np.flatnonzero(~np.isfinite(xyz).all(axis=1))[:5]:
            problems.append(f"point {pids[k]} has invalid xyz {xyz[k]}")
        # repeated observations inside one track
        for t in _repeated_rows(from_tracks)[:5]:
            problems.append(f"point {t[2]} track repeats observation {(int(t[0]), int(t[1]))}")
        # track entries whose image is missing (a keypoint index out of range simply has no
        # counterpart among the images' triples and is reported below)
        exists = np.isin(from_tracks[:, 0], np.array(list(self.images), dtype=np.int64))
        for t in from_tracks[~exists][:5]:
            problems.append(f"point {t[2]} track refers to missing image {t[0]}")
        # the two directions must hold the same triples
        a = {tuple(r) for r in from_images[~_rows_in(from_images, from_tracks)][:20].tolist()}
        for iid, kp, pid in sorted(a):
            if pid not in self.points3D:
                problems.append(f"image {iid} keypoint {kp} refers to missing point {pid}")
            else:
                problems.append(f"image {iid} keypoint {kp} -> point {pid}, whose track lacks it")
        b = from_tracks[exists & ~_rows_in(from_tracks, from_images)][:20]
        for iid, kp, pid in b.tolist():
            problems.append(f"point {pid} track has {(iid, kp)} but that keypoint does not point back")
        if problems:
            more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
            raise ValueError("inconsistent reconstruction: " + "; ".join(problems[:20]) + more)

    def summary(self) -> dict:
        """Counts and mean track length / reprojection error, for reports."""
        lengths = [pt.track_length for pt in self.points3D.values()]
        _, _, err = self.reprojection_errors()
        return {
            "num_cameras": len(self.cameras),
            "num_images": len(self.images),
            "num_registered_images": self.num_registered_images,
            "num_points3D": len(self.points3D),
            "num_observations": int(sum(lengths)),
            "mean_track_length": float(np.mean(lengths)) if lengths else 0.0,
            "mean_reprojection_error_px": float(np.mean(err)) if len(err) else float("nan"),
        }

    def __repr__(self) -> str:
        return (
            f"Reconstruction({len(self.cameras)} cameras, {self.num_registered_images}/{len(self.images)} "
            f"registered images, {len(self.points3D)} points)"
        )
