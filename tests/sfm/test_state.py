"""MapperState: its invariants are kept by its own methods (the mapper writes nothing directly)."""

import numpy as np
import pytest

from geomvision.geometry.camera import Camera
from geomvision.geometry.rigid import Rigid3
from geomvision.sfm.state import ImageData, MapperState
from geomvision.sfm.tracks import build_tracks


def _state(n_images=3, n_kp=4):
    """n_images images seeing n_kp points each: keypoint k of every image is track k."""
    rng = np.random.default_rng(0)
    kps = [rng.uniform(0, 100, (n_kp, 2)) for _ in range(n_images)]
    matches = {(i, j): np.stack([np.arange(n_kp)] * 2, axis=1) for i in range(n_images) for j in range(i + 1, n_images)}
    tracks, _ = build_tracks([n_kp] * n_images, matches)
    data = ImageData([f"{i}" for i in range(n_images)], kps, [np.zeros((n_kp, 3), np.uint8)] * n_images,
                     np.tile([100, 100], (n_images, 1)))
    cam = Camera.from_focal(100.0, 100, 100, "PINHOLE")
    return MapperState(data, [cam], np.zeros(n_images, np.int64), np.array([True]), tracks)


def _obs(s, img, trk):
    return int(np.flatnonzero((s.obs_img == img) & (s.obs_track == trk))[0])


def test_register_set_points_and_activate_keep_the_invariants():
    s = _state()
    s.check_invariants()
    s.register(0, Rigid3(), 0)
    s.register(1, Rigid3(np.eye(3), [1.0, 0, 0]), 0)
    s.set_points([0, 2], np.array([[0, 0, 5.0], [1, 1, 6.0]]), 0)
    s.activate_observations([_obs(s, 0, 0), _obs(s, 1, 0), _obs(s, 0, 2)])
    s.check_invariants()
    assert s.registered[:2].all() and list(s.image_model) == [0, 0, -1]
    assert list(s.point_model) == [0, -1, 0, -1] and list(s.point_valid) == [True, False, True, False]
    np.testing.assert_array_equal(s.active_count(), [2, 0, 1, 0])
    np.testing.assert_array_equal(s.pose(1).t, [1.0, 0, 0])


def test_moved_observations_keep_keypoint_pixels_and_rays_together():
    s = _state()
    o = np.array([_obs(s, 1, 2), _obs(s, 0, 3)])
    uv = np.array([[10.25, 20.5], [55.0, 60.125]])
    s.move_observations(o, uv)
    np.testing.assert_array_equal(s.obs_uv[o], uv)
    np.testing.assert_array_equal(s.images.keypoints[1][2], uv[0])
    np.testing.assert_array_equal(s.images.keypoints[0][3], uv[1])
    np.testing.assert_allclose(s.obs_xy[o], s.cameras[0].cam_from_img(uv)[:, :2])
    # the others did not move
    other = np.setdiff1d(np.arange(s.num_observations), o)
    assert np.isin(s.obs_uv[other], uv).all(axis=1).sum() == 0
    s.check_invariants()


def test_activation_refuses_what_would_break_an_invariant():
    s = _state()
    s.register(0, Rigid3(), 0)
    s.register(1, Rigid3(), 1)
    s.set_points([0], np.array([[0, 0, 5.0]]), 0)
    with pytest.raises(ValueError, match="activate_observations"):
        s.activate_observations([_obs(s, 0, 1)])  # track 1 has no point
    with pytest.raises(ValueError, match="activate_observations"):
        s.activate_observations([_obs(s, 2, 0)])  # image 2 is not registered
    with pytest.raises(ValueError, match="activate_observations"):
        s.activate_observations([_obs(s, 1, 0)])  # image 1 belongs to model 1, the point to model 0
    with pytest.raises(ValueError, match="already have a point"):
        s.set_points([0], np.zeros((1, 3)), 0)
    with pytest.raises(ValueError, match="registered in model 1"):
        s.register(1, Rigid3(), 0)
    assert not s.obs_active.any()
    with pytest.raises(AttributeError, match="owned by the state"):
        s.obs_active = np.ones(len(s.obs_img), bool)
    s.check_invariants()


def test_invalidation_and_deregistration_deactivate_their_observations():
    s = _state()
    for i in range(3):
        s.register(i, Rigid3(), 0)
    s.set_points([0, 1, 2, 3], np.tile([0, 0, 5.0], (4, 1)), 0)
    s.activate_observations(np.arange(len(s.obs_img)))
    s.invalidate_points([1])
    s.check_invariants()
    assert not s.obs_active[s.obs_track == 1].any() and s.point_model[1] == -1
    s.deregister([2])
    s.check_invariants()
    assert not s.obs_active[s.obs_img == 2].any() and s.image_model[2] == -1 and not s.registered[2]
    np.testing.assert_array_equal(s.active_count(), [2, 0, 2, 2])
    # points left with one active observation are dropped
    s.deactivate_observations([_obs(s, 0, 3)])
    assert s.drop_weak_points(2) == 1 and not s.point_valid[3]
    s.check_invariants()


# --- growth ---------------------------------------------------------------------------------------
def _synthetic_inputs():
    from test_mapper_synthetic import _mapper

    from geomvision.synthetic import orbit_scene

    scene = orbit_scene(n_images=6, n_points=400, noise_px=0.5, outlier_ratio=0.1, rng=2)
    return scene, _mapper(scene)


def _grown_like(state):
    """The same images and tracks as ``state``, added one by one to an empty state."""
    from geomvision.sfm.tracks import Tracks

    empty = Tracks(np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                   np.zeros(1, np.int64))
    grown = MapperState(ImageData([], [], [], np.zeros((0, 2), np.int64)), [state.cameras[0]], np.zeros(0, np.int64),
                        state.camera_known, empty)
    for i in range(state.n_images):
        assert grown.add_image(state.images.names[i], state.images.keypoints[i], 0,
                               colors=state.images.colors[i]) == i
    ptr = np.r_[0, np.cumsum(np.bincount(state.obs_track, minlength=state.num_tracks))]
    np.testing.assert_array_equal(grown.add_tracks(ptr, state.obs_img, state.obs_kp), np.arange(state.num_tracks))
    return grown


def test_a_state_grown_image_by_image_maps_exactly_like_one_built_at_once():
    from geomvision.sfm.incremental import IncrementalController
    from geomvision.sfm.mapper import IncrementalMapper

    _, mapper = _synthetic_inputs()
    batch = mapper.state
    grown = _grown_like(batch)
    for name in ("R", "t", "img_cam", "image_ids", "image_sizes", "X", "point_ids", "obs_track", "obs_img", "obs_kp",
                 "obs_uv", "obs_xy", "obs_sigma", "obs_active"):
        np.testing.assert_array_equal(getattr(grown, name), getattr(batch, name), err_msg=name)
    for i in range(batch.n_images):
        np.testing.assert_array_equal(grown.observations_of_image(i), batch.observations_of_image(i))
    masks_batch = IncrementalController(mapper).run()
    other = IncrementalMapper(grown, mapper.geoms, mapper.opt, mapper.cam_opt, seed=mapper.seed)
    masks_grown = IncrementalController(other).run()
    np.testing.assert_array_equal(masks_grown, masks_batch)
    np.testing.assert_array_equal(grown.R, batch.R)
    np.testing.assert_array_equal(grown.X[grown.point_valid], batch.X[batch.point_valid])


def test_add_image_after_construction_then_tracks_and_observations():
    s = _state(n_images=2, n_kp=4)
    cam = Camera.from_focal(200.0, 100, 100, "PINHOLE")
    kp = np.array([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]])
    i = s.add_image("new", kp, cam, camera_known=True)
    assert i == 2 and s.n_images == 3 and len(s.cameras) == 2 and s.camera_known[1] and s.img_cam[2] == 1
    assert not s.registered[2] and s.image_model[2] == -1 and s.image_ids[2] == 3
    assert len(s.observations_of_image(2)) == 0
    assert s.add_image("new2", kp[:2], 0) == 3 and s.img_cam[3] == 0
    # image 2 sees track 0 (its keypoint 1) and starts a new track with image 3 (keypoints 0 and 1)
    obs = s.add_observations([0], [2], [1])
    new = s.add_tracks([0, 2], [2, 3], [0, 1])
    assert list(new) == [4] and s.num_tracks == 5 and s.point_ids[4] == 5
    np.testing.assert_array_equal(s.obs_uv[obs], kp[[1]])
    np.testing.assert_allclose(s.obs_xy[obs], cam.cam_from_img(kp[[1]])[:, :2])
    assert sorted(s.obs_track[s.observations_of_image(2)]) == [0, 4]
    assert s.kp_track[2].tolist() == [4, 0, -1]
    with pytest.raises(ValueError, match="already belongs"):
        s.add_tracks([0, 2], [0, 2], [0, 2])  # keypoint 0 of image 0 is in track 0
    with pytest.raises(ValueError, match="one image twice"):
        s.add_observations([0], [2], [2])  # track 0 already sees image 2
    assert s.num_observations == 2 * 4 + 3
    # the new image can be registered and its observations activated
    s.register(0, Rigid3(), 0)
    s.register(2, Rigid3(np.eye(3), [0.5, 0, 0]), 0)
    s.set_points([0], np.array([[0, 0, 5.0]]), 0)
    s.activate_observations(np.r_[_obs(s, 0, 0), obs])
    s.check_invariants()


def test_growth_doubles_the_capacity():
    s = _state(n_images=2, n_kp=4)
    buffers = set()
    for k in range(200):
        s.add_image(f"x{k}", np.zeros((1, 2)), 0)
        buffers.add(id(s._buf_R))
    assert s.n_images == 202 and s.R.shape == (202, 3, 3)
    assert len(s._buf_R) == 256 and len(buffers) <= 6  # 8, 16, ..., 256 rows: log2(n) reallocations
    np.testing.assert_array_equal(s.R[2:], np.tile(np.eye(3), (200, 1, 1)))


def test_from_reconstruction_round_trip():
    from geomvision.sfm.incremental import IncrementalController

    _, mapper = _synthetic_inputs()
    masks = IncrementalController(mapper).run()
    rec = mapper.state.to_reconstruction(masks[0])
    for pid in list(rec.points3D)[::7]:  # ids with gaps
        rec.delete_point3D(pid)
    state = MapperState.from_reconstruction(rec)
    state.check_invariants()
    assert state.registered.all() and state.point_valid.all() and state.obs_active.all()
    back = state.to_reconstruction()
    assert sorted(back.cameras) == sorted(rec.cameras)
    for cid in rec.cameras:
        np.testing.assert_array_equal(back.cameras[cid].params, rec.cameras[cid].params)
    assert sorted(back.images) == sorted(rec.images)
    for iid, im in rec.images.items():
        b = back.images[iid]
        assert b.name == im.name and b.camera_id == im.camera_id
        np.testing.assert_array_equal(b.cam_from_world.R, im.cam_from_world.R)
        np.testing.assert_array_equal(b.cam_from_world.t, im.cam_from_world.t)
        np.testing.assert_array_equal(b.keypoints, im.keypoints)
        np.testing.assert_array_equal(b.point3D_ids, im.point3D_ids)
    assert sorted(back.points3D) == sorted(rec.points3D)
    for pid, p in rec.points3D.items():
        q = back.points3D[pid]
        np.testing.assert_array_equal(q.xyz, p.xyz)
        np.testing.assert_array_equal(q.color, p.color)
        np.testing.assert_array_equal(q.track[np.lexsort(q.track.T[::-1])], p.track[np.lexsort(p.track.T[::-1])])
        assert q.error == pytest.approx(p.error, rel=1e-9)
    back.check()


def test_empty_state_grows_and_refuses_bad_observations():
    from geomvision.sfm.state import MapperState
    from geomvision.synthetic import demo_camera

    s = MapperState.empty()
    assert s.n_images == s.num_tracks == s.num_observations == 0
    c = s.add_camera(demo_camera(320, 240), known=True)
    kp = np.arange(20.0).reshape(10, 2)
    a = s.add_image("a", kp, c, scales=np.full(10, 4.0))
    b = s.add_image("b", kp + 1, c, scales=np.ones(10))
    t = s.add_tracks([0, 2, 4], [a, b, a, b], [0, 0, 3, 5])
    assert list(t) == [0, 1] and s.num_observations == 4
    np.testing.assert_allclose(s.obs_uv, [kp[0], kp[0] + 1, kp[3], kp[5] + 1])
    np.testing.assert_allclose(s.obs_sigma, [2.0, 1.0, 2.0, 1.0])  # scale 4 ** 0.5
    with pytest.raises(ValueError, match="already belongs"):
        s.add_observations([1], [a], [0])
    with pytest.raises(ValueError, match="does not exist"):
        s.add_observations([1], [a], [10])
    with pytest.raises(ValueError, match="twice"):
        s.add_observations([0], [a], [7])
    assert s.num_observations == 4  # nothing half-added
    s.check_invariants()
