"""Writing a fit's results: JSON, CSVs and figures, all-or-nothing into an output folder."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .fit import FitResult, summary


@contextmanager
def atomic_dir(out: Path):
    """Yield a scratch folder; on success move its files into ``out``, on error leave ``out``
    untouched, so that a failed run never leaves partial output that looks complete."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield scratch
        out.mkdir(parents=True, exist_ok=True)
        for item in scratch.iterdir():
            target = out / item.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _clean(x):
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    return x


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(_clean(data), indent=2) + "\n")


def write_csv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for row in rows:
            w.writerow(["" if (isinstance(v, float) and not math.isfinite(v)) else
                        (f"{v:.8g}" if isinstance(v, float) else v) for v in row])


def observations_rows(result: FitResult):
    obs = result.obs
    header = ["t"] + list(obs.channels)
    rows = [[float(t)] + [float(v) for v in vals] for t, vals in zip(obs.t, obs.values)]
    return header, rows


def trajectory_rows(result: FitResult):
    """Network trajectories (ensemble median and 90 % band) and the classical ODE solution, people."""
    from .models import simulate_numpy

    m, N = result.model, result.obs.population
    t = result.t_grid
    ok = result.ok
    med = np.nanmedian(result.network_states[ok], axis=0) * N
    lo = np.nanpercentile(result.network_states[ok], 5, axis=0) * N
    hi = np.nanpercentile(result.network_states[ok], 95, axis=0) * N
    cl = simulate_numpy(m, [result.classical.rates[n] for n in m.params], result.classical.u0, t) * N
    header = ["t"] + [f"{s}_pinn" for s in m.states] + [f"{s}_pinn_lo" for s in m.states] + \
             [f"{s}_pinn_hi" for s in m.states] + [f"{s}_classical" for s in m.states]
    rows = [[float(t[i])] + [float(v) for v in np.concatenate([med[i], lo[i], hi[i], cl[i]])] for i in range(len(t))]
    return header, rows


def history_rows(result: FitResult):
    """One row per recorded step and ensemble member."""
    h, m = result.train.history, result.model
    keys = ["loss_data", "loss_phys", "c", "c_mean", "m", "lam", "norm_data", "norm_phys"]
    header = ["seed", "step", "phase"] + keys + list(m.params)
    rows = []
    for k, seed in enumerate(result.seeds):
        for i, step in enumerate(h["step"]):
            rates = np.exp(h["log_rates"][k, i])
            rows.append([seed, int(step), "adam" if h["phase"][i] == 0 else "refine"]
                        + [float(h[key][k, i]) for key in keys] + [float(r) for r in rates])
    return header, rows


def write_fit(result: FitResult, out: Path, *, figures: bool = True) -> dict:
    """Write result.json, observations.csv, trajectories.csv, history.csv and the figures into
    ``out`` (atomically). Returns the summary."""
    data = summary(result)
    with atomic_dir(out) as tmp:
        write_json(tmp / "result.json", data)
        write_csv(tmp / "observations.csv", *observations_rows(result))
        write_csv(tmp / "trajectories.csv", *trajectory_rows(result))
        write_csv(tmp / "history.csv", *history_rows(result))
        if figures:
            from . import figures as fig

            fig.fit_figure(result, tmp / "fit.png")
            fig.training_figure(result, tmp / "training.png")
            fig.params_figure(result, tmp / "params.png")
            from .report import write_report

            write_report(data, tmp, tmp / "report.html")
    return data
