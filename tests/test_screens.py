"""Touchscreen views: targets, texts, touch handling, contrast, layout rules and headless waiting (SDL dummy)."""
import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import ast
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pygame
import pytest
import screen_states
from babel.messages import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from screen_states import (
    AGENT_SAYS,
    FONTS,
    HELP_STATES,
    MULTILINGUAL,
    NOW,
    PORTRAIT,
    PRIMARY,
    SCREENS_DIR,
    SETTINGS,
    assert_inside,
    draw,
    draw_at,
    fault,
    recorded,
    states,
    talking,
)

from kiosk.config import ScreenSettings, Settings
from kiosk.domain import helpdesk, journey
from kiosk.domain.events import HelpPressed, HelpReleased, Tap
from kiosk.domain.journey import Decline
from kiosk.domain.payment import PaymentPrompt
from screens import i18n, overlays, plate, theme
from screens.display import Display
from screens.paid import receipt_url

display = screen_states.display  # the headless Display fixture, shared


# ---- what each screen offers ----

KEYS = {f"key:{c}" for c in journey.KEYBOARD}
REPLIES = {f"help:reply:{key}" for key in helpdesk.QUICK_REPLIES}
PLATE = KEYS | {"backspace", "clear", "cancel", "help"}
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
    **{f"help_voice_{phase}": ({"help:cancel"} | REPLIES, PLATE)
       for phase in ("calling", "talking", "ended", "failed", "callback", "connected")},
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


@pytest.mark.parametrize("large_text", [False, True])
@pytest.mark.parametrize("language", ["en", "de", "fr", "es"])
def test_a_long_staff_notice_never_pushes_out_the_prices_or_a_faults_alternative(language: str,
                                                                                  large_text: bool) -> None:
    """Staff may write 200 characters: what the station knows stays whole, and the notice is read whole on the
    notices page the box opens, never cut (it once was)."""
    notice = ("The north exit barrier is closed today for road works; please leave by the south exit on Market Street, "
              "next to the pharmacy. Thank you for your patience.")
    for name in ("welcome", "welcome_notice"):
        state = replace(states(MULTILINGUAL)[name], notice=notice, language=language, large_text=large_text)
        frame = draw(state)
        assert frame.cut == [] and "more:notices" in frame.targets, name
        if notice not in frame.texts:
            opened, read = journey.step(state, Tap("more:notices"), NOW)[0], []
            for _part in range(4):  # every part of the page, by Next page
                page = draw(opened)
                assert page.cut == [], name
                read += page.texts
                opened = journey.step(opened, Tap("more:next"), NOW)[0]
            assert notice in read, name


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
    texts = [t for t in draw_at(evening, datetime(2026, 3, 2, 18, 30, tzinfo=UTC)).texts]  # 19:30 local
    assert "Parking until Tue 08:30" in texts
    early = draw_at(evening, datetime(2026, 3, 2, 6, 0, tzinfo=UTC)).texts  # 07:00 local, free until 08:00
    assert "Free until 08:00: pay only for the time after" in early, "free-time honesty: the main line says so"
    assert "From 08:00 until 09:00" in early and "No need to pay now" in early


def test_duration_extension_and_messages() -> None:
    texts = draw(states()["duration_extend"]).texts
    assert "You already have parking until 12:00, extend by:" in texts
    assert "Parking until 12:30" in texts
    assert "Payment cancelled. You have not been charged." in draw(states()["duration_cancelled"]).texts
    assert any("maximum stay" in t for t in draw(states()["duration_max_stay"]).texts)


def test_duration_price_in_the_parkers_language() -> None:
    texts = draw(replace(states()["duration"], language="de")).texts
    assert "2,00\xa0€" in texts


@pytest.mark.parametrize(("prompt", "terminal_says", "shown", "labelled"), [
    (PaymentPrompt.PRESENT_CARD, "Karte einstecken", "The terminal is ready for your card.", False),
    (PaymentPrompt.ENTER_PIN, "PIN eingeben 2,00 EUR", "Enter your PIN on the terminal.", True),
    (PaymentPrompt.WRONG_PIN, "PIN falsch", "Wrong PIN. Please try again on the terminal.", False),
    (PaymentPrompt.WAIT, "Bitte warten", "Please wait…", False),
])
def test_the_terminals_prompts_in_the_parkers_words(prompt: PaymentPrompt, terminal_says: str, shown: str,
                                                    labelled: bool) -> None:
    """A German terminal never speaks German to an English parker; its words appear only labelled, for a PIN."""
    paying = states()["paying"]
    texts = draw(replace(paying, payment=replace(paying.payment, status_text=terminal_says, prompt=prompt))).texts
    assert shown in texts
    assert (f"Card terminal: {terminal_says}" in texts) is labelled and terminal_says not in texts


def test_paying_texts() -> None:
    texts = draw(states()["paying"]).texts
    assert {"€2.00", "Present your card to the terminal", "Cancel"} <= set(texts)
    assert {"Please follow the instructions on the terminal.", "Card terminal: Karte bitte"} <= set(texts), (
        "words the station has no prompt for are the terminal's, labelled")
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
    assert not any("Bitte andere Karte" in t for t in texts), "the reason in the parker's words, never the terminal's"
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
    later = draw_at(states()["warning"], NOW + timedelta(seconds=5, milliseconds=500)).texts
    assert "The screen will reset in 10 s and your entries will be cleared." in later
    assert draw(states()["asleep"]).texts == ["Touch the screen to start"]


def test_every_character_drawn_has_a_glyph() -> None:
    assert FONTS.missing_glyphs("a\U000f0000b") == ["\U000f0000"]
    for name, state in states(MULTILINGUAL).items():
        for text in draw(state).texts:
            assert FONTS.missing_glyphs(text) == [], (name, text)


@pytest.mark.parametrize("large_text", [False, True])
@pytest.mark.parametrize("settings, size", [(MULTILINGUAL, (800, 480)), (PORTRAIT, (720, 1280))])
def test_every_text_stays_inside_its_box(settings: Settings, size: tuple[int, int], large_text: bool) -> None:
    for name, state in states(settings).items():
        assert_inside(name, recorded(replace(state, large_text=large_text), size))


@pytest.mark.parametrize("large_text", [False, True])
@pytest.mark.parametrize("settings, size, smallest", [(MULTILINGUAL, (800, 480), 48), (PORTRAIT, (720, 1280), 75)])
def test_targets_are_large_inside_and_apart(settings: Settings, size: tuple[int, int], smallest: int,
                                            large_text: bool) -> None:
    """docs/screens.md: at least 9 mm, about 48 px on the 800x480 panel and 75 px on the 720x1280 one."""
    scale = min(size) / 480
    screen = pygame.Rect((0, 0), size)
    for name, state in states(settings).items():
        targets = draw(replace(state, large_text=large_text), size).targets
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


def drawn_in_german(state: journey.State, translations: dict[str, str], folder: Path,
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
    assert extracted == listed, "regenerate it as docs/screens.md says (pybabel extract ...)"


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
    forbidden = {"serial", "gpiozero", "paho", "kiosk.storage.store"}
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
