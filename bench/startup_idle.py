"""Start-up time (to first frame, to ready) and idle CPU of `kiosk run --simulate --headless`."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import common

IDLE_SECONDS = 20
RUNS = 5
HERE = Path(__file__).resolve().parent


def start_station(config: Path) -> tuple[subprocess.Popen[str], dict[str, float]]:
    """Start the station; return it and the seconds from spawn to each milestone log line."""
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "run", "--simulate", "--headless", "--config", str(config)],
                            stderr=subprocess.PIPE, text=True, cwd=HERE.parent)
    marks: dict[str, float] = {}
    ready = threading.Event()

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            for mark in ("first frame drawn", "ready"):
                if mark in line and mark not in marks:
                    marks[mark] = time.perf_counter() - began
            if "ready" in marks:
                ready.set()
    threading.Thread(target=watch, daemon=True).start()
    if not ready.wait(30):
        proc.kill()
        raise RuntimeError("the station did not become ready within 30 s")
    return proc, marks


def idle_cpu(proc: subprocess.Popen[str], seconds: float) -> float:
    """Percent of one core used by the process over `seconds`."""
    before = common.cpu_seconds(proc.pid)
    time.sleep(seconds)
    return (common.cpu_seconds(proc.pid) - before) / seconds * 100


def main() -> None:
    """Print the figures."""
    first, ready = [], []
    for _ in range(RUNS):
        proc, marks = start_station(common.scratch_config())
        first.append(marks["first frame drawn"] * 1000)
        ready.append(marks["ready"] * 1000)
        proc.terminate()
        proc.wait(10)
    print(f"start to first frame ({RUNS} runs): {common.summary(first)}  (target < 1000 ms)")
    print(f"start to ready       ({RUNS} runs): {common.summary(ready)}  (target < 1000 ms)")

    station, _ = start_station(common.scratch_config())
    naive = subprocess.Popen([sys.executable, str(HERE / "naive_loop.py")], stdout=subprocess.PIPE, text=True)
    try:
        measure_idle(station, naive)
    finally:
        for proc in (station, naive):
            proc.kill()
            proc.wait(10)


def measure_idle(station: subprocess.Popen[str], naive: subprocess.Popen[str]) -> None:
    """Measure both processes over the same seconds and print the comparison."""
    assert naive.stdout is not None
    while naive.stdout.readline().strip() != "ready":
        pass
    results: dict[str, float] = {}
    threads = [threading.Thread(target=lambda n=n, p=p: results.__setitem__(n, idle_cpu(p, IDLE_SECONDS)))
               for n, p in (("station", station), ("naive", naive))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ratio = results["station"] / results["naive"] if results["naive"] else float("nan")
    print(f"idle CPU over {IDLE_SECONDS} s: station {results['station']:.2f}% of a core, "
          f"naive 60 fps loop {results['naive']:.2f}% (ratio {ratio:.3f}; target < 1%)")


if __name__ == "__main__":
    main()
