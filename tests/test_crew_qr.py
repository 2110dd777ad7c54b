"""provisioning/crew_qr.py: each station's code holds the crew page's address for it, one file each and A4 sheets."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import segno
from conftest import ROOT

SCRIPT = ROOT / "provisioning" / "crew_qr.py"
URL = "https://broker.example.org:8885/"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The generator as the operator runs it."""
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60,
                          check=False)


def drawn(svg: str) -> list[tuple[list[tuple[int, int]], str]]:
    """Each code of an SVG file: its dark modules (from the path) and the text under it."""
    paths = re.findall(r'<path d="([^"]*)"/>', svg)
    texts = re.findall(r"<text [^>]*>([^<]*)</text>", svg)
    modules = [[(int(x), int(y)) for x, y in re.findall(r"M(\d+) (\d+)h1v1h-1z", d)] for d in paths]
    return list(zip(modules, texts, strict=True))


def expected(station: str) -> list[tuple[int, int]]:
    """The dark modules of the code segno makes of the station's crew page address."""
    qr = segno.make(f"{URL}?station={station}", error="m", micro=False, boost_error=False)
    return [(x, y) for y, row in enumerate(qr.matrix_iter(border=0)) for x, dark in enumerate(row) if dark]


def test_each_code_opens_its_station_and_sheets_hold_twelve(tmp_path: Path) -> None:
    stations = [f"DE-BER-{n:04d}" for n in range(1, 14)]
    listed = tmp_path / "stations.txt"
    listed.write_text("# Altstadt\n" + "\n".join(stations[1:]) + "\n", encoding="utf-8")
    result = run("--url", URL, "--station", stations[0], "--stations-file", listed, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    names = [*(f"{s}.svg" for s in stations), "sheets/sheet-1.svg", "sheets/sheet-2.svg"]
    assert result.stdout == "".join(f"wrote {tmp_path / 'out' / name}\n" for name in names)
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.svg")) == sorted(names)
    for station in stations:
        assert drawn((tmp_path / "out" / f"{station}.svg").read_text(encoding="utf-8")) == [
            (expected(station), station)]
    first = (tmp_path / "out" / "sheets" / "sheet-1.svg").read_text(encoding="utf-8")
    assert 'width="210mm" height="297mm" viewBox="0 0 210 297"' in first
    assert drawn(first) == [(expected(s), s) for s in stations[:12]]
    assert drawn((tmp_path / "out" / "sheets" / "sheet-2.svg").read_text(encoding="utf-8")) == [
        (expected(stations[12]), stations[12])]
    assert expected("DE-BER-0001") != expected("DE-BER-0002")


@pytest.mark.parametrize(("args", "message"), [
    (["--url", "ftp://broker/", "--station", "S1"], "crew page URL 'ftp://broker/' is not valid"),
    (["--url", "http://broker:8885/", "--station", "S1"], "expected https://"),  # the crews' listener is TLS only
    (["--url", "https://host:abc/", "--station", "S1"], "is not valid"),
    (["--url", "https://host:99999/", "--station", "S1"], "is not valid"),
    (["--url", "https://host/a b", "--station", "S1"], "is not valid"),
    (["--url", "https://host/a\nb", "--station", "S1"], "is not valid"),
    (["--url", "https://host/\t", "--station", "S1"], "is not valid"),
    (["--url", "https://user:secret@host/", "--station", "S1"], "is not valid"),  # never a password on a sticker
    (["--url", "https://[::1/", "--station", "S1"], "is not valid"),
    (["--url", URL, "--station", "St-1", "--station", "ST-1"], "station id 'ST-1' is given more than once"),
    (["--url", "https:///x", "--station", "S1"], "crew page URL 'https:///x' is not valid"),
    (["--url", URL + "?lang=de", "--station", "S1"], "without '?', '#'"),
    (["--url", URL + "#x", "--station", "S1"], "without '?', '#'"),
    (["--url", URL, "--station", "_alerts"], "station id '_alerts' is not valid"),
    (["--url", URL, "--station", "S 1"], "station id 'S 1' is not valid"),
    (["--url", URL, "--station", "S1", "--station", "S1"], "station id 'S1' is given more than once"),
    (["--url", URL], "no stations: give --station or --stations-file"),
    (["--url", URL, "--stations-file", "/nonexistent/stations"], "cannot read stations file"),
])
def test_bad_input_is_refused_with_exit_code_2_and_nothing_written(tmp_path: Path, args: list[str],
                                                                   message: str) -> None:
    result = run(*args, "--out", tmp_path / "out")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_a_station_named_like_a_sheet_keeps_its_code_and_a_long_id_stays_under_its_code(tmp_path: Path) -> None:
    long_id = "L" * 64
    result = run("--url", URL, "--station", "sheet-1", "--station", long_id, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert drawn((tmp_path / "sheet-1.svg").read_text(encoding="utf-8")) == [(expected("sheet-1"), "sheet-1")]
    sheet = (tmp_path / "sheets" / "sheet-1.svg").read_text(encoding="utf-8")
    assert [text for _, text in drawn(sheet)] == ["sheet-1", long_id]
    for svg in (tmp_path / "sheet-1.svg", tmp_path / f"{long_id}.svg"):
        content = svg.read_text(encoding="utf-8")
        scale = float(re.search(r"scale\(([\d.]+)\)", content).group(1))
        top = float(re.search(r"translate\([\d.]+ ([\d.]+)\)", content).group(1))
        baseline, size = (float(v) for v in re.search(r'<text [^>]*y="([\d.]+)"[^>]*font-size="([\d.]+)"',
                                                     content).groups())
        modules = segno.make(f"{URL}?station={svg.stem}", error="m", micro=False, boost_error=False).symbol_size(
            border=0)[0]
        quiet = 4 * scale
        assert baseline - size >= top + modules * scale + quiet - 0.01, "the id starts below the quiet zone"
        assert 0.6 * size * len(svg.stem) <= modules * scale + 2 * quiet + 0.01, "the id is no wider than the code"
