"""Measured coverage of epigate's intervals on synthetic outbreaks with known truth.

For each scenario, N data sets are drawn (noise seeds 0..N-1). On each:

- least squares' profile-likelihood interval (``profile.py``) of beta, sigma, gamma and R0;
- the parametric bootstrap (``bootstrap.py``) with K replicates, each refitted, and the percentile
  interval of the replicates. ``--fitter lsq`` refits each replicate by least squares: the same
  resampling and percentile rule as ``epigate fit --bootstrap K``, at a cost that allows hundreds
  of data sets on a laptop. ``--fitter pinn`` trains the PINN on the replicates (one vmapped run
  per data set, the recipe of ``--preset``; ``--preset default`` is ``epigate fit``'s own recipe,
  outer phase included), as the CLI does; it costs minutes per data set.

It prints how often each interval contains the truth, with a binomial 95 % interval of that
fraction (a data set whose PINN fit ends ``not_converged`` is counted apart and left out: the
product says its numbers are not an answer), and writes one row per data set to ``--out`` (CSV)
so that a run can be resumed.

    python scripts/coverage.py --scenario demo --n 100 --out coverage_demo.csv
    python scripts/coverage.py --scenario sparse --n 100 --out coverage_sparse.csv
    python scripts/coverage.py --scenario sparse --n 100 --likelihood lognormal --out coverage_sparse_ln.csv
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
from scipy.stats import beta as beta_dist

from epigate.assumptions import Assumptions
from epigate.bench.grid import PRESETS
from epigate.bootstrap import fitted_noise, resample
from epigate.classical import classical_fit
from epigate.data import DEMO, synthetic_outbreak
from epigate.intervals import percentile_interval
from epigate.likelihood import LIKELIHOODS
from epigate.models import get_model
from epigate.profile import profile_intervals

SCENARIOS = {
    # the bundled demo: SEIR, I and R at 40 times over 100 days, 5 % relative gaussian noise
    "demo": DEMO,
    # sparse and I only: 20 times over 60 days, 10 % noise, 10 exposed and 10 infectious of 200 000
    "sparse": dict(model="seir", params={"beta": 0.9, "sigma": 0.5, "gamma": 0.25}, population=200_000,
                   horizon=60.0, observe=("I",), n_obs=20, noise="gaussian", noise_level=0.1,
                   initial={"E": 10 / 200_000, "I": 10 / 200_000}),
    # counts: incidence with Poisson noise from one case in a million, fitted with the poisson likelihood
    "counts": dict(model="seir", params={"beta": 0.6, "sigma": 0.25, "gamma": 0.2}, population=1_000_000,
                   horizon=120.0, observe=("incidence",), n_obs=40, noise="poisson",
                   initial={"I": 1e-6}),
}
LIKELIHOOD = {"demo": "squared", "sparse": "squared", "counts": "poisson"}
NAMES = ("beta", "sigma", "gamma", "R0")


def lsq_bootstrap(model, obs, fit, assumptions, replicates: int, seed: int, level: float) -> dict:
    """Percentile intervals of least squares refitted on ``replicates`` resampled data sets."""
    noise = fitted_noise(model, obs, fit, assumptions)
    start = {n: v for n, v in fit.rates.items() if n not in assumptions.fixed}
    values = {n: [] for n in NAMES}
    for data in resample(model, obs, fit, noise, replicates, seed):
        refit = classical_fit(model, data, assumptions, start=start)
        for n in model.params:
            values[n].append(refit.rates[n])
        values["R0"].append(refit.r0)
    return {n: percentile_interval(v, level, "bootstrap") for n, v in values.items()}


def pinn_bootstrap(model, obs, assumptions, replicates: int, seed: int, preset: str, level: float) -> dict:
    """Percentile intervals of the PINN's bootstrap (as ``epigate fit --bootstrap K``)."""
    from epigate.config import TrainConfig
    from epigate.fit import fit
    from epigate.summary import summarise

    cfg = TrainConfig() if preset == "default" else PRESETS[preset].train_config("cggs")
    result = fit(obs, model, cfg, [seed], assumptions, bootstrap=replicates, level=level)
    summary = summarise(result)
    return {n: summary.quantity(n).interval for n in NAMES}, summary.status


def binomial_interval(hits: int, n: int) -> tuple[float, float]:
    """Clopper-Pearson 95 % interval of a coverage fraction."""
    lo = beta_dist.ppf(0.025, hits, n - hits + 1) if hits > 0 else 0.0
    hi = beta_dist.ppf(0.975, hits + 1, n - hits) if hits < n else 1.0
    return float(lo), float(hi)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--n", type=int, default=100, help="data sets (noise seeds 0..n-1)")
    parser.add_argument("--replicates", type=int, default=16, help="bootstrap replicates K per data set")
    parser.add_argument("--level", type=float, default=0.9, help="nominal coverage of every interval")
    parser.add_argument("--fitter", choices=("lsq", "pinn"), default="lsq", help="who refits the replicates")
    parser.add_argument("--preset", default="quick", choices=sorted(PRESETS) + ["default"], help="with --fitter pinn: a bench preset's recipe, or "
                        "'default' for epigate fit's own (with the outer phase)")
    parser.add_argument("--likelihood", choices=LIKELIHOODS, help="the fits' likelihood (default: the scenario's; "
                        "demo and sparse have relative gaussian noise, which lognormal models)")
    parser.add_argument("--out", type=Path, required=True, help="CSV of per-data-set rows (resumable)")
    args = parser.parse_args()
    spec = dict(SCENARIOS[args.scenario])
    model = get_model(spec.pop("model"))
    truth = dict(spec["params"])
    truth["R0"] = float(model.r0([truth[n] for n in model.params]))
    assumptions = Assumptions(likelihood=args.likelihood or LIKELIHOOD[args.scenario])
    header = (["seed", "kind", "seconds", "status", "likelihood"]
              + [f"{n}_{e}" for n in NAMES for e in ("lo", "hi", "covers")])
    done = set()
    if args.out.exists():
        with args.out.open() as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        if reader.fieldnames != header:
            parser.error(f"{args.out} was written with other columns (an older version of this script); "
                         "give another --out")
        other = {r["likelihood"] for r in rows} - {assumptions.likelihood}
        if other:
            parser.error(f"{args.out} holds rows fitted with the {', '.join(sorted(other))} likelihood; "
                         f"give another --out for {assumptions.likelihood}")
        done = {(int(r["seed"]), r["kind"]) for r in rows}
    else:
        with args.out.open("w", newline="") as f:
            csv.writer(f).writerow(header)
    for seed in range(args.n):
        obs = synthetic_outbreak(model, **spec, seed=seed)
        fit = None
        for kind in ("profile", f"bootstrap_{args.fitter}"):
            if (seed, kind) in done:
                continue
            t0 = time.perf_counter()
            fit = fit or classical_fit(model, obs, assumptions)
            status = "ok"  # least squares' intervals have no convergence status of their own
            if kind == "profile":
                ivs = profile_intervals(model, obs, fit, assumptions, level=args.level).intervals
            elif args.fitter == "lsq":
                ivs = lsq_bootstrap(model, obs, fit, assumptions, args.replicates, 1000 + seed, args.level)
            else:
                ivs, status = pinn_bootstrap(model, obs, assumptions, args.replicates, seed, args.preset, args.level)
            row = [seed, kind, round(time.perf_counter() - t0, 2), status, assumptions.likelihood]
            for n in NAMES:
                iv = ivs.get(n)
                row += [None, None, None] if iv is None else [iv.lo, iv.hi, int(iv.contains(truth[n]))]
            with args.out.open("a", newline="") as f:
                csv.writer(f).writerow(row)
    with args.out.open() as f:
        rows = list(csv.DictReader(f))
    print(f"scenario {args.scenario}, likelihood {assumptions.likelihood}: nominal {100 * args.level:g} %, "
          f"truth {truth}")
    for kind in sorted({r["kind"] for r in rows}):
        sel = [r for r in rows if r["kind"] == kind]
        seconds = np.median([float(r["seconds"]) for r in sel])
        failed = [r for r in sel if r["status"] != "ok"]
        sel = [r for r in sel if r["status"] == "ok"]
        cells = []
        for n in NAMES:
            marks = [int(r[f"{n}_covers"]) for r in sel if r[f"{n}_covers"] not in ("", None)]
            lo, hi = binomial_interval(sum(marks), len(marks))
            share = f"{100 * np.mean(marks):.0f} %" if marks else "-"
            cells.append(f"{n} {share} [{100 * lo:.0f}, {100 * hi:.0f}] of {len(marks)}")
        print(f"  {kind:<16} {len(sel) + len(failed)} data sets, {seconds:.1f} s each (median), "
              f"{len(failed)} not converged (left out): " + "; ".join(cells))


if __name__ == "__main__":
    main()
