"""Repeated warnings are logged once, counted, and said again with their count after the window."""
from __future__ import annotations

import logging

from kiosk.cli.quiet_logs import MAX_KEYS, RepeatFilter


def record(message: str, level: int = logging.WARNING, *args: object, name: str = "kiosk.mqtt.client") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_a_repeated_warning_is_logged_once_then_with_its_count() -> None:
    now = [0.0]
    quiet = RepeatFilter(window=600, clock=lambda: now[0])
    refused = "MQTT connection to %s failed: %s"
    assert quiet.filter(record(refused, logging.WARNING, "pbx:8883", "Connection refused"))
    for second in range(1, 60):
        now[0] = second * 10
        assert not quiet.filter(record(refused, logging.WARNING, "pbx:8883", "Connection refused"))
    assert quiet.filter(record(refused, logging.WARNING, "pbx:8883", "timed out")), "another message is news"
    assert quiet.filter(record("connected", logging.INFO)) and quiet.filter(record("connected", logging.INFO))
    now[0] = 600
    again = record(refused, logging.WARNING, "pbx:8883", "Connection refused")
    assert quiet.filter(again)
    assert again.getMessage() == ("MQTT connection to pbx:8883 failed: Connection refused "
                                  "(59 more like it in the last 600 s)")
    now[0] = 601
    assert not quiet.filter(record(refused, logging.WARNING, "pbx:8883", "Connection refused")), "counted afresh"


def test_the_same_text_from_another_logger_or_level_is_another_message_and_memory_is_bounded() -> None:
    quiet = RepeatFilter(window=600, clock=lambda: 0.0)
    assert quiet.filter(record("disk full", logging.ERROR, name="kiosk.storage"))
    assert quiet.filter(record("disk full", logging.WARNING, name="kiosk.storage"))
    assert quiet.filter(record("disk full", logging.ERROR, name="kiosk.app"))
    for n in range(MAX_KEYS + 10):
        quiet.filter(record(f"message {n}"))
    assert quiet.filter(record("message 0")), "the oldest was forgotten"


def test_the_command_filters_only_its_own_handler_never_one_its_host_installed(capsys) -> None:
    """Run in-process (the scenario tests do), `kiosk` once added its filter to the test runner's log handlers: later
    tests in the same process lost the warnings it had seen already."""
    from kiosk.cli.main import main

    hosts = logging.Handler()
    root = logging.getLogger()
    root.addHandler(hosts)
    try:
        assert main(["version"]) == 0
        assert hosts.filters == []
    finally:
        root.removeHandler(hosts)
