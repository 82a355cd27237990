"""``geomvision sfm IMAGES -o OUT``: incremental Structure-from-Motion (a thin layer over ``run_sfm``).

Every field of :class:`geomvision.sfm.SfmOptions` is a flag (``--max-num-features``,
``--camera-model``, ``--K``, ``--matcher`` ...). Features, matches and verified pairs are cached in
``OUT/cache`` keyed by image content and options. An output folder that already holds a run is
only reused with ``--resume`` (continue: reuse its cache) or ``--overwrite`` (start afresh).
"""

from __future__ import annotations

import argparse
import logging
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
    from .sfm_outputs import check_output_dir, clean_staging, holds_results

    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    check_output_dir(out)
    if holds_results(out) and not (resume or overwrite):
        raise ValueError(f"{out} already holds a geomvision run: pass --resume to continue it, "
                         "--overwrite to replace it, or choose another folder")
    clean_staging(out)
    if overwrite:
        shutil.rmtree(out / "cache", ignore_errors=True)
    return out / "cache"


def summary_lines(result, out: Path) -> list[str]:
    rep = result.report
    lines = [f"registered {rep['num_registered_images']} of {rep['num_readable_images']} images "
             f"in {len(result.reconstructions)} model(s) ({rep['timings_s']['total']:.1f} s)"]
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


def run(args) -> int:
    from ..sfm import SfmOptions, SfmWarning, list_images, run_sfm
    from .sfm_outputs import write_outputs

    options = dataclass_from_args(SfmOptions, args)
    files = list_images(args.images)  # a missing or empty folder fails before anything is written
    if options.camera.K is not None:
        check_K_early(options.camera.K, files)
    out = Path(args.output)
    cache = prepare_output(out, args.resume, args.overwrite)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
        logging.getLogger("geomvision").setLevel(logging.INFO)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SfmWarning)
        result = run_sfm(args.images, options, cache_dir=cache, progress=not args.quiet)
    failure = result.report.get("failure")
    for w in caught:
        if str(w.message) != failure:  # the reason no model was built is the error below
            print(f"warning: {w.message}", file=sys.stderr)
    if not result.reconstructions:
        write_outputs(result, out, text=args.text, plots=False)
        why = failure or f"no model could be built from {args.images}"
        print(f"geomvision sfm: error: {why} (details in {out}/report.json)", file=sys.stderr)
        return 1
    write_outputs(result, out, text=args.text, plots=not args.no_plots)
    for line in summary_lines(result, out):
        print(line)
    logging.getLogger("geomvision").info("done in %.1f s", time.perf_counter() - t0)
    return 0
