"""Read and write COLMAP sparse models (text and binary, COLMAP 3 and COLMAP 4).

    rec = read_model("sparse/0")              # cameras/images/points3D .bin or .txt
    write_model(rec, "out/0", binary=True)    # COLMAP 3 and 4 (pycolmap 4.2) read the result

Conversions happen only here, at the file boundary:

- **Pixels.** COLMAP puts the centre of the top-left pixel at (0.5, 0.5); geomvision at (0, 0).
  Keypoints (points2D) and principal points (cx, cy) are shifted by 0.5 on read and write;
  focal lengths and distortion coefficients are unaffected.
- **Poses.** Images store ``cam_from_world`` as a quaternion (qw, qx, qy, qz) and translation,
  exactly like :class:`~geomvision.Rigid3`'s ``x_cam = R X + t``; written quaternions have
  qw >= 0. Camera, image and point3D ids are preserved.
- **Camera models.** SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV and
  OPENCV_FISHEYE map one to one (same names, parameter order and binary model ids).
  ``PINHOLE_SKEW`` has no COLMAP model, so writing it raises; reading another COLMAP model
  (FULL_OPENCV, FOV, ...) raises naming the file and camera.

**COLMAP 3 and 4 compatibility** (COLMAP 4.2's ``scene/reconstruction_io_{text,binary}.cc`` and
pycolmap 4.2.1's output were inspected). COLMAP 4 added ``rigs`` and ``frames`` files but left
the three COLMAP 3 files byte-compatible: ``images.bin``/``.txt`` still hold each registered
image's ``cam_from_world`` and camera id in the COLMAP 3 layout. COLMAP 4 reads a folder
without rigs/frames as a legacy model (one rig per camera, one frame per image, frame id =
image id); when the rigs file exists it *requires* the frames file to list every image, and then
takes image poses from the frames. So :func:`write_model` writes the three COLMAP 3 files
exactly as COLMAP 3 writes them (COLMAP 3 ignores the other two files) plus trivial COLMAP 4
rigs and frames: rig id = camera id with that camera as its only (reference) sensor, and one
frame per registered image with frame id = image id and ``rig_from_world = cam_from_world``.
Both versions thus see the same poses, and pycolmap 4.2.1 reads the folder (tested).

**Reading rigs and frames.** When present (both must be), they are read and checked against
the images: every image must be in exactly one frame of a rig that holds its camera, and its
``cam_from_world`` must equal ``sensor_from_rig @ rig_from_world`` (to 1e-6), which is what
COLMAP 4 uses as the pose. geomvision has no rig object, so multi-camera rig calibrations are
not kept: writing such a model back stores the same per-image poses with trivial rigs.

**Unregistered images.** COLMAP (3 and 4) model files contain registered images only: the
image files have no "no pose" marker and COLMAP 4 writes only frames that have a pose.
:func:`write_model` therefore writes the registered images and silently leaves unregistered
ones out (their cameras are still written); since a consistent Reconstruction has no
observations in unregistered images, every pose, point, track and keypoint of the registered
images round-trips exactly (poses to ~1e-16 through the quaternion).

**Files.** :func:`read_model` reads the binary model when ``cameras.bin``, ``images.bin`` and
``points3D.bin`` exist, else the text model (COLMAP's preference). :func:`write_model` creates
the folder, writes each file atomically (temporary file + ``os.replace``) and then deletes the
other format's model files from the folder, so that a later :func:`read_model` or COLMAP reads
what was just written and not a stale model.

Malformed files raise ``ValueError`` naming the file, the line (text) or record and byte
offset (binary), and the problem; the assembled Reconstruction is then ``check()``-ed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..geometry.camera import CAMERA_MODELS, Camera
from ..geometry.rigid import Rigid3
from ..geometry.rotation import quat_wxyz_from_rotmat, rotmat_from_quat_wxyz, so3_log
from ..scene.reconstruction import Point3D, Reconstruction
from . import colmap_binary as cb
from . import colmap_text as ct
from .._atomic import atomic_write_bytes, atomic_write_text
from .._validation import check_writer_arguments
from ._colmap_common import (
    CAMERA_SENSOR,
    COLMAP_MODELS,
    UINT32_INVALID,
    RawCameras,
    RawFrames,
    RawImages,
    RawModel,
    RawPoints,
    RawRigs,
)
from ._parsing import file_error

__all__ = ["model_format", "read_model", "write_model"]

_MODEL_FILES = ("cameras", "images", "points3D")
_RIG_FILES = ("rigs", "frames")
_POSE_TOL = 1e-6
_READERS = {
    "bin": {
        "cameras": cb.read_cameras_binary,
        "images": cb.read_images_binary,
        "points3D": cb.read_points3D_binary,
        "rigs": cb.read_rigs_binary,
        "frames": cb.read_frames_binary,
    },
    "txt": {
        "cameras": ct.read_cameras_text,
        "images": ct.read_images_text,
        "points3D": ct.read_points3D_text,
        "rigs": ct.read_rigs_text,
        "frames": ct.read_frames_text,
    },
}


# --- public API ------------------------------------------------------------------------------
def model_format(path: str | os.PathLike) -> str:
    """``"bin"`` or ``"txt"``: the COLMAP model in folder ``path`` (binary preferred when both).

    Raises ValueError when the folder does not exist or holds no complete model."""
    folder = Path(os.fspath(path))
    if not folder.is_dir():
        raise ValueError(f"path: {str(folder)!r} is not a folder; pass the folder holding cameras/images/points3D")
    for ext in ("bin", "txt"):
        if all((folder / f"{name}.{ext}").is_file() for name in _MODEL_FILES):
            return ext
    present = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".txt"))
    raise ValueError(
        f"{folder}: no COLMAP model: expected cameras, images and points3D as .bin or as .txt files; "
        f"found {', '.join(present) if present else 'none of them'}"
    )


def read_model(path: str | os.PathLike, *, check: bool = True) -> Reconstruction:
    """Read the COLMAP model (binary or text, COLMAP 3 or 4) in folder ``path``.

    Returns a :class:`~geomvision.Reconstruction` in geomvision conventions (pixel (0, 0) =
    centre of the top-left pixel; ids preserved); see the module docstring. The files are
    always validated (vectorised: dangling ids, track/keypoint links, duplicates, non-finite
    values); ``check=True`` also runs ``Reconstruction.check()`` on the result, which is
    redundant after that validation and costs about 10 us per observation."""
    folder = Path(os.fspath(path))
    ext = model_format(folder)
    files = {name: str(folder / f"{name}.{ext}") for name in (*_MODEL_FILES, *_RIG_FILES)}
    readers = _READERS[ext]
    has = {name: os.path.isfile(files[name]) for name in _RIG_FILES}
    if has["rigs"] != has["frames"]:
        there, missing = ("rigs", "frames") if has["rigs"] else ("frames", "rigs")
        raise ValueError(
            f"{folder}: {there}.{ext} exists but {missing}.{ext} does not; a COLMAP 4 model needs both "
            "(or neither, for a COLMAP 3 model)"
        )
    raw = RawModel(
        cameras=readers["cameras"](files["cameras"]),
        images=readers["images"](files["images"]),
        points=readers["points3D"](files["points3D"]),
        rigs=readers["rigs"](files["rigs"]) if has["rigs"] else None,
        frames=readers["frames"](files["frames"]) if has["frames"] else None,
        files=files,
    )
    rec = _reconstruction_from_raw(raw)
    if check:
        rec.check()
    return rec


def write_model(rec: Reconstruction, path: str | os.PathLike, binary: bool = True) -> None:
    """Write ``rec`` as a COLMAP model into folder ``path`` (created if missing).

    Writes cameras, images (registered only), points3D, plus trivial COLMAP 4 rigs and frames,
    as ``.bin`` (``binary=True``) or ``.txt``; each file atomically. Model files of the other
    format in the folder are then removed. Raises ValueError for PINHOLE_SKEW cameras, ids out
    of COLMAP's range, names COLMAP cannot store, or an inconsistent reconstruction."""
    check_writer_arguments(rec, "write_model", "(rec, path)")
    if not isinstance(rec, Reconstruction):
        raise ValueError(f"rec must be a geomvision Reconstruction, got {type(rec).__name__}")
    folder = Path(os.fspath(path))
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"path: {str(folder)!r} exists and is not a folder")
    raw = _raw_from_reconstruction(rec, text=not binary)
    folder.mkdir(parents=True, exist_ok=True)
    if binary:
        contents = {
            "cameras": cb.cameras_binary_bytes(raw.cameras),
            "images": cb.images_binary_bytes(raw.images),
            "points3D": cb.points3D_binary_bytes(raw.points),
            "rigs": cb.rigs_binary_bytes(raw.rigs),
            "frames": cb.frames_binary_bytes(raw.frames),
        }
        for name, data in contents.items():
            atomic_write_bytes(folder / f"{name}.bin", data)
    else:
        contents = {
            "cameras": ct.cameras_text(raw.cameras),
            "images": ct.images_text(raw.images),
            "points3D": ct.points3D_text(raw.points),
            "rigs": ct.rigs_text(raw.rigs),
            "frames": ct.frames_text(raw.frames),
        }
        for name, text in contents.items():
            atomic_write_text(folder / f"{name}.txt", text)
    other = "txt" if binary else "bin"
    for name in (*_MODEL_FILES, *_RIG_FILES):
        stale = folder / f"{name}.{other}"
        if stale.is_file():
            stale.unlink()


# --- file arrays -> Reconstruction -----------------------------------------------------------
def _first_duplicate(ids: np.ndarray) -> int | None:
    """Index of the first repeated value (its second occurrence), or None."""
    if len(ids) < 2:
        return None
    order = np.argsort(ids, kind="stable")
    same = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    return None if len(same) == 0 else int(order[same + 1].min())


def _lookup(sorted_keys: np.ndarray, order: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``values`` in the (unsorted) key array given its argsort; (idx, found)."""
    pos = np.searchsorted(sorted_keys, values)
    pos_c = np.minimum(pos, max(len(sorted_keys) - 1, 0))
    found = (
        (pos < len(sorted_keys)) & (sorted_keys[pos_c] == values) if len(sorted_keys) else np.zeros(len(values), bool)
    )
    return order[pos_c] if len(order) else np.zeros(len(values), np.int64), found


def _check_unique(ids: np.ndarray, path: str, where, what: str) -> None:
    k = _first_duplicate(ids)
    if k is not None:
        raise file_error(path, where(k), f"duplicate {what} id {int(ids[k])}")


def _cameras_from_raw(cams: RawCameras, path: str) -> dict[int, Camera]:
    _check_unique(cams.ids, path, cams.where, "camera")
    supported = ", ".join(n for n, i in CAMERA_MODELS.items() if i.colmap_id is not None)
    out = {}
    for k, cid in enumerate(cams.ids.tolist()):
        mid = int(cams.model_ids[k])
        name = COLMAP_MODELS[mid][0]
        info = CAMERA_MODELS.get(name)
        if info is None or info.colmap_id != mid:
            raise file_error(
                path,
                cams.where(k),
                f"camera {cid} uses COLMAP model {name} (id {mid}), which geomvision does not support; "
                f"supported: {supported} (undistort the images with COLMAP's image_undistorter to get PINHOLE)",
            )
        params = np.array(cams.params[k], dtype=np.float64)
        params[[info.param_names.index("cx"), info.param_names.index("cy")]] -= 0.5
        try:
            out[cid] = Camera(name, int(cams.widths[k]), int(cams.heights[k]), params)
        except ValueError as exc:
            raise file_error(path, cams.where(k), f"camera {cid}: {exc}") from None
    return out


def _check_images(imgs: RawImages, camera_ids: np.ndarray, path: str, cameras_path: str) -> None:
    _check_unique(imgs.ids, path, imgs.where, "image")
    if np.any(imgs.ids < 0) or np.any(imgs.ids >= UINT32_INVALID):
        k = int(np.flatnonzero((imgs.ids < 0) | (imgs.ids >= UINT32_INVALID))[0])
        raise file_error(path, imgs.where(k), f"image id {int(imgs.ids[k])} is out of range")
    missing = ~np.isin(imgs.camera_ids, camera_ids)
    if missing.any():
        k = int(np.flatnonzero(missing)[0])
        raise file_error(
            path,
            imgs.where(k),
            f"image {int(imgs.ids[k])} uses camera {int(imgs.camera_ids[k])}, which is not in {cameras_path}",
        )
    bad = (
        ~np.isfinite(imgs.quat_wxyz).all(1)
        | ~np.isfinite(imgs.t).all(1)
        | (np.linalg.norm(imgs.quat_wxyz, axis=1) < 1e-12)
    )
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise file_error(
            path,
            imgs.where(k),
            f"image {int(imgs.ids[k])} has an invalid pose "
            f"(quaternion {imgs.quat_wxyz[k].tolist()}, t {imgs.t[k].tolist()})",
        )
    bad_xy = ~np.isfinite(imgs.xy).all(1)
    if bad_xy.any():
        m = int(np.flatnonzero(bad_xy)[0])
        k = int(np.searchsorted(np.cumsum(imgs.num_points2D), m, side="right"))
        raise file_error(path, imgs.where(k), f"image {int(imgs.ids[k])} has a NaN or inf point2D")


def _link_tracks(
    imgs: RawImages, pts: RawPoints, images_path: str, points_path: str, *, source: str = "file"
) -> np.ndarray:
    """Validate tracks against images; return the per-keypoint point3D ids implied by the tracks.

    Checks: track image exists, point2D index in range, no keypoint claimed twice, and the
    images' own point3D ids agree with the tracks. ``source="rec"`` words errors for a
    Reconstruction being written instead of files being read."""
    n_img = len(imgs.ids)
    order = np.argsort(imgs.ids, kind="stable")
    sorted_ids = imgs.ids[order]
    kp_end = np.cumsum(imgs.num_points2D)
    kp_start = kp_end - imgs.num_points2D
    pt_end = np.cumsum(pts.track_lengths)

    def point_of(m: int) -> int:
        return int(np.searchsorted(pt_end, m, side="right"))

    def fail_point(k: int, what: str) -> ValueError:
        if source == "rec":
            return ValueError(f"rec: inconsistent reconstruction: point {int(pts.ids[k])} {what}; run rec.check()")
        return file_error(points_path, pts.where(k), f"point3D {int(pts.ids[k])} {what}")

    def fail_image(k: int, what: str) -> ValueError:
        if source == "rec":
            return ValueError(f"rec: inconsistent reconstruction: image {int(imgs.ids[k])} {what}; run rec.check()")
        return file_error(images_path, imgs.where(k), f"image {int(imgs.ids[k])} {what}")

    tr_img, tr_kp = pts.track[:, 0], pts.track[:, 1]
    img_idx, found = _lookup(sorted_ids, order, tr_img)
    if not found.all():
        m = int(np.flatnonzero(~found)[0])
        where = "a registered image" if source == "rec" else images_path
        raise fail_point(point_of(m), f"has a track element in image {int(tr_img[m])}, which is not in {where}")
    in_range = (tr_kp >= 0) & (tr_kp < imgs.num_points2D[img_idx])
    if not np.all(in_range):
        m = int(np.flatnonzero(~in_range)[0])
        raise fail_point(
            point_of(m),
            f"has a track element (image {int(tr_img[m])}, point2D {int(tr_kp[m])}) but that image has "
            f"{int(imgs.num_points2D[img_idx[m]])} points2D",
        )
    flat = kp_start[img_idx] + tr_kp
    k = _first_duplicate(flat)
    if k is not None:
        raise fail_point(
            point_of(k),
            f"has track element (image {int(tr_img[k])}, point2D {int(tr_kp[k])}), "
            "which another track element already claims",
        )
    derived = np.full(int(kp_end[-1]) if n_img else 0, -1, dtype=np.int64)
    derived[flat] = np.repeat(pts.ids, pts.track_lengths)
    diff = np.flatnonzero(derived != imgs.point3D_ids)
    if len(diff):
        m = int(diff[0])
        i = int(np.searchsorted(kp_end, m, side="right"))
        kp = m - int(kp_start[i])
        said, tracks = int(imgs.point3D_ids[m]), int(derived[m])
        if said >= 0 and not np.isin(said, pts.ids):
            where = "the points" if source == "rec" else points_path
            raise fail_image(i, f"point2D {kp} refers to point3D {said}, which is not in {where}")
        if said >= 0:
            who = f"point3D {tracks}'s track" if tracks >= 0 else "no track"
            raise fail_image(i, f"point2D {kp} refers to point3D {said}, but {who} lists it")
        raise fail_image(i, f"point2D {kp} has no point3D, but the track of point3D {tracks} lists it")
    return derived


def _check_points(pts: RawPoints, path: str) -> None:
    _check_unique(pts.ids, path, pts.where, "point3D")
    if np.any(pts.ids < 0):
        k = int(np.flatnonzero(pts.ids < 0)[0])
        raise file_error(path, pts.where(k), f"point3D id {int(pts.ids[k])} is negative")
    bad = ~np.isfinite(pts.xyz).all(1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise file_error(
            path, pts.where(k), f"point3D {int(pts.ids[k])} has non-finite coordinates {pts.xyz[k].tolist()}"
        )


def _check_rigs_frames(raw: RawModel, cam_from_world_R: np.ndarray, camera_ids: np.ndarray) -> None:
    """COLMAP 4 rigs/frames must cover the images consistently (see module docstring)."""
    rigs, frames, imgs = raw.rigs, raw.frames, raw.images
    rp, fp, ip = raw.files["rigs"], raw.files["frames"], raw.files["images"]
    _check_unique(rigs.ids, rp, rigs.where, "rig")
    _check_unique(frames.ids, fp, frames.where, "frame")
    rig_sensors: dict[int, dict[tuple[int, int], tuple[np.ndarray, np.ndarray] | None | str]] = {}
    for k, (rid, sensors) in enumerate(zip(rigs.ids.tolist(), rigs.sensors)):
        table = {}
        for i, (stype, sid, pose) in enumerate(sensors):
            if stype == CAMERA_SENSOR and not np.isin(sid, camera_ids):
                raise file_error(
                    rp, rigs.where(k), f"rig {rid} has camera {sid}, which is not in {raw.files['cameras']}"
                )
            table[(stype, sid)] = "ref" if i == 0 else pose
        rig_sensors[rid] = table
    image_row = {iid: k for k, iid in enumerate(imgs.ids.tolist())}
    frame_of_image = np.full(len(imgs.ids), -1, dtype=np.int64)
    R_f = rotmat_from_quat_wxyz(frames.quat_wxyz) if len(frames.ids) else np.zeros((0, 3, 3))
    for k, (fid, rid) in enumerate(zip(frames.ids.tolist(), frames.rig_ids.tolist())):
        if rid not in rig_sensors:
            raise file_error(fp, frames.where(k), f"frame {fid} uses rig {rid}, which is not in {rp}")
        for stype, sid, did in frames.data_ids[k].tolist():
            if (stype, sid) not in rig_sensors[rid]:
                raise file_error(fp, frames.where(k), f"frame {fid} has data of sensor {sid}, which rig {rid} lacks")
            if stype != CAMERA_SENSOR:
                continue
            row = image_row.get(did)
            if row is None:
                raise file_error(fp, frames.where(k), f"frame {fid} lists image {did}, which is not in {ip}")
            if frame_of_image[row] >= 0:
                raise file_error(
                    fp, frames.where(k), f"frame {fid} lists image {did}, which another frame already lists"
                )
            if int(imgs.camera_ids[row]) != sid:
                raise file_error(
                    fp,
                    frames.where(k),
                    f"frame {fid} lists image {did} for camera {sid}, "
                    f"but the image uses camera {int(imgs.camera_ids[row])}",
                )
            frame_of_image[row] = k
            pose = rig_sensors[rid][(stype, sid)]
            if pose is None:  # unknown sensor_from_rig: the image pose is all we have
                continue
            R, t = R_f[k], frames.t[k]
            if pose != "ref":
                Rs = rotmat_from_quat_wxyz(pose[0])
                R, t = Rs @ R, Rs @ t + pose[1]
            dR = float(np.linalg.norm(so3_log(R.T @ cam_from_world_R[row])))
            dt = float(np.linalg.norm(t - imgs.t[row]))
            if dR > _POSE_TOL or dt > _POSE_TOL * (1.0 + float(np.linalg.norm(t))):
                raise file_error(
                    ip,
                    imgs.where(row),
                    f"image {did}'s cam_from_world differs from frame {fid} of {fp} (rotation {dR:.3g} rad, "
                    f"translation {dt:.3g}); the model is inconsistent",
                )
    if np.any(frame_of_image < 0):
        row = int(np.flatnonzero(frame_of_image < 0)[0])
        raise file_error(ip, imgs.where(row), f"image {int(imgs.ids[row])} is in no frame of {fp}")


def _reconstruction_from_raw(raw: RawModel) -> Reconstruction:
    files = raw.files
    cameras = _cameras_from_raw(raw.cameras, files["cameras"])
    imgs, pts = raw.images, raw.points
    _check_images(imgs, raw.cameras.ids, files["images"], files["cameras"])
    _check_points(pts, files["points3D"])
    point3D_ids = _link_tracks(imgs, pts, files["images"], files["points3D"])
    R = rotmat_from_quat_wxyz(imgs.quat_wxyz) if len(imgs.ids) else np.zeros((0, 3, 3))
    if raw.rigs is not None:
        _check_rigs_frames(raw, R, raw.cameras.ids)

    rec = Reconstruction()
    for cid, cam in cameras.items():
        rec.add_camera(cam, camera_id=cid)
    kp_end = np.cumsum(imgs.num_points2D).tolist()
    keypoints = imgs.xy - 0.5
    start = 0
    for k, iid in enumerate(imgs.ids.tolist()):
        end = kp_end[k]
        pose = Rigid3(R[k], imgs.t[k], check=False)
        rec.add_image(imgs.names[k], int(imgs.camera_ids[k]), keypoints[start:end], pose, image_id=iid)
        rec.images[iid].point3D_ids = point3D_ids[start:end].copy()
        start = end
    track_end = np.cumsum(pts.track_lengths).tolist()
    track_start = [0, *track_end[:-1]]
    tracks = [pts.track[a:b] for a, b in zip(track_start, track_end)]
    xyz, rgb, errors = pts.xyz.copy(), pts.rgb.copy(), pts.errors.tolist()
    points = rec.points3D
    for k, pid in enumerate(pts.ids.tolist()):
        points[pid] = Point3D(xyz[k], tracks[k], rgb[k], errors[k])
    if len(pts.ids):
        # keep add_point3D's automatic ids above every id read (what add_point3D maintains)
        rec._next_point3D_id = max(rec._next_point3D_id, int(pts.ids.max()) + 1)
    return rec


# --- Reconstruction -> file arrays -----------------------------------------------------------
def _check_colmap_id(value: int, what: str, limit: int) -> int:
    if not 0 <= value < limit:
        raise ValueError(f"rec: {what} id {value} is outside COLMAP's range 0..{limit - 1}; renumber it")
    return value


def _raw_from_reconstruction(rec: Reconstruction, *, text: bool) -> RawModel:
    cam_ids = sorted(rec.cameras)
    params, model_ids = [], []
    for cid in cam_ids:
        _check_colmap_id(cid, "camera", UINT32_INVALID)
        cam = rec.cameras[cid]
        info = CAMERA_MODELS[cam.model]
        if info.colmap_id is None:
            raise ValueError(
                f"rec: camera {cid} is {cam.model}, which COLMAP has no camera model for (it cannot store skew). "
                "Fix: if the skew is zero use Camera('PINHOLE', w, h, [fx, fy, cx, cy]); otherwise re-estimate the "
                "intrinsics with a COLMAP model (e.g. PINHOLE or OPENCV) or resample the images to remove the skew"
            )
        p = cam.params.copy()
        p[[info.param_names.index("cx"), info.param_names.index("cy")]] += 0.5
        params.append(p)
        model_ids.append(info.colmap_id)
    cams = RawCameras(
        ids=np.array(cam_ids, dtype=np.int64),
        model_ids=np.array(model_ids, dtype=np.int64),
        widths=np.array([rec.cameras[c].width for c in cam_ids], dtype=np.int64),
        heights=np.array([rec.cameras[c].height for c in cam_ids], dtype=np.int64),
        params=params,
        where=str,
    )

    img_ids = rec.registered_image_ids
    images = [rec.images[i] for i in img_ids]
    for iid, img in zip(img_ids, images):
        _check_colmap_id(iid, "image", UINT32_INVALID)
        _check_name(img.name, iid, text)
        if img.camera_id not in rec.cameras:
            raise ValueError(f"rec: image {iid} uses missing camera {img.camera_id}; run rec.check()")
    n_img = len(images)
    R = np.array([img.cam_from_world.R for img in images]).reshape(n_img, 3, 3)
    t = np.array([img.cam_from_world.t for img in images]).reshape(n_img, 3)
    if not (np.isfinite(R).all() and np.isfinite(t).all()):
        raise ValueError("rec: an image pose contains NaN or inf")
    quat = quat_wxyz_from_rotmat(R) if n_img else np.zeros((0, 4))
    counts = np.array([len(img.keypoints) for img in images], dtype=np.int64)
    xy = np.concatenate([img.keypoints for img in images]) + 0.5 if n_img else np.zeros((0, 2))
    p3d = np.concatenate([img.point3D_ids for img in images]).astype(np.int64) if n_img else np.zeros(0, np.int64)
    imgs = RawImages(
        ids=np.array(img_ids, dtype=np.int64),
        quat_wxyz=quat,
        t=t,
        camera_ids=np.array([img.camera_id for img in images], dtype=np.int64),
        names=[img.name for img in images],
        num_points2D=counts,
        xy=xy.reshape(-1, 2),
        point3D_ids=p3d,
        where=str,
    )

    pt_ids = sorted(rec.points3D)
    points = [rec.points3D[p] for p in pt_ids]
    if pt_ids and pt_ids[0] < 0:
        raise ValueError(f"rec: point3D id {pt_ids[0]} is negative; COLMAP ids are unsigned")
    n_pt = len(points)
    xyz = np.array([p.xyz for p in points], dtype=np.float64).reshape(n_pt, 3)
    if not np.isfinite(xyz).all():
        raise ValueError("rec: a point3D has NaN or inf coordinates; run rec.check()")
    lengths = np.array([len(p.track) for p in points], dtype=np.int64)
    track = (
        np.concatenate([p.track for p in points]).astype(np.int64, copy=False).reshape(-1, 2)
        if n_pt
        else np.zeros((0, 2), np.int64)
    )
    pts = RawPoints(
        ids=np.array(pt_ids, dtype=np.int64),
        xyz=xyz,
        rgb=np.array([p.color for p in points], dtype=np.uint8).reshape(n_pt, 3),
        errors=np.array([p.error for p in points], dtype=np.float64),
        track_lengths=lengths,
        track=track.reshape(-1, 2),
        where=str,
    )
    _link_tracks(imgs, pts, "", "", source="rec")

    # COLMAP 4: one trivial rig per camera, one frame per registered image (module docstring)
    rigs = RawRigs(ids=cams.ids.copy(), sensors=[[(CAMERA_SENSOR, int(c), None)] for c in cam_ids], where=str)
    frames = RawFrames(
        ids=imgs.ids.copy(),
        rig_ids=imgs.camera_ids.copy(),
        quat_wxyz=quat,
        t=t,
        data_ids=[np.array([[CAMERA_SENSOR, c, i]], dtype=np.int64) for c, i in zip(imgs.camera_ids.tolist(), img_ids)],
        where=str,
    )
    return RawModel(cams, imgs, pts, rigs, frames)


def _check_name(name: str, image_id: int, text: bool) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"rec: image {image_id} has an empty or non-string name {name!r}; COLMAP needs a file name")
    if "\0" in name:
        raise ValueError(f"rec: image {image_id} name {name!r} contains a NUL character; rename the image")
    if text and any(c.isspace() for c in name):
        raise ValueError(
            f"rec: image {image_id} name {name!r} contains whitespace, which COLMAP's text format cannot store; "
            "rename the image or write a binary model (binary=True)"
        )
