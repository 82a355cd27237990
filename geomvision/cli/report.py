"""``geomvision report``: one self-contained HTML page about a reconstruction.

    geomvision report MODEL -o DIR [--images IMAGES_DIR] [--no-screenshots] [--title TEXT]

MODEL is a COLMAP model folder, an sfm output folder (sparse/0 and report.json are used) or a
.ply file. Writes DIR/report.html with the summary numbers, screenshots (when open3d can
render here), reprojection-error, track-length and observations-per-image plots, top and side
views, and, when the images are found (--images, or the folder report.json names), the matches
and epipolar lines of the two images sharing the most points. Prints the page's path.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("report", help="write a self-contained HTML report (plots, numbers, screenshots)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="COLMAP model folder, sfm output folder or .ply file")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for report.html (created)")
    p.add_argument("--images", metavar="DIR", help="folder holding the model's images (for the two-view figures)")
    p.add_argument("--no-screenshots", action="store_true", help="skip the offscreen renders")
    p.add_argument("--title", help="page title (default: geomvision report: MODEL)")
    p.add_argument("--width", type=int, default=1024, help="screenshot width (default 1024)")
    p.add_argument("--height", type=int, default=768, help="screenshot height (default 768)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..viz.report import write_report

    path = write_report(args.model, args.output, images_dir=args.images, screenshots=not args.no_screenshots,
                        title=args.title, width=args.width, height=args.height)
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    from .main import main

    sys.exit(main(["report", *sys.argv[1:]]))
