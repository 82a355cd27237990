"""Temporary files of cache writers killed mid-write are removed when the cache is opened (issue 18,
item 9); writes still in progress, in this process or another, are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from geomvision._atomic import remove_stale_temp_files
from geomvision.features.cache import ArrayCache

KEY = "ab" + "0" * 62

# a writer that stops inside atomic_write (its temporary file exists) until it is killed
_STUCK_WRITER = """
import sys, time
from pathlib import Path
from geomvision._atomic import atomic_write
target = Path(sys.argv[1])
target.parent.mkdir(parents=True, exist_ok=True)
with atomic_write(target, "wb") as f:
    f.write(b"partial npz")
    f.flush()
    print("writing", flush=True)
    time.sleep(600)
"""


def _stuck_writer(target: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _STUCK_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    return proc


def _temp_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.tmp"))


def test_temp_files_of_a_killed_writer_are_removed_at_open_and_live_ones_kept(tmp_path):
    root = tmp_path / "cache"
    entry = ArrayCache(root, "features").path(KEY)
    killed = _stuck_writer(entry)
    live = _stuck_writer(entry.with_name("cd" + "1" * 62 + ".npz"))
    try:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        stale = [p for p in _temp_files(root) if f".{killed.pid}." in p.name]
        in_progress = [p for p in _temp_files(root) if f".{live.pid}." in p.name]
        assert len(stale) == 1 and len(in_progress) == 1  # before: stale files stayed forever

        cache = ArrayCache(root, "features")  # a rerun opens the cache
        assert cache.num_stale_removed == 1
        assert _temp_files(root) == in_progress  # the live writer's file is untouched
        assert cache.save(KEY, {"x": np.arange(3)}) and cache.load(KEY, lambda a: a["x"].tolist()) == [0, 1, 2]
    finally:
        live.kill()
        live.wait(timeout=30)
    assert ArrayCache(root, "features").num_stale_removed == 1
    assert _temp_files(root) == []


def test_temp_files_without_a_writer_pid_are_removed_only_when_older_than_this_process(tmp_path):
    folder = tmp_path / "features" / "ab"
    folder.mkdir(parents=True)
    old = folder / f".{KEY}.npz.k3j2h1g0.tmp"  # the name an older geomvision gave it
    new = folder / f".{KEY}.npz.zz9yx8w7.tmp"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    long_ago = time.time() - 3600
    os.utime(old, (long_ago, long_ago))
    own = folder / f".{KEY}.npz.{os.getpid()}.abcdefgh.tmp"  # a write of this very process
    own.write_bytes(b"z")
    assert remove_stale_temp_files(tmp_path) == 1
    assert not old.exists() and new.exists() and own.exists()
