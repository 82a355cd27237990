"""Two-view pictures: matches drawn over an image pair, and epipolar lines (matplotlib, no pyplot).

- :func:`plot_matches`: the two images side by side, a line from x1 to x2 for each match
  (inliers green, outliers red when a mask is given);
- :func:`plot_epipolar_lines`: the textbook picture: for a few matches, x1 in image 1 with its
  line l1 = F^T x2, and x2 in image 2 on its line l2 = F x1 (same colour per match); the title
  gives the median distance of all x2 to their l2;
- :func:`epipolar_segments`: the part of each line inside an image, as end points (pixel
  corners at -0.5 and w - 0.5: the image border, with (0, 0) the centre of the top-left pixel);
- helpers that take a pair from a Reconstruction: :func:`best_pair`, :func:`pair_correspondences`,
  :func:`pair_fundamental` and :func:`undistort_image` (epipolar lines are straight only in a
  distortion-free image).

Images are (H,W) or (H,W,3) arrays (uint8 or floats in [0, 1]), drawn with their pixel centres
at integer coordinates, so keypoints in geomvision's convention land on the right pixel.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .._validation import as_array, as_points, as_rng, check_int, check_same_length
from ..geometry.camera import Camera
from ..geometry.epipolar import epipolar_lines1, epipolar_lines2, fundamental_from_pose
from ..scene.reconstruction import Reconstruction

__all__ = [
    "best_pair",
    "epipolar_segments",
    "pair_correspondences",
    "pair_fundamental",
    "plot_epipolar_lines",
    "plot_matches",
    "undistort_image",
]

_PALETTE = np.array(
    [[0.89, 0.10, 0.11], [0.22, 0.49, 0.72], [0.30, 0.69, 0.29], [0.60, 0.31, 0.64], [1.00, 0.50, 0.00],
     [1.00, 1.00, 0.20], [0.65, 0.34, 0.16], [0.97, 0.51, 0.75], [0.10, 0.85, 0.85], [0.55, 0.85, 0.10]]
)  # fmt: skip


def _check_image(image, name: str) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4)) or min(img.shape[:2]) < 1:
        raise ValueError(f"{name} must be an (H,W) or (H,W,3) image array, got shape {img.shape}")
    return img


def _for_display(img: np.ndarray, max_side: int = 1000) -> np.ndarray:
    """A copy no larger than ``max_side`` pixels for drawing (figures are ~1000 px wide anyway);
    callers keep the original size in ``extent`` so that pixel coordinates are unchanged."""
    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        return img
    import cv2

    s = max_side / max(h, w)
    return cv2.resize(np.ascontiguousarray(img), (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _imshow(ax, img: np.ndarray, x0: float = 0.0) -> None:
    h, w = img.shape[:2]
    small = _for_display(img)
    ax.imshow(small, cmap="gray" if img.ndim == 2 else None, extent=(x0 - 0.5, x0 + w - 0.5, h - 0.5, -0.5))


def _show(ax, img: np.ndarray, title: str | None = None) -> None:
    h, w = img.shape[:2]
    _imshow(ax, img)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)


def _subsample(n: int, k: int, rng) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(as_rng(rng).choice(n, size=k, replace=False))


def plot_matches(
    image1,
    image2,
    x1: np.ndarray,
    x2: np.ndarray,
    *,
    inliers: np.ndarray | None = None,
    max_lines: int = 300,
    rng=0,
    title: str | None = None,
) -> Figure:
    """Both images side by side (image 2 shifted right by image 1's width) and a line per match
    x1 (N,2) -> x2 (N,2), in pixels. ``inliers`` (N,) bool colours matches green/red. At most
    ``max_lines`` matches are drawn (a seeded random subset, ``rng``)."""
    img1, img2 = _check_image(image1, "image1"), _check_image(image2, "image2")
    x1, x2 = as_points(x1, "x1", 2), as_points(x2, "x2", 2)
    n = check_same_length(x1=x1, x2=x2)
    max_lines = check_int(max_lines, "max_lines", minimum=1)
    mask = np.ones(n, dtype=bool) if inliers is None else np.asarray(inliers, dtype=bool).reshape(-1)
    if mask.shape != (n,):
        raise ValueError(f"inliers must have one entry per match ({n}), got shape {np.shape(inliers)}")
    h1, w1 = img1.shape[:2]
    h2, w2 = img2.shape[:2]
    canvas_h = max(h1, h2)
    fig = Figure(figsize=(12.0, 12.0 * canvas_h / (w1 + w2) + 0.6), layout="constrained")
    ax = fig.add_subplot()
    _imshow(ax, img1)
    _imshow(ax, img2, x0=w1)
    ax.set_xlim(-0.5, w1 + w2 - 0.5)
    ax.set_ylim(canvas_h - 0.5, -0.5)
    ax.set_axis_off()
    sel = _subsample(n, max_lines, rng)
    for is_in, colour in ((True, "#2ecc40"), (False, "#ff4136")):
        s = sel[mask[sel] == is_in]
        if len(s) == 0:
            continue
        xs = np.stack([x1[s, 0], x2[s, 0] + w1, np.full(len(s), np.nan)], axis=1).ravel()
        ys = np.stack([x1[s, 1], x2[s, 1], np.full(len(s), np.nan)], axis=1).ravel()
        ax.plot(xs, ys, "-", color=colour, linewidth=0.6, alpha=0.8)
        ax.plot(x1[s, 0], x1[s, 1], ".", x2[s, 0] + w1, x2[s, 1], ".", color=colour, markersize=2)
    counts = f"{n} matches" + ("" if inliers is None else f", {int(mask.sum())} inliers")
    shown = f" ({len(sel)} drawn)" if len(sel) < n else ""
    ax.set_title((title + ": " if title else "") + counts + shown)
    return fig


def epipolar_segments(lines: np.ndarray, width: int, height: int) -> np.ndarray:
    """End points (N,2,2) of lines (N,3) ``a u + b v + c = 0`` clipped to the image rectangle
    [-0.5, width - 0.5] x [-0.5, height - 0.5]; rows of NaN for lines that miss the image."""
    L = as_array(lines, "lines", (None, 3), finite=False)
    x0, x1, y0, y1 = -0.5, width - 0.5, -0.5, height - 0.5
    a, b, c = L[:, 0], L[:, 1], L[:, 2]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cand = np.stack(
            [
                np.stack([np.full_like(a, x0), -(a * x0 + c) / b], axis=1),  # left border
                np.stack([np.full_like(a, x1), -(a * x1 + c) / b], axis=1),  # right border
                np.stack([-(b * y0 + c) / a, np.full_like(a, y0)], axis=1),  # top border
                np.stack([-(b * y1 + c) / a, np.full_like(a, y1)], axis=1),  # bottom border
            ],
            axis=1,
        )  # (N,4,2)
    tol = 1e-9 * max(width, height)
    ok = (
        np.isfinite(cand).all(axis=2)
        & (cand[:, :, 0] >= x0 - tol) & (cand[:, :, 0] <= x1 + tol)
        & (cand[:, :, 1] >= y0 - tol) & (cand[:, :, 1] <= y1 + tol)
    )  # fmt: skip
    # direction along the line: (b, -a); the extreme valid candidates are the segment's ends
    t = cand[:, :, 0] * b[:, None] - cand[:, :, 1] * a[:, None]
    t_lo = np.where(ok, t, np.inf)
    t_hi = np.where(ok, t, -np.inf)
    i_lo, i_hi = np.argmin(t_lo, axis=1), np.argmax(t_hi, axis=1)
    rows = np.arange(len(L))
    out = np.stack([cand[rows, i_lo], cand[rows, i_hi]], axis=1)
    out[ok.sum(axis=1) == 0] = np.nan
    return out


def _point_line_distances(lines: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.abs(lines[:, 0] * x[:, 0] + lines[:, 1] * x[:, 1] + lines[:, 2])


def plot_epipolar_lines(
    image1,
    image2,
    x1: np.ndarray,
    x2: np.ndarray,
    F: np.ndarray,
    *,
    num_lines: int = 12,
    rng=0,
    title: str | None = None,
) -> Figure:
    """The textbook epipolar picture for matches x1 (N,2) <-> x2 (N,2) and ``F`` (x2^T F x1 = 0).

    ``num_lines`` matches (a seeded random subset, spread over image 1) are drawn: x1 on its
    line l1 = F^T x2 in image 1 and x2 on l2 = F x1 in image 2, one colour per match. The title
    reports the median and 90th-percentile distance of all x2 to their l2 (pixels)."""
    img1, img2 = _check_image(image1, "image1"), _check_image(image2, "image2")
    x1, x2 = as_points(x1, "x1", 2), as_points(x2, "x2", 2)
    n = check_same_length(x1=x1, x2=x2)
    F = as_array(F, "F", (3, 3))
    num_lines = check_int(num_lines, "num_lines", minimum=1)
    l2 = epipolar_lines2(F, x1)
    l1 = epipolar_lines1(F, x2)
    d2 = _point_line_distances(l2, x2)
    sel = _spread(x1, num_lines, rng)
    h1, w1 = img1.shape[:2]
    h2, w2 = img2.shape[:2]
    fig = Figure(figsize=(12.0, 6.0 * max(h1 / w1, h2 / w2) + 0.8), layout="constrained")
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    _show(ax1, img1, "image 1: x1 on l1 = F\u1d40 x2")
    _show(ax2, img2, "image 2: x2 on l2 = F x1")
    seg1, seg2 = epipolar_segments(l1[sel], w1, h1), epipolar_segments(l2[sel], w2, h2)
    for k, i in enumerate(sel):
        colour = _PALETTE[k % len(_PALETTE)]
        for ax, seg, x in ((ax1, seg1[k], x1[i]), (ax2, seg2[k], x2[i])):
            if np.isfinite(seg).all():
                ax.plot(seg[:, 0], seg[:, 1], "-", color=colour, linewidth=1.0)
            ax.plot([x[0]], [x[1]], "o", color=colour, markersize=5, markeredgecolor="black", markeredgewidth=0.6)
    stats = (
        f"{n} matches: distance of x2 to l2 median {np.median(d2):.2f} px, 90 % {np.percentile(d2, 90):.2f} px"
        if n
        else "no matches"
    )
    fig.suptitle((title + "\n" if title else "") + stats, fontsize=10)
    return fig


def _spread(x: np.ndarray, k: int, rng) -> np.ndarray:
    """Up to k indices of points spread over the image: greedy farthest-point order from a
    seeded random start."""
    n = len(x)
    if n <= k:
        return np.arange(n)
    gen = as_rng(rng)
    chosen = [int(gen.integers(n))]
    d = np.linalg.norm(x - x[chosen[0]], axis=1)
    for _ in range(k - 1):
        j = int(np.argmax(d))
        chosen.append(j)
        d = np.minimum(d, np.linalg.norm(x - x[j], axis=1))
    return np.array(chosen)


# --- pairs from a reconstruction ---------------------------------------------------------------
def best_pair(rec: Reconstruction) -> tuple[int, int]:
    """The two registered images sharing the most 3-D points: ``(image_id1, image_id2)`` with
    image_id1 < image_id2. Raises ValueError when no two images share a point."""
    if not isinstance(rec, Reconstruction):
        raise ValueError(f"rec must be a geomvision Reconstruction, got {type(rec).__name__}")
    ids = rec.registered_image_ids
    if len(ids) < 2:
        raise ValueError("the reconstruction needs two registered images for a pair")
    from scipy.sparse import csr_matrix

    iids, pids, _ = rec.observations()
    col = np.searchsorted(np.asarray(ids), iids)
    _, row = np.unique(pids, return_inverse=True)
    A = csr_matrix((np.ones(len(row)), (row, col)), shape=(int(row.max(initial=-1)) + 1, len(ids)))
    shared = (A.T @ A).toarray()  # shared[a, b] = points seen by both images a and b
    np.fill_diagonal(shared, 0)
    a, b = np.unravel_index(int(np.argmax(shared)), shared.shape)
    if shared[a, b] == 0:
        raise ValueError("no two registered images share a 3-D point")
    return (ids[a], ids[b]) if ids[a] < ids[b] else (ids[b], ids[a])


def pair_correspondences(rec: Reconstruction, image_id1: int, image_id2: int) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints x1 (K,2) of image 1 and x2 (K,2) of image 2 observing the same 3-D points."""
    im1, im2 = rec.images[image_id1], rec.images[image_id2]
    m1, m2 = np.flatnonzero(im1.point3D_ids >= 0), np.flatnonzero(im2.point3D_ids >= 0)
    _, a, b = np.intersect1d(im1.point3D_ids[m1], im2.point3D_ids[m2], return_indices=True)
    return im1.keypoints[m1[a]], im2.keypoints[m2[b]]


def pair_fundamental(rec: Reconstruction, image_id1: int, image_id2: int) -> np.ndarray:
    """F (3,3) of two registered images from their poses and the pinhole part K of their
    cameras (x2^T F x1 = 0 for distortion-free pixels)."""
    im1, im2 = rec.images[image_id1], rec.images[image_id2]
    if im1.cam_from_world is None or im2.cam_from_world is None:
        raise ValueError(f"images {image_id1} and {image_id2} must both be registered")
    cam2_from_cam1 = im2.cam_from_world @ im1.cam_from_world.inverse()
    return fundamental_from_pose(cam2_from_cam1, rec.cameras[im1.camera_id].K, rec.cameras[im2.camera_id].K)


def undistort_image(image, camera: Camera) -> np.ndarray:
    """Resample ``image`` (taken with ``camera``) into the distortion-free image of the
    camera's pinhole part K (same size): pixel p of the result shows what the lens maps to
    ``camera.img_from_cam(K^-1 p)``. Returns the image unchanged without distortion."""
    import cv2

    img = _check_image(image, "image")
    if not camera.has_distortion:
        return img
    h, w = img.shape[:2]
    if (w, h) != (camera.width, camera.height):
        raise ValueError(f"image is {w}x{h} but the camera is {camera.width}x{camera.height}")
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pix = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=1)
    rays = pix @ np.linalg.inv(camera.K).T
    src = camera.img_from_cam(rays)
    src = np.where(np.isfinite(src), src, -1e6).astype(np.float32)
    mx, my = src[:, 0].reshape(h, w), src[:, 1].reshape(h, w)
    return cv2.remap(np.ascontiguousarray(img), mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
