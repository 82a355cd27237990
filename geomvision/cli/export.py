"""``geomvision export``: a model in the format another tool reads.

    geomvision export MODEL --format FORMAT -o OUT [--images DIR] [--max-error PX]

MODEL is a COLMAP model folder or an sfm output folder (its sparse/0). OUT is a folder (created)
that receives the format's usual file names, or, when it ends in the format's extension, the
file itself:

    nerfstudio    OUT/transforms.json + OUT/sparse_pc.ply   (ns-train nerfacto|splatfacto --data OUT)
    ngp           OUT/transforms.json                       (instant-ngp; scene centred and scaled)
    nvm           OUT/model.nvm                             (VisualSFM NVM v3)
    bundler       OUT/bundle.out + OUT/list.txt             (Bundler v0.3)
    ply           OUT/points3D.ply                          (coloured points)
    colmap-text   OUT/cameras.txt images.txt points3D.txt   (COLMAP text model; + rigs, frames)

--images DIR: where the images are; transforms.json, the NVM file and list.txt then name them
relative to their own folder (default: images/<name> for nerfstudio and ngp, the model's names
for nvm and bundler). NVM and Bundler cameras have one focal length, the principal point at the
image centre and radial distortion only: a camera they cannot hold within --max-error pixels
(default 1) is refused; undistort the model first (geomvision undistort) or raise --max-error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# format -> (file name inside OUT, extension that makes OUT the file itself)
FORMATS: dict[str, tuple[str | None, str | None]] = {
    "nerfstudio": ("transforms.json", ".json"),
    "ngp": ("transforms.json", ".json"),
    "nvm": ("model.nvm", ".nvm"),
    "bundler": ("bundle.out", ".out"),
    "ply": ("points3D.ply", ".ply"),
    "colmap-text": (None, None),
}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="write a model for nerfstudio, instant-ngp, VisualSFM (NVM), Bundler, "
                                             "PLY or as a COLMAP text model",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="COLMAP model folder or sfm output folder")
    p.add_argument("--format", required=True, choices=list(FORMATS), help="the output format (see above)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output folder (created), or the file itself when it ends in the format's extension")
    p.add_argument("--images", metavar="DIR", help="folder holding the model's images, for the file paths written")
    p.add_argument("--max-error", type=float, default=1.0, metavar="PX",
                   help="nvm, bundler: largest error in pixels of the format's simpler camera (default 1)")
    p.set_defaults(func=run)


def output_path(out: str, fmt: str) -> Path:
    """The main file written for ``fmt`` (the folder for colmap-text), its folder created."""
    name, ext = FORMATS[fmt]
    target = Path(out)
    if name is None:
        target.mkdir(parents=True, exist_ok=True)
        return target
    if ext is not None and target.suffix.lower() == ext:
        target.parent.mkdir(parents=True, exist_ok=True)
        return target
    if target.exists() and not target.is_dir():
        raise ValueError(f"-o {out}: a file that does not end in {ext}; give a folder or a path ending in {ext}")
    target.mkdir(parents=True, exist_ok=True)
    return target / name


def run(args: argparse.Namespace) -> int:
    from .undistort import load_reconstruction

    if not args.max_error > 0:
        raise ValueError(f"--max-error must be a positive number of pixels, got {args.max_error}")
    if args.images is not None and not Path(args.images).is_dir():
        raise ValueError(f"--images {args.images}: not a folder")
    rec = load_reconstruction(args.model)
    target = output_path(args.output, args.format)
    written = [target]
    note = ""
    if args.format == "nerfstudio":
        from ..io.transforms_json import write_nerfstudio

        write_nerfstudio(rec, target, image_dir=args.images)
        written.append(target.parent / "sparse_pc.ply")
    elif args.format == "ngp":
        from ..io.transforms_json import write_instant_ngp

        M = write_instant_ngp(rec, target, image_dir=args.images)
        scale = float(M[:3, 0] @ M[:3, 0]) ** 0.5
        note = (f"poses moved into instant-ngp's frame, x_ngp = s R x + t with s = {scale:.6g}: "
                "geomvision_ngp_from_model in the file")
    elif args.format == "nvm":
        from ..io.nvm import write_nvm

        info = write_nvm(rec, target, image_dir=args.images, max_error=args.max_error)
        note = f"camera approximation error up to {info['max_error_px']:.3g} px"
        if info["dropped_measurements"]:
            note += f"; {info['dropped_measurements']} repeated observations in one image left out (NVM keeps one)"
    elif args.format == "bundler":
        from ..io.bundler import write_bundler

        info = write_bundler(rec, target, image_dir=args.images, max_error=args.max_error)
        written.append(info["list_path"])
        note = f"camera approximation error up to {info['max_error_px']:.3g} px"
    elif args.format == "ply":
        from ..io.ply import write_ply

        write_ply(rec, target)
    else:
        from ..io.colmap import write_model

        write_model(rec, target, binary=False)  # with COLMAP 4's rigs.txt and frames.txt
        written = [target / f"{n}.txt" for n in ("cameras", "images", "points3D", "rigs", "frames")]
    if args.format in ("nerfstudio", "ngp") and args.images is None:
        note = "; ".join(filter(None, [note, f"images are expected in {target.parent / 'images'} (or pass --images)"]))
    print(f"wrote {', '.join(str(p) for p in written)}: {rec.num_registered_images} cameras, "
          f"{len(rec.points3D)} points" + (f" ({note})" if note else ""))
    return 0


if __name__ == "__main__":  # pragma: no cover
    from .main import main

    sys.exit(main(["export", *sys.argv[1:]]))
