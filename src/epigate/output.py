"""A fit's output folder: result.json, CSVs, figures and the HTML report, all or nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import atomic_dir, write_csv, write_json
from .fit import FitResult
from .models import simulate_numpy
from .summary import INTERVAL_PERCENTILES, FitSummary, summarise
from .train import PHASES, Record

FILES = ("result.json", "report.html", "observations.csv", "trajectories.csv", "history.csv", "fit.png",
         "training.png", "params.png")
FORECAST_FILES = ("forecast.csv", "forecast.png")  # with a forecast


def observations_rows(result: FitResult):
    obs = result.obs
    header = ["t"] + list(obs.channels)
    rows = [[float(t)] + [float(v) for v in vals] for t, vals in zip(obs.t, obs.values)]
    return header, rows


def trajectory_rows(result: FitResult):
    """Network trajectories (median and interval over members) and the classical ODE solution, people."""
    m, N = result.model, result.obs.population
    t = result.t_grid
    states = result.network_states[result.ok] * N
    med = np.median(states, axis=0)
    lo, hi = (np.percentile(states, q, axis=0) for q in INTERVAL_PERCENTILES)
    cl = simulate_numpy(m, [result.classical.rates[n] for n in m.params], result.classical.u0, t) * N
    header = ["t"] + [f"{s}_pinn" for s in m.states] + [f"{s}_pinn_lo" for s in m.states] + \
             [f"{s}_pinn_hi" for s in m.states] + [f"{s}_classical" for s in m.states]
    rows = [[float(t[i])] + [float(v) for v in np.concatenate([med[i], lo[i], hi[i], cl[i]])] for i in range(len(t))]
    return header, rows


def history_rows(result: FitResult):
    """One row per recorded step and member."""
    h, m = result.train.history, result.model
    keys = [k for k in Record._fields if k != "log_rates"]
    header = ["seed", "step", "phase"] + keys + list(m.params)
    rows = []
    for k, seed in enumerate(result.seeds):
        for i, step in enumerate(h.step):
            rows.append([seed, int(step), PHASES[h.phase[i]]]
                        + [float(getattr(h.records, key)[k, i]) for key in keys] + [float(r) for r in h.rates[k, i]])
    return header, rows


def write_fit(result: FitResult, out: Path, forecast_days: float | None = None) -> FitSummary:
    """Write every file of ``FILES`` into ``out`` (atomically), and ``FORECAST_FILES`` with the
    trajectories ``forecast_days`` past the last observation when given. Returns the summary."""
    from . import figures
    from .forecast import bands_rows, forecast_bands
    from .report import write_fit_report

    summary = summarise(result)
    with atomic_dir(out) as tmp:
        if forecast_days is not None:
            bands = forecast_bands(result, forecast_days)
            write_csv(tmp / "forecast.csv", *bands_rows(bands, result.obs.time_unit))
            figures.forecast_figure(result, bands, tmp / "forecast.png")
        write_json(tmp / "result.json", summary.to_json())
        write_csv(tmp / "observations.csv", *observations_rows(result))
        write_csv(tmp / "trajectories.csv", *trajectory_rows(result))
        write_csv(tmp / "history.csv", *history_rows(result))
        figures.fit_figure(result, tmp / "fit.png")
        figures.training_figure(result, tmp / "training.png")
        figures.params_figure(result, tmp / "params.png")
        write_fit_report(summary, tmp, tmp / "report.html")
    return summary
