"""The technician's service menu: the station's facts, its faults, the last answer, and the actions (English only)."""
from __future__ import annotations

from datetime import datetime

from kiosk.domain.doctor import Health
from kiosk.domain.journey import State
from kiosk.domain.records import FaultRecord
from kiosk.domain.service_menu import MenuAction, ServiceMenu, target_of
from screens.widgets import Block, Flex, Frame, cols, rows

LABELS = {
    MenuAction.TERMINAL_STATUS: "Terminal status",
    MenuAction.END_OF_DAY: "End of day",
    MenuAction.TEST_PAYMENT: "Test payment",
    MenuAction.LED_TEST: "LED test",
    MenuAction.DOCTOR: "Doctor",
    MenuAction.LEAVE: "Leave service mode",
}


def faults_line(faults: tuple[FaultRecord, ...], now: datetime) -> str:
    """``faults: card_terminal/unreachable 12 min, gpio/unavailable 3 min`` (Doctor and MQTT say the rest)."""
    ages = [f"{f.component}/{f.code} {max(0, int((now - f.since).total_seconds() // 60))} min" for f in faults]
    return "faults: " + (", ".join(ages) if ages else "none")


def status_blocks(frame: Frame, menu: ServiceMenu, state: State, now: datetime) -> list[Block]:
    """The station, its faults with their age, its addresses and link (the last ones cut when short of room)."""
    m = frame.m
    station, *rest = menu.about
    return [Block(station, m.small, bold=True, min_size=m.smallest),
            Block(faults_line(state.faults, now), m.small, min_size=m.smallest),
            *(Block(line, m.small, min_size=m.smallest) for line in rest)]


def tests_line(menu: ServiceMenu) -> str:
    """The LED and help button tests: ``LED on; help button down, pressed 3 time(s)``."""
    button = "down" if menu.button_down else "up"
    return f"LED {'on' if menu.led_on else 'as normal'}; help button {button}, pressed {menu.presses} time(s)"


SEVERITY = {Health.FAIL: 0, Health.WARN: 1, Health.OK: 2}


def answer_blocks(frame: Frame, menu: ServiceMenu) -> list[Block]:
    """The tests' line, then the last action's answer or the doctor's report: failures first, what is fine left out
    when short of room."""
    m, p = frame.m, frame.palette
    tests = Block(tests_line(menu), m.small, bold=True, min_size=m.smallest)
    if menu.answer or menu.report is None:
        return [tests, *(Block(line, m.small, min_size=m.smallest, optional=i > 0)
                         for i, line in enumerate(menu.answer or ("Choose an action below.",)))]
    report = menu.report
    failed = [str(f.part) for f in report.findings if f.health is Health.FAIL]
    headline = "Doctor: healthy" if not failed else "Doctor: NOT healthy: " + ", ".join(failed)
    findings = sorted(report.findings, key=lambda f: SEVERITY[f.health])
    return [tests, Block(headline, m.small, bold=True, fg=p.error if failed else None),
            *(Block(f"{f.health} {f.part}: {f.detail}", m.small, min_size=m.smallest,
                    fg=p.error if f.health is Health.FAIL else None, optional=f.health is Health.OK)
              for f in findings)]


def draw(frame: Frame, state: State, now: datetime) -> None:
    """Draw the menu over whatever the journey shows."""
    menu = state.service
    assert menu is not None
    m, p = frame.m, frame.palette
    frame.fill(p.bg)
    band, body = rows(frame.rect, [m.px(64), Flex()], 0)
    frame.fill(p.alert, band)
    frame.text(f"Service mode: {state.settings.station.id}", band.inflate(-2 * m.margin, -m.px(8)), size=m.title,
               bold=True, fg=p.on_alert, bg=p.alert, min_size=m.title_min, valign="middle")
    content = body.inflate(-2 * m.margin, -2 * m.margin)
    labels = [LABELS[action] for action in MenuAction]
    main, footer = rows(content, [Flex(), frame.group_height(content.w, labels)], m.gap)
    left, right = (cols if m.landscape else rows)(main, [Flex(5), Flex(4)], m.gap)
    frame.stack(left, status_blocks(frame, menu, state, now), gap=m.px(4))
    frame.box(right, p.card)
    frame.stack(right.inflate(-m.px(16), -m.px(16)), answer_blocks(frame, menu), bg=p.card, gap=m.px(2))
    for action, box in zip(MenuAction, frame.button_group(footer, labels), strict=True):
        busy = menu.running is not None and action is not MenuAction.LEAVE
        frame.button(target_of(action), LABELS[action], box, primary=action is MenuAction.LEAVE, enabled=not busy)
