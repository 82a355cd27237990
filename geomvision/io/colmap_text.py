"""COLMAP text model files (``cameras.txt``, ``images.txt``, ``points3D.txt``, ``rigs.txt``,
``frames.txt``) <-> the flat arrays of :mod:`geomvision.io._colmap_common`.

Line formats (fields separated by single spaces, ``#`` comment lines):

- cameras: ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]``
- images, two lines per image: ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` then
  ``X Y POINT3D_ID ...`` (``-1`` for none; the line is empty for an image without points)
- points3D: ``POINT3D_ID X Y Z R G B ERROR (IMAGE_ID POINT2D_IDX)...``
- rigs (COLMAP 4): ``RIG_ID NUM_SENSORS [REF_TYPE REF_ID] (TYPE ID HAS_POSE [QW QX QY QZ TX TY TZ])...``
- frames (COLMAP 4): ``FRAME_ID RIG_ID QW QX QY QZ TX TY TZ NUM_DATA_IDS (TYPE SENSOR_ID DATA_ID)...``

Numbers are written with Python's shortest round-trip ``repr`` (a double reads back bit-exact,
like COLMAP's 17 significant digits). COLMAP's own reader splits on single spaces and takes the
name as one token, so names written here must not contain whitespace.
"""

from __future__ import annotations

import itertools
import os

import numpy as np

from ._colmap_common import (
    COLMAP_MODEL_IDS,
    COLMAP_MODELS,
    SENSOR_TYPE_IDS,
    SENSOR_TYPES,
    RawCameras,
    RawFrames,
    RawImages,
    RawPoints,
    RawRigs,
)
from ._parsing import convert_tokens, data_lines, file_error, read_text, token_locator

_MAX_EXACT = 2.0**53


def _ints_from_floats(values: np.ndarray, tokens_of, path, where_of, what: str) -> np.ndarray:
    """Integer fields parsed in bulk as float64: check they are integers, re-parse huge ones exactly."""
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise file_error(path, where_of(k), f"{what} {tokens_of(k)!r} is not an integer")
    out = values.astype(np.int64)
    for k in np.flatnonzero(np.abs(values) >= _MAX_EXACT):
        try:
            out[k] = int(tokens_of(int(k)))
        except OverflowError:
            raise file_error(path, where_of(int(k)), f"{what} {tokens_of(int(k))!r} is out of range") from None
    return out


def _at(where: str):
    """A token locator that names one fixed place."""
    return lambda k: where


def _line_where(numbers: list[int]):
    return lambda k: f"line {numbers[k]}"


def _sensor_type(token: str, path, where: str) -> int:
    if token not in SENSOR_TYPE_IDS:
        raise file_error(path, where, f"unknown sensor type {token!r} (expected one of {', '.join(SENSOR_TYPE_IDS)})")
    return SENSOR_TYPE_IDS[token]


# --- readers ---------------------------------------------------------------------------------
def read_cameras_text(path: str | os.PathLike) -> RawCameras:
    lines, numbers = data_lines(read_text(path))
    ids, models, widths, heights, params = [], [], [], [], []
    for line, num in zip(lines, numbers):
        where = f"line {num}"
        tok = line.split()
        if len(tok) < 4:
            raise file_error(path, where, f"expected CAMERA_ID MODEL WIDTH HEIGHT PARAMS[], got {len(tok)} fields")
        if tok[1] not in COLMAP_MODEL_IDS:
            raise file_error(path, where, f"camera {tok[0]} has unknown camera model {tok[1]!r}")
        mid = COLMAP_MODEL_IDS[tok[1]]
        nparams = COLMAP_MODELS[mid][1]
        if len(tok) != 4 + nparams:
            raise file_error(
                path, where, f"camera {tok[0]}: {tok[1]} takes {nparams} parameters, the line has {len(tok) - 4}"
            )
        cid, w, h = convert_tokens([tok[0], tok[2], tok[3]], np.int64, path, _at(where), "camera id/size")
        ids.append(cid)
        models.append(mid)
        widths.append(w)
        heights.append(h)
        params.append(convert_tokens(tok[4:], np.float64, path, _at(where), "camera parameter"))
    where_of = _line_where(numbers)
    return RawCameras(
        np.array(ids, dtype=np.int64),
        np.array(models, dtype=np.int64),
        np.array(widths, dtype=np.int64),
        np.array(heights, dtype=np.int64),
        params,
        where_of,
    )


def read_images_text(path: str | os.PathLike) -> RawImages:
    all_lines = read_text(path).split("\n")
    heads, names, counts, kp_tokens, kp_lines, places = [], [], [], [], [], []
    i, n_lines = 0, len(all_lines)
    while i < n_lines:
        s = all_lines[i].strip()
        i += 1
        if not s or s[0] == "#":
            continue
        where = f"line {i}"
        tok = s.split(None, 9)
        if len(tok) < 10:
            raise file_error(
                path, where, f"expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME, got {len(tok)} fields"
            )
        heads.append(tok[:9])
        names.append(tok[9])
        places.append(where)
        if i >= n_lines:
            raise file_error(path, where, f"truncated file: image {tok[0]} has no POINTS2D line after it")
        pts = all_lines[i].split()
        i += 1
        if len(pts) % 3:
            raise file_error(path, f"line {i}", f"POINTS2D needs triples (X Y POINT3D_ID), got {len(pts)} numbers")
        counts.append(len(pts) // 3)
        kp_tokens.append(pts)
        kp_lines.append(i)
    where_of = places.__getitem__
    flat_head = [t for h in heads for t in h]
    head = convert_tokens(flat_head, np.float64, path, lambda k: places[k // 9], "image field").reshape(-1, 9)
    ids = _ints_from_floats(head[:, 0], lambda k: heads[k][0], path, where_of, "image id")
    cam_ids = _ints_from_floats(head[:, 8], lambda k: heads[k][8], path, where_of, "camera id")
    flat = list(itertools.chain.from_iterable(kp_tokens))
    locate = token_locator([len(t) for t in kp_tokens], kp_lines)
    vals = convert_tokens(flat, np.float64, path, locate, "POINTS2D value").reshape(-1, 3)
    p3d = _ints_from_floats(vals[:, 2], lambda k: flat[3 * k + 2], path, lambda k: locate(3 * k + 2), "point3D id")
    if np.any(p3d < -1):
        k = int(np.flatnonzero(p3d < -1)[0])
        raise file_error(path, locate(3 * k + 2), f"point3D id {int(p3d[k])} is negative (use -1 for none)")
    return RawImages(
        ids=ids,
        quat_wxyz=head[:, 1:5].copy(),
        t=head[:, 5:8].copy(),
        camera_ids=cam_ids,
        names=names,
        num_points2D=np.array(counts, dtype=np.int64),
        xy=vals[:, :2].copy(),
        point3D_ids=p3d,
        where=where_of,
    )


def read_points3D_text(path: str | os.PathLike) -> RawPoints:
    lines, numbers = data_lines(read_text(path))
    split = [line.split() for line in lines]
    counts = np.fromiter(map(len, split), dtype=np.int64, count=len(split))
    bad = (counts < 8) | ((counts - 8) % 2 == 1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise file_error(
            path,
            f"line {numbers[k]}",
            f"expected POINT3D_ID X Y Z R G B ERROR then (IMAGE_ID POINT2D_IDX) pairs, got {counts[k]} fields",
        )
    flat = list(itertools.chain.from_iterable(split))
    locate = token_locator(counts, numbers)
    vals = convert_tokens(flat, np.float64, path, locate, "value")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if len(counts) else np.zeros(0, np.int64)
    where_of = _line_where(numbers)

    def field(j: int, what: str, as_int: bool) -> np.ndarray:
        v = vals[starts + j]
        if not as_int:
            return v
        return _ints_from_floats(v, lambda k: flat[starts[k] + j], path, where_of, what)

    ids = field(0, "point3D id", True)
    xyz = np.stack([field(1, "", False), field(2, "", False), field(3, "", False)], axis=1)
    rgb = np.stack([field(4, "red", True), field(5, "green", True), field(6, "blue", True)], axis=1)
    if np.any((rgb < 0) | (rgb > 255)):
        k = int(np.flatnonzero(np.any((rgb < 0) | (rgb > 255), axis=1))[0])
        raise file_error(path, where_of(k), f"point {ids[k]} color {rgb[k].tolist()} is outside 0..255")
    errors = field(7, "", False)
    is_track = np.ones(len(vals), dtype=bool)
    for j in range(8):
        is_track[starts + j] = False
    track_pos = np.flatnonzero(is_track)
    track = _ints_from_floats(
        vals[track_pos], lambda k: flat[track_pos[k]], path, lambda k: locate(track_pos[k]), "track value"
    )
    if np.any(track < 0):
        k = int(np.flatnonzero(track < 0)[0])
        raise file_error(path, locate(track_pos[k]), f"track value {int(track[k])} is negative")
    return RawPoints(
        ids=ids,
        xyz=xyz,
        rgb=rgb.astype(np.uint8),
        errors=errors,
        track_lengths=(counts - 8) // 2,
        track=track.reshape(-1, 2),
        where=where_of,
    )


class _Fields:
    """Consume the fields of one line left to right, with located errors."""

    def __init__(self, line: str, path, where: str) -> None:
        self.tok, self.pos, self.path, self.where = line.split(), 0, path, where

    def take(self, n: int, what: str) -> list[str]:
        if self.pos + n > len(self.tok):
            raise file_error(self.path, self.where, f"the line ends before {what} ({len(self.tok)} fields)")
        self.pos += n
        return self.tok[self.pos - n : self.pos]

    def ints(self, n: int, what: str) -> list[int]:
        return convert_tokens(self.take(n, what), np.int64, self.path, _at(self.where), what).tolist()

    def floats(self, n: int, what: str) -> np.ndarray:
        return convert_tokens(self.take(n, what), np.float64, self.path, _at(self.where), what)

    def sensor_type(self) -> int:
        return _sensor_type(self.take(1, "a sensor type")[0], self.path, self.where)

    def done(self) -> None:
        if self.pos != len(self.tok):
            raise file_error(self.path, self.where, f"{len(self.tok) - self.pos} unexpected fields at the end")


def read_rigs_text(path: str | os.PathLike) -> RawRigs:
    lines, numbers = data_lines(read_text(path))
    ids, sensors = [], []
    for line, num in zip(lines, numbers):
        f = _Fields(line, path, f"line {num}")
        rid, num_sensors = f.ints(2, "RIG_ID NUM_SENSORS")
        rig_sensors = []
        if num_sensors > 0:
            stype = f.sensor_type()
            rig_sensors.append((stype, f.ints(1, "the reference sensor id")[0], None))
        for _ in range(max(num_sensors - 1, 0)):
            stype = f.sensor_type()
            sid = f.ints(1, "a sensor id")[0]
            has_pose = f.take(1, "HAS_POSE")[0]
            if has_pose not in ("0", "1"):
                raise file_error(path, f.where, f"HAS_POSE must be 0 or 1, got {has_pose!r}")
            pose = None
            if has_pose == "1":
                v = f.floats(7, "a sensor_from_rig pose")
                pose = (v[:4], v[4:])
            rig_sensors.append((stype, sid, pose))
        f.done()
        ids.append(rid)
        sensors.append(rig_sensors)
    return RawRigs(np.array(ids, dtype=np.int64), sensors, _line_where(numbers))


def read_frames_text(path: str | os.PathLike) -> RawFrames:
    lines, numbers = data_lines(read_text(path))
    heads, data_ids = [], []
    for line, num in zip(lines, numbers):
        where = f"line {num}"
        tok = line.split()
        if len(tok) < 10:
            raise file_error(
                path, where, f"expected FRAME_ID RIG_ID QW QX QY QZ TX TY TZ NUM_DATA_IDS ..., got {len(tok)} fields"
            )
        n = int(convert_tokens([tok[9]], np.int64, path, _at(where), "NUM_DATA_IDS")[0])
        if len(tok) != 10 + 3 * n:
            raise file_error(path, where, f"{n} data ids need {10 + 3 * n} fields, got {len(tok)}")
        ids2 = convert_tokens(tok[:2], np.int64, path, _at(where), "frame / rig id")
        pose = convert_tokens(tok[2:9], np.float64, path, _at(where), "pose value")
        heads.append((ids2[0], ids2[1], pose))
        d = np.array(tok[10:], dtype=object).reshape(-1, 3)
        types = [_sensor_type(t, path, where) for t in d[:, 0]]
        rest = convert_tokens(list(d[:, 1:].ravel()), np.int64, path, _at(where), "data id").reshape(-1, 2)
        data_ids.append(np.column_stack([np.array(types, dtype=np.int64), rest]).reshape(-1, 3))
    return RawFrames(
        ids=np.array([h[0] for h in heads], dtype=np.int64),
        rig_ids=np.array([h[1] for h in heads], dtype=np.int64),
        quat_wxyz=np.array([h[2][:4] for h in heads], dtype=np.float64).reshape(-1, 4),
        t=np.array([h[2][4:] for h in heads], dtype=np.float64).reshape(-1, 3),
        data_ids=data_ids,
        where=_line_where(numbers),
    )


# --- writers ---------------------------------------------------------------------------------
def _f(values) -> list[str]:
    return list(map(repr, np.asarray(values, dtype=np.float64).ravel().tolist()))


def cameras_text(cams: RawCameras) -> str:
    out = [
        "# Camera list with one line of data per camera:",
        "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
        f"# Number of cameras: {len(cams.ids)}",
    ]
    for cid, mid, w, h, p in zip(cams.ids, cams.model_ids, cams.widths, cams.heights, cams.params):
        out.append(" ".join([str(int(cid)), COLMAP_MODELS[int(mid)][0], str(int(w)), str(int(h)), *_f(p)]))
    return "\n".join(out) + "\n"


def images_text(imgs: RawImages) -> str:
    n = len(imgs.ids)
    mean_obs = float(np.count_nonzero(imgs.point3D_ids >= 0)) / n if n else 0.0
    out = [
        "# Image list with two lines of data per image:",
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "#   POINTS2D[] as (X, Y, POINT3D_ID)",
        f"# Number of images: {n}, mean observations per image: {mean_obs!r}",
    ]
    q, t = _f(imgs.quat_wxyz), _f(imgs.t)
    x, y = _f(imgs.xy[:, 0]), _f(imgs.xy[:, 1])
    pid = list(map(str, imgs.point3D_ids.tolist()))
    triples = [" ".join(tr) for tr in zip(x, y, pid)]
    ends = np.cumsum(imgs.num_points2D).tolist()
    start = 0
    for k in range(n):
        out.append(
            " ".join(
                [
                    str(int(imgs.ids[k])),
                    *q[4 * k : 4 * k + 4],
                    *t[3 * k : 3 * k + 3],
                    str(int(imgs.camera_ids[k])),
                    imgs.names[k],
                ]
            )
        )
        out.append(" ".join(triples[start : ends[k]]))
        start = ends[k]
    return "\n".join(out) + "\n"


def points3D_text(pts: RawPoints) -> str:
    n = len(pts.ids)
    mean_len = float(pts.track_lengths.mean()) if n else 0.0
    out = [
        "# 3D point list with one line of data per point:",
        "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
        f"# Number of points: {n}, mean track length: {mean_len!r}",
    ]
    xyz = _f(pts.xyz)
    err = _f(pts.errors)
    ids = list(map(str, pts.ids.tolist()))
    rgb = [" ".join(map(str, c)) for c in pts.rgb.tolist()]
    tr = list(map(str, pts.track.ravel().tolist()))
    ends = (2 * np.cumsum(pts.track_lengths)).tolist()
    start = 0
    for k in range(n):
        head = f"{ids[k]} {xyz[3 * k]} {xyz[3 * k + 1]} {xyz[3 * k + 2]} {rgb[k]} {err[k]}"
        out.append(" ".join([head, *tr[start : ends[k]]]) if ends[k] > start else head)
        start = ends[k]
    return "\n".join(out) + "\n"


def rigs_text(rigs: RawRigs) -> str:
    out = [
        "# Rig calib list with one line of data per calib:",
        (
            "#   RIG_ID, NUM_SENSORS, REF_SENSOR_TYPE, REF_SENSOR_ID, SENSORS[] as (SENSOR_TYPE, SENSOR_ID, HAS_POSE, "
            "[QW, QX, QY, QZ, TX, TY, TZ])"
        ),
        f"# Number of rigs: {len(rigs.ids)}",
    ]
    for rid, sensors in zip(rigs.ids, rigs.sensors):
        tok = [str(int(rid)), str(len(sensors))]
        for i, (stype, sid, pose) in enumerate(sensors):
            tok += [SENSOR_TYPES[stype], str(sid)]
            if i > 0:
                tok += ["0"] if pose is None else ["1", *_f(pose[0]), *_f(pose[1])]
        out.append(" ".join(tok))
    return "\n".join(out) + "\n"


def frames_text(frames: RawFrames) -> str:
    out = [
        "# Frame list with one line of data per frame:",
        (
            "#   FRAME_ID, RIG_ID, RIG_FROM_WORLD[QW, QX, QY, QZ, TX, TY, TZ], NUM_DATA_IDS, DATA_IDS[] as "
            "(SENSOR_TYPE, SENSOR_ID, DATA_ID)"
        ),
        f"# Number of frames: {len(frames.ids)}",
    ]
    for k in range(len(frames.ids)):
        d = frames.data_ids[k]
        tok = [
            str(int(frames.ids[k])),
            str(int(frames.rig_ids[k])),
            *_f(frames.quat_wxyz[k]),
            *_f(frames.t[k]),
            str(len(d)),
        ]
        for stype, sid, did in d.tolist():
            tok += [SENSOR_TYPES[stype], str(sid), str(did)]
        out.append(" ".join(tok))
    return "\n".join(out) + "\n"
