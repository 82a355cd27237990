"""VisualSFM's NVM v3 model files, as VisualSFM, PBA, CMVS/PMVS tooling and OpenMVS read them.

    write_nvm(rec, "model.nvm")

Layout (one model, then VisualSFM's end of the model list and an empty PLY section)::

    NVM_V3

    <number of cameras>
    <file name> <focal> <qw> <qx> <qy> <qz> <Cx> <Cy> <Cz> <radial> 0
    <number of points>
    <X> <Y> <Z> <R> <G> <B> <number of measurements> (<image index> <feature index> <x> <y>)...

Conventions (VisualSFM's documentation and PBA's ``LoadNVM``, which defines the projection):

- The camera looks down +z with y down in the image (OpenCV's frame, like geomvision's); the
  quaternion (w, x, y, z) is the rotation of ``cam_from_world`` (w >= 0) and ``C`` the camera
  centre in the world: ``X_cam = R (X - C)``.
- Measurements are pixels relative to the image centre, x right and y down:
  ``(u - (W - 1) / 2, v - (H - 1) / 2)`` in geomvision pixels. There is no principal point.
- Distortion is one coefficient applied to the *measurement*: the undistorted normalised point is
  ``(m / f) (1 + r |m / f|^2)`` and must equal ``X_cam[:2] / X_cam[2]``. COLMAP's exporter
  writes ``r = -k`` of a SIMPLE_RADIAL camera (first order); here r is fitted over the image (see
  ``_centred_lens``), and a camera the format cannot hold within ``max_error`` pixels is refused.
- Image indices count the registered images in id order; feature indices are keypoint indices.
  A point keeps one measurement per image (VisualSFM's limit; the first in its track).
- Whitespace in file names is written as ``"`` (VisualSFM 0.5.7 and later).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_text
from .._validation import check_writer_arguments
from ..geometry.rotation import quat_wxyz_from_rotmat
from ..scene.reconstruction import Reconstruction
from ._centred_lens import check_error, fit_measurement_radial, image_centre
from ._parsing import format_floats

__all__ = ["write_nvm"]


def _file_name(name: str, image_dir: str | os.PathLike | None, folder: Path) -> str:
    path = name if image_dir is None else os.path.relpath(Path(image_dir) / name, folder)
    return "".join('"' if c.isspace() else c for c in Path(path).as_posix())


def write_nvm(rec: Reconstruction, path: str | os.PathLike, *, image_dir: str | os.PathLike | None = None,
              max_error: float = 1.0) -> dict:
    """Write the registered images and the points of ``rec`` as an NVM v3 file, atomically.

    ``image_dir``: where the images are; file names are then written relative to the file's folder
    (default: the model's image names as they are). ``max_error`` (pixels): the largest error the
    format's camera (one focal length, principal point at the image centre, one radial term) may
    make over the image; a camera that needs more raises ValueError naming it and the fixes.
    Returns ``{"max_error_px": worst camera approximation, "dropped_measurements": repeated
    observations of a point in one image, left out}``."""
    check_writer_arguments(rec, "write_nvm", "(rec, path)")
    if not isinstance(rec, Reconstruction):
        raise ValueError(f"rec must be a Reconstruction, got {type(rec).__name__}")
    target = Path(os.fspath(path))
    image_ids = rec.registered_image_ids
    if not image_ids:
        raise ValueError("the model has no registered image: an NVM file needs at least one camera")
    lenses = {}
    for cid in sorted({rec.images[i].camera_id for i in image_ids}):
        lens = fit_measurement_radial(rec.cameras[cid])
        check_error(lens, cid, rec.cameras[cid], "NVM", max_error)
        lenses[cid] = lens
    index = {iid: k for k, iid in enumerate(image_ids)}
    lines = ["NVM_V3", "", str(len(image_ids))]
    for iid in image_ids:
        img = rec.images[iid]
        lens = lenses[img.camera_id]
        T = img.cam_from_world
        values = [lens.focal, *quat_wxyz_from_rotmat(T.R), *(-T.R.T @ T.t), lens.coeffs[0]]
        lines.append(" ".join([_file_name(img.name, image_dir, target.parent), *format_floats(values), "0"]))
    lines.append("")
    lines.append(str(len(rec.points3D)))
    dropped = 0
    for pid in sorted(rec.points3D):
        pt = rec.points3D[pid]
        seen: set[int] = set()
        meas = []
        for image_id, kp_idx in pt.track.tolist():
            if image_id in seen or image_id not in index:
                dropped += image_id in seen
                continue
            seen.add(image_id)
            img = rec.images[image_id]
            m = img.keypoints[kp_idx] - image_centre(rec.cameras[img.camera_id])
            meas.append(f"{index[image_id]} {kp_idx} {' '.join(format_floats(m))}")
        rgb = " ".join(str(int(c)) for c in pt.color)
        lines.append(f"{' '.join(format_floats(pt.xyz))} {rgb} {len(meas)} {' '.join(meas)}".rstrip())
    # VisualSFM ends the list of models with an empty one and then lists the PLY files (none)
    lines += ["", "", "0", "", "#the last part of NVM file points to the PLY files",
              "#the first number is the number of associated PLY files",
              "#each following number gives a model-index that has a PLY file", "0", ""]
    atomic_write_text(target, "\n".join(lines))
    return {"max_error_px": max(lens.max_error_px for lens in lenses.values()), "dropped_measurements": dropped}
