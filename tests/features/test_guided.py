"""match_by_projection: windowed descriptor matching around predicted positions."""

import numpy as np
import pytest

from geomvision.features import match_by_projection


def _desc(rng, n):
    d = rng.random((n, 128)).astype(np.float32) ** 4
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def test_exact_matches_within_the_window():
    rng = np.random.default_rng(0)
    n = 400
    kp = rng.uniform(0, [640, 480], (n, 2))
    D = _desc(rng, n)
    perm = rng.permutation(n)  # point p is keypoint perm[p]
    pred = kp[perm] + rng.normal(0, 3.0, (n, 2))
    m = match_by_projection(pred, D[perm], kp, D, radius=12.0, image_size=(640, 480))
    assert len(m) == n
    assert np.array_equal(m[:, 1], perm[m[:, 0]])
    # a prediction further than the radius finds nothing
    far = kp[perm] + np.array([30.0, 0.0])
    m = match_by_projection(far, D[perm], kp, D, radius=12.0, image_size=(640, 480))
    assert np.all(np.linalg.norm(kp[m[:, 1]] - far[m[:, 0]], axis=1) <= 12.0)
    assert not np.any(m[:, 1] == perm[m[:, 0]])


def test_ratio_test_one_point_per_keypoint_and_invalid():
    rng = np.random.default_rng(1)
    D = _desc(rng, 3)
    kp = np.array([[100.0, 100.0], [104.0, 100.0], [300.0, 300.0]])
    Dk = np.stack([D[0], D[0] + 0.02 * D[1], D[2]])  # two near-identical candidates ...
    Dk /= np.linalg.norm(Dk, axis=1, keepdims=True)
    pred = np.array([[101.0, 100.0], [300.0, 301.0], [299.0, 300.0]])
    Dp = np.stack([D[0] + 0.01 * D[1], D[2], D[2]])  # ... and a point halfway between them
    Dp /= np.linalg.norm(Dp, axis=1, keepdims=True)
    m = match_by_projection(pred, Dp, kp, Dk, radius=10.0, image_size=(640, 480))
    # point 0 is ambiguous (ratio test); points 1 and 2 both want keypoint 2: one wins
    assert 0 not in m[:, 0]
    assert len(m) == 1 and m[0, 1] == 2
    m = match_by_projection(pred, Dp, kp, Dk, radius=10.0, image_size=(640, 480), ratio=1.0,
                            valid=np.array([True, False, True]))
    assert len(m) == 2 and tuple(m[1]) == (2, 2) and m[0, 0] == 0 and m[0, 1] in (0, 1)
    # NaN predictions (points behind the camera) are skipped, not an error
    pred[0] = np.nan
    m = match_by_projection(pred, Dp, kp, Dk, radius=10.0, image_size=(640, 480))
    assert 0 not in m[:, 0]
    with pytest.raises(ValueError, match="descriptors must match"):
        match_by_projection(pred, Dp[:2], kp, Dk, radius=10.0, image_size=(640, 480))
    with pytest.raises(ValueError, match="radius"):
        match_by_projection(pred, Dp, kp, Dk, radius=0.0, image_size=(640, 480))
