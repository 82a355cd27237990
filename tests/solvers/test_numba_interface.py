"""Every numba core is callable from other @njit code (how the RANSAC engine uses them) and
agrees with its Python wrapper."""

from __future__ import annotations

import numpy as np
from numba import njit
from solver_cases import CAMERA, absolute_case, fundamental_case

from geomvision.geometry import Camera
from geomvision.solvers import (
    epnp,
    essential_5pt,
    essential_8pt,
    fundamental_7pt,
    fundamental_8pt,
    homography_4pt,
    homography_dlt,
    p3p,
    relative_pose_from_essential,
)
from geomvision.solvers.absolute import epnp_nb, p3p_nb
from geomvision.solvers.essential import (
    count_in_front_nb,
    decompose_essential_nb,
    essential_5pt_nb,
    essential_8pt_nb,
    relative_pose_5pt_nb,
    relative_pose_from_essential_nb,
)
from geomvision.solvers.focal import focal_from_fundamental_nb, shared_focal_from_fundamental_nb
from geomvision.solvers.fundamental import fundamental_7pt_nb, fundamental_8pt_nb
from geomvision.solvers.homography import homography_4pt_nb, homography_dlt_nb
from geomvision.solvers.refine import (
    refine_absolute_pose_nb,
    refine_fundamental_nb,
    refine_homography_nb,
    refine_relative_pose_nb,
)


@njit(cache=True)
def _two_view(x1, x2, r1, r2, w):
    _H, ok_h = homography_4pt_nb(x1, x2)
    Hd, ok_d = homography_dlt_nb(x1, x2, w)
    Fs, nf = fundamental_7pt_nb(x1, x2)
    F8, ok_f = fundamental_8pt_nb(x1, x2, w)
    Es, ne = essential_5pt_nb(r1, r2)
    _Rs, _ts, nr = relative_pose_5pt_nb(r1, r2)
    E8, ok_e = essential_8pt_nb(r1, r2, w)
    _Rd, _td, ok_dec = decompose_essential_nb(E8)
    R, t, n_front = relative_pose_from_essential_nb(E8, r1, r2)
    n_count = count_in_front_nb(R, t, r1, r2)
    _Fr, _it_f, c0_f, c1_f = refine_fundamental_nb(F8, x1, x2, w, 20, 1e-12, 1e-12, 1e-14)
    _Hr, _it_h, _c0_h, _c1_h = refine_homography_nb(Hd, x1, x2, w, 20, 1e-12, 1e-12, 1e-14)
    _Rr, _tr, _it_r, c0_r, c1_r = refine_relative_pose_nb(R, t, r1, r2, w, False, 20, 1e-12, 1e-12, 1e-14)
    f1, f2 = focal_from_fundamental_nb(F8, np.array([320.0, 240.0]), np.array([320.0, 240.0]))
    f = shared_focal_from_fundamental_nb(F8, np.array([320.0, 240.0]), 800.0)
    return (
        ok_h,
        ok_d,
        nf,
        ok_f,
        ne,
        nr,
        ok_e,
        ok_dec,
        n_front,
        n_count,
        c1_f <= c0_f,
        c1_r <= c0_r,
        f1,
        f2,
        f,
        Es,
        E8,
        Fs,
        F8,
    )


@njit(cache=True)
def _absolute(rays, X, uv, model_id, params, w):
    Rs, ts, n = p3p_nb(rays, X)
    R, t, ok = epnp_nb(rays, X)
    _Rr, _tr, _it, c0, c1 = refine_absolute_pose_nb(R, t, uv, X, model_id, params, w, 20, 1e-12, 1e-12, 1e-14)
    return n, ok, c1 <= c0 + 1e-12, Rs, ts, R, t


def test_two_view_cores_from_njit(rng):
    cam = Camera("PINHOLE", 640, 480, [500.0, 500.0, 320.0, 240.0])
    _F, x1, x2, _T = fundamental_case(rng, 30, cam, cam)
    r1, r2 = cam.cam_from_img(x1), cam.cam_from_img(x2)
    w = np.ones(30)
    out = _two_view(x1, x2, r1, r2, w)
    ok_h, ok_d, nf, ok_f, ne, nr, ok_e, ok_dec, n_front, n_count, dec_f, dec_r, f1, f2, f, Es, E8, _Fs, F8 = out
    assert ok_h == (len(homography_4pt(x1[:4], x2[:4])) == 1)
    assert ok_d == (homography_dlt(x1, x2) is not None)
    assert nf == len(fundamental_7pt(x1[:7], x2[:7])) and nf >= 1
    assert ok_f and np.allclose(F8, fundamental_8pt(x1, x2))
    assert ne == len(essential_5pt(r1[:5], r2[:5])) and ne >= 1 and nr == ne
    assert np.allclose(Es[:ne], np.array(essential_5pt(r1[:5], r2[:5])))
    assert ok_e and ok_dec and np.allclose(E8, essential_8pt(r1, r2))
    _P, n_py = relative_pose_from_essential(E8, r1, r2)
    assert n_front == n_py == n_count == 30
    assert dec_f and dec_r
    assert np.allclose([f1, f2, f], 500.0, rtol=1e-6)


def test_absolute_cores_from_njit(rng):
    _T, rays, X = absolute_case(rng, 20)
    uv = CAMERA.img_from_cam(rays)
    n, ok, decreased, Rs, _ts, R, _t = _absolute(rays, X, uv, CAMERA.model_id, CAMERA.params, np.ones(20))
    sols = p3p(rays[:3], X[:3])
    assert n == len(sols) and np.allclose(Rs[:n], np.array([S.R for S in sols]))
    assert ok and np.allclose(R, epnp(rays, X).R) and decreased
