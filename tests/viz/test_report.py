"""The HTML report: self-contained, with plots, numbers, screenshots and two-view figures."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys

import numpy as np
from PIL import Image

from geomvision.cli.main import main
from geomvision.synthetic import orbit_scene
from geomvision.viz.report import write_report


def _images(page: str) -> list[tuple[str, Image.Image]]:
    out = []
    for alt, data in re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)">', page):
        out.append((alt, Image.open(io.BytesIO(base64.b64decode(data)))))
    return out


def test_report_of_a_real_sfm_folder(o3d, fountain_sfm_dir, fountain_model, tmp_path, capsys):
    rec, _ = fountain_model
    out = tmp_path / "rep"
    assert main(["report", str(fountain_sfm_dir), "-o", str(out), "--width", "400", "--height", "300"]) == 0
    path = out / "report.html"
    assert capsys.readouterr().out.strip() == str(path)
    page = path.read_text(encoding="utf-8")
    # self-contained: every image inline, nothing fetched from elsewhere
    assert page.count("<img") == page.count('src="data:image/png;base64,')
    assert not re.search(r'(src|href)="(?!data:)', page)
    alts = [alt for alt, _ in _images(page)]
    assert alts == ["screenshot first-camera", "screenshot top", "reprojection errors", "track lengths",
                    "observations per image", "top and side views", "matches", "epipolar lines"]
    for alt, img in _images(page):
        px = np.asarray(img.convert("L"))
        assert px.std() > 5, alt  # not blank
    shots = dict(_images(page))
    assert shots["screenshot first-camera"].size == (400, round(400 * 1024 / 1536))
    assert shots["screenshot top"].size == (400, 300)
    summary = rec.summary()
    for key in ("num_points3D", "num_observations"):
        assert f"<th>{key.replace('_', ' ')}</th><td>{summary[key]}</td>" in page
    assert "<th>total_s</th><td>12.5</td>" in page and "<th>mapper.refinements</th><td>1, 2</td>" in page
    assert "other models (not shown)</th><td>1</td>" in page
    assert "Notes" not in page
    assert [p.name for p in out.iterdir()] == ["report.html"]


def test_report_without_open3d_or_images_explains_what_is_missing(tmp_path, monkeypatch):
    rec = orbit_scene(5, 150, rng=3).to_reconstruction()
    monkeypatch.setitem(sys.modules, "open3d", None)  # as if the viz extra were not installed
    path = write_report(rec, tmp_path / "r")
    page = path.read_text()
    assert "No screenshot: the 3-D viewer and screenshots need open3d: pip install" in page
    assert "Two-view figures skipped: the images were not found (pass --images DIR)." in page
    assert [alt for alt, _ in _images(page)] == ["reprojection errors", "track lengths", "observations per image",
                                                 "top and side views"]


def test_report_of_a_point_cloud(tmp_path):
    from geomvision.io import write_ply

    write_ply(np.random.default_rng(2).normal(size=(300, 3)), tmp_path / "c.ply")
    path = write_report(tmp_path / "c.ply", tmp_path / "r", screenshots=False)
    page = path.read_text()
    assert "<th>points</th><td>300</td>" in page
    assert "point cloud without cameras" in page
    assert [alt for alt, _ in _images(page)] == ["top and side views"]


def test_images_folder_errors_and_missing_files_become_notes(fountain_model, tmp_path):
    rec, _ = fountain_model
    try:
        write_report(rec, tmp_path / "r", images_dir=tmp_path / "nowhere", screenshots=False)
    except ValueError as exc:
        assert "images_dir" in str(exc)
    else:
        raise AssertionError("a missing --images folder must raise")
    (tmp_path / "imgs").mkdir()
    page = write_report(rec, tmp_path / "r", images_dir=tmp_path / "imgs", screenshots=False).read_text()
    assert "Two-view figures skipped: image file(s) not found" in page


def test_viz_imports_neither_open3d_nor_pyplot():
    code = (
        "import sys\n"
        "import geomvision.viz.report, geomvision.viz.plots, geomvision.viz.pairs, geomvision.viz.scene\n"
        "import geomvision.viz.viewpoints, geomvision.viz.loading, geomvision.cli.main\n"
        "from geomvision.synthetic import orbit_scene\n"
        "from geomvision.viz.plots import plot_top_side_views\n"
        "geomvision.cli.main.build_parser()\n"
        "plot_top_side_views(orbit_scene(3, 50, rng=0).to_reconstruction())\n"
        "print('open3d' in sys.modules, 'matplotlib.pyplot' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", "False"]


def test_images_are_found_in_a_colmap_project_layout(tmp_path):
    from geomvision.io import write_model

    rec = orbit_scene(4, 200, rng=4).to_reconstruction()
    write_model(rec, tmp_path / "project" / "sparse" / "0")
    (tmp_path / "project" / "images").mkdir()
    yy, xx = np.mgrid[0:480, 0:640]
    for im in rec.images.values():  # checkerboard stand-ins, twice the camera's size: resized to it
        board = (((xx // 40 + yy // 40) % 2) * 200 + 30).astype(np.uint8)
        Image.fromarray(np.kron(board, np.ones((2, 2), np.uint8))).save(tmp_path / "project" / "images" / im.name)
    path = write_report(tmp_path / "project" / "sparse" / "0", tmp_path / "r", screenshots=False)
    page = path.read_text()
    assert [alt for alt, _ in _images(page)][-2:] == ["matches", "epipolar lines"]
    assert "Notes" not in page  # nothing skipped


def test_report_lists_the_loop_candidates_of_an_sfm_run(tmp_path):
    import json

    from geomvision.io import write_model

    rec = orbit_scene(5, 150, rng=3).to_reconstruction()
    out = tmp_path / "sfm"
    write_model(rec, out / "sparse" / "0")
    report = {"retrieval_pairs": [
        {"pair": ["a.png", "b.png"], "similarity": 0.41, "verified": False, "num_inliers": 0, "config": "failed"},
        {"pair": ["01.png", "10.png"], "similarity": 0.62, "verified": True, "num_inliers": 220,
         "config": "calibrated"}]}
    (out / "report.json").write_text(json.dumps(report))
    page = write_report(out, tmp_path / "r", screenshots=False).read_text()
    assert "<h2>Loop candidates</h2>" in page
    first, second = page.index("01.png - 10.png"), page.index("a.png - b.png")
    assert first < second  # verified first
    assert "verified, 220 inliers (calibrated)" in page and "not verified, 0 inliers (failed)" in page


def test_report_lists_the_model_merges_of_an_sfm_run(tmp_path):
    import json

    from geomvision.io import write_model

    rec = orbit_scene(5, 150, rng=3).to_reconstruction()
    out = tmp_path / "sfm"
    write_model(rec, out / "sparse" / "0")
    report = {"model_merges": {
        "merged": [{"model": 1, "into": 0, "num_images": 2, "scale": 0.5, "images": ["01.png", "02.png"],
                    "pairs": ["02.png-04.png (52/52)"], "cross_2d3d_inliers": None,
                    "scale_from_depths": {"hub": "04.png", "agreeing": 19, "pairs": 19}}],
        "refused": [{"model": 2, "into": 0, "reason": "1 verified pairs between the models (need 2)"}]}}
    (out / "report.json").write_text(json.dumps(report))
    page = write_report(out, tmp_path / "r", screenshots=False).read_text()
    assert "<h2>Model merges</h2>" in page
    assert "merged: 01.png, 02.png" in page and "the depths seen from 04.png: 19 of 19" in page
    assert "refused: model 2 into 0" in page and "(need 2)" in page
