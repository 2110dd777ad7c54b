"""The alert bridge `kiosk alerts`: stations' faults, lost links and unanswered help calls to crews."""
from __future__ import annotations

__all__: list[str] = []
