"""Progress reporter: plain sparse lines off a terminal, one redrawn line on a terminal, no-op when off."""

from __future__ import annotations

import io
import threading

import pytest

from geomvision._progress import Progress, format_duration, progress


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_are_sparse_and_final_line_complete():
    out = io.StringIO()
    with Progress(100, "work", unit="img", stream=out, log_interval_s=3600) as bar:
        for _ in range(100):
            bar.update()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # the first update, then the final state
    assert lines[0].startswith("work: 1/100 (1%)") and "ETA" in lines[0]
    assert lines[1].startswith("work: 100/100 (100%)") and "img/s" in lines[1] and "ETA" not in lines[1]
    assert "\r" not in out.getvalue()


def test_terminal_redraws_one_line():
    out = FakeTty()
    with Progress(5, "t", stream=out, refresh_s=0.0) as bar:
        for _ in range(5):
            bar.update()
    text = out.getvalue()
    assert text.count("\r") == 6 and text.endswith("\n") and text.count("\n") == 1
    assert text.rstrip().split("\r")[-1].startswith("t: 5/5 (100%)")


def test_disabled_and_unknown_total():
    out = io.StringIO()
    with Progress(3, stream=out, enabled=False) as bar:
        bar.update(3)
    assert out.getvalue() == ""
    assert list(progress(iter(range(4)), stream=out, desc="gen")) == [0, 1, 2, 3]
    assert out.getvalue().splitlines()[-1].startswith("gen: 4 it")


def test_thread_safe_counting():
    out = io.StringIO()
    with Progress(4000, stream=out) as bar:
        threads = [threading.Thread(target=lambda: [bar.update() for _ in range(1000)]) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert bar.count == 4000


def test_format_duration_and_validation():
    assert format_duration(75.2) == "1:15"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(float("inf")) == "?" and format_duration(float("nan")) == "?"
    with pytest.raises(ValueError, match="total"):
        Progress(-1)
