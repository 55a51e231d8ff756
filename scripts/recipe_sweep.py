"""Measure a training recipe on several demo noise seeds at once (the numbers in docs/method.md).

For each of K demo data sets (noise seeds 0..K-1) it trains one PINN per data set, all together
through ``epigate.fit.fit_batch`` (the pipeline of ``epigate fit``), and prints the PINN's R0
against least squares at the end of the Adam phase and after refinement, the final data loss and
the ODE misfit relative to least squares, and the comparison with least squares that also
estimates E(0) and I(0) (the epidemic's timing).

Usage: python scripts/recipe_sweep.py "{'adam_steps': 6000, 'refine_steps': 6000, 'lam_ref': 1.0}" 6
       (keys: any TrainConfig field; 'network': {NetworkConfig fields})
"""

import ast
import sys

import numpy as np

from epigate.assumptions import Assumptions
from epigate.classical import classical_fit
from epigate.data import demo_observations
from epigate.fit import fit_batch
from epigate.models import SEIR
from epigate.pinn import NetworkConfig
from epigate.config import TrainConfig


def percent(a, b):
    return np.round(100 * (np.asarray(a) / np.asarray(b) - 1), 1)


def main():
    kw = ast.literal_eval(sys.argv[1]) if len(sys.argv) > 1 else {}
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    cfg = TrainConfig(network=NetworkConfig(**kw.pop("network", {})), **kw)
    datasets = [demo_observations(s) for s in range(n)]
    fits = fit_batch(datasets, SEIR, cfg, list(range(n)))
    r0_lsq = np.array([f.classical.r0 for f in fits])
    r0_adam = np.array([SEIR.r0(np.exp(f.train.log_rates_adam[0])) for f in fits])
    r0 = np.array([f.r0[0] for f in fits])
    t = fits[0].train
    print(kw, cfg.network, f"compile {t.compile_s:.1f} s, train {t.train_s:.1f} s for {n} networks")
    for tag, values in (("after Adam", r0_adam), ("final", r0)):
        e = percent(values, r0_lsq)
        print(f"  {tag:10s} R0 vs least squares (%): {e}  max |.| {np.abs(e).max():.1f}")
    data_loss = np.array([f.train.history.records.loss_data[0, -1] for f in fits])
    print(f"  final data loss / least squares: {np.round(data_loss / [f.classical.loss for f in fits], 3)}")
    free_start = np.array([classical_fit(SEIR, o, Assumptions(estimate_initial=("E", "I"))).r0 for o in datasets])
    e = percent(r0, free_start)
    print(f"  final R0 vs least squares with E(0), I(0) free (%): {e}  max |.| {np.abs(e).max():.1f}")
    print(f"  least squares with E(0), I(0) free vs fixed (%): {percent(free_start, r0_lsq)}")
    print(f"  ODE with the PINN's rates / least squares: {np.round([f.misfit_ratio for f in fits], 3)}")


if __name__ == "__main__":
    main()
