"""Homography solvers: minimal 4-point and normalised (Hartley) DLT; ``x2 ~ H x1``.

numba cores (callable from other ``@njit`` code):

- ``homography_4pt_nb(x1 (>=4,2), x2 (>=4,2)) -> (H (3,3), ok: bool)`` — uses the first 4 rows;
  ``ok`` is False for degenerate samples (three collinear points in either image) and for
  samples whose orientation is inconsistent (no homography maps all four points with positive
  scale, i.e. the plane would be seen from both sides). H has unit Frobenius norm and is signed
  so that ``(H @ (x1, 1))[2] > 0`` for the sample points.
- ``homography_dlt_nb(x1 (N,2), x2 (N,2), w (N,)) -> (H (3,3), ok: bool)`` — weighted normalised
  DLT, N >= 4 points with positive weight; ``ok`` is False when the points do not determine H.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..geometry.rigid import Rigid3
from ._inputs import point_pair, weights_of
from ._numeric import det3, eigh, frobenius_normalise, inv_normaliser, matmul3, normalise_points

_COLLINEAR_TOL = 1e-10  # |triangle determinant| / sum of squared spreads below this: collinear triple


@njit(cache=True)
def _tri(ax, ay, bx, by, cx, cy):
    """det([a, b, c]) of homogeneous points (x, y, 1): twice the signed triangle area."""
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


@njit(cache=True)
def homography_4pt_nb(x1, x2):
    H = np.zeros((3, 3))
    # centre and scale each sample (conditioning): p = s1 (x1 - c1), q = s2 (x2 - c2)
    p = np.empty((4, 2))
    q = np.empty((4, 2))
    c1x = 0.25 * (x1[0, 0] + x1[1, 0] + x1[2, 0] + x1[3, 0])
    c1y = 0.25 * (x1[0, 1] + x1[1, 1] + x1[2, 1] + x1[3, 1])
    c2x = 0.25 * (x2[0, 0] + x2[1, 0] + x2[2, 0] + x2[3, 0])
    c2y = 0.25 * (x2[0, 1] + x2[1, 1] + x2[2, 1] + x2[3, 1])
    v1 = 0.0
    v2 = 0.0
    for i in range(4):
        p[i, 0] = x1[i, 0] - c1x
        p[i, 1] = x1[i, 1] - c1y
        q[i, 0] = x2[i, 0] - c2x
        q[i, 1] = x2[i, 1] - c2y
        v1 += p[i, 0] ** 2 + p[i, 1] ** 2
        v2 += q[i, 0] ** 2 + q[i, 1] ** 2
    if not (v1 > 0.0 and v2 > 0.0 and np.isfinite(v1) and np.isfinite(v2)):
        return H, False
    s1 = 1.0 / np.sqrt(0.25 * v1)
    s2 = 1.0 / np.sqrt(0.25 * v2)
    for i in range(4):
        p[i, 0] *= s1
        p[i, 1] *= s1
        q[i, 0] *= s2
        q[i, 1] *= s2
    # triple determinants: D = det(p1,p2,p3), D1 = det(p4,p2,p3), D2 = det(p1,p4,p3), D3 = det(p1,p2,p4)
    D = _tri(p[0, 0], p[0, 1], p[1, 0], p[1, 1], p[2, 0], p[2, 1])
    D1 = _tri(p[3, 0], p[3, 1], p[1, 0], p[1, 1], p[2, 0], p[2, 1])
    D2 = _tri(p[0, 0], p[0, 1], p[3, 0], p[3, 1], p[2, 0], p[2, 1])
    D3 = _tri(p[0, 0], p[0, 1], p[1, 0], p[1, 1], p[3, 0], p[3, 1])
    E = _tri(q[0, 0], q[0, 1], q[1, 0], q[1, 1], q[2, 0], q[2, 1])
    E1 = _tri(q[3, 0], q[3, 1], q[1, 0], q[1, 1], q[2, 0], q[2, 1])
    E2 = _tri(q[0, 0], q[0, 1], q[3, 0], q[3, 1], q[2, 0], q[2, 1])
    E3 = _tri(q[0, 0], q[0, 1], q[1, 0], q[1, 1], q[3, 0], q[3, 1])
    # spread of the scaled points is 4: a triangle determinant below 4 * tol is a collinear triple
    t = 4.0 * _COLLINEAR_TOL
    if not (abs(D) > t and abs(D1) > t and abs(D2) > t and abs(D3) > t):
        return H, False
    if not (abs(E) > t and abs(E1) > t and abs(E2) > t and abs(E3) > t):
        return H, False
    # orientation: H p_i = (E_i D) / (E D_i) q_i up to a common factor, and H p4 = q4: all four
    # scales must share one sign (a plane seen from one side)
    sD = D * E
    if not (E1 * D1 * sD > 0.0 and E2 * D2 * sD > 0.0 and E3 * D3 * sD > 0.0):
        return H, False
    # Hn = M2 diag(r) adj(M1) with M = [p1 p2 p3] (homogeneous columns), r_i = E_i / D_i
    r0 = E1 / D1
    r1 = E2 / D2
    r2 = E3 / D3
    # rows of adj(M1): p2 x p3, p3 x p1, p1 x p2
    B = np.empty((3, 3))
    B[0, 0] = r0 * (p[1, 1] - p[2, 1])
    B[0, 1] = r0 * (p[2, 0] - p[1, 0])
    B[0, 2] = r0 * (p[1, 0] * p[2, 1] - p[2, 0] * p[1, 1])
    B[1, 0] = r1 * (p[2, 1] - p[0, 1])
    B[1, 1] = r1 * (p[0, 0] - p[2, 0])
    B[1, 2] = r1 * (p[2, 0] * p[0, 1] - p[0, 0] * p[2, 1])
    B[2, 0] = r2 * (p[0, 1] - p[1, 1])
    B[2, 1] = r2 * (p[1, 0] - p[0, 0])
    B[2, 2] = r2 * (p[0, 0] * p[1, 1] - p[1, 0] * p[0, 1])
    Hn = np.empty((3, 3))
    for j in range(3):
        Hn[0, j] = q[0, 0] * B[0, j] + q[1, 0] * B[1, j] + q[2, 0] * B[2, j]
        Hn[1, j] = q[0, 1] * B[0, j] + q[1, 1] * B[1, j] + q[2, 1] * B[2, j]
        Hn[2, j] = B[0, j] + B[1, j] + B[2, j]
    # undo the normalisation: H = T2^-1 Hn T1, T = [[s, 0, -s c], [0, s, -s c], [0, 0, 1]]
    for j in range(3):
        # rows of T2^-1 Hn: (Hn[0] / s2 + c2x Hn[2], Hn[1] / s2 + c2y Hn[2], Hn[2])
        g0 = Hn[0, j] / s2 + c2x * Hn[2, j]
        g1 = Hn[1, j] / s2 + c2y * Hn[2, j]
        g2 = Hn[2, j]
        Hn[0, j] = g0
        Hn[1, j] = g1
        Hn[2, j] = g2
    for i in range(3):
        H[i, 0] = s1 * Hn[i, 0]
        H[i, 1] = s1 * Hn[i, 1]
        H[i, 2] = Hn[i, 2] - s1 * (c1x * Hn[i, 0] + c1y * Hn[i, 1])
    # sign: H x1_4 must have a positive third coordinate
    w4 = H[2, 0] * x1[3, 0] + H[2, 1] * x1[3, 1] + H[2, 2]
    s = frobenius_normalise(H)
    if not (s > 0.0 and np.isfinite(s)):
        return H, False
    if w4 < 0.0:
        for i in range(3):
            for j in range(3):
                H[i, j] = -H[i, j]
    return H, True


@njit(cache=True)
def homography_dlt_nb(x1, x2, w):
    H = np.zeros((3, 3))
    n = x1.shape[0]
    npos = 0
    for i in range(n):
        if w[i] > 0.0:
            npos += 1
    if npos < 4:
        return H, False
    y1, T1 = normalise_points(x1, w)
    y2, T2 = normalise_points(x2, w)
    if T1[2, 2] == 0.0 or T2[2, 2] == 0.0:
        return H, False
    AtA = np.zeros((9, 9))
    a = np.empty(9)
    b = np.empty(9)
    for i in range(n):
        wi = w[i]
        if wi <= 0.0:
            continue
        x, y = y1[i, 0], y1[i, 1]
        u, v = y2[i, 0], y2[i, 1]
        a[0], a[1], a[2], a[3], a[4], a[5] = x, y, 1.0, 0.0, 0.0, 0.0
        a[6], a[7], a[8] = -u * x, -u * y, -u
        b[0], b[1], b[2], b[3], b[4], b[5] = 0.0, 0.0, 0.0, x, y, 1.0
        b[6], b[7], b[8] = -v * x, -v * y, -v
        for r in range(9):
            ar = wi * a[r]
            br = wi * b[r]
            for c in range(r, 9):
                AtA[r, c] += ar * a[c] + br * b[c]
    for r in range(9):
        for c in range(r):
            AtA[r, c] = AtA[c, r]
    evals, evecs = eigh(AtA)
    if not evals[1] > 1e-12 * evals[8]:
        return H, False  # the points do not pin down H (collinear, coincident, too few distinct)
    Hn = np.empty((3, 3))
    for r in range(3):
        for c in range(3):
            Hn[r, c] = evecs[3 * r + c, 0]
    if abs(det3(Hn)) < 1e-10:
        return H, False  # rank-deficient: maps everything to a line or a point
    H[:, :] = matmul3(matmul3(inv_normaliser(T2), Hn), T1)
    frobenius_normalise(H)
    # sign: positive third coordinate at the weighted centroid of x1
    cx = -T1[0, 2] / T1[0, 0]
    cy = -T1[1, 2] / T1[1, 1]
    if H[2, 0] * cx + H[2, 1] * cy + H[2, 2] < 0.0:
        for r in range(3):
            for c in range(3):
                H[r, c] = -H[r, c]
    return H, True


def homography_4pt(x1: np.ndarray, x2: np.ndarray) -> list[np.ndarray]:
    """Homography from 4 correspondences (x1 (4,2), x2 (4,2) pixels), ``x2 ~ H x1``.

    Returns ``[H]`` (unit Frobenius norm) or ``[]`` for a degenerate sample: three collinear
    points in either image, or an orientation-inconsistent configuration (COLMAP / PoseLib's
    check: no plane seen from one side maps these points).
    """
    a, b = point_pair(x1, x2, 2, exact=4)
    H, ok = homography_4pt_nb(a, b)
    return [H] if ok else []


def homography_dlt(x1: np.ndarray, x2: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | None:
    """Least-squares homography (normalised DLT) from N >= 4 correspondences, ``x2 ~ H x1``.

    ``weights`` (N,) >= 0 scale each point's algebraic equations (IRLS). Returns H (3,3), unit
    Frobenius norm, or None when the points do not determine a non-singular homography.
    """
    a, b = point_pair(x1, x2, 2, minimum=4)
    w = weights_of(weights, len(a))
    H, ok = homography_dlt_nb(a, b, w)
    return H if ok else None


def decompose_homography(H: np.ndarray) -> list[tuple[Rigid3, np.ndarray]]:
    """The motions a calibrated homography can come from: ``(cam2_from_cam1, normal)`` pairs.

    ``H`` (3,3) maps rays of camera 1 to rays of camera 2 (``r2 ~ H r1``; for pixels,
    ``K2^-1 H_px K1``) and must be signed so that ``r2^T H r1 > 0`` for the points (positive
    depths; :func:`relative_poses_from_homography` does that). A plane ``normal^T X1 = d``
    (d > 0, camera-1 frame) seen by cameras ``X2 = R X1 + t`` induces ``H ~ R + (t / d) normal^T``.
    Returned are the four solutions of Ma, Soatto, Kosecka & Sastry (An Invitation to 3-D
    Vision, Sec. 5.3.3) with the translation in units of the plane distance d (``|t| = |t| / d``),
    two of which put the plane in front of camera 1 (``normal^T r1 > 0``). A pure rotation
    (all singular values of the normalised H equal) gives one solution with t = 0 and the
    normal undetermined (NaN); ``[]`` for a singular or non-finite H.
    """
    H = np.asarray(H, dtype=float)
    if H.shape != (3, 3) or not np.isfinite(H).all():
        return []
    s = np.linalg.svd(H, compute_uv=False)
    if not s[2] > 1e-12 * s[0]:
        return []
    Hn = H / s[1]
    if np.linalg.det(Hn) < 0:  # -H: its decomposition has no rotation
        return []
    w2, V = np.linalg.eigh(Hn.T @ Hn)  # ascending: sigma3^2 <= sigma2^2 = 1 <= sigma1^2
    w2 = np.clip(w2, 0.0, None)
    s1, s3 = w2[2], w2[0]
    if s1 - s3 < 1e-12:
        U, _, Vt = np.linalg.svd(Hn)
        return [(Rigid3(U @ Vt, np.zeros(3), check=False), np.full(3, np.nan))]
    v1, v2, v3 = V[:, 2], V[:, 1], V[:, 0]
    if np.linalg.det(np.column_stack([v1, v2, v3])) < 0:
        v2 = -v2
    a = np.sqrt(max(1.0 - s3, 0.0))
    b = np.sqrt(max(s1 - 1.0, 0.0))
    den = np.sqrt(s1 - s3)
    out = []
    for u in ((a * v1 + b * v3) / den, (a * v1 - b * v3) / den):
        U = np.column_stack([v2, u, np.cross(v2, u)])
        Hv2, Hu = Hn @ v2, Hn @ u
        W = np.column_stack([Hv2, Hu, np.cross(Hv2, Hu)])
        R = W @ U.T
        n = np.cross(v2, u)
        t = (Hn - R) @ n
        out.append((R, t, n))
    sols = []
    for R, t, n in out + [(R, -t, -n) for R, t, n in out]:
        Uo, _, Vto = np.linalg.svd(R)  # clean up rounding: the nearest rotation
        sols.append((Rigid3(Uo @ Vto, t, check=False), n / np.linalg.norm(n)))
    return sols


def relative_poses_from_homography(H: np.ndarray, rays1: np.ndarray, rays2: np.ndarray,
                                   min_front_fraction: float = 0.9) -> list[tuple[Rigid3, np.ndarray, float]]:
    """The decompositions of a calibrated homography (``r2 ~ H r1``) that put the plane in front
    of camera 1 for matched rays rays1, rays2 (N,3) (cheirality): ``(cam2_from_cam1 with unit
    t, normal in camera 1, fraction of the points in front of both cameras)`` for each solution
    with at least ``min_front_fraction`` of the points in front, most in front first. H is
    signed here so that ``r2^T H r1 > 0`` for most points. A pure rotation (t = 0) gives none.
    Usually two solutions remain: the planar two-fold ambiguity, which the points on the plane
    cannot resolve (points off the plane or a third view must)."""
    H = np.asarray(H, dtype=float)
    r1 = np.asarray(rays1, dtype=float).reshape(-1, 3)
    r2 = np.asarray(rays2, dtype=float).reshape(-1, 3)
    if len(r1) == 0 or len(r1) != len(r2):
        return []
    if np.sum(np.einsum("ij,ij->i", r2, r1 @ H.T) > 0) < 0.5 * len(r1):
        H = -H
    out = []
    for pose, n in decompose_homography(H):
        norm_t = np.linalg.norm(pose.t)
        if not norm_t > 1e-12 or not np.isfinite(n).all():
            continue
        depth1 = r1 @ n  # > 0: the point of the plane on this ray lies in front of camera 1
        X1 = r1 / np.where(np.abs(depth1) > 0, depth1, np.inf)[:, None]
        X2 = X1 @ pose.R.T + pose.t
        front = (depth1 > 0) & (np.einsum("ij,ij->i", X2, r2) > 0)
        frac = float(np.mean(front))
        if frac >= min_front_fraction:
            out.append((Rigid3(pose.R, pose.t / norm_t, check=False), n, frac))
    out.sort(key=lambda s: -s[2])
    return out
