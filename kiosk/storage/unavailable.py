"""The Store stand-in while no database could be opened: every call raises StorageError, and it says it is not usable."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from kiosk.ports import StorageError

__all__ = ["UnavailableStore"]

DETAIL = "no database could be opened since the station started"


class UnavailableStore:
    """Implements the Store port when there is no database: ``usable`` is False, everything else refuses.

    The application asks ``usable`` where a missing database changes what it does (a fact kept
    in memory, a help call sent directly); anything that reaches the store anyway gets the
    StorageError of ``reason`` (the storage fault's code at start), never a silent success.
    """

    def __init__(self, reason: str, path: Path) -> None:
        StorageError(reason, path, DETAIL)  # refuses a reason that is not a storage fault code
        self._reason = reason
        self._path = Path(path)

    @property
    def usable(self) -> bool:
        """Never: no database is open."""
        return False

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise StorageError(self._reason, self._path, DETAIL)

    active_session = begin_payment = commit_paid_session = fail_payment = mark_confirmed = _refuse
    mark_unreconciled = reverse_unconfirmed_payment = resolve_pending_payments = unconfirmed_payments = _refuse
    grant_courtesy_session = save_feedback = open_help_ticket = open_help_ticket_record = record_help = _refuse
    active_faults = raise_fault = clear_fault = sync_faults = raised_since = note_repair = _refuse
    unsent_outbox = mark_sent = outbox_depth = prune_sent = retained_messages = _refuse
    next_boot = adopt_boot = begin_command = finish_command = prune_commands = _refuse
    notice = set_notice = outage = set_outage = _refuse
    remote_config = report_config = save_remote_config = record_terminal_report = record_service = _refuse
    record_update = rows = _refuse

    @property
    def boot(self) -> int:
        """Refused: no database counts boots."""
        self._refuse()

    @property
    def series(self) -> str:
        """Refused: no database holds an event series."""
        self._refuse()

    @property
    def replaced_at(self) -> datetime | None:
        """Refused."""
        self._refuse()

    @property
    def outbox_writes(self) -> int:
        """Refused."""
        self._refuse()

    def close(self) -> None:
        """Nothing to close."""
