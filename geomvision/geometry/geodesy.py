"""WGS84 geodetic coordinates (GPS latitude, longitude, altitude) to a local metric frame.

Three frames, one row per point:

- geodetic ``lat_lon_alt`` (N,3): latitude and longitude in degrees (north and east positive),
  altitude in metres above the WGS84 ellipsoid (GPS EXIF altitude is above sea level; the
  difference, the geoid height, is nearly constant over a survey and cancels in a local frame);
- ECEF ``X_ecef`` (N,3): Earth-centred, Earth-fixed metres (x through latitude 0 / longitude 0,
  z through the north pole);
- local ENU ``X_enu`` (N,3): east, north, up metres about an origin on the ellipsoid: a
  tangent-plane frame in which distances between nearby points are true distances.

``enu_from_ecef(origin)`` is a :class:`Rigid3` (``X_enu = R @ X_ecef + t``), so
``enu_from_ecef(o).inverse()`` is ``ecef_from_enu``; :func:`local_enu_from_geodetic` chains them
for a set of GPS positions about their mean.
"""

from __future__ import annotations

import numpy as np

from .rigid import Rigid3

__all__ = ["WGS84_A", "WGS84_F", "ecef_from_geodetic", "enu_from_ecef", "geodetic_from_ecef",
           "local_enu_from_geodetic"]

WGS84_A = 6378137.0  # semi-major axis (m)
WGS84_F = 1.0 / 298.257223563  # flattening
_E2 = WGS84_F * (2.0 - WGS84_F)  # first eccentricity squared
_B = WGS84_A * (1.0 - WGS84_F)  # semi-minor axis (m)
_EP2 = _E2 / (1.0 - _E2)  # second eccentricity squared


def _lat_lon_alt(lat_lon_alt, name: str = "lat_lon_alt") -> np.ndarray:
    a = np.asarray(lat_lon_alt, dtype=np.float64)
    if a.ndim not in (1, 2) or a.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (3,) or (N,3) (latitude deg, longitude deg, altitude m), "
                         f"got {a.shape}")
    a = a.reshape(-1, 3)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} holds non-finite values")
    if np.any(np.abs(a[:, 0]) > 90.0):
        raise ValueError(f"{name}: latitude must lie in [-90, 90] degrees, got {a[np.abs(a[:, 0]) > 90.0, 0][:3]}")
    return a


def ecef_from_geodetic(lat_lon_alt: np.ndarray) -> np.ndarray:
    """(N,3) ECEF metres of (N,3) WGS84 latitude (deg), longitude (deg), altitude (m); a (3,)
    input gives a (1,3) output. Closed form: with the prime-vertical radius
    ``N = a / sqrt(1 - e^2 sin^2 lat)``, ``x = (N + h) cos lat cos lon``, ``y = (N + h) cos lat
    sin lon``, ``z = (N (1 - e^2) + h) sin lat``."""
    g = _lat_lon_alt(lat_lon_alt)
    lat, lon, h = np.radians(g[:, 0]), np.radians(g[:, 1]), g[:, 2]
    s, c = np.sin(lat), np.cos(lat)
    n = WGS84_A / np.sqrt(1.0 - _E2 * s * s)
    return np.column_stack([(n + h) * c * np.cos(lon), (n + h) * c * np.sin(lon), (n * (1.0 - _E2) + h) * s])


def geodetic_from_ecef(X_ecef: np.ndarray) -> np.ndarray:
    """(N,3) WGS84 latitude (deg), longitude (deg), altitude (m) of (N,3) ECEF metres.

    Bowring's iteration on the parametric latitude, three rounds (the round trip through
    :func:`ecef_from_geodetic` agrees to a few nanometres for altitudes from -5 km to 100 km,
    tested); the altitude is
    ``p cos lat + z sin lat - a sqrt(1 - e^2 sin^2 lat)`` (``p`` the distance from the axis),
    which holds at the poles too. The longitude of a point on the axis is 0.
    """
    X = np.asarray(X_ecef, dtype=np.float64)
    if X.ndim not in (1, 2) or X.shape[-1] != 3:
        raise ValueError(f"X_ecef must have shape (3,) or (N,3), got {X.shape}")
    X = X.reshape(-1, 3)
    if not np.all(np.isfinite(X)):
        raise ValueError("X_ecef holds non-finite values")
    x, y, z = X[:, 0], X[:, 1], X[:, 2]
    p = np.hypot(x, y)
    lon = np.arctan2(y, x)
    beta = np.arctan2(z, p * (1.0 - WGS84_F))  # parametric latitude, first guess
    for _ in range(3):
        sb, cb = np.sin(beta), np.cos(beta)
        lat = np.arctan2(z + _EP2 * _B * sb ** 3, p - _E2 * WGS84_A * cb ** 3)
        beta = np.arctan2((1.0 - WGS84_F) * np.sin(lat), np.cos(lat))
    s = np.sin(lat)
    h = p * np.cos(lat) + z * s - WGS84_A * np.sqrt(1.0 - _E2 * s * s)
    return np.column_stack([np.degrees(lat), np.degrees(lon), h])


def enu_from_ecef(origin_lat_lon_alt: np.ndarray) -> Rigid3:
    """The rigid transform from ECEF to the local east-north-up frame at ``origin_lat_lon_alt``
    (3,) (degrees, degrees, metres): ``X_enu = R @ X_ecef + t``, the origin maps to (0, 0, 0),
    the rows of ``R`` are the east, north and up unit vectors in ECEF."""
    o = _lat_lon_alt(origin_lat_lon_alt, "origin_lat_lon_alt")
    if len(o) != 1:
        raise ValueError(f"origin_lat_lon_alt must be one point (3,), got {len(o)}")
    lat, lon = np.radians(o[0, 0]), np.radians(o[0, 1])
    sp, cp, sl, cl = np.sin(lat), np.cos(lat), np.sin(lon), np.cos(lon)
    R = np.array([[-sl, cl, 0.0],
                  [-sp * cl, -sp * sl, cp],
                  [cp * cl, cp * sl, sp]])
    X0 = ecef_from_geodetic(o)[0]
    return Rigid3(R, -R @ X0, check=False)


def local_enu_from_geodetic(lat_lon_alt: np.ndarray,
                            origin_lat_lon_alt: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """East-north-up metres (N,3) of (N,3) WGS84 positions about an origin, and that origin (3,).

    origin_lat_lon_alt : (3,) degrees, degrees, metres; None takes the positions' mean: the
        geodetic coordinates of their mean ECEF point with the mean altitude, so the ENU
        coordinates of the set are centred horizontally and vertically (to the Earth's
        curvature over the set: ~8 cm of sag at 1 km).
    """
    g = _lat_lon_alt(lat_lon_alt)
    if len(g) == 0:
        raise ValueError("lat_lon_alt holds no position")
    X = ecef_from_geodetic(g)
    if origin_lat_lon_alt is None:
        origin = geodetic_from_ecef(X.mean(axis=0))[0]
        origin[2] = g[:, 2].mean()
    else:
        origin = _lat_lon_alt(origin_lat_lon_alt, "origin_lat_lon_alt")[0]
    return enu_from_ecef(origin).apply(X), origin
