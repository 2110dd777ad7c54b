"""Touchscreen views (pygame): one module per screen, shared widgets, theme, fonts and i18n."""
