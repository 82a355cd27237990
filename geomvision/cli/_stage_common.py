"""What the stage commands (``extract``, ``match``, ``map``, ``import-features``, ``triangulate``,
``register``) share: the common flags, running a library call with its warnings printed, and
the project folder argument."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def add_common_flags(p, *, outputs: bool = False) -> None:
    """``-q`` (and, for commands that write a model like ``sfm``: ``--text``, ``--no-plots``)."""
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    if outputs:
        p.add_argument("--text", action="store_true", help="also write the models as COLMAP text (sparse/N/text/)")
        p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def project_dir(text: str, *, must_exist: bool = True) -> Path:
    """The PROJECT argument as a folder (one clear error when it is empty or missing)."""
    if not text.strip():
        raise ValueError("PROJECT is an empty path: give the project folder ('.' for the current folder)")
    path = Path(text)
    if must_exist and not path.is_dir():
        raise FileNotFoundError(f"project folder {path} does not exist: create it with `geomvision extract IMAGES -o "
                                f"{path}`")
    return path


# which stage uses which SfmOptions fields (paths of the flags' dataclass fields); a flag given to
# a stage that does not use it is refused rather than silently ignored
EXTRACT_FIELDS = (("features",),)
MATCH_FIELDS = (("matching",), ("verification",), ("camera", "camera_model"), ("camera", "K"),
                ("camera", "single_camera"), ("matcher",), ("pairs",), ("sequential_window",), ("loop_detection",),
                ("loop_candidates",), ("exhaustive_max_images",), ("retrieval_num_neighbors",),
                ("spatial_num_neighbors",), ("spatial_max_distance",), ("spatial_ignore_altitude",),
                ("spatial_retrieval_neighbors",))
MAP_FIELDS = (("mapper",), ("keypoint_refinement",), ("refine_keypoints",), ("camera", "refine_known_intrinsics"),
              ("camera", "refine_focal_length"), ("camera", "refine_principal_point"),
              ("camera", "refine_extra_params"))


def refuse_flags_of(args, stages: dict[str, tuple]) -> None:
    """``ValueError`` for a flag the user gave whose field belongs to another stage
    (``stages``: command -> field paths, e.g. ``{"match": MATCH_FIELDS}``)."""
    for key in vars(args):
        if not key.startswith("opt__"):
            continue
        path = tuple(key[5:].split("__"))
        for owner, fields in stages.items():
            if any(path[: len(f)] == f for f in fields):
                flag = "--" + (path[-1] if path[-1].isupper() else path[-1].replace("_", "-"))
                raise ValueError(f"{flag} is an option of `geomvision {owner}`, which this stage does not redo: "
                                 "pass it there (then rerun the stages after it)")


def call_with_warnings(fn: Callable[[], T], *, quiet_warnings: bool = False) -> tuple[T, list]:
    """Run ``fn()`` with the kernels compiled first and Ctrl-C deferred to a safe point; the
    SfM warnings it gives are returned (printed at once when ``fn`` raises)."""
    from .._interrupt import deferred
    from .._warmup import ensure_compiled
    from ..sfm import SfmWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SfmWarning)
        try:
            with deferred():
                ensure_compiled(progress=not quiet_warnings)
                result = fn()
        except (ValueError, OSError):
            print_warnings(caught)
            raise
    return result, list(caught)


def print_warnings(caught) -> None:
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)


def add_model_io_flags(p) -> None:
    """PROJECT, ``--model`` (a COLMAP model to start from), ``-o``, ``--text`` and the mapper's
    flags: what the known-poses commands (``triangulate``, ``register``) share."""
    from ..sfm.options import MapperOptions
    from ._dataclass_args import add_dataclass_arguments

    p.add_argument("project", help="project folder with the features and verified pairs (extract + match)")
    p.add_argument("--model", required=True, help="COLMAP model folder (cameras, images[, points3D])")
    p.add_argument("-o", "--output", required=True, help="folder for the resulting COLMAP model")
    p.add_argument("--text", action="store_true", help="write COLMAP text instead of binary")
    add_dataclass_arguments(p, MapperOptions, title="mapper")


def run_on_model(args, fn):
    """``fn(model, features, verified, options) -> (Reconstruction, report)`` on ``--model`` and
    the project's features and verified pairs; writes the resulting model into ``-o`` (COLMAP
    binary, or text with ``--text``) and returns ``(rec, report)``."""
    from ..io import read_model, write_model
    from ..sfm import SfmOptions, load_features
    from ..sfm.options import MapperOptions
    from ..sfm.project import read_verified
    from ._dataclass_args import dataclass_from_args

    options = SfmOptions(mapper=dataclass_from_args(MapperOptions, args))
    project = project_dir(args.project)
    model = read_model(args.model)
    (rec, report), caught = call_with_warnings(
        lambda: fn(model, load_features(project), read_verified(project), options))
    print_warnings(caught)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    write_model(rec, out, binary=not args.text)
    return rec, report
