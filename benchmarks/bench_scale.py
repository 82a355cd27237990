"""Scale: run_sfm on rendered sets of growing size (unordered names), time and memory per stage,
accuracy, the growth exponent of each stage, pycolmap side by side, and the Dask path.

Each set is a walk once round the demo scene (``render_walk(N, arc_deg=360)``, exact poses) at
320x240, written as PNG under random hex names (no running number, no order to exploit), so
``--matcher auto`` takes retrieval pairs above the exhaustive limit (100 images). Each run is a
fresh subprocess (peak memory is its own; an empty feature cache; numba kernels warmed first):

- geomvision ``run_sfm`` with the known K, defaults otherwise;
- geomvision on a local Dask cluster of 2 worker processes (``SfmOptions(workers=2)``) at the
  smallest size: its model must be the local one (same registered images, same poses);
- pycolmap (``--pycolmap``; exhaustive matching, no vocabulary tree here) up to ``--pycolmap-max``.

Scoring: mean camera-centre error after a similarity alignment to the truth; the growth
exponent of a stage between two sizes is log(t2 / t1) / log(n2 / n1).

    .venv/bin/python benchmarks/bench_scale.py [--sizes 100 300] [--pycolmap] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _workers import peak_rss_mb
from _workers import run_ours_timed, run_pycolmap_known_K
from _workers import spawn as _spawn
from bench_sfm import _score

WIDTH, HEIGHT = 320, 240


def render_set(n: int, out: Path) -> None:
    """The walk of ``n`` frames in the Strecha layout with shuffled names."""
    from geomvision.synthetic import RenderedViews, render_walk, write_strecha_layout

    views = render_walk(n, width=WIDTH, height=HEIGHT, arc_deg=360.0)
    gen = np.random.default_rng(n)  # random hex names: no running number, no order (auto takes retrieval)
    names = [f"{gen.bytes(6).hex()}.png" for _ in range(n)]
    if len(set(names)) < n:
        raise RuntimeError("name collision")
    write_strecha_layout(RenderedViews(views.images, views.camera, views.cams_from_world, names), out,
                         source=f"benchmarks/bench_scale.py: render_walk({n}, arc_deg=360), shuffled names")


def worker_ours(scene: Path, workers: int) -> dict:
    from geomvision.sfm import CameraOptions, SfmOptions

    res, wall, poses = run_ours_timed(scene / "images", SfmOptions(camera=CameraOptions(K=str(scene / "K.txt")),
                                                                   workers=workers))
    t = res.report["timings_s"]
    stages = {"features": t["features"], "pairs+matching": t["pair_selection"] + t["matching"],
              "verification": t["verification"], "refinement+mapping": t["keypoint_refinement"] + t["mapping"]}
    return {"wall_s": wall, "stages": stages, "poses": poses, "matcher": res.report["matcher"],
            "pairs": res.report["num_pairs_matched"], "models": len(res.reconstructions)}


def worker_pycolmap(scene: Path, workers: int) -> dict:
    K = np.loadtxt(scene / "K.txt")
    out = run_pycolmap_known_K(str(scene / "images"), (K[0, 0], K[1, 1], K[0, 2], K[1, 2]), 2)
    return {k: out[k] for k in ("wall_s", "stages", "poses")}


def run_worker(args) -> int:
    scene = Path(args.scene)
    out = (worker_ours if args.worker == "ours" else worker_pycolmap)(scene, args.workers)
    poses = out.pop("poses")
    out["score"] = _score(scene, poses)
    out["poses"] = poses
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out))
    return 0


def spawn(kind: str, scene: Path, workers: int = 0) -> dict:
    return _spawn(__file__, ["--worker", kind, "--scene", str(scene), "--workers", str(workers)],
                  f"{kind} on {scene.name}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--pycolmap", action="store_true", help="run pycolmap too (exhaustive matching)")
    ap.add_argument("--pycolmap-max", type=int, default=300)
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", choices=("ours", "pycolmap"), help=argparse.SUPPRESS)
    ap.add_argument("--scene", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return run_worker(args)
    from bench_sfm import warm_up_jit

    print(f"JIT warm-up (not timed): {warm_up_jit():.1f} s", flush=True)
    rows: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted(args.sizes):
            scene = Path(tmp) / f"walk{n}"
            t0 = time.perf_counter()
            render_set(n, scene)
            print(f"{n} images rendered in {time.perf_counter() - t0:.0f} s", flush=True)
            kinds = [("ours", 0)]
            if not args.no_dask and n == min(args.sizes):
                kinds.append(("ours", 2))
            if args.pycolmap and n <= args.pycolmap_max:
                kinds.append(("pycolmap", 0))
            for kind, workers in kinds:
                r = spawn(kind, scene, workers)
                rows[(n, kind, workers)] = r
                label = kind + (f" (Dask, {workers} workers)" if workers else "")
                print(f"  n={n:5d} {label:28s} {r['wall_s']:7.1f} s  "
                      + "  ".join(f"{k} {v:6.1f}" for k, v in r["stages"].items())
                      + f"  peak {r['peak_rss_mb']:6.0f} MB  centre err {r['score']['mean_center_error_mm']:.2f} mm "
                      f"({r['score']['registered']}/{r['score']['num_images']})"
                      + (f"  {r['matcher']}, {r['pairs']} pairs, {r['models']} models" if kind == "ours" else ""),
                      flush=True)
            if (n, "ours", 2) in rows:
                a, b = rows[(n, "ours", 0)]["poses"], rows[(n, "ours", 2)]["poses"]
                same = a.keys() == b.keys() and all(np.allclose(np.array(a[k][0]), np.array(b[k][0]), atol=1e-9)
                                                    and np.allclose(a[k][1], b[k][1], atol=1e-9) for k in a)
                print(f"  Dask model identical to the local one: {same}", flush=True)
    sizes = sorted(args.sizes)
    for n0, n1 in zip(sizes, sizes[1:]):
        a, b = rows[(n0, "ours", 0)], rows[(n1, "ours", 0)]
        exps = {k: math.log(max(b["stages"][k], 1e-3) / max(a["stages"][k], 1e-3)) / math.log(n1 / n0)
                for k in a["stages"]}
        exps["total"] = math.log(b["wall_s"] / a["wall_s"]) / math.log(n1 / n0)
        print(f"growth exponent {n0} -> {n1}: " + "  ".join(f"{k} {v:.2f}" for k, v in exps.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({f"{n} {k} {w}": {kk: vv for kk, vv in r.items() if kk != "poses"}
                                               for (n, k, w), r in rows.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
