"""The benchmark's output folder: settings guard, atomic per-cell files, resumability."""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from .grid import Cell, Preset


class SettingsMismatch(RuntimeError):
    pass


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are ordinary files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class Store:
    """``out/settings.json``, ``out/cells/<cell>.csv`` (rows) and ``<cell>.npz`` (histories)."""

    def __init__(self, out: Path, preset: Preset):
        self.out = Path(out)
        self.cells = self.out / "cells"
        self.preset = preset

    def open(self) -> None:
        """Create the folder, or check that an existing one holds results of the same settings."""
        settings = {"fingerprint": self.preset.fingerprint(), "preset": self.preset.settings()}
        path = self.out / "settings.json"
        if path.exists():
            old = json.loads(path.read_text())
            if old.get("fingerprint") != settings["fingerprint"]:
                raise SettingsMismatch(
                    f"{self.out} holds results of other settings (preset {old.get('preset', {}).get('name')!r}, "
                    f"fingerprint {old.get('fingerprint')}; now {settings['fingerprint']}); "
                    "use another --out or delete that folder")
        self.cells.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            _atomic_write(path, lambda p: p.write_text(json.dumps(settings, indent=2) + "\n"))

    def done(self, cell: Cell) -> bool:
        return (self.cells / f"{cell.id}.csv").exists() and (self.cells / f"{cell.id}.npz").exists()

    def save(self, cell: Cell, rows: list[dict], histories: dict) -> None:
        def write_npz(p):
            flat = {f"{m}.{k}": v for m, h in histories.items() for k, v in h.items()}
            with open(p, "wb") as f:
                np.savez_compressed(f, **flat)

        _atomic_write(self.cells / f"{cell.id}.npz", write_npz)  # npz first: the csv marks the cell done
        _atomic_write(self.cells / f"{cell.id}.csv", lambda p: write_rows(p, rows))

    def rows(self) -> list[dict]:
        out = []
        for path in sorted(self.cells.glob("*.csv")):
            out += read_rows(path)
        return out

    def histories(self, cell_id: str) -> dict:
        data = np.load(self.cells / f"{cell_id}.npz")
        out: dict = {}
        for key in data.files:
            method, name = key.split(".", 1)
            out.setdefault(method, {})[name] = data[key]
        return out


def write_rows(path: Path, rows: list[dict]) -> None:
    keys = list(rows[0]) if rows else []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k)) for k in keys})


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return "nan" if not math.isfinite(v) else f"{float(v):.8g}"
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, v in r.items():
            if k in ("scenario", "noise", "method", "phase"):
                continue
            if v in ("True", "False"):
                r[k] = v == "True"
            else:
                try:
                    r[k] = float(v)
                except (TypeError, ValueError):
                    pass
    return rows
