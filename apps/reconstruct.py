"""Reconstruct a folder of images with geomvision's library API (what ``geomvision sfm`` does).

    .venv/bin/python apps/reconstruct.py IMAGES OUT [--K K.txt] [--gt SCENE_DIR]

With ``--gt`` pointing at a folder in the Strecha layout (``gt_cameras.json``), the cameras are
scored against the ground truth after a similarity alignment.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from geomvision.cli.sfm_outputs import write_outputs
from geomvision.io.datasets import load_strecha_scene
from geomvision.scene.align import camera_errors
from geomvision.sfm import CameraOptions, SfmOptions, run_sfm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images")
    ap.add_argument("out")
    ap.add_argument("--K", help="known intrinsics: a 3x3 matrix file or fx,fy,cx,cy")
    ap.add_argument("--gt", help="a Strecha-layout folder with gt_cameras.json to score against")
    args = ap.parse_args()

    # 1. options: every stage has its own dataclass; they validate themselves
    options = SfmOptions(camera=CameraOptions(K=args.K))

    # 2. the pipeline: features (cached), matching, verification, tracks, incremental mapping
    result = run_sfm(args.images, options, cache_dir=Path(args.out) / "cache")
    for name, info in result.report["images"].items():
        print(f"{name}: {'registered' if info['registered'] else info['reason']}")

    # 3. outputs: COLMAP model(s), coloured PLY, report.json and plots, written atomically
    write_outputs(result, args.out)

    # 4. optional: compare the largest model's cameras with the ground truth
    if args.gt and result.reconstructions:
        gt = load_strecha_scene(args.gt)
        rec = result.reconstructions[0]
        ids = rec.registered_image_ids
        err = camera_errors([rec.images[i].cam_from_world for i in ids],
                            [gt.cams_from_world[rec.images[i].name] for i in ids])
        print(f"mean camera-centre error {err.mean_center_error:.4g}, rotation {err.mean_rotation_error_deg:.4f} deg")


if __name__ == "__main__":
    main()
