"""The help call over the screen: waiting for a person, nobody answering yet, talking with an agent, how it ended."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pygame

from kiosk.domain import helpdesk
from kiosk.domain.helpdesk import Line, Phase, Ticket
from kiosk.domain.journey import State
from kiosk.domain.voice import CallDirection, CallPhase
from screens.i18n import N_, Translate, format_when
from screens.text_fit import line_count, printable, say, unbreakable
from screens.theme import Color
from screens.widgets import ELLIPSIS, Flex, Frame, centred, cols, rows

# The parker's quick replies, keyed like helpdesk.QUICK_REPLIES (whose English text is what the agent reads).
REPLIES = {
    "card_declined": N_("My card is declined"),
    "plate_not_found": N_("I can't find my plate"),
    "machine_broken": N_("The machine is not working"),
    "other": N_("Something else"),
}
# What the resolution screen says when the agent wrote nothing, by outcome.
ENDINGS = {
    "solved": N_("We hope your problem is solved."),
    "courtesy": N_("Your parking has been taken care of."),
    "technician": N_("A technician has been informed."),
}
OTHER_ENDING = N_("Thank you for your patience.")
NAME_LIMIT = 32  # characters of an agent's name shown

_REPLY_KEYS = {text: key for key, text in helpdesk.QUICK_REPLIES.items()}


@dataclass(frozen=True)
class Said:
    """One block of text in the conversation: what, in bold or not, in which colour."""

    text: str
    bold: bool
    fg: Color
    outside: bool = False  # an agent's own words: may shrink below the smallest size rather than be cut


def agent_name(ticket: Ticket, _: Translate) -> str:
    """The agent's name as received (a very long one shortened with '…'), or a kind stand-in when none came."""
    name = " ".join(ticket.agent.split())
    if len(name) > NAME_LIMIT:
        return name[:NAME_LIMIT].rstrip() + ELLIPSIS
    return name or _("A staff member")


def card_limit(state: State) -> tuple[int, int] | None:
    """The largest card (reference px) for the call's phase: only a conversation needs the whole screen."""
    ticket = state.help
    talking = ticket is not None and ticket.open and not ticket.overdue and ticket.id is not None
    return None if talking else (760, 520)


def draw(frame: Frame, inner: pygame.Rect, state: State, now: datetime) -> None:
    """Draw the help call inside the overlay card's inner rect; its targets are the only ones."""
    ticket = state.help
    assert ticket is not None
    if ticket.phase is Phase.CLOSED:
        _closed(frame, inner, state)
    elif ticket.phase is Phase.CONNECTED:
        _talking(frame, inner, state, now)
    elif ticket.overdue:
        _overdue(frame, inner, state)
    elif ticket.id is None:
        _calling(frame, inner, ticket, now)
    else:
        _talking(frame, inner, state, now)


def _simple(frame: Frame, inner: pygame.Rect, title: str) -> tuple[pygame.Rect, pygame.Rect]:
    """A card with a title, a body and a row of buttons: returns (body, buttons)."""
    m, p = frame.m, frame.palette
    title_height = max(m.px(100), frame.height_of(title, inner.w, m.title_min, True))
    title_box, body_box, button_box = rows(inner, [title_height, Flex(), m.primary], m.gap)
    say(frame, title, title_box, size=m.title, min_size=m.title_min, bold=True, bg=p.card, align="center",
        valign="middle")
    return body_box, button_box


def _waited(ticket: Ticket, now: datetime, _: Translate) -> str:
    waited = max(0, int((now - ticket.opened).total_seconds()))
    return _("Waiting for {time}").format(time=f"{waited // 60:02d}:{waited % 60:02d}")


def _calling(frame: Frame, inner: pygame.Rect, ticket: Ticket, now: datetime) -> None:
    """Just pressed, the ticket not durable yet: a person is being called."""
    _, m, p = frame._, frame.m, frame.palette
    body, buttons = _simple(frame, inner, _("A person is being called"))
    stay = _("Please stay here.")
    say(frame, f"{stay}\n{_waited(ticket, now, _)}", body, size=m.body, bg=p.card, align="center", valign="middle")
    frame.button("help:cancel", _("Cancel call"), centred(buttons, max(m.px(300), frame.button_width(_("Cancel call")))))


def _overdue(frame: Frame, inner: pygame.Rect, state: State) -> None:
    """Nobody answered in time: say so, offer the phone, let the parker choose to keep waiting."""
    _, m, p = frame._, frame.m, frame.palette
    body, buttons = _simple(frame, inner, _("Nobody has answered yet"))
    text = _("We are sorry: all our staff are busy right now.")
    phone = state.settings.links.help_phone
    if phone:
        text += "\n" + _("You can also call us: {phone}").format(phone=phone)
    labels = [_("Cancel call"), _("Keep waiting")]
    two_rows = sum(frame.button_width(label) for label in labels) + 2 * m.gap > buttons.w
    if two_rows:  # the buttons take a row each, the message the room left above them
        body = pygame.Rect(body.x, body.y, body.w, body.h - m.target - m.gap)
        cancel, wait = rows(pygame.Rect(buttons.x, body.bottom + m.gap, buttons.w, buttons.bottom - body.bottom - m.gap),
                            [m.target, m.primary], m.gap)
    else:
        cancel, wait = cols(buttons, [Flex(frame.button_width(label)) for label in labels], m.gap * 2)
    say(frame, text, body, size=m.body, bg=p.card, align="center", valign="middle")
    frame.button("help:cancel", labels[0], cancel)
    frame.button("help:wait", labels[1], wait, primary=True)


def _closed(frame: Frame, inner: pygame.Rect, state: State) -> None:
    """The call has ended: the agent's resolution, or a kind word for how it ended, and OK."""
    _, m, p = frame._, frame.m, frame.palette
    ticket = state.help
    assert ticket is not None
    body, buttons = _simple(frame, inner, _("Your call has ended"))
    say(frame, ticket.resolution or _ending(ticket.outcome, state.settings.links.help_phone, _), body, size=m.body,
        bg=p.card, align="center", valign="middle")
    frame.button("help:ok", _("OK"), centred(buttons, max(m.px(240), frame.button_width(_("OK")))), primary=True)


def _ending(outcome: str, phone: str, _: Translate) -> str:
    """What the resolution screen says for an outcome when the agent wrote nothing."""
    if outcome == helpdesk.ABANDONED:
        if phone:
            return _("Nobody could take your call. Please try again or call {phone}.").format(phone=phone)
        return _("Nobody could take your call. Please try again.")
    if outcome == helpdesk.UNREACHABLE:
        if phone:
            return _("We cannot reach our staff from this station right now. Please call {phone}.").format(phone=phone)
        return _("We cannot reach our staff from this station right now. We are sorry.")
    return _(ENDINGS.get(outcome, OTHER_ENDING))


def _title_with_name(frame: Frame, ticket: Ticket, rect: pygame.Rect) -> None:
    """'{agent} is helping you' on one line: a long name is shortened with '…' rather than the sentence cut."""
    _, m, p = frame._, frame.m, frame.palette
    template = _("{agent} is helping you")
    name = printable(frame, agent_name(ticket, _))
    size, smallest = m.snap(m.title), m.snap(m.title_min)

    def width(shown: str) -> int:
        return frame.fonts.size(template.format(agent=shown), size, True)[0]
    while (width(name) > rect.w or frame.fonts.linesize(size, True) > rect.h) and size > smallest:
        size = m.smaller(size)
    if width(name) > rect.w:
        low, high = 1, len(name)  # the longest start of the name that fits with '…'
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if width(name[:middle] + ELLIPSIS) <= rect.w else (low, middle - 1)
        name = name[:low].rstrip() + ELLIPSIS
    say(frame, template.format(agent=name), rect, size=size, min_size=size, bold=True, bg=p.card, valign="middle")


def _voice(frame: Frame, ticket: Ticket, phone: str) -> tuple[str | None, list[Said]]:
    """What the screen says of the ticket's voice call: a title instead of the usual one (None: keep it), and the
    status lines above the conversation."""
    _, p = frame._, frame.palette
    call = ticket.call
    if call is None:
        return None, []
    if call.direction is CallDirection.CALLBACK and call.live:
        return _("A person is calling you back"), [Said(_("Speak towards the station: the person hears you."), True,
                                                         p.fg)]
    if call.phase is CallPhase.TALKING:
        return _("You are talking to a person"), [Said(_("Speak towards the station: the person hears you."), True,
                                                       p.fg)]
    if call.live:
        return _("Calling a person…"), [Said(_("Please stay here. You will hear the person through the station."),
                                             True, p.fg)]
    if call.phase is CallPhase.ENDED:
        return None, [Said(_("The call has ended. A person can still write to you here."), True, p.fg)]
    text = _("We could not connect a call. A person can still write to you here.")
    if phone:  # the number kept on one line
        text += " " + _("You can also call us: {phone}").format(phone=phone.replace(" ", "\u00a0"))
    return None, [Said(text, True, p.fg)]


def _talking(frame: Frame, inner: pygame.Rect, state: State, now: datetime) -> None:
    """The durable call, waiting or with an agent: status or conversation, quick replies, and end the call."""
    _, m, p = frame._, frame.m, frame.palette
    ticket = state.help
    assert ticket is not None
    connected = ticket.phase is Phase.CONNECTED
    voice_title, voice_said = _voice(frame, ticket, state.settings.links.help_phone)
    voice_title = None if connected else voice_title  # the agent's name says more
    end_label = _("End call") if connected or ticket.on_the_phone else _("Cancel call")
    replies = [_(label) for label in REPLIES.values()]
    label_text = _("Tell us what happened:")
    if m.landscape and not m.large_text:  # the call's end at the top right, above the replies: the talk gets the height
        top, body = rows(inner, [m.target, Flex()], m.gap)
        title_box, cancel_box = cols(top, [Flex(), m.px(290)], m.gap * 2)
        talk_box, right = cols(body, [Flex(), m.px(290)], m.gap * 2)
        label_box, *reply_boxes = rows(right, [m.px(30)] + [Flex()] * len(REPLIES), m.gap)
    else:  # portrait and large text: the replies two by two under the conversation, or one a row if words are long
        per_row = 2 if all(frame.button_width(word) <= (inner.w - m.gap) // 2 for label in replies
                           for word in label.split()) else 1
        width = (inner.w - m.gap * (per_row - 1)) // per_row
        reply_rows = [max(m.target, max(frame.height_of(label, width - m.px(12), m.small, True)
                                        for label in replies[i:i + per_row]) + m.px(8))
                      for i in range(0, len(replies), per_row)]
        label_height = 0 if m.landscape else frame.height_of(label_text, inner.w, m.body, True)  # the replies say it
        title = voice_title or (printable(frame, _("{agent} is helping you").format(agent=agent_name(ticket, _)))
                                if connected else _("A person is being called"))
        end_width = frame.button_width(end_label) + m.px(24)
        if m.landscape:  # the call's end beside the title
            title_height = max(m.target, frame.height_of(title, inner.w - end_width - 2 * m.gap, m.title_min, True))
        else:
            title_height = max(m.px(100), frame.height_of(title, inner.w, m.title_min, True))
        fixed = title_height + label_height + sum(reply_rows) + m.gap * (len(reply_rows) + 2) + (
            0 if m.landscape else m.target + m.gap)
        if ticket.conversation and m.large_text and inner.h - fixed < _least_height(
                frame, _line(frame, ticket.conversation[-1], state, now), inner.w):
            reply_rows, label_height = [], 0  # the newest words need the room: the replies come back after them
        if m.landscape:
            top, talk_box, label_box, *reply_bands = rows(inner, [title_height, Flex(), label_height, *reply_rows],
                                                          m.gap)
            title_box, cancel_box = cols(top, [Flex(), end_width], m.gap * 2)
            cancel_box = centred(pygame.Rect(cancel_box.x, top.y, cancel_box.w, m.target), cancel_box.w)
        else:
            title_box, talk_box, label_box, *reply_bands, cancel_row = rows(
                inner, [title_height, Flex(), label_height, *reply_rows, m.target], m.gap)
            cancel_box = centred(cancel_row, max(m.px(300), frame.button_width(end_label)))
        reply_boxes = [box for band in reply_bands for box in cols(band, [Flex()] * per_row, m.gap)]
    if connected:
        _title_with_name(frame, ticket, title_box)
    else:
        say(frame, voice_title or _("A person is being called"), title_box, size=m.title, min_size=m.title_min,
            bold=True, bg=p.card, valign="middle")
    quiet = connected or ticket.call is not None  # nobody to wait for, or the voice call's line says it
    waiting = [] if quiet else [Said(_("Your call has been received. Please stay here."), True, p.fg)]
    said = voice_said + waiting + ([] if connected else [Said(_waited(ticket, now, _), False, p.fg)])
    _conversation(frame, talk_box, said, [_line(frame, line, state, now) for line in ticket.conversation])
    if label_box.h:
        say(frame, label_text, label_box, size=m.body, bold=True, bg=p.card, valign="bottom")
    for key, label, box in zip(REPLIES, replies, reply_boxes):
        frame.button(f"help:reply:{key}", label, box, size=m.small)
    frame.button("help:cancel", end_label, cancel_box)


def _line(frame: Frame, line: Line, state: State, now: datetime) -> Said:
    """One conversation line in the parker's words: agents prominent, the parker's own replies quieter."""
    _, p = frame._, frame.palette
    if line.author == "courtesy":
        if line.until is None:
            return Said(_("Free parking for {plate}").format(plate=line.text), True, p.fg)
        until = format_when(line.until, now, state.settings.zone.timezone, state.language)
        return Said(_("Free parking for {plate} until {time}").format(plate=line.text, time=until), True, p.fg)
    if line.author == "parker":
        key = _REPLY_KEYS.get(line.text)
        return Said(_("You: {text}").format(text=_(REPLIES[key]) if key else line.text), False, p.muted)
    return Said(line.text, True, p.fg, outside=True)


def _said_height(frame: Frame, block: Said, width: int, size: int) -> int:
    """The height block needs at this width and (snapped) size, drawn by say()."""
    text = unbreakable(frame, printable(frame, block.text), width, size, block.bold)
    return line_count(frame, text, width, size, block.bold) * frame.fonts.linesize(size, block.bold)


def _least_height(frame: Frame, block: Said, width: int) -> int:
    """The least height block needs without going below the reading mode's smallest size (for an agent's words too:
    the quick replies give way before they would shrink further)."""
    return _said_height(frame, block, width, frame.m.snap(frame.m.small))


def _conversation(frame: Frame, rect: pygame.Rect, fixed: list[Said], lines: list[Said]) -> None:
    """Fixed blocks at the top, then as many of the newest lines as fit, newest at the bottom. The newest line is
    always shown whole: fixed blocks give way to it, first to last, and in the end it shrinks to fit."""
    m, p = frame.m, frame.palette
    size, space = m.snap(m.body), m.px(8)

    def height(block: Said) -> int:
        return _said_height(frame, block, rect.w, size)
    newest = height(lines[-1]) if lines else 0
    while fixed and sum(height(block) + space for block in fixed) + newest > rect.h:
        fixed = fixed[1:]
    y = rect.y
    for block in fixed:
        box = pygame.Rect(rect.x, y, rect.w, rect.bottom - y)
        y += say(frame, block.text, box, size=size, bold=block.bold, fg=block.fg, bg=p.card).h + space
    shown: list[Said] = []
    room = rect.bottom - y
    for block in reversed(lines):
        need = height(block) + (space if shown else 0)
        if shown and need > room:
            break
        shown.insert(0, block)
        room -= need
    for block in shown:
        box = pygame.Rect(rect.x, y, rect.w, max(0, min(height(block), rect.bottom - y)))
        y += say(frame, block.text, box, size=size, min_size=_least_size(frame, block), bold=block.bold, fg=block.fg,
                 bg=p.card).h + space


def _least_size(frame: Frame, block: Said) -> int:
    """The size a conversation line may shrink to so as to be shown whole."""
    return frame.m.smallest if block.outside else frame.m.small
