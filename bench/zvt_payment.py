"""Station overhead per card payment through the real loop, store, display and ZVT driver; the simulator never waits."""
from __future__ import annotations

import os
import select
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import common

from drivers.payment.zvt import pt_codec, pt_wire
from drivers.payment.zvt.driver import serial_opener
from drivers.payment.zvt.link import Link
from drivers.payment.zvt.simulator import Behaviour
from kiosk import config
from kiosk.app.loop import Loop
from kiosk.cli.compose import CardTerminal, hand_over_quickly
from kiosk.cli.scenario import ManualClock
from kiosk.domain import journey
from kiosk.domain.events import Tap
from kiosk.storage.store import Store
from screens.display import Display

PAYMENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 300
WARM_UP = 5
ROUND_TRIPS = 1000
LINK_ROUND_TRIPS = 100  # each costs about 20 ms
STEP_TIMEOUT_S = 10.0
AUTHORIZATION = b"\x06\x01"
APPROVED = b"\x04\x0f"
RESULT_OK = b"\x27\x00"
POSITIVE = bytes.fromhex("80 00 00")
# An approving 04 0F as the simulator sends it (amount 1.90 EUR, receipt 0001): the baseline's frame.
STATUS_INFORMATION = pt_codec.encode_apdu(0x04, 0x0F, bytes.fromhex(
    "27 00 04 00 00 00 00 01 90 0B 00 00 01 0C 10 00 00 0D 01 05 17 00 01 19 40 22 F0 F8 41 11 11 EE EE EE 11 11"
    " 29 52 50 00 01 3B 30 30 31 45 46 46 20 20 49 09 78 87 00 01 88 00 00 01 8A 0A 8B F0 F5 56 49 53 41 00"))


@dataclass(frozen=True)
class WireEvent:
    """One frame on the simulator's side of the wire: when (perf_counter), which way, and its APDU."""

    at: float
    incoming: bool
    apdu: bytes


WIRE: list[WireEvent] = []


class TappedPort(pt_wire.FdPort):
    """The simulator's pty port, timestamping every whole frame it reads or writes (parsed by the PT's own reader)."""

    def __init__(self, fd: int) -> None:
        super().__init__(fd)
        self._incoming = pt_wire.FrameReader()
        self._outgoing = pt_wire.FrameReader()

    def read(self, timeout: float) -> bytes:
        """Bytes from the ECR; frames they complete are recorded with the time they were read."""
        data = super().read(timeout)
        if data:
            self._record(time.perf_counter(), True, self._incoming, data)
        return data

    def write(self, data: bytes) -> int:
        """Bytes to the ECR; frames they complete are recorded with the time just before the write."""
        at = time.perf_counter()
        written = super().write(data)
        self._record(at, False, self._outgoing, data)
        return written

    @staticmethod
    def _record(at: float, incoming: bool, reader: pt_wire.FrameReader, data: bytes) -> None:
        for item in reader.feed(data, time.monotonic()):
            if item.kind == "frame":
                WIRE.append(WireEvent(at, incoming, item.apdu))


def first(events: list[WireEvent], after: float, incoming: bool, match: Callable[[bytes], bool]) -> WireEvent:
    """The first frame after `after` going the given way whose APDU matches."""
    found = next((e for e in events if e.at >= after and e.incoming is incoming and match(e.apdu)), None)
    if found is None:
        raise RuntimeError(f"no {'incoming' if incoming else 'outgoing'} frame as expected among "
                           f"{[e.apdu[:3].hex(' ') for e in events]}")
    return found


class Station:
    """The real stack on a manual clock: Loop + Store (temp SQLite) + headless Display + CardTerminal(simulate)."""

    def __init__(self) -> None:
        hand_over_quickly()  # as `kiosk run` does
        self.settings = config.load(common.scratch_config())
        self.clock = ManualClock(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))  # Monday 09:00 in Berlin: paid
        self.store = Store.open(Path(self.settings.storage.database), self.settings.station.id, self.clock())
        self.display = Display(self.settings, headless=True)
        self.devices = CardTerminal(self.settings, True, (), lambda event: self.loop.post(event))
        assert self.devices.simulator is not None
        self.simulator = self.devices.simulator
        self.loop = Loop(journey.initial(self.settings, self.clock()), self.store, self.devices.terminal, self.display,
                         self.clock)
        self.finished = threading.Event()
        terminal = self.devices.terminal
        finish: Callable[..., None] = terminal._finish

        def finished(*args: Any, **kwargs: Any) -> None:
            finish(*args, **kwargs)
            self.finished.set()
            self.display.wake()

        terminal._finish = finished  # type: ignore[method-assign]  # the driver's payment sequence is over (its last ACK read)
        terminal.start()

    def tap(self, target: str) -> None:
        """A parker's tap, handled at once."""
        self.loop.post(Tap(target))
        self.loop.settle()

    def until(self, done: Callable[[], bool], what: str) -> None:
        """Run the loop as Loop.run does (block on the display until woken, then settle) until `done()`."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        self.loop.settle()
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not reached within {STEP_TIMEOUT_S} s (screen {self.loop.state.screen})")
            self.display.wait(0.05)
            self.loop.settle()

    def pay(self, number: int) -> tuple[float, float]:
        """One journey with an approved card payment; (a) tap to 06 01 and (b) 04 0F to 80 00 00, in ms."""
        self.tap("start")
        for char in f"B-{number:05d}":
            self.tap(f"key:{char}")
        self.tap("continue")
        if self.loop.state.screen is not journey.Screen.DURATION:
            raise RuntimeError(f"journey {number}: no duration screen ({self.loop.state.screen})")
        self.simulator.script(Behaviour(statuses=()))
        self.finished.clear()
        seen = len(WIRE)
        tapped = time.perf_counter()
        self.loop.post(Tap("pay"))
        self.until(lambda: self.loop.state.screen is journey.Screen.PAID, "the Paid screen")
        self.until(self.finished.is_set, "the end of the terminal's sequence")
        session = self.loop.state.session
        assert session is not None
        payment_id = session.payment_id
        self.until(lambda: self.store.rows("payment", id=payment_id)[0]["confirmed"] is not None,
                   "the confirmation")
        events = WIRE[seen:]
        authorization = first(events, tapped, True, lambda apdu: apdu[:2] == AUTHORIZATION)
        approved = first(events, authorization.at, False, lambda apdu: apdu[:2] == APPROVED and apdu[3:5] == RESULT_OK)
        answer = first(events, approved.at, True, lambda apdu: apdu == POSITIVE)  # after any 84 9C 00 (please wait)
        self.tap("done")
        self.tap("skip")
        if self.loop.state.screen is not journey.Screen.WELCOME:
            raise RuntimeError(f"journey {number}: back on {self.loop.state.screen}, not welcome")
        return (authorization.at - tapped) * 1000, (answer.at - approved.at) * 1000

    def stop_devices(self) -> pt_wire.PtyLink:
        """Stop the driver (it closes its port) and the simulator; the pty pair stays open for the baseline."""
        self.devices.terminal.close()
        self.simulator.stop()
        pty = self.devices._pty
        assert pty is not None
        return pty

    def close(self, pty: pt_wire.PtyLink) -> None:
        """Close the pty pair, the display and the database."""
        pty.close()
        self.loop.settle()
        self.display.close()
        self.store.close()


EcrSide = Callable[[threading.Event, threading.Event], None]  # (ready, stop): ACKs frames until stop is set


def round_trips(master_fd: int, ecr_side: EcrSide, count: int) -> list[float]:
    """Write the 04 0F frame on the PT side, time until the ECR side (a thread) has read it and its ACK is back."""
    frame = pt_wire.encode_frame(STATUS_INFORMATION)
    ready, stop = threading.Event(), threading.Event()
    ecr = threading.Thread(target=ecr_side, args=(ready, stop), daemon=True)
    ecr.start()
    if not ready.wait(STEP_TIMEOUT_S):
        raise RuntimeError("the ECR side did not open the port")
    samples: list[float] = []
    for _ in range(count):
        start = time.perf_counter()
        os.write(master_fd, frame)
        reply = b""
        while not reply:
            if not select.select([master_fd], [], [], STEP_TIMEOUT_S)[0]:
                raise RuntimeError("the ECR side did not ACK the frame")
            reply = os.read(master_fd, 16)
        samples.append((time.perf_counter() - start) * 1000)
        if reply != b"\x06":
            raise RuntimeError(f"expected ACK, got {reply.hex(' ')}")
    stop.set()
    ecr.join(STEP_TIMEOUT_S)
    return samples


def raw_ecr(slave_fd: int) -> EcrSide:
    """The ECR side as bare pty I/O: select, read until the frame's CRC, write 06."""
    size = len(pt_wire.encode_frame(STATUS_INFORMATION))

    def serve(ready: threading.Event, stop: threading.Event) -> None:
        pending = b""
        ready.set()
        while not stop.is_set():
            if not select.select([slave_fd], [], [], 0.05)[0]:
                continue
            pending += os.read(slave_fd, 4096)
            if len(pending) >= size:
                pending = pending[size:]
                os.write(slave_fd, b"\x06")

    return serve


def link_ecr(slave_path: str, baud: int) -> EcrSide:
    """The ECR side as the station runs it: the driver's serial port settings and Link.receive (ACKs each frame)."""
    def serve(ready: threading.Event, stop: threading.Event) -> None:
        port = serial_opener(slave_path, baud)()  # opening flushes the input: the PT side waits for `ready`
        try:
            link = Link(port)
            ready.set()
            while not stop.is_set():
                link.receive(0.05)
        finally:
            port.close()

    return serve


def ratio(figure: list[float], baseline: list[float]) -> str:
    """Median and p99 of a figure as multiples of the baseline's."""
    median = statistics.median(figure) / statistics.median(baseline)
    p99 = common.percentile(figure, 0.99) / common.percentile(baseline, 0.99)
    return f"x{median:.0f} median, x{p99:.0f} p99"


def main() -> None:
    """Print the figures."""
    pt_wire.FdPort = TappedPort  # type: ignore[misc]  # the simulator wraps its pty master in whatever FdPort is when it starts
    began = time.perf_counter()
    station = Station()
    synchronous = station.store.core.db.execute_sql("PRAGMA synchronous").fetchone()[0]
    journal_mode = station.store.core.db.execute_sql("PRAGMA journal_mode").fetchone()[0]
    for n in range(WARM_UP):
        station.pay(n)
    to_authorization: list[float] = []
    to_answer: list[float] = []
    for n in range(WARM_UP, WARM_UP + PAYMENTS):
        a, b = station.pay(n)
        to_authorization.append(a)
        to_answer.append(b)
    sessions = len(station.store.rows("parking_session"))
    confirmed = sum(1 for row in station.store.rows("payment") if row["state"] == "approved" and row["confirmed"])
    pty = station.stop_devices()
    raw = round_trips(pty.master_fd, raw_ecr(pty.slave_fd), ROUND_TRIPS)
    link = round_trips(pty.master_fd, link_ecr(pty.slave_path, station.settings.terminal.baud), LINK_ROUND_TRIPS)
    station.close(pty)
    elapsed = time.perf_counter() - began

    print(f"{PAYMENTS} card payments after {WARM_UP} warm-up ones, simulator answering at once (no intermediate "
          f"statuses); SQLite journal_mode {journal_mode}, synchronous {synchronous} (2 = FULL)")
    print(f"  (a) Pay tap -> 06 01 on the simulator's side:       {common.summary(to_authorization)}"
          f"  [{ratio(to_authorization, raw)}]")
    print(f"  (b) approving 04 0F written -> 80 00 00 received:   {common.summary(to_answer)}"
          f"  [{ratio(to_answer, raw)}]")
    print(f"  baseline: 04 0F frame ({len(pt_wire.encode_frame(STATUS_INFORMATION))} bytes) + ACK over the same pty, "
          f"bare pty I/O, {ROUND_TRIPS} round trips: {common.summary(raw)}")
    print(f"  the same through the station's link layer (its pyserial port, Link.receive), {LINK_ROUND_TRIPS} round "
          f"trips: {common.summary(link)}")
    print(f"  sessions stored: {sessions}, payments approved and confirmed: {confirmed}; {elapsed:.1f} s in all")
    worst = max(common.percentile(to_authorization, 0.99), common.percentile(to_answer, 0.99))
    print(f"worst p99 {worst:.3f} ms (target < 20 ms for (a) and (b)): {'met' if worst < 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
