"""`kiosk console`: its options, and its start; Textual is imported only when a console runs, never by the station."""
from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``kiosk console``."""
    parser.add_argument("--broker", required=True, metavar="URL",
                        help="mqtt://host[:1883] or mqtts://host[:8883] (TLS)")
    parser.add_argument("--agent", default=os.environ.get("USER") or "agent", metavar="NAME",
                        help="the name parkers' stations record for you (default: $USER)")
    parser.add_argument("--tls", action="store_true", help="use TLS also with mqtt:// (port 8883 unless given)")
    parser.add_argument("--ca", metavar="FILE", help="CA certificate(s) of the broker (default: the system's)")
    parser.add_argument("--cert", metavar="FILE", help="client certificate")
    parser.add_argument("--key", metavar="FILE", help="client certificate's key")
    parser.add_argument("--username", metavar="NAME", help="broker account")
    parser.add_argument("--password-file", metavar="FILE", help="file holding only the account's password")
    parser.add_argument("--log-file", metavar="FILE", help="write the console's log here (INFO and up)")


def run(args: argparse.Namespace) -> int:
    """Run the console (console.app.main): 2 for bad options or without Textual."""
    from console import app

    return app.main(args)
