"""Ctrl-C at safe points (issue 18, item 7): geomvision._interrupt's request / check / pool logic.

SIGINT is raised for real (``signal.raise_signal``) and handled by the handlers under test."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from geomvision import _interrupt
from geomvision._interrupt import check, deferred, is_interrupt, map_threads, requested, stopping


@pytest.fixture(autouse=True)
def _default_sigint():
    before = signal.getsignal(signal.SIGINT)
    yield
    assert signal.getsignal(signal.SIGINT) is before  # every context puts the handler back
    assert not requested()


def test_first_ctrl_c_is_a_request_honoured_at_the_next_check(capsys):
    seen = []
    with pytest.raises(KeyboardInterrupt), deferred(grace_s=5.0):
        signal.raise_signal(signal.SIGINT)
        seen.append(requested())  # the handler did not raise: the work goes on to a safe point
        check()
        seen.append("after check")
    assert seen == [True]
    assert "stopping at the next safe point" in capsys.readouterr().err


def test_second_ctrl_c_raises_at_once():
    with pytest.raises(KeyboardInterrupt), deferred(grace_s=5.0):
        signal.raise_signal(signal.SIGINT)
        t0 = time.perf_counter()
        signal.raise_signal(signal.SIGINT)
        time.sleep(1.0)  # never reached past the raise
    assert time.perf_counter() - t0 < 0.5


def test_work_without_checks_is_interrupted_after_the_grace_period():
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt), deferred(grace_s=0.3):
        signal.raise_signal(signal.SIGINT)
        for _ in range(100):  # Python code that never calls check()
            time.sleep(0.05)
    assert 0.25 < time.perf_counter() - t0 < 1.5


def test_a_request_left_unchecked_is_raised_when_the_block_ends():
    with pytest.raises(KeyboardInterrupt), deferred(grace_s=5.0):
        signal.raise_signal(signal.SIGINT)


def test_an_error_after_a_request_is_reported_as_the_interrupt():
    with pytest.raises(KeyboardInterrupt) as info, deferred(grace_s=5.0):
        signal.raise_signal(signal.SIGINT)
        raise RuntimeError("numba: no compiled object yet")  # what an interrupted compile gives
    assert isinstance(info.value.__cause__, RuntimeError)


def test_is_interrupt_sees_through_the_parallel_kernel_system_error():
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise SystemError("CPUDispatcher(...) returned a result with an exception set") from ki
    except SystemError as exc:
        assert is_interrupt(exc)
    assert not is_interrupt(ValueError("x"))


def _pool_run(n_items: int, item_s: float, interrupt_at: int, presses: int):
    """map_threads over sleeping items; item ``interrupt_at`` presses Ctrl-C ``presses`` times."""
    started, finished = [], []
    running = threading.Semaphore(0)

    def work(k, stop):
        if stopping(stop):
            return
        started.append(k)
        if k == interrupt_at:
            for _ in range(presses):
                signal.raise_signal(signal.SIGINT)  # delivered to the main thread's handler
                time.sleep(0.05)
        deadline = time.perf_counter() + item_s
        while time.perf_counter() < deadline:  # a long item that polls for a stop, like matching
            if stopping(stop):
                finished.append(("stopped", k))
                running.release()
                raise KeyboardInterrupt
            time.sleep(0.01)
        finished.append(("done", k))
        running.release()

    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        map_threads(work, n_items, 2)
    return started, finished, time.perf_counter() - t0


def test_pool_ctrl_c_cancels_stops_and_waits_for_its_threads():
    before = threading.active_count()
    started, finished, elapsed = _pool_run(20, 0.5, interrupt_at=2, presses=1)
    assert len(started) < 6  # items not started were cancelled
    assert sorted(k for _, k in finished) == sorted(started)  # every started item ended before the raise
    assert any(how == "stopped" for how, _ in finished)  # the running ones stopped early
    assert elapsed < 2.5
    time.sleep(0.05)
    assert threading.active_count() == before  # no worker thread left behind


def test_pool_second_ctrl_c_while_waiting_for_workers_is_ignored():
    """The second Ctrl-C lands while the pool waits for its running items: it must neither break
    that wait (the interpreter would end under running threads) nor be lost as an error."""
    started, finished, _ = _pool_run(20, 0.5, interrupt_at=1, presses=3)
    assert sorted(k for _, k in finished) == sorted(started)


def test_pool_item_error_cancels_the_rest_and_is_raised():
    started = []

    def work(k, stop):
        started.append(k)
        if k == 1:
            raise ValueError("item 1 failed")
        time.sleep(0.05)

    with pytest.raises(ValueError, match="item 1 failed"):
        map_threads(work, 50, 2)
    assert len(started) < 10


def test_pool_inside_deferred_stops_on_the_first_ctrl_c():
    started = []

    def work(k, stop):
        if stopping(stop):
            return
        started.append(k)
        if k == 3:
            signal.raise_signal(signal.SIGINT)
        time.sleep(0.05)

    with pytest.raises(KeyboardInterrupt), deferred(grace_s=5.0):
        map_threads(work, 100, 2)
    assert len(started) < 10
    assert not _interrupt._requested.is_set()
