"""``geomvision view`` refuses what the offscreen renderer would abort on (issue 18, item 8): a size
too large for open3d killed the whole process with SIGABRT ("Unable to bind image"); now the
arguments are checked first and the error names the argument and the allowed range."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from geomvision.cli.main import main
from geomvision.io import write_model
from geomvision.synthetic import orbit_scene


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    write_model(orbit_scene(4, 100, rng=np.random.default_rng(3)).to_reconstruction(), folder, binary=True)
    return folder


def _cli(*argv: str) -> subprocess.CompletedProcess:
    """The command in its own process: an abort inside open3d must not take pytest with it."""
    return subprocess.run([sys.executable, "-m", "geomvision.cli.main", *argv], capture_output=True, text=True,
                          timeout=300)


def test_a_screenshot_too_large_for_the_renderer_is_an_error_not_an_abort(model_dir, tmp_path):
    proc = _cli("view", str(model_dir), "--screenshot", str(tmp_path / "s.png"),
                "--width", "12000", "--height", "12000")
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-500:])  # before: -6 (SIGABRT in open3d)
    assert "--width x --height = 12000 x 12000" in proc.stderr and "at most 67108864 (8192 x 8192)" in proc.stderr
    assert not (tmp_path / "s.png").exists()


def test_the_library_refuses_a_camera_larger_than_the_renderer_draws(model_dir):
    # the first-camera viewpoint renders at the camera's own size: a 200-megapixel camera
    code = (
        "import numpy as np\n"
        "from geomvision.geometry import Camera, Rigid3\n"
        "from geomvision.io import read_model\n"
        "from geomvision.viz.offscreen import render_screenshot\n"
        f"rec = read_model({str(model_dir)!r})\n"
        "cam = Camera('PINHOLE', 16320, 12240, [12000.0, 12000.0, 8160.0, 6120.0])\n"
        "try:\n"
        "    render_screenshot(rec, camera=cam, cam_from_world=Rigid3())\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-500:])
    assert "width x height = 16320 x 12240" in proc.stdout and "choose a smaller width or height" in proc.stdout


@pytest.mark.parametrize("argv, words", [
    (["--width", "100000"], "--width must be 16 to 16384 pixels, got 100000"),
    (["--height", "8"], "--height must be 16 to 16384 pixels, got 8"),
    (["--width", "16384", "--height", "8192"], "--width x --height = 16384 x 8192"),
    (["--point-size", "nan"], "--point-size must be a positive number of pixels"),
    (["--screenshot", "view.jpg"],
     "--screenshot 'view.jpg': screenshots are written as PNG; give a path ending in .png"),
    (["--screenshot", "no/such/folder/view.png"], "folder 'no/such/folder' does not exist"),
])
def test_view_arguments_are_checked_before_any_work(model_dir, tmp_path, monkeypatch, capsys, argv, words):
    import geomvision.viz.loading as loading

    def never(*a, **kw):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(loading, "load_model", never)
    monkeypatch.chdir(tmp_path)
    if "--screenshot" not in argv:
        argv = ["--screenshot", "view.png", *argv]
    assert main(["view", str(model_dir), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert list(tmp_path.iterdir()) == []


def test_the_largest_allowed_size_passes_the_check():
    from geomvision.viz.offscreen import check_screenshot_size

    check_screenshot_size(8192, 8192)
    check_screenshot_size(16384, 4096)
    with pytest.raises(ValueError, match="height must be 16 to 16384 pixels, got 16385"):
        check_screenshot_size(100, 16385)
