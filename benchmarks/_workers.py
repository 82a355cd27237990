"""Helpers shared by the benchmarks that time each method in a fresh worker process."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident set in MB (VmHWM: ``ru_maxrss`` carries the parent's peak
    across exec, so every worker would report the parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def spawn(script: str, args: list[str], label: str) -> dict:
    """Run ``script`` with ``args`` in a fresh interpreter (single-threaded BLAS) and return the
    JSON object it prints on its ``RESULT `` line; RuntimeError with its stderr when it fails."""
    cmd = [sys.executable, script, *args]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{label} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[7:])
