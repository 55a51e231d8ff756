"""How cells are run: in this process (default), or as Ray tasks on a cluster.

An executor's ``run(cells, preset, fixed_best)`` yields ``(cell, rows, histories)`` for each cell as
it finishes; the driver (``run.run_bench``) writes each finished cell atomically, so a killed run
resumes where it stopped whichever executor ran it. The experiment code (``runner``) is the same.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Protocol

from ..train import History
from .grid import Cell, Preset
from .runner import RunRow, cell_reference, run_cell, run_method

CellResult = tuple[Cell, list[RunRow], dict[str, History]]


class Executor(Protocol):
    def run(self, cells: Iterable[Cell], preset: Preset, fixed_best: float) -> Iterator[CellResult]: ...


class InProcessExecutor:
    """Runs cells one after another in this process (each already uses every core through XLA)."""

    def run(self, cells, preset, fixed_best):
        for cell in cells:
            yield (cell, *run_cell(cell, preset, fixed_best))


class RayExecutor:
    """One Ray task per (cell, method), after one task per cell for its least-squares reference.

    Args:
        address: a running Ray cluster (``ray start --head`` prints it), or None to start a local
            one; ``num_cpus`` limits a local one (each task uses one CPU slot).
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise RuntimeError("the ray executor needs Ray: pip install -e '.[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                     log_to_driver=False)

    def run(self, cells, preset, fixed_best):
        ray = self.ray
        reference_task = ray.remote(cell_reference)
        method_task = ray.remote(run_method)
        pending: dict = {}  # ObjectRef -> (cell, method)
        results: dict = {}  # cell -> {method: (rows, history)}
        references = {}
        for cell in cells:
            references[cell] = reference_task.remote(cell, preset)
            results[cell] = {}
            for method in preset.methods:
                pending[method_task.remote(references[cell], preset, method, fixed_best)] = (cell, method)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            cell, method = pending.pop(done[0])
            results[cell][method] = ray.get(done[0])
            if len(results[cell]) == len(preset.methods):
                rows = list(ray.get(references.pop(cell)).rows)
                histories = {}
                for m in preset.methods:  # rows in the preset's order, as in-process
                    method_rows, histories[m] = results[cell].pop(m)
                    rows += method_rows
                yield cell, rows, histories


EXECUTORS = ("inprocess", "ray")
