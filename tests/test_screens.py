"""Touchscreen views: targets, texts, touch handling, contrast, layout rules and headless waiting (SDL dummy)."""
import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import ast  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

import pygame  # noqa: E402
import pytest  # noqa: E402
from babel.messages import Catalog  # noqa: E402
from babel.messages.extract import extract_from_dir  # noqa: E402
from babel.messages.mofile import write_mo  # noqa: E402
from babel.messages.pofile import read_po  # noqa: E402

from kiosk import flow, helpdesk  # noqa: E402
from kiosk.config import LanguageSettings, LinkSettings, ScreenSettings, Settings  # noqa: E402
from kiosk.events import HelpPressed, HelpReleased, Tap  # noqa: E402
from kiosk.flow import Decline, Payment, Screen  # noqa: E402
from kiosk.helpdesk import Line, Phase, Ticket  # noqa: E402
from kiosk.records import FaultRecord, SessionRecord  # noqa: E402
from screens import display as display_module  # noqa: E402
from screens import help, i18n, overlays, plate, theme  # noqa: E402
from screens.display import Display  # noqa: E402
from screens.fonts import Fonts  # noqa: E402
from screens.paid import receipt_url  # noqa: E402
from screens.widgets import Frame  # noqa: E402

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 in Berlin
SCREENS_DIR = Path(__file__).resolve().parents[1] / "screens"
LINKS = LinkSettings(help_phone="+49 30 123456", nearest_station="Marktplatz 3, 200 m north")
SETTINGS = Settings(links=LINKS)
MULTILINGUAL = replace(SETTINGS, languages=LanguageSettings("en", ("en", "de", "fr", "es")))
PORTRAIT = replace(MULTILINGUAL, screen=ScreenSettings(720, 1280, "portrait", False))
PRIMARY = {"start", "continue", "pay", "retry", "wake", "help:wait", "help:ok"}
AGENT_SAYS = ("Hello, this is Anna from the parking office. I can see that your card was declined.",
              "I am giving you free parking for today, no need to pay.")
LONG_MESSAGE = ("Sorry for the trouble 😀🚗🅿️! " * 20 + "x" * 500)[:500]


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


def states(settings: Settings = SETTINGS) -> dict[str, flow.State]:
    """One State per screen, overlay and notable variant."""
    base = flow.initial(settings, NOW)
    duration = replace(base, screen=Screen.DURATION, plate="B-AB123", minutes=60)
    paying = replace(base, screen=Screen.PAYING, payment=Payment(200, "EUR", NOW, "pay-1", "Karte bitte"))
    on_plate = replace(base, screen=Screen.PLATE, plate="B-AB1")
    no_phone = replace(settings, links=replace(settings.links, help_phone=""))
    courtesy = Line("courtesy", "B-AB123", NOW - timedelta(seconds=5), until=NOW + timedelta(hours=8))
    return {
        "welcome": base,
        "welcome_notice": replace(base, faults=(fault("card_terminal", "payment_timeout", "notice"),)),
        "welcome_languages": replace(base, settings=replace(settings, languages=MULTILINGUAL.languages)),
        "plate_empty": replace(base, screen=Screen.PLATE),
        "plate_valid": replace(base, screen=Screen.PLATE, plate="B-AB123"),
        "plate_too_long": replace(base, screen=Screen.PLATE, plate="ABCDEFGHIJ", message="plate_too_long"),
        "duration": duration,
        "duration_min": replace(duration, minutes=15),
        "duration_max": replace(duration, minutes=180),
        "duration_extend": replace(duration, minutes=30, existing=session(120)),
        "duration_max_stay": replace(duration, minutes=0, existing=session(180), message="max_stay_reached"),
        "duration_cancelled": replace(duration, message="cancelled_not_charged"),
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
        "help_waiting": replace(on_plate, help=ticket(id=None)),
        "help_waiting_durable": replace(on_plate, help=ticket(conversation=(parker("card_declined"),))),
        "help_overdue": replace(on_plate, help=ticket(overdue=True)),
        "help_overdue_no_phone": replace(on_plate, settings=no_phone, help=ticket(overdue=True)),
        "help_connected": replace(on_plate, help=talking(parker("card_declined"), *map(agent, AGENT_SAYS), courtesy)),
        "help_connected_long": replace(on_plate, help=talking(parker("other"), agent(LONG_MESSAGE))),
        "help_closed": replace(duration, help=ticket(phase=Phase.CLOSED, outcome="courtesy", since=NOW,
                                                     resolution="Your parking is free until 18:00. Have a nice day!")),
        "help_closed_abandoned": replace(duration, help=ticket(phase=Phase.CLOSED, outcome=helpdesk.ABANDONED)),
        "warning": replace(duration, warning_since=NOW),
        "asleep": replace(base, asleep=True),
        "high_contrast": replace(duration, high_contrast=True),
    }


def draw(state: flow.State, size: tuple[int, int] = (800, 480), pressed: str | None = None) -> Frame:
    frame = Frame(pygame.Surface(size), FONTS, theme.palette(state.high_contrast), state.language, pressed)
    display_module.draw(frame, state, NOW)
    return frame


FONTS = Fonts()


@pytest.fixture
def display():
    d = Display(SETTINGS, headless=True)
    yield d
    d.close()


# ---- what each screen offers ----

KEYS = {f"key:{c}" for c in flow.KEYBOARD}
REPLIES = {f"help:reply:{key}" for key in helpdesk.QUICK_REPLIES}
PLATE = KEYS | {"backspace", "clear", "cancel", "help"}
HELP_STATES = ["help_waiting", "help_waiting_durable", "help_overdue", "help_overdue_no_phone", "help_connected",
               "help_connected_long", "help_closed", "help_closed_abandoned"]
EXPECTED = {
    "welcome": ({"start", "help", "contrast"}, {"lang:en"}),
    "welcome_languages": ({"start", "help", "contrast", "lang:en", "lang:de", "lang:fr", "lang:es"}, set()),
    "plate_empty": (KEYS | {"backspace", "clear", "cancel", "help"}, {"continue"}),
    "plate_valid": (KEYS | {"backspace", "clear", "cancel", "help", "continue"}, set()),
    "duration": ({"minus", "plus", "pick:30", "pick:60", "pick:120", "pay", "back", "cancel", "help"}, set()),
    "duration_min": ({"plus", "pay"}, {"minus"}),
    "duration_max": ({"minus", "pay"}, {"plus"}),
    "duration_extend": ({"minus", "plus", "pick:30", "pick:60", "pay"}, {"pick:120"}),
    "duration_max_stay": ({"back", "cancel", "help"}, {"minus", "plus", "pay", "pick:30"}),
    "paying": ({"cancel"}, set()),
    "paying_cancelling": (set(), {"cancel"}),
    "paying_committing": (set(), {"cancel"}),
    "paying_help_waiting": ({"cancel"}, {"help:cancel", "help:ok"} | REPLIES),
    "paying_help_connected": ({"cancel"}, {"help:cancel", "help:ok"} | REPLIES),
    "paying_help_closed": ({"cancel"}, {"help:cancel", "help:ok"} | REPLIES),
    "paid": ({"done"}, set()),
    "declined": ({"retry", "change", "done", "help"}, set()),
    "feedback": ({"rate:1", "rate:2", "rate:3", "rate:4", "rate:5", "skip"}, set()),
    "thanks": ({"continue"}, set()),
    "out_of_service": ({"help"}, {"start"}),
    "help_waiting": ({"help:cancel"}, PLATE | REPLIES),
    "help_waiting_durable": ({"help:cancel"} | REPLIES, PLATE),
    "help_overdue": ({"help:wait", "help:cancel"}, PLATE | REPLIES),
    "help_overdue_no_phone": ({"help:wait", "help:cancel"}, PLATE | REPLIES),
    "help_connected": ({"help:cancel"} | REPLIES, PLATE),
    "help_connected_long": ({"help:cancel"} | REPLIES, PLATE),
    "help_closed": ({"help:ok"}, {"help:cancel", "pay", "minus", "plus", "back"} | REPLIES),
    "help_closed_abandoned": ({"help:ok"}, {"help:cancel", "pay", "minus", "plus", "back"} | REPLIES),
    "warning": ({"continue"}, {"pay", "minus"}),
    "asleep": ({"wake"}, {"start"}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_targets_present_and_disabled_ones_absent(name: str) -> None:
    present, absent = EXPECTED[name]
    targets = set(draw(states()[name]).targets)
    assert present <= targets
    assert not absent & targets


@pytest.mark.parametrize("name", HELP_STATES + ["warning", "asleep", "thanks"])
def test_overlays_and_full_screen_targets_are_the_only_targets(name: str) -> None:
    targets = draw(states()[name]).targets
    assert set(targets) == EXPECTED[name][0]
    if name in ("asleep", "thanks"):
        assert targets[next(iter(targets))] == pygame.Rect(0, 0, 800, 480)


# ---- what each screen says ----

def test_welcome_texts() -> None:
    texts = draw(states()["welcome_notice"]).texts
    for expected in ("Demo Zone", "Mon-Fri 08:00-18:00  €2.00/h", "Sat 08:00-14:00  €1.50/h", "Maximum stay 3 h",
                     "Free at other times", "Start", "Press the red button to talk to a person",
                     "Card payment may be slow or fail at the moment."):
        assert expected in texts
    assert any("10:00" in t for t in texts)
    assert not any("Technical text" in t for t in texts)


@pytest.mark.parametrize("component", ["help_button", "gpio"])
def test_welcome_sends_parkers_to_the_screens_help_while_the_red_button_is_out_of_order(component: str) -> None:
    state = states()["welcome"]
    texts = draw(replace(state, faults=(fault(component, "x", "notice"),))).texts
    assert "Press the red button to talk to a person" not in texts
    assert "Tap Help to talk to a person" in texts
    assert "The red help button is out of order: tap Help on the screen to reach a person." in texts
    assert "Press the red button to talk to a person" in draw(state).texts


def test_staff_notice_on_welcome_and_out_of_service() -> None:
    notice = "Closed on Sunday for the market"
    assert notice in draw(replace(states()["welcome_notice"], notice=notice)).texts
    assert notice in draw(replace(states()["out_of_service"], notice=notice)).texts


def test_plate_texts() -> None:
    assert "B-AB123" in draw(states()["plate_valid"]).texts
    texts = draw(states()["plate_too_long"]).texts
    assert "A plate has at most 10 characters." in texts
    invalid = replace(states()["plate_empty"], plate="-", message="plate_invalid")
    assert "Please check the plate." in draw(invalid).texts


def test_duration_shows_price_and_expiry_in_local_time() -> None:
    texts = draw(states()["duration"]).texts
    assert {"€2.00", "Parking until 11:00", "1 h", "Pay €2.00", "Maximum stay 3 h."} <= set(texts)
    assert "1 h 15 min" in draw(replace(states()["duration"], minutes=75)).texts


def test_duration_date_when_expiry_is_not_today_and_free_start() -> None:
    evening = replace(states()["duration"], minutes=60)
    texts = [t for t in _draw_at(evening, datetime(2026, 3, 2, 18, 30, tzinfo=UTC)).texts]  # 19:30 local
    assert "Parking until Tue, Mar 3, 08:30" in texts
    early = _draw_at(evening, datetime(2026, 3, 2, 6, 0, tzinfo=UTC)).texts  # 07:00 local, free until 08:00
    assert "Parking is free until 08:00, your time starts then." in early
    assert "Parking until 09:00" in early


def _draw_at(state: flow.State, now: datetime) -> Frame:
    frame = Frame(pygame.Surface((800, 480)), FONTS, theme.NORMAL, state.language)
    display_module.draw(frame, state, now)
    return frame


def test_duration_extension_and_messages() -> None:
    texts = draw(states()["duration_extend"]).texts
    assert "You already have parking until 12:00, extend by:" in texts
    assert "Parking until 12:30" in texts
    assert "Payment cancelled. You have not been charged." in draw(states()["duration_cancelled"]).texts
    assert any("maximum stay" in t for t in draw(states()["duration_max_stay"]).texts)


def test_duration_price_in_the_parkers_language() -> None:
    texts = draw(replace(states()["duration"], language="de")).texts
    assert "2,00\xa0€" in texts


def test_paying_texts() -> None:
    texts = draw(states()["paying"]).texts
    assert {"€2.00", "Present your card to the terminal", "Karte bitte", "Cancel"} <= set(texts)
    assert "Cancelling…" in draw(states()["paying_cancelling"]).texts
    assert "Confirming your parking…" in draw(states()["paying_committing"]).texts
    assert "A person is being called. You can finish your payment first." in draw(states()["paying_help_waiting"]).texts
    assert "Anna will talk to you after your payment." in draw(states()["paying_help_connected"]).texts
    long_name = replace(states()["paying_help_connected"], help=talking(agent_name="Anna-Maria " * 12))
    assert "Anna-Maria Anna-Maria Anna-Maria… will talk to you after your payment." in draw(long_name).texts
    closed = draw(states()["paying_help_closed"]).texts
    assert not any("person" in t or "Anna" in t or "call" in t for t in closed)


def test_paid_texts_and_receipt_link() -> None:
    texts = draw(states()["paid"]).texts
    assert {"Parking until 11:00", "B-AB123", "Demo Zone", "Paid €2.00", "Scan for your receipt"} <= set(texts)
    assert receipt_url(SETTINGS, "pay-1") == "https://receipts.example.org/SIM-0001/pay-1"


@pytest.mark.parametrize("reason, words", [
    ("declined", "declined by the bank"), ("unreadable", "could not be read"), ("expired", "expired"),
    ("aborted", "cancelled"), ("terminal", "terminal had a problem"),
    ("terminal_timeout", "You have not been charged"), ("not_stored", "You have not been charged"),
])
def test_declined_gives_a_human_reason_and_what_next(reason: str, words: str) -> None:
    state = replace(states()["declined"], decline=Decline(reason, 0x05, "Bitte andere Karte"))
    texts = draw(state).texts
    assert any(words in t for t in texts)
    assert "You can also pay by app: scan the QR code." in texts
    terminal_words = reason in ("declined", "unreadable", "expired", "aborted", "terminal")
    assert ("Card terminal: Bitte andere Karte" in texts) == terminal_words
    assert not any(t.strip() in ("5", "05", "0x05") for t in texts)


def test_out_of_service_texts() -> None:
    texts = draw(states()["no_card"]).texts
    assert "Card payment is not available" in texts
    assert "Nearest pay station: Marktplatz 3, 200 m north" in texts
    assert "Help line: +49 30 123456" in texts
    assert "The help button still works: press the red button to talk to a person." in texts
    assert "This pay station is out of service" in draw(states()["out_of_service"]).texts


@pytest.mark.parametrize("component, words", [
    ("storage", None),  # no database: no help call can be placed, so none is promised
    ("help_button", "The red help button is out of order: tap Help on the screen to reach a person."),
    ("gpio", "The red help button is out of order: tap Help on the screen to reach a person."),
])
def test_out_of_service_promises_help_only_the_way_it_works(component: str, words: str | None) -> None:
    state = states()["no_card"]
    texts = draw(replace(state, faults=state.faults + (fault(component, "x", "notice"),))).texts
    assert [t for t in texts if "help button" in t] == ([words] if words else [])
    assert "Help line: +49 30 123456" in texts


def test_overlay_texts() -> None:
    assert "The screen will reset in 15 s and your entries will be cleared." in draw(states()["warning"]).texts
    later = _draw_at(states()["warning"], NOW + timedelta(seconds=5, milliseconds=500)).texts
    assert "The screen will reset in 10 s and your entries will be cleared." in later
    assert draw(states()["asleep"]).texts == ["Touch the screen to start"]


def test_every_character_drawn_has_a_glyph() -> None:
    assert FONTS.missing_glyphs("a\U000f0000b") == ["\U000f0000"]
    for name, state in states(MULTILINGUAL).items():
        for text in draw(state).texts:
            assert FONTS.missing_glyphs(text) == [], (name, text)


# ---- the help call ----

HELP_TEXTS = {
    "help_waiting": {"A person is being called", "Please stay here.", "Waiting for 01:15", "Cancel call"},
    "help_waiting_durable": {"A person is being called", "Your call has been received. Please stay here.",
                             "Waiting for 01:15", "Tell us what happened:", "My card is declined",
                             "I can't find my plate", "The machine is not working", "Something else",
                             "You: My card is declined", "Cancel call"},
    "help_overdue": {"Nobody has answered yet", "We are sorry: all our staff are busy right now.",
                     "You can also call us: +49 30 123456", "Keep waiting", "Cancel call"},
    "help_overdue_no_phone": {"Nobody has answered yet", "We are sorry: all our staff are busy right now.",
                              "Keep waiting", "Cancel call"},
    "help_connected": {"Anna is helping you", *AGENT_SAYS, "You: My card is declined",
                       "Free parking for B-AB123 until 18:00", "Tell us what happened:", "End call"},
    "help_connected_long": {"Anna is helping you", "Tell us what happened:", "End call"},
    "help_closed": {"Your call has ended", "Your parking is free until 18:00. Have a nice day!", "OK"},
    "help_closed_abandoned": {"Your call has ended", "Nobody could take your call. Please try again or call +49 30 123456.",
                              "OK"},
}


@pytest.mark.parametrize("name", HELP_STATES)
def test_help_texts(name: str) -> None:
    texts = draw(states()[name]).texts
    assert HELP_TEXTS[name] <= set(texts), texts
    if name.endswith("no_phone"):
        assert not any("+49" in t for t in texts)


def test_help_shows_the_waiting_time_and_when_it_became_durable() -> None:
    later = _draw_at(states()["help_waiting"], NOW + timedelta(minutes=2)).texts
    assert "Waiting for 03:15" in later and "Please stay here." in later
    assert "Your call has been received. Please stay here." not in later


def test_help_conversation_newest_at_the_bottom_and_only_what_fits() -> None:
    many = tuple(agent(f"Message number {i}.") for i in range(40))
    texts = [t for t in draw(replace(states()["help_connected"], help=talking(*many))).texts if t.startswith("Message")]
    assert texts[-1] == "Message number 39." and 3 <= len(texts) < 40
    assert texts == [f"Message number {i}." for i in range(40 - len(texts), 40)]


@pytest.mark.parametrize("settings, size", [(SETTINGS, (800, 480)), (PORTRAIT, (720, 1280))])
def test_help_the_newest_message_is_shown_even_when_it_needs_all_the_room(settings: Settings,
                                                                       size: tuple[int, int]) -> None:
    frame = _recorded(states(settings)["help_connected_long"], size)
    said = [(text, rect, used) for text, rect, used, _over in frame.placed if "trouble" in text]
    assert len(said) == 1 and said[0][0].startswith("Sorry for the trouble \ufffd! Sorry")  # one mark per emoji run
    text, _rect, used = said[0]
    assert frame.sizes[text] >= 20 * min(size) // 480 and used.h > 0
    assert not any("You: Something else" in t for t in frame.texts), "the newest message took the room"


def test_help_courtesy_on_another_day_shows_the_date() -> None:
    line = Line("courtesy", "B-AB123", NOW, until=NOW + timedelta(days=1))
    texts = draw(replace(states()["help_connected"], help=talking(line))).texts
    assert "Free parking for B-AB123 until Tue, Mar 3, 10:00" in texts
    open_ended = replace(line, until=None)
    assert "Free parking for B-AB123" in draw(replace(states()["help_connected"], help=talking(open_ended))).texts


@pytest.mark.parametrize("outcome, words", [
    ("solved", "We hope your problem is solved."), ("courtesy", "Your parking has been taken care of."),
    ("technician", "A technician has been informed."), ("no_answer", "Thank you for your patience."),
    ("other", "Thank you for your patience."), (helpdesk.ABANDONED, "Nobody could take your call. Please try again."),
])
def test_help_resolution_has_a_kind_default_per_outcome(outcome: str, words: str) -> None:
    state = replace(states()["help_closed_abandoned"], help=ticket(phase=Phase.CLOSED, outcome=outcome))
    state = replace(state, settings=replace(state.settings, links=replace(state.settings.links, help_phone="")))
    assert words in draw(state).texts


def test_help_quick_replies_are_the_help_desks() -> None:
    assert help.REPLIES == helpdesk.QUICK_REPLIES  # same keys; the English labels are what the agent reads
    assert set(help.ENDINGS) < set(helpdesk.OUTCOMES)


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


def _recorded(state: flow.State, size: tuple[int, int]) -> Recording:
    frame = Recording(pygame.Surface(size), FONTS, theme.palette(state.high_contrast), state.language)
    display_module.draw(frame, state, NOW)
    return frame


def _assert_inside(name: str, frame: Recording) -> None:
    screen = frame.rect
    for text, rect, used, over in frame.placed:
        if not used.h:
            continue
        assert rect.contains(used) and screen.contains(used), (name, text[:40], rect, used)
        if over:
            assert frame.card is not None and frame.card.contains(used), (name, text[:40], frame.card, used)


@pytest.mark.parametrize("settings, size", [(MULTILINGUAL, (800, 480)), (PORTRAIT, (720, 1280))])
def test_every_text_stays_inside_its_box(settings: Settings, size: tuple[int, int]) -> None:
    for name, state in states(settings).items():
        _assert_inside(name, _recorded(state, size))


HOSTILE = [
    "x" * 500,  # one word longer than any line
    "😀" * 250 + "🚗🅿️" * 80,  # emoji the font has not
    "שלום, אני כאן כדי לעזור. " * 20,  # right-to-left
    "مرحبا، كيف يمكنني مساعدتك؟ " * 18,
    "你好，我们正在处理您的问题。" * 30,  # no spaces at all
    "bad \ud800 surrogate, \x00 nul, \x1b[31m escape, \u202e override, \u200b zero width {agent} {0} %s",
    "\n" * 200 + "many empty lines" + "\r\n" * 50,
    "W" * 40 + " " + "M" * 40 + " end",
]


@pytest.mark.parametrize("size, settings", [((800, 480), MULTILINGUAL), ((720, 1280), PORTRAIT)])
@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_help_draws_any_agent_text_inside_the_card(hostile: str, size: tuple[int, int], settings: Settings) -> None:
    base = states(settings)
    courtesy = Line("courtesy", hostile[:20], NOW, until=NOW + timedelta(hours=2))
    variants = {
        "message": replace(base["help_connected"], help=talking(agent(hostile), parker("other"), agent(hostile))),
        "name": replace(base["help_connected"], help=talking(agent(hostile), courtesy, agent_name=hostile)),
        "restored": replace(base["help_waiting_durable"], help=ticket(conversation=(Line("parker", hostile, NOW),))),
        "resolution": replace(base["help_closed"], help=ticket(phase=Phase.CLOSED, outcome="other", resolution=hostile)),
        "paying": replace(base["paying_help_connected"], help=talking(agent_name=hostile)),
    }
    for name, state in variants.items():
        for high in (False, True):
            frame = _recorded(replace(state, high_contrast=high), size)
            _assert_inside(name, frame)
            for text in frame.texts:
                assert FONTS.missing_glyphs(text) == [], (name, text[:40])
    title = [t for t in _recorded(variants["name"], size).texts if t.endswith(" is helping you")]
    assert len(title) == 1, "the agent's name is shortened, the sentence stays whole"


def test_a_long_agent_name_is_shortened_on_one_line() -> None:
    state = replace(states()["help_connected"], help=talking(agent_name="Maximiliane Alexandra von " + "Hohenzollern" * 4))
    frame = _recorded(state, (800, 480))
    title = next(t for t in frame.texts if t.endswith(" is helping you"))
    assert title.startswith("Maximilian") and title.endswith("… is helping you")
    assert frame.sizes[title] >= 28


@pytest.mark.parametrize("name", HELP_STATES)
def test_help_renders_the_same_pixels_every_time(name: str, display: Display, tmp_path: Path) -> None:
    state = states()[name]
    display.render(state, NOW)
    display.screenshot(tmp_path / "first.png")
    assert HELP_TEXTS[name] <= set(display.texts())
    display.render(states()["help_connected_long"], NOW)  # caches filled by another frame change nothing
    display.render(state, NOW)
    display.screenshot(tmp_path / "again.png")
    assert (tmp_path / "first.png").read_bytes() == (tmp_path / "again.png").read_bytes()


DOC_IMAGES = {"help-waiting": "help_waiting_durable", "help-overdue": "help_overdue", "help-connected": "help_connected",
              "help-closed": "help_closed"}


@pytest.mark.skipif(os.environ.get("KIOSK_WRITE_DOC_IMAGES") != "1", reason="set KIOSK_WRITE_DOC_IMAGES=1 to write")
def test_write_doc_images(display: Display) -> None:
    """KIOSK_WRITE_DOC_IMAGES=1: the help overlay pictures of docs/screens.md, at 800x480."""
    folder = Path(__file__).resolve().parents[1] / "docs" / "images"
    folder.mkdir(exist_ok=True)
    for file, name in DOC_IMAGES.items():
        display.render(states()[name], NOW)
        display.screenshot(folder / f"{file}.png")


# ---- layout rules ----

@pytest.mark.parametrize("settings, size, smallest", [(MULTILINGUAL, (800, 480), 48), (PORTRAIT, (720, 1280), 75)])
def test_targets_are_large_inside_and_apart(settings: Settings, size: tuple[int, int], smallest: int) -> None:
    """UX.md: at least 9 mm, about 48 px on the 800x480 panel and 75 px on the 720x1280 one."""
    scale = min(size) / 480
    screen = pygame.Rect((0, 0), size)
    for name, state in states(settings).items():
        targets = draw(state, size).targets
        for target, rect in targets.items():
            assert min(rect.size) >= max(smallest, 48 * scale), (name, target, rect)
            assert screen.contains(rect), (name, target, rect)
            if target in PRIMARY:
                assert rect.h >= 72 * scale, (name, target, rect)
            if target.startswith("key:"):
                assert min(rect.size) >= 56 * scale, (name, target, rect)
        gap = round(10 * scale)
        items = list(targets.items())
        for i, (a, ra) in enumerate(items):
            for b, rb in items[i + 1:]:
                assert not ra.inflate(gap, gap).colliderect(rb.inflate(gap, gap)), (name, a, b)


@pytest.mark.parametrize("landscape", [True, False])
def test_keyboard_has_every_key_once(landscape: bool) -> None:
    keys = [k.target for row in plate.key_rows(landscape, str) for k in row]
    assert sorted(keys) == sorted(KEYS | {"backspace", "clear"})


# ---- contrast ----

@pytest.mark.parametrize("high", [False, True])
def test_palette_text_pairs_reach_the_contrast_minimum(high: bool) -> None:
    minimum = theme.minimum_contrast(high)
    for name, fg, bg in theme.palette(high).text_pairs():
        assert theme.contrast_ratio(fg, bg) >= minimum, name


@pytest.mark.parametrize("high", [False, True])
def test_every_text_drawn_uses_a_checked_pair(high: bool) -> None:
    p = theme.palette(high)
    allowed = {(fg, bg) for _, fg, bg in p.text_pairs()}
    for name, state in states(MULTILINGUAL).items():
        state = replace(state, high_contrast=high)
        for target in draw(state).targets:
            for fg_bg in draw(state, pressed=target).pairs | draw(state).pairs:
                assert fg_bg in allowed, (name, target, fg_bg)


def test_contrast_ratio_reference_values() -> None:
    assert theme.contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert theme.contrast_ratio((118, 118, 118), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)
    assert theme.contrast_ratio((10, 20, 30), (10, 20, 30)) == 1.0


# ---- the Display: touch, feedback, screenshots, waiting ----

def test_press_and_release_inside_taps(display: Display) -> None:
    display.render(states()["duration"], NOW)
    rect = display.targets()["pay"]
    display.press(*rect.center)
    assert display.release(rect.right - 1, rect.bottom - 1) == [Tap("pay")]


def test_release_outside_or_in_another_target_does_nothing(display: Display) -> None:
    display.render(states()["duration"], NOW)
    targets = display.targets()
    display.press(*targets["pay"].center)
    assert display.release(targets["pay"].right + 5, targets["pay"].centery) == []
    display.press(*targets["pay"].center)
    assert display.release(*targets["back"].center) == []
    display.press(2, 2)
    assert display.release(2, 2) == []


def test_press_gives_feedback_before_release(display: Display, tmp_path: Path) -> None:
    display.render(states()["plate_valid"], NOW)
    rect = display.targets()["key:K"]
    display.screenshot(tmp_path / "before.png")
    display.press(*rect.center)
    display.screenshot(tmp_path / "pressed.png")
    assert display.release(0, 0) == []
    display.screenshot(tmp_path / "after.png")
    before, pressed, after = (pygame.image.load(tmp_path / f"{n}.png") for n in ("before", "pressed", "after"))
    point = (rect.x + 6, rect.centery)
    assert pressed.get_at(point) != before.get_at(point)
    assert after.get_at(point) == before.get_at(point)


def test_a_new_screen_drops_the_press(display: Display) -> None:
    display.render(states()["duration"], NOW)
    display.press(*display.targets()["cancel"].center)
    display.render(states()["paying"], NOW)
    assert display.release(*display.targets()["cancel"].center) == []


def test_screenshot_is_a_png_of_the_screen_size(display: Display, tmp_path: Path) -> None:
    display.render(states()["welcome"], NOW)
    path = tmp_path / "welcome.png"
    display.screenshot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pygame.image.load(path).get_size() == (800, 480)
    assert display.texts() == draw(states()["welcome"]).texts


def test_wake_ends_a_blocked_headless_wait(display: Display) -> None:
    ready = threading.Event()

    def waker() -> None:
        ready.wait()
        display.wake()
    thread = threading.Thread(target=waker)
    thread.start()
    start = time.monotonic()
    ready.set()
    assert display.wait(5) == []
    assert time.monotonic() - start < 0.5
    thread.join()


def test_headless_wait_times_out(display: Display) -> None:
    start = time.monotonic()
    assert display.wait(0.05) == []
    assert 0.04 <= time.monotonic() - start < 1


def _post(kind: int, **attrs: object) -> None:
    pygame.event.post(pygame.event.Event(kind, **attrs))


def test_help_keys_drive_the_given_help_key_instead_of_events() -> None:
    pin: list[bool] = []
    d = Display(replace(SETTINGS, screen=ScreenSettings(800, 480, "landscape", False)), headless=False,
                help_key=pin.append)
    try:
        d.render(states()["welcome"], NOW)
        pygame.event.clear()
        _post(pygame.KEYDOWN, key=pygame.K_h, unicode="h", mod=0, scancode=11)
        _post(pygame.KEYDOWN, key=pygame.K_F1, unicode="", mod=0, scancode=58)  # a second help key while held
        _post(pygame.KEYUP, key=pygame.K_h, unicode="h", mod=0, scancode=11)
        assert d.wait(0.2) == [] and pin == [True]
        _post(pygame.KEYUP, key=pygame.K_F1, unicode="", mod=0, scancode=58)
        _post(pygame.KEYDOWN, key=pygame.K_RETURN, unicode="\r", mod=0, scancode=40)
        assert d.wait(1) == [Tap("continue")] and pin == [True, False]
    finally:
        d.close()


def test_interactive_translates_touch_mouse_and_keys() -> None:
    d = Display(replace(SETTINGS, screen=ScreenSettings(800, 480, "landscape", False)), headless=False)
    try:
        w, h = d._surface.get_size()  # the layout follows the real surface
        d.render(states()["plate_empty"], NOW)
        key = d.targets()["key:B"]
        pygame.event.clear()

        def post(kind: int, **attrs: object) -> None:
            pygame.event.post(pygame.event.Event(kind, **attrs))
        post(pygame.FINGERDOWN, x=key.centerx / w, y=key.centery / h, finger_id=7, touch_id=1)
        post(pygame.FINGERUP, x=key.centerx / w, y=key.centery / h, finger_id=7, touch_id=1)
        assert d.wait(1) == [Tap("key:B")]
        post(pygame.MOUSEBUTTONDOWN, pos=key.center, button=1, touch=False)
        post(pygame.MOUSEBUTTONUP, pos=key.center, button=1, touch=False)
        assert d.wait(1) == [Tap("key:B")]
        post(pygame.KEYDOWN, key=pygame.K_h, unicode="h", mod=0, scancode=11)
        post(pygame.KEYDOWN, key=pygame.K_BACKSPACE, unicode="\b", mod=0, scancode=42)
        assert d.wait(1) == [Tap("key:H"), Tap("backspace")]
        d.render(states()["welcome"], NOW)
        post(pygame.KEYDOWN, key=pygame.K_h, unicode="h", mod=0, scancode=11)
        post(pygame.KEYUP, key=pygame.K_h, unicode="h", mod=0, scancode=11)
        assert d.wait(1) == [HelpPressed(), HelpReleased()]
        post(pygame.KEYDOWN, key=pygame.K_RETURN, unicode="\r", mod=0, scancode=40)
        assert d.wait(1) == [Tap("continue")]
        d.wake()
        assert d.wait(5) == []
        post(pygame.QUIT)
        assert d.wait(5) == [] and d.quit_requested
    finally:
        d.close()


# ---- helpers and plumbing ----

def test_formatting() -> None:
    assert i18n.format_money(200, "EUR", "en") == "€2.00"
    assert i18n.format_money(200, "EUR", "de") == "2,00\xa0€"
    assert i18n.format_money(500, "JPY", "en") == "¥500"
    assert i18n.format_money(123, "EUR", "xx") == "€1.23"
    assert [i18n.format_duration(m) for m in (15, 60, 75)] == ["15 min", "1 h", "1 h 15 min"]
    assert i18n.format_clock(NOW, "Europe/Berlin") == "10:00"
    assert i18n.translator("xx")("Start") == "Start"
    assert overlays.seconds_left(states()["warning"], NOW + timedelta(seconds=99)) == 0


def drawn_in_german(state: flow.State, translations: dict[str, str], folder: Path,
                    monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts of ``state`` drawn with a German catalogue compiled from ``translations``."""
    catalog = Catalog(locale="de", domain="kiosk")
    for source, german in translations.items():
        catalog.add(source, german)
    (folder / "de" / "LC_MESSAGES").mkdir(parents=True)
    with (folder / "de" / "LC_MESSAGES" / "kiosk.mo").open("wb") as mo:
        write_mo(mo, catalog)
    monkeypatch.setattr(i18n, "LOCALE_DIR", folder)
    i18n.translation.cache_clear()
    try:
        return draw(replace(state, language="de")).texts
    finally:
        i18n.translation.cache_clear()


def test_a_compiled_catalogue_translates_the_help_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = drawn_in_german(states()["help_connected"], {
        "{agent} is helping you": "{agent} hilft Ihnen", "You: {text}": "Sie: {text}",
        "My card is declined": "Meine Karte wird abgelehnt",
        "Free parking for {plate} until {time}": "Kostenlos parken für {plate} bis {time}"}, tmp_path, monkeypatch)
    assert {"Anna hilft Ihnen", "Sie: Meine Karte wird abgelehnt", "Meine Karte wird abgelehnt", AGENT_SAYS[0],
            "Kostenlos parken für B-AB123 bis 18:00"} <= set(texts)


def test_catalogue_template_lists_every_message() -> None:
    extracted = {message for _file, _line, message, *_rest in extract_from_dir(str(SCREENS_DIR), [("**.py", "python")])}
    with (SCREENS_DIR / "locale" / "kiosk.pot").open("rb") as template:
        listed = {m.id for m in read_po(template) if m.id}
    assert extracted == listed, "regenerate: pybabel extract --no-wrap --sort-by-file -o screens/locale/kiosk.pot screens"


def test_a_compiled_catalogue_translates_the_screen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = drawn_in_german(states()["duration"], {"Parking until {time}": "Parken bis {time}",
                                                   "{hours} h": "{hours} Std."}, tmp_path, monkeypatch)
    assert {"Parken bis 11:00", "1 Std.", "2,00\xa0€", "Back"} <= set(texts)


def test_main_instructions_are_large() -> None:
    for name, text in [("welcome", "Pay for your parking here"), ("plate_empty", "Enter your licence plate"),
                       ("duration", "How long do you want to park?"), ("duration", "Parking until 11:00"),
                       ("duration_extend", "You already have parking until 12:00, extend by:"),
                       ("paying", "Present your card to the terminal"), ("paid", "Parking until 11:00"),
                       ("declined", "Your card was declined by the bank."), ("feedback", "How was it?"),
                       ("out_of_service", "This pay station is out of service"),
                       ("help_waiting", "A person is being called"), ("help_waiting_durable", "A person is being called"),
                       ("help_overdue", "Nobody has answered yet"), ("help_connected", "Anna is helping you"),
                       ("help_closed", "Your call has ended"), ("warning", "Do you need more time?")]:
        assert draw(states()[name]).sizes[text] >= 28, (name, text)


def test_modules_stay_small_and_free_of_device_imports() -> None:
    forbidden = {"serial", "gpiozero", "paho", "kiosk.store"}
    for path in SCREENS_DIR.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert len(source.splitlines()) < 400, path.name
        tree = ast.parse(source)
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in forbidden), (path.name, name)
        assert "print(" not in source, path.name
