"""Geotagged test images: JPEGs whose EXIF GPS tags hold a known position (from a local ENU
offset about an origin), written with Pillow as a camera would (degrees / minutes / seconds
rationals, hemisphere letters, altitude with its sea-level reference)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from geomvision.geometry.geodesy import enu_from_ecef, geodetic_from_ecef
from geomvision.imageio import GpsPosition

GPS_IFD = 0x8825
SECONDS_DENOMINATOR = 10_000  # 1e-4 arc-second: 3 mm of latitude
ALTITUDE_DENOMINATOR = 1_000  # 1 mm


def lat_lon_alt_from_enu(X_enu: np.ndarray, origin_lat_lon_alt) -> np.ndarray:
    """(N,3) WGS84 positions of (N,3) east-north-up metres about ``origin_lat_lon_alt``."""
    return geodetic_from_ecef(enu_from_ecef(np.asarray(origin_lat_lon_alt, float)).inverse().apply(X_enu))


def _dms(angle_deg: float) -> tuple[tuple[IFDRational, IFDRational, IFDRational], float]:
    """|angle| as EXIF (degrees, minutes, seconds) rationals and the exact value they hold."""
    a = Fraction(abs(float(angle_deg))).limit_denominator(10 ** 12)
    d = int(a)
    m = int((a - d) * 60)
    s = Fraction(round((a - d - Fraction(m, 60)) * 3600 * SECONDS_DENOMINATOR), SECONDS_DENOMINATOR)
    if s >= 60:  # rounding carried into the next minute
        s, m = s - 60, m + 1
    if m >= 60:
        m, d = m - 60, d + 1
    value = float(d + Fraction(m, 60) + s / 3600)
    return (IFDRational(d, 1), IFDRational(m, 1), IFDRational(s.numerator, s.denominator)), value


def gps_ifd(lat_deg: float, lon_deg: float, alt_m: float | None) -> tuple[dict, GpsPosition]:
    """The GPS IFD of a position and the exact position its rationals hold."""
    lat_r, lat = _dms(lat_deg)
    lon_r, lon = _dms(lon_deg)
    tags = {0: b"\x02\x03\x00\x00", 1: "N" if lat_deg >= 0 else "S", 2: lat_r, 3: "E" if lon_deg >= 0 else "W",
            4: lon_r}
    alt = None
    if alt_m is not None:
        q = Fraction(round(abs(alt_m) * ALTITUDE_DENOMINATOR), ALTITUDE_DENOMINATOR)
        tags[5] = b"\x01" if alt_m < 0 else b"\x00"
        tags[6] = IFDRational(q.numerator, q.denominator)
        alt = float(q) if alt_m >= 0 else -float(q)
    return tags, GpsPosition(lat if lat_deg >= 0 else -lat, lon if lon_deg >= 0 else -lon, alt)


def write_jpeg_with_gps(path: Path, image_rgb: np.ndarray, gps: dict | None, quality: int = 95) -> None:
    """``image_rgb`` as a JPEG at ``path`` with the GPS IFD ``gps`` (None: no GPS tags) and a
    35 mm-equivalent focal length of 0 (none: the pipeline keeps its prior)."""
    exif = Image.Exif()
    if gps is not None:
        exif[GPS_IFD] = gps
    Image.fromarray(np.ascontiguousarray(image_rgb)).save(path, "JPEG", quality=quality, exif=exif.tobytes())
