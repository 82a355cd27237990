"""``geomvision map PROJECT``: incremental mapping of a project's verified pairs into models
(COLMAP's ``mapper``; a thin layer over :func:`geomvision.sfm.map_project`).

Reads the features and ``verified.npz`` (``geomvision extract`` + ``match``), extracts and
matches nothing, and writes the results in the layout of ``geomvision sfm``: ``PROJECT/sparse/N``
(COLMAP), ``points.ply``, ``report.json``, ``plots/``; a rerun (other mapper options) replaces
them in one atomic step. The intrinsics are those ``match`` verified the pairs with (flags that
set them belong to ``match``).
"""

from __future__ import annotations

import argparse

from ._dataclass_args import add_dataclass_arguments, dataclass_from_args
from ._stage_common import (EXTRACT_FIELDS, MATCH_FIELDS, add_common_flags, call_with_warnings, project_dir,
                            refuse_flags_of)


def add_parser(sub) -> None:
    from ..sfm.options import SfmOptions

    p = sub.add_parser("map", help="build models from a project's verified pairs (after extract and match)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project", help="project folder (from geomvision extract and match)")
    add_common_flags(p, outputs=True)
    add_dataclass_arguments(p, SfmOptions, title="pipeline")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..sfm import SfmOptions, map_project
    from ..sfm.project import read_feature_index
    from .sfm import write_results
    from .sfm_outputs import check_output_dir, clean_staging

    refuse_flags_of(args, {"extract": EXTRACT_FIELDS, "match": MATCH_FIELDS})
    options = dataclass_from_args(SfmOptions, args)
    project = project_dir(args.project)
    read_feature_index(project)  # a folder without features fails before anything is written
    check_output_dir(project)
    clean_staging(project)
    result, caught = call_with_warnings(lambda: map_project(project, options, progress=not args.quiet),
                                        quiet_warnings=args.quiet)
    return write_results(result, caught, project, args, "map", str(project))
