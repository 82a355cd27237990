"""``geomvision`` command line: a thin layer over the library.

Each sub-command lives in its own module under ``geomvision.cli`` exposing
``add_parser(subparsers)`` (which registers its arguments and sets ``func``). Only the module of
the command being run is imported, so start-up stays fast and one command's import problem
never breaks the others.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

# command name -> (module defining add_parser(), one-line help for the command list)
COMMANDS: dict[str, tuple[str, str]] = {
    "sfm": ("geomvision.cli.sfm", "reconstruct cameras and sparse points from a folder of images"),
    "extract": ("geomvision.cli.extract", "extract features of a folder of images into a project folder"),
    "match": ("geomvision.cli.match", "match and verify image pairs of a project (after extract)"),
    "map": ("geomvision.cli.map", "build models from a project's verified pairs (after extract and match)"),
    "import-features": ("geomvision.cli.import_features", "import hloc features.h5 / matches.h5 into a project folder"),
    "triangulate": ("geomvision.cli.triangulate", "triangulate points of a model whose camera poses are known"),
    "register": ("geomvision.cli.register", "register new images into an existing model without rebuilding it"),
    "track": ("geomvision.cli.track", "track a frame sequence: a pose per frame, a TUM trajectory and a map"),
    "demo": ("geomvision.cli.demo", "render the built-in synthetic scene, reconstruct it and score it"),
    "ba": ("geomvision.cli.ba", "bundle-adjust a BAL problem"),
    "posegraph": ("geomvision.cli.posegraph", "optimise a g2o pose graph (SE3, SE2, Sim3)"),
    "view": ("geomvision.cli.view", "show a model in an open3d window, or save a screenshot"),
    "report": ("geomvision.cli.report", "write a self-contained HTML report of a model"),
    "stitch": ("geomvision.cli.stitch", "stitch overlapping images into a panorama"),
    "undistort": ("geomvision.cli.undistort", "undistorted images and a PINHOLE model (COLMAP's undistorter layout)"),
    "export": ("geomvision.cli.export", "write a model for nerfstudio, instant-ngp, NVM, Bundler, PLY or COLMAP text"),
    "warmup": ("geomvision.cli.warmup", "compile the numba kernels now (otherwise the first run does)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command`` only that sub-command's module is imported."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="geomvision",
        description="Classical multi-view geometry and Structure-from-Motion.",
    )
    parser.add_argument("--version", action="version", version=f"geomvision {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        if name == command:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    as_program = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return _interrupted(args.command, as_program)
    except (ValueError, OSError) as exc:
        # expected user errors: one line, non-zero exit
        print(f"geomvision {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from .._interrupt import is_interrupt

        if is_interrupt(exc):  # e.g. the SystemError a parallel numba kernel makes of Ctrl-C
            return _interrupted(args.command, as_program)
        raise


def _interrupted(command: str, as_program: bool) -> int:
    if as_program:  # exiting anyway: a further Ctrl-C must not turn exit 130 into a death by SIGINT
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    # sfm keeps the features and matches done so far in OUT/cache; --resume continues from them
    hint = {"sfm": "; rerun with --resume", "extract": "; rerun it to continue"}.get(command, "")
    print(f"geomvision {command}: interrupted{hint}", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
