"""Panorama stitching: SIFT matches, RANSAC homographies, warping and feathered blending.

The classic use of RANSAC: images taken by a camera turning about its centre are related by
homographies ``x_j ~ H_ji x_i`` (``H = K R_j R_i^T K^-1``). :func:`stitch` matches every pair of
images, estimates each pair's homography with :func:`geomvision.estimate_homography`, links the
images through a maximum spanning tree of the inlier counts rooted at the best-connected image
(the reference, whose pixels keep their place), warps every image into the reference frame and
blends the overlaps with weights that fall off towards each image's border (feathering).

    from geomvision.stitching import stitch
    pano = stitch([img1, img2, img3], rng=0)      # (H,W,3) uint8 RGB images
    pano.image, pano.mosaic_from_image, pano.reference_idx, pano.skipped
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ._validation import RngLike, as_rng, check_int, check_positive
from .features import FeatureOptions, MatchOptions, extract_features, match_descriptors
from .robust import estimate_homography

MAX_MOSAIC_PIXELS = 60_000_000


@dataclass(frozen=True)
class StitchOptions:
    """``max_error``: RANSAC inlier threshold (pixels, transfer error); ``min_inliers``: a pair
    with fewer homography inliers is not linked; ``max_features``: SIFT features per image;
    ``ratio``: Lowe's ratio test; ``feather``: blend overlaps with border-distance weights
    (False: the reference-nearest image wins each pixel)."""

    max_error: float = 3.0
    min_inliers: int = 30
    max_features: int = 4000
    ratio: float = 0.8
    feather: bool = True

    def __post_init__(self) -> None:
        check_positive(self.max_error, "max_error")
        check_int(self.min_inliers, "min_inliers", minimum=4)
        check_int(self.max_features, "max_features", minimum=10)
        if not 0.0 < float(self.ratio) <= 1.0:
            raise ValueError(f"ratio must lie in (0, 1], got {self.ratio!r}")
        if not isinstance(self.feather, bool):
            raise ValueError(f"feather must be True or False, got {self.feather!r}")


@dataclass
class PairLink:
    """A matched image pair: ``H`` maps pixels of image ``i`` to image ``j``."""

    i: int
    j: int
    H: np.ndarray
    num_matches: int
    num_inliers: int


@dataclass
class Panorama:
    """The mosaic (H,W,3) uint8 and its coverage mask (H,W) bool; ``mosaic_from_image[k]`` maps
    pixels of image k into the mosaic (None for a skipped image); ``links`` the pair homographies
    used and found."""

    image: np.ndarray
    mask: np.ndarray
    mosaic_from_image: list[np.ndarray | None]
    reference_idx: int
    skipped: list[int]
    links: list[PairLink] = field(default_factory=list)


def _check_images(images) -> list[np.ndarray]:
    if not isinstance(images, (list, tuple)) or len(images) < 2:
        raise ValueError("images must be a list of at least 2 images")
    out = []
    for k, img in enumerate(images):
        a = np.asarray(img)
        if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
            raise ValueError(f"images[{k}] must be an (H,W,3) RGB or (H,W) grey uint8 array, got {a.dtype} {a.shape}")
        out.append(np.dstack([a] * 3) if a.ndim == 2 else a)
    return out


def pairwise_homographies(
    images: list[np.ndarray], options: StitchOptions | None = None, *, rng: RngLike = None
) -> list[PairLink]:
    """Match every pair of images and estimate its homography; pairs with fewer than
    ``options.min_inliers`` inliers are left out."""
    opts = StitchOptions() if options is None else options
    imgs = _check_images(images)
    gen = as_rng(rng)
    fopts = FeatureOptions(max_num_features=opts.max_features)
    feats = [extract_features(img, fopts) for img in imgs]
    mopts = MatchOptions(ratio=opts.ratio)
    links = []
    for i in range(len(imgs)):
        for j in range(i + 1, len(imgs)):
            m = match_descriptors(feats[i].descriptors, feats[j].descriptors, mopts)
            if len(m) < opts.min_inliers:
                continue
            x_i = feats[i].keypoints[m[:, 0]]
            x_j = feats[j].keypoints[m[:, 1]]
            res = estimate_homography(x_i, x_j, max_error=opts.max_error, rng=gen)
            if res.model is None or res.stats.num_inliers < opts.min_inliers:
                continue
            links.append(PairLink(i, j, res.model / res.model[2, 2], len(m), res.stats.num_inliers))
    return links


def chain_to_reference(num_images: int, links: list[PairLink]) -> tuple[int, list[np.ndarray | None]]:
    """Reference image (most inliers over its links) and ``ref_from_image`` homographies along a
    maximum spanning tree of inlier counts (None for images not connected to the reference)."""
    score = np.zeros(num_images)
    for ln in links:
        score[ln.i] += ln.num_inliers
        score[ln.j] += ln.num_inliers
    ref = int(np.argmax(score))
    ref_from = [None] * num_images
    ref_from[ref] = np.eye(3)
    # Prim's algorithm on inlier counts, composing homographies as the tree grows
    while True:
        best = None  # (inliers, a in the tree, b not yet, H_ba with x_b ~ H_ba x_a)
        for ln in links:
            for a, b, H_ba in ((ln.i, ln.j, ln.H), (ln.j, ln.i, np.linalg.inv(ln.H))):
                if ref_from[a] is not None and ref_from[b] is None and (best is None or ln.num_inliers > best[0]):
                    best = (ln.num_inliers, a, b, H_ba)
        if best is None:
            break
        _, a, b, H_ba = best
        H = ref_from[a] @ np.linalg.inv(H_ba)
        ref_from[b] = H / H[2, 2]
    return ref, ref_from


def _feather_weight(h: int, w: int) -> np.ndarray:
    """Weight (h,w) float32 growing from the border to the centre (distance to the border + 1)."""
    m = np.zeros((h + 2, w + 2), np.uint8)
    m[1:-1, 1:-1] = 1
    return cv2.distanceTransform(m, cv2.DIST_L2, 3)[1:-1, 1:-1].astype(np.float32)


def warp_and_blend(
    images: list[np.ndarray], ref_from_image: list[np.ndarray | None], *, feather: bool = True
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray | None]]:
    """Warp the images into one canvas holding all of them and blend them.

    Returns (mosaic (H,W,3) uint8, coverage mask (H,W) bool, mosaic_from_image homographies).
    """
    imgs = _check_images(images)
    corners = []
    for img, H in zip(imgs, ref_from_image):
        if H is None:
            continue
        h, w = img.shape[:2]
        c = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], dtype=np.float64) @ H.T
        if np.any(c[:, 2] <= 0):
            raise ValueError("an image maps across the horizon of the reference view: the views span too wide an "
                             "angle for a planar mosaic; stitch fewer or closer views")
        corners.append(c[:, :2] / c[:, 2:])
    pts = np.vstack(corners)
    lo = np.floor(pts.min(axis=0))
    hi = np.ceil(pts.max(axis=0))
    W, Hh = int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1
    if W * Hh > MAX_MOSAIC_PIXELS:
        raise ValueError(f"the mosaic would be {W}x{Hh} pixels: the views span too wide an angle for a planar "
                         "mosaic (or a homography is wrong); stitch fewer or closer views")
    T = np.array([[1.0, 0.0, -lo[0]], [0.0, 1.0, -lo[1]], [0.0, 0.0, 1.0]])
    acc = np.zeros((Hh, W, 3), np.float32)
    wsum = np.zeros((Hh, W), np.float32)
    mosaic_from = []
    for img, H in zip(imgs, ref_from_image):
        if H is None:
            mosaic_from.append(None)
            continue
        M = T @ H
        mosaic_from.append(M / M[2, 2])
        h, w = img.shape[:2]
        weight = _feather_weight(h, w) if feather else np.ones((h, w), np.float32)
        warped = cv2.warpPerspective(img.astype(np.float32), M, (W, Hh), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT)
        ww = cv2.warpPerspective(weight, M, (W, Hh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if not feather:  # first-come wins: keep pixels already covered
            ww = np.where(wsum > 0, 0.0, ww).astype(np.float32)
        acc += warped * ww[..., None]
        wsum += ww
    mask = wsum > 1e-6
    out = np.zeros((Hh, W, 3), np.uint8)
    out[mask] = np.clip(np.rint(acc[mask] / wsum[mask, None]), 0, 255).astype(np.uint8)
    return out, mask, mosaic_from


def stitch(images: list[np.ndarray], options: StitchOptions | None = None, *, rng: RngLike = None) -> Panorama:
    """Stitch images of a camera turning about its centre into one mosaic in the frame of the
    best-connected image. Images that match no other are skipped (listed in ``skipped``);
    ``ValueError`` when no pair matches."""
    opts = StitchOptions() if options is None else options
    if not isinstance(opts, StitchOptions):
        raise ValueError(f"options must be a StitchOptions, got {type(opts).__name__}")
    imgs = _check_images(images)
    links = pairwise_homographies(imgs, opts, rng=rng)
    if not links:
        raise ValueError(f"no pair of images shares {opts.min_inliers} homography inliers: nothing to stitch")
    ref, ref_from = chain_to_reference(len(imgs), links)
    mosaic, mask, mosaic_from = warp_and_blend(imgs, ref_from, feather=opts.feather)
    skipped = [k for k, H in enumerate(ref_from) if H is None]
    return Panorama(mosaic, mask, mosaic_from, ref, skipped, links)
