"""COLMAP binary model files (``cameras.bin``, ``images.bin``, ``points3D.bin``, ``rigs.bin``,
``frames.bin``) <-> the flat arrays of :mod:`geomvision.io._colmap_common`.

Layouts (all little-endian, counts are uint64 at the start of each file):

- cameras: ``camera_id u32, model_id i32, width u64, height u64, params f64[n(model)]``
- images: ``image_id u32, qw qx qy qz f64, tx ty tz f64, camera_id u32, name (NUL-terminated),
  num_points2D u64, then (x f64, y f64, point3D_id u64) each`` with ``2**64 - 1`` for none
- points3D: ``point3D_id u64, x y z f64, r g b u8, error f64, track_length u64, then
  (image_id u32, point2D_idx u32) each``
- rigs (COLMAP 4): ``rig_id u32, num_sensors u32, [ref sensor: type i32, id u32], then per
  other sensor: type i32, id u32, has_pose u8, [qw qx qy qz tx ty tz f64]``
- frames (COLMAP 4): ``frame_id u32, rig_id u32, rig_from_world qw qx qy qz tx ty tz f64,
  num_data_ids u32, then (sensor_type i32, sensor_id u32, data_id u64) each``

Readers locate errors as ``record k (byte b)``; fixed-size parts are decoded with
``np.frombuffer`` and structured dtypes, points3D entirely without a per-byte Python loop.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from ._colmap_common import (
    COLMAP_MODELS,
    UINT64_INVALID,
    RawCameras,
    RawFrames,
    RawImages,
    RawPoints,
    RawRigs,
)
from ._parsing import file_error

_POINT2D = np.dtype([("x", "<f8"), ("y", "<f8"), ("id", "<u8")])
_POINT3D_HEAD = np.dtype(
    [("id", "<u8"), ("xyz", "<f8", 3), ("rgb", "u1", 3), ("error", "<f8"), ("n", "<u8")]
)  # packed: 51 bytes
_TRACK_EL = np.dtype([("image_id", "<u4"), ("idx", "<u4")])
_DATA_ID = np.dtype([("type", "<i4"), ("sensor_id", "<u4"), ("id", "<u8")])

_IMAGE_HEAD = struct.Struct("<I7dI")  # image_id, qw qx qy qz tx ty tz, camera_id
_CAMERA_HEAD = struct.Struct("<IiQQ")
_FRAME_HEAD = struct.Struct("<II7dI")
_U64 = struct.Struct("<Q")
_RIG_HEAD = struct.Struct("<II")
_REF_SENSOR = struct.Struct("<iI")
_SENSOR = struct.Struct("<iIB")
_POSE = struct.Struct("<7d")


def _where(record: int, offset: int) -> str:
    return f"record {record} (byte {offset})"


class _Buffer:
    """Bounds-checked little-endian reads over a whole file, with located errors."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                self.data = f.read()
        except FileNotFoundError:
            raise ValueError(f"{self.path}: file not found") from None
        self.pos = 0
        self.record = -1  # -1: the file header

    def where(self, offset: int | None = None) -> str:
        off = self.pos if offset is None else offset
        return "header (byte 0)" if self.record < 0 else _where(self.record, off)

    def need(self, n: int, what: str) -> None:
        if self.pos + n > len(self.data):
            raise file_error(
                self.path,
                self.where(),
                f"truncated file: {what} needs {n} bytes but only {len(self.data) - self.pos} remain",
            )

    def unpack(self, st: struct.Struct, what: str) -> tuple:
        self.need(st.size, what)
        out = st.unpack_from(self.data, self.pos)
        self.pos += st.size
        return out

    def count(self, what: str) -> int:
        return self.unpack(_U64, what)[0]

    def array(self, dtype: np.dtype, n: int, what: str) -> np.ndarray:
        self.need(n * dtype.itemsize, what)
        out = np.frombuffer(self.data, dtype=dtype, count=n, offset=self.pos)
        self.pos += n * dtype.itemsize
        return out

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise file_error(
                self.path, f"byte {self.pos}", f"{len(self.data) - self.pos} unexpected bytes after the last record"
            )


def _check_count(buf: _Buffer, n: int, min_record_size: int, what: str) -> None:
    if n * min_record_size > len(buf.data) - buf.pos:
        raise file_error(
            buf.path,
            "header (byte 0)",
            f"truncated or corrupt file: it declares {n} {what} but holds only {len(buf.data)} bytes",
        )


# --- readers ---------------------------------------------------------------------------------
def read_cameras_binary(path: str | os.PathLike) -> RawCameras:
    buf = _Buffer(path)
    n = buf.count("the number of cameras")
    _check_count(buf, n, _CAMERA_HEAD.size, "cameras")
    ids, models, widths, heights, params, places = [], [], [], [], [], []
    for k in range(n):
        buf.record = k
        places.append(buf.where())
        cid, mid, w, h = buf.unpack(_CAMERA_HEAD, "a camera header")
        if mid not in COLMAP_MODELS:
            raise file_error(
                buf.path,
                places[-1],
                f"camera {cid} has unknown COLMAP camera model id {mid} (known: 0-{max(COLMAP_MODELS)})",
            )
        params.append(
            buf.array(np.dtype("<f8"), COLMAP_MODELS[mid][1], f"the {COLMAP_MODELS[mid][0]} parameters").copy()
        )
        ids.append(cid)
        models.append(mid)
        widths.append(w)
        heights.append(h)
    buf.finish()
    return RawCameras(
        np.array(ids, dtype=np.int64),
        np.array(models, dtype=np.int64),
        np.array(widths, dtype=np.int64),
        np.array(heights, dtype=np.int64),
        params,
        places.__getitem__,
    )


def read_images_binary(path: str | os.PathLike) -> RawImages:
    buf = _Buffer(path)
    n = buf.count("the number of images")
    _check_count(buf, n, _IMAGE_HEAD.size + 9, "images")
    heads, names, counts, blocks, places = [], [], [], [], []
    for k in range(n):
        buf.record = k
        places.append(buf.where())
        heads.append(buf.unpack(_IMAGE_HEAD, "an image header"))
        end = buf.data.find(b"\0", buf.pos)
        if end < 0:
            raise file_error(
                buf.path, buf.where(), f"truncated file: the name of image {heads[-1][0]} has no NUL terminator"
            )
        try:
            names.append(buf.data[buf.pos : end].decode("utf-8"))
        except UnicodeDecodeError:
            raise file_error(buf.path, buf.where(), f"the name of image {heads[-1][0]} is not UTF-8") from None
        buf.pos = end + 1
        m = buf.count("the number of points2D")
        blocks.append(buf.array(_POINT2D, m, f"{m} points2D of image {heads[-1][0]}"))
        counts.append(m)
    buf.finish()
    head = np.array(heads, dtype=np.float64).reshape(-1, 9)
    pts = np.concatenate(blocks) if blocks else np.zeros(0, _POINT2D)
    ids3 = pts["id"]
    point3D_ids = np.where(ids3 == np.uint64(UINT64_INVALID), -1, ids3.astype(np.int64))
    if np.any(point3D_ids < -1):
        bad = int(np.flatnonzero(point3D_ids < -1)[0])
        img = int(np.searchsorted(np.cumsum(counts), bad, side="right"))
        raise file_error(buf.path, places[img], f"point3D id {int(ids3[bad])} is out of range")
    return RawImages(
        ids=np.array([h[0] for h in heads], dtype=np.int64),
        quat_wxyz=head[:, 1:5].copy(),
        t=head[:, 5:8].copy(),
        camera_ids=np.array([h[8] for h in heads], dtype=np.int64),
        names=names,
        num_points2D=np.array(counts, dtype=np.int64),
        xy=np.stack([pts["x"], pts["y"]], axis=1),
        point3D_ids=point3D_ids,
        where=places.__getitem__,
    )


def read_points3D_binary(path: str | os.PathLike) -> RawPoints:
    buf = _Buffer(path)
    n = buf.count("the number of points")
    _check_count(buf, n, _POINT3D_HEAD.itemsize, "points")
    data = buf.data
    size = len(data)
    head_size = _POINT3D_HEAD.itemsize
    offsets = np.empty(n, dtype=np.int64)
    off = buf.pos
    unpack = _U64.unpack_from
    for k in range(n):  # only the record boundaries: one unpack per point
        if off + head_size > size:
            raise file_error(buf.path, _where(k, off), f"truncated file: point record needs {head_size} bytes")
        offsets[k] = off
        length = unpack(data, off + head_size - 8)[0]
        off += head_size + 8 * length
        if off > size:
            raise file_error(
                buf.path, _where(k, int(offsets[k])), f"truncated file: a track of {length} elements runs past the end"
            )
    if off != size:
        raise file_error(buf.path, f"byte {off}", f"{size - off} unexpected bytes after the last record")
    raw = np.frombuffer(data, dtype=np.uint8)
    head_idx = offsets[:, None] + np.arange(head_size)
    heads = np.ascontiguousarray(raw[head_idx]).view(_POINT3D_HEAD).ravel()
    is_track = np.ones(size, dtype=bool)
    is_track[:8] = False
    is_track[head_idx.ravel()] = False
    track = np.ascontiguousarray(raw[is_track]).view(_TRACK_EL)
    lengths = heads["n"].astype(np.int64)
    ids = heads["id"]
    if np.any(ids > np.uint64(2**63 - 1)):
        k = int(np.flatnonzero(ids > np.uint64(2**63 - 1))[0])
        raise file_error(buf.path, _where(k, int(offsets[k])), f"point3D id {int(ids[k])} is out of range")
    return RawPoints(
        ids=ids.astype(np.int64),
        xyz=heads["xyz"].astype(np.float64),
        rgb=heads["rgb"].copy(),
        errors=heads["error"].astype(np.float64),
        track_lengths=lengths,
        track=np.stack([track["image_id"], track["idx"]], axis=1).astype(np.int64),
        where=lambda k: _where(k, int(offsets[k])),
    )


def read_rigs_binary(path: str | os.PathLike) -> RawRigs:
    buf = _Buffer(path)
    n = buf.count("the number of rigs")
    _check_count(buf, n, 8, "rigs")
    ids, sensors, places = [], [], []
    for k in range(n):
        buf.record = k
        places.append(buf.where())
        rid, num = buf.unpack(_RIG_HEAD, "a rig header")
        rig_sensors = []
        if num > 0:
            stype, sid = buf.unpack(_REF_SENSOR, "the reference sensor")
            rig_sensors.append((stype, sid, None))
        for _ in range(max(num - 1, 0)):
            stype, sid, has_pose = buf.unpack(_SENSOR, "a sensor")
            p = None
            if has_pose:
                v = np.array(buf.unpack(_POSE, "a sensor_from_rig pose"))
                p = (v[:4], v[4:])
            rig_sensors.append((stype, sid, p))
        ids.append(rid)
        sensors.append(rig_sensors)
    buf.finish()
    return RawRigs(np.array(ids, dtype=np.int64), sensors, places.__getitem__)


def read_frames_binary(path: str | os.PathLike) -> RawFrames:
    buf = _Buffer(path)
    n = buf.count("the number of frames")
    _check_count(buf, n, _FRAME_HEAD.size, "frames")
    heads, data_ids, places = [], [], []
    for k in range(n):
        buf.record = k
        places.append(buf.where())
        heads.append(buf.unpack(_FRAME_HEAD, "a frame header"))
        d = buf.array(_DATA_ID, heads[-1][9], "the data ids")
        data_ids.append(np.stack([d["type"], d["sensor_id"], d["id"]], axis=1).astype(np.int64))
    buf.finish()
    head = np.array(heads, dtype=np.float64).reshape(-1, 10)
    return RawFrames(
        ids=np.array([h[0] for h in heads], dtype=np.int64),
        rig_ids=np.array([h[1] for h in heads], dtype=np.int64),
        quat_wxyz=head[:, 2:6].copy(),
        t=head[:, 6:9].copy(),
        data_ids=data_ids,
        where=places.__getitem__,
    )


# --- writers (values are assumed validated by the caller) ------------------------------------
def cameras_binary_bytes(cams: RawCameras) -> bytes:
    parts = [_U64.pack(len(cams.ids))]
    for cid, mid, w, h, p in zip(cams.ids, cams.model_ids, cams.widths, cams.heights, cams.params):
        parts.append(_CAMERA_HEAD.pack(int(cid), int(mid), int(w), int(h)))
        parts.append(np.asarray(p, dtype="<f8").tobytes())
    return b"".join(parts)


def images_binary_bytes(imgs: RawImages) -> bytes:
    n = len(imgs.ids)
    pts = np.empty(len(imgs.xy), _POINT2D)
    pts["x"], pts["y"] = imgs.xy[:, 0], imgs.xy[:, 1]
    pts["id"] = np.where(imgs.point3D_ids < 0, np.uint64(UINT64_INVALID), imgs.point3D_ids.astype(np.uint64))
    ends = np.cumsum(imgs.num_points2D)
    starts = ends - imgs.num_points2D
    parts = [_U64.pack(n)]
    for k in range(n):
        q, t = imgs.quat_wxyz[k], imgs.t[k]
        parts.append(_IMAGE_HEAD.pack(int(imgs.ids[k]), *q.tolist(), *t.tolist(), int(imgs.camera_ids[k])))
        parts.append(imgs.names[k].encode("utf-8") + b"\0")
        parts.append(_U64.pack(int(imgs.num_points2D[k])))
        parts.append(pts[starts[k] : ends[k]].tobytes())
    return b"".join(parts)


def points3D_binary_bytes(pts: RawPoints) -> bytes:
    n = len(pts.ids)
    head = np.empty(n, _POINT3D_HEAD)
    head["id"] = pts.ids.astype(np.uint64)
    head["xyz"] = pts.xyz
    head["rgb"] = pts.rgb
    head["error"] = pts.errors
    head["n"] = pts.track_lengths.astype(np.uint64)
    track = np.empty(len(pts.track), _TRACK_EL)
    track["image_id"], track["idx"] = pts.track[:, 0], pts.track[:, 1]
    head_size = _POINT3D_HEAD.itemsize
    total = 8 + head_size * n + track.nbytes
    out = np.empty(total, dtype=np.uint8)
    out[:8] = np.frombuffer(_U64.pack(n), dtype=np.uint8)
    before = np.concatenate([[0], np.cumsum(pts.track_lengths)[:-1]]) if n else np.zeros(0, np.int64)
    offsets = 8 + head_size * np.arange(n, dtype=np.int64) + 8 * before
    head_idx = (offsets[:, None] + np.arange(head_size)).ravel()
    is_track = np.ones(total, dtype=bool)
    is_track[:8] = False
    is_track[head_idx] = False
    out[head_idx] = head.view(np.uint8)
    out[is_track] = track.view(np.uint8)
    return out.tobytes()


def rigs_binary_bytes(rigs: RawRigs) -> bytes:
    parts = [_U64.pack(len(rigs.ids))]
    for rid, sensors in zip(rigs.ids, rigs.sensors):
        parts.append(struct.pack("<II", int(rid), len(sensors)))
        for i, (stype, sid, pose) in enumerate(sensors):
            if i == 0:
                parts.append(struct.pack("<iI", stype, sid))
            elif pose is None:
                parts.append(struct.pack("<iIB", stype, sid, 0))
            else:
                parts.append(struct.pack("<iIB7d", stype, sid, 1, *pose[0].tolist(), *pose[1].tolist()))
    return b"".join(parts)


def frames_binary_bytes(frames: RawFrames) -> bytes:
    parts = [_U64.pack(len(frames.ids))]
    for k in range(len(frames.ids)):
        d = frames.data_ids[k]
        parts.append(
            _FRAME_HEAD.pack(
                int(frames.ids[k]), int(frames.rig_ids[k]), *frames.quat_wxyz[k].tolist(), *frames.t[k].tolist(), len(d)
            )
        )
        rec = np.empty(len(d), _DATA_ID)
        rec["type"], rec["sensor_id"], rec["id"] = d[:, 0], d[:, 1], d[:, 2]
        parts.append(rec.tobytes())
    return b"".join(parts)
