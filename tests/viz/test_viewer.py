"""The interactive viewer's logic without a window: layer toggles, point size, opening view."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision.cli.main import main
from geomvision.synthetic import orbit_scene
from geomvision.viz.scene import build_scene
from geomvision.viz.viewer import MAX_POINT_SIZE, MIN_POINT_SIZE, ViewerState, initial_view, show


class FakeVisualizer:
    """Records what the key callbacks do to an open3d visualizer."""

    class Options:
        point_size = 2.0

    def __init__(self):
        self.shown = []
        self.options = self.Options()
        self.calls = []

    def add_geometry(self, geom, reset_bounding_box=True):
        self.calls.append(("add", geom, reset_bounding_box))
        self.shown.append(geom)

    def remove_geometry(self, geom, reset_bounding_box=True):
        self.calls.append(("remove", geom, reset_bounding_box))
        self.shown.remove(geom)

    def get_render_option(self):
        return self.options


@pytest.fixture
def layers(rng):
    return build_scene(orbit_scene(5, 100, rng=rng).to_reconstruction())


def test_toggles_remove_and_restore_layers_without_moving_the_view(layers):
    vis = FakeVisualizer()
    geoms = {"points": object(), "cameras": object(), "path": object(), "axes": object()}
    vis.shown = list(geoms.values())
    state = ViewerState(vis, geoms, layers, 2.0)
    assert state.toggle("cameras") is True
    assert geoms["cameras"] not in vis.shown and state.visible["cameras"] is False
    state.toggle("cameras")
    assert geoms["cameras"] in vis.shown and state.visible["cameras"] is True
    assert all(reset is False for _, _, reset in vis.calls)  # the camera does not jump
    assert state.toggle("mesh") is False and len(vis.calls) == 2


def test_point_size_keys_scale_and_clamp(layers):
    vis = FakeVisualizer()
    state = ViewerState(vis, {}, layers, 2.0)
    state.scale_points(1.25)
    assert vis.options.point_size == pytest.approx(2.5)
    for _ in range(40):
        state.scale_points(1.25)
    assert vis.options.point_size == MAX_POINT_SIZE
    for _ in range(40):
        state.scale_points(0.8)
    assert vis.options.point_size == MIN_POINT_SIZE


def test_opening_view_is_a_three_quarter_view_of_points_and_cameras(layers):
    fr = layers.frame
    view = initial_view(layers)
    content = np.vstack([layers.points[layers.inlier_points], layers.camera_centres])  # outliers ignored
    np.testing.assert_allclose(view["lookat"], 0.5 * (content.min(0) + content.max(0)))
    np.testing.assert_allclose(view["up"], fr.up)
    assert np.linalg.norm(view["front"]) == pytest.approx(1.0)
    # front points from the scene towards the eye: behind and right of the cameras, 35 deg up
    assert np.degrees(np.arcsin(view["front"] @ fr.up)) == pytest.approx(35.0)
    assert view["front"] @ fr.forward < 0 and view["front"] @ fr.right > 0
    assert view["front"] @ fr.forward == pytest.approx(-(view["front"] @ fr.right))


def test_no_display_gives_a_clear_error(o3d, layers, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="--screenshot"):
        show(layers)
    from geomvision.io import write_model

    write_model(orbit_scene(4, 60, rng=2).to_reconstruction(), tmp_path / "m")
    assert main(["view", str(tmp_path / "m")]) == 2
    assert "no display" in capsys.readouterr().err


def test_view_without_open3d_says_how_to_install(tmp_path, monkeypatch, capsys):
    import sys

    from geomvision.io import write_model

    write_model(orbit_scene(4, 60, rng=2).to_reconstruction(), tmp_path / "m")
    monkeypatch.setitem(sys.modules, "open3d", None)
    assert main(["view", str(tmp_path / "m"), "--screenshot", str(tmp_path / "v.png")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'geomvision[viz]'" in err and "libvulkan1" in err
    assert not (tmp_path / "v.png").exists()


def test_public_names_resolve_lazily():
    import geomvision.viz as viz
    from geomvision.viz import viewer

    assert viz.show is viewer.show
    for name in viz.__all__:
        assert callable(getattr(viz, name)), name
    with pytest.raises(AttributeError, match="no attribute 'shwo'"):
        viz.shwo  # noqa: B018
