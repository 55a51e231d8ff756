"""The benchmark's output folder: settings guard, atomic per-cell files, resumability."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..files import atomic_write
from ..formatting import csv_cell
from ..train import History, Record
from .grid import Cell, Preset
from .runner import RunRow


class SettingsMismatch(RuntimeError):
    pass


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
            atomic_write(path, lambda p: p.write_text(json.dumps(settings, indent=2) + "\n"))

    def done(self, cell: Cell) -> bool:
        return (self.cells / f"{cell.id}.csv").exists() and (self.cells / f"{cell.id}.npz").exists()

    def save(self, cell: Cell, rows: list[RunRow], histories: dict[str, History]) -> None:
        def write_npz(p):
            flat = {}
            for method, h in histories.items():
                flat.update({f"{method}.step": h.step, f"{method}.phase": h.phase})
                flat.update({f"{method}.{k}": v for k, v in h.records._asdict().items()})
            with open(p, "wb") as f:
                np.savez_compressed(f, **flat)

        atomic_write(self.cells / f"{cell.id}.npz", write_npz)  # npz first: the csv marks the cell done
        atomic_write(self.cells / f"{cell.id}.csv", lambda p: write_rows(p, [r.flat() for r in rows]))

    def rows(self) -> list[RunRow]:
        out = []
        for path in sorted(self.cells.glob("*.csv")):
            with open(path, newline="") as f:
                out += [RunRow.from_flat(r) for r in csv.DictReader(f)]
        return out

    def histories(self, cell_id: str) -> dict[str, History]:
        data = np.load(self.cells / f"{cell_id}.npz")
        methods = sorted({key.split(".", 1)[0] for key in data.files})
        return {m: History(data[f"{m}.step"], data[f"{m}.phase"], Record(*(data[f"{m}.{k}"] for k in Record._fields)))
                for m in methods}


def write_rows(path: Path, rows: list[dict]) -> None:
    """Dicts as CSV rows (the union of their keys as columns); non-finite floats as ``nan``."""
    keys = list(rows[0]) if rows else []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: csv_cell(r.get(k), missing="nan") for k in keys})
