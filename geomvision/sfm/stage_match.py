"""Stage 2 of SfM, ``geomvision match``: which pairs, their matches and their two-view geometry
(COLMAP's ``*_matcher`` with its geometric verification).

:func:`match_and_verify` takes the features (in memory, or recorded in a project folder), sets up
the cameras (given K, EXIF focal length, or a prior), chooses the pairs (``select_pairs``: all, a
window over a sequence with VLAD loop candidates beyond it, the nearest images by GPS position, the
most similar images, a pairs file, or the pairs of imported matches), matches them (raw matches cached by descriptor content, so
another matcher reuses the pairs it shares), verifies each pair (E / F / H, ``verify_pair``;
with ``guided_matching`` its descriptors are matched again under the verified geometry),
self-calibrates the focal length from F when nothing better is known and checks a given K against
the images. The result (:class:`VerifiedPairs`) is what the map stage needs; with a project it is
written to ``PROJECT/verified.npz``.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._progress import Progress
from ..features import Features, exhaustive_pairs, match_all, sequential_pairs, union_pairs
from ..features.batch import ExtractionResult, MatchResults, StreamedMatchResults
from ..features.distributed import cluster_client, workers_see
from ..features.pairs import is_numbered_sequence, spatial_pairs
from ..features.retrieval import top_similar_pairs, train_vocabulary, vlad_descriptors
from ..geometry.camera import Camera
from ..imageio import exif_focal_px
from ..robust import estimate_fundamental
from ..solvers import shared_focal_from_fundamental
from .gps import AUTO_SPATIAL_MIN_FRACTION, ImagePositions, read_image_positions
from .intrinsics import focal_from_fundamental_profile, guess_intrinsics, parse_K, radial_distortion
from .options import SfmOptions, sfm_options
from .planar import planar_scene_pairs
from .project import VerifiedPairs, cache_dir, read_imported_matches, write_verified
from .report import ROTATION_ONLY, SfmWarning
from .stage_extract import load_features
from .verification import TwoViewGeometry, verify_pair

__all__ = ["PairSelection", "match_and_verify", "read_pairs_file", "select_pairs"]

K_DISAGREEMENT_FACTOR = 2.0  # warn when the fundamental matrices imply a focal length this far from K's
K_CHECK_MAX_PAIRS = 12  # pairs (most matches first) whose fundamental matrix checks a given K
K_CHECK_MIN_PAIRS = 3  # pairs that must determine the focal length before K is judged
DISTORTION_MAX_PAIRS = 12  # pairs (most inliers first) whose matches estimate a camera's initial distortion
DISTORTION_MIN_PAIRS = 3  # ... of which at least this many are needed
DISTORTION_MIN_INLIERS = 50  # ... each with at least this many inliers


@dataclass
class PairSelection:
    """The image pairs to match and how they were chosen.

    pairs : (P,2) int64 image indices, i < j, rows unique and sorted.
    matcher : ``exhaustive``, ``sequential``, ``sequential+retrieval``, ``retrieval``, ``spatial``
        or ``spatial+retrieval``.
    retrieved : the pairs VLAD retrieval proposed (loop candidates beyond the sequential window or
        the spatial neighbours, or every pair of the retrieval matcher), each with the cosine of the
        two VLAD vectors.
    reason : why this matcher (``auto``: what it saw; else "given by --matcher"), with what the GPS
        positions allowed when they were read.
    gps : :meth:`ImagePositions.summary` of the images' GPS positions when they were read (matcher
        spatial, or auto above ``exhaustive_max_images``), plus ``num_spatial_pairs``; else empty.
    """

    pairs: np.ndarray
    matcher: str
    retrieved: dict[tuple[int, int], float] = field(default_factory=dict)
    reason: str = ""
    gps: dict = field(default_factory=dict)


def select_pairs(names: list[str], features: list[Features], options: SfmOptions, *,
                 paths: Mapping[str, str | os.PathLike] | None = None) -> PairSelection:
    """Which pairs of the images ``names`` (with their ``features``, same order) to match.

    paths : {name: image file}, where the EXIF GPS positions are read (matcher spatial, and auto
        above ``exhaustive_max_images``); None: no image has a position.

    ``auto`` above ``exhaustive_max_images``: when at least ``AUTO_SPATIAL_MIN_FRACTION`` of the
    images have a GPS position (at two or more places), the spatial matcher (a drone survey's
    numbered frames too: its flight lines come back side by side, which a window over the frame
    numbers misses); else a window only makes sense over the frames of a
    sequence (names differing by a running number, :func:`is_numbered_sequence`); any other set
    gets each image's ``retrieval_num_neighbors`` most similar images. The spatial matcher pairs
    each image with its ``spatial_num_neighbors`` nearest by position (:func:`spatial_pairs`,
    east-north metres, or east-north-up without ``spatial_ignore_altitude``) and adds its
    ``spatial_retrieval_neighbors`` most similar images beyond those: a GPS position off by tens
    of metres (a phone in a street canyon) or a wrong altitude then costs the pairs it hides only
    when retrieval misses them too; images without a position get ``retrieval_num_neighbors``
    most similar images. The sequential matcher adds
    each image's ``loop_candidates`` most similar images beyond its window (``loop_detection``);
    a window that spans all images leaves nothing beyond it, and no retrieval runs. ``pairs-file``
    (also ``auto`` with ``options.pairs`` given) reads the pairs from ``options.pairs``
    (:func:`read_pairs_file`). ``imported`` pairs come with their matches: see :func:`match_and_verify`.
    """
    if len(names) != len(features):
        raise ValueError(f"{len(names)} names but {len(features)} features")
    n = len(names)
    matcher = options.matcher
    limit = f"--exhaustive-max-images {options.exhaustive_max_images}"
    if matcher == "pairs-file" or (matcher == "auto" and options.pairs is not None):
        return PairSelection(read_pairs_file(options.pairs, names), "pairs-file",
                             reason="given by --matcher" if matcher == "pairs-file" else "auto: --pairs given")
    if matcher == "imported":
        raise ValueError("matcher imported: the project holds no imported matches; run `geomvision import-features "
                         "PROJECT --matches FILE` first, or choose another --matcher")
    positions, gps, reason = None, {}, "given by --matcher"
    if matcher == "spatial" or (matcher == "auto" and n > options.exhaustive_max_images):
        positions = read_image_positions(names, paths or {})
        gps = positions.summary()
    if matcher == "spatial" and positions.num_positioned < 2:
        raise ValueError(f"matcher spatial: {positions.num_positioned} of the {n} images have an EXIF GPS position "
                         f"(first without: {next(iter(positions.missing.items()), ('', ''))[1]}); spatial pairs need "
                         "two or more: choose --matcher retrieval (or auto)")
    if matcher == "auto":
        if n <= options.exhaustive_max_images:
            matcher, reason = "exhaustive", f"auto: {n} images <= {limit}"
        else:
            m = positions.num_positioned
            have = f"{m} of {n} images have a GPS position"
            spread = m >= 2 and len(np.unique(positions.X_enu[positions.has_position].round(2), axis=0)) >= 2
            if m >= AUTO_SPATIAL_MIN_FRACTION * n and spread:
                matcher, reason = "spatial", f"auto: {n} images > {limit}, {have}"
            else:
                matcher = "sequential" if is_numbered_sequence(names) else "retrieval"
                reason = f"auto: {n} images > {limit}, " + (
                    "the names number the frames of a sequence" if matcher == "sequential"
                    else "the names are not a numbered sequence")
                if m:
                    reason += (f"; {have} (spatial needs {AUTO_SPATIAL_MIN_FRACTION:.0%})" if spread
                               else f"; {have}, all at one place")
    if matcher == "exhaustive":
        return PairSelection(exhaustive_pairs(n), matcher, reason=reason)
    if matcher == "spatial":
        return _spatial_selection(names, features, options, positions, reason, gps)
    if matcher == "sequential":
        window = sequential_pairs(names, window=options.sequential_window)
        if not options.loop_detection or len(window) == n * (n - 1) // 2:
            return PairSelection(window, matcher, reason=reason, gps=gps)
        matcher, k, exclude = "sequential+retrieval", options.loop_candidates, window
        if reason.startswith("auto"):
            reason += "; loop candidates by retrieval"
    else:
        window, k, exclude = np.zeros((0, 2), np.int64), options.retrieval_num_neighbors, None
    if not any(len(f) for f in features):  # no descriptor anywhere: nothing to retrieve with
        return PairSelection(window, matcher, reason=reason, gps=gps)
    found, retrieved = _retrieve(features, options, k, exclude)
    return PairSelection(union_pairs(window, found), matcher, retrieved, reason, gps)


def _retrieve(features: list[Features], options: SfmOptions, k: int, exclude: np.ndarray | None,
              k_unplaced: int = 0, unplaced: np.ndarray | None = None):
    """VLAD retrieval: each image's ``k`` most similar images (not in ``exclude``), plus the
    ``k_unplaced`` most similar of each image in the index array ``unplaced``. Returns the (P,2)
    pairs and {pair: cosine}."""
    words = train_vocabulary(features, rng=np.random.default_rng([options.seed, 1]))
    g = vlad_descriptors(features, words)
    found = top_similar_pairs(g, k, exclude=exclude) if k > 0 else np.zeros((0, 2), np.int64)
    if k_unplaced > 0 and unplaced is not None and len(unplaced):
        more = top_similar_pairs(g, k_unplaced)
        found = union_pairs(found, more[np.isin(more, unplaced).any(axis=1)])
    similarity = np.einsum("ij,ij->i", g[found[:, 0]], g[found[:, 1]])
    return found, {(int(i), int(j)): float(s) for (i, j), s in zip(found, similarity)}


def _spatial_selection(names: list[str], features: list[Features], options: SfmOptions, positions: ImagePositions,
                       reason: str, gps: dict) -> PairSelection:
    """The spatial matcher's pairs (see :func:`select_pairs`); says how many images lack a
    position (also as an ``SfmWarning``) and that retrieval pairs them."""
    have = positions.has_position
    use_altitude = positions.has_altitude and not options.spatial_ignore_altitude
    X = positions.X_enu[:, :3 if use_altitude else 2]
    near = spatial_pairs(X, options.spatial_num_neighbors, options.spatial_max_distance)
    gps = {**gps, "distance": "east-north-up" if use_altitude else "east-north", "num_spatial_pairs": len(near)}
    unplaced = np.flatnonzero(~have)
    if len(unplaced):
        first = ", ".join(names[k] for k in unplaced[:3]) + (" ..." if len(unplaced) > 3 else "")
        reason += (f"; {len(unplaced)} image(s) without a GPS position ({first}) paired by retrieval "
                   f"({options.retrieval_num_neighbors} most similar each)")
        warnings.warn(f"matcher spatial: {len(unplaced)} of {len(names)} images have no GPS position ({first}; see "
                      "report.json 'gps'): they are matched with their most similar images instead",
                      SfmWarning, stacklevel=3)
    k = options.spatial_retrieval_neighbors
    if (k == 0 and not len(unplaced)) or not any(len(f) for f in features):
        return PairSelection(near, "spatial", reason=reason, gps=gps)
    found, retrieved = _retrieve(features, options, k, near, options.retrieval_num_neighbors, unplaced)
    return PairSelection(union_pairs(near, found), "spatial+retrieval", retrieved, reason, gps)


def _initial_cameras(names, paths, image_sizes,
                     options: SfmOptions) -> tuple[list[Camera], np.ndarray, np.ndarray, list[str]]:
    """Cameras (when shared: one per distinct image size and EXIF focal length, so that the
    zoom settings of one lens get their own cameras; else one per image), img_cam, whether each
    camera's intrinsics are known, and the source of each camera's values."""
    co = options.camera
    K = parse_K(co.K) if co.K is not None else None
    model = co.camera_model or ("PINHOLE" if K is not None else "SIMPLE_RADIAL")
    sizes = np.array([image_sizes[n] for n in names], dtype=np.int64).reshape(-1, 2)
    cameras, known, sources, img_cam = [], [], [], np.zeros(len(names), dtype=np.int64)
    by_key: dict[tuple, int] = {}
    for k, n in enumerate(names):
        at_hand = str(paths[n]) and Path(paths[n]).is_file()  # imported features may come without images
        exif = None if K is not None or not at_hand else exif_focal_px(paths[n])
        key = (int(sizes[k, 0]), int(sizes[k, 1]), None if exif is None else round(float(exif), 1))
        if co.single_camera and key in by_key:
            img_cam[k] = by_key[key]
            continue
        guess = guess_intrinsics(key[0], key[1], model, K=K, exif_focal_px=exif)
        img_cam[k] = len(cameras)
        by_key[key] = len(cameras)
        cameras.append(guess.camera)
        known.append(guess.known)
        sources.append(guess.source)
    return cameras, img_cam, np.array(known), sources


def _self_calibrate(cameras, img_cam, geoms: dict[tuple[int, int], TwoViewGeometry], sources,
                    planar: bool = False) -> dict:
    """Focal lengths of prior-only cameras from the fundamental matrices of their pairs (the
    median of the shared-focal estimates of pairs within one camera). Returns what was done.
    Refused for a planar scene (``planar``): a plane leaves F, and the focal length it would
    give, undetermined (the views of the plane give it instead: ``_calibrate_from_plane``)."""
    info = {}
    for c, cam in enumerate(cameras):
        if sources[c] != "prior":
            continue
        if planar:
            info[c] = {"focal_px": cam.mean_focal_length, "num_pairs": 0, "prior_px": cam.mean_focal_length,
                       "note": "refused: the scene is a plane, which leaves the fundamental matrix undetermined"}
            continue
        est = []
        for (i, j), g in geoms.items():
            if g.F is None or g.config != "uncalibrated" or img_cam[i] != c or img_cam[j] != c:
                continue
            f = shared_focal_from_fundamental(g.F, cam.principal_point)
            if f is not None and 0.2 * cam.mean_focal_length < f < 5.0 * cam.mean_focal_length:
                est.append(f)
        if len(est) >= 3:
            f = float(np.median(est))
            names = cam.param_names
            p = cam.params.copy()
            for k, n in enumerate(names):
                if n in ("f", "fx", "fy"):
                    p[k] = f
            cameras[c] = cam.with_params(p)
            sources[c] = "fundamental"
            info[c] = {"focal_px": f, "num_pairs": len(est), "prior_px": cam.mean_focal_length}
        else:
            info[c] = {"focal_px": cam.mean_focal_length, "num_pairs": len(est), "prior_px": cam.mean_focal_length,
                       "note": "too few uncalibrated pairs for self-calibration; kept the prior"}
    return info


def _initial_distortion(cameras, img_cam, geoms: dict[tuple[int, int], TwoViewGeometry], sources, keypoints,
                        raw_matches, max_error_px: float, info: dict, planar: bool = False) -> None:
    """Initial radial distortion of the cameras that are not given (sources "prior", "exif",
    "fundamental") and whose model has one (SIMPLE_RADIAL's k, k1 of RADIAL and OPENCV): the value
    under which fundamental matrices best fit up to ``DISTORTION_MAX_PAIRS`` of their verified
    pairs that are neither a plane nor a rotation (most inliers first;
    :func:`intrinsics.radial_distortion` on their verified inliers and ``raw_matches(i, j)``).
    Bundle adjustment refines it; a start at 0 under strong distortion can leave the growing model
    in a wrong basin (RESULTS: self-calibration under strong radial distortion). Needs
    ``DISTORTION_MIN_PAIRS`` pairs; not for a planar scene (F undetermined); kept only when
    the pairs agree on it (``RadialDistortion.determined``: a sign test), else k stays 0. Adds
    what was done to ``info`` (per camera)."""
    for c, cam in enumerate(cameras):
        names = cam.param_names
        k_name = "k" if "k" in names else "k1" if "k1" in names and cam.model != "OPENCV_FISHEYE" else None
        if k_name is None or sources[c] not in ("prior", "exif", "fundamental"):
            continue
        entry = info.setdefault(c, {})
        if planar:
            entry["distortion_note"] = "not estimated: the scene is a plane, which leaves F undetermined"
            continue
        pairs = sorted(((g.num_inliers, i, j) for (i, j), g in geoms.items()
                        if g.verified and g.config in ("calibrated", "uncalibrated") and img_cam[i] == c
                        and img_cam[j] == c and g.num_inliers >= DISTORTION_MIN_INLIERS), reverse=True)
        pairs = pairs[:DISTORTION_MAX_PAIRS]
        if len(pairs) < DISTORTION_MIN_PAIRS:
            entry["distortion_note"] = (f"not estimated: {len(pairs)} pairs that are not a plane nor a rotation "
                                        f"(need {DISTORTION_MIN_PAIRS})")
            continue
        data = []
        for _, i, j in pairs:
            inl, m = geoms[(i, j)].inlier_matches, raw_matches(i, j)
            data.append((keypoints[i][inl[:, 0]], keypoints[j][inl[:, 1]], keypoints[i][m[:, 0]],
                         keypoints[j][m[:, 1]]))
        found = radial_distortion(data, cam, k_name, max_error_px)
        entry.update(distortion_pairs=len(pairs), distortion_pairs_preferring=found.pairs_preferring)
        if not found.determined:
            entry["distortion_note"] = (
                f"not estimated: {found.pairs_preferring} of {len(pairs)} pairs fit {k_name} = {found.best_k:.3g} better "
                "than no distortion, too few to tell a lens from matches on repeated structure")
            continue
        p = cam.params.copy()
        p[names.index(k_name)] = found.k
        cameras[c] = cam.with_params(p)
        entry["initial_k1"] = round(found.k, 5)


def _check_known_K(cameras, img_cam, sources, names, ex, matches, options: SfmOptions) -> dict:
    """Compare each given K (source "K") with the focal length that the fundamental matrices of
    its images imply, independently of K: F is estimated from the raw matches of up to
    ``K_CHECK_MAX_PAIRS`` pairs (most matches first) and each gives a focal length at K's
    principal point (:func:`focal_from_fundamental_profile`; pairs whose motion leaves it
    undetermined, as on an orbit around an object, do not count). With ``K_CHECK_MIN_PAIRS`` or
    more, their median is compared with K's focal length; a factor above
    ``K_DISAGREEMENT_FACTOR`` either way warns. Returns {camera index: what was found}."""
    vo = options.verification
    index = {n: k for k, n in enumerate(names)}
    info = {}
    for c, cam in enumerate(cameras):
        if sources[c] != "K":
            continue
        pairs = [(a, b) for a, b in matches if img_cam[index[a]] == c and img_cam[index[b]] == c]
        pairs.sort(key=lambda p: -matches.count(p))
        estimates = []
        tried = 0
        for a, b in pairs[:K_CHECK_MAX_PAIRS]:
            m = matches[(a, b)]
            if len(m) < vo.min_num_inliers:
                continue
            tried += 1
            res = estimate_fundamental(ex.features[a].keypoints[m[:, 0]], ex.features[b].keypoints[m[:, 1]],
                                       max_error=vo.max_error_px, confidence=vo.confidence,
                                       max_iterations=vo.max_iterations,
                                       rng=np.random.default_rng([options.seed, 2, index[a], index[b]]))
            if res.model is None or int(res.inliers.sum()) < vo.min_num_inliers:
                continue  # a plane or a rotation: F is not determined
            f, determined = focal_from_fundamental_profile(res.model, cam.principal_point, max(cam.width, cam.height))
            if determined:
                estimates.append(f)
        f_K = cam.mean_focal_length
        entry = {"K_focal_px": round(f_K, 3), "num_pairs_tried": tried, "num_pairs": len(estimates)}
        if len(estimates) < K_CHECK_MIN_PAIRS:
            entry["note"] = ("not checked: fewer than 3 pairs determine the focal length (a rotation, a plane, or "
                             "optical axes meeting at one point)")
        else:
            f = float(np.median(estimates))
            ratio = f / f_K
            agrees = 1.0 / K_DISAGREEMENT_FACTOR <= ratio <= K_DISAGREEMENT_FACTOR
            entry.update(fundamental_focal_px=round(f, 1), ratio=round(ratio, 3), agrees=bool(agrees))
            if not agrees:
                entry["warning"] = (
                    f"--K disagrees with the images: its focal length is {f_K:.1f} px, but the fundamental matrices "
                    f"of {len(estimates)} pairs imply about {f:.0f} px ({ratio:.2g} x); check that K belongs to "
                    f"this camera and is in pixels of these {cam.width} x {cam.height} images (a K calibrated at "
                    "another resolution must be scaled)")
        info[c] = entry
    return info


def _rotation_only(geoms: dict[tuple[int, int], TwoViewGeometry]) -> str | None:
    """The reason no model can be built when the camera only turned about its centre, else None:
    every verified pair is panoramic, or (uncalibrated) a plain shift of the image that a pan
    with little rotation gives as well (``explained_by_shift``), and at least one is panoramic."""
    verified = [g for g in geoms.values() if g.verified]
    panoramic = [g for g in verified if g.config == "panoramic"]
    if not panoramic or any(g.config != "panoramic" and not g.explained_by_shift for g in verified):
        return None
    if len(panoramic) == len(verified):
        which = f"all {len(verified)} verified pairs"
    else:
        which = f"{len(panoramic)} of the {len(verified)} verified pairs, and a shift of the image those of the others"
    focals = [g.rotation_focal_px for g in panoramic if np.isfinite(g.rotation_focal_px)]
    focal = f"; focal length about {np.median(focals):.0f} px" if focals else ""
    return (f"{ROTATION_ONLY} (a rotation about one camera centre explains the matches of {which}{focal}; "
            "3-D points need the camera to move between views)")



def read_pairs_file(path: str | os.PathLike, names: list[str]) -> np.ndarray:
    """Image pairs from a text file, one ``name1 name2`` per line (hloc's and COLMAP's pairs
    files; blank lines and ``#`` comments skipped) -> (P,2) int64 indices into ``names``, i < j,
    unique and sorted. Raises ``ValueError`` naming the line of an unknown image or a bad line."""
    index = {n: k for k, n in enumerate(names)}
    rows = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}:{lineno}: expected two image names, got {line!r}")
        missing = [p for p in parts if p not in index]
        if missing:
            raise ValueError(f"{path}:{lineno}: no image named {missing[0]!r} among the project's {len(names)} "
                             f"images (names are relative to the image folder, e.g. {names[0]!r})")
        rows.append((index[parts[0]], index[parts[1]]))
    pairs = union_pairs(np.array(rows, np.int64).reshape(-1, 2))
    if len(pairs) == 0:
        raise ValueError(f"{path} lists no pair of two different images")
    return pairs


def _warn_prior(cameras: list[Camera], sources: list[str]) -> None:
    for c, src in enumerate(sources):
        if src == "prior":
            warnings.warn(
                f"no calibration and no EXIF focal length for camera {c + 1}: starting from the prior "
                f"f = 1.2 * max(width, height) = {cameras[c].mean_focal_length:.1f} px, self-calibrated from the "
                "fundamental matrices and refined by bundle adjustment (give --K for best accuracy)",
                SfmWarning, stacklevel=3)


def _imported_selection(imported: dict[tuple[str, str], np.ndarray], names: list[str]):
    """Pairs and raw matches from imported matches: ({(a, b): (K,2)} with a before b in ``names``)."""
    index = {n: k for k, n in enumerate(names)}
    unknown = sorted({n for pair in imported for n in pair if n not in index})
    if unknown:
        raise ValueError(f"imported matches name images without features: {unknown[:5]}; import their features too")
    matches = MatchResults()
    for (a, b), m in imported.items():
        if index[a] > index[b]:
            a, b, m = b, a, m[:, ::-1]
        matches[(a, b)] = np.ascontiguousarray(m, dtype=np.int64)
    pairs = np.array(sorted((index[a], index[b]) for a, b in matches), np.int64).reshape(-1, 2)
    return PairSelection(pairs, "imported"), matches


PAIRS_PER_VERIFICATION_TASK = 32


class _ReadWhenAsked:
    """``[k]`` -> ``get(k)`` for k < n: per image or pair, what streamed features and matches
    keep in the cache, read when a verification asks (not all held at once)."""

    def __init__(self, get, n: int) -> None:
        self.get, self.n = get, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int):
        if not 0 <= k < self.n:
            raise IndexError(k)
        return self.get(k)

    def __iter__(self):
        return (self.get(k) for k in range(self.n))


def _verify_chunk(keypoints, pair_matches, jobs, options, seed: int, progress=None, descriptors=None,
                  match_options=None) -> list[TwoViewGeometry]:
    """``verify_pair`` of each job (i, j, camera_i, camera_j, calibrated) with its matches;
    ``keypoints`` (and ``descriptors``, for guided matching, or None) indexable by image (a list,
    or a dict of the chunk's images on a worker)."""
    out = []
    for (i, j, cam_i, cam_j, calibrated), m in zip(jobs, pair_matches):
        m = m() if callable(m) else m  # a cluster task may read the pair's matches from the cache itself
        desc = None if descriptors is None else (descriptors[i], descriptors[j])
        out.append(verify_pair(keypoints[i], keypoints[j], m, cam_i, cam_j, calibrated=calibrated, options=options,
                               rng=np.random.default_rng([seed, 0, i, j]), descriptors=desc,
                               match_options=match_options))
        if progress is not None:
            progress(1)
    return out


def _verify_on_cluster(client, keypoints, pair_matches, jobs, options: SfmOptions, progress,
                       descriptors=None) -> list[TwoViewGeometry]:
    """:func:`_verify_chunk` as cluster tasks of ``PAIRS_PER_VERIFICATION_TASK`` pairs, each
    image's keypoints (and descriptors, when given for guided matching) sent once; the same
    geometries as locally (the seeds are per pair)."""
    from ..features.distributed import run_tasks

    used = sorted({k for job in jobs for k in job[:2]})
    # a list, not a dict: the data get content-derived keys, never another run's under the same name
    scattered = dict(zip(used, client.scatter([keypoints[k] for k in used])))
    scattered_desc = (None if descriptors is None
                      else dict(zip(used, client.scatter([descriptors[k] for k in used]))))
    chunks = [range(c, min(c + PAIRS_PER_VERIFICATION_TASK, len(jobs))) for c in range(0, len(jobs),
                                                                                     PAIRS_PER_VERIFICATION_TASK)]
    args = []
    for ch in chunks:
        imgs = {k for t in ch for k in jobs[t][:2]}
        # on the worker, keypoints[i] looks the image index up in the dict of the chunk's images
        args.append(({k: scattered[k] for k in imgs}, [pair_matches[t] for t in ch],
                     [jobs[t] for t in ch], options.verification, options.seed, None,
                     None if scattered_desc is None else {k: scattered_desc[k] for k in imgs}, options.matching))
    out: list = [None] * len(jobs)

    def done(c: int, geoms: list[TwoViewGeometry]) -> None:
        for t, g in zip(chunks[c], geoms):
            out[t] = g
        progress(len(geoms))

    run_tasks(client, _verify_chunk, args, done)
    return out


def match_and_verify(project: str | os.PathLike | None = None, options: SfmOptions | None = None, *,
                     features: ExtractionResult | None = None, cache: str | os.PathLike | None = None,
                     progress: bool = True, client=None) -> VerifiedPairs:
    """Choose pairs, match and verify them; the result is what :func:`map_project` needs.

    project : the project folder: its features are read (unless ``features`` is given), its
        imported matches used (``matcher`` auto or imported) and the result written to
        ``PROJECT/verified.npz``. None keeps everything in memory.
    features : the features (``extract_features``'s result); read from ``project`` when None.
    cache : the raw-match cache folder when it is not the project's.
    client : a Dask client to use (else one is opened when ``options.workers`` / ``scheduler`` ask).
    options : ``matcher`` and its fields, ``matching``, ``camera`` (how the intrinsics start),
        ``verification``, ``seed``, ``num_threads``. The same features, options and seed give
        the same pairs. Raises ``ValueError`` for a matcher that needs descriptors the features
        lack (imported keypoints without descriptors) and for a malformed ``--K``.
    """
    options = sfm_options(options)
    if options.camera.K is not None:
        parse_K(options.camera.K)
    if features is None:
        if project is None:
            raise ValueError("match_and_verify needs a project folder or the features")
        features = load_features(project)
    ex = features
    if cache is None and project is not None:
        cache = cache_dir(project)
    names = list(ex.features)
    timings: dict[str, float] = {}
    cameras, img_cam, known, sources = _initial_cameras(names, ex.paths, ex.image_sizes, options)
    _warn_prior(cameras, sources)

    t0 = time.perf_counter()
    imported = read_imported_matches(project) if project is not None else None
    if imported is not None and ex.source.startswith("imported") and options.matcher in ("auto", "imported"):
        selection, matches = _imported_selection(imported, names)
    else:
        if not ex.has_descriptors:
            raise ValueError(f"--matcher {options.matcher}: the features were imported without descriptors, so "
                             "only their imported matches can be used (--matcher imported)")
        selection = select_pairs(names, [ex.features[n] for n in names], options, paths=ex.paths)
        matches = None
    name_pairs = [(names[i], names[j]) for i, j in selection.pairs]
    timings["pair_selection"] = time.perf_counter() - t0
    index = {n: k for k, n in enumerate(names)}
    # (i, j, camera i, camera j, calibrated) of each pair to verify
    jobs = [(index[a], index[b], cameras[img_cam[index[a]]], cameras[img_cam[index[b]]],
             bool(sources[img_cam[index[a]]] in ("K", "exif") and sources[img_cam[index[b]]] in ("K", "exif")))
            for a, b in name_pairs]
    with cluster_client(options.scheduler, options.workers, client) as client:
        t0 = time.perf_counter()
        if matches is None:
            matching = options.matching.for_features(options.features)  # None: grouped for ASIFT
            matches = match_all(name_pairs, ex.features, matching, cache_dir=cache,
                                num_threads=options.num_threads, progress=progress, client=client)
        timings["matching"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        keypoints = [ex.features[n].keypoints for n in names]
        # guided matching needs the descriptors (imported features may have none: then it is skipped)
        descriptors = (_ReadWhenAsked(lambda i: ex.features[names[i]].descriptors, len(names))
                       if options.verification.guided_matching and ex.has_descriptors else None)
        pair_matches = _ReadWhenAsked(lambda k: matches[name_pairs[k]], len(name_pairs))
        with Progress(len(name_pairs), "verification", unit="pair", enabled=progress) as bar:
            if client is None:
                found = _verify_chunk(keypoints, pair_matches, jobs, options.verification, options.seed, bar.update,
                                      descriptors, options.matching)
            else:
                path = matches.stored_path() if isinstance(matches, StreamedMatchResults) else None
                if path is not None and workers_see(client, path):  # the tasks read the matches themselves
                    pair_matches = _ReadWhenAsked(lambda k: matches.reader(name_pairs[k]), len(name_pairs))
                found = _verify_on_cluster(client, keypoints, pair_matches, jobs, options, bar.update, descriptors)
        geoms: dict[tuple[int, int], TwoViewGeometry] = {(job[0], job[1]): g for job, g in zip(jobs, found)}
        timings["verification"] = time.perf_counter() - t0
    planar = planar_scene_pairs(geoms)["planar_scene"]
    self_calibration = _self_calibrate(cameras, img_cam, geoms, sources, planar=planar)
    t0 = time.perf_counter()
    _initial_distortion(cameras, img_cam, geoms, sources, keypoints, lambda i, j: matches[(names[i], names[j])],
                        options.verification.max_error_px, self_calibration, planar=planar)
    timings["distortion_init"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    K_check = _check_known_K(cameras, img_cam, sources, names, ex, matches, options)
    timings["K_check"] = time.perf_counter() - t0
    for entry in K_check.values():
        if "warning" in entry:
            warnings.warn(entry["warning"], SfmWarning, stacklevel=2)
    failure = _rotation_only(geoms)
    if failure is not None:
        warnings.warn(failure, SfmWarning, stacklevel=2)
    verified = VerifiedPairs(names, geoms, selection.matcher, selection.retrieved, cameras, img_cam, known, sources,
                             self_calibration, K_check, timings, ex.digest, selection.reason, selection.gps)
    if project is not None:
        write_verified(verified, project)
    return verified
