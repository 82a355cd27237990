"""``geomvision warmup``: compile the numba kernels now, on every core, with progress.

``sfm`` and ``demo`` do this by themselves on their first run ("compiling kernels (first run
only)"); ``scripts/setup.sh`` runs it at install time. It does nothing when the kernel cache is
already complete for the installed sources, unless ``--force``. See ``geomvision._warmup``.
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("warmup", help="compile the numba kernels now (otherwise the first run does)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--force", action="store_true", help="compile even if the cache looks complete")
    p.add_argument("-j", "--processes", type=int, default=None,
                   help="worker processes (default: the number of cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="list the seconds each step took")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    from .. import _warmup
    from .._interrupt import deferred

    if args.processes is not None and args.processes < 1:
        raise ValueError(f"--processes must be >= 1, got {args.processes}")
    if not args.force and _warmup.is_warm():
        print("kernels already compiled", file=sys.stderr)
        return 0
    with deferred():
        timings = _warmup.warm_up(processes=args.processes, progress=not args.quiet)
    print(f"compiled kernels in {timings['total']:.0f} s", file=sys.stderr)
    if args.verbose:
        for name, secs in timings.items():
            if name not in ("total", "failures"):
                print(f"  {secs:6.1f} s  {name}", file=sys.stderr)
    for name, err in timings["failures"].items():
        print(f"warning: {name}: {err} (its kernels compile on first use)", file=sys.stderr)
    return 0
