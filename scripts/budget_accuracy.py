"""What the `standard` preset's smaller budget costs in accuracy against `full`, on a few cells.

`standard` trains 3x32 networks in float32 for 300 + 1000 Adam steps and 800 L-BFGS iterations and
stops there; `full` trains as the `fit` command does (3x64 networks in float64, 1000 + 2000 Adam
steps, 1600 L-BFGS iterations, then the outer phase of up to 50 steps). Both draw seed k's data and
network from seed k, so on seeds 0-9 (full has 10) the two presets fit the same data sets: the
comparison is paired.

This script runs `full` on the chosen cells and methods and compares with the rows of a finished
`standard` run: median |R0 error| against the truth and against least squares, the paired median
difference (standard - full, with a 95 % bootstrap interval), and the seconds per network. Its
timings also give the estimate of `full`'s whole-grid time in docs/benchmarks.md.

Usage: python scripts/budget_accuracy.py STANDARD_DIR [--cells ID,ID] [--methods M,M]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from epigate.bench.grid import PRESETS, Cell, cells
from epigate.bench.runner import cell_reference, run_method
from epigate.bench.store import Store
from epigate.metrics import paired_median_difference

DEFAULT_CELLS = "baseline_10pct_n20,partial_negbin_n10,stiff_5pct_n40"


def parse_cell(cell_id: str) -> Cell:
    for cell in cells(PRESETS["full"]):
        if cell.id == cell_id:
            return cell
    raise SystemExit(f"unknown cell {cell_id!r}; cells are named like baseline_10pct_n20")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("standard_dir", help="output folder of `epigate bench --preset standard`")
    parser.add_argument("--cells", default=DEFAULT_CELLS)
    parser.add_argument("--methods", default="cggs,magnitude")
    args = parser.parse_args()
    full, standard = PRESETS["full"], PRESETS["standard"]
    standard_rows = Store(args.standard_dir, standard).rows()
    print("| cell | method | \\|R0 err\\| % standard | full | \\|R0 − LSQ\\| % standard | full | "
          "standard − full, \\|R0 err\\| pts [95 % CI] | s per network standard | full |")
    print("|---|---|---|---|---|---|---|---|---|")
    full_seconds = []
    for cell in map(parse_cell, args.cells.split(",")):
        t0 = time.perf_counter()
        reference = cell_reference(cell, full)
        reference_s = time.perf_counter() - t0
        for method in args.methods.split(","):
            t0 = time.perf_counter()
            rows, _ = run_method(reference, full, method, fixed_best=np.nan)
            seconds = time.perf_counter() - t0
            full_seconds.append(seconds + reference_s / len(args.methods.split(",")))
            mine = {r.seed: r for r in rows if r.phase == "final"}
            theirs = {r.seed: r for r in standard_rows if (r.scenario, r.noise, r.n_obs, r.method, r.phase)
                      == (cell.scenario, cell.noise, cell.n_obs, method, "final") and r.seed in mine}
            if len(theirs) != len(mine):
                raise SystemExit(f"{args.standard_dir} lacks {cell.id}/{method} for seeds {sorted(mine)}")
            seeds = sorted(mine)
            err = lambda rows, key: np.array([abs(getattr(rows[k], key)) for k in seeds])
            d, lo, hi = paired_median_difference(err(theirs, "r0_error"), err(mine, "r0_error"))
            print(f"| {cell.id} | {method} | {100 * np.median(err(theirs, 'r0_error')):.1f} | "
                  f"{100 * np.median(err(mine, 'r0_error')):.1f} | {100 * np.median(err(theirs, 'r0_error_vs_lsq')):.1f} | "
                  f"{100 * np.median(err(mine, 'r0_error_vs_lsq')):.1f} | {100 * d:+.2f} [{100 * lo:.2f}, {100 * hi:.2f}] | "
                  f"{np.median([theirs[k].wall_s for k in seeds]):.2f} | {np.median([mine[k].wall_s for k in seeds]):.2f} |",
                  flush=True)
    n_runs = len(full_seconds)
    grid = len(cells(full)) * len(full.methods)
    print(f"\nfull: {np.mean(full_seconds):.0f} s per (cell, method) with {full.seeds} seeds, mean of {n_runs}; "
          f"x {grid} (cell, method) pairs = {np.mean(full_seconds) * grid / 3600:.1f} h for the whole grid here")


if __name__ == "__main__":
    main()
