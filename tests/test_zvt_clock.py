"""The ZVT code's clock: the real one waits in `ready` until the deadline; the tests' SkippingClock jumps over timers."""
from __future__ import annotations

import threading
import time

from skipping_clock import SkippingClock

from drivers.payment.zvt.clock import REAL_CLOCK


def test_the_real_clock_looks_at_least_once_and_gives_ready_the_time_left() -> None:
    given: list[float] = []

    def ready(block: float) -> bool:
        given.append(block)
        return False

    assert REAL_CLOCK.wait(lambda block: True, 0) is True
    assert REAL_CLOCK.wait(ready, 0) is False and given == [0.0]
    started = time.monotonic()
    assert REAL_CLOCK.wait(ready, 0.05) is False
    assert time.monotonic() - started >= 0.05 and 0 < given[1] <= 0.05


def test_the_real_clock_waits_on_an_event() -> None:
    event = threading.Event()
    threading.Timer(0.01, event.set).start()
    assert REAL_CLOCK.wait(event.wait, 5) is True


def waiters(clock: SkippingClock, *timeouts: float) -> tuple[list[threading.Thread], list[tuple[float, float]]]:
    """Threads that each wait for an event that never comes, recording (timeout, clock time) when theirs expired."""
    never = threading.Event()
    expired: list[tuple[float, float]] = []
    start = clock.monotonic()

    def wait(timeout: float) -> None:
        clock.wait(never.wait, timeout)
        expired.append((timeout, clock.monotonic() - start))

    return [threading.Thread(target=wait, args=(timeout,), daemon=True) for timeout in timeouts], expired


def test_a_timer_nobody_can_beat_expires_at_once_and_a_later_one_still_later() -> None:
    clock = SkippingClock(parties=2)
    threads, expired = waiters(clock, 30.001, 30.0)
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    # Which woken thread records first is the scheduler's choice: asserting that order failed a run on Debian 13.
    assert sorted(timeout for timeout, _ in expired) == [30.0, 30.001], "both expired"
    assert all(at >= timeout for timeout, at in expired), "neither before its time"
    assert time.monotonic() - started < 5 and clock.skipped_s >= 29


def test_no_skip_while_a_party_is_busy_or_the_test_holds_the_clock() -> None:
    clock = SkippingClock(parties=2)
    (alone,), expired = waiters(clock, 0.2)
    alone.start()
    alone.join(timeout=10)
    assert expired and clock.skips == 0, "one waiting party of two: real time"
    threads, expired = waiters(clock, 60, 60)
    with clock.hold():
        for thread in threads:
            thread.start()
        threads[0].join(timeout=0.3)
        assert expired == [], "held: no skip"
    for thread in threads:
        thread.join(timeout=10)
    assert len(expired) == 2 and clock.skips == 1
