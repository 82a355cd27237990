"""``geomvision sfm IMAGES -o OUT``: incremental Structure-from-Motion (a thin layer over ``run_sfm``).

Every field of :class:`geomvision.sfm.SfmOptions` is a flag (``--max-num-features``,
``--camera-model``, ``--K``, ``--matcher`` ...). ``OUT`` is a project folder: ``sfm`` runs
``geomvision extract``, ``match`` and ``map`` in one go, so ``match OUT`` / ``map OUT`` can rerun a
stage alone afterwards. Features and raw matches are cached in ``OUT/cache`` keyed by image
content and options. An output folder that already holds results
is only reused with ``--resume`` (continue: reuse its cache) or ``--overwrite`` (start afresh); one
that holds only the cache of a run that built nothing is reused as it is (the cache is keyed by
content and options, so a corrected rerun can never pick up wrong entries). Arguments are
checked before any work or output, so a mistyped flag leaves nothing behind.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

from ._dataclass_args import add_dataclass_arguments, dataclass_from_args


def add_parser(sub) -> None:
    from ..sfm.options import SfmOptions

    p = sub.add_parser("sfm", help="reconstruct cameras and sparse points from a folder of images",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", help="folder of images")
    p.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    p.add_argument("--text", action="store_true", help="also write the models as COLMAP text (sparse/N/text/)")
    p.add_argument("--resume", action="store_true", help="continue an earlier (interrupted) run in OUTPUT")
    p.add_argument("--overwrite", action="store_true", help="discard an earlier run in OUTPUT and start afresh")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="log every mapping step")
    add_dataclass_arguments(p, SfmOptions, title="pipeline")
    p.set_defaults(func=run)


def prepare_output(out: Path, resume: bool, overwrite: bool) -> Path:
    """Check OUTPUT and decide what to do with an earlier run there; returns the cache folder."""
    from .sfm_outputs import check_output_dir, clean_staging

    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    check_output_dir(out)
    if _holds_results_beyond_cache(out) and not (resume or overwrite):
        raise ValueError(f"{out} already holds a geomvision run: pass --resume to continue it, "
                         "--overwrite to replace it, or choose another folder")
    clean_staging(out)
    if overwrite:
        from ..sfm.project import STAGE_FILES

        shutil.rmtree(out / "cache", ignore_errors=True)
        for name in STAGE_FILES:
            (out / name).unlink(missing_ok=True)
    return out / "cache"


def _holds_results_beyond_cache(out: Path) -> bool:
    """Results (a model, a report) of an earlier run; a cache alone (a run that failed or was
    interrupted before writing anything) does not count: it is reused, never trusted blindly."""
    from .sfm_outputs import CURRENT, RESULT_NAMES

    return any(os.path.lexists(out / name) for name in (*RESULT_NAMES, CURRENT))


def summary_lines(result, out: Path, command: str = "sfm") -> list[str]:
    """The terminal summary of a run: models, the matcher, the images not registered, where the
    results are (``command`` ``map`` matched nothing: its matcher is the one ``match`` chose)."""
    rep = result.report
    lines = [f"registered {rep['num_registered_images']} of {rep['num_readable_images']} images "
             f"in {len(result.reconstructions)} model(s) ({rep['timings_s']['total']:.1f} s)"]
    lines.append(f"  matcher {rep['matcher']}" + (f" ({matcher_reason(rep)})" if command == "sfm" else ""))
    for m in rep["models"]:
        lines.append(f"  model {m['index']}: {m['num_registered_images']} images, {m['num_points3D']} points, "
                     f"mean reprojection error {m['mean_reprojection_error_px']:.3f} px")
    failed = {n: v["reason"] for n, v in rep["images"].items() if not v["registered"]}
    for n, why in list(failed.items())[:10]:
        lines.append(f"  not registered: {n}: {why}")
    if len(failed) > 10:
        lines.append(f"  ... and {len(failed) - 10} more (see report.json)")
    if rep["skipped_files"]:
        lines.append(f"  skipped {len(rep['skipped_files'])} file(s) that are not readable images (see report.json)")
    lines.append(f"results in {out}/ (sparse/0, points.ply, report.json)")
    return lines


def matcher_reason(rep: dict) -> str:
    """Why the run's matcher ran: given by ``--matcher``, or what ``--matcher auto`` saw."""
    if rep.get("matcher_reason"):  # said by pair selection (older reports: worked out below)
        return rep["matcher_reason"]
    opts, chosen, n = rep["options"], rep["matcher"], rep["num_readable_images"]
    if opts["matcher"] != "auto":
        return "given by --matcher"
    limit = f"--exhaustive-max-images {opts['exhaustive_max_images']}"
    above = f"auto: {n} images > {limit}"
    why = {"pairs-file": "auto: --pairs given",
           "imported": "auto: the project holds imported matches",
           "exhaustive": f"auto: {n} images <= {limit}",
           "sequential": f"{above}, the names number the frames of a sequence",
           "sequential+retrieval": f"{above}, the names number the frames of a sequence; loop candidates by retrieval",
           "retrieval": f"{above}, the names are not a numbered sequence"}
    return why.get(chosen, "auto")


def check_K_early(K_spec: str, files: list[Path]) -> None:
    """Parse ``--K`` and check it against the size of the first readable image (read from its
    header), so that an impossible K fails before any work or output; ``run_sfm`` checks it
    against every image size again."""
    from ..imageio import image_size
    from ..sfm.intrinsics import check_K_for_image, parse_K

    K = parse_K(K_spec)
    for path in files:
        try:
            width, height = image_size(path)
        except (OSError, ValueError):
            continue  # not an image: skipped later, with a reason
        check_K_for_image(K, width, height)
        return


def check_camera_model(model: str | None) -> None:
    """``--camera-model`` must be a model COLMAP can store: sfm writes COLMAP models."""
    from ..geometry.camera import CAMERA_MODELS

    if model is None:
        return
    writable = ", ".join(n for n, i in CAMERA_MODELS.items() if i.colmap_id is not None)
    if str(model).upper() not in CAMERA_MODELS:  # any case, as CameraOptions accepts
        raise ValueError(f"--camera-model: unknown model {model!r}; choose one of {writable}")
    if CAMERA_MODELS[str(model).upper()].colmap_id is None:
        raise ValueError(f"--camera-model {model}: the results are written as a COLMAP model and COLMAP has no "
                         f"{model} model (it cannot store skew); choose one of {writable}")


def check_model_size(files: list[Path], min_model_size: int, images: str) -> None:
    """Refuse up front when the folder has too few images for any model of ``--min-model-size``
    images (when every file is named like an image; other files may still be images, and the
    pipeline then says which ones were skipped and why)."""
    from ..imageio import IMAGE_EXTENSIONS

    n = len(files)
    if 2 <= n < min_model_size and all(p.suffix.lower() in IMAGE_EXTENSIONS for p in files):
        raise ValueError(f"{images} holds {n} images, but a model needs --min-model-size {min_model_size} of them: "
                         f"add images, or pass --min-model-size {n} to keep a model of {n} images")


def check_args(args, options) -> list[Path]:
    """Everything that can be checked before any work or output (so that a mistake leaves no
    folder or cache behind); returns the files of the image folder."""
    from ..sfm import list_images

    if not args.images.strip():
        raise ValueError("IMAGES is an empty path: give the folder of images ('.' for the current folder)")
    if not args.output.strip():
        raise ValueError("-o/--output is an empty path: give the output folder ('.' for the current folder)")
    files = list_images(args.images)  # a missing or empty folder fails before anything is written
    if options.camera.K is not None:
        check_K_early(options.camera.K, files)
    check_model_size(files, options.mapper.min_model_size, args.images)
    return files


def no_model_reason(report: dict) -> str:
    """Why no model was built, in one line, from a run's report (with the fix where there is one)."""
    if report.get("failure"):
        return report["failure"]
    min_size = report.get("options", {}).get("mapper", {}).get("min_model_size")
    reasons = [v["reason"] for v in report["images"].values() if not v["registered"]]
    n_small = sum(r.startswith("its model was too small") for r in reasons)
    configs = report.get("pair_configs", {})
    n_verified, n_pairs = report.get("num_pairs_verified", 0), report.get("num_pairs_matched", 0)
    hints = []
    if n_small:
        size = f" --min-model-size {min_size}" if min_size else " --min-model-size"
        hints.append(f"{n_small} images were registered, but only in models smaller than{size} images "
                     "(add overlapping images, or pass --min-model-size 2 to keep smaller models)")
    elif n_verified == 0:
        hints.append(f"none of the {n_pairs} matched image pairs passed geometric verification: the images do "
                     "not overlap enough (or show too little texture) for a reconstruction")
    elif reasons:
        common = max(set(reasons), key=reasons.count)
        hints.append(f"no image pair could start a model ({reasons.count(common)} of {len(reasons)} images: {common})")
    tilt = report.get("options", {}).get("features", {}).get("affine_max_tilt", 0) or 0
    if tilt <= 1 and n_pairs and n_verified < 0.5 * n_pairs:
        hints.append(f"only {n_verified} of the {n_pairs} matched pairs verified: where the views are far apart "
                     "(a hand-held walk round an object), affine-simulated SIFT matches across them "
                     "(--affine-max-tilt 4 --max-num-features 40000; desk-loop: 0 -> 9 of 10 frames)")
    if configs.get("panoramic"):
        hints.append(f"{configs['panoramic']} of the {n_verified} verified pairs are panoramic (the camera only "
                     "rotated between them): for a panorama use `geomvision stitch`")
    return "; ".join(hints) or "no image could be registered"


def run(args) -> int:
    from .._interrupt import deferred
    from .._warmup import ensure_compiled
    from ..sfm import SfmOptions, SfmWarning, run_sfm

    check_camera_model(getattr(args, "opt__camera__camera_model", None))  # before the options list every model
    options = dataclass_from_args(SfmOptions, args)
    check_args(args, options)
    out = Path(args.output)
    created = not out.exists()
    cache = prepare_output(out, args.resume, args.overwrite)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        logging.getLogger("geomvision").setLevel(logging.INFO)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SfmWarning)
        try:
            with deferred():  # Ctrl-C stops at the next safe point (between kernel chunks, images, pairs)
                ensure_compiled(progress=not args.quiet)  # first run: "compiling kernels (first run only)"
                result = run_sfm(args.images, options, cache_dir=cache, project=out, progress=not args.quiet)
        except (ValueError, OSError):
            # e.g. too few readable images: say which files were skipped and why, and leave no
            # folder behind that this run created (an interrupt keeps it, for --resume)
            for w in caught:
                print(f"warning: {w.message}", file=sys.stderr)
            if created:
                shutil.rmtree(out, ignore_errors=True)
            raise
    code = write_results(result, caught, out, args, "sfm", args.images)
    logging.getLogger("geomvision").info("done in %.1f s", time.perf_counter() - t0)
    return code


def write_results(result, caught, out: Path, args, command: str, source: str) -> int:
    """Print the warnings ``caught`` during the run, write its outputs into ``out`` and print the
    summary (or the reason no model was built: exit code 1). Shared by ``sfm`` and ``map``."""
    from .sfm_outputs import write_outputs

    failure = result.report.get("failure")
    for w in caught:
        if str(w.message) != failure:  # the reason no model was built is the error below
            print(f"warning: {w.message}", file=sys.stderr)
    if not result.reconstructions:
        write_outputs(result, out, text=args.text, plots=False)
        why = failure or f"no model could be built from {source}: {no_model_reason(result.report)}"
        print(f"geomvision {command}: error: {why} (details in {out}/report.json)", file=sys.stderr)
        return 1
    write_outputs(result, out, text=args.text, plots=not args.no_plots)
    for line in summary_lines(result, out, command):
        print(line)
    return 0
