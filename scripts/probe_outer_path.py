"""The outer phase's path, point by point: where do its steps go, and which point does fit report?

For each named case (a robustness-suite case by its exact name, or ``demoS`` for the demo with
noise seed S), fits with the default recipe and prints, for the refinement's point and the point
after each outer step: the rates, R0 against least squares', the exact ODE's misfit against least
squares' loss (the number ``fit`` chooses the reported point by), and the network's own data loss
and mean squared residual. Then the point reported. This is how the outer step of release 0.2.4
was measured (docs/method.md, "The outer step on long horizons").

Usage: python scripts/probe_outer_path.py [--outer-steps 25] CASE [CASE ...]
e.g.   python scripts/probe_outer_path.py demo9 "seed 1e-05 T300 I negbin n40 free beta,gamma"
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from epigate.assumptions import Assumptions
from epigate.classical import OdeObjective
from epigate.config import TrainConfig
from epigate.data import demo_observations
from epigate.fit import fit, member_initial_states
from epigate.models import SEIR
from epigate.train import PHASES, clear_compiled

sys.path.insert(0, str(Path(__file__).resolve().parent))
import robustness_suite as suite  # noqa: E402  (the suite's cases, by name)


def named_cases(names: list[str]) -> list[suite.Case]:
    by_name = {c.name: c for c in suite.synthetic_cases() + suite.shared_cases()}
    cases = []
    for name in names:
        if name.startswith("demo") and name[4:].isdigit():
            cases.append(suite.Case(name, demo_observations(int(name[4:])), SEIR, Assumptions()))
        elif name in by_name:
            cases.append(by_name[name])
        else:
            sys.exit(f"probe_outer_path: no case named {name!r}: give 'demoS' or a case name that "
                     f"scripts/robustness_suite.py prints")
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", help="'demoS' or a robustness-suite case name")
    parser.add_argument("--outer-steps", type=int, default=TrainConfig().outer_steps)
    args = parser.parse_args()
    cfg = replace(TrainConfig(), outer_steps=args.outer_steps)
    for case in named_cases(args.cases):
        t0 = time.perf_counter()
        r = fit(case.obs, case.model, cfg, [0], case.assumptions, profile=False)
        lsq, objective, model = r.classical, OdeObjective(case.model, case.obs, case.assumptions), case.model
        print(f"== {case.name}: least squares R0 {lsq.r0:.4g}, loss {lsq.loss:.4g} ({time.perf_counter() - t0:.0f} s)")
        points = r.train.points()
        h = r.train.history
        records = [np.where(h.phase == PHASES.index("refine"))[0][-1]] + list(np.where(h.phase == PHASES.index("outer"))[0])
        for j, record in enumerate(records):
            rates = np.exp(points.log_rates[0, j])
            u0 = member_initial_states(model, case.obs, points.log_u0[0, j][None], case.assumptions.estimate_initial)[0]
            r0 = model.r0(rates[None])[0]
            misfit = objective.loss_of(rates, np.exp(points.log_rho[0, j]), u0) / lsq.loss
            print(f"  {'refined' if j == 0 else f'step {j:2d}'}  rates {np.array2string(rates, precision=4)}  "
                  f"R0 {r0:.4g} ({100 * (r0 / lsq.r0 - 1):+.1f} %)  ODE misfit {misfit:.4g}  "
                  f"network: data {h.records.loss_data[0, record]:.4g}, residual {h.records.loss_phys[0, record]:.3g}")
        print(f"  reported: point {r.train.outer_point[0]}, R0 {r.r0[0]:.4g} ({100 * (r.r0[0] / lsq.r0 - 1):+.2f} %), "
              f"misfit {r.misfit_ratio:.4g}", flush=True)
        clear_compiled()


if __name__ == "__main__":
    main()
