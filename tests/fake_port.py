"""An in-memory serial port and clock for byte-exact ZVT tests: scheduled arrivals, recorded writes, scripted peers."""
from __future__ import annotations

from collections.abc import Callable

from drivers.payment.zvt.link import Link

BYTE_TIME_S = 1 / 960
IDLE_STEP_S = 0.01


class FakeClock:
    """Monotonic seconds that only move when told (a FakePort's reads move them): a drivers.payment.zvt.clock.Clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        """The current fake time."""
        return self.now

    def monotonic(self) -> float:
        """The current fake time."""
        return self.now

    def wait(self, ready: Callable[[float], bool], timeout: float) -> bool:
        """Call `ready` until it returns True or the fake time reaches the deadline (the port's reads move it)."""
        deadline = self.now + timeout
        while True:
            if ready(max(0.0, deadline - self.now)):
                return True
            if self.now >= deadline:
                return False


class FakePort:
    """An in-memory serial port: bytes scheduled to arrive at clock times, writes recorded.

    A read with nothing due advances the clock by a short idle step (the real port's read timeout);
    a read that returns bytes advances it by their time on the wire at 9600 baud.
    """

    def __init__(self, clock: FakeClock, on_write: Callable[[FakePort, bytes], None] | None = None) -> None:
        self.clock = clock
        self.on_write = on_write
        self.arrivals: list[tuple[float, bytes]] = []
        self.written = bytearray()
        self.writes: list[bytes] = []

    def arrive(self, data: bytes, delay: float = 0.0) -> None:
        """Schedule `data` to become readable `delay` seconds from now."""
        self.arrivals.append((self.clock.now + delay, data))
        self.arrivals.sort(key=lambda arrival: arrival[0])

    @property
    def in_waiting(self) -> int:
        """Bytes due by now (pyserial's name)."""
        return sum(len(data) for at, data in self.arrivals if at <= self.clock.now)

    def read(self, size: int) -> bytes:
        """Up to `size` bytes that are due by now."""
        due = bytearray()
        while self.arrivals and self.arrivals[0][0] <= self.clock.now and len(due) < size:
            at, data = self.arrivals.pop(0)
            taken, rest = data[:size - len(due)], data[size - len(due):]
            due += taken
            if rest:
                self.arrivals.insert(0, (at, rest))
        if not due:
            self.clock.now += IDLE_STEP_S
            return b""
        self.clock.now += len(due) * BYTE_TIME_S
        return bytes(due)

    def write(self, data: bytes) -> int:
        """Record the bytes and let the peer react."""
        self.written += data
        self.writes.append(bytes(data))
        if self.on_write is not None:
            self.on_write(self, bytes(data))
        return len(data)


def answering(*replies: bytes, delay: float = 0.05) -> Callable[[FakePort, bytes], None]:
    """A peer that answers each frame written to it with the next of `replies` (nothing once they run out)."""
    queue = list(replies)

    def on_write(port: FakePort, data: bytes) -> None:
        if data.startswith(b"\x10\x02") and queue:
            port.arrive(queue.pop(0), delay)

    return on_write


def make_link(on_write: Callable[[FakePort, bytes], None] | None = None) -> tuple[Link, FakePort, FakeClock]:
    """A Link over a fresh fake port and clock."""
    clock = FakeClock()
    port = FakePort(clock, on_write)
    return Link(port, clock=clock), port, clock
