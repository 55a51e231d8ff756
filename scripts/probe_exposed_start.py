"""Does the network train from a given E(0)? The first Adam steps from each starting E(0).

For one robustness-suite case (by its exact name) and each E(0) given in people (pinned, I(0) as
the case gives it), trains with a short budget (pre-training as the default recipe, 100 Adam
steps, one L-BFGS round block, no outer phase) and prints the network's closed-form rates and
losses at the first records. A network that cannot represent the start has closed-form rates
that are negative (floored at ``pinn.RATE_FLOOR``, printed as 0) and a physics loss that does not
fall: with every rate free, training then settles on a constant epidemic. This is how the
starting value of an estimated E(0) was chosen (docs/method.md, "The start").

Usage: python scripts/probe_exposed_start.py CASE E0 [E0 ...]
e.g.   python scripts/probe_exposed_start.py "seed 1e-07 T150 I poisson n20 free beta,sigma,gamma start estimated" 0 0.01 1 10
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from epigate.config import TrainConfig
from epigate.pinn import build_problem
from epigate.train import PHASES, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
import robustness_suite as suite  # noqa: E402  (the suite's cases, by name)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.split("\n\n")[-1])
    name, people = sys.argv[1], [float(x) for x in sys.argv[2:]]
    cases = {c.name: c for c in suite.synthetic_cases()}
    if name not in cases:
        sys.exit(f"probe_exposed_start: no case named {name!r}: give a name that scripts/robustness_suite.py prints")
    case = cases[name]
    cfg = replace(TrainConfig(), adam_steps=100, refine_steps=400, outer_steps=0)
    pinned = replace(case.assumptions, estimate_initial=())
    print(f"{name}: E(0) pinned at each value, I(0) = {case.obs.initial.get('I', 0) * case.obs.population:g} people; "
          f"rates {case.model.params}")
    for e0 in people:
        obs = replace(case.obs, initial={**case.obs.initial, "E": e0 / case.obs.population})
        h = train(build_problem(case.model, obs, pinned), cfg, [0]).history
        for i in range(3):
            print(f"  E(0) {e0:8g} people  {PHASES[h.phase[i]]:6s} record {i}: closed-form rates "
                  f"{np.array2string(np.exp(h.records.log_rates[0, i]), precision=4)}  "
                  f"data {h.records.loss_data[0, i]:.3g}  physics {h.records.loss_phys[0, i]:.3g}", flush=True)


if __name__ == "__main__":
    main()
