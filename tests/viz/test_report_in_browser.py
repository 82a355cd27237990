"""The HTML report as a browser shows it: headless Chromium renders the page, its DOM holds the
report's sections in order, and the screenshot is a real page (checked for content, not pixels)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from geomvision.viz.report import write_report


@pytest.fixture(scope="module")
def chromium():
    """The chromium binary (scripts/setup.sh installs it with the 'dev' extra): a failure in CI."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (scripts/setup.sh installs it with the 'dev' extra)")
        pytest.skip("chromium not installed")
    return exe


def _browser(exe: str, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-dev-shm-usage"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=120, check=True)


def test_report_page_renders_with_its_sections(chromium, fountain_sfm_dir, tmp_path):
    page = write_report(fountain_sfm_dir, tmp_path / "rep", screenshots=False)
    url = page.resolve().as_uri()
    dom = _browser(chromium, "--dump-dom", url).stdout
    headings = re.findall(r"<h2>([^<]+)</h2>", dom)
    assert headings[:3] == ["Summary", "report.json", "Plots"] and "Two views" in headings
    assert re.search(r"<h1>[^<]+</h1>", dom)
    # every figure decoded by the browser: an <img> with its natural size from the inline PNG
    assert dom.count("<img") >= 5
    shot = tmp_path / "report.png"
    _browser(chromium, f"--screenshot={shot}", "--window-size=1200,1600", url)
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (1600, 1200)
    rows = img.std(axis=1)
    assert (rows > 5).mean() > 0.3  # text, tables and plots over much of the page, not a blank one
