"""WGS84 geodetic <-> ECEF <-> local ENU (issue 16: positions from GPS EXIF for the spatial matcher)."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.geometry.geodesy import (WGS84_A, WGS84_F, ecef_from_geodetic, enu_from_ecef, geodetic_from_ecef,
                                         local_enu_from_geodetic)

E2 = WGS84_F * (2 - WGS84_F)
ARCSEC = np.pi / 648000.0


def meridian_radius(lat_deg: float) -> float:
    """Radius of curvature of the meridian: metres of northing per radian of latitude."""
    s = np.sin(np.radians(lat_deg))
    return WGS84_A * (1 - E2) / (1 - E2 * s * s) ** 1.5


def test_ecef_of_known_points():
    b = WGS84_A * (1 - WGS84_F)
    X = ecef_from_geodetic([[0, 0, 0], [0, 90, 100], [90, 17, 0], [-90, 0, -10], [0, 180, 0]])
    np.testing.assert_allclose(X, [[WGS84_A, 0, 0], [0, WGS84_A + 100, 0], [0, 0, b], [0, 0, -b + 10],
                                   [-WGS84_A, 0, 0]], atol=1e-8)
    # GeographicLib's CartConvert example (Mt Everest), printed to 0.1 m
    np.testing.assert_allclose(ecef_from_geodetic([27.99, 86.93, 8820])[0], [302271.4, 5635928.4, 2979666.1],
                               atol=0.06)


@pytest.mark.parametrize("lat", [0.0, 45.0, 47.3769, -33.9, 89.0])
def test_one_arcsecond_of_latitude_is_the_meridian_arc(lat):
    X = ecef_from_geodetic([[lat, 8.54, 400.0], [lat + 1 / 3600, 8.54, 400.0]])
    d = np.linalg.norm(X[1] - X[0])
    # the chord of 1" equals the meridian arc to ~1e-9 relative; 400 m of altitude adds 400 / R
    expected = (meridian_radius(lat + 0.5 / 3600) + 400.0) * ARCSEC
    assert d == pytest.approx(expected, rel=1e-7)
    assert 30.70 < d < 31.05  # 30.72 m at the equator, 30.87 m at 45 degrees, 31.03 m at the poles
    enu, _ = local_enu_from_geodetic([[lat, 8.54, 400.0], [lat + 1 / 3600, 8.54, 400.0]])
    step = enu[1] - enu[0]
    assert step[1] == pytest.approx(d, rel=1e-7) and abs(step[0]) < 1e-9 and abs(step[2]) < 1e-3
    if lat == 45.0:
        assert d == pytest.approx(30.87, abs=0.01)


def test_one_arcsecond_of_longitude_on_the_equator():
    X = ecef_from_geodetic([[0, 0, 0], [0, 1 / 3600, 0]])
    assert np.linalg.norm(X[1] - X[0]) == pytest.approx(WGS84_A * ARCSEC, rel=1e-9)  # 30.92 m


def test_round_trip_geodetic_ecef(rng):
    n = 20000
    g = np.column_stack([rng.uniform(-90, 90, n), rng.uniform(-180, 180, n), rng.uniform(-5000, 100_000, n)])
    g[:4, 0] = [90.0, -90.0, 0.0, 89.999999]
    back = geodetic_from_ecef(ecef_from_geodetic(g))
    assert np.abs(back[:, 0] - g[:, 0]).max() * 111_000 < 1e-8  # metres
    assert np.abs(back[:, 2] - g[:, 2]).max() < 1e-8
    off_pole = np.abs(g[:, 0]) < 90
    dlon = (back[off_pole, 1] - g[off_pole, 1] + 180) % 360 - 180
    assert (np.abs(dlon) * np.cos(np.radians(g[off_pole, 0])) * 111_000).max() < 1e-8
    X = rng.normal(scale=7e6, size=(1000, 3))
    X = X[np.linalg.norm(X, axis=1) > 6e6]
    np.testing.assert_allclose(ecef_from_geodetic(geodetic_from_ecef(X)), X, atol=1e-7)


def test_enu_frame():
    origin = np.array([47.3769, 8.5417, 408.0])
    T = enu_from_ecef(origin)
    np.testing.assert_allclose(T.R @ T.R.T, np.eye(3), atol=1e-15)
    assert np.linalg.det(T.R) == pytest.approx(1.0)
    X = ecef_from_geodetic([origin, origin + [0, 0, 100.0], [origin[0] + 1e-3, origin[1], origin[2]],
                            [origin[0], origin[1] + 1e-3, origin[2]]])
    enu = T.apply(X)
    np.testing.assert_allclose(enu[0], 0, atol=1e-8)
    np.testing.assert_allclose(enu[1], [0, 0, 100], atol=1e-8)  # up is the ellipsoid normal
    assert enu[2, 1] > 100 and abs(enu[2, 0]) < 1e-6  # north
    assert enu[3, 0] > 70 and abs(enu[3, 1]) < 1e-3  # east (75 m at 47 degrees)
    # ENU back to geodetic through the inverse
    np.testing.assert_allclose(geodetic_from_ecef(T.inverse().apply(enu)), geodetic_from_ecef(X), atol=1e-12)


def test_local_enu_about_the_mean(rng):
    origin = np.array([-33.86, 151.21, 20.0])
    X_true = rng.uniform(-500, 500, (30, 3)) * [1, 1, 0.05]
    g = geodetic_from_ecef(enu_from_ecef(origin).inverse().apply(X_true))
    enu, o = local_enu_from_geodetic(g)
    np.testing.assert_allclose(enu[:, :2].mean(axis=0), 0, atol=1e-6)
    assert abs(enu[:, 2].mean()) < 0.05  # the Earth's curvature over 1 km: centimetres
    d_true = np.linalg.norm(X_true[:, None] - X_true[None], axis=2)
    np.testing.assert_allclose(np.linalg.norm(enu[:, None] - enu[None], axis=2), d_true, atol=1e-6)
    again, o2 = local_enu_from_geodetic(g, origin)
    np.testing.assert_allclose(again, X_true, atol=1e-6)
    np.testing.assert_array_equal(o2, origin)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="latitude must lie in"):
        ecef_from_geodetic([91.0, 0, 0])
    with pytest.raises(ValueError, match=r"shape \(3,\) or \(N,3\)"):
        ecef_from_geodetic(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        geodetic_from_ecef([np.nan, 0, 0])
    with pytest.raises(ValueError, match="one point"):
        enu_from_ecef(np.zeros((2, 3)))
