"""Process-wide thread-pool limits for OpenCV and BLAS while our own worker threads run.

Both settings are global to the process, so they are reference-counted: nested or concurrent
users share one "limited" period and the original value is restored when the last one leaves.
Measured on 2 shared cores: one OpenCV / BLAS thread per worker of our own pool beats nesting the
libraries' pools (their spinning threads lose badly when the machine is busy).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import cv2

_lock = threading.Lock()
_cv2_depth = 0
_cv2_saved = 0
_blas_depth = 0
_blas_limiter = None


@contextlib.contextmanager
def cv2_single_threaded() -> Iterator[None]:
    """OpenCV's own pool set to one thread inside the block."""
    global _cv2_depth, _cv2_saved
    with _lock:
        if _cv2_depth == 0:
            _cv2_saved = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _cv2_depth += 1
    try:
        yield
    finally:
        with _lock:
            _cv2_depth -= 1
            if _cv2_depth == 0:
                cv2.setNumThreads(_cv2_saved)


@contextlib.contextmanager
def blas_single_threaded() -> Iterator[bool]:
    """BLAS limited to one thread per call inside the block; yields False when that is impossible
    (threadpoolctl not installed), in which case callers should not run BLAS calls concurrently."""
    global _blas_depth, _blas_limiter
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with _lock:
        if _blas_depth == 0:
            _blas_limiter = threadpool_limits(limits=1, user_api="blas")
        _blas_depth += 1
    try:
        yield True
    finally:
        with _lock:
            _blas_depth -= 1
            if _blas_depth == 0 and _blas_limiter is not None:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
