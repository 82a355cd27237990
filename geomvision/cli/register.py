"""``geomvision register PROJECT --model MODEL -o OUT``: register new images into an existing
model without rebuilding it (COLMAP's ``image_registrator``; a thin layer over
:func:`geomvision.sfm.registration.register_images`).

MODEL was built from PROJECT (``geomvision map``); add the new images to the image folder, run
``geomvision extract`` and ``geomvision match`` on PROJECT again (only the new features and
pairs are computed), then ``register``: each new image gets an absolute pose against the model's
points, new points are triangulated and adjusted with it, and the model's own poses stay fixed.
``--images NAME ...`` registers only those. OUT receives the grown model (COLMAP binary; ``--text``).
"""

from __future__ import annotations

import argparse

from ._dataclass_args import add_dataclass_arguments, dataclass_from_args
from ._stage_common import add_model_io_flags, call_with_warnings, print_warnings, project_dir, write_model_summary


def add_parser(sub) -> None:
    from ..sfm.options import MapperOptions

    p = sub.add_parser("register", help="register new images into an existing model without rebuilding it",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_io_flags(p)
    p.add_argument("--images", nargs="+", metavar="NAME", help="the images to register (default: all the model lacks)")
    add_dataclass_arguments(p, MapperOptions, title="mapper")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..io import read_model
    from ..sfm import SfmOptions, load_features
    from ..sfm.options import MapperOptions
    from ..sfm.project import read_verified
    from ..sfm.registration import register_images

    options = SfmOptions(mapper=dataclass_from_args(MapperOptions, args))
    project = project_dir(args.project)
    model = read_model(args.model)
    (rec, report), caught = call_with_warnings(lambda: register_images(
        model, load_features(project), read_verified(project), options, names=args.images))
    print_warnings(caught)
    write_model_summary(rec, args)
    print(f"registered {len(report.registered)} of {len(report.registered) + len(report.failed)} new images; the "
          f"model now has {rec.num_registered_images} images and {len(rec.points3D)} points")
    for name, why in report.failed.items():
        print(f"  not registered: {name}: {why}")
    return 0 if report.registered or not report.failed else 1
