"""Patch alignment in bounded kernel calls (issue 18, item 7): PATCHES_PER_CALL patches per call
with a Ctrl-C check between calls; each patch is aligned alone, so the result is identical."""

from __future__ import annotations

import numpy as np
import pytest

from geomvision import _interrupt
from geomvision.features import patch_alignment
from geomvision.features.patch_alignment import align_patches, sample_patches


def _case():
    rng = np.random.default_rng(3)
    u, v = np.meshgrid(np.arange(200.0), np.arange(160.0))
    img = (128 + 40 * np.sin(u / 7.0) * np.cos(v / 5.0) + 20 * np.sin((u + 2 * v) / 11.0)).astype(np.float32)
    p = rng.uniform(30, [170, 130], (50, 2))
    refs = sample_patches(img, p, 6)
    start = p + rng.normal(0, 0.7, p.shape)
    return img, refs, start


def test_calls_of_a_few_patches_give_the_result_of_one_call(monkeypatch):
    img, refs, start = _case()
    whole = align_patches(img, refs, start)
    monkeypatch.setattr(patch_alignment, "PATCHES_PER_CALL", 7)
    parts = align_patches(img, refs, start)
    for a, b in zip(whole, parts):
        np.testing.assert_array_equal(a, b)
    assert whole[2].mean() > 0.9
    empty = align_patches(img, refs[:0], start[:0])
    assert [len(a) for a in empty] == [0, 0, 0]


def test_an_interrupt_request_stops_after_the_first_call(monkeypatch):
    img, refs, start = _case()
    calls = []
    real = patch_alignment._k.align_patches

    def counting(*args):
        calls.append(len(args[1]))
        return real(*args)

    monkeypatch.setattr(patch_alignment._k, "align_patches", counting)
    monkeypatch.setattr(patch_alignment, "PATCHES_PER_CALL", 20)
    _interrupt._requested.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            align_patches(img, refs, start)
    finally:
        _interrupt._requested.clear()
    assert calls == [20]
