"""match_guided: descriptor matching among the candidates an epipolar geometry (or a homography) admits."""

import numpy as np
import pytest

from geomvision import Rigid3
from geomvision.features import match_descriptors, match_guided, unit_descriptors
from geomvision.features.guided import coherent_with_anchors
from geomvision.features.options import MatchOptions
from geomvision.geometry.camera import Camera
from geomvision.geometry.epipolar import fundamental_from_pose

CAMERA = Camera("PINHOLE", 640, 480, [500.0, 500.0, 319.5, 239.5])


def _pose(rng):
    R = Rigid3.look_at(np.array([1.0, 0.2, 0.0]), np.array([0.0, 0.0, 6.0])).R
    return Rigid3(R, rng.normal(0.0, 0.1, 3) + np.array([-1.0, 0.0, 0.0]))


def _line_distances(F, x1, x2):
    """(d2, d1): distance of x2 to the line F x1 and of x1 to the line F^T x2, pixels."""
    h1, h2 = np.c_[x1, np.ones(len(x1))], np.c_[x2, np.ones(len(x2))]
    e = np.abs(np.sum(h2 * (h1 @ F.T), axis=1))
    return e / np.linalg.norm((h1 @ F.T)[:, :2], axis=1), e / np.linalg.norm((h2 @ F)[:, :2], axis=1)


def _reference(x1, x2, d1, d2, *, F=None, H=None, max_error, ratio, max_distance, mutual):
    """Brute force in float64 over all N1 x N2 pairs: the definition match_guided must equal."""
    A, B = unit_descriptors(d1).astype(np.float64), unit_descriptors(d2).astype(np.float64)
    D = np.maximum(2.0 - 2.0 * A @ B.T, 0.0)
    h1, h2 = np.c_[x1, np.ones(len(x1))], np.c_[x2, np.ones(len(x2))]
    if F is not None:
        e = np.abs(h1 @ F.T @ h2.T)  # (N1, N2): |x2^T F x1|
        admissible = ((e / np.linalg.norm((h1 @ F.T)[:, :2], axis=1)[:, None] <= max_error)
                      & (e / np.linalg.norm((h2 @ F)[:, :2], axis=1)[None, :] <= max_error))
    else:
        p = h1 @ H.T
        p = p[:, :2] / p[:, 2:]
        admissible = np.linalg.norm(p[:, None] - x2[None], axis=2) <= max_error
    D = np.where(admissible, D, np.inf)

    def top2(M):
        j = np.argmin(M, axis=1)
        b1 = M[np.arange(len(M)), j]
        M = M.copy()
        M[np.arange(len(M)), j] = np.inf
        b2 = M.min(axis=1)
        ok = np.isfinite(b1) & (b1 <= max_distance**2) & ((b1 < ratio**2 * b2) | ~np.isfinite(b2))
        return j, ok

    j, ok = top2(D)
    i = np.flatnonzero(ok)
    j = j[i]
    if mutual:
        ci, cok = top2(D.T)
        keep = (ci[j] == i) & cok[j]
        i, j = i[keep], j[keep]
    return np.c_[i, j].astype(np.int64).reshape(-1, 2)


@pytest.mark.parametrize("max_error", [1.0, 2.0, 8.0])
@pytest.mark.parametrize("mutual", [True, False])
def test_equals_the_brute_force_reference_on_random_data(max_error, mutual):
    rng = np.random.default_rng(int(max_error * 10) + mutual)
    n1, n2 = 1200, 1500
    x1 = rng.uniform([0, 0], [640, 480], (n1, 2))
    x2 = rng.uniform([-20, -10], [660, 490], (n2, 2))  # a few beyond the image: no cell loses them
    d1 = rng.integers(0, 256, (n1, 32)).astype(np.uint8)
    d2 = rng.integers(0, 256, (n2, 32)).astype(np.uint8)
    F = fundamental_from_pose(_pose(rng), CAMERA, CAMERA)
    kw = dict(max_error=max_error, ratio=0.95, max_distance=2.0, mutual=mutual)
    got = match_guided(x1, x2, d1, d2, F=F, **kw)
    ref = _reference(x1, x2, d1, d2, F=F, **kw)
    assert len(ref) > 50
    np.testing.assert_array_equal(got, ref)
    # F of the transposed problem gives the transposed matches (with the mutual check)
    if mutual:
        back = match_guided(x2, x1, d2, d1, F=F.T, **kw)
        np.testing.assert_array_equal(back[np.argsort(back[:, 1])][:, ::-1], got)
    # a homography: candidates within max_error of the transfer
    H = np.array([[1.02, 0.03, 12.0], [-0.02, 0.98, -7.0], [1e-5, -2e-5, 1.0]])
    kw["max_error"] = 10.0 * max_error
    np.testing.assert_array_equal(match_guided(x1, x2, d1, d2, H=H, **kw), _reference(x1, x2, d1, d2, H=H, **kw))


def test_matches_lie_in_the_epipolar_band_and_twins_off_it_are_recovered():
    """Each point of image 1 has its true match in image 2 and a twin (the same descriptor up to
    noise, as a window among identical windows) off its epipolar line: the global ratio test
    rejects almost all, guided matching recovers them, and every match lies in the band."""
    rng = np.random.default_rng(3)
    T = _pose(rng)
    n = 400
    X = np.c_[rng.uniform(-2.5, 2.5, (n, 2)), rng.uniform(5.0, 8.0, n)]
    x1, x2 = CAMERA.img_from_cam(X), CAMERA.img_from_cam(T.apply(X))
    x2 = x2 + rng.normal(0.0, 0.3, x2.shape)
    twins = x2 + rng.choice([-1, 1], (n, 1)) * np.array([0.0, 40.0])  # the window above / below
    D = rng.random((n, 128)) ** 4
    desc1 = D
    desc2 = np.r_[D + rng.normal(0, 0.01, D.shape), D + rng.normal(0, 0.01, D.shape)].clip(0)
    kp2 = np.r_[x2, twins]
    F = fundamental_from_pose(T, CAMERA, CAMERA)
    plain = match_descriptors(desc1, desc2, MatchOptions())
    guided = match_guided(x1, kp2, desc1, desc2, F=F, max_error=2.0, ratio=0.8)
    correct = lambda m: int(np.sum(m[:, 1] == m[:, 0]))  # noqa: E731
    assert correct(plain) < 0.1 * n
    assert correct(guided) >= 0.95 * n
    assert len(guided) - correct(guided) <= 0.01 * n  # the twin is the match only where it is on the line too
    d2, d1 = _line_distances(F, x1[guided[:, 0]], kp2[guided[:, 1]])
    assert d2.max() <= 2.0 and d1.max() <= 2.0
    # a true match moved 3 px off its epipolar line is out of the band: not matched
    moved = kp2.copy()
    moved[:n] += _normal_offset(F, x1, 3.0)
    assert correct(match_guided(x1, moved, desc1, desc2, F=F, max_error=2.0, ratio=0.8)) == 0


def _normal_offset(F, x1, dist):
    """(N,2) offsets of ``dist`` pixels along the normal of each epipolar line F x1."""
    line = np.c_[x1, np.ones(len(x1))] @ F.T
    normal = line[:, :2] / np.linalg.norm(line[:, :2], axis=1, keepdims=True)
    return dist * normal


def test_bad_input_is_refused():
    x = np.zeros((3, 2))
    d = np.ones((3, 8), np.uint8)
    F = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="exactly one model"):
        match_guided(x, x, d, d, max_error=2.0)
    with pytest.raises(ValueError, match="exactly one model"):
        match_guided(x, x, d, d, F=F, H=np.eye(3), max_error=2.0)
    with pytest.raises(ValueError, match="max_error"):
        match_guided(x, x, d, d, F=F, max_error=0.0)
    with pytest.raises(ValueError, match="descriptors must match"):
        match_guided(x, x, d[:2], d, F=F, max_error=2.0)
    with pytest.raises(ValueError, match="NaN"):
        match_guided(x, x, d, d, F=np.full((3, 3), np.nan), max_error=2.0)
    assert match_guided(np.zeros((0, 2)), x, np.zeros((0, 8)), d, F=F, max_error=2.0).shape == (0, 2)


def test_coherence_keeps_the_local_motion_and_drops_a_period_shift():
    """Points on two facades at different depths: a match moving as its neighbours do is kept,
    the same point matched one window period (60 px) along the row is not, at any depth."""
    rng = np.random.default_rng(5)
    T = Rigid3(np.eye(3), np.array([-0.8, 0.0, 0.0]))
    X = np.r_[np.c_[rng.uniform(-3, 0, (300, 2)), np.full(300, 6.0)],
              np.c_[rng.uniform(0, 3, (300, 2)), np.full(300, 12.0)]]
    x1, x2 = CAMERA.img_from_cam(X), CAMERA.img_from_cam(T.apply(X))
    anchors = rng.permutation(600)[:150]
    keep = coherent_with_anchors(x1, x2, x1[anchors], x2[anchors])
    assert keep.mean() > 0.97
    shifted = coherent_with_anchors(x1, x2 + [60.0, 0.0], x1[anchors], x2[anchors])
    assert shifted.mean() < 0.03
    assert not coherent_with_anchors(x1, x2, np.zeros((0, 2)), np.zeros((0, 2))).any()
    with pytest.raises(ValueError, match="pair up"):
        coherent_with_anchors(x1, x2[:5], x1, x2)
