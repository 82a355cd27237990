"""``geomvision triangulate PROJECT --model MODEL -o OUT``: 3-D points from known camera poses
(COLMAP's ``point_triangulator``; a thin layer over :func:`geomvision.sfm.known_poses.triangulate_model`).

MODEL is a COLMAP model (binary or text) whose images carry the poses and cameras to keep
(its own points are not used); PROJECT holds the features and verified pairs of the same images
(``geomvision extract IMAGES -o PROJECT`` and ``geomvision match PROJECT``; names as in MODEL).
The poses and intrinsics stay fixed; ``--no-refine-points`` skips the bundle adjustment that
moves only the points. OUT receives the model with the new points (COLMAP binary; ``--text``).
"""

from __future__ import annotations

import argparse

from ._dataclass_args import add_dataclass_arguments, dataclass_from_args
from ._stage_common import add_model_io_flags, call_with_warnings, print_warnings, project_dir, write_model_summary


def add_parser(sub) -> None:
    from ..sfm.options import MapperOptions

    p = sub.add_parser("triangulate", help="triangulate points of a model whose camera poses are known",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_io_flags(p)
    p.add_argument("--no-refine-points", action="store_true", help="skip the bundle adjustment of the points")
    add_dataclass_arguments(p, MapperOptions, title="mapper")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..io import read_model
    from ..sfm import SfmOptions, load_features
    from ..sfm.known_poses import triangulate_model
    from ..sfm.options import MapperOptions
    from ..sfm.project import read_verified

    options = SfmOptions(mapper=dataclass_from_args(MapperOptions, args))
    project = project_dir(args.project)
    model = read_model(args.model)
    (rec, report), caught = call_with_warnings(lambda: triangulate_model(
        model, load_features(project), read_verified(project), options, refine_points=not args.no_refine_points))
    print_warnings(caught)
    write_model_summary(rec, args)
    print(f"triangulated {report.num_points} points ({report.num_observations} observations, mean reprojection "
          f"error {report.mean_reprojection_error_px:.3f} px) with the {rec.num_registered_images} poses of "
          f"{args.model} held fixed")
    return 0
