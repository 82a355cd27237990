"""Atomic writes: a failure at any point leaves the old file intact and no temporary file behind."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from colmap_helpers import multi_model_reconstruction

from geomvision import Rigid3
from geomvision import _atomic
from geomvision.io import read_model, write_g2o, write_model, write_ply
from geomvision._atomic import atomic_write, atomic_write_bytes, atomic_write_text
from geomvision.scene.pose_graph import PoseGraph


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_writes_bytes_and_text(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "b.txt", "é\nz")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_bytes() == "é\nz".encode()
    assert _files(tmp_path) == ["a.bin", "b.txt"]


def test_permissions_new_and_replaced(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write_bytes(tmp_path / "new", b"x")
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o666 & ~umask
    (tmp_path / "old").write_bytes(b"old")
    os.chmod(tmp_path / "old", 0o640)
    atomic_write_bytes(tmp_path / "old", b"new")
    assert stat.S_IMODE((tmp_path / "old").stat().st_mode) == 0o640


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_failure_mid_write_keeps_old_file(tmp_path, exc):
    target = tmp_path / "data.txt"
    target.write_text("old content")
    with pytest.raises(type(exc)):
        with atomic_write(target, "w") as f:
            f.write("half of the new ")
            f.flush()
            assert len(_files(tmp_path)) == 2  # the temporary file exists meanwhile
            raise exc
    assert target.read_text() == "old content"
    assert _files(tmp_path) == ["data.txt"]


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_failure_while_committing_keeps_old_file(tmp_path, monkeypatch, step):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")

    def fail(*args, **kwargs):
        raise OSError(f"simulated {step} failure")

    monkeypatch.setattr(_atomic.os, step, fail)
    with pytest.raises(OSError, match="simulated"):
        atomic_write_bytes(target, b"new" * 1000)
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert _files(tmp_path) == ["data.bin"]


def _pose_graph() -> PoseGraph:
    graph = PoseGraph()
    graph.add_node(0, Rigid3())
    graph.add_node(1, Rigid3.from_rotvec([0.0, 0.0, 0.1], [1.0, 0.0, 0.0]))
    graph.add_edge(0, 1, graph.nodes[0].inverse() @ graph.nodes[1])
    return graph


@pytest.mark.parametrize("writer", ["model_bin", "model_txt", "ply", "g2o"])
def test_library_writers_are_atomic(tmp_path, monkeypatch, rng, writer):
    rec = multi_model_reconstruction(rng)
    write = {
        "model_bin": lambda: write_model(rec, tmp_path, binary=True),
        "model_txt": lambda: write_model(rec, tmp_path, binary=False),
        "ply": lambda: write_ply(rec, tmp_path / "points.ply"),
        "g2o": lambda: write_g2o(_pose_graph(), tmp_path / "graph.g2o"),
    }[writer]
    write()
    before = {name: (tmp_path / name).read_bytes() for name in _files(tmp_path)}
    rec.points3D[next(iter(rec.points3D))].xyz = np.array([1.0, 2.0, 3.0])  # new content to write

    def fail(fd):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(_atomic.os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        write()
    monkeypatch.undo()
    assert _files(tmp_path) == sorted(before)
    assert all((tmp_path / name).read_bytes() == data for name, data in before.items())
    if writer.startswith("model"):
        read_model(tmp_path)  # still a complete, valid model


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="mode must be"):
        with atomic_write(tmp_path / "x", "a"):
            pass
    with pytest.raises(ValueError, match="does not exist"):
        atomic_write_bytes(tmp_path / "missing" / "x", b"")
    with pytest.raises(ValueError, match="is a folder"):
        atomic_write_bytes(tmp_path, b"")
