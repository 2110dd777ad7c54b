"""A station's kiosk.toml from the example with some keys set, for provisioning/install.sh.

    station_config.py render EXAMPLE KEY=VALUE...   the example with those keys set, on standard output
    station_config.py differ FILE KEY=VALUE...      one line per key whose value in FILE is another
    station_config.py get FILE KEY                  one key's value

Keys are dotted (``station.id``, ``mqtt.host``) and must already be in the example, which keeps
its comments and order: only the value after ``key =`` is replaced. Values are strings. Exit 2
with a message on a key the file does not have. Standard library only (Python 3.11+).
"""
from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

SECTION = re.compile(r"\[\[?\s*([A-Za-z0-9_.]+)\s*\]\]?\s*(#.*)?$")
ASSIGNMENT = re.compile(r"([A-Za-z0-9_]+)\s*=")


class Refused(Exception):
    """A key that the file does not have, or an argument that is not KEY=VALUE."""


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or "." not in key:
            raise Refused(f"expected SECTION.KEY=VALUE, got {pair!r}")
        settings[key] = value
    return settings


def render(example: str, settings: dict[str, str]) -> str:
    """The example's text with each key's value replaced (TOML basic strings, which JSON strings are)."""
    section = ""
    done: set[str] = set()
    lines = example.splitlines(keepends=True)
    for i, line in enumerate(lines):
        header = SECTION.match(line.strip())
        if header:
            section = header.group(1)
            continue
        assignment = ASSIGNMENT.match(line)
        if assignment is None or f"{section}.{assignment.group(1)}" not in settings:
            continue
        name = assignment.group(1)
        key = f"{section}.{name}"
        if key in done:
            raise Refused(f"{key} is set twice in the example")
        lines[i] = f"{name} = {json.dumps(settings[key])}\n"
        done.add(key)
    missing = sorted(set(settings) - done)
    if missing:
        raise Refused(f"the example has no {', '.join(missing)}")
    text = "".join(lines)
    parsed = tomllib.loads(text)
    wrong = [key for key, value in settings.items() if lookup(parsed, key) != value]
    if wrong:
        raise Refused(f"could not set {', '.join(wrong)}")
    return text


def lookup(document: dict[str, Any], key: str) -> Any:
    value: Any = document
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise Refused(f"no {key}")
        value = value[part]
    return value


def main(argv: list[str]) -> int:
    try:
        if len(argv) >= 2 and argv[0] == "render":
            sys.stdout.write(render(Path(argv[1]).read_text(encoding="utf-8"), parse_pairs(argv[2:])))
            return 0
        if len(argv) >= 2 and argv[0] == "differ":
            document = tomllib.loads(Path(argv[1]).read_text(encoding="utf-8"))
            for key, wanted in parse_pairs(argv[2:]).items():
                try:
                    found = lookup(document, key)
                except Refused:
                    found = None
                if found != wanted:
                    sys.stdout.write(f"{key} is {json.dumps(found)}, not {json.dumps(wanted)}\n")
            return 0
        if len(argv) == 3 and argv[0] == "get":
            sys.stdout.write(f"{lookup(tomllib.loads(Path(argv[1]).read_text(encoding='utf-8')), argv[2])}\n")
            return 0
    except (Refused, OSError, tomllib.TOMLDecodeError) as exc:
        sys.stderr.write(f"station_config.py: {exc}\n")
        return 2
    sys.stderr.write(__doc__ or "")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
