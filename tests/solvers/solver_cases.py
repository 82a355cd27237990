"""Random exact problems with known answers for the solver tests (imported by the test modules)."""

from __future__ import annotations

import numpy as np

from geomvision.geometry import Camera, Rigid3, random_rotation, so3_exp

CAMERA = Camera("PINHOLE", 640, 480, [500.0, 520.0, 320.0, 240.0])


def scale_sign_error(A: np.ndarray, B: np.ndarray) -> float:
    """Max-abs difference of A and B after normalising both to unit Frobenius norm, up to sign."""
    a = A / np.linalg.norm(A)
    b = B / np.linalg.norm(B)
    return float(min(np.abs(a - b).max(), np.abs(a + b).max()))


def random_scales(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(0.3, 3.0, size=(n, 1))


def relative_case(rng: np.random.Generator, n: int, *, baseline: float = 1.0, omni: bool = False):
    """(cam2_from_cam1 with unit t, rays1, rays2): points in front of both cameras, rays of
    random length. ``omni``: points all around camera 1 (rays in every direction)."""
    while True:
        if omni:
            d = rng.normal(size=(n, 3))
            X1 = d / np.linalg.norm(d, axis=1, keepdims=True) * rng.uniform(2.0, 6.0, size=(n, 1))
            T = Rigid3(random_rotation(rng), rng.normal(size=3))
        else:
            X1 = rng.uniform([-1.5, -1.5, 3.0], [1.5, 1.5, 7.0], size=(n, 3))
            C2 = rng.normal(size=3)
            C2 *= baseline / np.linalg.norm(C2)
            R = so3_exp(rng.normal(scale=0.3, size=3))
            T = Rigid3(R, -R @ C2)
        X2 = T.apply(X1)
        if omni or (X2[:, 2] > 0.5).all():
            break
    t = T.t / np.linalg.norm(T.t)
    return Rigid3(T.R, t), X1 * random_scales(rng, n), X2 * random_scales(rng, n)


def absolute_case(rng: np.random.Generator, n: int, *, planar: bool = False):
    """(cam_from_world, rays (N,3) of random length, X_world (N,3))."""
    if planar:
        return _planar_pose(rng, n)
    T = Rigid3(random_rotation(rng), rng.normal(size=3))
    Xc = rng.uniform([-1.5, -1.5, 2.0], [1.5, 1.5, 6.0], size=(n, 3))
    return T, Xc * random_scales(rng, n), T.inverse().apply(Xc)


def _planar_pose(rng, n):
    """A camera looking down at a plane placed anywhere in the world."""
    G = Rigid3.random(rng, t_scale=2.0)  # plane frame -> world
    P = np.column_stack([rng.uniform(-2, 2, size=(n, 2)), np.zeros(n)])
    C = rng.uniform([-1.5, -1.5, 3.0], [1.5, 1.5, 6.0])
    cam_from_plane = Rigid3.look_at(C, np.array([rng.normal(scale=0.3), rng.normal(scale=0.3), 0.0]), up=(0, 1, 0))
    T = cam_from_plane @ G.inverse()
    X = G.apply(P)
    Xc = T.apply(X)
    return T, Xc * random_scales(rng, n), X


def project(camera: Camera, X_cam: np.ndarray) -> np.ndarray:
    return camera.img_from_cam(X_cam)


def plane_homography_case(rng: np.random.Generator, n: int, camera: Camera = CAMERA):
    """(H_true pixel homography x2 ~ H x1, x1, x2) for points of a plane seen by two cameras."""
    while True:
        G = Rigid3.random(rng, t_scale=0.5)
        P = np.column_stack([rng.uniform(-1.5, 1.5, size=(n, 2)), np.zeros(n)])
        X1 = G.apply(P) + [0.0, 0.0, 5.0]  # camera-1 frame
        R = so3_exp(rng.normal(scale=0.2, size=3))
        C2 = rng.normal(scale=1.0, size=3)
        T = Rigid3(R, -R @ C2)
        X2 = T.apply(X1)
        if (X1[:, 2] > 0.5).all() and (X2[:, 2] > 0.5).all():
            break
    # plane n^T X1 = d in camera 1: H = K (R + t n^T / d) K^-1
    nrm = G.R[:, 2]
    d = float(nrm @ X1[0])
    K = camera.K
    H = K @ (T.R + np.outer(T.t, nrm) / d) @ np.linalg.inv(K)
    return H, project(camera, X1), project(camera, X2)


def fundamental_case(
    rng: np.random.Generator, n: int, camera1: Camera = CAMERA, camera2: Camera = CAMERA, *, baseline: float = 1.0
):
    """(F_true, x1, x2, cam2_from_cam1) pixels of a generic 3D point cloud."""
    from geomvision.geometry import fundamental_from_pose

    T, r1, r2 = relative_case(rng, n, baseline=baseline)
    x1 = project(camera1, r1)
    x2 = project(camera2, r2)
    return fundamental_from_pose(T, camera1, camera2), x1, x2, T
