"""Every CLI flag explains itself: help from the options' docstrings, naming the stage."""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass

import pytest

from geomvision.cli._dataclass_args import field_docs
from geomvision.cli.main import COMMANDS, build_parser
from geomvision.cli.sfm import matcher_reason


def _options(command: str) -> dict[str, str]:
    """Flag (or positional name) -> help of every argument of ``command``."""
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {(a.option_strings or [a.dest])[-1]: a.help or "" for a in sub._actions}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_has_a_description(command):
    bare = {flag: text for flag, text in _options(command).items()
            if not text.strip() or re.fullmatch(r"\(default: [^)]*\)", text.strip())}
    assert bare == {}


def test_ambiguous_flags_name_their_stage():
    sfm = _options("sfm")
    assert sfm["--max-iterations"].startswith("verification: RANSAC draws at most")
    assert sfm["--max-iterations"].endswith("(default: 10000)")
    assert sfm["--ba-max-iterations"].startswith("mapper: Levenberg-Marquardt iterations")
    assert sfm["--max-error-px"].startswith("verification: RANSAC inlier threshold in pixels")
    assert sfm["--patch-radius"].startswith("keypoint_refinement: ")
    assert sfm["--matcher"].startswith("which image pairs are matched. exhaustive: all pairs.")
    assert _options("ba")["--max-iterations"].startswith("bundle adjustment: ")
    assert _options("register")["--tri-min-angle-deg"].startswith("a new point needs two rays meeting")


def test_every_option_field_is_documented():
    from geomvision.features.options import FeatureOptions, MatchOptions
    from geomvision.features.patch_alignment import PatchAlignmentOptions
    from geomvision.sfm.options import (CameraOptions, LoopClosureOptions, MapperOptions, OnlineOptions, SfmOptions,
                                        VerificationOptions)

    for cls in (SfmOptions, CameraOptions, VerificationOptions, MapperOptions, OnlineOptions, LoopClosureOptions,
                FeatureOptions, MatchOptions, PatchAlignmentOptions):
        docs, defaults = field_docs(cls), cls()
        leaves = [f.name for f in dataclasses.fields(cls) if not dataclasses.is_dataclass(getattr(defaults, f.name))]
        assert [n for n in leaves if n not in docs] == [], cls.__name__
        assert set(docs) <= {f.name for f in dataclasses.fields(cls)}, cls.__name__  # no stale entries


def test_field_docs_reads_groups_and_continuations():
    @dataclass
    class Opts:
        """Summary: a line with a colon is not an entry.

        alpha : first line
            continued ``here`` (see :func:`beta_fn`).
        beta, gamma : shared text.
        Prose at the margin ends an entry.
            and this indented line belongs to none
        delta : 50% of it.
        """

        alpha: int = 1
        beta: float = 0.5
        gamma: float = 0.25
        delta: int = 2

    assert field_docs(Opts) == {"alpha": "first line continued here (see beta_fn).", "beta": "shared text.",
                                "gamma": "shared text.", "delta": "50% of it."}
    parser = argparse.ArgumentParser()
    from geomvision.cli._dataclass_args import add_dataclass_arguments

    add_dataclass_arguments(parser, Opts)
    assert "50% of it. (default: 2)" in parser.format_help()  # '%' reaches argparse escaped


def _report(matcher_option: str, chosen: str, n: int = 6) -> dict:
    return {"options": {"matcher": matcher_option, "exhaustive_max_images": 100}, "matcher": chosen,
            "num_readable_images": n}


def test_matcher_reason():
    assert matcher_reason(_report("auto", "exhaustive")) == "auto: 6 images <= --exhaustive-max-images 100"
    assert matcher_reason(_report("auto", "retrieval", 250)) == (
        "auto: 250 images > --exhaustive-max-images 100, the names are not a numbered sequence")
    assert matcher_reason(_report("auto", "sequential+retrieval", 250)).startswith(
        "auto: 250 images > --exhaustive-max-images 100, the names number the frames of a sequence")
    assert matcher_reason(_report("sequential", "sequential")) == "given by --matcher"
