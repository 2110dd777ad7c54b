"""Resident memory over 1,000 scripted journeys through the real loop, store, screens and simulated terminal."""
from __future__ import annotations

import gc
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import common

from kiosk import config
from kiosk.app.loop import Loop
from kiosk.cli.compose import CardTerminal
from kiosk.cli.scenario import ManualClock, Runner, parse
from kiosk.domain import journey
from kiosk.storage.store import Store
from screens.display import Display

JOURNEYS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
JOURNEY = """
tap start
type {plate}
tap continue
duration 60
tap pay
expect screen paid
tap done
tap rate:5
advance 10s
expect screen welcome
"""


def main() -> None:
    """Print the figures."""
    settings = config.load(common.scratch_config())
    clock = ManualClock(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    store = Store.open(Path(settings.storage.database), settings.station.id, clock())
    display = Display(settings, headless=True)
    devices = CardTerminal(settings, True, (), lambda event: loop.post(event))
    loop = Loop(journey.initial(settings, clock()), store, devices.terminal, display, clock)
    devices.terminal.start()
    runner = Runner(loop, display, devices.simulator, clock, Path("."))
    readings: dict[int, float] = {0: common.rss_mb()}
    began = time.perf_counter()
    for n in range(1, JOURNEYS + 1):
        _, steps = parse(JOURNEY.format(plate=f"B-{n:05d}"), f"journey {n}")
        runner.run(steps)
        if n in (1, 100, 500, 1000) or n % 1000 == 0:
            gc.collect()
            readings[n] = common.rss_mb()
    elapsed = time.perf_counter() - began
    print(f"{JOURNEYS} journeys in {elapsed:.1f} s ({elapsed / JOURNEYS * 1000:.1f} ms each, rendering every frame)")
    print("resident memory: " + ", ".join(f"after {n}: {mb:.1f} MB" for n, mb in readings.items()))
    print(f"growth from journey 100 to 1000: {readings[1000] - readings[100]:+.1f} MB "
          f"(target: < 80 MB in all, no growth)")
    if JOURNEYS >= 2000:
        print(f"growth from journey 1000 to {JOURNEYS}: {readings[JOURNEYS] - readings[1000]:+.1f} MB")
    pages = store.core.db.execute_sql("PRAGMA page_count").fetchone()[0]
    print(f"sessions stored: {len(store.rows('parking_session'))}, database {pages} pages")
    devices.close()
    display.close()
    store.close()


if __name__ == "__main__":
    main()
