"""Ctrl-C that stops long work promptly and cleanly.

Python runs a signal handler only when the main thread returns to the interpreter, so Ctrl-C is
seen only between numba kernel calls (never inside one), and a ``KeyboardInterrupt`` raised in
the wrong place does damage: raised while a ``parallel=True`` kernel returns it surfaces as
``SystemError: CPUDispatcher(...) returned a result with an exception set``; raised inside numba's
compiler as an unrelated ``RuntimeError``; raised while the interpreter waits at exit for the
threads of a pool that are still inside OpenCV it aborts the process ("FATAL: exception not
rethrown" / "terminate called without an active exception"). So:

- Long kernels are driven in bounded chunks from Python (RANSAC draws, bundle-adjustment
  observation ranges, 256-row matching blocks), and the drivers call :func:`check` between
  chunks: Ctrl-C is seen within one chunk, at a point where stopping is safe.
- :func:`deferred` (used by the ``sfm`` / ``demo`` commands) turns the first Ctrl-C into a request
  that :func:`check` honours at the next safe point; a second Ctrl-C, or no safe point within
  ``grace_s``, raises ``KeyboardInterrupt`` at once (the default behaviour). Any exception that
  comes out of the block after a request is reported as the ``KeyboardInterrupt`` it is.
- :func:`map_threads` runs a thread pool during which Ctrl-C is only recorded: it cancels what
  has not started, tells running items to stop (:func:`stopping`) and joins the threads before
  raising, so no thread is left running when the exception reaches the interpreter.

Without :func:`deferred` (library use) Ctrl-C raises ``KeyboardInterrupt`` at the next chunk
boundary as usual; :func:`is_interrupt` recognises the ``SystemError`` a ``parallel=True`` kernel
turns it into.
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

__all__ = ["check", "deferred", "interrupt_as_keyboard_interrupt", "is_interrupt", "map_threads", "requested", "stopping"]

_requested = threading.Event()
_state = {"depth": 0, "consumed": False, "first_s": 0.0}


def requested() -> bool:
    """True once Ctrl-C was pressed inside :func:`deferred` (until the block ends)."""
    return _requested.is_set()


def check() -> None:
    """Raise ``KeyboardInterrupt`` when an interrupt was requested; call it between bounded chunks
    of work, where stopping leaves nothing half-done."""
    if _requested.is_set():
        _state["consumed"] = True
        raise KeyboardInterrupt


def stopping(stop: threading.Event | None = None) -> bool:
    """For worker threads: True when they should give up their item (an interrupt was requested,
    or ``stop``, the event :func:`map_threads` hands them, is set)."""
    return _requested.is_set() or (stop is not None and stop.is_set())


def is_interrupt(exc: BaseException) -> bool:
    """True for a ``KeyboardInterrupt``, and for an exception caused by one (a ``parallel=True``
    numba kernel reports Ctrl-C as ``SystemError: ... returned a result with an exception set``)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def interrupt_as_keyboard_interrupt() -> Iterator[None]:
    """Around a ``parallel=True`` kernel call: the ``SystemError`` numba makes of a Ctrl-C that
    arrived during the call is raised as the ``KeyboardInterrupt`` it is."""
    try:
        yield
    except SystemError as exc:
        if is_interrupt(exc):
            raise KeyboardInterrupt from exc
        raise


def _noop() -> None:
    pass


def _run_pending_handlers() -> None:
    """Let a Ctrl-C delivered to another thread (the main thread sees it only at its next Python
    call) reach the handler installed now, before that handler is replaced."""
    for _ in range(2):
        _noop()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def deferred(grace_s: float = 2.0, stream=None) -> Iterator[None]:
    """Inside the block the first Ctrl-C asks the work to stop at its next :func:`check`; a second
    Ctrl-C, or none of the work's checks within ``grace_s`` seconds, raises ``KeyboardInterrupt``
    at once. The block's exception after a request is re-raised as ``KeyboardInterrupt`` (from it),
    and a request the work did not act on is raised when the block ends. Outside the main thread
    (where signals cannot be handled) this does nothing."""
    if not _in_main_thread():
        yield
        return
    stream = sys.stderr if stream is None else stream
    depth = _state["depth"]

    def watchdog():
        time.sleep(grace_s)
        if _state["depth"] > depth and _requested.is_set() and not _state["consumed"]:
            _thread.interrupt_main()  # runs the handler below in the main thread: it raises

    def handler(signum, frame):
        if _requested.is_set():
            _state["consumed"] = True
            raise KeyboardInterrupt
        _requested.set()
        _state["first_s"] = time.monotonic()
        try:
            stream.write("\ninterrupt: stopping at the next safe point (Ctrl-C again to stop at once)\n")
            stream.flush()
        except (OSError, ValueError):
            pass
        threading.Thread(target=watchdog, name="geomvision-interrupt-watchdog", daemon=True).start()

    previous = signal.signal(signal.SIGINT, handler)
    _state["depth"] = depth + 1
    _state["consumed"] = False
    _requested.clear()
    try:
        yield
        if _requested.is_set():
            _state["consumed"] = True
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        _state["consumed"] = True
        raise
    except BaseException as exc:
        if _requested.is_set() or is_interrupt(exc):
            _state["consumed"] = True
            raise KeyboardInterrupt from exc
        raise
    finally:
        _state["depth"] = depth
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
        _requested.clear()


def _say(text: str) -> None:
    try:
        sys.stderr.write(f"\n{text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def map_threads(work: Callable[[int, threading.Event], None], n: int, num_threads: int) -> None:
    """Run ``work(k, stop)`` for k in range(n) on ``num_threads`` threads (in order, in this thread,
    when ``num_threads`` is 1 or n <= 1).

    While the pool runs, Ctrl-C (in the main thread) is only recorded, never raised: the first one
    (or an interrupt request, or an exception in an item) cancels the items not yet started and
    sets ``stop`` so that running items can give up early (they poll :func:`stopping`); the pool
    is then joined, and only then is ``KeyboardInterrupt`` (or the item's exception) raised. A
    ``KeyboardInterrupt`` raised while the pool is still being joined would let the interpreter
    end under threads still inside OpenCV or BLAS, which aborts it ("FATAL: exception not
    rethrown"), so further Ctrl-C meanwhile are ignored.
    """
    stop = threading.Event()
    if num_threads <= 1 or n <= 1:
        for k in range(n):
            check()
            work(k, stop)
        check()
        return
    presses: list[int] = []
    main = _in_main_thread()

    def handler(signum, frame):
        presses.append(signum)
        if len(presses) == 1:
            _say("interrupt: stopping after the items in progress")
        elif len(presses) == 2:
            _say("interrupt: waiting for the items in progress to finish (they cannot be stopped midway)")

    previous = signal.signal(signal.SIGINT, handler) if main else None
    error: BaseException | None = None
    try:
        with ThreadPoolExecutor(max_workers=min(num_threads, n)) as pool:
            futures = [pool.submit(work, k, stop) for k in range(n)]
            pending = set(futures)
            while pending and error is None and not presses and not _requested.is_set():
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_EXCEPTION)
                for f in done:
                    if f.exception() is not None:
                        error = f.exception()
                        break
            if pending:
                stop.set()
                for f in pending:
                    f.cancel()
            # leaving the block joins the threads; a stopped item's KeyboardInterrupt is expected
        _run_pending_handlers()
    finally:
        if main:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
    if presses and _state["depth"] > 0:  # inside deferred(): the press is a request like any other
        _requested.set()
    if presses or _requested.is_set() or (error is not None and is_interrupt(error)):
        if _requested.is_set():
            _state["consumed"] = True
        raise KeyboardInterrupt from error
    if error is not None:
        raise error
