"""``epigate bench``: run (or resume) a preset's grid and write results, summary, figures, report."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import jax

from ..files import atomic_write
from .analysis import summarise, write_bench_report
from .executor import Executor, InProcessExecutor
from .grid import Preset, cells
from .runner import choose_fixed_weight
from .store import Store, write_rows


def machine_description() -> str:
    """The machine and the device JAX computes on (a GPU when the ``cuda`` extra found one)."""
    device = jax.devices()[0]
    return (f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
            f"JAX on {device.platform} ({device.device_kind})")


def run_bench(preset: Preset, out: Path, *, executor: Executor | None = None, progress=None) -> dict:
    """Run every unfinished cell of ``preset`` into ``out`` and (re)write the aggregate files.

    ``progress(done, total, cell_id)`` is called after each cell (and once at the start).
    """
    t_start = time.perf_counter()
    store = Store(out, preset)
    store.open()
    todo = [c for c in cells(preset) if not store.done(c)]
    total = len(cells(preset))
    done = total - len(todo)
    if progress:
        progress(done, total, None)

    best_path = store.out / "fixed_best.json"
    if "fixed_best" in preset.methods:
        if best_path.exists():
            best = json.loads(best_path.read_text())
        else:
            weight, scores = choose_fixed_weight(preset)
            best = {"weight": weight, "scores": {str(k): v for k, v in scores.items()}}
            atomic_write(best_path, lambda p: p.write_text(json.dumps(best, indent=2)))
    else:
        best = {"weight": 1.0, "scores": {}}

    executor = executor or InProcessExecutor()
    for cell, rows, histories in executor.run(todo, preset, best["weight"]):
        store.save(cell, rows, histories)
        done += 1
        if progress:
            progress(done, total, cell.id)

    rows = store.rows()
    summary = summarise(rows)
    atomic_write(store.out / "results.csv", lambda p: write_rows(p, [r.flat() for r in rows]))
    atomic_write(store.out / "summary.csv", lambda p: write_rows(p, summary))
    elapsed = time.perf_counter() - t_start
    write_bench_report(store.out, preset, rows, summary, store.histories, machine_description(), elapsed,
                       best["weight"], {float(k): v for k, v in best["scores"].items()}, computed=(len(todo), total))
    return {"rows": len(rows), "cells": total, "elapsed_s": elapsed}
