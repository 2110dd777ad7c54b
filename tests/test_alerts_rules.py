"""The alert bridge's configuration (bridge/rules.py): the example is valid, every bad value is named, --check exits 2."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from alerts_kit import config_text
from conftest import ROOT

from bridge.rules import ConfigError, SmtpSettings, WebhookFormat, When, load, parse, read_secret
from kiosk.cli.main import main

EXAMPLE = ROOT / "provisioning" / "alerts.example.toml"


def good() -> dict[str, Any]:
    return tomllib.loads(config_text(Path("/var/lib/alerts.db"), 1883, 25, "https://hooks.example.org"))


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(data)
    return caught.value.problems


def test_the_example_configuration_is_valid_and_reads_as_documented() -> None:
    rules = load(EXAMPLE)
    assert (rules.broker.host, rules.broker.port, rules.broker.tls) == ("broker.example.org", 8883, True)
    assert (rules.bridge.grace_s, rules.bridge.lost_grace_s, rules.bridge.escalate_after_s) == (120, 300, 900)
    assert [route.group for route in rules.routes] == ["night", "crew-nord", "leads", "crew-nord"]
    assert rules.routes[0].when is When.NIGHT and rules.webhooks["crew-nord-phones"].format is WebhookFormat.NTFY
    assert rules.routes[-1].catch_all and rules.groups["crew-nord"].escalate_to == "leads"


def test_defaults_apply_to_what_is_left_out() -> None:
    data = good()
    for key in ("grace_s", "lost_grace_s", "flap_window_s", "flap_threshold", "fleet_threshold", "fleet_window_s",
                "escalate_after_s", "retry_s", "send_timeout_s", "night", "timezone"):
        data["bridge"].pop(key)
    settings = parse(data).bridge
    assert (settings.grace_s, settings.lost_grace_s, settings.flap_window_s, settings.flap_threshold,
            settings.fleet_threshold, settings.fleet_window_s, settings.escalate_after_s, settings.retry_s,
            settings.send_timeout_s, str(settings.night_start), str(settings.night_end), str(settings.timezone)) == (
        120, 300, 900, 3, 5, 600, 900, 60, 10, "22:00:00", "06:00:00", "UTC")


def change(path: str, value: Any) -> dict[str, Any]:
    """The good configuration with one value set (``None`` removes it); ``a.b`` or ``people[0].email``."""
    data = good()
    *parents, last = path.split(".")
    here: Any = data
    for part in parents:
        name, _, index = part.partition("[")
        here = here[name] if not index else here[name][int(index.rstrip("]"))]
    name, _, index = last.partition("[")
    if index:
        here = here[name]
        name = int(index.rstrip("]"))  # type: ignore[assignment]
    if value is None:
        del here[name]
    else:
        here[name] = value
    return data


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("colour", "red", "colour: unknown key"),
    ("broker.url", "http://x", "broker.url: must be mqtt://host[:port] or mqtts://host[:port], got 'http://x'"),
    ("broker.url", "mqtt://u:p@x", "broker.url: only mqtt[s]://host[:port]: give the account with username and "
                                   "password_file"),
    ("broker.password_file", "/etc/p", "broker.password_file: needs username"),
    ("broker.ca", "/etc/ca.crt", "broker.ca: needs an mqtts:// url"),
    ("broker.port", 1883, "broker.port: unknown key"),
    ("bridge.database", "alerts.db", "bridge.database: must be an absolute path of a file, got 'alerts.db'"),
    ("bridge.database", "/", "bridge.database: must be an absolute path of a file, got '/'"),
    ("bridge.database", "/var/lib/alerts/", "bridge.database: must be an absolute path of a file, got '/var/lib/alerts/'"),
    ("bridge.database", None, "bridge.database: required (an absolute path of a file)"),
    ("bridge.give_up_s", 59, "bridge.give_up_s: must be 60 to 2592000 seconds, got 59"),
    ("bridge.broker_down_alert_s", 0, "bridge.broker_down_alert_s: must be 10 to 86400 seconds, got 0"),
    ("bridge.settle_s", 61, "bridge.settle_s: must be 0 to 60 seconds, got 61"),
    ("smtp.host", "mail server", "smtp.host: must be a host name or [IPv6 address], got 'mail server'"),
    ("smtp.host", "mail.example.org\r\nX: y", "smtp.host: must be a host name or [IPv6 address], got "
                                              "'mail.example.org\\r\\nX: y'"),
    ("smtp.ca", "/etc/kiosk/smtp-ca.crt", "smtp.ca: needs starttls = true"),
    ("smtp.allow_plain_login", "yes", "smtp.allow_plain_login: must be true or false, got 'yes'"),
    ("bridge.grace_s", -1, "bridge.grace_s: must be 0 to 86400 seconds, got -1"),
    ("bridge.grace_s", True, "bridge.grace_s: must be 0 to 86400 seconds, got True"),
    ("bridge.grace_s", "120", "bridge.grace_s: must be 0 to 86400 seconds, got '120'"),
    ("bridge.flap_threshold", 1, "bridge.flap_threshold: must be a whole number from 2 to 1000, got 1"),
    ("bridge.fleet_threshold", 2.5, "bridge.fleet_threshold: must be a whole number from 2 to 100000, got 2.5"),
    ("bridge.escalate_after_s", 0, "bridge.escalate_after_s: must be 1 to 604800 seconds, got 0"),
    ("bridge.night", "22-06", "bridge.night: must be \"HH:MM-HH:MM\", two different times, got '22-06'"),
    ("bridge.night", "06:00-06:00", "bridge.night: must be \"HH:MM-HH:MM\", two different times, got '06:00-06:00'"),
    ("bridge.timezone", "Mars/Olympus", "bridge.timezone: must be an IANA time zone such as Europe/Berlin, "
                                        "got 'Mars/Olympus'"),
    ("bridge.crew_page_url", "ftp://x/", "bridge.crew_page_url: must be an http(s):// address without #, got 'ftp://x/'"),
    ("bridge.crew_page_url", "https://x/?a=1", "bridge.crew_page_url: must have no ?query (the bridge adds "
                                               "?station=...)"),
    ("smtp.port", 0, "smtp.port: must be a port 1 to 65535, got 0"),
    ("smtp.from", None, "smtp.from: required (a sender such as Alerts <alerts@example.org>)"),
    ("smtp.username", "me", "smtp: username and password_file go together"),
    ("smtp.username", "me", "smtp.username: a login over plain SMTP sends the password readable: use starttls = true, "
                            "or set allow_plain_login = true if the mail server is on this machine"),
    ("smtp", None, "smtp: required, since people have e-mail addresses"),
    ("webhooks[0].format", "slack", "webhooks[0].format: must be \"ntfy\" or \"json\", got 'slack'"),
    ("webhooks[1].name", "phones", "webhooks[1].name: 'phones' is named twice"),
    ("webhooks[0].url", "file:///etc/passwd", "webhooks[0].url: must be an http(s):// address, got 'file:///etc/passwd'"),
    ("people[0].email", "anna", "people[0].email: must be an e-mail address, got 'anna'"),
    ("people[0].email", "a@b.org\nBcc: x@y.org", "people[0].email: must be an e-mail address, got 'a@b.org\\nBcc: "
                                                 "x@y.org'"),
    ("people[0].webhook", "pager", "people[0].webhook: no [[webhooks]] entry is named 'pager'"),
    ("people[1].email", None, "people[1]: give email, webhook or both"),
    ("people[0].name", "anna smith", "people[0].name: must be an account name ([A-Za-z0-9_.-], up to 64), "
                                     "got 'anna smith'"),
    ("groups[0].members", [], "groups[0].members: must be a non-empty list of [[people]] names, got []"),
    ("groups[0].members", ["crew-zoe"], "groups[0].members: no [[people]] entry is named 'crew-zoe'"),
    ("groups[0].escalate_to", "bosses", "groups[0].escalate_to: no [[groups]] entry is named 'bosses'"),
    ("groups[1].escalate_to", "crew-nord", "groups[0].escalate_to: escalating from 'crew-nord' leads back to it "
                                           "(a circle)"),
    ("routes[0].when", "sometimes", "routes[0].when: must be any, night, day, weekend or weekday, got 'sometimes'"),
    ("routes[0].severities", ["fatal"], "routes[0].severities: must be a non-empty list of critical, warning, info, "
                                        "got ['fatal']"),
    ("routes[0].problems", ["fire"], "routes[0].problems: must be a non-empty list of lost, fault, fleet_fault, "
                                     "fleet_lost, help, got ['fire']"),
    ("routes[0].group", "nobody", "routes[0].group: no [[groups]] entry is named 'nobody'"),
    ("routes[1].zones", "Altstadt *", "routes[1].zones: must be a non-empty list of zone patterns, got 'Altstadt *'"),
    ("routes[2].when", "day", "routes[2]: the last route is the fallback and must have no conditions (no zones, "
                              "stations, severities, components, problems; when = any)"),
    ("routes[1].zones", None, "routes[1]: matches everything, so the routes after it never apply (only the last "
                              "route may be the fallback)"),
    ("routes", [], "routes: at least one [[routes]] entry is required, the last one without conditions"),
    ("people", {"name": "x"}, "people: must be an array of tables ([[people]])"),
])
def test_every_bad_value_is_named(path: str, value: Any, expected: str) -> None:
    found = problems(change(path, value))
    assert expected in found, found


def test_check_prints_every_problem_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "alerts.toml"
    bad.write_text(config_text(Path("/var/lib/a.db"), 1883, 25, "https://h.example.org").replace(
        'timezone = "Europe/Berlin"', 'timezone = "Europe/Nowhere"\ncolour = 1'), encoding="utf-8")
    assert main(["alerts", "--check", str(bad)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{bad}: bridge.timezone: must be an IANA time zone such as Europe/Berlin, got 'Europe/Nowhere'",
        f"{bad}: bridge.colour: unknown key", f"{bad}: 2 problem(s)"]
    example = tmp_path / "example.toml"  # the example with its files in tmp_path
    text = EXAMPLE.read_text(encoding="utf-8")
    for name in ("alerts.password", "fleet-ca.crt", "smtp.password", "oncall.token"):
        (tmp_path / name).write_text("secret\n", encoding="utf-8")
        text = text.replace(f"/etc/kiosk/{name}", str(tmp_path / name))
    example.write_text(text, encoding="utf-8")
    assert main(["alerts", "--check", str(example)]) == 0
    assert capsys.readouterr().out == f"{example}: valid: 4 routes, 3 groups, 4 people, 2 webhooks\n"
    assert main(["alerts", "--check", str(tmp_path / "missing.toml")]) == 2
    assert "No such file or directory" in capsys.readouterr().err
    (tmp_path / "broken.toml").write_text("[bridge\n", encoding="utf-8")
    assert main(["alerts", "--check", str(tmp_path / "broken.toml")]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_accounts_are_named_as_the_broker_tool_names_them() -> None:
    data = change("people[0].name", "_crew.anna")
    data["groups"][0]["members"][0] = "_crew.anna"
    data["broker"]["username"] = ".bridge"
    config = parse(data)
    assert "_crew.anna" in config.people and config.broker.username == ".bridge"


def test_an_escalation_problem_names_its_own_group_when_an_earlier_group_is_unnamed() -> None:
    data = good()
    data["groups"].insert(0, {"members": ["crew-anna"]})
    data["groups"][2]["escalate_to"] = "bosses"  # the group "leads", now the third
    found = problems(data)
    assert found == ["groups[0].name: required (a name ([A-Za-z0-9_.-], up to 64))",
                     "groups[2].escalate_to: no [[groups]] entry is named 'bosses'"]


def test_a_plain_login_needs_allow_plain_login() -> None:
    data = change("smtp.username", "alerts")
    data["smtp"]["password_file"] = "/etc/kiosk/smtp.password"
    assert "smtp.username: a login over plain SMTP" in problems(data)[0]
    data["smtp"]["allow_plain_login"] = True
    assert parse(data).smtp == SmtpSettings("127.0.0.1", 25, "Pay stations <alerts@example.org>", False, "alerts",
                                            Path("/etc/kiosk/smtp.password"), None, True)


def test_missing_or_unusable_files_are_a_configuration_error_at_check_and_at_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token, password = tmp_path / "token", tmp_path / "password"
    token.write_text("to\x07ken\n", encoding="utf-8")
    password.write_text("\n", encoding="utf-8")
    config = tmp_path / "alerts.toml"
    text = config_text(tmp_path / "alerts.db", 1883, 25, "https://hooks.example.org").replace(
        'url = "mqtt://127.0.0.1:1883"', f'url = "mqtts://127.0.0.1:8883"\nusername = "alerts"\n'
                                         f'password_file = "{password}"\nca = "{tmp_path / "ca.crt"}"').replace(
        'format = "ntfy"', f'format = "ntfy"\ntoken_file = "{token}"')
    config.write_text(text, encoding="utf-8")
    expected = [f"{config}: broker.password_file: {password}: empty",
                f"{config}: webhooks 'phones' token_file: {token}: holds control characters (only a trailing newline "
                "is allowed)",
                f"{config}: broker.ca: {tmp_path / 'ca.crt'}: cannot read it: No such file or directory",
                f"{config}: 3 problem(s)"]
    for option in ("--check", "--config"):
        assert main(["alerts", option, str(config)]) == 2
        assert capsys.readouterr().err.splitlines() == expected
    token.write_text("token\r\n\n", encoding="utf-8")  # trailing newlines, as editors leave them, are not the token's
    assert read_secret(token) == "token"
