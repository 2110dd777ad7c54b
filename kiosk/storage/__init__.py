"""Storage adapter: the SQLite store (peewee) behind the Store port, and its stand-in while no database is usable."""

from kiosk.storage.errors import (
    FULL_BELOW_BYTES,
    REASONS,
    InvalidValue,
    NotOwed,
    Refused,
    StorageError,
    TicketNotOpen,
    UnknownRecord,
    WrongState,
    disk_is_full,
)
from kiosk.storage.help import courtesy_reason_suffix
from kiosk.storage.payments import count_owed
from kiosk.storage.store import Store

__all__ = [
    "FULL_BELOW_BYTES", "REASONS", "InvalidValue", "NotOwed", "Refused", "StorageError", "Store", "TicketNotOpen",
    "UnknownRecord", "WrongState", "count_owed", "courtesy_reason_suffix", "disk_is_full",
]
