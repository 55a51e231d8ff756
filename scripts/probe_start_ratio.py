"""Probe of the demo's bias (docs/method.md, "What holds it there"): the demo's rates and noise seed 0,
with E(0) = RATIO * I(0); one network with the default recipe against least squares. Prints both
estimates, R0 and q* = (r + gamma) / sigma, the E/I ratio the early epidemic settles into (r the
early growth rate of the rates).

    python scripts/probe_start_ratio.py 3

With ``--grid``: the benchmark's baseline cell without noise (20 points, the standard preset's
budget plus the default outer phase, cggs, its 16 seeds) with E(0) = RATIO * I(0); prints the median
|R0 error| against the truth of the PINN after the refinement and after the outer phase, and of
least squares (about 1 minute).

    python scripts/probe_start_ratio.py 1.35 --grid
"""

from __future__ import annotations

import sys

import numpy as np

from epigate.config import TrainConfig
from epigate.data import DEMO, synthetic_outbreak
from epigate.fit import fit
from epigate.models import SEIR


def settled_ratio(beta: float, sigma: float, gamma: float) -> tuple[float, float]:
    """(q*, r): the early growth rate r of SEIR near S = 1 and the E/I ratio it settles into."""
    r = (-(sigma + gamma) + np.sqrt((sigma + gamma) ** 2 - 4 * (sigma * gamma - beta * sigma))) / 2
    return (r + gamma) / sigma, r


def grid_cell(ratio: float) -> None:
    from dataclasses import replace

    from epigate.bench import grid, runner
    from epigate.fit import fit_batch

    preset, base = grid.PRESETS["standard"], grid.SCENARIOS["baseline"]
    grid.SCENARIOS["baseline"] = replace(base, initial={"E": ratio * base.initial["I"], "I": base.initial["I"]})
    reference = runner.cell_reference(grid.Cell("baseline", "0%", 20), preset)
    cfg = replace(runner.train_config(preset, "cggs"), outer_steps=TrainConfig().outer_steps)
    fits = fit_batch(reference.datasets, SEIR, cfg, list(range(preset.seeds)), references=reference.fits)
    true_r0 = base.params["beta"] / base.params["gamma"]
    refined = np.exp(np.concatenate([f.train.refined.log_rates for f in fits]))
    final = np.concatenate([f.rates for f in fits])
    print(f"E(0)/I(0) = {ratio:.3g}, baseline cell without noise, {len(fits)} seeds (truth: R0 {true_r0:g}, "
          f"q* {settled_ratio(*base.params.values())[0]:.3f}); median |R0 error| (median R0):")
    for label, rates in (("after the refinement", refined), ("after the outer phase", final)):
        r0 = rates[:, 0] / rates[:, 2]
        print(f"  cggs {label:<22} {100 * np.median(np.abs(r0 / true_r0 - 1)):5.1f} % ({np.median(r0):.3f})")
    print(f"  least squares {100 * np.median([abs(r.r0_error) for r in reference.rows]):5.2f} %")


def main() -> None:
    ratio = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    if "--grid" in sys.argv:
        return grid_cell(ratio)
    spec = dict(DEMO, initial={"E": ratio * DEMO["initial"]["I"], "I": DEMO["initial"]["I"]})
    result = fit(synthetic_outbreak(**spec, seed=0), SEIR, TrainConfig(), [0], profile=False)
    pinn = result.rates[0]
    lsq = [result.classical.rates[n] for n in SEIR.params]
    for label, rates in (("PINN", pinn), ("least squares", lsq), ("truth", [0.5, 0.2, 0.1])):
        q, r = settled_ratio(*rates)
        print(f"E(0)/I(0) = {ratio:.3g}  {label:<13} beta {rates[0]:.4f} sigma {rates[1]:.4f} gamma {rates[2]:.4f}"
              f"  R0 {rates[0] / rates[2]:.3f}  r {r:.3f}  q* {q:.3f}")


if __name__ == "__main__":
    main()
