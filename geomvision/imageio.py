"""Image files: decode to RGB arrays, read the size from the header, the EXIF focal-length prior
and the EXIF GPS position.

Pixels are returned exactly as stored in the file: the EXIF orientation flag is NOT applied
(as in COLMAP), so ``read_image(p).shape[:2] == image_size(p)[::-1]`` and keypoints, camera
intrinsics and the EXIF focal length all refer to the same sensor grid.

The size and the EXIF tags are read with PIL from the file header; the pixels are never decoded
there (OpenCV decodes them), so PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, about
89 M pixels for a warning and 179 M for an error), which guards decoding, does not apply to these
reads: a 200-megapixel photo gets its size, EXIF focal length and GPS position like any other.
"""

from __future__ import annotations

import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = ["IMAGE_EXTENSIONS", "GpsPosition", "decode_image", "exif_focal_px", "exif_gps", "image_size", "list_images",
           "read_image"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".pgm", ".ppm", ".jp2"})

_DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION

# EXIF tags (Exif sub-IFD 0x8769)
_EXIF_IFD = 0x8769
_FOCAL_LENGTH = 0x920A  # mm
_FOCAL_35MM = 0xA405  # mm, 35 mm film equivalent
_FOCAL_PLANE_X_RES = 0xA20E  # pixels per unit on the sensor (for the full-resolution image)
_FOCAL_PLANE_UNIT = 0xA210  # 2 = inch, 3 = cm, 4 = mm, 5 = um
_PIXEL_X_DIMENSION = 0xA002  # width of the image the camera wrote
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 1e-3}
# GPS tags (GPS IFD 0x8825)
_GPS_IFD = 0x8825
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4  # 'N'/'S', (deg, min, s), 'E'/'W', (deg, min, s)
_GPS_ALT_REF, _GPS_ALT, _GPS_STATUS = 5, 6, 9  # 0 above / 1 below sea level, metres, 'A' valid / 'V' void


def list_images(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """Files in ``folder`` whose extension is in ``IMAGE_EXTENSIONS`` (any case), sorted
    naturally by their path relative to ``folder`` ('img2' before 'img10'). Hidden files are left out."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"folder {str(root)!r} is not a directory")
    files = root.rglob("*") if recursive else root.iterdir()
    found = [
        p
        for p in files
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]

    def key(p: Path):
        parts = re.split(r"(\d+)", p.relative_to(root).as_posix())
        return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in parts], p.as_posix()

    return sorted(found, key=key)


def decode_image(data: bytes | bytearray | memoryview, name: str = "image") -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, TIFF, BMP, WebP ...) into (H,W,3) uint8 RGB.

    Grey images are replicated to three channels, alpha is dropped and 16-bit images are scaled
    to 8 bits. Raises ``ValueError`` naming ``name`` when the bytes are not a decodable image
    (empty, truncated or not an image format).
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, _DECODE_FLAGS) if buf.size else None
    if img is None or img.ndim != 3 or img.shape[2] != 3 or img.size == 0:
        raise ValueError(f"{name}: not a readable image (empty, truncated or unsupported format)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file into (H,W,3) uint8 RGB; ``ValueError`` naming the file if it is not one."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, expected an image file") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return decode_image(data, str(path))


# PIL reads its decompression-bomb limit from a module global: lifting it for a header-only open
# takes this lock (other threads' PIL opens may skip the check during that open call)
_PIL_LIMIT_LOCK = threading.Lock()


def _open_pil(path: Path):
    """The image opened by PIL for its header and metadata only (lazy: no pixel is decoded, so
    the decompression-bomb limit is lifted for this open; decoding is OpenCV's job)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with _PIL_LIMIT_LOCK:
            limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                return Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = limit
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not a readable image (unknown format)") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, expected an image file") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) in pixels read from the file header, without decoding the pixels."""
    path = Path(path)
    with _open_pil(path) as im:
        w, h = im.size
    if w <= 0 or h <= 0:
        raise ValueError(f"{path}: image header gives an empty size {w}x{h}")
    return int(w), int(h)


def _positive(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def exif_focal_px(path: str | os.PathLike, sensor_width_mm: float | None = None) -> float | None:
    """Focal length in pixels from the EXIF tags of an image, or None when they do not tell.

    The rule, first match wins (``W, H`` = stored image size, ``max(W, H)`` = the long side):

    1. ``FocalLengthIn35mmFilm`` (f35 mm): ``f_px = f35 / 36 * max(W, H)`` — a 35 mm film frame
       is 36 mm wide, and the long side of the image is taken to span it;
    2. ``FocalLength`` (f mm) and a known sensor width ``sensor_width_mm`` (the long side of the
       sensor, e.g. from a camera database): ``f_px = f / sensor_width_mm * max(W, H)``;
    3. ``FocalLength`` with ``FocalPlaneXResolution`` / ``FocalPlaneResolutionUnit`` (sensor
       pixels per unit length): ``f_px = f * pixels_per_mm``, scaled by ``W / PixelXDimension``
       when the file says at which width the camera wrote it (a resized copy keeps the tags).

    Missing, zero or non-finite tags fall through to the next rule. Raises ``ValueError`` only
    when the file is not an image.
    """
    if sensor_width_mm is not None:
        sw = _positive(sensor_width_mm)
        if sw is None:
            raise ValueError(f"sensor_width_mm must be a positive number of millimetres, got {sensor_width_mm!r}")
        sensor_width_mm = sw
    path = Path(path)
    with _open_pil(path) as im:
        w, h = im.size
        if im.format == "PNG" and "exif" not in im.info:
            return None  # PIL would decode every pixel to look for an eXIf chunk after the image data
        try:
            exif = im.getexif()
            sub = exif.get_ifd(_EXIF_IFD)
        except Exception:  # noqa: BLE001 - a malformed EXIF block only means "no prior"
            return None
    tags = {**dict(exif), **dict(sub)}
    long_side = float(max(w, h))
    f35 = _positive(tags.get(_FOCAL_35MM))
    if f35 is not None:
        return f35 / 36.0 * long_side
    f_mm = _positive(tags.get(_FOCAL_LENGTH))
    if f_mm is None:
        return None
    if sensor_width_mm is not None:
        return f_mm / sensor_width_mm * long_side
    res = _positive(tags.get(_FOCAL_PLANE_X_RES))
    unit_mm = _UNIT_MM.get(tags.get(_FOCAL_PLANE_UNIT, 2))  # EXIF default unit: inch
    if res is None or unit_mm is None:
        return None
    f_px = f_mm * res / unit_mm
    written_w = _positive(tags.get(_PIXEL_X_DIMENSION))
    if written_w is not None:
        f_px *= w / written_w
    return f_px


@dataclass(frozen=True)
class GpsPosition:
    """Where an image was taken, from its EXIF GPS tags: WGS84 latitude and longitude in degrees
    (north and east positive) and the altitude in metres above sea level (negative below), None
    when the file gives none."""

    latitude_deg: float
    longitude_deg: float
    altitude_m: float | None = None


def _gps_number(value, path: Path, tag: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        v = math.nan
    if not math.isfinite(v):
        raise ValueError(f"{path}: malformed EXIF GPS tag {tag} ({value!r} is not a number: a zero denominator or "
                         "a wrong type); fix or strip the GPS tags (exiftool -gps:all= FILE) to use the image "
                         "without a position")
    return v


def _gps_angle(tags: dict, value_tag: int, ref_tag: int, name: str, refs: str, limit: float, path: Path) -> float:
    """Degrees from an EXIF (degrees, minutes, seconds) rational triple and its hemisphere letter."""
    value = tags[value_tag]
    parts = value if isinstance(value, (tuple, list)) else (value,)
    if not 1 <= len(parts) <= 3:
        raise ValueError(f"{path}: malformed EXIF GPS tag {name}: expected (degrees, minutes, seconds), got "
                         f"{len(parts)} values")
    dms = [_gps_number(p, path, name) for p in parts]
    if dms[0] < 0 or any(not 0 <= v < 60 for v in dms[1:]):
        raise ValueError(f"{path}: malformed EXIF GPS tag {name} {tuple(dms)}: degrees must be >= 0 and minutes "
                         "and seconds in [0, 60) (the hemisphere is in its reference tag)")
    deg = sum(v / 60.0 ** k for k, v in enumerate(dms))
    if deg > limit:
        raise ValueError(f"{path}: malformed EXIF GPS tag {name}: {deg:.6f} degrees exceeds {limit:g}")
    ref = tags.get(ref_tag)
    ref = ref.decode("ascii", "replace") if isinstance(ref, bytes) else ref
    ref = ref.strip("\x00 ").upper() if isinstance(ref, str) else None
    if ref not in tuple(refs):
        raise ValueError(f"{path}: EXIF GPS tag {name}Ref is {tags.get(ref_tag)!r}, not {refs[0]!r} or {refs[1]!r}: "
                         "the hemisphere of the position is unknown")
    return -deg if ref == refs[1] else deg


def exif_gps(path: str | os.PathLike) -> GpsPosition | None:
    """The GPS position stored in the EXIF tags of an image (JPEG, TIFF, WebP, PNG with eXIf),
    or None when it holds none.

    None when: the file has no EXIF block, or PIL cannot parse it; there is no GPS IFD or no
    ``GPSLatitude`` / ``GPSLongitude``; ``GPSStatus`` is ``V`` (the receiver had no fix); the
    position is exactly (0, 0), the placeholder of cameras without a fix. The altitude is None
    without ``GPSAltitude``; ``GPSAltitudeRef`` 1 makes it negative (below sea level).

    Raises ``ValueError`` naming the file and the tag when the GPS tags are present but malformed
    (one of latitude / longitude alone, a zero denominator, minutes or seconds outside [0, 60),
    a latitude beyond 90 or longitude beyond 180 degrees, a missing or unknown hemisphere
    letter), since a wrong position is worse than none; and when the file is not an image.
    """
    path = Path(path)
    with _open_pil(path) as im:
        if im.format == "PNG" and "exif" not in im.info:
            return None  # as in exif_focal_px: no eXIf chunk before the pixels
        try:
            tags = dict(im.getexif().get_ifd(_GPS_IFD))
        except Exception:  # noqa: BLE001 - an unparsable EXIF block holds no usable position
            return None
    has_lat, has_lon = _GPS_LAT in tags, _GPS_LON in tags
    if not has_lat and not has_lon:
        return None
    if has_lat != has_lon:
        raise ValueError(f"{path}: malformed EXIF GPS tags: {'GPSLatitude' if has_lat else 'GPSLongitude'} without "
                         f"{'GPSLongitude' if has_lat else 'GPSLatitude'}")
    status = tags.get(_GPS_STATUS)
    status = status.decode("ascii", "replace") if isinstance(status, bytes) else status
    if isinstance(status, str) and status.strip("\x00 ").upper() == "V":
        return None
    lat = _gps_angle(tags, _GPS_LAT, _GPS_LAT_REF, "GPSLatitude", "NS", 90.0, path)
    lon = _gps_angle(tags, _GPS_LON, _GPS_LON_REF, "GPSLongitude", "EW", 180.0, path)
    if lat == 0.0 and lon == 0.0:
        return None
    alt = None
    if _GPS_ALT in tags:
        alt = _gps_number(tags[_GPS_ALT], path, "GPSAltitude")
        ref = tags.get(_GPS_ALT_REF, 0)
        ref = ref[0] if isinstance(ref, (bytes, tuple)) and len(ref) else ref
        if ref == 1:
            alt = -alt
    return GpsPosition(lat, lon, alt)
