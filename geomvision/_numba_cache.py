"""Keep numba's on-disk cache consistent with the sources.

numba validates a cached function against the file that defines it only. A kernel that calls
(and inlines) a kernel of another module keeps its stale machine code when only that other
module changes. :func:`drop_stale_cache` removes every cached kernel of the package when any
source file that defines numba kernels has changed since the cache was written. The test suite
calls it at start-up; an installed package never changes, so users never pay for it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
STAMP = PACKAGE / "__pycache__" / "numba-sources.sha256"


def _sources_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        data = path.read_bytes()
        if b"njit" in data:
            h.update(str(path.relative_to(PACKAGE)).encode())
            h.update(data)
    return h.hexdigest()


def drop_stale_cache() -> int:
    """Delete the package's numba cache files if kernel sources changed; returns files deleted."""
    digest = _sources_digest()
    try:
        if STAMP.read_text() == digest:
            return 0
    except OSError:
        pass
    removed = 0
    for pattern in ("*.nbi", "*.nbc"):
        for f in PACKAGE.rglob(pattern):
            f.unlink(missing_ok=True)
            removed += 1
    STAMP.parent.mkdir(exist_ok=True)
    STAMP.write_text(digest)
    return removed
