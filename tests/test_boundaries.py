"""Import boundaries: dependencies point inward only (docs/architecture.md), checked on the source of every module."""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kiosk", "drivers", "screens", "console", "bridge")
FIRST_PARTY = frozenset(PACKAGES)
STDLIB = frozenset(sys.stdlib_module_names)


@dataclass(frozen=True)
class Import:
    """One imported module (the full dotted name) and, for ``from x import y``, the names taken."""

    module: str
    names: tuple[str, ...]
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[Import]:
    """Every import of ``path``, ``TYPE_CHECKING`` blocks and function bodies included, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, (), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            submodules = [alias.name for alias in node.names if is_module(f"{base}.{alias.name}")]
            found += [Import(f"{base}.{name}", (), node.lineno) for name in submodules]
            names = tuple(alias.name for alias in node.names if alias.name not in submodules)
            if names or not submodules:
                found.append(Import(base, names, node.lineno))
    return found


def is_module(dotted: str) -> bool:
    """``dotted`` names a first-party module or package (``from kiosk import config`` imports kiosk.config)."""
    path = ROOT.joinpath(*dotted.split("."))
    return top(dotted) in FIRST_PARTY and (path.with_suffix(".py").is_file() or (path / "__init__.py").is_file())


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def top(module: str) -> str:
    return module.split(".")[0]


# Which first-party modules each layer may import (a layer always may import itself).
KERNEL = ("kiosk.config", "kiosk.remote_config")  # the shared kernel: settings and their remote overlay
ALLOWED: dict[str, tuple[str, ...]] = {
    "kiosk.domain": ("kiosk.domain", "kiosk.config"),
    "kiosk.config": ("kiosk.config", "kiosk.domain"),
    "kiosk.remote_config": (*KERNEL, "kiosk.domain"),
    "kiosk.ports": ("kiosk.domain", *KERNEL),
    "kiosk.app": ("kiosk.app", "kiosk.domain", "kiosk.ports", *KERNEL, "kiosk.crashpoints", "kiosk.mqtt.contract",
                  "kiosk.releases"),
    # The releases on disk: run by systemd's guard before any station code, so nothing but the domain's rules.
    "kiosk.releases": ("kiosk.releases", "kiosk.domain", "kiosk.config"),
    "kiosk.storage": ("kiosk.storage", "kiosk.domain", "kiosk.ports", *KERNEL, "kiosk.crashpoints",
                      "kiosk.mqtt.contract"),
    "kiosk.mqtt": ("kiosk.mqtt", "kiosk.domain", "kiosk.ports", *KERNEL),
    "drivers": ("drivers", "kiosk.domain", "kiosk.ports", *KERNEL),
    "screens": ("screens", "kiosk.domain", "kiosk.config"),
    "console": ("console", "kiosk.mqtt.contract", "kiosk.sqlite_file"),
    # The alert bridge runs beside the broker: it shares the MQTT contract, not the station's code; its database is a
    # versioned SQLite file like the console's history (kiosk.sqlite_file, standard library only).
    "bridge": ("bridge", "kiosk.sqlite_file"),
}
# Deliberate exceptions, each with its reason (docs/architecture.md, "Deliberate choices").
EXCEPTIONS: dict[str, tuple[str, ...]] = {
    # Opening the database is what start-up recovery and the storage healer are for.
    "kiosk.app.healing": ("kiosk.storage.store",),
    "kiosk.app.recovery": ("kiosk.storage.store",),
    # systemd's notify protocol (standard library only), one implementation for the station and the alert bridge.
    "bridge.command": ("kiosk.cli.sd_notify",),
    "bridge.service": ("kiosk.cli.sd_notify",),
}
# Third-party libraries that only one adapter may touch.
OWNERS: dict[str, tuple[str, ...]] = {
    "pygame": ("screens",),
    "paho": ("kiosk.mqtt.client", "console.agent_link", "bridge.link"),
    "peewee": ("kiosk.storage",),
    "serial": ("drivers.payment",),
    "gpiozero": ("drivers.gpio", "drivers.gpio_sim"),
    "textual": ("console",),
}


def layer(module: str) -> str | None:
    return next((name for name in sorted(ALLOWED, key=len, reverse=True) if under(module, name)), None)


def violations() -> list[str]:
    found = []
    for path in sources():
        module = module_name(path)
        where = path.relative_to(ROOT)
        rules = layer(module)
        for imp in imports(path):
            first = top(imp.module)
            if first in OWNERS and not under(module, *OWNERS[first]):
                found.append(f"{where}:{imp.line}: {module} imports {imp.module}, which only {OWNERS[first]} may use")
            if first in FIRST_PARTY and rules is not None and not under(imp.module, module.rsplit(".", 1)[0]):
                allowed = ALLOWED[rules] + EXCEPTIONS.get(module, ())
                if not under(imp.module, *allowed):
                    found.append(f"{where}:{imp.line}: {module} ({rules}) imports {imp.module}")
            if first in FIRST_PARTY and under(imp.module, "drivers") and not under(module, "drivers", "kiosk.cli"):
                found.append(f"{where}:{imp.line}: only the composition root (kiosk.cli) picks devices: {imp.module}")
            if first in FIRST_PARTY:
                private = [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
                if private:
                    found.append(f"{where}:{imp.line}: {module} imports private {', '.join(private)} from {imp.module}")
    return found


def test_dependencies_point_inward_only() -> None:
    assert violations() == []


def test_the_releases_import_only_the_standard_library_and_the_domain() -> None:
    outside = [f"{path.relative_to(ROOT)}:{imp.line}: {imp.module}" for path in sources()
               if under(module_name(path), "kiosk.releases") for imp in imports(path)
               if top(imp.module) not in STDLIB and not under(imp.module, "kiosk.releases", "kiosk.domain", "kiosk.config")]
    assert outside == []


def test_the_domain_imports_only_the_standard_library() -> None:
    outside = [f"{path.relative_to(ROOT)}:{imp.line}: {imp.module}" for path in sources()
               if under(module_name(path), "kiosk.domain") for imp in imports(path)
               if top(imp.module) not in STDLIB and not under(imp.module, "kiosk.domain", "kiosk.config")]
    assert outside == []


@pytest.mark.parametrize("source, expected", [
    ("from kiosk.storage.store import Store\n", "kiosk.domain.journey (kiosk.domain) imports kiosk.storage.store"),
    ("import pygame\n", "which only ('screens',) may use"),
    ("from kiosk.domain.records import _private\n", "imports private _private"),
    ("from drivers.gpio import HelpPanel\n", "only the composition root (kiosk.cli) picks devices"),
])
def test_the_checker_finds_a_wrong_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str,
                                          expected: str) -> None:
    """The checker itself can fail: a forbidden import planted in a copy of the domain is reported."""
    planted = ROOT / "kiosk" / "domain" / "journey.py"
    text = planted.read_text(encoding="utf-8")
    original = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self == planted:
            return source + text
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    assert any(expected in v for v in violations())
