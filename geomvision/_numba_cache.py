"""Keep numba's on-disk cache consistent with the sources, and find it.

numba validates a cached function against the file that defines it only. A kernel that calls
(and inlines) a kernel of another module keeps its stale machine code when only that other
module changes. :func:`drop_stale_cache` removes every cached kernel of the package when any
source file that defines numba kernels has changed since the cache was written. The test suite
calls it at start-up; an installed package never changes, so users never pay for it.

The cache is wherever numba puts it: ``__pycache__`` next to each source file, or a mirror of the
source tree under ``NUMBA_CACHE_DIR`` (or under the user-wide cache when the package folder is
not writable); :func:`cache_dir_for` asks numba's own locators.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def cache_dir_for(source: Path) -> Path:
    """The folder where numba caches the kernels defined in ``source``."""
    try:  # numba's own choice of locator (an internal API: fall back to the in-tree layout)
        from numba.core import caching

        impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # named _CacheImpl before numba 0.60
        for cls in impl._locator_classes:
            loc = cls.from_function(cache_dir_for, str(source))  # any function: only its line number is read
            if loc is not None:
                return Path(loc.get_cache_path())
    except Exception:  # pragma: no cover - numba internals changed
        pass
    return source.parent / "__pycache__"


def cache_root() -> Path:
    """The cache folder of the package's top-level folder (where the stamps live)."""
    return cache_dir_for(PACKAGE / "_numba_cache.py")


def kernel_sources(root: Path | None = None) -> list[Path]:
    """The source files under ``root`` (default: the package) that define numba kernels."""
    return [p for p in sorted(Path(PACKAGE if root is None else root).rglob("*.py")) if b"njit" in p.read_bytes()]


def _sources_digest() -> str:
    h = hashlib.sha256()
    for path in kernel_sources():
        h.update(str(path.relative_to(PACKAGE)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def drop_stale_cache(also: tuple[Path, ...] = ()) -> int:
    """Delete the package's numba cache files (and the warm-up stamp) if kernel sources changed;
    returns the number of files deleted. ``also``: folders of other code whose cached kernels
    call the package's (a test suite's): their caches go too, as they hold the same stale code
    (and numba may link that stale copy in place of the fresh one in the same process)."""
    stamp = cache_root() / "numba-sources.sha256"
    digest = _sources_digest()
    try:
        if stamp.read_text() == digest:
            return 0
    except OSError:
        pass
    removed = 0
    sources = kernel_sources() + [src for root in also for src in kernel_sources(root)]
    for folder in {cache_dir_for(src) for src in sources}:
        for pattern in ("*.nbi", "*.nbc"):
            for f in folder.glob(pattern):
                f.unlink(missing_ok=True)
                removed += 1
    (cache_root() / "numba-warm.json").unlink(missing_ok=True)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    return removed
