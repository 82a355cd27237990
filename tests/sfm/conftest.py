"""A small rendered image set shared by the SfM pipeline and CLI tests."""

import pytest

from geomvision.synthetic.rendered_datasets import render_orbit_dataset


@pytest.fixture(scope="session")
def small_scene(tmp_path_factory):
    """6 views (480 x 360) of the demo scene in the Strecha layout, with exact ground truth."""
    root = tmp_path_factory.mktemp("small_scene")
    render_orbit_dataset(root, n_images=6, width=480, height=360, arc_deg=60.0, rng=0)
    return root


@pytest.fixture(scope="session")
def walk():
    """120 frames (320 x 240) of a walk over 120 degrees around the demo scene, exact poses."""
    from geomvision.synthetic import render_walk

    return render_walk(120, width=320, height=240, arc_deg=120.0)


@pytest.fixture(scope="session")
def tracked_walk(walk):
    """An OnlineMapper fed every frame of ``walk``, with the per-frame results."""
    from geomvision.sfm import OnlineMapper

    mapper = OnlineMapper(walk.camera)
    results = [mapper.add_frame(img) for img in walk.images]
    return mapper, results
