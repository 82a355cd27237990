"""``run_sfm``: images in, reconstructions and a report out (library entry point of ``geomvision sfm``).

Stages: features (cached) -> pairs (all, a window over a sequence with VLAD loop candidates beyond it,
or the most similar images: ``select_pairs``) -> matching (cached) -> geometric verification -> intrinsics
(self-calibration of the focal length from F when nothing better is known) -> tracks -> sub-pixel
keypoint refinement (each track's observations aligned to one reference patch) -> incremental
mapping (the batch controller ``incremental.IncrementalController`` over the mapper's verbs). Nothing here writes outside the cache folder; the CLI writes the results
(:mod:`geomvision.cli.sfm_outputs`).

Degenerate input ends with a reason instead of a model: when every verified pair is panoramic
(a rotation about one camera centre explains its matches, with or without a known K; without K,
pairs that a plain shift of the image explains may join them), there is no 3-D structure to
recover; ``run_sfm`` warns, builds no model and says so in ``report["failure"]``
(``ROTATION_ONLY``: use ``geomvision stitch``). A given K is checked
against the image size (``intrinsics.check_K_for_image``) and against the focal length the
fundamental matrices imply (``report["K_check"]``, a warning beyond ``K_DISAGREEMENT_FACTOR``).

A planar scene (most verified pairs planar: ``planar.planar_scene_pairs``) leaves F undetermined:
no self-calibration from F. A camera with no K or EXIF focal length gets its focal length from
the views of the plane (``planar.focal_from_plane``, lens distortion held at 0), or the run ends
with ``PLANE_UNCALIBRATED`` when they do not fix it. The mapper resolves the plane's two-fold
ambiguities (initial pair, registration: :mod:`geomvision.sfm.planar`). Each model that rests on
a plane (``planar.plane_support``) gets a warning; ``report["planar"]`` says what was found.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._progress import Progress
from ..features import Features, exhaustive_pairs, extract_all, match_all, sequential_pairs, union_pairs
from ..features.pairs import is_numbered_sequence, natural_sort_key
from ..features.retrieval import top_similar_pairs, train_vocabulary, vlad_descriptors
from ..features.patch_alignment import refine_track_keypoints
from ..geometry.camera import Camera
from ..imageio import exif_focal_px, read_image
from ..scene.reconstruction import Reconstruction
from ..robust import estimate_fundamental
from ..solvers import shared_focal_from_fundamental
from .intrinsics import focal_from_fundamental_profile, guess_intrinsics, parse_K
from .incremental import IncrementalController
from .mapper import IncrementalMapper
from .planar import PLANE_MAX_DISTANCE_RATIO, camera_with_focal, focal_from_plane, plane_support, planar_scene_pairs
from .options import SfmOptions
from .state import ImageData, MapperState
from .tracks import build_tracks
from .verification import TwoViewGeometry, verify_pair


class SfmWarning(UserWarning):
    """Something the user should know about a run (a guessed focal length, skipped files)."""


ROTATION_ONLY = "the camera only rotated: no 3-D structure; use `geomvision stitch`"
PLANE_UNCALIBRATED = ("the scene is a plane and the views of it do not fix the focal length: give --K "
                      "(or images with an EXIF focal length)")
K_DISAGREEMENT_FACTOR = 2.0  # warn when the fundamental matrices imply a focal length this far from K's
K_CHECK_MAX_PAIRS = 12  # pairs (most matches first) whose fundamental matrix checks a given K
K_CHECK_MIN_PAIRS = 3  # pairs that must determine the focal length before K is judged


@dataclass
class SfmResult:
    reconstructions: list[Reconstruction]
    report: dict = field(default_factory=dict)


def list_images(image_dir: str | os.PathLike) -> list[Path]:
    """Regular, non-hidden files of a folder in natural name order (non-images are skipped later,
    with a reason, by feature extraction). Raises for a missing or empty folder."""
    if isinstance(image_dir, str) and not image_dir.strip():
        raise ValueError("image_dir is empty: give the folder of images (an empty path would mean the current folder)")
    d = Path(image_dir)
    if not d.exists():
        raise FileNotFoundError(f"image folder {d} does not exist")
    if not d.is_dir():
        raise NotADirectoryError(f"{d} is not a folder of images")
    files = sorted((p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")),
                   key=lambda p: natural_sort_key(p.name))
    if not files:
        raise ValueError(f"image folder {d} is empty")
    return files


@dataclass
class PairSelection:
    """The image pairs to match and how they were chosen.

    pairs : (P,2) int64 image indices, i < j, rows unique and sorted.
    matcher : ``exhaustive``, ``sequential``, ``sequential+retrieval`` or ``retrieval``.
    retrieved : the pairs VLAD retrieval proposed (loop candidates beyond the sequential window, or
        every pair of the retrieval matcher), each with the cosine of the two VLAD vectors.
    """

    pairs: np.ndarray
    matcher: str
    retrieved: dict[tuple[int, int], float] = field(default_factory=dict)


def select_pairs(names: list[str], features: list[Features], options: SfmOptions) -> PairSelection:
    """Which pairs of the images ``names`` (with their ``features``, same order) to match.

    ``auto`` above ``exhaustive_max_images``: a window only makes sense over the frames of a
    sequence (names differing by a running number, :func:`is_numbered_sequence`); any other set
    gets each image's ``retrieval_num_neighbors`` most similar images. The sequential matcher adds
    each image's ``loop_candidates`` most similar images beyond its window (``loop_detection``);
    a window that spans all images leaves nothing beyond it, and no retrieval runs.
    """
    if len(names) != len(features):
        raise ValueError(f"{len(names)} names but {len(features)} features")
    n = len(names)
    matcher = options.matcher
    if matcher == "auto":
        if n <= options.exhaustive_max_images:
            matcher = "exhaustive"
        else:
            matcher = "sequential" if is_numbered_sequence(names) else "retrieval"
    if matcher == "exhaustive":
        return PairSelection(exhaustive_pairs(n), matcher)
    if matcher == "sequential":
        window = sequential_pairs(names, window=options.sequential_window)
        if not options.loop_detection or len(window) == n * (n - 1) // 2:
            return PairSelection(window, matcher)
        matcher, k, exclude = "sequential+retrieval", options.loop_candidates, window
    else:
        window, k, exclude = np.zeros((0, 2), np.int64), options.retrieval_num_neighbors, None
    if not any(len(f) for f in features):  # no descriptor anywhere: nothing to retrieve with
        return PairSelection(window, matcher)
    words = train_vocabulary(features, rng=np.random.default_rng([options.seed, 1]))
    g = vlad_descriptors(features, words)
    found = top_similar_pairs(g, k, exclude=exclude)
    similarity = np.einsum("ij,ij->i", g[found[:, 0]], g[found[:, 1]])
    retrieved = {(int(i), int(j)): float(s) for (i, j), s in zip(found, similarity)}
    return PairSelection(union_pairs(window, found), matcher, retrieved)


def _initial_cameras(names, paths, image_sizes, options: SfmOptions) -> tuple[list[Camera], np.ndarray, np.ndarray, list[str]]:
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
        exif = None if K is not None else exif_focal_px(paths[n])
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
        pairs.sort(key=lambda p: -len(matches[p]))
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


def run_sfm(
    image_dir: str | os.PathLike,
    options: SfmOptions | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> SfmResult:
    """Reconstruct the images of ``image_dir``; returns the models (largest first) and a report.

    ``cache_dir`` keeps features and matches keyed by image content and options, so a rerun
    (or ``--resume``) reuses them. The same images, options and seed give the same models.
    Raises ``ValueError`` / ``FileNotFoundError`` when nothing can be done (missing or empty
    folder, fewer than two readable images).
    """
    options = SfmOptions() if options is None else options
    if not isinstance(options, SfmOptions):
        raise ValueError(f"options must be an SfmOptions, got {type(options).__name__}")
    if options.camera.K is not None:
        parse_K(options.camera.K)  # a malformed --K fails before any work (sizes are checked per camera)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    files = list_images(image_dir)

    # --- features
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skipped files are reported below, not warned twice
        ex = extract_all(files, options.features, cache_dir=cache_dir, num_threads=options.num_threads,
                         progress=progress)
    timings["features"] = time.perf_counter() - t0
    names = list(ex.features)
    for name, why in ex.skipped.items():
        warnings.warn(f"skipped {name}: {why}", SfmWarning, stacklevel=2)
    if len(names) < 2:
        raise ValueError(
            f"need at least 2 readable images in {image_dir}, found {len(names)}"
            + (f" ({len(ex.skipped)} skipped: not images or corrupt)" if ex.skipped else "")
        )

    # --- intrinsics
    cameras, img_cam, known, sources = _initial_cameras(names, ex.paths, ex.image_sizes, options)
    for c, src in enumerate(sources):
        if src == "prior":
            warnings.warn(
                f"no calibration and no EXIF focal length for camera {c + 1}: starting from the prior "
                f"f = 1.2 * max(width, height) = {cameras[c].mean_focal_length:.1f} px, self-calibrated from the "
                "fundamental matrices and refined by bundle adjustment (give --K for best accuracy)",
                SfmWarning, stacklevel=2)

    # --- pairs
    t0 = time.perf_counter()
    selection = select_pairs(names, [ex.features[n] for n in names], options)
    pair_idx = selection.pairs
    timings["pair_selection"] = time.perf_counter() - t0

    # --- matching
    t0 = time.perf_counter()
    name_pairs = [(names[i], names[j]) for i, j in pair_idx]
    matches = match_all(name_pairs, ex.features, options.matching, cache_dir=cache_dir,
                        num_threads=options.num_threads, progress=progress)
    timings["matching"] = time.perf_counter() - t0

    # --- geometric verification
    t0 = time.perf_counter()
    index = {n: k for k, n in enumerate(names)}
    geoms: dict[tuple[int, int], TwoViewGeometry] = {}
    with Progress(len(name_pairs), "verification", unit="pair", enabled=progress) as bar:
        for a, b in name_pairs:
            i, j = index[a], index[b]
            calibrated = bool(sources[img_cam[i]] in ("K", "exif") and sources[img_cam[j]] in ("K", "exif"))
            geoms[(i, j)] = verify_pair(
                ex.features[a].keypoints, ex.features[b].keypoints, matches[(a, b)],
                cameras[img_cam[i]], cameras[img_cam[j]], calibrated=calibrated,
                options=options.verification, rng=np.random.default_rng([options.seed, 0, i, j]))
            bar.update()
    timings["verification"] = time.perf_counter() - t0
    planar_pairs = planar_scene_pairs(geoms)
    self_calibration = _self_calibrate(cameras, img_cam, geoms, sources, planar=planar_pairs["planar_scene"])
    t0 = time.perf_counter()
    K_check = _check_known_K(cameras, img_cam, sources, names, ex, matches, options)
    timings["K_check"] = time.perf_counter() - t0
    for entry in K_check.values():
        if "warning" in entry:
            warnings.warn(entry["warning"], SfmWarning, stacklevel=2)
    failure = _rotation_only(geoms)
    if failure is not None:
        warnings.warn(failure, SfmWarning, stacklevel=2)

    # --- tracks
    t0 = time.perf_counter()
    verified = {k: g.inlier_matches for k, g in geoms.items() if g.verified}
    weights = {k: float(g.num_inliers) for k, g in geoms.items() if g.verified}
    num_kp = np.array([len(ex.features[n].keypoints) for n in names])
    tracks, n_refused = build_tracks(num_kp, verified, weights)
    timings["tracks"] = time.perf_counter() - t0

    # --- keypoint refinement
    t0 = time.perf_counter()
    keypoints = [ex.features[n].keypoints for n in names]
    scales = [ex.features[n].scales for n in names]
    refinement = None
    if options.refine_keypoints and failure is None:
        with Progress(len(tracks.image_idx), "keypoint refinement", unit="obs", enabled=progress) as bar:
            keypoints, aligned, refinement = refine_track_keypoints(
                lambda i: read_image(ex.paths[names[i]]), keypoints, scales,
                [ex.features[n].orientations_rad for n in names], tracks.ptr, tracks.image_idx, tracks.keypoint_idx,
                options.keypoint_refinement, progress=bar.update)
        # an aligned keypoint's error no longer grows with its detection scale: weigh it as scale 1
        scales = [np.where(a, 1.0, s) for a, s in zip(aligned, scales)]
    timings["keypoint_refinement"] = time.perf_counter() - t0

    # --- mapping
    t0 = time.perf_counter()
    sizes = np.array([[cameras[img_cam[k]].width, cameras[img_cam[k]].height] for k in range(len(names))])
    data = ImageData(names, keypoints, [ex.features[n].colors for n in names], sizes, scales)
    state = MapperState(data, cameras, img_cam, known, tracks, options.mapper.scale_weight_exponent)
    with Progress(len(names), "mapping", unit="img", enabled=progress) as bar:
        done = [0]

        def on_progress(n_registered: int) -> None:
            if n_registered > done[0]:
                bar.update(n_registered - done[0])
                done[0] = n_registered

        camera_options = options.camera
        if planar_pairs["planar_scene"] and failure is None and "prior" in sources:
            # a plane fixes no lens distortion worth the name and the focal length only through
            # several views: calibrated from them (or refused) before mapping, distortion held at 0
            failure = _calibrate_from_plane(state, geoms, sources, self_calibration, options)
            camera_options = dataclasses.replace(options.camera, refine_extra_params=False)
        mapper = IncrementalMapper(state, geoms, options.mapper, camera_options, seed=options.seed)
        # a rotation-only run has no structure: no model at all, rather than one built on noise
        controller = IncrementalController(mapper, progress=on_progress)
        masks = controller.run() if failure is None else []
    timings["mapping"] = time.perf_counter() - t0
    reconstructions = controller.reconstructions(masks)
    planar = {**planar_pairs, "models": [_plane_of_model(m, rec, sources) for m, rec in enumerate(reconstructions)]}
    for entry in planar["models"]:
        if "warning" in entry:
            warnings.warn(entry["warning"], SfmWarning, stacklevel=2)
    timings["total"] = time.perf_counter() - t_start

    report = _report(image_dir, names, ex, geoms, tracks, n_refused, mapper, masks, reconstructions, options,
                     selection, sources, self_calibration, refinement, timings, K_check, failure)
    report["planar"] = planar
    return SfmResult(reconstructions, report)


def _calibrate_from_plane(state: MapperState, geoms, sources, self_calibration: dict,
                          options: SfmOptions) -> str | None:
    """Focal lengths of the prior-only cameras of a planar scene from the views of the plane
    (:func:`planar.focal_from_plane`), set on the state (no distortion); the reason no model can
    be built when one is not determined (``PLANE_UNCALIBRATED``), else None."""
    mo = options.mapper
    for c, src in enumerate(sources):
        if src != "prior":
            continue
        cam = state.cameras[c]
        found = focal_from_plane(state, geoms, c, max_error=mo.init_max_error_px,
                                 abs_pose_max_error=mo.abs_pose_max_error_px,
                                 min_view_correspondences=mo.abs_pose_min_num_inliers, seed=options.seed)
        self_calibration[c] = {"prior_px": cam.mean_focal_length, "source": "plane", **found.as_dict()}
        if not found.determined:
            why = (f"{PLANE_UNCALIBRATED} (camera {c + 1}: {found.reason}; a fundamental matrix cannot give it "
                   "from a plane)")
            warnings.warn(why, SfmWarning, stacklevel=3)
            return why
        state.set_camera(c, camera_with_focal(cam, found.focal_px))
        sources[c] = "plane"
        warnings.warn(f"camera {c + 1}: the scene is a plane: focal length {found.focal_px:.0f} px from the views of "
                      f"the plane (supported from {found.interval_px[0]:.0f} to {found.interval_px[1]:.0f} px), lens "
                      "distortion held at 0; give --K for best accuracy", SfmWarning, stacklevel=3)
    return None


def _plane_of_model(m: int, rec: Reconstruction, sources) -> dict:
    """Whether model ``m`` rests on a plane (:func:`planar.plane_support`), with the warning."""
    X = np.array([p.xyz for p in rec.points3D.values()]).reshape(-1, 3)
    support = plane_support(X)
    if support is None:
        return {"model": m, "planar": False}
    entry = {"model": m, **support.as_dict()}
    if support.planar:
        known = all(sources[c - 1] in ("K", "exif") for c in rec.cameras)  # camera ids are indices + 1
        entry["warning"] = (
            f"model {m} rests on a plane ({100 * support.inlier_ratio:.0f} % of its {len(X)} points within "
            f"{100 * PLANE_MAX_DISTANCE_RATIO:g} % of the scene size of one plane): a plane leaves poses two-fold "
            "ambiguous (resolved by the further views) and "
            + ("the intrinsics were given" if known else
               "fixes the focal length only through several views and no lens distortion: give --K to be sure"))
    return entry


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


def _report(image_dir, names, ex, geoms, tracks, n_refused, mapper, masks, recs, options, selection: PairSelection,
            sources, self_calibration, refinement, timings, K_check=None, failure=None) -> dict:
    model_of = {}
    for m, mask in enumerate(masks):
        for k in np.flatnonzero(mask):
            model_of[int(k)] = m
    per_image = {}
    n_pairs = np.zeros(len(names), dtype=int)
    for (i, j), g in geoms.items():
        if g.verified:
            n_pairs[i] += 1
            n_pairs[j] += 1
    for k, n in enumerate(names):
        if k in model_of:
            per_image[n] = {"registered": True, "model": model_of[k], "num_features": len(ex.features[n].keypoints)}
        else:
            why = mapper.log.registration.get(k)
            if failure is not None:
                why = ROTATION_ONLY if failure.startswith(ROTATION_ONLY) else PLANE_UNCALIBRATED
            elif why is None:
                why = "no verified pair with another image" if n_pairs[k] == 0 else "not reached by the mapper"
            elif why.startswith("registered"):
                why = "its model was too small (fewer than min_model_size images)"
            per_image[n] = {"registered": False, "reason": why, "num_features": len(ex.features[n].keypoints)}
    models = []
    for m, rec in enumerate(recs):
        s = rec.summary()
        models.append({"index": m, **s, "cameras": {int(c): cam.to_dict() for c, cam in rec.cameras.items()}})
    return {
        "image_dir": str(Path(image_dir).resolve()),
        "num_images": len(names) + len(ex.skipped),
        "num_readable_images": len(names),
        "skipped_files": dict(ex.skipped),
        "matcher": selection.matcher,
        "num_pairs_matched": len(geoms),
        "num_pairs_verified": int(sum(g.verified for g in geoms.values())),
        "pair_configs": {c: int(sum(g.config == c for g in geoms.values()))
                         for c in ("calibrated", "uncalibrated", "planar", "panoramic", "failed")},
        "pairs": {f"{names[i]} {names[j]}": {"config": g.config, "num_matches": g.num_matches,
                                              "num_inliers": g.num_inliers, "num_h_inliers": g.num_h_inliers,
                                              **({"rotation_focal_px": round(g.rotation_focal_px, 1)}
                                                 if np.isfinite(g.rotation_focal_px) else {}),
                                              **({"message": g.message} if g.message else {})}
                  for (i, j), g in geoms.items()},
        # why no model was built when the input cannot give one (every pair a pure rotation)
        "failure": failure,
        # the pairs proposed by VLAD retrieval (loop candidates beyond the sequential window, or
        # every pair of the retrieval matcher) and what two-view verification made of them
        "retrieval_pairs": [{"pair": [names[i], names[j]], "similarity": round(s, 4),
                             "verified": bool(geoms[(i, j)].verified), "num_inliers": geoms[(i, j)].num_inliers,
                             "config": geoms[(i, j)].config}
                            for (i, j), s in sorted(selection.retrieved.items())],
        "num_tracks": tracks.num_tracks,
        "num_track_merges_refused": n_refused,
        "keypoint_refinement": refinement,
        "intrinsics_source": sources,
        "self_calibration": {str(k): v for k, v in self_calibration.items()},
        # each given K against the focal length its images' fundamental matrices imply
        "K_check": {str(k): v for k, v in (K_check or {}).items()},
        "models": models,
        "num_registered_images": int(sum(len(r.registered_image_ids) for r in recs)),
        "images": per_image,
        "initial_pairs": [{**e, "pair": [names[e["pair"][0]], names[e["pair"][1]]]} for e in mapper.log.initial_pairs],
        "bundle_adjustments": mapper.log.bundle_adjustments,
        "timings_s": {**{k: round(v, 3) for k, v in timings.items()},
                      **{f"mapping.{k}": round(v, 3) for k, v in mapper.log.timings.items()}},
        "options": options.to_dict(),
    }
