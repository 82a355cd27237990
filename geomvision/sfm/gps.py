"""The GPS positions of a project's images in a local metric frame, for the spatial matcher.

:func:`read_image_positions` reads each image's EXIF GPS tags (:func:`geomvision.imageio.exif_gps`)
and converts them to east-north-up metres about their mean
(:func:`geomvision.geometry.geodesy.local_enu_from_geodetic`); images without a usable position
keep NaN rows and the reason, so that pair selection can pair them otherwise and say so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..geometry.geodesy import local_enu_from_geodetic
from ..imageio import exif_gps

__all__ = ["AUTO_SPATIAL_MIN_FRACTION", "ImagePositions", "read_image_positions"]

# matcher auto (above exhaustive_max_images) takes spatial pairs when at least this fraction of the
# images has a GPS position: "nearly all"; the others are paired by retrieval
AUTO_SPATIAL_MIN_FRACTION = 0.9


@dataclass
class ImagePositions:
    """Where the images were taken, in one order with their names.

    names : the images; lat_lon_alt : (N,3) WGS84 latitude (deg), longitude (deg), altitude (m
        above sea level), NaN rows for images without a position and NaN altitudes where the
        file gives none; X_enu : (N,3) east, north, up metres about ``origin_lat_lon_alt`` (3,)
        (the mean position; None when no image has one), NaN rows likewise; the up column is 0
        when some positioned image lacks an altitude (``has_altitude`` False);
    missing : {name: why it has no position} (no GPS tags, malformed tags, file not at hand).
    """

    names: list[str]
    lat_lon_alt: np.ndarray
    X_enu: np.ndarray
    origin_lat_lon_alt: np.ndarray | None
    has_altitude: bool
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def has_position(self) -> np.ndarray:
        """(N,) bool: which images have a position."""
        return ~np.isnan(self.X_enu[:, 0])

    @property
    def num_positioned(self) -> int:
        return int(self.has_position.sum())

    def summary(self, max_names: int = 20) -> dict:
        """A JSON-able account for the report: how many images have a position, the origin, the
        extent of the positions in metres, and (up to ``max_names``) the images without one and why."""
        have = self.has_position
        ext = (np.ptp(self.X_enu[have], axis=0) if have.any() else np.zeros(3))
        shown = dict(list(self.missing.items())[:max_names])
        return {
            "num_images": len(self.names),
            "num_with_position": int(have.sum()),
            "has_altitude": bool(self.has_altitude),
            "origin_lat_lon_alt": None if self.origin_lat_lon_alt is None
            else [round(float(v), 9) for v in self.origin_lat_lon_alt],
            "extent_enu_m": [round(float(v), 3) for v in ext],
            "without_position": shown,
            **({"num_without_position_not_listed": len(self.missing) - len(shown)}
               if len(self.missing) > len(shown) else {}),
        }


def read_image_positions(names: list[str], paths: Mapping[str, str | os.PathLike]) -> ImagePositions:
    """The EXIF GPS positions of the images ``names`` (files ``paths[name]``) in local ENU metres.

    An image without a position is not an error: a file not at hand (imported features), no GPS
    tags, or malformed ones (the ``ValueError`` of :func:`exif_gps`, whose message is kept in
    ``missing``) leave its row NaN. The origin is the mean of the positions; when some positioned
    image has no altitude, every altitude is taken as 0 (the frame is then horizontal only).
    """
    n = len(names)
    lla = np.full((n, 3), np.nan)
    missing: dict[str, str] = {}
    for k, name in enumerate(names):
        path = paths.get(name) if isinstance(paths, Mapping) else None
        if path is None or not str(path) or not Path(path).is_file():
            missing[name] = "image file not at hand"
            continue
        try:
            gps = exif_gps(path)
        except ValueError as exc:
            missing[name] = str(exc)
            continue
        if gps is None:
            missing[name] = "no GPS position in its EXIF tags"
            continue
        lla[k] = (gps.latitude_deg, gps.longitude_deg, np.nan if gps.altitude_m is None else gps.altitude_m)
    have = ~np.isnan(lla[:, 0])
    X_enu = np.full((n, 3), np.nan)
    has_altitude = bool(have.any() and not np.isnan(lla[have, 2]).any())
    origin = None
    if have.any():
        g = lla[have].copy()
        if not has_altitude:
            g[:, 2] = 0.0
        X_enu[have], origin = local_enu_from_geodetic(g)
        if not has_altitude:
            X_enu[have, 2] = 0.0  # the ellipsoid's curvature is not a height either
    return ImagePositions(list(names), lla, X_enu, origin, has_altitude, missing)
