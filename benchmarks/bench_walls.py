"""Rendered courtyard walks facing their walls, across walks and RANSAC seeds: how often SfM
maps the whole walk into one right model, splits it, or builds a wrong model (issue 15, item 2).

``bench_sfm``'s ``courtyard-walls`` is one walk at one seed; on these scenes (most pairs see one
wall, the windows repeat, a view overlaps only its neighbours) the outcome moves with the walk and
with the seed of every random choice, so one figure hides how often it goes wrong. Each walk here
is ``render_courtyard(n, size_m=(40, 30), margin_m=12, look_up_deg=10, facing="walls",
unique_fraction=u, rng=walk_seed)`` (exact cameras, K held fixed, exhaustive matching), rendered
once into ``benchmarks/_cache/walls/``. geomvision runs at each ``--seeds`` value
(``SfmOptions.seed``); pycolmap (known K, 8,192 SIFT, exhaustive) once per walk, of which only
the largest model is scored (``_workers.run_pycolmap_known_K``): its "split" is a right model
without every view, and a wrong smaller model of its would go unseen.

A model (3 views or more) is **wrong** when its mean camera-centre error after a 7-dof alignment
exceeds 1 % of the walk's extent (the largest distance between two true centres); a walk is
**whole** when one right model holds every view.

With ``--exif FACTOR`` neither pipeline is given K: each walk's images are copied once as JPEG
(quality 95) whose EXIF tags give the focal length x FACTOR (``FocalLength`` 4 mm and
``FocalPlaneXResolution`` in pixels per cm, which geomvision and COLMAP read alike), as a camera
writes it a few per cent off; both start from that prior and refine it with a SIMPLE_RADIAL
distortion (geomvision also starts the distortion from the verified pairs).

    .venv/bin/python benchmarks/bench_walls.py [--seeds 0 1 2] [--walks 0 1 ...]
        [--pipelines ours pycolmap] [--exif 1.03]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

# (views, unique window fraction, walk seed): 19-31 views, 15-100 % unique windows
WALKS = [(19, 1.0, 0), (19, 0.5, 0), (19, 0.15, 0), (19, 0.15, 1), (19, 0.3, 1), (25, 0.15, 2), (25, 0.5, 2),
         (19, 1.0, 3), (31, 0.3, 4), (19, 0.15, 5), (19, 0.3, 6), (25, 0.15, 7), (19, 0.5, 8), (25, 0.3, 9),
         (19, 0.15, 10), (31, 0.15, 11), (19, 1.0, 12), (25, 0.5, 13), (19, 0.15, 14), (19, 0.3, 15),
         (25, 0.15, 16), (19, 0.5, 17), (31, 0.3, 18), (19, 0.15, 19), (25, 0.3, 20), (19, 0.15, 21)]
WALK_KW = {"size_m": (40.0, 30.0), "margin_m": 12.0, "look_up_deg": 10.0, "facing": "walls"}
WRONG_FRACTION = 0.01  # of the walk's extent


def walk_dir(n: int, unique: float, seed: int) -> Path:
    """The walk's folder (Strecha layout), rendered on first use."""
    d = Path(__file__).resolve().parent / "_cache" / "walls" / f"w{n}_{unique}_{seed}"
    if not (d / "gt_cameras.json").is_file():
        from geomvision.synthetic import write_strecha_layout
        from geomvision.synthetic.courtyard import render_courtyard

        source = f"geomvision.synthetic.render_courtyard({n}, unique_fraction={unique}, rng={seed}, **{WALK_KW})"
        write_strecha_layout(render_courtyard(n, unique_fraction=unique, rng=seed, **WALK_KW), d, source=source)
    return d


def score_models(d: Path, models: list[dict[str, tuple]]) -> dict:
    """Per model of >= 3 views (name -> (R, t) of cam_from_world): views and mean centre error
    (mm); the walk's verdict: "whole", "split" or "wrong"."""
    from geomvision import Rigid3
    from geomvision.io.datasets import load_strecha_scene
    from geomvision.scene.align import camera_errors

    gt = load_strecha_scene(d)
    centres = np.array([gt.cams_from_world[k].inverse().t for k in gt.image_names])
    extent = float(np.max(np.linalg.norm(centres[:, None] - centres[None], axis=2)))
    out = []
    for poses in models:
        if len(poses) < 3:
            continue
        names = sorted(poses)
        est = [Rigid3(np.asarray(poses[k][0]), np.asarray(poses[k][1]), check=False) for k in names]
        err = camera_errors(est, [gt.cams_from_world[k] for k in names])
        out.append((len(names), 1000 * err.mean_center_error))
    wrong = any(mm > 1000 * WRONG_FRACTION * extent for _, mm in out)
    whole = not wrong and len(out) == 1 and out[0][0] == len(gt.image_names)
    return {"models": out, "verdict": "wrong" if wrong else "whole" if whole else "split"}


def run_ours(d: Path, seed: int) -> list[dict]:
    from geomvision.sfm import CameraOptions, SfmOptions, run_sfm

    res = run_sfm(d / "images", SfmOptions(camera=CameraOptions(K=str(d / "K.txt")), seed=seed),
                  cache_dir=d / "cache", progress=False)
    return _model_poses(res)


def _model_poses(res) -> list[dict]:
    """Each model of an SfmResult as {image name: (R, t) of cam_from_world}."""
    return [{im.name: (im.cam_from_world.R, im.cam_from_world.t) for im in rec.images.values()}
            for rec in res.reconstructions]


EXIF_FOCAL_MM = 4.0  # the FocalLength tag of the --exif copies; FocalPlaneXResolution makes the pixels


def exif_dir(d: Path, factor: float) -> Path:
    """The walk's images as JPEG tagged with its focal length x ``factor`` (written on first use)."""
    from PIL import Image

    e = d.parent / f"{d.name}_exif{factor:g}"
    if not (e / "written").is_file():
        K = np.loadtxt(d / "K.txt")
        (e / "images").mkdir(parents=True, exist_ok=True)
        for src in sorted((d / "images").iterdir()):
            exif = Image.Exif()
            sub = exif.get_ifd(0x8769)  # the Exif IFD
            sub[0x920A] = EXIF_FOCAL_MM  # FocalLength
            sub[0xA20E] = factor * K[0, 0] / EXIF_FOCAL_MM * 10.0  # FocalPlaneXResolution, pixels per cm
            sub[0xA210] = 3  # FocalPlaneResolutionUnit: cm
            with Image.open(src) as im:
                im.convert("RGB").save(e / "images" / f"{src.stem}.jpg", quality=95, exif=exif)
        (e / "written").write_text("done\n")
    return e


def _png_names(models: list[dict]) -> list[dict]:
    return [{str(Path(k).with_suffix(".png")): v for k, v in m.items()} for m in models]


def run_ours_exif(d: Path, seed: int, factor: float) -> list[dict]:
    from geomvision.sfm import SfmOptions, run_sfm

    e = exif_dir(d, factor)
    res = run_sfm(e / "images", SfmOptions(seed=seed), cache_dir=e / "cache", progress=False)
    return _png_names(_model_poses(res))


def run_pycolmap_exif(d: Path, factor: float) -> list[dict]:
    from _workers import run_pycolmap_exif as run

    out = run(str(exif_dir(d, factor) / "images"), 2)
    return _png_names([out["poses"]]) if out["poses"] else []


def run_pycolmap(d: Path) -> list[dict]:
    from _workers import run_pycolmap_known_K

    K = np.loadtxt(d / "K.txt")
    out = run_pycolmap_known_K(str(d / "images"), (K[0, 0], K[1, 1], K[0, 2], K[1, 2]), 2)
    return [out["poses"]] if out["poses"] else []


def _line(label: str, s: dict, seconds: float) -> str:
    models = " + ".join(f"{v} ({mm:.1f} mm)" for v, mm in s["models"]) or "none"
    return f"{label:34s} {s['verdict']:6s} {models}  [{seconds:.0f} s]"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="geomvision's SfmOptions.seed values")
    ap.add_argument("--walks", type=int, nargs="+", default=list(range(len(WALKS))), help="indices into WALKS")
    ap.add_argument("--pipelines", nargs="+", choices=("ours", "pycolmap"), default=["ours", "pycolmap"])
    ap.add_argument("--exif", type=float, default=None, metavar="FACTOR",
                    help="no K: the focal length x FACTOR from EXIF tags, refined (see above)")
    args = ap.parse_args(argv)
    tally: dict[str, dict[str, int]] = {}
    errors: dict[str, list[float]] = {}
    for w in args.walks:
        n, u, s = WALKS[w]
        d = walk_dir(n, u, s)
        if args.exif is None:
            ours, colmap = (lambda k: run_ours(d, k)), (lambda: run_pycolmap(d))
        else:
            ours, colmap = (lambda k: run_ours_exif(d, k, args.exif)), (lambda: run_pycolmap_exif(d, args.exif))
        runs = [(f"ours seed {k}", lambda k=k: ours(k)) for k in args.seeds if "ours" in args.pipelines]
        runs += [("pycolmap", colmap)] if "pycolmap" in args.pipelines else []
        for label, fn in runs:
            t0 = time.perf_counter()
            sc = score_models(d, fn())
            key = label.split(" seed")[0]
            tally.setdefault(key, {"whole": 0, "split": 0, "wrong": 0})[sc["verdict"]] += 1
            if sc["verdict"] == "whole":
                errors.setdefault(key, []).append(sc["models"][0][1])
            print(_line(f"walk {w:2d} ({n} views, {u:.2f} unique, walk seed {s:2d}) {label}", sc,
                        time.perf_counter() - t0), flush=True)
    print("\n| pipeline | runs | whole (one right model) | split | wrong model | mean error of the whole, mm |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, t in tally.items():
        e = errors.get(key, [])
        print(f"| {key} | {sum(t.values())} | {t['whole']} | {t['split']} | {t['wrong']} | "
              f"{np.mean(e) if e else float('nan'):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
