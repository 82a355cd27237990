"""``geomvision view``: look at a model in an open3d window, or render a screenshot headless.

    geomvision view MODEL                                   # window (needs a display)
    geomvision view MODEL --screenshot view.png [--width 1280 --height 960]
                          [--viewpoint top|side|first-camera] [--point-size 3] [--hide cameras,path]

MODEL is a COLMAP model folder (text or binary), an sfm output folder (its sparse/0 is shown) or
a .ply point cloud. Viewpoints: top looks down the scene's up direction (the cameras' mean -y
axis), side looks horizontally from the cameras' right, first-camera through the first
registered image. Window keys: P points, C cameras, L camera path, A axes, ] / [ point size,
1 / 2 / 3 top / side / first-camera view. Needs open3d: pip install 'geomvision[viz]'.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

_BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "grey": (0.5, 0.5, 0.5)}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("view", help="show a model (open3d window) or render a screenshot headless",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="COLMAP model folder, sfm output folder or .ply file")
    p.add_argument("--screenshot", metavar="PNG", help="render offscreen to this PNG instead of opening a window")
    p.add_argument("--width", type=int, default=None, help="image/window width in pixels (default 1280)")
    p.add_argument("--height", type=int, default=None, help="image/window height in pixels (default 960)")
    p.add_argument("--viewpoint", default="top", choices=["top", "side", "first-camera"],
                   help="screenshot viewpoint (default top)")
    p.add_argument("--point-size", type=float, default=None, help="point size in pixels (default 3, window 2)")
    p.add_argument("--hide", default="", help="comma-separated layers to hide: points, cameras, path, axes")
    p.add_argument("--background", default="white", choices=sorted(_BACKGROUNDS),
                   help="background colour (default white)")
    p.set_defaults(func=run)


def _layers(hide: str) -> tuple[str, ...]:
    from ..viz.scene import LAYERS

    hidden = [h.strip() for h in hide.split(",") if h.strip()]
    bad = [h for h in hidden if h not in LAYERS]
    if bad:
        raise ValueError(f"--hide: unknown layer(s) {', '.join(bad)}; choose from {', '.join(LAYERS)}")
    return tuple(n for n in LAYERS if n not in hidden)


def check_args(args: argparse.Namespace) -> None:
    """Refuse what open3d would abort on or what would be written wrongly, before any work:
    sizes outside the renderer's range, a screenshot that is not a .png in an existing folder,
    a point size that is not a positive number."""
    from ..viz.offscreen import MAX_SCREENSHOT_SIDE, MIN_SCREENSHOT_SIDE, check_screenshot_size

    for value, flag in ((args.width, "--width"), (args.height, "--height")):
        if value is not None and not MIN_SCREENSHOT_SIDE <= value <= MAX_SCREENSHOT_SIDE:
            raise ValueError(f"{flag} must be {MIN_SCREENSHOT_SIDE} to {MAX_SCREENSHOT_SIDE} pixels, got {value}")
    if args.width is not None and args.height is not None:
        check_screenshot_size(args.width, args.height, names=("--width", "--height"))
    if args.point_size is not None and not (math.isfinite(args.point_size) and args.point_size > 0):
        raise ValueError(f"--point-size must be a positive number of pixels, got {args.point_size}")
    if args.screenshot is not None:
        shot = Path(args.screenshot)
        if not args.screenshot.strip() or shot.suffix.lower() != ".png":
            raise ValueError(f"--screenshot {args.screenshot!r}: screenshots are written as PNG; "
                             "give a path ending in .png")
        folder = shot.parent
        if not folder.is_dir():
            raise ValueError(f"--screenshot {args.screenshot!r}: folder {str(folder)!r} does not exist; "
                             "create it first")


def run(args: argparse.Namespace) -> int:
    from ..viz.loading import load_model

    check_args(args)
    layers = _layers(args.hide)
    model = load_model(args.model)
    bg = _BACKGROUNDS[args.background]
    try:
        if args.screenshot:
            from ..viz.offscreen import save_screenshot

            kw = {} if args.point_size is None else {"point_size": args.point_size}
            shot = save_screenshot(model, args.screenshot, viewpoint=args.viewpoint, width=args.width,
                                   height=args.height, layers=layers, background=bg, **kw)
            h, w = shot.image.shape[:2]
            print(f"wrote {args.screenshot} ({w}x{h}, viewpoint {args.viewpoint}, {len(model.xyz)} points)")
        else:
            from ..viz.viewer import show

            show(model, point_size=args.point_size or 2.0, width=args.width or 1280, height=args.height or 960,
                 layers=layers, background=bg, window_name=f"geomvision: {model.name}")
    except (ImportError, RuntimeError) as exc:
        print(f"geomvision view: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    from .main import main

    sys.exit(main(["view", *sys.argv[1:]]))
