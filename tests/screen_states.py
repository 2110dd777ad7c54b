"""Screen tests' shared states and drawing helpers: one State per screen and overlay, drawn headless (SDL dummy)."""
import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pygame
import pytest

from kiosk.config import BandSettings, LanguageSettings, LinkSettings, ScreenSettings, Settings
from kiosk.domain import helpdesk, journey
from kiosk.domain.doctor import Finding, Health, Part, Report
from kiosk.domain.helpdesk import Line, Phase, Ticket
from kiosk.domain.journey import Decline, MorePage, Payment, Screen
from kiosk.domain.outage import Outage, ParkingWhileOut
from kiosk.domain.records import FaultRecord, SessionRecord
from kiosk.domain.service_menu import Opener, ServiceMenu
from kiosk.domain.voice import Call, CallDirection, CallPhase, FailReason
from screens import display as display_module
from screens import theme
from screens.display import Display
from screens.fonts import Fonts
from screens.widgets import Frame

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 in Berlin
SCREENS_DIR = Path(__file__).resolve().parents[1] / "screens"
LINKS = LinkSettings(help_phone="+49 30 123456", nearest_station="Marktplatz 3, 200 m north")
SETTINGS = Settings(links=LINKS, languages=LanguageSettings("en", ("en",)))  # one language: no buttons
MULTILINGUAL = replace(SETTINGS, languages=LanguageSettings("en", ("en", "de", "fr", "es")))
PORTRAIT = replace(MULTILINGUAL, screen=ScreenSettings(720, 1280, "portrait", False))
PRIMARY = {"start", "continue", "pay", "retry", "wake", "help:wait", "help:ok"}
AGENT_SAYS = ("Hello, this is Anna from the parking office. I can see that your card was declined.",
              "I am giving you free parking for today, no need to pay.")
STAFF_NOTICE = ("The north exit barrier is closed today for road works; please leave by the south exit on Market "
                "Street, next to the pharmacy. Thank you for your patience.")  # 200 characters, as staff may write
LONG_MESSAGE = ("Sorry for the trouble 😀🚗🅿️! " * 20 + "x" * 500)[:500]


SERVICE_MENU = ServiceMenu(NOW, Opener.DOOR, (
    "station DE-BER-0042, firmware 0.1.0", "eth0 192.0.2.7, wlan0 198.51.100.4",
    "broker: connected to broker.example.org:8883 with TLS"), presses=2,
    answer=("terminal status: done", "status: 00", "ready: True"))
REPORT = Report.of(Finding(part, Health.FAIL if part is Part.BROKER else Health.OK, f"what the doctor saw of the {part}")
                   for part in Part)


def fault(component: str, code: str, impact: str) -> FaultRecord:
    return FaultRecord(component, code, "critical", "Technical text for staff only.", impact, NOW)


def session(minutes: int = 60, payment_id: str | None = "pay-1") -> SessionRecord:
    return SessionRecord("s-1", "B-AB123", "Demo Zone", NOW, NOW + timedelta(minutes=minutes), minutes, 200, "EUR",
                         "paid", payment_id, None, NOW)


def ticket(**changes: object) -> Ticket:
    """A help call opened 75 s ago, durable unless id=None is given."""
    opened = NOW - timedelta(seconds=75)
    fresh = Ticket(opened=opened, since=opened, answer_due=opened + timedelta(seconds=90), last_activity=opened,
                   id="t-1")
    return replace(fresh, **changes)


def parker(choice: str) -> Line:
    return Line("parker", helpdesk.QUICK_REPLIES[choice], NOW - timedelta(seconds=50))


def agent(text: str) -> Line:
    return Line("agent", text, NOW - timedelta(seconds=20))


def talking(*lines: Line, agent_name: str = "Anna") -> Ticket:
    return ticket(phase=Phase.CONNECTED, agent=agent_name, since=NOW - timedelta(seconds=40), conversation=lines)


def on_the_phone(phase: CallPhase, *lines: Line, **changes: object) -> Ticket:
    """A durable help call with a voice call placed 70 s ago, in ``phase``."""
    started = NOW - timedelta(seconds=70)
    call = Call(phase, started, ring_due=started + timedelta(seconds=30), id="c-1", uri="sip:help@pbx.example.org",
                answered=None if phase in (CallPhase.DIALLING, CallPhase.RINGING, CallPhase.FAILED) else started,
                **changes)  # type: ignore[arg-type]
    return ticket(call=call, conversation=lines, wants_call=False)


def states(settings: Settings = SETTINGS) -> dict[str, journey.State]:
    """One State per screen, overlay and notable variant."""
    base = journey.initial(settings, NOW)
    duration = replace(base, screen=Screen.DURATION, plate="B-AB123", minutes=60)
    paying = replace(base, screen=Screen.PAYING, plate="B-AB123", minutes=60,
                     payment=Payment(200, "EUR", NOW, "pay-1", "Karte bitte"))
    on_plate = replace(base, screen=Screen.PLATE, plate="B-AB1")
    no_phone = replace(settings, links=replace(settings.links, help_phone=""))
    courtesy = Line("courtesy", "B-AB123", NOW - timedelta(seconds=5), until=NOW + timedelta(hours=8))
    return {
        "welcome": base,
        "welcome_notice": replace(base, faults=(fault("card_terminal", "payment_timeout", "notice"),)),
        "welcome_languages": replace(base, settings=replace(settings, languages=MULTILINGUAL.languages)),
        "welcome_long_notice": replace(base, notice=STAFF_NOTICE,
                                       faults=(fault("card_terminal", "payment_timeout", "notice"),)),
        "welcome_notices_page": replace(base, notice=STAFF_NOTICE, more=MorePage.NOTICES,
                                        faults=(fault("card_terminal", "payment_timeout", "notice"),)),
        "welcome_two_faults": replace(base, faults=(fault("card_terminal", "payment_timeout", "notice"),
                                                    fault("help_button", "stuck", "notice"))),
        "plate_empty": replace(base, screen=Screen.PLATE),
        "plate_valid": replace(base, screen=Screen.PLATE, plate="B-AB123"),
        "plate_too_long": replace(base, screen=Screen.PLATE, plate="ABCDEFGHIJ", message="plate_too_long"),
        "duration": duration,
        "duration_min": replace(duration, minutes=15),
        "duration_max": replace(duration, minutes=180),
        "duration_extend": replace(duration, minutes=30, existing=session(120)),
        "duration_max_stay": replace(duration, minutes=0, existing=session(180), message="max_stay_reached"),
        "duration_cancelled": replace(duration, message="cancelled_not_charged"),
        "duration_four_picks": replace(duration, settings=replace(
            settings, tariff=replace(settings.tariff, quick_picks_minutes=(15, 30, 90, 180)))),
        "paying": paying,
        "paying_cancelling": replace(paying, payment=replace(paying.payment, cancelling_since=NOW)),
        "paying_committing": replace(paying, payment=replace(paying.payment, committing=True)),
        "paying_help_waiting": replace(paying, help=ticket()),
        "paying_help_connected": replace(paying, help=talking()),
        "paying_help_closed": replace(paying, help=ticket(phase=Phase.CLOSED, outcome="solved")),
        "paid": replace(base, screen=Screen.PAID, session=session()),
        "declined": replace(base, screen=Screen.DECLINED, decline=Decline("declined", 0x05, "Abgelehnt")),
        "feedback": replace(base, screen=Screen.FEEDBACK),
        "thanks": replace(base, screen=Screen.THANKS),
        "out_of_service": replace(base, screen=Screen.OUT_OF_SERVICE,
                                  faults=(fault("storage", "full", "out_of_service"),)),
        "no_card": replace(base, screen=Screen.OUT_OF_SERVICE,
                           faults=(fault("card_terminal", "unreachable", "no_card_payment"),)),
        "out_of_service_outage": replace(base, screen=Screen.OUT_OF_SERVICE, notice="Repairs under way.",
                                         faults=(fault("operator", "out_of_service", "out_of_service"),),
                                         outage=Outage(ParkingWhileOut.FREE, NOW + timedelta(hours=3))),
        "out_of_service_more": replace(base, screen=Screen.OUT_OF_SERVICE, more=MorePage.OTHER_WAYS,
                                       faults=(fault("storage", "full", "out_of_service"),)),
        "out_of_service_outage_more_next": replace(base, screen=Screen.OUT_OF_SERVICE, more=MorePage.OTHER_WAYS,
                                                   more_part=1, notice="Repairs under way.",
                                                   settings=replace(settings, links=replace(
                                                       settings.links,
                                                       nearest_station="Marktplatz 3, opposite the pharmacy")),
                                                   faults=(fault("operator", "out_of_service", "out_of_service"),),
                                                   outage=Outage(ParkingWhileOut.PAID, NOW + timedelta(hours=2))),
        "out_of_service_long_notice_more": replace(base, screen=Screen.OUT_OF_SERVICE, notice=STAFF_NOTICE,
                                                   more=MorePage.OTHER_WAYS,
                                                   faults=(fault("storage", "full", "out_of_service"),)),
        "out_of_service_long_notice": replace(base, screen=Screen.OUT_OF_SERVICE, notice=STAFF_NOTICE,
                                              faults=(fault("storage", "full", "out_of_service"),)),
        "out_of_service_outage_more": replace(base, screen=Screen.OUT_OF_SERVICE, more=MorePage.OTHER_WAYS,
                                              notice="Repairs under way.", settings=replace(settings, links=replace(
                                                  settings.links, nearest_station="Marktplatz 3, opposite the pharmacy")),
                                              faults=(fault("operator", "out_of_service", "out_of_service"),),
                                              outage=Outage(ParkingWhileOut.PAID, NOW + timedelta(hours=2))),
        "welcome_more": replace(base, more=MorePage.PRICES),
        "welcome_more_long": replace(base, more=MorePage.PRICES, settings=replace(settings, tariff=replace(
            settings.tariff, daily_cap="12.00", bands=(*settings.tariff.bands,
                                                       BandSettings(("sun",), "10:00", "16:00", "1.00"))))),
        "welcome_app": replace(base, more=MorePage.NOTICES),
        "help_waiting": replace(on_plate, help=ticket(id=None)),
        "help_waiting_durable": replace(on_plate, help=ticket(conversation=(parker("card_declined"),))),
        "help_overdue": replace(on_plate, help=ticket(overdue=True)),
        "help_overdue_no_phone": replace(on_plate, settings=no_phone, help=ticket(overdue=True)),
        "help_connected": replace(on_plate, help=talking(parker("card_declined"), *map(agent, AGENT_SAYS), courtesy)),
        "help_connected_long": replace(on_plate, help=talking(parker("other"), agent(LONG_MESSAGE))),
        "help_closed": replace(duration, help=ticket(phase=Phase.CLOSED, outcome="courtesy", since=NOW,
                                                     resolution="Your parking is free until 18:00. Have a nice day!")),
        "help_closed_abandoned": replace(duration, help=ticket(phase=Phase.CLOSED, outcome=helpdesk.ABANDONED)),
        "help_voice_calling": replace(on_plate, help=on_the_phone(CallPhase.RINGING)),
        "help_voice_talking": replace(on_plate, help=on_the_phone(CallPhase.TALKING)),
        "help_voice_ended": replace(on_plate, help=on_the_phone(CallPhase.ENDED, parker("card_declined"),
                                                                reason="Connection reset by user")),
        "help_voice_failed": replace(on_plate, help=on_the_phone(CallPhase.FAILED, reason=FailReason.BUSY)),
        "help_voice_callback": replace(on_plate, help=on_the_phone(CallPhase.TALKING,
                                                                   direction=CallDirection.CALLBACK)),
        "help_voice_connected": replace(on_plate, help=replace(on_the_phone(CallPhase.TALKING, *map(agent, AGENT_SAYS)),
                                                               phase=Phase.CONNECTED, agent="Anna")),
        "welcome_voice_down": replace(base, faults=(fault("help", "voice_down", "notice"),)),
        "warning": replace(duration, warning_since=NOW),
        "service_menu": replace(base, screen=Screen.OUT_OF_SERVICE, service=SERVICE_MENU,
                                faults=(fault("operator", "service", "out_of_service"),
                                        fault("card_terminal", "unreachable", "no_card_payment"))),
        "service_menu_doctor": replace(base, screen=Screen.OUT_OF_SERVICE,
                                       service=replace(SERVICE_MENU, report=REPORT, answer=()),
                                       faults=(fault("operator", "service", "out_of_service"),)),
        "asleep": replace(base, asleep=True),
        "high_contrast": replace(duration, high_contrast=True),
    }


def draw(state: journey.State, size: tuple[int, int] = (800, 480), pressed: str | None = None) -> Frame:
    frame = display_module.frame_for(pygame.Surface(size), FONTS, state, pressed)
    display_module.draw(frame, state, NOW)
    return frame


def draw_at(state: journey.State, now: datetime) -> Frame:
    frame = Frame(pygame.Surface((800, 480)), FONTS, theme.NORMAL, state.language)
    display_module.draw(frame, state, now)
    return frame


FONTS = Fonts()
HELP_STATES = ["help_waiting", "help_waiting_durable", "help_overdue", "help_overdue_no_phone", "help_connected",
               "help_connected_long", "help_closed", "help_closed_abandoned", "help_voice_calling",
               "help_voice_talking", "help_voice_ended", "help_voice_failed", "help_voice_callback",
               "help_voice_connected"]


@pytest.fixture
def display():
    d = Display(SETTINGS, headless=True)
    yield d
    d.close()


# ---- what each screen offers ----


class Recording(Frame):
    """A Frame that also remembers where each text went, and the overlay card."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.placed: list[tuple[str, pygame.Rect, pygame.Rect, bool]] = []
        self.card: pygame.Rect | None = None
        self._dimmed = False

    def scrim(self) -> None:
        super().scrim()
        self._dimmed = True

    def box(self, rect: pygame.Rect, color: theme.Color, border: theme.Color | None = None, width: int = 2) -> None:
        if self._dimmed and self.card is None:
            self.card = pygame.Rect(rect)
        super().box(rect, color, border, width)

    def text(self, text: str, rect: pygame.Rect, **kwargs: object) -> pygame.Rect:
        used = super().text(text, rect, **kwargs)
        self.placed.append((text, pygame.Rect(rect), used, self._dimmed))
        return used


def recorded(state: journey.State, size: tuple[int, int]) -> Recording:
    frame = Recording(pygame.Surface(size), FONTS, theme.palette(state.high_contrast), state.language,
                      large_text=state.large_text)
    display_module.draw(frame, state, NOW)
    return frame


def assert_inside(name: str, frame: Recording) -> None:
    screen = frame.rect
    for text, rect, used, over in frame.placed:
        if not used.h:
            continue
        assert rect.contains(used) and screen.contains(used), (name, text[:40], rect, used)
        if over:
            assert frame.card is not None and frame.card.contains(used), (name, text[:40], frame.card, used)
