"""A small progress reporter for long loops: count, rate and ETA on stderr.

On a terminal it redraws one line in place (``\\r``) at most ``refresh_s`` apart; when stderr is
a file or a pipe (CI logs, ``2> log.txt``) it prints sparse plain lines instead (at most one per
``log_interval_s``, plus the final one), so logs stay short. It is thread-safe, so workers of a
pool may call :meth:`Progress.update` directly::

    with Progress(len(paths), "features") as bar:
        for p in paths:
            work(p)
            bar.update()

    for item in progress(items, desc="matching"):   # the same, wrapping an iterable
        work(item)

``enabled=False`` turns every call into a no-op, so library code can take a ``progress: bool``
argument and always use the same code path.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import IO, Self, TypeVar

__all__ = ["Progress", "format_duration", "progress"]

T = TypeVar("T")


def format_duration(seconds: float) -> str:
    """``75.2 -> '1:15'``, ``3725 -> '1:02:05'``; ``'?'`` for unknown (negative, NaN or inf)."""
    if not seconds >= 0 or seconds == float("inf"):
        return "?"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Progress:
    """Count / rate / ETA reporter for a loop of ``total`` steps (``None`` when unknown).

    Parameters
    ----------
    total : number of steps, or None (then no percentage and no ETA are shown).
    desc : a short label printed first.
    unit : what a step is (``"img"``, ``"pair"``), used in the rate.
    stream : where to write (default ``sys.stderr``, looked up when the reporter is created).
    enabled : False makes the reporter silent.
    refresh_s : minimum time between redraws on a terminal.
    log_interval_s : minimum time between plain lines when the stream is not a terminal.
    """

    def __init__(
        self,
        total: int | None,
        desc: str = "",
        *,
        unit: str = "it",
        stream: IO[str] | None = None,
        enabled: bool = True,
        refresh_s: float = 0.1,
        log_interval_s: float = 10.0,
    ) -> None:
        if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
            raise ValueError(f"total must be a non-negative int or None, got {total!r}")
        self.total = total
        self.desc = desc
        self.unit = unit
        self.enabled = bool(enabled)
        self.stream = stream if stream is not None else sys.stderr
        self.refresh_s = float(refresh_s)
        self.log_interval_s = float(log_interval_s)
        self.count = 0
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()
        self._last_draw = -float("inf")
        self._last_len = 0
        self._closed = False
        try:
            self._tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self._tty = False

    # -- public API ----------------------------------------------------------------------------
    def update(self, n: int = 1) -> None:
        """Advance by ``n`` steps and redraw / log when due."""
        if not self.enabled:
            return
        with self._lock:
            self.count += n
            now = time.perf_counter()
            interval = self.refresh_s if self._tty else self.log_interval_s
            if now - self._last_draw >= interval and not self._closed:
                self._draw(now, final=False)

    def close(self) -> None:
        """Print the final state (once) and end the line on a terminal."""
        if not self.enabled:
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._draw(time.perf_counter(), final=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- formatting ------------------------------------------------------------------------------
    def line(self, now: float | None = None) -> str:
        """The status text, e.g. ``'features: 12/55 (22%) 3.4 img/s ETA 0:12'``."""
        elapsed = (time.perf_counter() if now is None else now) - self._t0
        rate = self.count / elapsed if elapsed > 0 else 0.0
        head = f"{self.desc}: " if self.desc else ""
        if self.total is None:
            body = f"{self.count} {self.unit}"
        else:
            pct = 100.0 * self.count / self.total if self.total else 100.0
            body = f"{self.count}/{self.total} ({pct:.0f}%)"
        rate_s = f"{rate:.1f} {self.unit}/s" if rate >= 0.1 or rate == 0 else f"{1.0 / rate:.1f} s/{self.unit}"
        tail = f" elapsed {format_duration(elapsed)}"
        if self.total is not None and self.count < self.total:
            eta = (self.total - self.count) / rate if rate > 0 else float("inf")
            tail += f" ETA {format_duration(eta)}"
        return f"{head}{body} {rate_s}{tail}"

    def _draw(self, now: float, *, final: bool) -> None:
        self._last_draw = now
        text = self.line(now)
        try:
            if self._tty:
                pad = " " * max(0, self._last_len - len(text))
                self.stream.write("\r" + text + pad + ("\n" if final else ""))
                self._last_len = len(text)
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # closed or broken stream: progress is never worth a crash
            self.enabled = False


def progress(
    iterable: Iterable[T],
    total: int | None = None,
    desc: str = "",
    *,
    unit: str = "it",
    enabled: bool = True,
    stream: IO[str] | None = None,
) -> Iterator[T]:
    """Yield from ``iterable`` while reporting progress (``total`` defaults to ``len(iterable)``)."""
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with Progress(total, desc, unit=unit, enabled=enabled, stream=stream) as bar:
        for item in iterable:
            yield item
            bar.update()
