"""Named crash points for power-loss tests: the process kills itself where KIOSK_CRASHPOINT says."""
from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

ENV = "KIOSK_CRASHPOINT"


def reached(name: str) -> None:
    """Die at once with SIGKILL (no cleanup, like a power cut) if KIOSK_CRASHPOINT names this point."""
    if os.environ.get(ENV) == name:
        log.critical("crash point %s reached: killing the process", name)
        os.kill(os.getpid(), signal.SIGKILL)
