"""A help ticket's voice call as the station sees it: its phases, why it failed, and who may call back."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class CallPhase(StrEnum):
    """Where a voice call is (``state`` of help/state's ``voice``; the ``call`` steps of event/help)."""

    DIALLING = "dialling"
    RINGING = "ringing"
    TALKING = "talking"
    ENDED = "ended"  # it was answered, then hung up (by either side)
    FAILED = "failed"  # it never got through: ``reason`` says why (a FailReason)


class CallDirection(StrEnum):
    """Who placed the call: the station (the help button) or an agent (a callback)."""

    OUTGOING = "outgoing"
    CALLBACK = "callback"


class FailReason(StrEnum):
    """Why a call never got through, as parkers and staff are told."""

    BUSY = "busy"  # 486, 600: every agent is on a call
    REJECTED = "rejected"  # 603, 403: declined
    NO_ANSWER = "no_answer"  # it rang, and nobody answered within voice.ring_timeout_s (or 408/480 from the far end)
    UNREACHABLE = "unreachable"  # 404, 5xx, no route, no registration, the user agent down, not even a ring
    CANCELLED = "cancelled"  # the station hung up before an answer (the parker cancelled, the ticket closed)


LIVE = frozenset({CallPhase.DIALLING, CallPhase.RINGING, CallPhase.TALKING})
_REASONS = frozenset(reason.value for reason in FailReason)

_FAILURES: dict[int, FailReason] = {486: FailReason.BUSY, 600: FailReason.BUSY, 603: FailReason.REJECTED,
                                    403: FailReason.REJECTED, 408: FailReason.NO_ANSWER, 480: FailReason.NO_ANSWER}
_STATUS = re.compile(r"\s*([1-6]\d\d)\b")


@dataclass(frozen=True)
class Call:
    """The ticket's latest voice call: ``id`` is the SIP Call-ID once known, ``uri`` the far end."""

    phase: CallPhase
    started: datetime
    ring_due: datetime | None = None  # an unanswered outgoing call is given up then
    direction: CallDirection = CallDirection.OUTGOING
    id: str = ""
    uri: str = ""
    reason: str = ""  # a FailReason when FAILED; the SIP reason as the user agent gave it when ENDED
    answered: datetime | None = None

    @property
    def live(self) -> bool:
        """Dialling, ringing or talking: the station has a call to hang up."""
        return self.phase in LIVE


def fail_reason(sip_reason: str) -> FailReason:
    """Why a call that was never answered closed, from the SIP status the user agent reports ("486 Busy Here");
    a FailReason's own value is itself."""
    if sip_reason in _REASONS:
        return FailReason(sip_reason)
    status = _STATUS.match(sip_reason)
    if status is None:
        return FailReason.UNREACHABLE
    return _FAILURES.get(int(status.group(1)), FailReason.UNREACHABLE)


def sip_address(uri: str) -> str:
    """``sip:user@host`` of a SIP URI or name-addr (host lower-case), without display name, port, parameters or headers."""
    text = uri.strip()
    if "<" in text and ">" in text:
        text = text[text.index("<") + 1:text.index(">")]
    text = re.split(r"[;?>]", text, maxsplit=1)[0].strip()
    scheme, _, rest = text.partition(":")
    if scheme.lower() not in ("sip", "sips") or not rest:
        return ""
    user, at, host = rest.rpartition("@")
    host = host[:host.index("]") + 1] if host.startswith("[") and "]" in host else re.sub(r":\d+$", "", host)
    return f"sip:{user}{at}{host.lower()}"


def may_call_back(caller: str, allowed: tuple[str, ...]) -> bool:
    """An incoming call from ``caller`` is an agent the operator allows to call the station back."""
    address = sip_address(caller)
    return bool(address) and address in {sip_address(uri) for uri in allowed}
