"""Assertions shared by the sfm tests."""

import numpy as np


def assert_same_model(a, b) -> None:
    """Two Reconstructions hold the same images, points and cameras, bit for bit."""
    assert sorted(a.images) == sorted(b.images) and sorted(a.points3D) == sorted(b.points3D)
    for iid in a.images:
        np.testing.assert_array_equal(a.images[iid].cam_from_world.R, b.images[iid].cam_from_world.R)
        np.testing.assert_array_equal(a.images[iid].cam_from_world.t, b.images[iid].cam_from_world.t)
    for pid in a.points3D:
        np.testing.assert_array_equal(a.points3D[pid].xyz, b.points3D[pid].xyz)
    for cid in a.cameras:
        np.testing.assert_array_equal(a.cameras[cid].params, b.cameras[cid].params)
