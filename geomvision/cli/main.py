"""``geomvision`` command line: a thin layer over the library.

Each sub-command lives in its own module under ``geomvision.cli`` exposing
``add_parser(subparsers)`` (which registers its arguments and sets ``func``) ; modules are
imported only when their command is listed here, so start-up stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command name -> module defining add_parser()
COMMANDS: dict[str, str] = {
    "ba": "geomvision.cli.ba",
    "view": "geomvision.cli.view",
    "report": "geomvision.cli.report",
    "stitch": "geomvision.cli.stitch",
}


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="geomvision",
        description="Classical multi-view geometry and Structure-from-Motion.",
    )
    parser.add_argument("--version", action="version", version=f"geomvision {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in COMMANDS.items():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("geomvision: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError, OSError) as exc:
        # expected user errors: one line, non-zero exit (use -v in a command for details)
        print(f"geomvision {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
