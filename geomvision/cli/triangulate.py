"""``geomvision triangulate PROJECT --model MODEL -o OUT``: 3-D points from known camera poses
(COLMAP's ``point_triangulator``; a thin layer over :func:`geomvision.sfm.known_poses.triangulate_model`).

MODEL is a COLMAP model (binary or text) whose images carry the poses and cameras to keep
(its own points are not used); PROJECT holds the features and verified pairs of the same images
(``geomvision extract IMAGES -o PROJECT`` and ``geomvision match PROJECT``; names as in MODEL).
The poses and intrinsics stay fixed; each track's keypoints are first aligned to sub-pixel
accuracy as ``map`` does (``--no-refine-keypoints``: not), and ``--no-refine-points`` skips the
bundle adjustment that moves only the points. OUT receives the model with the new points (COLMAP binary; ``--text``).
"""

from __future__ import annotations

import argparse

from ._stage_common import add_model_io_flags, run_on_model


def add_parser(sub) -> None:
    p = sub.add_parser("triangulate", help="triangulate points of a model whose camera poses are known",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_io_flags(p)
    p.add_argument("--no-refine-points", action="store_true", help="skip the bundle adjustment of the points")
    p.add_argument("--no-refine-keypoints", action="store_true",
                   help="skip the sub-pixel alignment of each track's patches (which reads the images)")
    p.set_defaults(func=run)


def run(args) -> int:
    import dataclasses

    from ..sfm.known_poses import triangulate_model

    rec, report = run_on_model(args, lambda model, features, verified, options: triangulate_model(
        model, features, verified, dataclasses.replace(options, refine_keypoints=not args.no_refine_keypoints),
        refine_points=not args.no_refine_points))
    print(f"triangulated {report.num_points} points ({report.num_observations} observations, mean reprojection "
          f"error {report.mean_reprojection_error_px:.3f} px) with the {rec.num_registered_images} poses of "
          f"{args.model} held fixed")
    return 0
