"""``geomvision extract IMAGES -o PROJECT``: features of every image into a project folder
(COLMAP's ``feature_extractor``; a thin layer over :func:`geomvision.sfm.extract_features`).

Writes ``PROJECT/features.json`` (the images and their feature cache keys) and the features into
``PROJECT/cache``, keyed by image content and options: a rerun (after an interrupt, or with more
images) extracts only what is missing. Then ``geomvision match PROJECT`` and ``geomvision map
PROJECT``.
"""

from __future__ import annotations

import argparse
import time

from ._dataclass_args import add_dataclass_arguments, dataclass_from_args
from ._stage_common import add_common_flags, call_with_warnings, print_warnings, project_dir


def add_parser(sub) -> None:
    from ..features.options import FeatureOptions

    p = sub.add_parser("extract", help="extract features of a folder of images into a project folder",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", help="folder of images")
    p.add_argument("-o", "--output", required=True, help="project folder (created if missing)")
    p.add_argument("--num-threads", type=int, default=2, help="images processed at once (default: 2)")
    add_common_flags(p)
    add_dataclass_arguments(p, FeatureOptions, title="features")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..features.options import FeatureOptions
    from ..sfm import SfmOptions, extract_features

    options = SfmOptions(features=dataclass_from_args(FeatureOptions, args), num_threads=args.num_threads)
    project = project_dir(args.output, must_exist=False)
    t0 = time.perf_counter()
    ex, caught = call_with_warnings(lambda: extract_features(args.images, project, options, progress=not args.quiet),
                                    quiet_warnings=args.quiet)
    print_warnings(caught)
    n = len(ex.features)
    print(f"features of {n} images ({ex.num_cached} from the cache, {n - ex.num_cached} extracted, "
          f"{len(ex.skipped)} files skipped) in {project}/features.json ({time.perf_counter() - t0:.1f} s)")
    return 0
