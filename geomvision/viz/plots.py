"""Statistics plots of a reconstruction (matplotlib, Agg: never opens a window).

Each function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
figure state, no GUI backend); :func:`figure_png` encodes one, :func:`save_figure` writes it
atomically.

- :func:`plot_reprojection_errors`: histogram of per-observation reprojection errors (pixels);
- :func:`plot_track_lengths`: histogram of track lengths (observations per 3-D point);
- :func:`plot_observations_per_image`: 3-D points seen by each registered image, in name order;
- :func:`plot_top_side_views`: orthographic top and side views of the points and cameras, in the
  scene frame of :mod:`geomvision.viz.scene` (top: ``right`` across, ``forward`` up the page;
  side: ``forward`` across, ``up`` up the page).
"""

from __future__ import annotations

import io
import os

import numpy as np
from matplotlib.figure import Figure

from .._atomic import atomic_write_bytes
from ..scene.reconstruction import Reconstruction
from .scene import build_scene

__all__ = [
    "figure_png",
    "plot_observations_per_image",
    "plot_reprojection_errors",
    "plot_top_side_views",
    "plot_track_lengths",
    "save_figure",
]


def _check_rec(rec) -> Reconstruction:
    if not isinstance(rec, Reconstruction):
        raise ValueError(f"rec must be a geomvision Reconstruction, got {type(rec).__name__}")
    return rec


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """Encode ``fig`` as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> None:
    """Write ``fig`` as a PNG to ``path``, atomically."""
    atomic_write_bytes(path, figure_png(fig, dpi))


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_reprojection_errors(rec: Reconstruction, *, bins: int = 50, max_error: float | None = None) -> Figure:
    """Histogram of the reprojection error of every observation (pixels), with mean and median
    marked. ``max_error``: right end of the axis (default: the 99.5th percentile); larger errors
    are counted in the last bin (the title says how many)."""
    _, _, err = _check_rec(rec).reprojection_errors()
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    finite = err[np.isfinite(err)]
    if len(finite) == 0:
        _empty(ax, "no observations")
        ax.set_title("Reprojection error")
        return fig
    top = float(max_error) if max_error is not None else float(np.percentile(finite, 99.5))
    top = top if top > 0 else max(float(finite.max()), 1e-3)
    ax.hist(np.minimum(finite, top), bins=bins, range=(0.0, top), color="#4a7bd0")
    mean, med = float(finite.mean()), float(np.median(finite))
    ax.axvline(mean, color="#d0453a", label=f"mean {mean:.3f} px")
    ax.axvline(med, color="#222222", linestyle="--", label=f"median {med:.3f} px")
    n_over = int(np.count_nonzero(finite > top)) + int(np.count_nonzero(~np.isfinite(err)))
    extra = f", {n_over} above {top:.2f} px or behind" if n_over else ""
    ax.set_title(f"Reprojection error ({len(err)} observations{extra})")
    ax.set_xlabel("error (px)")
    ax.set_ylabel("observations")
    ax.legend()
    return fig


def plot_track_lengths(rec: Reconstruction) -> Figure:
    """Histogram of track lengths (observations per 3-D point), one bar per length."""
    lengths = np.array([p.track_length for p in _check_rec(rec).points3D.values()], dtype=np.int64)
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    if len(lengths) == 0:
        _empty(ax, "no 3-D points")
        ax.set_title("Track length")
        return fig
    counts = np.bincount(lengths)
    ks = np.flatnonzero(counts)
    ax.bar(ks, counts[ks], width=0.8, color="#4a7bd0")
    ax.set_title(f"Track length ({len(lengths)} points, mean {lengths.mean():.2f})")
    ax.set_xlabel("observations per point")
    ax.set_ylabel("points")
    if len(ks) <= 30:
        ax.set_xticks(ks)
    return fig


def plot_observations_per_image(rec: Reconstruction) -> Figure:
    """Bar chart of the 3-D points each registered image observes, in image-name order."""
    rec = _check_rec(rec)
    ids = sorted(rec.registered_image_ids, key=lambda i: rec.images[i].name)
    counts = np.array([rec.images[i].num_points3D for i in ids], dtype=np.int64)
    fig = Figure(figsize=(max(6.4, min(16.0, 0.25 * len(ids) + 2)), 3.6), layout="constrained")
    ax = fig.add_subplot()
    if len(ids) == 0:
        _empty(ax, "no registered images")
        ax.set_title("Observations per image")
        return fig
    ax.bar(np.arange(len(ids)), counts, color="#4a7bd0")
    ax.set_title(f"Observations per image ({len(ids)} registered, median {np.median(counts):.0f})")
    ax.set_ylabel("3-D points observed")
    if len(ids) <= 40:
        ax.set_xticks(np.arange(len(ids)), [rec.images[i].name for i in ids], rotation=60, ha="right", fontsize=8)
    else:
        ax.set_xlabel("registered images in name order")
    return fig


def plot_top_side_views(model, *, max_points: int = 50_000) -> Figure:
    """Orthographic top and side views of the points (their colours; the 2nd-98th percentile on
    each axis) and the camera centres with their viewing directions, in the scene frame.

    ``model``: a Reconstruction, LoadedModel, path or (N,3) points. At most ``max_points``
    points are drawn (an even subsample)."""
    layers = build_scene(model)
    fr = layers.frame
    pts = layers.points[layers.inlier_points]
    cols = layers.colors[layers.inlier_points]
    if len(pts) > max_points:
        keep = np.linspace(0, len(pts) - 1, max_points).astype(np.int64)
        pts, cols = pts[keep], cols[keep]
    centres = layers.camera_centres
    dirs = np.array([c.cam_from_world.R[2] for c in layers.cameras]).reshape(-1, 3)
    fig = Figure(figsize=(11.0, 5.0), layout="constrained")
    views = (("Top view", fr.right, fr.forward, "right", "forward"), ("Side view", fr.forward, fr.up, "forward", "up"))
    arrow = 2.0 * layers.frustum_scale
    for k, (title, ax_u, ax_v, lab_u, lab_v) in enumerate(views):
        ax = fig.add_subplot(1, 2, k + 1)
        rel = pts - fr.centre
        ax.scatter(rel @ ax_u, rel @ ax_v, s=1.0, c=cols, linewidths=0, rasterized=True)
        if len(centres):
            rc = centres - fr.centre
            cu, cv = rc @ ax_u, rc @ ax_v
            ax.plot(cu, cv, "o", color="#d0453a", markersize=3, label="cameras")
            ax.quiver(cu, cv, arrow * (dirs @ ax_u), arrow * (dirs @ ax_v), color="#d0453a",
                      angles="xy", scale_units="xy", scale=1.0, width=0.003)
            ax.legend(loc="upper right", fontsize=8)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(title)
        ax.set_xlabel(lab_u)
        ax.set_ylabel(lab_v)
    return fig
