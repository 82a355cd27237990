"""``geomvision track FRAMES -o OUT``: camera poses of a frame sequence, frame by frame (a thin layer
over :class:`geomvision.sfm.OnlineMapper`).

    geomvision track FRAMES/ -o OUT/ [--K fx,fy,cx,cy | --K K.txt] [--camera-model PINHOLE]
        [--timestamps index|names] [--fps 30] [--map OLD_MAP/] [--max-error-px 4 --min-inliers 30
        --max-features 3000 --feature-size 640] [--quiet]

The images of FRAMES are read in natural name order ('frame2' before 'frame10') and given to the
online mapper one by one; each frame prints one line (name, status, inliers, latency, and why
when it got no pose). Files that are not readable images are skipped with a message; frames of
another size than the camera come back ``rejected``.

Intrinsics: ``--K`` (the same forms as ``geomvision sfm --K``) is trusted. Without it the camera
is a prior, PINHOLE with f = 1.2 * max(width, height) and the principal point at the centre,
that the mapper does not refine: the poses are only as accurate as that guess (a warning says so).
With ``--map`` the camera (and the options not given as flags) come from the saved map, and the
sequence continues it (its first frame relocalises against the map).

Timestamps: ``index`` (default) is the file's position in the folder's name order (continuing
after the map's frames with ``--map``), divided by ``--fps`` when given; ``names`` is the number
in the file name ('1305031102.175304.png' -> 1305031102.175304, 'frame_000012.png' -> 12),
divided by ``--fps`` when given.

Outputs (each file replaced atomically): ``OUT/trajectory.txt`` (TUM format, world_from_camera,
one line per frame with a pose, see :mod:`geomvision.io.trajectory`), ``OUT/map/`` (the map:
:meth:`OnlineMapper.save`, continue it with ``--map OUT/map`` or ``geomvision.sfm.localize``),
``OUT/frames.json`` (per frame: status, whether it has a pose in the final trajectory, inliers,
latency, reason) and, as the last line on stdout, a JSON summary. Ctrl-C stops after the current
frame and still writes everything (exit code 130; a second Ctrl-C aborts at once). Exit code 1
when no frame of the run got a pose.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

_DEFAULT_SENTINEL = object()


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _int_or_none(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or none, got {text!r}") from None


def add_parser(sub) -> None:
    from ..geometry.camera import CAMERA_MODELS
    from ..sfm.options import OnlineOptions

    d = OnlineOptions().resolved()
    p = sub.add_parser("track", help="track a frame sequence: a pose per frame, a TUM trajectory and a map",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("frames", help="folder of frames (images, natural name order)")
    p.add_argument("-o", "--output", required=True, help="output folder (created if missing; its files are replaced)")
    p.add_argument("--K", default=None, help="known intrinsics: 'fx,fy,cx,cy' or a file with a 3x3 matrix "
                                             "(default: a PINHOLE prior f = 1.2 * max(width, height))")
    p.add_argument("--camera-model", default=None, type=str.upper, choices=sorted(CAMERA_MODELS),
                   metavar="MODEL", help="camera model (default PINHOLE; distortion parameters are zero)")
    p.add_argument("--map", default=None, metavar="DIR", help="continue from a map saved by an earlier run (OUT/map)")
    p.add_argument("--timestamps", default="index", choices=["index", "names"],
                   help="frame times: the file's position (default) or the number in its name")
    p.add_argument("--fps", type=_positive_float, default=None,
                   help="frames per second: timestamps are divided by it (default: not divided)")
    g = p.add_argument_group("mapper options (default: the library's, or the saved map's with --map)")
    g.add_argument("--max-error-px", type=_positive_float, default=None,
                   help=f"inlier threshold of poses and points, pixels (default {d.max_error_px})")
    g.add_argument("--min-inliers", type=int, default=None,
                   help=f"2D-3D inliers a frame needs to be tracked (default {d.min_inliers})")
    g.add_argument("--loop-closure", action=argparse.BooleanOptionalAction, default=None,
                   help="detect revisits of older keyframes and correct the drift (default on)")
    g.add_argument("--tracking", choices=["flow", "features"], default=None,
                   help="between keyframes, follow the map's points by optical flow (default) or extract "
                        "and match features on every frame")
    g.add_argument("--max-features", type=int, default=None,
                   help=f"SIFT features per frame at most (default {d.features.max_num_features})")
    g.add_argument("--feature-size", type=_int_or_none, default=_DEFAULT_SENTINEL, metavar="PIXELS",
                   help="frames are downscaled to this long side for feature detection, 'none' keeps the full "
                        f"resolution (default {d.features.max_image_size})")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the JSON summary")
    p.set_defaults(func=run)


# --- options, camera, timestamps ----------------------------------------------------------------
def _option_changes(args) -> dict:
    """The OnlineOptions fields the user set (``features`` as a dict of FeatureOptions fields)."""
    changes: dict = {}
    if args.max_error_px is not None:
        changes["max_error_px"] = args.max_error_px
    if args.min_inliers is not None:
        changes["min_inliers"] = args.min_inliers
    if args.tracking is not None:
        changes["tracking"] = args.tracking
    if args.loop_closure is not None:
        changes["loop_closure"] = {"enabled": bool(args.loop_closure)}
    feat = {}
    if args.max_features is not None:
        feat["max_num_features"] = args.max_features
    if args.feature_size is not _DEFAULT_SENTINEL:
        feat["max_image_size"] = args.feature_size
    if feat:
        changes["features"] = feat
    return changes


def _apply_changes(base, changes: dict):
    """``base`` (OnlineOptions) with ``changes`` applied; the dataclasses validate the values."""
    changes = dict(changes)
    if "tracking" in changes:
        base = dataclasses.replace(base, tracking=changes.pop("tracking"))
    base = base.resolved()
    if "features" in changes:
        changes["features"] = dataclasses.replace(base.features, **changes["features"])
    if "loop_closure" in changes:
        changes["loop_closure"] = dataclasses.replace(base.loop_closure, **changes["loop_closure"])
    return dataclasses.replace(base, **changes)


def _number_in_name(name: str) -> float | None:
    stem = Path(name).stem
    try:
        v = float(stem)
    except ValueError:
        found = re.findall(r"\d+(?:\.\d+)?", stem)
        return float(found[-1]) if found else None
    return v if np.isfinite(v) else None


def frame_timestamps(names: list[str], mode: str, fps: float | None, offset: int = 0) -> np.ndarray:
    """Timestamps of the files ``names`` (in order): their position + ``offset`` (``index``) or
    the number in their name (``names``), divided by ``fps`` when given."""
    if mode == "index":
        ts = np.arange(offset, offset + len(names), dtype=np.float64)
    elif mode == "names":
        vals = [_number_in_name(n) for n in names]
        bad = [n for n, v in zip(names, vals) if v is None]
        if bad:
            raise ValueError(f"--timestamps names: no number in the file name {bad[0]!r}"
                             + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
                             + "; use --timestamps index [--fps N]")
        ts = np.array(vals, dtype=np.float64)
    else:
        raise ValueError(f"--timestamps must be index or names, got {mode!r}")
    return ts / fps if fps else ts


def _camera(args, width: int, height: int):
    """(camera, known, source) from --K or the focal prior."""
    from ..sfm.intrinsics import guess_intrinsics, parse_K

    K = parse_K(args.K) if args.K is not None else None
    guess = guess_intrinsics(width, height, args.camera_model or "PINHOLE", K=K)
    return guess.camera, guess.known, guess.source


# --- Ctrl-C -------------------------------------------------------------------------------------
class StopOnInterrupt:
    """While active, the first Ctrl-C (SIGINT) only sets :attr:`requested` (the loop stops after the
    current frame and the outputs are written); a second one raises ``KeyboardInterrupt`` at once.
    Outside the main thread (where handlers cannot be installed) Ctrl-C keeps its usual effect."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None
        self._installed = False

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\ninterrupted: stopping after the current frame and writing the results "
              "(Ctrl-C again to abort without writing)", file=sys.stderr, flush=True)

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._installed = True
        return self

    def __exit__(self, *exc) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.default_int_handler)
            self._installed = False


# --- the command --------------------------------------------------------------------------------
def _latency_ms(results, status: str) -> tuple[float | None, float | None]:
    t = np.array([r.time_s for r in results if r.status == status]) * 1000.0
    if len(t) == 0:
        return None, None
    return round(float(np.median(t)), 2), round(float(np.percentile(t, 95)), 2)


def _frame_line(name: str, r) -> str:
    line = f"{name}  {r.status:<12} {r.num_inliers:5d} inliers {1000.0 * r.time_s:8.1f} ms"
    if r.cam_from_world is None and r.reason:
        line += f"  ({r.reason})"
    return line


def run(args) -> int:
    from .._atomic import atomic_write_text
    from ..imageio import read_image
    from ..io.trajectory import write_tum
    from ..sfm import OnlineMapper, OnlineOptions, list_images
    from .sfm_outputs import check_output_dir

    t_start = time.perf_counter()
    # every check that needs no real work comes first: options, the frames folder, --K, OUTPUT
    changes = _option_changes(args)
    options = _apply_changes(OnlineOptions(), changes)
    if args.map is not None and (args.K is not None or args.camera_model is not None):
        raise ValueError("--K and --camera-model do not apply with --map: the map holds its camera")
    if args.K is not None:
        from ..sfm.intrinsics import parse_K

        parse_K(args.K)
    files = list_images(args.frames)
    names = [p.name for p in files]
    out = Path(args.output)
    if args.map is not None and out.resolve() == Path(args.map).resolve():
        raise ValueError(f"--output {out} is the --map folder itself; the map is written to OUTPUT/map "
                         "(give its parent folder, or another one)")
    check_output_dir(out)

    if args.map is not None:
        mapper = OnlineMapper.load(args.map)
        if changes:
            mapper = OnlineMapper.load(args.map, _apply_changes(mapper.opt, changes))
        source = "map"
    else:
        mapper = None
        source = ""
    timestamps = frame_timestamps(names, args.timestamps, args.fps,
                                  offset=len(mapper.frames) if mapper is not None else 0)
    first_index = len(mapper.frames) if mapper is not None else 0

    results: list[tuple[str, object]] = []  # (file name, FrameResult)
    skipped: list[dict] = []
    say = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    with StopOnInterrupt() as stop:
        for k, path in enumerate(files):
            if stop.requested:
                break
            try:
                image = read_image(path)
            except ValueError as exc:
                skipped.append({"name": path.name, "reason": str(exc)})
                say(f"{path.name}  skipped      (not a readable image)")
                continue
            if mapper is None:  # the first readable frame gives the camera's size
                h, w = image.shape[:2]
                camera, known, source = _camera(args, w, h)
                if not known:
                    print(f"warning: no --K: assuming a {camera.model} camera with focal length 1.2 * max({w}, {h}) = "
                          f"{camera.mean_focal_length:.0f} px and the principal point at the centre; the poses' "
                          "accuracy depends on it (give --K fx,fy,cx,cy)", file=sys.stderr, flush=True)
                mapper = OnlineMapper(camera, options, camera_known=known)
            r = mapper.add_frame(image, timestamp=float(timestamps[k]))
            results.append((path.name, r))
            say(_frame_line(path.name, r))
        if mapper is None:
            raise ValueError(f"no readable image in {args.frames} ({len(skipped)} file(s) skipped, e.g. "
                             f"{skipped[0]['name']}: {skipped[0]['reason']})")
        # outputs (a first Ctrl-C now only makes the exit code 130)
        trajectory = mapper.trajectory()
        write_tum(trajectory, out / "trajectory.txt")
        final_poses = trajectory[1]
        frames_out = []
        for name, r in results:
            frames_out.append({
                "name": name, "index": r.index, "timestamp": r.timestamp, "status": r.status,
                "has_pose": final_poses[r.index] is not None, "inliers": r.num_inliers, "matches": r.num_matches,
                "latency_ms": round(1000.0 * r.time_s, 2), "reason": r.reason, "keyframe": r.keyframe,
                "loop": None if r.loop is None else r.loop.as_dict(),
            })
        cam = mapper.camera
        camera_info = {"model": cam.model, "width": cam.width, "height": cam.height,
                       "params": [float(v) for v in cam.params], "source": source}
        doc = {"frames_folder": str(args.frames), "camera": camera_info, "frames": frames_out, "skipped": skipped,
               "loops": [lp.as_dict() for lp in mapper.loops]}
        atomic_write_text(out / "frames.json", json.dumps(doc, indent=1, allow_nan=False) + "\n")
        mapper.save(out / "map")
        interrupted = stop.requested

    run_results = [r for _, r in results]
    posed = sum(final_poses[r.index] is not None for r in run_results)
    count = {s: sum(r.status == s for r in run_results) for s in ("keyframe", "lost", "rejected", "relocalised")}
    trk_med, trk_p95 = _latency_ms(run_results, "tracking")
    kf_med, kf_p95 = _latency_ms(run_results, "keyframe")
    summary = {
        "frames": len(run_results),
        "posed": int(posed),
        "keyframes": mapper.num_keyframes,
        "new_keyframes": count["keyframe"],
        "lost": count["lost"],
        "relocalised": count["relocalised"],
        "rejected": count["rejected"],
        "skipped_files": len(skipped),
        "loops": len(mapper.loops),
        "points": len(mapper.reconstruction().points3D),
        "tracking_median_ms": trk_med,
        "tracking_p95_ms": trk_p95,
        "keyframe_median_ms": kf_med,
        "keyframe_p95_ms": kf_p95,
        "first_frame_index": first_index,
        "camera_source": source,
        "interrupted": interrupted,
        "output": str(out),
        "time_s": round(time.perf_counter() - t_start, 3),
    }
    print(json.dumps(summary), flush=True)
    if interrupted:
        print(f"geomvision track: interrupted after {len(run_results)} frame(s); results written to {out}/",
              file=sys.stderr)
        return 130
    if posed == 0:
        print(f"geomvision track: error: no frame got a pose (see {out}/frames.json for the reasons)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    from .main import main

    sys.exit(main(["track", *sys.argv[1:]]))
