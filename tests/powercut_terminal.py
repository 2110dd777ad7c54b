"""The power-cut matrix's card terminal: the ZVT simulator in its own process, scripted per payment on stdin.

Run by tests/powercut.py for set-up A ("the terminal survives"): it outlives every station
process, as a real terminal with its own power supply does. It prints `ready SLAVE_PATH` once
it serves the pty behind `--link`; then each line on stdin (SIMULATOR_WORDS of kiosk/cli/scenario.py,
e.g. `decline 05 Declined`) becomes the behaviour of the next payment, replacing any behaviour a
power-cut journey left unused, and is answered `scripted`. It stops at the end of stdin.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from drivers.payment.zvt.simulator import PAIRINGS, Simulator, open_pty
from kiosk.cli.scenario import script_simulator

log = logging.getLogger("powercut.terminal")

READY, SCRIPTED = "ready", "scripted"


def main(argv: list[str] | None = None) -> int:
    """Serve the terminal until stdin ends."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--link", type=Path, required=True, help="symlink to the pty, the station's terminal.port")
    parser.add_argument("--journal", type=Path, required=True, help="the terminal's memory (JSON lines)")
    parser.add_argument("--answer-timeout", type=float, required=True, help="seconds the PT waits for an answer")
    parser.add_argument("--ask-again", type=float, required=True, help="seconds before the PT asks again after 84 9C")
    parser.add_argument("--t2", type=float, required=True, help="the link's ACK timer in seconds (ZVT: 5)")
    parser.add_argument("--pairing", choices=PAIRINGS, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    pty = open_pty(args.link)
    terminal = Simulator(pty.master_fd, args.journal, answer_timeout_s=args.answer_timeout,
                                ask_again_s=args.ask_again, t2_s=args.t2, pairing=args.pairing)
    try:
        terminal.start()
        log.info("terminal on %s (%s pairing), journal %s", pty.slave_path, args.pairing, args.journal)
        print(READY, pty.slave_path, flush=True)
        for line in sys.stdin:  # the next payment's behaviour, never queued behind one a cut journey left unused
            terminal.clear_script()
            script_simulator(terminal, line.split())
            log.info("next payment: %s", line.strip())
            print(SCRIPTED, flush=True)
        return 0
    finally:
        terminal.stop()
        pty.close()


if __name__ == "__main__":
    sys.exit(main())
