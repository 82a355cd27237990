"""One self-contained HTML page about a reconstruction: ``geomvision report MODEL -o DIR``.

:func:`write_report` writes ``DIR/report.html`` (atomically; every image embedded as a base64
PNG, no other file needed) with

- the summary numbers (``Reconstruction.summary()``) and, for an sfm output folder, the
  numbers of its ``report.json``;
- screenshots rendered offscreen (through the first camera and from the top; top and side for a
  model without cameras) when open3d can render here, else a note saying why not;
- the statistics plots (reprojection errors, track lengths, observations per image, top and
  side views);
- for the two images sharing the most 3-D points, when the images can be found: their matches
  (keypoints observing the same points) and the epipolar lines of F from the two poses.
  Images are looked up in ``images_dir``, else in the folder that ``report.json`` names under
  ``image_dir``/``images_dir``/``image_path``/``images`` (relative to the sfm folder), else in
  ``images/`` in, beside or one level above the model folder (COLMAP's ``project/images`` next
  to ``project/sparse/0``). Images of another size than their camera are resized to it; images of a
  camera with lens distortion are undistorted first (epipolar lines are straight only then).

What could not be drawn is listed under "Notes" instead of failing the report.
"""

from __future__ import annotations

import base64
import datetime
import html
import os
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_text
from .loading import LoadedModel, load_model

__all__ = ["find_images_dir", "write_report"]

_IMAGE_DIR_KEYS = ("image_dir", "images_dir", "image_path", "images")


def _png_tag(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _flatten(d: dict, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """Scalar entries of a JSON object (two levels deep; short lists of scalars joined)."""
    rows: list[tuple[str, str]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and depth < 2:
            rows += _flatten(v, key + ".", depth + 1)
        elif isinstance(v, (int, float, str, bool)) or v is None:
            rows.append((key, _fmt(v)))
        elif isinstance(v, list) and len(v) <= 8 and all(isinstance(x, (int, float, str, bool)) for x in v):
            rows.append((key, ", ".join(_fmt(x) for x in v)))
    return rows


def _loop_rows(report: dict) -> list[tuple[str, str]]:
    """One row per retrieval pair of an sfm report.json, verified ones first."""
    pairs = report.get("retrieval_pairs") or []
    pairs = sorted((p for p in pairs if isinstance(p, dict) and "pair" in p),
                   key=lambda p: (not p.get("verified"), -float(p.get("num_inliers") or 0)))
    return [(" - ".join(map(str, p["pair"])),
             f"{'verified' if p.get('verified') else 'not verified'}, {p.get('num_inliers', 0)} inliers "
             f"({p.get('config', '?')}), similarity {_fmt(p.get('similarity'))}") for p in pairs]


def _merge_rows(report: dict) -> list[tuple[str, str]]:
    """One row per model merge of an sfm report.json (done, then refused), with its evidence."""
    merges = report.get("model_merges") or {}
    rows = []
    for m in merges.get("merged") or []:
        if not isinstance(m, dict):
            continue
        depths = m.get("scale_from_depths")
        if isinstance(depths, dict):
            how = (f"scale from the depths seen from {depths.get('hub')}: {depths.get('agreeing')} of "
                   f"{depths.get('pairs')} neighbouring points agree")
        elif m.get("cross_2d3d_inliers") is not None:
            how = f"scale from {m['cross_2d3d_inliers']} 2D-3D correspondences across the models"
        else:
            how = "similarity from the pairs' directions"
        rows.append((f"merged: {', '.join(map(str, m.get('images') or []))}",
                     f"into model {m.get('into')}, scale {_fmt(m.get('scale'))}; {how}; pairs "
                     f"{', '.join(map(str, m.get('pairs') or []))}"))
    for m in merges.get("refused") or []:
        if isinstance(m, dict):
            rows.append((f"refused: model {m.get('model')} into {m.get('into')}", str(m.get("reason", ""))))
    return rows


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def find_images_dir(model: LoadedModel, images_dir: str | os.PathLike | None = None) -> Path | None:
    """Where the model's images are (see the module docstring); None when not found."""
    if images_dir is not None:
        p = Path(os.fspath(images_dir))
        if not p.is_dir():
            raise ValueError(f"images_dir: {str(p)!r} is not a folder")
        return p
    base = model.source if model.source.is_dir() else model.source.parent
    for key in _IMAGE_DIR_KEYS:
        value = (model.report or {}).get(key)
        if isinstance(value, str) and value:
            p = Path(value)
            p = p if p.is_absolute() else base / p
            if p.is_dir():
                return p
    for cand in (base / "images", base.parent / "images", base.parent.parent / "images"):
        if cand.is_dir():
            return cand
    return None


def _read_image_for(path: Path, camera) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.shape[:2] != (camera.height, camera.width):
        img = cv2.resize(img, (camera.width, camera.height), interpolation=cv2.INTER_AREA)
    return img


def _pair_figures(rec, images_dir: Path) -> list[str]:
    from .pairs import (
        best_pair,
        pair_correspondences,
        pair_fundamental,
        plot_epipolar_lines,
        plot_matches,
        undistort_image,
    )
    from .plots import figure_png

    id1, id2 = best_pair(rec)
    im1, im2 = rec.images[id1], rec.images[id2]
    cam1, cam2 = rec.cameras[im1.camera_id], rec.cameras[im2.camera_id]
    paths = [images_dir / im1.name, images_dir / im2.name]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"image file(s) not found: {', '.join(missing)}")
    img1, img2 = _read_image_for(paths[0], cam1), _read_image_for(paths[1], cam2)
    x1, x2 = pair_correspondences(rec, id1, id2)
    label = f"{im1.name} and {im2.name}"
    out = [_png_tag(figure_png(plot_matches(img1, img2, x1, x2, title=label)), "matches",
                    f"Keypoints of {label} that observe the same 3-D points ({len(x1)}).")]
    # epipolar lines are straight in distortion-free images: undistort images and keypoints
    u1 = (cam1.cam_from_img(x1) @ cam1.K.T)[:, :2] if cam1.has_distortion else x1
    u2 = (cam2.cam_from_img(x2) @ cam2.K.T)[:, :2] if cam2.has_distortion else x2
    F = pair_fundamental(rec, id1, id2)
    note = " (images and keypoints undistorted)" if cam1.has_distortion or cam2.has_distortion else ""
    fig = plot_epipolar_lines(undistort_image(img1, cam1), undistort_image(img2, cam2), u1, u2, F, title=label)
    out.append(_png_tag(figure_png(fig), "epipolar lines",
                        f"Epipolar geometry of {label}: F from the two reconstructed poses{note}; "
                        "each x2 should lie on its line l2 = F x1."))
    return out


def _screenshots(model: LoadedModel, has_cameras: bool, width: int, height: int) -> list[str]:
    from .offscreen import png_bytes, render_screenshot
    from .scene import build_scene

    layers = build_scene(model)
    views = ("first-camera", "top") if has_cameras else ("top", "side")
    out = []
    for vp in views:
        size = {"width": width} if vp == "first-camera" else {"width": width, "height": height}
        shot = render_screenshot(layers, viewpoint=vp, point_size=3.0, **size)
        out.append(_png_tag(png_bytes(shot.image), f"screenshot {vp}", f"Rendered view: {vp}."))
    return out


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { text-align: left; padding: 0.2em 1em 0.2em 0; border-bottom: 1px solid #eee; font-weight: normal; }
th { color: #555; } td { font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; } .meta { color: #666; font-size: 0.9em; }
"""


def write_report(
    model,
    out_dir: str | os.PathLike,
    *,
    images_dir: str | os.PathLike | None = None,
    screenshots: bool = True,
    title: str | None = None,
    width: int = 1024,
    height: int = 768,
) -> Path:
    """Write ``out_dir/report.html`` for ``model`` (a path, LoadedModel or Reconstruction) and
    return its path. ``images_dir``: where the model's images are (see the module docstring);
    ``screenshots=False`` skips the offscreen renders; ``width``/``height``: their size."""
    from ..scene.reconstruction import Reconstruction
    from .plots import (
        figure_png,
        plot_observations_per_image,
        plot_reprojection_errors,
        plot_top_side_views,
        plot_track_lengths,
    )

    if isinstance(model, Reconstruction):
        _, xyz, colors = model.point_arrays()
        model = LoadedModel(Path("reconstruction"), "reconstruction", model, xyz, colors)
    elif not isinstance(model, LoadedModel):
        model = load_model(model)
    out = Path(os.fspath(out_dir))
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir: {str(out)!r} exists and is not a folder")
    if images_dir is not None and not Path(os.fspath(images_dir)).is_dir():
        raise ValueError(f"images_dir: {str(images_dir)!r} is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    rec = model.reconstruction
    notes: list[str] = []
    sections: list[str] = []

    rows = [("source", str(model.source)), ("kind", model.kind)]
    if model.model_dir is not None:
        rows.append(("model folder", str(model.model_dir)))
    if model.other_models:
        rows.append(("other models (not shown)", ", ".join(p.name for p in model.other_models)))
    if rec is not None:
        rows += [(k.replace("_", " "), _fmt(v)) for k, v in rec.summary().items()]
    else:
        rows.append(("points", str(len(model.xyz))))
        notes.append("The model is a point cloud without cameras: no camera statistics or two-view figures.")
    sections.append("<h2>Summary</h2>" + _table(rows))
    if model.report:
        sections.append("<h2>report.json</h2>" + _table(_flatten(model.report)))
        loops = _loop_rows(model.report)
        if loops:
            sections.append("<h2>Loop candidates</h2><p>Pairs proposed by image retrieval beyond the sequential "
                            "window, and whether two-view geometry verified them.</p>" + _table(loops))
        merges = _merge_rows(model.report)
        if merges:
            sections.append("<h2>Model merges</h2><p>Models joined while mapping, with the evidence that fixed "
                            "the similarity between them, and the merges refused.</p>" + _table(merges))

    if screenshots:
        try:
            shots = _screenshots(model, rec is not None and rec.num_registered_images > 0, width, height)
            sections.append("<h2>Screenshots</h2>" + "".join(shots))
        except (ImportError, RuntimeError, ValueError) as exc:
            notes.append(f"No screenshot: {exc}")

    figs = []
    if rec is not None:
        figs += [
            (plot_reprojection_errors(rec), "reprojection errors", "Reprojection error of every observation."),
            (plot_track_lengths(rec), "track lengths", "Observations per 3-D point."),
            (plot_observations_per_image(rec), "observations per image", "3-D points seen by each registered image."),
        ]
    if len(model.xyz) or (rec is not None and rec.num_registered_images):
        figs.append((plot_top_side_views(model), "top and side views",
                     "Points (2nd-98th percentile) and camera centres with viewing directions, orthographic."))
    if figs:
        sections.append("<h2>Plots</h2>" + "".join(_png_tag(figure_png(f), a, c) for f, a, c in figs))

    if rec is not None and rec.num_registered_images >= 2:
        found = find_images_dir(model, images_dir)
        if found is None:
            notes.append("Two-view figures skipped: the images were not found (pass --images DIR).")
        else:
            try:
                sections.append("<h2>Two views</h2>" + "".join(_pair_figures(rec, found)))
            except ValueError as exc:
                notes.append(f"Two-view figures skipped: {exc}")

    if notes:
        sections.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    from .. import __version__

    name = title or f"geomvision report: {model.name}"
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(name)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{html.escape(name)}</h1>"
        f'<p class="meta">geomvision {__version__}, {stamp}</p>' + "\n".join(sections) + "</body></html>\n"
    )
    path = out / "report.html"
    atomic_write_text(path, page)
    return path
