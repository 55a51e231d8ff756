"""Backtest of the forecast on a shared real series: fit the first part, forecast the rest, and count
how many held-back observations fall inside the forecast's predictive band.

The fit is ``epigate fit --bootstrap K --forecast DAYS`` on the series cut at ``--cutoff`` (the
same pipeline, in process). Series (read from ../shared/data, never copied):

- ``boarding_school``: influenza, 763 boys, ``in_bed`` as I, SIR, squared error, one index case;
- ``guinea``: Ebola Guinea 2014, cumulative cases, SEIR with the published latent and infectious
  periods fixed, Poisson (the issue-9 command).

    python scripts/backtest.py --series boarding_school --cutoff 7
    python scripts/backtest.py --series guinea --cutoff 120
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from epigate.assumptions import Assumptions
from epigate.config import TrainConfig
from epigate.csvinput import read_csv
from epigate.fit import fit
from epigate.forecast import forecast_bands
from epigate.formatting import interval_text, number
from epigate.models import SEIR, SIR
from epigate.summary import summarise

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SERIES = {
    "boarding_school": ("boarding_school_flu_1978.csv",
                        dict(time="day", observe={"I": "in_bed"}, population=763, initial={"I": 1 / 763}),
                        SIR, Assumptions()),
    "guinea": ("ebola_west_africa_2014_cumulative.csv",
               dict(time="date", observe={"cumulative": "cum_guinea_cases"}, population=1e6, initial={"I": 1e-6},
                    start="2013-12-02"),
               SEIR, Assumptions(fixed={"sigma": 1 / 5.3, "gamma": 1 / 5.61}, likelihood="poisson")),
}


def cut(obs, cutoff: float):
    """The observations up to ``cutoff`` (inclusive), and the held-back times and values after it."""
    keep = obs.t <= cutoff
    head = replace(obs, t=obs.t[keep], values=obs.values[keep],
                   t_start=None if obs.t_start is None else obs.t_start[keep])
    return head, obs.t[~keep], obs.values[~keep]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", choices=sorted(SERIES), required=True)
    parser.add_argument("--cutoff", type=float, required=True, help="last time (days since t = 0) that is fitted")
    parser.add_argument("--bootstrap", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"backtest: the shared data folder {SHARED} is missing")
    name, spec, model, assumptions = SERIES[args.series]
    full = read_csv(SHARED / name, **spec)
    head, t_held, y_held = cut(full, args.cutoff)
    if not len(t_held):
        sys.exit(f"backtest: nothing after the cutoff {args.cutoff} (the series ends at {full.horizon})")
    result = fit(head, model, TrainConfig(), [args.seed], assumptions, bootstrap=args.bootstrap)
    summary = summarise(result)
    bands = forecast_bands(result, float(t_held[-1] - head.horizon))
    print(f"{args.series}: fitted {len(head.t)} times up to t = {head.horizon:g}, held back {len(t_held)} "
          f"(t = {t_held[0]:g} .. {t_held[-1]:g}); status {summary.status}; {summary.timing.runtime_s:.0f} s")
    for w in summary.warnings:
        print(f"  warning: {w}")
    for q in ("R0", "peak_time", "peak_size"):
        quantity = summary.quantity(q)
        print(f"  {q}: PINN {number(quantity.pinn)} {interval_text(quantity.interval)}, least squares "
              f"{number(quantity.classical)} {interval_text(quantity.classical_interval)}")
    for j, channel in enumerate(head.channels):
        k = bands.names.index(channel)
        lo, hi = (np.interp(t_held, bands.t, band[:, k]) for band in (bands.lo, bands.hi))
        y = y_held[:, j]
        seen = np.isfinite(y)
        inside = (y >= lo) & (y <= hi) & seen
        print(f"  {channel}: {int(inside.sum())} of {int(seen.sum())} held-back values inside the "
              f"{100 * bands.level:g} % predictive band ({bands.kind})")
        for t, v, a, b in zip(t_held[seen], y[seen], lo[seen], hi[seen]):
            print(f"    t {t:6g}: observed {v:8g}  band [{a:10.1f}, {b:10.1f}]{'' if a <= v <= b else '  outside'}")


if __name__ == "__main__":
    main()
