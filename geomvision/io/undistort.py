"""Undistort images and models into PINHOLE cameras, as COLMAP's ``image_undistorter`` does.

Gaussian splatting, most NeRF code that reads COLMAP folders, COLMAP's own ``patch_match_stereo``
and OpenMVS want pinhole images: no lens distortion, no skew. :func:`undistort_model` writes
COLMAP's undistorter layout::

    out/images/<name>            undistorted images (same names and formats as the input)
    out/sparse/                  the model with PINHOLE cameras (binary; ``sparse_subdir`` adds a
                                 level, e.g. sparse/0 for the original 3DGS loader)
    out/stereo/patch-match.cfg   COLMAP's MVS configuration (every image, ``__auto__, 20``)
    out/stereo/fusion.cfg        and empty depth_maps/, normal_maps/, consistency_graphs/

**The new camera** (:func:`undistorted_camera`) follows COLMAP's ``UndistortCamera``: it keeps
the focal lengths (so the centre of the image keeps its resolution), drops distortion and skew,
and picks the image size so that the principal point stays in the same *relative* position
(``(cx + 0.5) / width`` is unchanged: a centred principal point stays centred, which loaders
that ignore cx, cy, like the original 3DGS, rely on). How large: ``blank_pixels = 0`` (the
default, as COLMAP's) crops to valid pixels, so every output pixel sees the input image and no
black border appears; ``blank_pixels = 1`` keeps every input pixel, leaving black corners;
values between interpolate. The scale is clipped to ``[min_scale, max_scale]`` (0.2, 2 like
COLMAP) and ``max_image_size`` then downsamples. A camera without distortion or skew is kept as
is (and its images are copied byte for byte).

**Pixels.** Every output pixel centre is sent through the PINHOLE camera to a ray and projected
by the input camera (the exact model, not an approximation); OpenCV's ``remap`` then samples the
input bilinearly. Output pixels whose source lies outside the input image (beyond its outer
pixel edges) are black. Images keep their bit depth and channels (grey, alpha, 16 bit).

**The model.** Poses and 3-D points are unchanged; each keypoint is moved to where the PINHOLE
camera sees its ray (keypoints outside the lens model's invertible region, which COLMAP sets to
NaN, are mapped with the linear part of the camera instead and counted in the report). Only
registered images are written, as COLMAP does.
"""

from __future__ import annotations

import copy
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._atomic import atomic_write, atomic_write_bytes, atomic_write_text
from .._validation import check_writer_arguments
from ..geometry.camera import Camera
from ..scene.reconstruction import Reconstruction

__all__ = [
    "UndistortOptions",
    "UndistortReport",
    "undistort_image",
    "undistort_model",
    "undistort_reconstruction",
    "undistorted_camera",
    "undistortion_maps",
]

# rows of output pixels projected at a time (bounds the temporary ray arrays to ~100 MB)
_ROWS_PER_CHUNK = 1 << 20


@dataclass(frozen=True)
class UndistortOptions:
    """How the PINHOLE camera of an undistorted image is chosen (COLMAP's ``UndistortCameraOptions``).

    blank_pixels : 0 (default) crops to valid pixels: no black border. 1 keeps every input pixel
        (black corners). Between: interpolated. Unitless, in [0, 1].
    min_scale, max_scale : bounds of the output size relative to the input (0.2 and 2, as COLMAP),
        so that a strong fisheye does not produce a huge or a tiny image.
    max_image_size : when set, the larger side of the output is at most this many pixels
        (the camera is rescaled after the crop); None keeps the resolution.
    jpeg_quality : 1..100, for images written as JPEG (default 95).
    """

    blank_pixels: float = 0.0
    min_scale: float = 0.2
    max_scale: float = 2.0
    max_image_size: int | None = None
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        if not (isinstance(self.blank_pixels, (int, float)) and 0.0 <= self.blank_pixels <= 1.0):
            raise ValueError(f"blank_pixels must be a number in [0, 1] (0 crops to valid pixels, 1 keeps all), "
                             f"got {self.blank_pixels!r}")
        for name in ("min_scale", "max_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if self.min_scale > self.max_scale:
            raise ValueError(f"min_scale ({self.min_scale}) must not exceed max_scale ({self.max_scale})")
        if self.max_image_size is not None and not (
            isinstance(self.max_image_size, int) and not isinstance(self.max_image_size, bool)
            and self.max_image_size >= 1
        ):
            raise ValueError(f"max_image_size must be a positive integer (pixels) or None, got {self.max_image_size!r}")
        if not (isinstance(self.jpeg_quality, int) and 1 <= self.jpeg_quality <= 100):
            raise ValueError(f"jpeg_quality must be an integer in 1..100, got {self.jpeg_quality!r}")


@dataclass
class UndistortReport:
    """What :func:`undistort_model` wrote.

    ``cameras[camera_id] = (input camera, PINHOLE camera)``; ``images_written`` /
    ``images_copied`` count undistorted and byte-copied images; ``keypoints_linear`` counts
    keypoints outside the lens model's invertible region (mapped linearly, see the module
    docstring); ``principal_point_offset_px[camera_id]`` is the distance of the PINHOLE
    principal point from the image centre (tools that ignore cx, cy are off by about that much).
    """

    out_dir: Path
    model_dir: Path
    cameras: dict[int, tuple[Camera, Camera]] = field(default_factory=dict)
    images_written: int = 0
    images_copied: int = 0
    keypoints_linear: int = 0
    principal_point_offset_px: dict[int, float] = field(default_factory=dict)


# --- the camera -----------------------------------------------------------------------------------
def _is_pinhole(camera: Camera) -> bool:
    return camera.model in ("SIMPLE_PINHOLE", "PINHOLE")


def _border_pixels(width: int, height: int) -> dict[str, np.ndarray]:
    """Centres of the outer pixels of each side, (N,2)."""
    us = np.arange(width, dtype=np.float64)
    vs = np.arange(height, dtype=np.float64)
    return {
        "left": np.column_stack([np.zeros(height), vs]),
        "right": np.column_stack([np.full(height, width - 1.0), vs]),
        "top": np.column_stack([us, np.zeros(width)]),
        "bottom": np.column_stack([us, np.full(width, height - 1.0)]),
    }


def _side_range(camera: Camera, pixels: np.ndarray, axis: int, f: float, c: float, side: str) -> tuple[float, float]:
    """(min, max) along ``axis`` of the border pixels' rays seen by the pinhole camera (f, c)."""
    rays = camera.cam_from_img(pixels)
    coord = f * rays[:, axis] + c
    coord = coord[np.isfinite(coord)]
    if coord.size == 0:
        raise ValueError(f"camera {camera!r}: no pixel of the {side} image border can be unprojected by the lens "
                         "model; the camera parameters are unusable for undistortion")
    return float(coord.min()), float(coord.max())


def _axis_scale(lo: tuple[float, float], hi: tuple[float, float], c: float, size: int, blank_pixels: float) -> float:
    """The output/input size ratio along one axis (see the module docstring).

    ``lo``/``hi``: (min, max) coordinate of the first/last border pixel centres in the pinhole
    image; ``c`` the principal point; with the output size ``s * size`` and principal point
    ``s * (c + 0.5) - 0.5``, its outer pixel centres lie ``s (c + 0.5) - 0.5`` before and
    ``s (size - c - 0.5) - 0.5`` after the principal point."""
    before, after = c + 0.5, size - c - 0.5
    # every output pixel valid: the outer output pixel centres lie inside the border curves
    s_crop = min((c - lo[1] + 0.5) / before, (hi[0] - c + 0.5) / after)
    # every input pixel kept: the border curves lie inside the outer output pixel centres
    s_keep = max((c - lo[0] + 0.5) / before, (hi[1] - c + 0.5) / after)
    if not (s_crop > 0 and s_keep > 0):
        raise ValueError("the lens model folds the image border over the principal point; "
                         "the camera parameters are unusable for undistortion")
    return 1.0 / (blank_pixels / s_keep + (1.0 - blank_pixels) / s_crop)


def _scaled_size(scale: float, size: int, blank_pixels: float) -> int:
    exact = scale * size
    nearest = round(exact)
    if abs(exact - nearest) < 1e-6:
        return max(1, int(nearest))
    # crop: round down (stays inside the valid pixels); keep all: round up (keeps every pixel)
    rounded = math.floor(exact) if blank_pixels < 0.5 else math.ceil(exact)
    return max(1, int(rounded))


def undistorted_camera(camera: Camera, options: UndistortOptions | None = None) -> Camera:
    """The PINHOLE camera (fx, fy, cx, cy) that :func:`undistort_image` renders ``camera``'s images into.

    Focal lengths are kept; the size follows ``options.blank_pixels`` (0: crop to valid pixels,
    COLMAP's default) and the principal point keeps its relative position (module docstring).
    A SIMPLE_PINHOLE / PINHOLE camera comes back as the same PINHOLE camera (only
    ``max_image_size`` can rescale it). Pixel convention: (0, 0) is the centre of the top-left pixel.
    """
    if not isinstance(camera, Camera):
        raise ValueError(f"camera must be a geomvision.Camera, got {type(camera).__name__}")
    opts = UndistortOptions() if options is None else options
    if not isinstance(opts, UndistortOptions):
        raise ValueError(f"options must be an UndistortOptions, got {type(opts).__name__}")
    fx, fy = camera.focal_length_x, camera.focal_length_y
    cx, cy = camera.principal_point
    width, height = camera.width, camera.height
    if not _is_pinhole(camera):
        border = _border_pixels(width, height)
        left = _side_range(camera, border["left"], 0, fx, cx, "left")
        right = _side_range(camera, border["right"], 0, fx, cx, "right")
        top = _side_range(camera, border["top"], 1, fy, cy, "top")
        bottom = _side_range(camera, border["bottom"], 1, fy, cy, "bottom")
        sx = _axis_scale(left, right, cx, width, opts.blank_pixels)
        sy = _axis_scale(top, bottom, cy, height, opts.blank_pixels)
        sx = min(max(sx, opts.min_scale), opts.max_scale)
        sy = min(max(sy, opts.min_scale), opts.max_scale)
        new_w = _scaled_size(sx, width, opts.blank_pixels)
        new_h = _scaled_size(sy, height, opts.blank_pixels)
        # the principal point keeps its relative position: (c + 0.5) / size is unchanged
        cx = (cx + 0.5) * new_w / width - 0.5
        cy = (cy + 0.5) * new_h / height - 0.5
        width, height = new_w, new_h
    out = Camera("PINHOLE", width, height, [fx, fy, cx, cy])
    if opts.max_image_size is not None and max(width, height) > opts.max_image_size:
        s = opts.max_image_size / max(width, height)
        out = out.rescaled(max(1, round(width * s)), max(1, round(height * s)))
    return out


# --- the pixels -----------------------------------------------------------------------------------
def undistortion_maps(camera: Camera, new_camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each pixel of ``new_camera`` (a PINHOLE camera) samples an image of ``camera``.

    Returns ``(map_x, map_y, valid)``, each (H', W') for ``new_camera``'s size: float32 source
    pixel coordinates for ``cv2.remap`` and a bool mask of the pixels whose source lies inside
    the input image (within its outer pixel edges). Both cameras share the pose: only the
    intrinsics differ."""
    if not isinstance(camera, Camera) or not isinstance(new_camera, Camera):
        raise ValueError("camera and new_camera must be geomvision.Camera objects")
    if new_camera.model not in ("PINHOLE", "SIMPLE_PINHOLE"):
        raise ValueError(f"new_camera must be a pinhole camera (no distortion), got {new_camera.model}")
    w, h = new_camera.width, new_camera.height
    fx, fy = new_camera.focal_length_x, new_camera.focal_length_y
    cx, cy = new_camera.principal_point
    map_x = np.empty((h, w), dtype=np.float32)
    map_y = np.empty((h, w), dtype=np.float32)
    valid = np.empty((h, w), dtype=bool)
    x = (np.arange(w, dtype=np.float64) - cx) / fx
    rows = max(1, _ROWS_PER_CHUNK // max(w, 1))
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        y = (np.arange(r0, r1, dtype=np.float64) - cy) / fy
        xx, yy = np.meshgrid(x, y)
        rays = np.column_stack([xx.ravel(), yy.ravel(), np.ones(xx.size)])
        uv = camera.img_from_cam(rays)
        ok = np.isfinite(uv).all(axis=1)
        ok &= (uv[:, 0] >= -0.5) & (uv[:, 0] <= camera.width - 0.5)
        ok &= (uv[:, 1] >= -0.5) & (uv[:, 1] <= camera.height - 0.5)
        uv[~np.isfinite(uv)] = -1.0e6
        map_x[r0:r1] = uv[:, 0].reshape(r1 - r0, w)
        map_y[r0:r1] = uv[:, 1].reshape(r1 - r0, w)
        valid[r0:r1] = ok.reshape(r1 - r0, w)
    return map_x, map_y, valid


def _remap(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    import cv2

    map_x, map_y, valid = maps
    # replicate the outer pixels into the half-pixel margin beyond their centres (still inside the
    # image), then blank what lies outside the image
    out = cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out[~valid] = 0
    return out


def undistort_image(image: np.ndarray, camera: Camera, new_camera: Camera | None = None, *,
                    options: UndistortOptions | None = None) -> np.ndarray:
    """The image (H,W[,C], any dtype OpenCV remaps) of ``camera`` as ``new_camera`` sees it.

    ``new_camera`` defaults to :func:`undistorted_camera` ``(camera, options)``. Returns
    (H',W'[,C]) of the same dtype; pixels outside the input image are 0."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.shape[:2] != (camera.height, camera.width):
        raise ValueError(f"image has shape {image.shape}, but the camera is {camera.width}x{camera.height}: "
                         "expected (height, width) or (height, width, channels)")
    new = undistorted_camera(camera, options) if new_camera is None else new_camera
    return _remap(image, undistortion_maps(camera, new))


# --- the model ------------------------------------------------------------------------------------
def _undistort_keypoints(uv: np.ndarray, camera: Camera, new_camera: Camera) -> tuple[np.ndarray, int]:
    if len(uv) == 0:
        return uv.copy(), 0
    rays = camera.cam_from_img(uv)
    bad = ~np.isfinite(rays).all(axis=1)
    if bad.any():  # outside the lens model's invertible region: the linear part of the camera
        rays[bad] = np.linalg.solve(camera.K, np.column_stack([uv[bad], np.ones(int(bad.sum()))]).T).T
    out = (new_camera.K @ rays.T).T
    return out[:, :2] / out[:, 2:3], int(bad.sum())


def undistort_reconstruction(rec: Reconstruction, options: UndistortOptions | None = None
                             ) -> tuple[Reconstruction, dict[int, Camera], int]:
    """A copy of ``rec`` with PINHOLE cameras and undistorted keypoints (poses and points unchanged).

    Returns ``(undistorted, new_cameras, keypoints_linear)``: ``new_cameras[camera_id]`` is the
    PINHOLE camera of :func:`undistorted_camera`, ``keypoints_linear`` the number of keypoints that
    the lens model could not unproject (mapped with the linear camera instead). Point errors are
    recomputed in the new pixels."""
    if not isinstance(rec, Reconstruction):
        raise ValueError(f"rec must be a Reconstruction, got {type(rec).__name__}")
    out = copy.deepcopy(rec)
    new_cameras = {cid: undistorted_camera(cam, options) for cid, cam in rec.cameras.items()}
    linear = 0
    for img in out.images.values():
        img.keypoints, n = _undistort_keypoints(img.keypoints, rec.cameras[img.camera_id], new_cameras[img.camera_id])
        linear += n
    out.cameras = dict(new_cameras)
    out.update_point_errors()
    return out, new_cameras, linear


def _read_image_unchanged(path: Path) -> np.ndarray:
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION) if data.size else None
    if img is None or img.size == 0:
        raise ValueError(f"{path}: not a readable image (empty, truncated or unsupported format)")
    return img


def _encode_like(image: np.ndarray, suffix: str, jpeg_quality: int, name: str) -> bytes:
    import cv2

    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(suffix, image, params)
    if not ok:
        raise ValueError(f"{name}: OpenCV cannot write {suffix!r} images; convert the input images to PNG or JPEG")
    return buf.tobytes()


def _output_path(root: Path, name: str) -> Path:
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"image name {name!r} leaves the output folder; image names must be relative paths")
    return root / rel


def undistort_model(
    rec: Reconstruction,
    image_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: UndistortOptions | None = None,
    *,
    sparse_subdir: str = "",
    num_patch_match_src_images: int = 20,
    num_threads: int | None = None,
    show_progress: bool = False,
) -> UndistortReport:
    """Undistort the registered images of ``rec`` (read from ``image_dir`` by their names) and
    write COLMAP's undistorter layout into ``out_dir`` (module docstring).

    ``sparse_subdir``: write the model into ``out_dir/sparse/<sparse_subdir>`` (``"0"`` for loaders
    that read sparse/0, like the original 3DGS); ``num_threads``: images undistorted in parallel
    (default: all cores). Every file is written atomically; existing files of the same names are
    replaced. Raises ValueError naming the image when one is missing, unreadable or not of its
    camera's size."""
    from ..imageio import image_size
    from .._progress import Progress
    from .colmap import write_model

    check_writer_arguments(rec, "undistort_model", "(rec, image_dir, out_dir)")
    if not isinstance(rec, Reconstruction):
        raise ValueError(f"rec must be a Reconstruction, got {type(rec).__name__}")
    opts = UndistortOptions() if options is None else options
    if not isinstance(opts, UndistortOptions):
        raise ValueError(f"options must be an UndistortOptions, got {type(opts).__name__}")
    src = Path(os.fspath(image_dir))
    if not src.is_dir():
        raise ValueError(f"image_dir: {str(src)!r} is not a folder; pass the folder holding the model's images")
    out = Path(os.fspath(out_dir))
    if sparse_subdir and (Path(sparse_subdir).is_absolute() or ".." in Path(sparse_subdir).parts):
        raise ValueError(f"sparse_subdir must be a relative folder name like '0', got {sparse_subdir!r}")
    image_ids = rec.registered_image_ids
    if not image_ids:
        raise ValueError("the model has no registered image: there is nothing to undistort")
    # check every input before writing anything
    for iid in image_ids:
        img = rec.images[iid]
        path = src / img.name
        if not path.is_file():
            raise ValueError(f"image {img.name!r}: {path} does not exist; pass the folder the model's image names "
                             "are relative to")
        cam = rec.cameras[img.camera_id]
        size = image_size(path)
        if size != (cam.width, cam.height):
            raise ValueError(f"image {img.name!r} is {size[0]}x{size[1]} pixels but its camera {img.camera_id} is "
                             f"{cam.width}x{cam.height}; undistort the images the model was made from")

    undistorted, new_cameras, linear = undistort_reconstruction(rec, opts)
    report = UndistortReport(out_dir=out, model_dir=out / "sparse" / sparse_subdir if sparse_subdir else out / "sparse")
    report.keypoints_linear = linear
    for cid, cam in rec.cameras.items():
        new = new_cameras[cid]
        report.cameras[cid] = (cam, new)
        centre = np.array([(new.width - 1) / 2.0, (new.height - 1) / 2.0])
        report.principal_point_offset_px[cid] = float(np.linalg.norm(new.principal_point - centre))

    images_out = out / "images"
    for d in (images_out, out / "stereo" / "depth_maps", out / "stereo" / "normal_maps",
              out / "stereo" / "consistency_graphs", report.model_dir):
        d.mkdir(parents=True, exist_ok=True)
    copy_ids = {cid for cid, cam in rec.cameras.items()
                if _is_pinhole(cam) and new_cameras[cid].width == cam.width and new_cameras[cid].height == cam.height}

    def work(iid: int, maps) -> bool:
        img = rec.images[iid]
        target = _output_path(images_out, img.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if maps is None:  # a pinhole camera kept as it is: the file is copied byte for byte
            with open(src / img.name, "rb") as f_in, atomic_write(target, "wb") as f_out:
                while chunk := f_in.read(1 << 22):
                    f_out.write(chunk)
            return False
        pixels = _read_image_unchanged(src / img.name)
        warped = _remap(pixels, maps)
        atomic_write_bytes(target, _encode_like(warped, target.suffix, opts.jpeg_quality, img.name))
        return True

    # one camera at a time: its remap tables (9 bytes a pixel) are shared by its images and freed
    # before the next camera's, so models with a camera per image need the tables of one only
    by_camera: dict[int, list[int]] = {}
    for iid in image_ids:
        by_camera.setdefault(rec.images[iid].camera_id, []).append(iid)
    workers = max(1, num_threads if num_threads is not None else (os.cpu_count() or 1))
    with Progress(len(image_ids), "undistort", unit="img", enabled=show_progress) as bar:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for cid, ids in by_camera.items():
                maps = None if cid in copy_ids else undistortion_maps(rec.cameras[cid], new_cameras[cid])
                for remapped in pool.map(work, ids, [maps] * len(ids)):
                    if remapped:
                        report.images_written += 1
                    else:
                        report.images_copied += 1
                    bar.update()
                del maps

    write_model(undistorted, report.model_dir, binary=True)
    names = [rec.images[i].name for i in image_ids]
    atomic_write_text(out / "stereo" / "patch-match.cfg",
                      "".join(f"{n}\n__auto__, {int(num_patch_match_src_images)}\n" for n in names))
    atomic_write_text(out / "stereo" / "fusion.cfg", "".join(f"{n}\n" for n in names))
    return report
