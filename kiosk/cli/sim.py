"""`kiosk sim`: one command to a running simulated station (`kiosk run --simulate`), and its answer."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from kiosk import config
from kiosk.cli.sim_protocol import USAGE, Answer, BadRequest, Code, request_from_words
from kiosk.cli.sim_socket import ANSWER_S, CLIENT_MARGIN_S, NoStation, ask, control_path

__all__ = ["EXIT_NO_STATION", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "add_arguments", "run", "seconds", "summary"]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_NO_STATION = 0, 1, 2, 3

EPILOG = f"""commands: {USAGE}

  press, release     the help button, through its simulated pin (held down until released)
  help               press and release: one press as the pin sees it
  step WORDS..       one scenario step (docs/scenarios.md): tap pay, type B-AB123, duration 60,
                     terminal decline 05, expect screen paid, screenshot FILE ...
  raise|clear FAULT  door (the cabinet door's switch), terminal-unreachable (the terminal's
                     cable), terminal-out-of-order (the terminal's status DF)
  state              the station's screen, help ticket, door and faults

exit 0 when done, 1 when the station refused, 2 for a command or step that is not one, 3 when no station answers."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options and words of `kiosk sim`."""
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--control", type=Path, metavar="PATH", help="the station's control socket")
    where.add_argument("--station", metavar="ID", help="the station id whose socket to find "
                                                       "($XDG_RUNTIME_DIR/kiosk/ID.sock)")
    where.add_argument("--config", type=Path, metavar="FILE", help="the station's configuration (its id and database)")
    parser.add_argument("--json", action="store_true", help="print the station's answer as its line of JSON")
    parser.add_argument("--timeout", type=seconds, default=ANSWER_S + CLIENT_MARGIN_S, metavar="S",
                        help="how long to wait for the answer (default %(default)g s)")
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="COMMAND ...")


def seconds(text: str) -> float:
    """A --timeout: a number of seconds above 0 (argparse says so otherwise)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, e.g. 30, got {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds above 0 and at most 3600, got {text!r}")
    return value


def run(args: argparse.Namespace, settings: config.Settings) -> int:
    """Send the command to the station ``settings`` describe (or ``--control``/``--station``'s) and print the answer."""
    try:
        request = request_from_words(list(args.words))
    except BadRequest as exc:
        sys.stderr.write(f"kiosk sim: {exc}\n")
        return EXIT_USAGE
    path = args.control or control_path(args.station or settings.station.id, Path(settings.storage.database),
                                        os.environ)
    try:
        answer = ask(path, request, args.timeout)
    except NoStation as exc:
        sys.stderr.write(f"kiosk sim: {exc}\n")
        return EXIT_NO_STATION
    if args.json:
        sys.stdout.write(answer.line().decode())
    elif answer.ok:
        sys.stdout.write(f"{answer.detail}\n{summary(answer)}\n")
    if not answer.ok:
        sys.stderr.write(f"kiosk sim: {answer.code}: {answer.detail}\n")
        return EXIT_USAGE if answer.code is Code.BAD_REQUEST else EXIT_REFUSED
    return EXIT_OK


def summary(answer: Answer) -> str:
    """The station's state after the command, in one line."""
    state = answer.state or {}
    faults = ", ".join(state.get("faults") or []) or "none"
    simulated = ", ".join(state.get("simulated") or []) or "none"
    return (f"station {state.get('station')}: screen {state.get('screen')}, help {state.get('help') or 'none'}, "
            f"button {state.get('button')}, door {state.get('door')}; faults: {faults}; simulated: {simulated}")
