"""The first run after an install (issue 18, item 10): the numba kernels are compiled up front, on
every core, under a 'compiling kernels (first run only)' progress line, and a stamp keeps later
runs from doing it again until the kernel sources, numba, Python, the CPU or the cache change."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geomvision import _numba_cache, _warmup

CHEAP_TASKS = [("task a", "os:getpid", 1.0), ("task b", "os:getcwd", 2.0)]
CHEAP_PIPELINE = ("pipeline", "os:getpid", 1.0)


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A package of two kernel sources whose cache and stamps live in tmp_path."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("from numba import njit\n@njit(cache=True)\ndef f(x):\n    return x\n")
    (pkg / "sub" / "b.py").write_text("from numba import njit\n")
    (pkg / "plain.py").write_text("x = 1\n")
    cache = tmp_path / "cache"
    monkeypatch.setattr(_warmup, "PACKAGE", pkg)
    monkeypatch.setattr(_numba_cache, "PACKAGE", pkg)
    monkeypatch.setattr(_warmup, "kernel_sources", lambda: [pkg / "a.py", pkg / "sub" / "b.py"])
    monkeypatch.setattr(_warmup, "cache_dir_for", lambda src: cache / src.parent.name)
    monkeypatch.setattr(_warmup, "cache_root", lambda: cache / "pkg")
    monkeypatch.setattr(_numba_cache, "cache_dir_for", lambda src: cache / src.parent.name)
    monkeypatch.setattr(_numba_cache, "cache_root", lambda: cache / "pkg")
    (cache / "pkg").mkdir(parents=True)
    (cache / "pkg" / "a.f-2.py311.nbi").write_bytes(b"index")
    monkeypatch.delenv("GEOMVISION_WARMUP", raising=False)
    return pkg, cache


def test_stamp_follows_sources_and_cache(fake_package, monkeypatch):
    pkg, cache = fake_package
    assert not _warmup.is_warm()
    _warmup._write_stamp({})
    assert _warmup.is_warm()
    stamp = json.loads((cache / "pkg" / _warmup.STAMP_NAME).read_text())
    assert sorted(stamp["fingerprint"]["sources"]) == ["a.py", "sub/b.py"]
    assert stamp["index_files"] == [str(cache / "pkg" / "a.f-2.py311.nbi")]
    # numba recompiles a kernel whose source file's mtime or size changed: so does the stamp
    st = (pkg / "a.py").stat()
    os.utime(pkg / "a.py", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert not _warmup.is_warm()
    _warmup._write_stamp({})
    assert _warmup.is_warm()
    (cache / "pkg" / "a.f-2.py311.nbi").unlink()  # a deleted cache
    assert not _warmup.is_warm()
    _warmup._write_stamp({})
    (pkg / "c.py").write_text("from numba import njit\n")  # a new kernel file is a change too
    monkeypatch.setattr(_warmup, "kernel_sources", lambda: [pkg / "a.py", pkg / "c.py", pkg / "sub" / "b.py"])
    assert not _warmup.is_warm()


def test_changed_package_drops_the_caches_of_code_that_calls_it(fake_package, tmp_path):
    # a test module's cached kernel holds its own copy of the package kernels it calls: when the
    # package changes that copy is stale too (numba may even link it in place of the fresh one)
    pkg, cache = fake_package
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_k.py").write_text("from numba import njit\n")
    (cache / "suite").mkdir()
    stale = cache / "suite" / "test_k.g-3.py311.nbi"
    stale.write_bytes(b"index")
    _numba_cache.drop_stale_cache(also=(suite,))  # first call: no stamp yet, so everything goes
    assert not stale.exists() and not (cache / "pkg" / "a.f-2.py311.nbi").exists()
    stale.write_bytes(b"index")
    assert _numba_cache.drop_stale_cache(also=(suite,)) == 0 and stale.exists()  # nothing changed
    (pkg / "a.py").write_text("from numba import njit\n@njit(cache=True)\ndef f(x):\n    return x + 1\n")
    assert _numba_cache.drop_stale_cache(also=(suite,)) == 1 and not stale.exists()


def test_first_run_compiles_with_progress_and_later_runs_do_nothing(fake_package, monkeypatch):
    runs = []
    real = _warmup.warm_up

    def cheap(**kw):
        runs.append(kw)
        return real(**kw, tasks=CHEAP_TASKS, pipeline=CHEAP_PIPELINE)

    monkeypatch.setattr(_warmup, "warm_up", cheap)
    err = io.StringIO()
    assert _warmup.ensure_compiled(progress=True, stream=err) > 0
    text = err.getvalue()
    assert "compiling kernels (first run only): " in text and "100%" in text and "(3 of 3 steps done)" in text
    assert _warmup.is_warm() and len(runs) == 1
    err = io.StringIO()
    t0 = time.perf_counter()
    assert _warmup.ensure_compiled(progress=True, stream=err) == 0.0
    assert time.perf_counter() - t0 < 0.5 and err.getvalue() == "" and len(runs) == 1


def test_quiet_first_run_still_says_what_it_does(fake_package, monkeypatch):
    real = _warmup.warm_up
    monkeypatch.setattr(_warmup, "warm_up", lambda **kw: real(**kw, tasks=CHEAP_TASKS, pipeline=CHEAP_PIPELINE))
    err = io.StringIO()
    _warmup.ensure_compiled(progress=False, stream=err)
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("compiling kernels (first run only") and lines[-1].startswith("compiled kernels in")
    assert len(lines) == 2


def test_failed_task_is_reported_and_does_not_block_the_run(fake_package, monkeypatch):
    real = _warmup.warm_up
    broken = [*CHEAP_TASKS, ("broken", "geomvision._warmup:no_such_task", 1.0)]
    monkeypatch.setattr(_warmup, "warm_up", lambda **kw: real(**kw, tasks=broken, pipeline=CHEAP_PIPELINE))
    err = io.StringIO()
    _warmup.ensure_compiled(progress=False, stream=err)
    assert "warning: some kernels will compile on first use instead: broken: AttributeError" in err.getvalue()
    assert _warmup.is_warm()  # not retried on every run


def test_warmup_can_be_turned_off(fake_package, monkeypatch):
    monkeypatch.setenv("GEOMVISION_WARMUP", "0")
    monkeypatch.setattr(_warmup, "warm_up", lambda **kw: pytest.fail("must not run"))
    assert _warmup.ensure_compiled(stream=io.StringIO()) == 0.0


def test_cache_location_follows_numba_cache_dir(tmp_path):
    """numba puts the cache under NUMBA_CACHE_DIR when it is set: the stamp and the stale-cache
    cleaner must look there, not in __pycache__."""
    code = ("from geomvision import _numba_cache as c; "
            "print(c.cache_root()); print(c.cache_dir_for(c.PACKAGE / 'robust' / '_core.py'))")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "nb"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    root, robust = (Path(line) for line in out.stdout.split())
    assert root.is_relative_to(tmp_path / "nb") and robust.is_relative_to(tmp_path / "nb") and root != robust
    env.pop("NUMBA_CACHE_DIR")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    root, robust = (Path(line) for line in out.stdout.split())
    assert root == _numba_cache.PACKAGE / "__pycache__" and robust == _numba_cache.PACKAGE / "robust" / "__pycache__"


# Runs in a subprocess: records every (kernel, argument types) that geomvision asks numba for (found in
# the cache or compiled) and the kernels compiled, then writes them as JSON to argv[1]. With argv[2]
# "warmup" it runs the warm-up's tasks and tiny pipeline in this one process (as their workers would),
# otherwise geomvision's CLI with argv[2:].
RECORD = """
import json, sys
from numba.core import dispatcher
asked, compiled = set(), []
def name_of(d):
    return getattr(d.py_func, "__module__", "?") + "." + getattr(d.py_func, "__qualname__", "?")
real_compile = dispatcher.Dispatcher.compile
def compile(self, sig):
    asked.add(name_of(self) + str(tuple(dispatcher.sigutils.normalize_signature(sig)[0])))
    return real_compile(self, sig)
dispatcher.Dispatcher.compile = compile
import numba.core.event as ev
class Compiled(ev.Listener):
    def on_start(self, event): pass
    def on_end(self, event):
        compiled.append(name_of(event.data["dispatcher"]))
ev.register("numba:compile", Compiled())
if sys.argv[2] == "warmup":
    from geomvision import _warmup
    errors = []
    for _, target, _ in [*_warmup.TASKS, _warmup.PIPELINE]:
        err = _warmup._run_task(target)[2]
        if err:
            errors.append(err)
    print(errors, file=sys.stderr)
    code = 1 if errors else 0
else:
    from geomvision.cli.main import main
    code = main(sys.argv[2:])
with open(sys.argv[1], "w") as fh:
    own = lambda names: sorted(n for n in names if n.startswith("geomvision."))
    json.dump({"asked": own(asked), "compiled": own(compiled)}, fh)
sys.exit(code)
"""


@pytest.fixture(scope="module")
def small_scene(tmp_path_factory):
    from geomvision.synthetic.rendered_datasets import render_orbit_dataset

    root = tmp_path_factory.mktemp("small_scene")
    render_orbit_dataset(root, n_images=6, width=480, height=360, arc_deg=60.0, rng=0)
    return root


def _record(tmp_path, name: str, *args: str) -> dict:
    env = dict(os.environ, GEOMVISION_WARMUP="0", OPENBLAS_NUM_THREADS="1")
    out = tmp_path / f"{name}.json"
    run = subprocess.run([sys.executable, "-c", RECORD, str(out), *args], env=env, capture_output=True, text=True,
                         timeout=1800)
    assert run.returncode == 0, run.stderr
    return json.loads(out.read_text())


@pytest.mark.slow
def test_after_warmup_a_run_compiles_nothing(small_scene, tmp_path):
    """Every kernel signature an uncalibrated and a calibrated sfm run ask numba for is one the
    warm-up asks for too, and the runs compile none of geomvision's kernels (all are cached: none is
    uncacheable). Compared as the signatures each side asks for, found in the cache or compiled, so
    the check holds whatever else the suite has compiled into the shared cache (a cold compile in a
    fresh cache took 470 s of the suite's 2,180 on the 2-core machine)."""
    warm = _record(tmp_path, "warmup", "warmup")
    assert len(warm["asked"]) > 30, warm["asked"]  # the tasks reached the kernels
    for extra in ([], ["--K", str(small_scene / "K.txt")]):
        out = tmp_path / f"out{len(extra)}"
        run = _record(tmp_path, f"sfm{len(extra)}", "sfm", str(small_scene / "images"), "-o", str(out), "--no-plots",
                      *extra)
        missed = sorted(set(run["asked"]) - set(warm["asked"]))
        assert not missed, missed  # these would compile on a user's first run
        assert run["compiled"] == [], run["compiled"]
