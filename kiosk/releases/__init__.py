"""Releases of the station software: signed bundles, their download, side-by-side installation \
and the switch between them (standard library only)."""

__all__: list[str] = []
