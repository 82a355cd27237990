"""The project folder that the SfM stages share (COLMAP's database and ``sparse/``, as plain files).

Layout of ``PROJECT/``::

    cache/features/, cache/matches/   features and raw matches keyed by content and options
                                      (:class:`geomvision.features.cache.ArrayCache`): an interrupted
                                      stage resumes from them, a rerun with other options adds entries
    features.json      written by ``extract`` (or ``import-features``): the images (name, path, size,
                       feature cache key), the skipped files, where the features came from
    imported_matches.npz  matches imported from outside (``import-features --matches``), optional
    verified.npz       written by ``match``: the pairs, their two-view geometries, the intrinsics
                       they were verified with, and the digest of the features matched (names,
                       content keys, sizes: features extracted anew make ``map`` refuse stale
                       pairs; the same features extracted again do not)
    sparse/N, points.ply, report.json ...   written by ``map`` (the layout of ``geomvision sfm``)

Every file is written atomically (:mod:`geomvision._atomic`): a killed stage leaves the previous
file or the complete new one. Readers raise ``FileNotFoundError`` naming the stage to run first.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._atomic import atomic_write, atomic_write_text
from ..features.cache import ArrayCache
from ..geometry.camera import Camera
from ..geometry.rigid import Rigid3
from .verification import TwoViewGeometry

FEATURES_JSON = "features.json"
VERIFIED_NPZ = "verified.npz"
IMPORTED_MATCHES_NPZ = "imported_matches.npz"
CACHE = "cache"
FORMAT_VERSION = 1
STAGE_FILES = (FEATURES_JSON, VERIFIED_NPZ, IMPORTED_MATCHES_NPZ)  # what the stages record (besides cache/)

__all__ = ["FeatureIndex", "VerifiedPairs", "cache_dir", "read_feature_index", "read_imported_matches",
           "read_verified", "write_feature_index", "write_imported_matches", "write_verified"]


def cache_dir(project: str | os.PathLike) -> Path:
    """The content-keyed cache of a project (features and raw matches)."""
    return Path(project) / CACHE


def _require(path: Path, stage: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `geomvision {stage}` on {path.parent} first")
    return path


@dataclass
class FeatureIndex:
    """What the extract stage wrote: per image (in order) its name, path, (width, height) and
    feature cache key; files skipped with the reason; ``source`` ("sift" or "imported:<file>");
    ``has_descriptors`` False when imported keypoints came without descriptors."""

    image_dir: str
    names: list[str]
    paths: list[str]
    sizes: list[tuple[int, int]]
    keys: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    source: str = "sift"
    has_descriptors: bool = True
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        d = {"version": FORMAT_VERSION, **self.__dict__, "sizes": [list(s) for s in self.sizes]}
        return json.dumps(d, indent=1)

    def digest(self) -> str:
        """Identifies the features themselves (names, content keys, sizes, source), not how long
        they took: re-extracting the same features keeps it, so their verified pairs stay valid."""
        what = [self.names, self.keys, [list(s) for s in self.sizes], self.source, self.has_descriptors]
        return hashlib.sha256(json.dumps(what).encode()).hexdigest()


def write_feature_index(index: FeatureIndex, project: str | os.PathLike) -> str:
    """Write ``PROJECT/features.json``; returns its digest (what ``verified.npz`` records)."""
    Path(project).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(project) / FEATURES_JSON, index.to_json())
    return index.digest()


def read_feature_index(project: str | os.PathLike) -> tuple[FeatureIndex, str]:
    """``PROJECT/features.json`` and its digest; ``FileNotFoundError`` when no stage wrote it."""
    path = _require(Path(project) / FEATURES_JSON, "extract IMAGES -o")
    text = path.read_text(encoding="utf-8")
    d = json.loads(text)
    if d.pop("version", None) != FORMAT_VERSION:
        raise ValueError(f"{path}: unknown format version; rerun `geomvision extract`")
    d["sizes"] = [tuple(int(v) for v in s) for s in d["sizes"]]
    index = FeatureIndex(**d)
    return index, index.digest()


def feature_cache(project: str | os.PathLike) -> ArrayCache:
    """The project's feature cache (entries keyed by image content and options, or by import)."""
    return ArrayCache(cache_dir(project), "features")


@dataclass
class VerifiedPairs:
    """What the match stage found, everything the map stage needs besides the features.

    names : the images (the features' order); geometries: (i, j) -> TwoViewGeometry, i < j;
    matcher : which matcher chose the pairs; retrieved : pairs proposed by retrieval with their
    similarity; cameras, img_cam (I,), camera_known (C,), sources : the intrinsics the pairs were
    verified with (after self-calibration) and where each camera's came from;
    self_calibration, K_check : what was found about them; features_digest : the digest of the
    ``features.json`` matched (None in memory); timings : seconds per step; matcher_reason : why
    that matcher (``PairSelection.reason``); gps : the images' GPS positions when pair selection
    read them (``PairSelection.gps``).
    """

    names: list[str]
    geometries: dict[tuple[int, int], TwoViewGeometry]
    matcher: str
    retrieved: dict[tuple[int, int], float]
    cameras: list[Camera]
    img_cam: np.ndarray
    camera_known: np.ndarray
    sources: list[str]
    self_calibration: dict = field(default_factory=dict)
    K_check: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    features_digest: str | None = None
    matcher_reason: str = ""
    gps: dict = field(default_factory=dict)


_SCALARS = ("num_matches", "num_h_inliers", "tri_angle_deg", "rotation_focal_px", "explained_by_shift")


def write_verified(verified: VerifiedPairs, project: str | os.PathLike) -> None:
    """Write ``PROJECT/verified.npz`` (arrays of every pair's geometry plus a JSON header)."""
    keys = sorted(verified.geometries)
    gs = [verified.geometries[k] for k in keys]
    P = len(gs)
    nan33 = np.full((3, 3), np.nan)
    counts = np.array([g.num_inliers for g in gs], np.int64)
    arrays = {
        "pairs": np.array(keys, np.int64).reshape(P, 2),
        "inlier_ptr": np.r_[0, np.cumsum(counts)].astype(np.int64),
        "inlier_matches": (np.concatenate([g.inlier_matches for g in gs]) if P else np.zeros((0, 2))).astype(np.int64),
        "has_pose": np.array([g.cam2_from_cam1 is not None for g in gs], bool),
        "R": np.array([g.cam2_from_cam1.R if g.cam2_from_cam1 is not None else np.eye(3) for g in gs]).reshape(P, 3, 3),
        "t": np.array([g.cam2_from_cam1.t if g.cam2_from_cam1 is not None else np.zeros(3) for g in gs]).reshape(P, 3),
        "F": np.array([nan33 if g.F is None else g.F for g in gs]).reshape(P, 3, 3),
        "H": np.array([nan33 if g.H is None else g.H for g in gs]).reshape(P, 3, 3),
        "config": np.array([g.config for g in gs], dtype="U16"),
        "message": np.array([g.message for g in gs], dtype=str),
        **{name: np.array([getattr(g, name) for g in gs]) for name in _SCALARS},
    }
    meta = {
        "version": FORMAT_VERSION, "names": verified.names, "matcher": verified.matcher,
        "retrieved": [[i, j, s] for (i, j), s in sorted(verified.retrieved.items())],
        "cameras": [c.to_dict() for c in verified.cameras], "img_cam": np.asarray(verified.img_cam).tolist(),
        "camera_known": np.asarray(verified.camera_known).tolist(), "sources": list(verified.sources),
        "self_calibration": {str(k): v for k, v in verified.self_calibration.items()},
        "K_check": {str(k): v for k, v in verified.K_check.items()},
        "timings": verified.timings, "features_digest": verified.features_digest,
        "matcher_reason": verified.matcher_reason, "gps": verified.gps,
    }
    arrays["__meta__"] = np.array(json.dumps(meta))
    Path(project).mkdir(parents=True, exist_ok=True)
    with atomic_write(Path(project) / VERIFIED_NPZ, "wb") as f:
        np.savez(f, **arrays)


def read_verified(project: str | os.PathLike) -> VerifiedPairs:
    """``PROJECT/verified.npz`` back (exactly the values written)."""
    path = _require(Path(project) / VERIFIED_NPZ, "match")
    with np.load(path, allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    meta = json.loads(str(a.pop("__meta__")))
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unknown format version; rerun `geomvision match`")
    geoms = {}
    ptr = a["inlier_ptr"]
    for k, (i, j) in enumerate(a["pairs"]):
        pose = Rigid3(a["R"][k], a["t"][k], check=False) if a["has_pose"][k] else None
        F, H = a["F"][k], a["H"][k]
        geoms[(int(i), int(j))] = TwoViewGeometry(
            str(a["config"][k]), a["inlier_matches"][ptr[k]:ptr[k + 1]].copy(), int(a["num_matches"][k]), pose,
            None if np.isnan(F).all() else F.copy(), None if np.isnan(H).all() else H.copy(),
            int(a["num_h_inliers"][k]), float(a["tri_angle_deg"][k]), str(a["message"][k]),
            float(a["rotation_focal_px"][k]), bool(a["explained_by_shift"][k]))
    return VerifiedPairs(
        meta["names"], geoms, meta["matcher"], {(int(i), int(j)): float(s) for i, j, s in meta["retrieved"]},
        [Camera.from_dict(c) for c in meta["cameras"]], np.array(meta["img_cam"], np.int64).reshape(-1),
        np.array(meta["camera_known"], bool).reshape(-1), list(meta["sources"]),
        {int(k): v for k, v in meta["self_calibration"].items()}, {int(k): v for k, v in meta["K_check"].items()},
        meta["timings"], meta["features_digest"], meta.get("matcher_reason", ""), meta.get("gps", {}))


def check_fresh(verified: VerifiedPairs, features_digest: str | None, names: list[str]) -> None:
    """Raise ``ValueError`` when verified pairs do not belong to the features (re-extracted since
    they were matched, or other images): the fix is to rerun ``geomvision match``."""
    if verified.features_digest is not None and features_digest is not None \
            and verified.features_digest != features_digest:
        raise ValueError("the features changed since they were matched: rerun `geomvision match PROJECT` first")
    if list(names) != list(verified.names):
        raise ValueError("the verified pairs belong to other images than the features: rerun `geomvision match`")


def write_imported_matches(matches: dict[tuple[str, str], np.ndarray], project: str | os.PathLike) -> None:
    """Write ``PROJECT/imported_matches.npz``: {(name1, name2): (K,2) keypoint indices}."""
    keys = list(matches)
    arrays = {
        "names": np.array([n for k in keys for n in k], dtype=str).reshape(len(keys), 2),
        "ptr": np.r_[0, np.cumsum([len(matches[k]) for k in keys])].astype(np.int64),
        "matches": (np.concatenate([matches[k] for k in keys]) if keys else np.zeros((0, 2))).astype(np.int64),
    }
    Path(project).mkdir(parents=True, exist_ok=True)
    with atomic_write(Path(project) / IMPORTED_MATCHES_NPZ, "wb") as f:
        np.savez(f, **arrays)


def read_imported_matches(project: str | os.PathLike) -> dict[tuple[str, str], np.ndarray] | None:
    """The imported matches of a project, or None when it has none."""
    path = Path(project) / IMPORTED_MATCHES_NPZ
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        names, ptr, m = z["names"], z["ptr"], z["matches"]
    return {(str(a), str(b)): m[ptr[k]:ptr[k + 1]] for k, (a, b) in enumerate(names)}
