"""The bundle adjustments of a growing model (issue 16): the local one stays bounded as tracks grow
longer (a denser set of the same scene, tracks of 12, then 24 views, must not make each local
adjustment larger), and global ones run each time the model has grown by a ratio (their number
grows like log n)."""

import functools

import numpy as np

from geomvision.sfm.incremental import IncrementalController
from geomvision.sfm.options import MapperOptions
from geomvision.synthetic import orbit_scene
from test_mapper_synthetic import _mapper


@functools.cache
def _built(n_images: int, **options):
    # every point is seen by every image: tracks as long as the set
    scene = orbit_scene(n_images=n_images, n_points=300, noise_px=0.3, rng=4)
    mapper = _mapper(scene, mapper=MapperOptions(init_min_tri_angle_deg=8.0, **options))
    masks = IncrementalController(mapper).run()
    assert len(masks) == 1 and masks[0].all()
    return mapper


def _sizes(mapper):
    """Per image: (observations of its local bundle, max observations of a free point)."""
    s, o = mapper.state, mapper.opt
    out = []
    for i in range(s.n_images):
        local, pts, obs, held = mapper.local_bundle(i)
        moving = np.isin(s.obs_img[obs], local)
        assert set(np.unique(s.obs_track[obs])) == set(pts)
        # a held point keeps only its observations in the moving images ...
        assert moving[np.isin(s.obs_track[obs], held)].all()
        # ... and every other point all its active observations in the model
        free = np.setdiff1d(pts, held)
        all_obs = s.observations_of_tracks(free)
        assert np.isin(all_obs[s.obs_active[all_obs]], obs).all()
        per_point = np.bincount(s.obs_track[obs][np.isin(s.obs_track[obs], free)], minlength=s.num_tracks)
        assert per_point.max(initial=0) <= o.local_ba_num_images + o.local_ba_hold_min_fixed_views - 1
        out.append((len(obs), per_point.max(initial=0)))
    return np.array(out)


def test_local_bundle_does_not_grow_with_the_track_length():
    small, large = _built(12), _built(24)
    n_small, n_large = (int(m.state.obs_active.sum()) for m in (small, large))
    assert n_large > 1.8 * n_small  # the model's observations doubled
    obs_small, obs_large = _sizes(small)[:, 0], _sizes(large)[:, 0]
    # each local bundle: at most 6 moving images and 5 fixed views per free point, whatever the set
    assert obs_large.max() <= 1.15 * obs_small.max()
    assert obs_large.max() < 0.5 * n_large


def test_holding_no_point_adjusts_every_observation_of_the_points():
    mapper = _built(12, local_ba_hold_min_fixed_views=1000)
    s = mapper.state
    for i in range(s.n_images):
        local, pts, obs, held = mapper.local_bundle(i)
        assert len(held) == 0
        all_obs = s.observations_of_tracks(pts)
        np.testing.assert_array_equal(obs, np.sort(all_obs[s.obs_active[all_obs]]))


def test_global_adjustments_run_when_the_model_has_grown_by_the_ratio():
    mapper = _built(24)
    sizes = [b["images"] for b in mapper.log.bundle_adjustments if b["kind"] == "global"]
    # the initial pair, then each time the model reached 1.2x the size at the last one, then the
    # two finishing adjustments: 13 for 24 images, against one per image (24) or more
    assert sizes == [2, 3, 4, 5, 6, 8, 10, 12, 15, 18, 22, 24, 24]
    finishing = [b for b in mapper.log.bundle_adjustments if b["kind"] == "global"][-2:]
    assert all(b["iterations"] < 100 for b in finishing)  # converged (relative cost change 1e-6)
