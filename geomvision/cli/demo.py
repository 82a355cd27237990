"""``geomvision demo [-o OUT]``: render geomvision's own synthetic scene, reconstruct it with the SfM
pipeline and print the camera errors against the scene's exact ground truth.

The scene (a courtyard of procedurally textured boxes, cylinders and spheres) is rendered by
``geomvision.synthetic`` from a camera orbit into ``OUT/scene`` (Strecha layout: images/, K.txt,
gt_cameras.json); the reconstruction goes to ``OUT/sparse/0`` etc. like ``geomvision sfm``.
By default the pipeline is not told the intrinsics (it self-calibrates the focal length);
``--known-K`` passes the true K instead.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="render the built-in synthetic scene, reconstruct it and score it",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--num-images", type=int, default=12, help="views on the orbit (default: 12)")
    p.add_argument("--width", type=int, default=800, help="image width in pixels (default: 800)")
    p.add_argument("--height", type=int, default=600, help="image height in pixels (default: 600)")
    p.add_argument("--seed", type=int, default=0, help="scene and pipeline seed (default: 0)")
    p.add_argument("--known-K", action="store_true", help="give the pipeline the true intrinsics")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


NUM_IMAGES_RANGE = (3, 500)  # a model needs min_model_size (3) views; the orbit renders ~1 s per view
SIZE_RANGE = (64, 4096)  # pixels per side: smaller leaves too few features, larger only costs time


def check_args(args) -> None:
    """Every argument, before anything is rendered or written (errors name the flag and its range)."""
    checks = (("--num-images", args.num_images, NUM_IMAGES_RANGE), ("--width", args.width, SIZE_RANGE),
              ("--height", args.height, SIZE_RANGE))
    for flag, value, (lo, hi) in checks:
        if not lo <= value <= hi:
            raise ValueError(f"{flag} must be {lo} to {hi}, got {value}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if not args.output.strip():
        raise ValueError("-o/--output is an empty path: give the output folder ('.' for the current folder)")


def score(result, scene) -> dict:
    """Camera errors of the largest model against the rendered ground truth."""
    from ..scene.align import camera_errors

    rec = result.reconstructions[0]
    ids = rec.registered_image_ids
    names = [rec.images[i].name for i in ids]
    err = camera_errors([rec.images[i].cam_from_world for i in ids], [scene.cams_from_world[n] for n in names])
    centers = np.array([-T.R.T @ T.t for T in scene.cams_from_world.values()])
    extent = float(np.max(np.linalg.norm(centers - centers.mean(0), axis=1)))
    cam = next(iter(rec.cameras.values()))
    f_true = scene.K[0, 0]
    return {
        "registered": len(ids),
        "num_images": len(scene.image_names),
        "num_points": len(rec.points3D),
        "mean_center_error": err.mean_center_error,
        "max_center_error": err.max_center_error,
        "scene_radius": extent,
        "mean_rotation_error_deg": err.mean_rotation_error_deg,
        "max_rotation_error_deg": float(err.rotation_errors_deg.max()),
        "focal_px": cam.mean_focal_length,
        "focal_true_px": float(f_true),
        "focal_error_percent": 100.0 * abs(cam.mean_focal_length - f_true) / f_true,
    }


def run(args) -> int:
    from .._interrupt import deferred
    from .._warmup import ensure_compiled
    from ..io.datasets import load_strecha_scene
    from ..synthetic.rendered_datasets import render_orbit_dataset
    from ..sfm import CameraOptions, SfmOptions, SfmWarning, run_sfm
    from .sfm import no_model_reason, summary_lines
    from .sfm_outputs import check_output_dir, write_outputs

    check_args(args)
    out = check_output_dir(args.output)
    scene_dir = out / "scene"
    with deferred():
        ensure_compiled(progress=not args.quiet)  # first run: "compiling kernels (first run only)"
    if not args.quiet:
        print(f"rendering {args.num_images} views of the demo scene into {scene_dir}/ ...", file=sys.stderr)
    shutil.rmtree(scene_dir, ignore_errors=True)
    render_orbit_dataset(scene_dir, n_images=args.num_images, width=args.width, height=args.height, rng=args.seed)
    scene = load_strecha_scene(scene_dir)
    camera = CameraOptions(K=str(scene_dir / "K.txt")) if args.known_K else CameraOptions()
    options = SfmOptions(camera=camera, seed=args.seed)
    shutil.rmtree(out / "cache", ignore_errors=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SfmWarning)  # the focal-length prior warning is expected here
        with deferred():  # Ctrl-C stops at the next safe point
            result = run_sfm(scene_dir / "images", options, cache_dir=out / "cache", progress=not args.quiet)
    if not result.reconstructions:
        write_outputs(result, out, plots=False)
        print(f"geomvision demo: error: no model was built: {no_model_reason(result.report)} "
              f"(details in {out}/report.json)", file=sys.stderr)
        return 1
    s = score(result, scene)
    result.report["demo_ground_truth_errors"] = s
    write_outputs(result, out)
    for line in summary_lines(result, Path(out)):
        print(line)
    print("against the ground truth (after a 7-dof similarity alignment):")
    print(f"  cameras registered       {s['registered']} / {s['num_images']}")
    print(f"  camera centre error      mean {s['mean_center_error']:.2e}, max {s['max_center_error']:.2e} "
          f"(scene units; camera orbit radius {s['scene_radius']:.2f})")
    print(f"  camera rotation error    mean {s['mean_rotation_error_deg']:.4f} deg, "
          f"max {s['max_rotation_error_deg']:.4f} deg")
    print(f"  focal length             {s['focal_px']:.2f} px (true {s['focal_true_px']:.2f} px, "
          f"error {s['focal_error_percent']:.3f} %){' [given]' if args.known_K else ' [self-calibrated]'}")
    return 0
