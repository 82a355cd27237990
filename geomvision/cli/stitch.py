"""``geomvision stitch``: a panorama from images taken by a camera turning about its centre.

    geomvision stitch img1.jpg img2.jpg img3.jpg -o mosaic.png [--max-error 3] [--min-inliers 30]
        [--max-features 4000] [--no-feather] [--seed 0]

SIFT features, ratio-test matches between every pair, RANSAC homographies, then every image is
warped into the frame of the best-connected one and the overlaps are blended. Prints one line per
linked pair and the mosaic size; images that match nothing are reported and left out.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("stitch", help="stitch images of a rotating camera into a panorama (RANSAC homographies)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", help="two or more image files")
    p.add_argument("-o", "--output", required=True, help="mosaic image file to write (PNG, JPEG ...; atomic)")
    p.add_argument("--max-error", type=float, default=3.0, help="RANSAC inlier threshold in pixels (default 3)")
    p.add_argument("--min-inliers", type=int, default=30, help="inliers needed to link two images (default 30)")
    p.add_argument("--max-features", type=int, default=4000, help="SIFT features per image (default 4000)")
    p.add_argument("--no-feather", action="store_true", help="no blending: the first image covering a pixel wins")
    p.add_argument("--seed", type=int, default=0, help="RANSAC random seed (default 0)")
    p.set_defaults(func=run)


def write_image_atomic(image_rgb, path: str | os.PathLike) -> None:
    """Write an RGB uint8 image with OpenCV via a temporary file in the same folder
    (``(object, path)`` like every geomvision writer)."""
    import cv2

    from .._atomic import atomic_write_bytes
    from .._validation import check_writer_arguments

    check_writer_arguments(image_rgb, "write_image_atomic", "(image_rgb, path)")
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output folder {path.parent} does not exist")
    ext = path.suffix or ".png"
    ok, buf = cv2.imencode(ext, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"cannot encode an image as {ext!r}: choose .png, .jpg, .tif ...")
    atomic_write_bytes(path, buf.tobytes())


def check_output(output: str | os.PathLike, inputs: list[str]) -> None:
    """Refuse, before any work, an output that OpenCV cannot write or that is one of the inputs."""
    import cv2

    out = Path(output)
    if not out.parent.is_dir():
        raise ValueError(f"--output: folder {out.parent} does not exist")
    if not cv2.haveImageWriter(str(out)):
        raise ValueError(f"--output: cannot write an image as {out.suffix or '(no extension)'!r}; "
                         "use .png, .jpg, .tif ...")
    for path in inputs:
        if Path(path).exists() and out.exists() and os.path.samefile(path, out):
            raise ValueError(f"--output {output} is one of the input images: choose another file, "
                             "the panorama would overwrite the photo")


def run(args: argparse.Namespace) -> int:
    from ..imageio import read_image
    from ..stitching import StitchOptions, stitch

    if len(args.images) < 2:
        raise ValueError("give at least two images")
    check_output(args.output, args.images)
    options = StitchOptions(max_error=args.max_error, min_inliers=args.min_inliers,
                            max_features=args.max_features, feather=not args.no_feather)
    images = [read_image(p) for p in args.images]
    pano = stitch(images, options, rng=args.seed)
    names = [Path(p).name for p in args.images]
    for ln in pano.links:
        print(f"{names[ln.i]} -> {names[ln.j]}: {ln.num_inliers} inliers of {ln.num_matches} matches")
    for k in pano.skipped:
        print(f"skipped {names[k]}: no homography links it to the others")
    write_image_atomic(pano.image, args.output)
    h, w = pano.image.shape[:2]
    print(f"wrote {args.output}: {w}x{h} mosaic of {len(images) - len(pano.skipped)} images "
          f"in the frame of {names[pano.reference_idx]}")
    return 0
