"""API consistency (issue 17): every writer takes (object, path) and says so when called the old
way round; subpackages and their names are attributes of the package, imported on first use, so
that ``import geomvision`` stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from geomvision._validation import ArgumentOrderError


def _writers():
    from geomvision.cli.stitch import write_image_atomic
    from geomvision.io import (
        undistort_model,
        write_bal,
        write_bundler,
        write_g2o,
        write_instant_ngp,
        write_model,
        write_nerfstudio,
        write_nvm,
        write_online_map,
        write_ply,
        write_tum,
    )
    from geomvision.synthetic import write_strecha_layout

    return {
        "write_model": (write_model, "(rec, path)"),
        "write_ply": (write_ply, "(rec_or_xyz, path)"),
        "write_bal": (write_bal, "(problem, path)"),
        "write_g2o": (write_g2o, "(graph, path)"),
        "write_tum": (write_tum, "(trajectory, path)"),
        "write_online_map": (write_online_map, "(mapper, path)"),
        "write_nvm": (write_nvm, "(rec, path)"),
        "write_bundler": (write_bundler, "(rec, path)"),
        "write_nerfstudio": (write_nerfstudio, "(rec, path)"),
        "write_instant_ngp": (write_instant_ngp, "(rec, path)"),
        "undistort_model": (undistort_model, "(rec, image_dir, out_dir)"),
        "write_strecha_layout": (write_strecha_layout, "(views, out_dir)"),
        "write_image_atomic": (write_image_atomic, "(image_rgb, path)"),
    }


WRITERS = ["write_model", "write_ply", "write_bal", "write_g2o", "write_tum", "write_online_map", "write_nvm",
           "write_bundler", "write_nerfstudio", "write_instant_ngp", "undistort_model", "write_strecha_layout",
           "write_image_atomic"]


@pytest.mark.parametrize("name", WRITERS)
def test_a_path_first_names_the_writers_order(name, tmp_path):
    writer, order = _writers()[name]
    args = [tmp_path / "out", np.zeros(3)] + ([tmp_path / "x"] if name == "undistort_model" else [])
    kwargs = {"source": "test"} if name == "write_strecha_layout" else {}
    with pytest.raises(TypeError, match=rf"{name} takes {order.replace('(', '[(]').replace(')', '[)]')}.*swapped"):
        writer(*args, **kwargs)
    # also a ValueError: the CLI and callers catching bad input see it as such
    with pytest.raises(ValueError):
        writer(str(tmp_path / "out"), None, *args[2:], **kwargs)
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_write_bal_old_order_is_a_type_error(tmp_path):
    from geomvision.io import write_bal

    with pytest.raises(ArgumentOrderError, match=r"call write_bal\(problem, path\)"):
        write_bal(str(tmp_path / "p.bal.txt"), object())


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_subpackages_and_their_names_are_lazy_attributes():
    code = """
import json, sys
import geomvision as gv
before = sorted(m for m in sys.modules if m.startswith('geomvision.') and m.split('.')[1] in
                ('io', 'sfm', 'viz', 'features', 'optim', 'robust', 'synthetic', 'cli'))
names = [gv.io.read_model.__module__, gv.io.write_nvm.__module__, gv.io.undistort_model.__module__,
         gv.io.write_nerfstudio.__module__, gv.sfm.__name__, gv.viz.load_model.__module__]
print(json.dumps({"before": before, "names": names, "dir": [n for n in ('io', 'sfm', 'viz') if n in dir(gv)]}))
"""
    out = json.loads(_run(code))
    assert out["before"] == []  # import geomvision imports none of the heavier subpackages
    assert out["names"] == ["geomvision.io.colmap", "geomvision.io.nvm", "geomvision.io.undistort",
                            "geomvision.io.transforms_json", "geomvision.sfm", "geomvision.viz.loading"]
    assert out["dir"] == ["io", "sfm", "viz"]


def test_unknown_attributes_raise_attribute_error():
    import geomvision as gv

    with pytest.raises(AttributeError, match="module 'geomvision' has no attribute 'nope'"):
        gv.nope  # noqa: B018
    with pytest.raises(AttributeError, match="module 'geomvision.io' has no attribute 'write_nope'"):
        gv.io.write_nope  # noqa: B018
