"""Printable per-station QR codes that open the crew page on that station (docs/broker.md "QR codes for the crew")."""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import segno
from broker_accounts import STATION_ID, STATION_ID_RULE, UsageError, read_stations_file

__all__ = ["COLUMNS", "ROWS", "checked_url", "code_svg", "dark_modules", "main", "page_svg", "station_url", "write_codes"]

ERROR_LEVEL = "m"  # 15 % of the code may be dirty or scratched
COLUMNS, ROWS = 3, 4  # codes per A4 sheet
PAGE_MM = (210, 297)
CODE_MM = 50  # the printed code without its quiet zone
QUIET = 4  # modules of white around a code (the QR standard's quiet zone)
LABEL_MM = 6  # the station id's font size under a code (smaller for a long id, so that it fits the code's width)
LABEL_CHAR = 0.6  # a character's width in the label's font, as a share of its size
SHEETS = "sheets"  # the folder of the A4 sheets, beside the codes (no station's file can be named like it)
USAGE_ERROR = 2


def checked_url(page_url: str) -> str:
    """The crew page's address as given, if it is https://HOST[:PORT]/PATH; UsageError otherwise."""
    problem = "expected https://HOST[:PORT]/PATH without '?', '#', a user or a space (e.g. https://broker.example.org:8885/)"
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in page_url):  # urlsplit drops tabs and newlines a code would keep
        raise UsageError(f"crew page URL {page_url!r} is not valid: {problem}")
    try:
        parts = urlsplit(page_url)
        port_ok = parts.port is None or 1 <= parts.port  # urlsplit raises for a port that is not 0..65535
    except ValueError:
        port_ok = False
    if (not port_ok or parts.scheme != "https" or not parts.hostname or parts.username is not None
            or parts.query or parts.fragment or "?" in page_url or "#" in page_url):
        raise UsageError(f"crew page URL {page_url!r} is not valid: {problem}")
    return page_url


def station_url(page_url: str, station: str) -> str:
    """The address a station's code opens: the crew page with ``?station=ID``; UsageError for a bad URL or id."""
    checked_url(page_url)
    if not STATION_ID.fullmatch(station):
        raise UsageError(f"station id {station!r} is not valid: expected {STATION_ID_RULE}")
    return f"{page_url}?station={station}"  # a station id needs no escaping in a query


def dark_modules(qr: segno.QRCode) -> list[tuple[int, int]]:
    """(column, row) of every dark module of ``qr``, without the quiet zone, row by row."""
    return [(x, y) for y, row in enumerate(qr.matrix_iter(border=0)) for x, dark in enumerate(row) if dark]


def _quiet_mm(qr: segno.QRCode) -> float:
    """The width of ``qr``'s quiet zone, printed CODE_MM wide."""
    return QUIET * CODE_MM / qr.symbol_size(border=0)[0]


def code_svg(qr: segno.QRCode, station: str, x_mm: float, y_mm: float) -> str:
    """SVG elements: ``qr`` as CODE_MM wide at (x_mm, y_mm) after its quiet zone, and ``station`` written under it.

    The id starts below the quiet zone and is never wider than the code with its quiet zone.
    """
    module, quiet = CODE_MM / qr.symbol_size(border=0)[0], _quiet_mm(qr)
    left, top = x_mm + quiet, y_mm + quiet
    size = min(LABEL_MM, math.floor(100 * (CODE_MM + 2 * quiet) / (LABEL_CHAR * len(station))) / 100)
    path = "".join(f"M{x} {y}h1v1h-1z" for x, y in dark_modules(qr))
    return (f'<g transform="translate({left:.3f} {top:.3f}) scale({module:.5f})"><path d="{path}"/></g>'
            f'<text x="{left + CODE_MM / 2:.3f}" y="{top + CODE_MM + quiet + size:.3f}" text-anchor="middle" '
            f'font-family="DejaVu Sans, Arial, sans-serif" font-size="{size:.2f}">{station}</text>')


def svg_document(width_mm: float, height_mm: float, body: str) -> str:
    """A standalone SVG of that size in millimetres (user units are millimetres)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
            f'width="{width_mm}mm" height="{height_mm}mm" viewBox="0 0 {width_mm} {height_mm}">'
            f'<rect width="100%" height="100%" fill="#fff"/>{body}</svg>\n')


def page_svg(codes: Sequence[tuple[str, segno.QRCode]]) -> str:
    """One A4 sheet with up to COLUMNS x ROWS codes, each with its station id under it."""
    cell_w, cell_h = PAGE_MM[0] / COLUMNS, PAGE_MM[1] / ROWS
    body = "".join(code_svg(qr, station, (i % COLUMNS) * cell_w + 2, (i // COLUMNS) * cell_h + 2)
                   for i, (station, qr) in enumerate(codes))
    return svg_document(*PAGE_MM, body)


def write_codes(page_url: str, stations: Sequence[str], out: Path) -> list[Path]:
    """Write out/ID.svg per station and out/sheets/sheet-N.svg (A4, COLUMNS x ROWS each); the files written, in order.

    UsageError (nothing written) for a bad URL, a bad station id, a station given twice (also in another case:
    their files would be one on a file system that ignores case) or none.
    """
    problems, urls = [], {}
    for station in stations:
        try:
            urls[station] = station_url(page_url, station)
        except UsageError as error:
            problems.append(str(error))
    folded = [s.casefold() for s in stations]
    problems += [f"station id {s!r} is given more than once (case does not count)"
                 for s in sorted({s for s in stations if folded.count(s.casefold()) > 1})]
    if not stations:
        problems.append("no stations: give --station or --stations-file")
    if problems:
        raise UsageError("\n".join(dict.fromkeys(problems)))
    codes = [(station, segno.make(url, error=ERROR_LEVEL, micro=False, boost_error=False))
             for station, url in urls.items()]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for station, qr in codes:
        path = out / f"{station}.svg"
        side = CODE_MM + 2 * _quiet_mm(qr)
        path.write_text(svg_document(round(side, 3), round(side + LABEL_MM * 1.5, 3), code_svg(qr, station, 0, 0)),
                        encoding="utf-8")
        written.append(path)
    per_page = COLUMNS * ROWS
    if codes:
        (out / SHEETS).mkdir(exist_ok=True)
    for number, start in enumerate(range(0, len(codes), per_page), start=1):
        path = out / SHEETS / f"sheet-{number}.svg"
        path.write_text(page_svg(codes[start:start + per_page]), encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator; 0 on success, 2 on bad input, 1 when a file cannot be read or written (stderr says why)."""
    parser = argparse.ArgumentParser(prog="crew_qr.py", description="Printable QR codes that open the crew page on "
                                     "one station each (docs/broker.md).")
    parser.add_argument("--url", required=True, help="the crew page, e.g. https://broker.example.org:8885/")
    parser.add_argument("--station", action="append", default=[], metavar="ID", help="a station id (repeatable)")
    parser.add_argument("--stations-file", type=Path, metavar="FILE",
                        help="station ids, one per line, '#' starts a comment")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="writes DIR/ID.svg and DIR/sheets/sheet-N.svg")
    arguments = parser.parse_args(argv)
    try:
        stations = list(arguments.station)
        if arguments.stations_file is not None:
            stations += read_stations_file(arguments.stations_file)
        written = write_codes(arguments.url, stations, arguments.out)
    except UsageError as error:
        sys.stderr.write(f"crew_qr.py: error: {error}\n")
        return USAGE_ERROR
    except OSError as error:
        sys.stderr.write(f"crew_qr.py: error: {error.filename}: {error.strerror}\n")
        return 1
    sys.stdout.write("".join(f"wrote {path}\n" for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
