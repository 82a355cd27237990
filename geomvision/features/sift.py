"""SIFT feature extraction with OpenCV, in geomvision's pixel convention.

Pixel convention. OpenCV's ``KeyPoint.pt`` already puts (0, 0) at the centre of the top-left
pixel for the image it is given, *provided* SIFT is created with ``enable_precise_upscale=True``.
OpenCV's SIFT doubles the image before building the pyramid (first octave -1) and maps an index
x of the doubled image back to x / 2. The default bilinear doubling, however, samples the doubled
pixel x at input position x / 2 - 0.25 (half-pixel-centre resize), so by default every keypoint
comes out shifted by +0.25 px in u and v. The precise upscale samples it at exactly x / 2, which
removes that bias (tests/features check a synthetic blob at a known sub-pixel position).

Downscaled extraction. When the image is shrunk by ``s_u = W / W'`` (and ``s_v = H / H'``) with
area averaging, pixel u' of the small image covers ``[s_u u', s_u (u' + 1)]`` in the pixel-edge
frame of the full image, whose centre in geomvision's frame is ``u = s_u (u' + 0.5) - 0.5``.
"""

from __future__ import annotations

import cv2
import numpy as np

from .options import FeatureOptions
from .types import Features

__all__ = ["extract_features", "root_sift"]

_ROOT_SIFT_SCALE = 512.0  # COLMAP stores unit-norm RootSIFT * 512 as uint8


def _check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array (H,W,3) or (H,W) of uint8, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (convert with np.clip(x, 0, 255).astype(np.uint8)), got {image.dtype}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"image must have shape (H,W,3) RGB or (H,W) grey, got {image.shape}")
    if min(image.shape[:2]) < 8:
        raise ValueError(f"image must be at least 8x8 pixels, got {image.shape[1]}x{image.shape[0]}")
    return np.ascontiguousarray(image)


def root_sift(descriptors: np.ndarray) -> np.ndarray:
    """RootSIFT of (N,D) SIFT descriptors: L1-normalise, square root, scale by 512, round to uint8.

    The result has unit L2 norm before the scaling (sum of the L1-normalised entries is 1).
    """
    d = np.asarray(descriptors, dtype=np.float32)
    if d.ndim != 2:
        raise ValueError(f"descriptors must have shape (N,D), got {d.shape}")
    l1 = d.sum(axis=1, keepdims=True)
    d = np.sqrt(d / np.maximum(l1, np.float32(1e-12)))
    return np.clip(np.rint(d * np.float32(_ROOT_SIFT_SCALE)), 0, 255).astype(np.uint8)


def _keypoint_arrays(kps) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(kps)
    pts = np.array([k.pt for k in kps], dtype=np.float64).reshape(n, 2)
    size = np.fromiter((k.size for k in kps), dtype=np.float64, count=n)
    angle = np.fromiter((k.angle for k in kps), dtype=np.float64, count=n)
    response = np.fromiter((k.response for k in kps), dtype=np.float64, count=n)
    return pts, size, angle, response


def _strongest_first(pts, size, angle, response) -> np.ndarray:
    """Order by decreasing response; ties broken by position, size, angle (deterministic)."""
    return np.lexsort((angle, size, pts[:, 1], pts[:, 0], -response))


# weak texture: the contrast threshold is halved at most this many times (to 1/8)
MAX_CONTRAST_HALVINGS = 3


def _detect_describe(gray: np.ndarray, options: FeatureOptions):
    """Detection and description at the contrast threshold, lowered for weakly textured images
    (``options.min_num_features``)."""
    for k in range(MAX_CONTRAST_HALVINGS + 1):
        found = _detect_describe_at(gray, options, options.contrast_threshold / 2**k)
        if len(found[0]) >= min(options.min_num_features, options.max_num_features):
            break
    return found


def _detect_describe_at(gray: np.ndarray, options: FeatureOptions, contrast_threshold: float):
    def make(nfeatures: int):
        return cv2.SIFT_create(
            nfeatures=nfeatures,
            nOctaveLayers=options.num_octave_layers,
            contrastThreshold=contrast_threshold,
            edgeThreshold=options.edge_threshold,
            sigma=options.sigma,
            enable_precise_upscale=True,
        )

    n_max = options.max_num_features
    if not options.upright:
        detector = (cv2.AffineFeature_create(make(0), maxTilt=options.affine_max_tilt, minTilt=0)
                    if options.affine_max_tilt > 1 else make(n_max))
        kps, desc = detector.detectAndCompute(gray, None)
        pts, size, angle, response = _keypoint_arrays(kps)
        # the affine simulation maps some keypoints of its warped views back to just outside the
        # image (up to ~2 px): no pixel was seen there, and the cache refuses such entries
        h, w = gray.shape
        inside = (pts[:, 0] >= -0.5) & (pts[:, 1] >= -0.5) & (pts[:, 0] <= w - 0.5) & (pts[:, 1] <= h - 0.5)
        order = _strongest_first(pts, size, angle, response)
        order = order[inside[order]][:n_max]
        desc = np.zeros((0, 128), np.float32) if desc is None else desc
        return pts[order], size[order], angle[order], desc[order]
    # Upright: one feature per location and scale (SIFT repeats a keypoint for each dominant
    # orientation), orientation fixed to 0, then the strongest n_max are described.
    sift = make(0)
    kps = sift.detect(gray, None)
    pts, size, angle, response = _keypoint_arrays(kps)
    order = _strongest_first(pts, size, angle, response)
    _, first = np.unique(np.column_stack([pts, size])[order], axis=0, return_index=True)
    keep = order[np.sort(first)][:n_max]
    upright = [
        cv2.KeyPoint(float(pts[i, 0]), float(pts[i, 1]), float(size[i]), 0.0, float(response[i]), kps[i].octave)
        for i in keep
    ]
    described, desc = sift.compute(gray, upright)
    # descriptors follow the keypoint list OpenCV returns (it may drop none, but trust only it)
    pts2, size2, _, _ = _keypoint_arrays(described)
    desc = np.zeros((0, 128), np.float32) if desc is None else desc
    return pts2, size2, np.zeros(len(pts2)), desc


def extract_features(image: np.ndarray, options: FeatureOptions | None = None) -> Features:
    """Detect and describe SIFT features in one image.

    image : (H,W,3) uint8 RGB or (H,W) uint8 grey.
    Returns :class:`Features` with full-resolution keypoints ((0,0) = centre of the top-left
    pixel), the strongest ``options.max_num_features`` by detector response first. Deterministic:
    the same image and options give identical arrays.
    """
    options = FeatureOptions() if options is None else options
    if not isinstance(options, FeatureOptions):
        raise ValueError(f"options must be a FeatureOptions, got {type(options).__name__}")
    image = _check_image(image)
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    s_u = s_v = 1.0
    if options.max_image_size is not None and max(h, w) > options.max_image_size:
        s = max(h, w) / options.max_image_size
        w2, h2 = max(1, round(w / s)), max(1, round(h / s))
        gray = cv2.resize(gray, (w2, h2), interpolation=cv2.INTER_AREA)
        s_u, s_v = w / w2, h / h2

    pts, size, angle_deg, desc = _detect_describe(gray, options)

    uv = np.empty_like(pts)
    uv[:, 0] = s_u * (pts[:, 0] + 0.5) - 0.5
    uv[:, 1] = s_v * (pts[:, 1] + 0.5) - 0.5
    scales = 0.5 * size * np.sqrt(s_u * s_v)
    orientations = np.mod(np.deg2rad(angle_deg), 2.0 * np.pi)
    orientations[orientations >= 2.0 * np.pi] = 0.0  # mod can round up to 2 pi
    if options.root_sift:
        descriptors = root_sift(desc)
    else:
        descriptors = np.clip(np.rint(desc), 0, 255).astype(np.uint8)

    iu = np.clip(np.rint(uv[:, 0]), 0, w - 1).astype(np.intp)
    iv = np.clip(np.rint(uv[:, 1]), 0, h - 1).astype(np.intp)
    colors = image[iv, iu]
    if image.ndim == 2:
        colors = np.repeat(colors[:, None], 3, axis=1)
    return Features(uv, scales, orientations, descriptors, colors)
