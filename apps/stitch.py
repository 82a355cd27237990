"""Panorama stitching with RANSAC homographies: a readable walk through what ``geomvision stitch`` does.

    .venv/bin/python apps/stitch.py img1.jpg img2.jpg img3.jpg -o mosaic.png
    .venv/bin/python apps/stitch.py --demo -o mosaic.png     # renders a rotating camera first

Views of a camera turning about its centre are related by homographies x_j ~ H_ji x_i. For every
pair of images we match SIFT features and let RANSAC find the homography that the most matches
agree with; then each image is warped into the frame of one reference image and the overlaps
are blended. With ``--demo`` the images are rendered with known rotations, so the script also
prints how far the estimated homographies move the image corners from the true ones.
"""

from __future__ import annotations

import argparse

import numpy as np

import geomvision as gv
from geomvision.cli.stitch import write_image_atomic
from geomvision.features import FeatureOptions, MatchOptions, extract_features, match_descriptors
from geomvision.imageio import read_image
from geomvision.stitching import PairLink, chain_to_reference, warp_and_blend


def corner_error_px(H_est: np.ndarray, H_true: np.ndarray, width: int, height: int) -> float:
    """Largest distance (pixels) between where the two homographies send the image corners."""
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]], float)
    a = corners @ H_est.T
    b = corners @ H_true.T
    return float(np.max(np.linalg.norm(a[:, :2] / a[:, 2:] - b[:, :2] / b[:, 2:], axis=1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", nargs="*", help="image files (at least two, unless --demo)")
    ap.add_argument("-o", "--output", default="mosaic.png")
    ap.add_argument("--demo", action="store_true", help="render 4 views of a camera panning by 60 degrees")
    ap.add_argument("--max-error", type=float, default=3.0, help="RANSAC threshold in pixels")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    # 1. the images (RGB uint8)
    truth = None
    if args.demo:
        from geomvision.synthetic.rendered_datasets import rotation_sequence

        truth = rotation_sequence(4, width=640, height=480, pan_deg=60.0, rng=args.seed)
        images = truth.images
    else:
        if len(args.images) < 2:
            ap.error("give at least two images, or --demo")
        images = [read_image(p) for p in args.images]

    # 2. SIFT features of every image
    features = [extract_features(img, FeatureOptions(max_num_features=4000)) for img in images]
    print("features per image:", [len(f.keypoints) for f in features])

    # 3. for every pair: ratio-test matches, then a RANSAC homography
    rng = np.random.default_rng(args.seed)
    links = []
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            matches = match_descriptors(features[i].descriptors, features[j].descriptors, MatchOptions(ratio=0.8))
            if len(matches) < 30:
                continue
            x_i = features[i].keypoints[matches[:, 0]]
            x_j = features[j].keypoints[matches[:, 1]]
            H, _inliers, stats = gv.estimate_homography(x_i, x_j, max_error=args.max_error, rng=rng)
            print(f"pair {i}-{j}: {len(matches)} matches, {stats.num_inliers} inliers, {stats.iterations} iterations")
            if H is None or stats.num_inliers < 30:
                continue
            links.append(PairLink(i, j, H / H[2, 2], len(matches), stats.num_inliers))
            if truth is not None:
                h, w = images[i].shape[:2]
                print(f"    corners within {corner_error_px(H, truth.homography(i, j), w, h):.2f} px of the truth")

    # 4. bring every image into the frame of the best-connected one (a maximum spanning tree)
    reference, ref_from_image = chain_to_reference(len(images), links)
    print("reference image:", reference, "| not linked:", [k for k, H in enumerate(ref_from_image) if H is None])

    # 5. warp and blend, then write the mosaic
    mosaic, mask, _ = warp_and_blend(images, ref_from_image, feather=True)
    write_image_atomic(mosaic, args.output)
    print(f"wrote {args.output} ({mosaic.shape[1]}x{mosaic.shape[0]}, {mask.mean():.0%} covered)")


if __name__ == "__main__":
    main()
