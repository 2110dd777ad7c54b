"""Render time of every screen at 800x480, in standard and large text: median and p99 over 500 full frames each."""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import common

from kiosk.config import Settings
from kiosk.domain import helpdesk, journey
from kiosk.domain.payment import DeclineReason
from kiosk.domain.records import FaultRecord, SessionRecord
from screens.display import Display

FRAMES = 500
NOW = datetime(2026, 1, 5, 10, 0, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)


def states(settings: Settings) -> dict[str, journey.State]:
    """One representative state per screen and overlay."""
    base = journey.initial(settings, NOW)
    session = SessionRecord("s1", "B-AB123", settings.zone.name, NOW, NOW + timedelta(hours=1), 60, 200, "EUR",
                            "paid", "p1", None, NOW)
    fault = FaultRecord("card_terminal", "unreachable", "critical", "x", "no_card_payment", NOW)
    waiting = helpdesk.Ticket(opened=NOW, since=NOW, answer_due=NOW + timedelta(seconds=90), last_activity=NOW, id="t1")
    return {
        "welcome": base,
        "plate": replace(base, screen=journey.Screen.PLATE, plate="B-AB123"),
        "duration": replace(base, screen=journey.Screen.DURATION, plate="B-AB123", minutes=60),
        "paying": replace(base, screen=journey.Screen.PAYING, payment=journey.Payment(200, "EUR", NOW, "p1", "Insert card")),
        "paid": replace(base, screen=journey.Screen.PAID, plate="B-AB123", session=session),
        "declined": replace(base, screen=journey.Screen.DECLINED, plate="B-AB123", minutes=60,
                            decline=journey.Decline(DeclineReason.DECLINED, 5, "Declined")),
        "feedback": replace(base, screen=journey.Screen.FEEDBACK),
        "out_of_service": replace(base, screen=journey.Screen.OUT_OF_SERVICE, faults=(fault,)),
        "help overlay": replace(base, help=waiting),
        "help talking": replace(base, help=replace(waiting, phase=helpdesk.Phase.CONNECTED, agent="Anna", conversation=(
            helpdesk.Line("parker", helpdesk.QUICK_REPLIES["card_declined"], NOW),
            helpdesk.Line("agent", "I can see the declined payment. I will give you free parking for today.", NOW),
            helpdesk.Line("courtesy", "B-AB123", NOW, until=NOW + timedelta(hours=3))))),
        "warning overlay": replace(base, screen=journey.Screen.PLATE, plate="B-AB", warning_since=NOW),
    }


def main() -> None:
    """Print the figures: standard text is the baseline, large text its ratio to it."""
    settings = Settings()
    display = Display(settings, headless=True)
    print(f"render time per full frame, {FRAMES} frames, {settings.screen.width}x{settings.screen.height}")
    worst: dict[bool, float] = {}
    for large_text in (False, True):
        print("large text" if large_text else "standard text")
        for name, state in states(settings).items():
            samples = []
            for i in range(FRAMES):
                now = NOW + timedelta(seconds=i)
                start = time.perf_counter()
                display.render(replace(state, large_text=large_text), now)
                samples.append((time.perf_counter() - start) * 1000)
            worst[large_text] = max(worst.get(large_text, 0.0), common.percentile(samples, 0.99))
            print(f"  {name:16s} {common.summary(samples)}")
    print(f"worst p99 {worst[False]:.3f} ms standard, {worst[True]:.3f} ms large text "
          f"(x{worst[True] / worst[False]:.2f}; target < 5 ms)")
    display.close()


if __name__ == "__main__":
    main()
