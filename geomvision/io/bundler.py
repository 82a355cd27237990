"""Bundler v0.3 ``bundle.out`` files with their ``list.txt``, as Bundler, PMVS, MeshLab and
OpenMVS read them.

    write_bundler(rec, "bundle.out")          # and list.txt beside it

Layout (Bundler's user manual, "Output format")::

    # Bundle file v0.3
    <num_cameras> <num_points>
    <f> <k1> <k2>                      per camera
    <R: 3 lines of 3>
    <t: 1 line of 3>
    <position X Y Z>                   per point
    <colour R G B>
    <n> (<camera> <key> <x> <y>)...

Conventions, from the manual:

- ``P = R X + t`` and the camera looks down **-z** with **y up**: Bundler's camera frame is
  geomvision's (OpenCV: +z forward, y down) turned half a turn about x, so ``R = F R_cv`` and
  ``t = F t_cv`` with ``F = diag(1, -1, -1)``.
- Projection: ``p = -P / P_z``, ``p' = f (1 + k1 |p|^2 + k2 |p|^4) p``: pixels relative to the
  image centre with x right and y **up**; ``(-w/2, -h/2)`` is the lower-left corner of the
  image. A geomvision keypoint (u, v) is written ``(u - (w - 1) / 2, (h - 1) / 2 - v)``.
- The camera has one focal length, its principal point at the image centre and two radial
  terms. SIMPLE_PINHOLE, SIMPLE_RADIAL and RADIAL cameras are written exactly (up to the
  principal point's offset from the centre); others are fitted (``_centred_lens``) and refused
  beyond ``max_error`` pixels.
- Cameras are the registered images in id order (as COLMAP's exporter); ``list.txt`` names their
  images in the same order, one per line. Keys are keypoint indices.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_text
from .._validation import check_writer_arguments
from ..scene.reconstruction import Reconstruction
from ._centred_lens import check_error, fit_projection_radial, image_centre
from ._parsing import format_floats

__all__ = ["write_bundler"]

_FLIP = np.diag([1.0, -1.0, -1.0])  # OpenCV camera frame -> Bundler's (y up, looking down -z)


def write_bundler(rec: Reconstruction, path: str | os.PathLike, *, list_path: str | os.PathLike | None = None,
                  image_dir: str | os.PathLike | None = None, max_error: float = 1.0) -> dict:
    """Write the registered images and the points of ``rec`` as a Bundler v0.3 file and its image
    list (default ``list.txt`` beside ``path``), atomically.

    ``image_dir``: where the images are; ``list.txt`` then names them relative to its own folder
    (default: the model's image names). ``max_error`` (pixels): the largest error Bundler's camera
    may make over the image (see the module docstring); worse cameras raise ValueError naming the
    fixes. Returns ``{"max_error_px": worst camera approximation, "list_path": Path}``."""
    check_writer_arguments(rec, "write_bundler", "(rec, path)")
    if not isinstance(rec, Reconstruction):
        raise ValueError(f"rec must be a Reconstruction, got {type(rec).__name__}")
    target = Path(os.fspath(path))
    list_file = target.with_name("list.txt") if list_path is None else Path(os.fspath(list_path))
    if list_file.resolve() == target.resolve():
        raise ValueError(f"list_path: {list_file} is the bundle file itself; give the image list another name")
    image_ids = rec.registered_image_ids
    if not image_ids:
        raise ValueError("the model has no registered image: a Bundler file needs at least one camera")
    lenses = {}
    for cid in sorted({rec.images[i].camera_id for i in image_ids}):
        lens = fit_projection_radial(rec.cameras[cid], 2)
        check_error(lens, cid, rec.cameras[cid], "Bundler", max_error)
        lenses[cid] = lens
    index = {iid: k for k, iid in enumerate(image_ids)}
    lines = ["# Bundle file v0.3", f"{len(image_ids)} {len(rec.points3D)}"]
    names = []
    for iid in image_ids:
        img = rec.images[iid]
        lens = lenses[img.camera_id]
        R = _FLIP @ img.cam_from_world.R
        t = _FLIP @ img.cam_from_world.t
        lines.append(" ".join(format_floats([lens.focal, *lens.coeffs])))
        lines += [" ".join(format_floats(row)) for row in R]
        lines.append(" ".join(format_floats(t)))
        name = img.name if image_dir is None else os.path.relpath(Path(image_dir) / img.name, list_file.parent)
        if any(c in name for c in "\n\r"):
            raise ValueError(f"image name {name!r} holds a line break, which list.txt cannot store")
        names.append(Path(name).as_posix())
    for pid in sorted(rec.points3D):
        pt = rec.points3D[pid]
        lines.append(" ".join(format_floats(pt.xyz)))
        lines.append(" ".join(str(int(c)) for c in pt.color))
        views = []
        for image_id, kp_idx in pt.track.tolist():
            if image_id not in index:
                continue
            img = rec.images[image_id]
            d = img.keypoints[kp_idx] - image_centre(rec.cameras[img.camera_id])
            views.append(f"{index[image_id]} {kp_idx} {' '.join(format_floats([d[0], -d[1]]))}")
        lines.append(" ".join([str(len(views)), *views]))
    atomic_write_text(target, "\n".join(lines) + "\n")
    atomic_write_text(list_file, "".join(f"{n}\n" for n in names))
    return {"max_error_px": max(lens.max_error_px for lens in lenses.values()), "list_path": list_file}
