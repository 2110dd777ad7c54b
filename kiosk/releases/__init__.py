"""Releases of the station software: signed bundles, download, side-by-side installation, switch, trial and rollback.

No third-party package: systemd's guard runs this before any station code (docs/updates.md).
"""

__all__: list[str] = []
