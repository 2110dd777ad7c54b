"""The `kiosk terminal` commands: a ZVT terminal simulator for people, and maintenance commands for a real terminal."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kiosk import config
from kiosk.cli.scenario import SIMULATOR_WORDS as SIMULATOR_LINES
from kiosk.cli.scenario import script_simulator
from kiosk.storage.payments import count_owed

log = logging.getLogger("kiosk.terminal")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_AMOUNT = 10**12 - 1  # BMP 04: 6 BCD bytes
STATION_CONFIG = Path("/etc/kiosk/kiosk.toml")
RESYNC_LIMIT_S = 210.0  # T4 and a vending window: a terminal still talking after that is not going to stop


def add_terminal_commands(commands: Any) -> None:
    """Add `kiosk terminal simulate|status|pay|reverse|end-of-day` to the CLI's subcommands."""
    terminal = commands.add_parser("terminal", help="card terminal: simulator and maintenance commands")
    actions = terminal.add_subparsers(required=True, metavar="ACTION")

    simulate = actions.add_parser("simulate", help="run a ZVT terminal simulator on a new pseudo-terminal")
    simulate.add_argument("--link", type=Path, required=True,
                          help="symlink to create to the pseudo-terminal; give it to the station as terminal.port")
    simulate.add_argument("--journal", type=Path, help="the simulated terminal's memory (JSON lines)")
    simulate.add_argument("--script", type=Path, help=f"a file of behaviours, one per line: {SIMULATOR_LINES}")
    simulate.add_argument("--next", action="append", default=[], metavar="BEHAVIOUR",
                          help='what to do next, e.g. "decline 05" or "inject nak" (repeatable)')
    simulate.add_argument("--pairing", choices=["loose", "strict"], default="loose",
                          help="loose (default): an answer already waiting is taken for the next question's, as on "
                               "some real terminals; strict: only an answer that follows the question counts")
    simulate.set_defaults(command=_simulate)

    for name, help_text in (("status", "ask the terminal for its status"),
                            ("pay", "make a test payment (booked at once)"),
                            ("reverse", "reverse a payment by its receipt number"),
                            ("end-of-day", "settle the day and print the totals")):
        action = actions.add_parser(name, help=help_text)
        if name == "pay":
            action.add_argument("amount", help="amount in major units, e.g. 1.90")
        if name == "reverse":
            action.add_argument("receipt", type=int, help="receipt number of the payment")
        action.add_argument("--port", required=True, help="serial port of the terminal, e.g. /dev/ttyUSB0")
        action.add_argument("--baud", type=int, default=9600, choices=[9600, 19200, 38400, 57600, 115200])
        action.add_argument("--password", default="000000", help="terminal password, six digits")
        action.add_argument("--currency", default="EUR", help="ISO 4217 currency (default EUR)")
        action.add_argument("--json", action="store_true", help="print the result as JSON")
        if name in ("pay", "end-of-day"):
            action.add_argument("--config", type=Path, default=STATION_CONFIG,
                                help=f"the station's configuration, to refuse while its database owes the terminal "
                                     f"a payment (default {STATION_CONFIG}; skipped if absent)")
            action.add_argument("--force", action="store_true", help="go ahead even then")
        action.add_argument("--quiet-ms", type=int, default=6000, metavar="MS",
                            help="first read and answer what the terminal still sends until the line has been "
                                 "quiet this long (default 6000, more than the terminal's 5 s repeat timer)")
        action.set_defaults(command=_maintenance, action=name)


def _simulate(args: argparse.Namespace) -> int:
    from drivers.payment.zvt.simulator import Simulator, open_pty

    lines: list[tuple[str, list[str]]] = [(f"--next {text!r}", text.split()) for text in args.next]
    if args.script is not None:
        try:
            text = args.script.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"{args.script}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        lines += [(f"{args.script}:{n}", line.split()) for n, line in enumerate(text.splitlines(), 1)
                  if line.strip() and not line.lstrip().startswith("#")]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    pty = open_pty(args.link)
    simulator = Simulator(pty.master_fd, args.journal, pairing=args.pairing)
    try:
        for where, words in lines:
            try:
                script_simulator(simulator, words)
            except (ValueError, IndexError) as exc:
                print(f"{where}: {exc}; expected {SIMULATOR_LINES}", file=sys.stderr)
                return EXIT_USAGE
        simulator.start()
        log.info("terminal simulator listening on %s (-> %s); stop with Ctrl-C", args.link, pty.slave_path)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return EXIT_OK
    finally:
        simulator.stop()
        pty.close()


def _maintenance(args: argparse.Namespace) -> int:
    from drivers.payment.zvt import messages
    from drivers.payment.zvt.driver import end_of_day_data, result_data, serial_opener, status_data
    from drivers.payment.zvt.ecr import CommandRefused, EcrSession, TerminalUnreachable
    from drivers.payment.zvt.link import Link

    try:
        currency = messages.currency_code(args.currency)
        amount = config.parse_amount(args.amount, args.currency) if args.action == "pay" else 0
        if args.action == "pay" and not 0 < amount <= MAX_AMOUNT:
            raise ValueError(f"the amount must be more than 0 and at most {MAX_AMOUNT} minor units, got {args.amount}")
        if args.action == "reverse" and not 1 <= args.receipt <= 9999:
            raise ValueError(f"a receipt number is 1 to 9999, got {args.receipt}")
        if not 100 <= args.quiet_ms <= 60000:
            raise ValueError(f"--quiet-ms must be 100 to 60000, got {args.quiet_ms}")
        messages.status_enquiry(args.password)
    except ValueError as exc:
        print(f"kiosk terminal {args.action}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.action in ("pay", "end-of-day") and not args.force:
        refusal = _station_owes(args.config)
        if refusal:
            print(f"kiosk terminal {args.action}: {refusal}", file=sys.stderr)
            return EXIT_USAGE
    try:
        port = serial_opener(args.port, args.baud)()
    except OSError as exc:
        print(f"{args.port}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    session = EcrSession(Link(port), args.password, currency=currency)
    report: Callable[[dict[str, Any], bool], int] = lambda data, ok: _report(data, ok, args.json)
    try:
        session.resync(args.quiet_ms / 1000, RESYNC_LIMIT_S)
        if args.action == "status":
            status = status_data(session.status())
            return report(status, status["ready"])
        registered = session.register()
        if args.action == "pay":
            outcome = session.pay(amount, on_status=lambda shown: print(f"terminal: {shown.text}", file=sys.stderr),
                                  decide=lambda info: True)
            data = {"result": outcome.ending, "result_code": f"{outcome.result_code:02X}", "text": outcome.text,
                    "amount": amount, "currency": args.currency, "terminal_id": registered.terminal_id}
            if outcome.approval is not None:
                data.update(asdict(result_data(outcome.approval)), result_code=f"{outcome.result_code:02X}")
            return report(data, outcome.ending == "booked")
        if args.action == "reverse":
            reversal = session.reverse(args.receipt)
            data = {"reversed": reversal.reversed, "result_code": f"{reversal.result_code:02X}", "text": reversal.text,
                    "receipt_no": f"{args.receipt:04d}"}
            return report(data, reversal.reversed)
        day = session.end_of_day()
        return report(end_of_day_data(day), day.result_code == 0)
    except (TerminalUnreachable, CommandRefused) as exc:
        return report({"error": str(exc)}, False)
    finally:
        port.close()


def _station_owes(config_file: Path) -> str:
    """Why a payment or end of day made without the station must wait ('' if it need not).

    A station that lost power may owe the terminal a payment it settles by receipt number at
    its next start; a payment or end of day made meanwhile could give that receipt number to
    another payment (docs/terminal.md).
    """
    from drivers.payment.zvt.faults import COMPONENT

    if not config_file.exists():
        return ""
    try:
        database = Path(config.load(config_file).storage.database)
    except config.ConfigError as exc:
        return f"{config_file}: {exc.problems[0]}; use --config or --force"
    try:
        owed = count_owed(database, COMPONENT)
    except sqlite3.Error as exc:
        return f"cannot read the station's database {database}: {exc}; use --force to go ahead anyway"
    if owed:
        return (f"the station's database {database} owes the terminal {owed} payment(s) from before a power cut: "
                f"start the station once so that it settles them (or use --force)")
    return ""


def _report(data: dict[str, Any], ok: bool, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"ok": ok, **data}, ensure_ascii=False))
    else:
        for key, value in data.items():
            if value not in (None, "", []):
                print(f"{key.replace('_', ' ')}: {value}")
    return EXIT_OK if ok else EXIT_FAILED
