"""``geomvision import-features PROJECT --features features.h5 [--matches matches.h5] [--images DIR]``:
outside features and matches (hloc's HDF5 layout) into a project folder, in place of ``geomvision
extract`` (COLMAP's ``feature_importer`` + ``matches_importer``).

Then ``geomvision match PROJECT`` verifies the imported matches (``--matcher imported``, chosen by
default; with descriptors, the other matchers match them afresh) and ``geomvision map PROJECT``
builds the models. hloc's keypoints already put the centre of the top-left pixel at (0, 0), as
geomvision does: they are taken unchanged. ``--images`` (the folder the names are relative to)
gives the image sizes when the file lacks them, the point colours, and the images that ``map``'s
keypoint refinement reads (else pass ``--no-refine-keypoints`` to map).
"""

from __future__ import annotations

import argparse

from ._stage_common import add_common_flags, project_dir


def add_parser(sub) -> None:
    p = sub.add_parser("import-features", help="import hloc features.h5 / matches.h5 into a project folder",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project", help="project folder (created if missing)")
    p.add_argument("--features", required=True, help="hloc features file (keypoints, optional descriptors)")
    p.add_argument("--matches", help="hloc matches file (matches0 per pair)")
    p.add_argument("--images", help="folder of the images the names are relative to")
    add_common_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..io.hloc import read_hloc_features, read_hloc_matches
    from ..sfm.stage_import import import_features

    project = project_dir(args.project, must_exist=False)
    feats = read_hloc_features(args.features)
    names = list(feats)
    matches = None
    if args.matches:
        matches = read_hloc_matches(args.matches, names, {n: len(f.keypoints) for n, f in feats.items()})
    project.mkdir(parents=True, exist_ok=True)
    ex = import_features(
        project, {n: f.keypoints for n, f in feats.items()},
        descriptors={n: f.descriptors for n, f in feats.items()}, scales={n: f.scales for n, f in feats.items()},
        orientations_rad={n: f.orientations_rad for n, f in feats.items()},
        image_sizes={n: f.image_size for n, f in feats.items()}, matches=matches, image_dir=args.images,
        source=Path(args.features).name)
    n_kp = sum(len(f) for f in ex.features.values())
    desc = "with descriptors" if ex.has_descriptors else "without descriptors"
    print(f"imported {n_kp} keypoints of {len(names)} images ({desc})"
          + (f" and the matches of {len(matches)} pairs" if matches is not None else "") + f" into {project}")
    return 0
