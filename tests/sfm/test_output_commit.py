"""The output commit of ``geomvision sfm`` is one atomic step (issue 18, item 9): a process killed at
any point of writing or committing a run leaves the output folder showing the complete previous
run or the complete new one, never a mixture and never nothing; the next run cleans up."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from geomvision import Camera
from geomvision.cli import sfm_outputs
from geomvision.cli.sfm_outputs import committed_run, write_outputs
from geomvision.io import read_model, read_ply
from geomvision.sfm.pipeline import SfmResult
from geomvision.synthetic import orbit_scene
from geomvision.viz.loading import load_model

CAMERA = Camera("PINHOLE", 640, 480, [500.0, 500.0, 319.5, 239.5])
PLOTS = ["reprojection_errors.png", "top_side_views.png", "track_lengths.png"]
# what a reader of the documented paths sees: report's run, models, points per model, PLY points, plots
OLD = ("old", ["0"], [30], 30, PLOTS)
NEW = ("new", ["0", "1"], [50, 40], 50, [])
LAYOUT = {"current", "runs", "sparse", "points.ply", "report.json", "plots"}


def _result(run: str, n_points: list[int]) -> SfmResult:
    recs = [orbit_scene(n_images=3, n_points=n, camera=CAMERA, rng=k).to_reconstruction()
            for k, n in enumerate(n_points)]
    return SfmResult(recs, {"run": run})


def _seen(out: Path) -> tuple:
    """What the documented paths show; a missing report.json shows as None."""
    if not (out / "report.json").is_file():
        return None
    run = json.loads((out / "report.json").read_text())["run"]
    sparse = out / "sparse"
    models = sorted(p.name for p in sparse.iterdir()) if sparse.is_dir() else []
    points = [len(read_model(sparse / m).points3D) for m in models]
    ply = len(read_ply(out / "points.ply")[0]) if (out / "points.ply").is_file() else None
    plots = sorted(os.listdir(out / "plots")) if (out / "plots").is_dir() else []
    return run, models, points, ply, plots


@pytest.fixture(scope="module")
def old_folders(tmp_path_factory) -> dict[str, Path]:
    """An output folder holding the old run: written by this version, or by an older geomvision
    (results as plain files and folders, as the rename-based commit left them)."""
    root = tmp_path_factory.mktemp("old")
    old = _result("old", [30])
    write_outputs(old, root / "links")
    (root / "plain").mkdir()
    sfm_outputs._write_run(old, root / "plain", text=False, plots=True)
    assert _seen(root / "links") == _seen(root / "plain") == OLD
    return {"links": root / "links", "plain": root / "plain"}


def _killed_commit(out: Path, new: SfmResult, kill_at: int) -> bool:
    """Commit ``new`` into ``out`` in a forked process that dies (os._exit, no clean-up) instead
    of making its ``kill_at``-th file-system change; True when the commit finished first."""
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            count = [0]

            def dying(fn):
                def step(*a, **kw):
                    count[0] += 1
                    if count[0] == kill_at:
                        os._exit(9)
                    return fn(*a, **kw)
                return step

            for name in ("replace", "rename", "symlink", "link", "unlink", "mkdir", "rmdir", "open"):
                setattr(os, name, dying(getattr(os, name)))
            shutil.rmtree = dying(shutil.rmtree)
            write_outputs(new, out, plots=False)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 9), f"the committing process failed (exit {code})"
    return code == 0


@pytest.mark.parametrize("layout", ["links", "plain"])
def test_a_kill_at_any_step_shows_the_old_or_the_new_run_never_a_mixture(old_folders, layout, tmp_path):
    new = _result("new", [50, 40])
    seen = []
    for kill_at in range(1, 500):
        out = tmp_path / f"out{kill_at}"
        shutil.copytree(old_folders[layout], out, symlinks=True)
        finished = _killed_commit(out, new, kill_at)
        state = _seen(out)
        assert state in (OLD, NEW), f"killed at step {kill_at}: the folder shows {state}"
        seen.append(state)
        # the next run commits normally and leaves exactly one run behind, whatever the kill left
        write_outputs(new, out, plots=False)
        assert _seen(out) == NEW
        assert {p.name for p in out.iterdir()} == LAYOUT and len(list((out / "runs").iterdir())) == 1
        shutil.rmtree(out)
        if finished:
            break
    else:
        pytest.fail("the commit never finished")
    assert seen[0] == OLD and seen[-1] == NEW and seen.index(NEW) > 5  # the steps were really exercised
    assert all(s == NEW for s in seen[seen.index(NEW):])  # once switched, never back


def test_a_commit_that_fails_before_the_switch_keeps_the_old_run(old_folders, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(old_folders["links"], out, symlinks=True)
    before = committed_run(out)

    def interrupted(out_dir, run):  # the new run folder is complete: the switch is next
        assert _seen(run) == NEW
        raise KeyboardInterrupt

    monkeypatch.setattr(sfm_outputs, "_switch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(_result("new", [50, 40]), out, plots=False)
    assert _seen(out) == OLD and committed_run(out) == before
    assert [p.name for p in (out / "runs").iterdir()] == [before.name]  # the unfinished run is gone


def test_runs_do_not_pile_up_and_readers_see_one_run(tmp_path):
    out = tmp_path / "out"
    for run, points in (("a", [20]), ("b", [25, 30]), ("new", [50, 40])):
        write_outputs(_result(run, points), out, plots=False, text=True)
        assert len(list((out / "runs").iterdir())) == 1
    assert _seen(out) == NEW
    assert read_model(out / "sparse" / "0" / "text").num_registered_images == 3
    assert (out / "sparse").is_symlink() and os.readlink(out / "current").startswith("runs/")
    model = load_model(out)  # view / report resolve the committed run once
    assert model.kind == "sfm" and model.report["run"] == "new" and len(model.xyz) == 50
    assert model.model_dir.parent.parent == committed_run(out)


def test_a_run_without_a_model_replaces_the_old_model_as_a_whole(old_folders, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(old_folders["plain"], out, symlinks=True)
    write_outputs(SfmResult([], {"run": "failed"}), out, plots=False)
    assert _seen(out) == ("failed", [], [], None, [])
    assert not (out / "sparse").exists() and not (out / "points.ply").exists()
