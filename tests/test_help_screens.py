"""The help call on screen: its texts, conversation, any agent text inside the card, pixels and doc pictures."""
import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import screen_states
from screen_states import (
    AGENT_SAYS,
    FONTS,
    HELP_STATES,
    MULTILINGUAL,
    NOW,
    PORTRAIT,
    SETTINGS,
    agent,
    assert_inside,
    draw,
    draw_at,
    parker,
    recorded,
    states,
    talking,
    ticket,
)

from kiosk.config import Settings
from kiosk.domain import helpdesk
from kiosk.domain.helpdesk import Line, Phase
from screens import help
from screens.display import Display
from screens.text_fit import printable, unbreakable

display = screen_states.display  # the headless Display fixture, shared

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
    "help_voice_calling": {"Calling a person…", "Please stay here. You will hear the person through the station.",
                           "Waiting for 01:15", "Tell us what happened:", "End call"},
    "help_voice_talking": {"You are talking to a person", "Speak towards the station: the person hears you.",
                           "Waiting for 01:15", "Tell us what happened:", "End call"},
    "help_voice_ended": {"A person is being called", "The call has ended. A person can still write to you here.",
                         "Waiting for 01:15", "You: My card is declined", "Cancel call"},
    "help_voice_failed": {"A person is being called", "We could not connect a call. A person can still write to you "
                          "here. You can also call us: +49\u00a030\u00a0123456", "Waiting for 01:15",
                          "Tell us what happened:", "Cancel call"},
    "help_voice_callback": {"A person is calling you back", "Speak towards the station: the person hears you.",
                            "End call"},
    "help_voice_connected": {"Anna is helping you", "Speak towards the station: the person hears you.",
                             *AGENT_SAYS, "End call"},
}


@pytest.mark.parametrize("name", HELP_STATES)
def test_help_texts(name: str) -> None:
    texts = draw(states()[name]).texts
    assert HELP_TEXTS[name] <= set(texts), texts
    if name.endswith("no_phone"):
        assert not any("+49" in t for t in texts)


def test_help_shows_the_waiting_time_and_when_it_became_durable() -> None:
    later = draw_at(states()["help_waiting"], NOW + timedelta(minutes=2)).texts
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
    frame = recorded(states(settings)["help_connected_long"], size)
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
            frame = recorded(replace(state, high_contrast=high), size)
            assert_inside(name, frame)
            for text in frame.texts:
                assert FONTS.missing_glyphs(text) == [], (name, text[:40])
    title = [t for t in recorded(variants["name"], size).texts if t.endswith(" is helping you")]
    assert len(title) == 1, "the agent's name is shortened, the sentence stays whole"


def test_a_long_agent_name_is_shortened_on_one_line() -> None:
    state = replace(states()["help_connected"], help=talking(agent_name="Maximiliane Alexandra von " + "Hohenzollern" * 4))
    frame = recorded(state, (800, 480))
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


def test_a_phone_number_or_a_french_colon_stays_on_its_line() -> None:
    frame = draw(states()["help_voice_failed"])
    assert printable(frame, "Tel.\u00a0+49\u00a030  1\t2") == "Tel.\u00a0+49\u00a030 1 2", "no-break spaces are kept"
    assert unbreakable(frame, "+49\u00a030\u00a0123456", 1000, 30, False).count("\n") == 0
