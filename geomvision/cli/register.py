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

from ._stage_common import add_model_io_flags, run_on_model


def add_parser(sub) -> None:
    p = sub.add_parser("register", help="register new images into an existing model without rebuilding it",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_io_flags(p)
    p.add_argument("--images", nargs="+", metavar="NAME", help="the images to register (default: all the model lacks)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..sfm.registration import register_images

    rec, report = run_on_model(args, lambda model, features, verified, options: register_images(
        model, features, verified, options, names=args.images))
    print(f"registered {len(report.registered)} of {len(report.registered) + len(report.failed)} new images; the "
          f"model now has {rec.num_registered_images} images and {len(rec.points3D)} points")
    for name, why in report.failed.items():
        print(f"  not registered: {name}: {why}")
    return 0 if report.registered or not report.failed else 1
