"""The flat, file-level content of a COLMAP model, shared by the text and binary codecs.

These arrays hold exactly what the files hold (COLMAP pixel convention, quaternions wxyz,
COLMAP model ids); :mod:`geomvision.io.colmap` converts them to and from a Reconstruction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

# COLMAP camera model id -> (name, number of parameters), as in COLMAP 4.2's camera_models.h.
COLMAP_MODELS: dict[int, tuple[str, int]] = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8),
    6: ("FULL_OPENCV", 12),
    7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5),
    10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
    12: ("SIMPLE_DIVISION", 4),
    13: ("DIVISION", 5),
    14: ("SIMPLE_FISHEYE", 3),
    15: ("FISHEYE", 4),
    16: ("EUCM", 6),
    17: ("EQUIRECTANGULAR", 2),
}
COLMAP_MODEL_IDS: dict[str, int] = {name: mid for mid, (name, _) in COLMAP_MODELS.items()}

# COLMAP 4 sensor types (rigs.* / frames.*): enum value <-> text name.
SENSOR_TYPES: dict[int, str] = {-1: "INVALID", 0: "CAMERA", 1: "IMU"}
SENSOR_TYPE_IDS: dict[str, int] = {name: v for v, name in SENSOR_TYPES.items()}
CAMERA_SENSOR = 0

UINT32_INVALID = 2**32 - 1  # COLMAP's kInvalid{Camera,Image,Rig,Frame}Id
UINT64_INVALID = 2**64 - 1  # COLMAP's kInvalidPoint3DId (binary images file)

Where = Callable[[int], str]


def where_from_list(places: list[str]) -> Where:
    return places.__getitem__


@dataclass
class RawCameras:
    ids: np.ndarray  # (C,) int64
    model_ids: np.ndarray  # (C,) int64, COLMAP ids
    widths: np.ndarray  # (C,) int64
    heights: np.ndarray  # (C,) int64
    params: list[np.ndarray]  # C arrays, COLMAP pixel convention
    where: Where  # record index -> "line 5" / "record 2 (byte 80)"


@dataclass
class RawImages:
    ids: np.ndarray  # (I,) int64
    quat_wxyz: np.ndarray  # (I,4) cam_from_world
    t: np.ndarray  # (I,3) cam_from_world
    camera_ids: np.ndarray  # (I,) int64
    names: list[str]
    num_points2D: np.ndarray  # (I,) int64
    xy: np.ndarray  # (K,2) all images' points2D, concatenated, COLMAP pixel convention
    point3D_ids: np.ndarray  # (K,) int64, -1 = none
    where: Where


@dataclass
class RawPoints:
    ids: np.ndarray  # (P,) int64
    xyz: np.ndarray  # (P,3)
    rgb: np.ndarray  # (P,3) uint8
    errors: np.ndarray  # (P,)
    track_lengths: np.ndarray  # (P,) int64
    track: np.ndarray  # (M,2) int64 (image_id, point2D_idx), all tracks concatenated
    where: Where


@dataclass
class RawRigs:
    ids: np.ndarray  # (R,) int64
    # per rig: list of (sensor_type, sensor_id, sensor_from_rig) with the reference sensor first
    # (its pose is the identity, stored as None) and None for an unknown non-reference pose;
    # a known pose is (quat_wxyz (4,), t (3,)).
    sensors: list[list[tuple[int, int, tuple[np.ndarray, np.ndarray] | None]]]
    where: Where


@dataclass
class RawFrames:
    ids: np.ndarray  # (F,) int64
    rig_ids: np.ndarray  # (F,) int64
    quat_wxyz: np.ndarray  # (F,4) rig_from_world
    t: np.ndarray  # (F,3) rig_from_world
    data_ids: list[np.ndarray]  # per frame (n,3) int64: (sensor_type, sensor_id, data_id)
    where: Where


@dataclass
class RawModel:
    cameras: RawCameras
    images: RawImages
    points: RawPoints
    rigs: RawRigs | None = None
    frames: RawFrames | None = None
    files: dict[str, str] = field(default_factory=dict)  # "cameras" -> path, for messages
