"""Reconstruction: id links stay consistent; check() finds every kind of broken link."""

import numpy as np
import pytest

from geomvision import Camera, Rigid3
from geomvision.scene import Reconstruction
from geomvision.synthetic import orbit_scene


@pytest.fixture
def rec():
    return orbit_scene(n_images=4, n_points=60, rng=3).to_reconstruction()


def test_synthetic_reconstruction_is_consistent_and_exact(rec):
    rec.check()
    assert rec.num_registered_images == 4
    assert rec.update_point_errors() < 1e-10
    s = rec.summary()
    assert s["num_points3D"] == len(rec.points3D) and s["num_observations"] == sum(
        im.num_points3D for im in rec.images.values()
    )


def test_delete_observation_and_point_keep_links(rec):
    pid = next(iter(rec.points3D))
    iid, kp = rec.points3D[pid].track[0]
    n_before = rec.points3D[pid].track_length
    rec.delete_observation(int(iid), int(kp))
    assert rec.images[int(iid)].point3D_ids[kp] == -1
    if n_before > 2:
        assert rec.points3D[pid].track_length == n_before - 1
    else:
        assert pid not in rec.points3D
    rec.check()
    pid = next(iter(rec.points3D))
    track = rec.points3D[pid].track.copy()
    rec.delete_point3D(pid)
    assert all(rec.images[int(i)].point3D_ids[k] == -1 for i, k in track)
    rec.check()


def test_deregister_image_removes_its_observations(rec):
    rec.deregister_image(2)
    assert not rec.images[2].registered and rec.images[2].num_points3D == 0
    assert all(2 not in pt.track[:, 0] for pt in rec.points3D.values())
    rec.check()


def test_similarity_transform_preserves_pixels(rec, rng):
    before = rec.reprojection_errors()[2]
    rec.transform(3.7, Rigid3.random(rng, t_scale=5.0))
    np.testing.assert_allclose(rec.reprojection_errors()[2], before, atol=1e-9)


def test_check_reports_broken_links(rec):
    pid = next(iter(rec.points3D))
    iid, kp = rec.points3D[pid].track[0]
    rec.images[int(iid)].point3D_ids[kp] = -1  # break one direction
    with pytest.raises(ValueError, match=f"point {pid} track has"):
        rec.check()


def test_adding_rejects_bad_links():
    rec = Reconstruction()
    cid = rec.add_camera(Camera.from_focal(500, 640, 480))
    with pytest.raises(ValueError, match="camera_id 7 does not exist"):
        rec.add_image("a.png", 7)
    iid = rec.add_image("a.png", cid, np.zeros((3, 2)), Rigid3())
    rec.add_image("b.png", cid, np.zeros((3, 2)), Rigid3())
    with pytest.raises(ValueError, match="keypoint 5 of image 1"):
        rec.add_point3D(np.zeros(3), [(iid, 5), (2, 0)])
    pid = rec.add_point3D(np.zeros(3), [(iid, 0), (2, 0)])
    with pytest.raises(ValueError, match="already observes point"):
        rec.add_point3D(np.zeros(3), [(iid, 0), (2, 1)])
    with pytest.raises(ValueError, match="xyz contains"):
        rec.add_point3D([np.nan, 0, 0], [(iid, 1), (2, 1)])
    rec.add_observation(pid, iid, 2)
    assert rec.points3D[pid].track_length == 3 and rec.images[iid].point3D_ids[2] == pid
    rec.check()
    assert rec.image_id_by_name("b.png") == 2
    with pytest.raises(ValueError, match="no image named"):
        rec.image_id_by_name("c.png")


@pytest.mark.parametrize("damage, message", [
    ("image_points_to_missing_point", "refers to missing point 99999"),
    ("track_refers_to_missing_image", "track refers to missing image 77"),
    ("track_repeats_observation", "track repeats observation"),
    ("track_lacks_keypoint", "whose track lacks it"),
    ("keypoint_index_out_of_range", "but that keypoint does not point back"),
    ("nan_point", "has invalid xyz"),
])
def test_check_reports_each_kind_of_damage(damage, message):
    rec = orbit_scene(n_images=4, n_points=60, rng=3).to_reconstruction()
    pid = next(iter(rec.points3D))
    pt = rec.points3D[pid]
    iid, kp = (int(v) for v in pt.track[0])
    if damage == "image_points_to_missing_point":
        free = int(np.flatnonzero(rec.images[iid].point3D_ids < 0)[0]) if (rec.images[iid].point3D_ids < 0).any() else kp
        rec.images[iid].point3D_ids[free] = 99999
    elif damage == "track_refers_to_missing_image":
        pt.track = np.vstack([pt.track, [[77, 0]]])
    elif damage == "track_repeats_observation":
        pt.track = np.vstack([pt.track, pt.track[:1]])
    elif damage == "track_lacks_keypoint":
        pt.track = pt.track[1:]
    elif damage == "keypoint_index_out_of_range":
        pt.track = np.vstack([pt.track, [[iid, 10**6]]])
    else:
        pt.xyz = np.array([np.nan, 0.0, 0.0])
    with pytest.raises(ValueError, match=message):
        rec.check()
