"""``geomvision match PROJECT``: choose image pairs, match and verify them (COLMAP's
``exhaustive_matcher`` / ``sequential_matcher`` / ``vocab_tree_matcher`` / ``spatial_matcher`` /
``matches_importer``;
a thin layer over :func:`geomvision.sfm.match_and_verify`).

Reads the features of ``geomvision extract`` (or ``import-features``) from PROJECT, never
extracting again; writes ``PROJECT/verified.npz``. ``--matcher
exhaustive|sequential|retrieval|spatial`` chooses the pairs (spatial: by EXIF GPS position), ``--matcher pairs-file --pairs FILE`` takes them from a file (one
``name1 name2`` per line), ``--matcher imported`` (the default when the project holds imported
matches) verifies the imported matches. Raw matches are cached by descriptor content, so a rerun
with another matcher matches only the pairs not seen before. The intrinsics start here (``--K``,
``--camera-model``, ``--single-camera``): ``map`` uses those the pairs were verified with.
"""

from __future__ import annotations

import argparse
import time

from ._dataclass_args import add_dataclass_arguments, dataclass_from_args
from ._stage_common import (EXTRACT_FIELDS, MAP_FIELDS, add_common_flags, call_with_warnings, print_warnings,
                            project_dir, refuse_flags_of)


def add_parser(sub) -> None:
    from ..sfm.options import SfmOptions

    p = sub.add_parser("match", help="match and verify image pairs of a project (after extract)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project", help="project folder (from geomvision extract)")
    add_common_flags(p)
    add_dataclass_arguments(p, SfmOptions, title="pipeline")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..sfm import SfmOptions, match_and_verify
    from .sfm import check_camera_model

    refuse_flags_of(args, {"extract": EXTRACT_FIELDS, "map": MAP_FIELDS})
    check_camera_model(getattr(args, "opt__camera__camera_model", None))
    options = dataclass_from_args(SfmOptions, args)
    project = project_dir(args.project)
    t0 = time.perf_counter()
    verified, caught = call_with_warnings(lambda: match_and_verify(project, options, progress=not args.quiet),
                                          quiet_warnings=args.quiet)
    print_warnings(caught)
    g = verified.geometries
    n_ok = sum(v.verified for v in g.values())
    print(f"matcher {verified.matcher}: {len(g)} pairs matched, {n_ok} verified, in {project}/verified.npz "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0
