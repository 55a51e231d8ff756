"""Probe of the demo's bias (docs/method.md, "What holds it there"): the demo's rates and noise seed 0,
with E(0) = RATIO * I(0); one network with the default recipe against least squares. Prints both
estimates, R0 and q* = (r + gamma) / sigma, the E/I ratio the early epidemic settles into (r the
early growth rate of the rates).

    python scripts/probe_start_ratio.py 3
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


def main() -> None:
    ratio = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
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
