"""A small rendered image set shared by the SfM pipeline and CLI tests."""

import pytest

from geomvision.synthetic.rendered_datasets import render_orbit_dataset


@pytest.fixture(scope="session")
def small_scene(tmp_path_factory):
    """6 views (480 x 360) of the demo scene in the Strecha layout, with exact ground truth."""
    root = tmp_path_factory.mktemp("small_scene")
    render_orbit_dataset(root, n_images=6, width=480, height=360, arc_deg=60.0, rng=0)
    return root
