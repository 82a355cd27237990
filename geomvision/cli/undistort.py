"""``geomvision undistort``: undistorted images and a PINHOLE model, as COLMAP's image_undistorter.

    geomvision undistort MODEL IMAGES -o OUT [--blank-pixels 0] [--max-image-size N]
        [--sparse-subdir 0] [--jpeg-quality 95] [--num-threads N]

MODEL is a COLMAP model folder or an sfm output folder (its sparse/0); IMAGES the folder the
model's image names are relative to. Writes COLMAP's undistorter layout, what Gaussian
splatting, COLMAP's patch_match_stereo and OpenMVS read:

    OUT/images/            the registered images, undistorted (same names and formats)
    OUT/sparse/            cameras.bin images.bin points3D.bin with PINHOLE cameras
    OUT/stereo/            patch-match.cfg, fusion.cfg (COLMAP's dense stereo)

The new cameras keep the focal lengths and the relative position of the principal point; by
default (--blank-pixels 0, COLMAP's default) the image is cropped to valid pixels: no black
border. --blank-pixels 1 keeps every input pixel instead (black corners). The original 3DGS
loader reads OUT/sparse/0: pass --sparse-subdir 0.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("undistort", help="undistort images into PINHOLE cameras (COLMAP's undistorter layout)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="COLMAP model folder or sfm output folder")
    p.add_argument("images", help="folder holding the model's images (their names are relative to it)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder (created)")
    p.add_argument("--blank-pixels", type=float, default=0.0,
                   help="0 (default, as COLMAP): crop to valid pixels, no black border; 1: keep every input pixel "
                        "(black corners); between: interpolated")
    p.add_argument("--max-image-size", type=int, default=None, metavar="PX",
                   help="downsample so that the larger side is at most PX pixels (default: keep the resolution)")
    p.add_argument("--sparse-subdir", default="", metavar="NAME",
                   help="write the model into OUT/sparse/NAME (e.g. 0 for the original 3DGS; default OUT/sparse)")
    p.add_argument("--jpeg-quality", type=int, default=95, help="quality of images written as JPEG, 1..100 (default 95)")
    p.add_argument("--num-threads", type=int, default=None, help="images undistorted at once (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def load_reconstruction(path: str):
    """The Reconstruction of a COLMAP model folder or an sfm output folder (a PLY has no cameras)."""
    from ..viz.loading import load_model

    model = load_model(path)
    if model.reconstruction is None:
        raise ValueError(f"{path}: a point cloud without cameras; pass a COLMAP model folder or an sfm output folder")
    return model.reconstruction


def run(args: argparse.Namespace) -> int:
    from ..io.undistort import UndistortOptions, undistort_model

    options = UndistortOptions(blank_pixels=args.blank_pixels, max_image_size=args.max_image_size,
                               jpeg_quality=args.jpeg_quality)
    if args.num_threads is not None and args.num_threads < 1:
        raise ValueError(f"--num-threads must be at least 1, got {args.num_threads}")
    rec = load_reconstruction(args.model)
    report = undistort_model(rec, args.images, args.output, options, sparse_subdir=args.sparse_subdir,
                             num_threads=args.num_threads, show_progress=not args.quiet)
    for cid, (old, new) in sorted(report.cameras.items()):
        print(f"camera {cid}: {old.model} {old.width}x{old.height} -> PINHOLE {new.width}x{new.height} "
              f"(fx {new.focal_length_x:.6g}, fy {new.focal_length_y:.6g}, "
              f"cx {new.principal_point[0]:.6g}, cy {new.principal_point[1]:.6g})")
        offset = report.principal_point_offset_px[cid]
        if offset > 1.0:
            print(f"note: camera {cid}'s principal point is {offset:.3g} px from the image centre; loaders that "
                  "ignore cx, cy (the original 3DGS) will be off by that much")
    if report.keypoints_linear:
        print(f"warning: {report.keypoints_linear} keypoints lie outside the lens model's invertible region; "
              "they were moved with the linear camera only", file=sys.stderr)
    print(f"wrote {report.images_written} undistorted and {report.images_copied} copied images to "
          f"{report.out_dir / 'images'}, the PINHOLE model to {report.model_dir}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from .main import main

    sys.exit(main(["undistort", *sys.argv[1:]]))
