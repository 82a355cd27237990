"""End-to-end SfM: geomvision's ``run_sfm`` next to pycolmap on the same real images, in one run.

Scenes: the three Strecha scenes and dino-ring (48 views of a weakly textured object on a closed
ring, issue 15), all with ground-truth cameras in ``../shared``; ``courtyard``: 19 views of a
closed walk in a courtyard of repeated windows, each looking across it, and ``courtyard-walls``:
19 views of a walk in a larger one, each facing the nearest wall (mostly planar pairs that overlap
only their neighbours; ``geomvision.synthetic.render_courtyard``, exact cameras; issue 15),
rendered once into ``benchmarks/_cache/<scene>``.

Both pipelines get the known K (PINHOLE, kept fixed), 8,192 SIFT features per image, exhaustive
matching and incremental mapping, 2 threads, CPU. Each run is a fresh subprocess (so peak memory
is its own and no cache is shared; geomvision's feature cache starts empty), runs alternate
between the two pipelines, and every model is scored against the ground truth (mean camera-centre
error after a 7-dof similarity alignment). geomvision's numba kernels are compiled once before
timing (they are cached on disk, as on any machine after the first run).

    .venv/bin/python benchmarks/bench_sfm.py [--scenes fountain-P11 ...] [--repeats 2]
        [--guided-matching on|off] [--pipelines ours pycolmap]

``--guided-matching`` sets geomvision's ``VerificationOptions.guided_matching`` (default: the
option's own default); ``--pipelines ours`` skips pycolmap.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _workers import peak_rss_mb
from _workers import run_ours_timed, run_pycolmap_known_K
from _workers import spawn as _spawn

SCENES = ("fountain-P11", "Herz-Jesus-P8", "entry-P10", "dino-ring", "courtyard", "courtyard-walls")

# rendered scenes: keywords of ``render_courtyard`` (19 views each)
RENDERED = {
    "courtyard": {},
    "courtyard-walls": {"size_m": (40.0, 30.0), "margin_m": 12.0, "look_up_deg": 10.0, "facing": "walls"},
}
# the same walk with another seed: only bench_relative_pose's rendered-walls set uses it
RENDERED["courtyard-walls-seed1"] = {**RENDERED["courtyard-walls"], "rng": 1}


def scene_dir(root: Path, scene: str) -> Path:
    """The folder of ``scene``: under ``strecha/`` for the Strecha scenes, at the root for the
    other shared scenes; a rendered scene is rendered into ``benchmarks/_cache`` on first use."""
    if scene in RENDERED:
        d = Path(__file__).resolve().parent / "_cache" / scene
        if not (d / "gt_cameras.json").is_file():
            from geomvision.synthetic import write_strecha_layout
            from geomvision.synthetic.courtyard import render_courtyard

            kw = RENDERED[scene]
            args = "".join(f", {k}={v!r}" for k, v in kw.items())
            source = f"geomvision.synthetic.render_courtyard(19{args})"
            write_strecha_layout(render_courtyard(19, **kw), d, source=source)
        return d
    d = root / "strecha" / scene
    return d if d.is_dir() else root / scene


def _score(scene_dir: Path, names_poses: dict) -> dict:
    from geomvision import Rigid3
    from geomvision.io.datasets import load_strecha_scene
    from geomvision.scene.align import camera_errors

    gt = load_strecha_scene(scene_dir)
    names = sorted(names_poses)
    est = [Rigid3(np.array(names_poses[n][0]), np.array(names_poses[n][1]), check=False) for n in names]
    err = camera_errors(est, [gt.cams_from_world[n] for n in names])
    return {"registered": len(names), "num_images": len(gt.image_names),
            "mean_center_error_mm": 1000 * err.mean_center_error, "max_center_error_mm": 1000 * err.max_center_error}


def worker_ours(scene_dir: Path, threads: int, guided: str | None = None) -> dict:
    from geomvision.sfm import CameraOptions, SfmOptions, VerificationOptions

    verification = VerificationOptions() if guided is None else VerificationOptions(guided_matching=guided == "on")
    res, wall, poses = run_ours_timed(scene_dir / "images", SfmOptions(
        camera=CameraOptions(K=str(scene_dir / "K.txt")), verification=verification, num_threads=threads))
    rec = res.reconstructions[0]
    t = res.report["timings_s"]
    stages = {"features": t["features"], "matching": t["matching"],
              "verification+mapping": t["verification"] + t["tracks"] + t["keypoint_refinement"] + t["mapping"]}
    return {"wall_s": wall, "stages": stages, "poses": poses, "num_points": len(rec.points3D)}


def worker_pycolmap(scene_dir: Path, threads: int) -> dict:
    K = np.loadtxt(scene_dir / "K.txt")
    out = run_pycolmap_known_K(str(scene_dir / "images"), (K[0, 0], K[1, 1], K[0, 2], K[1, 2]), threads)
    if not out["poses"]:
        raise RuntimeError(f"pycolmap built no model of {scene_dir.name}")
    return {k: out[k] for k in ("wall_s", "stages", "poses", "num_points")}


def run_worker(args) -> int:
    scene_dir = Path(args.scene_dir)
    if args.worker == "ours":
        out = worker_ours(scene_dir, args.threads, args.guided_matching)
    else:
        out = worker_pycolmap(scene_dir, args.threads)
    out["score"] = _score(scene_dir, out.pop("poses"))
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out))
    return 0


def spawn(kind: str, scene_dir: Path, threads: int, guided: str | None = None) -> dict:
    extra = [] if guided is None else ["--guided-matching", guided]
    return _spawn(__file__, ["--worker", kind, "--scene-dir", str(scene_dir), "--threads", str(threads), *extra],
                  f"{kind} on {scene_dir.name}")


def warm_up_jit() -> float:
    """Compile (or load) geomvision's numba kernels on a small rendered scene, outside the timing."""
    from geomvision.synthetic.rendered_datasets import render_orbit_dataset
    from geomvision.sfm import run_sfm

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        render_orbit_dataset(Path(tmp) / "s", n_images=4, width=320, height=240, arc_deg=40.0, rng=0)
        run_sfm(Path(tmp) / "s" / "images", cache_dir=Path(tmp) / "c", progress=False)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="+", default=list(SCENES))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--guided-matching", choices=("on", "off"), default=None)
    ap.add_argument("--pipelines", nargs="+", choices=("ours", "pycolmap"), default=["ours", "pycolmap"])
    ap.add_argument("--worker", choices=("ours", "pycolmap"), help=argparse.SUPPRESS)
    ap.add_argument("--scene-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return run_worker(args)
    from geomvision.io.datasets import data_root

    root = data_root()
    if root is None:
        print("shared datasets not found (set GEOMVISION_DATA)", file=sys.stderr)
        return 1
    print(f"JIT warm-up (not timed): {warm_up_jit():.1f} s")
    rows = {}
    for rep in range(args.repeats):
        for scene in args.scenes:
            d = scene_dir(root, scene)
            order = [k for k in (("ours", "pycolmap") if rep % 2 == 0 else ("pycolmap", "ours")) if k in args.pipelines]
            for kind in order:
                r = spawn(kind, d, args.threads, args.guided_matching)
                rows.setdefault((scene, kind), []).append(r)
                print(f"  {scene:14s} {kind:9s} {r['wall_s']:6.1f} s  "
                      + "  ".join(f"{k} {v:5.1f}" for k, v in r["stages"].items())
                      + f"  peak {r['peak_rss_mb']:6.0f} MB  centre err {r['score']['mean_center_error_mm']:.2f} mm "
                      f"({r['score']['registered']}/{r['score']['num_images']})", flush=True)
    if len(args.pipelines) < 2:
        return 0
    print()
    print(f"{'scene':14s} {'ours s':>7s} {'colmap s':>9s} {'ratio':>6s} {'ours MB':>8s} {'colmap MB':>9s} "
          f"{'ours mm':>8s} {'colmap mm':>9s} {'ours reg':>9s} {'colmap reg':>10s}")
    for scene in args.scenes:
        a, b = rows[(scene, "ours")], rows[(scene, "pycolmap")]
        ta, tb = np.median([r["wall_s"] for r in a]), np.median([r["wall_s"] for r in b])
        ma, mb = max(r["peak_rss_mb"] for r in a), max(r["peak_rss_mb"] for r in b)
        ea, eb = a[0]["score"]["mean_center_error_mm"], b[0]["score"]["mean_center_error_mm"]
        reg = [f"{r[0]['score']['registered']}/{r[0]['score']['num_images']}" for r in (a, b)]
        print(f"{scene:14s} {ta:7.1f} {tb:9.1f} {ta / tb:6.2f} {ma:8.0f} {mb:9.0f} {ea:8.2f} {eb:9.2f} {reg[0]:>9s} "
              f"{reg[1]:>10s}")
        for k in a[0]["stages"]:
            sa = np.median([r["stages"][k] for r in a])
            sb = np.median([r["stages"][k] for r in b])
            print(f"    {k:22s} {sa:6.1f} s vs {sb:6.1f} s  ({sa / sb:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
