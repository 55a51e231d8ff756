"""Measure a training recipe on several demo noise seeds at once (the numbers in docs/method.md).

For each of K demo data sets (noise seeds 0..K-1) it trains one PINN per data set (all together,
data batched under vmap), fits least squares on the same data, and prints the PINN's R0 error
against least squares at the end of the Adam phase and after refinement, plus the final data loss
relative to least squares (below 1 = the network fits the noise).

Usage: python scripts/recipe_sweep.py "{'adam_steps': 6000, 'refine_steps': 6000, 'lam_ref': 1.0}" 6
       (keys: any TrainConfig field; 'network': {NetworkConfig fields})
"""

import ast
import sys

import jax
import jax.numpy as jnp
import numpy as np

from epigate.classical import OdeObjective, classical_fit
from epigate.data import demo_observations
from epigate.models import SEIR
from epigate.pinn import NetworkConfig, Problem, build_problem
from epigate.train import TrainConfig, train


def main():
    kw = ast.literal_eval(sys.argv[1]) if len(sys.argv) > 1 else {}
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    net = NetworkConfig(**kw.pop("network", {}))
    cfg = TrainConfig(network=net, **kw)
    obs = [demo_observations(s) for s in range(n)]
    problems = [build_problem(SEIR, o, n_colloc=net.n_colloc) for o in obs]
    batched = Problem(problems[0].spec, jax.tree.map(lambda *x: jnp.stack(x), *[p.arrays for p in problems]))
    classical = [classical_fit(SEIR, o) for o in obs]
    r0_lsq = np.array([c.r0 for c in classical])
    result = train(batched, cfg, list(range(n)), batched_data=True, raise_on_divergence=False)

    def r0_error(log_rates, reference=r0_lsq):
        p = np.exp(log_rates)
        return 100 * (p[:, 0] / p[:, 2] / reference - 1)

    print(kw, net, f"compile {result.compile_s:.1f} s, train {result.train_s:.1f} s for {n} networks")
    for tag, lr in (("after Adam", result.log_rates_adam), ("final", result.log_rates)):
        e = r0_error(lr)
        print(f"  {tag:10s} R0 vs least squares (%): {np.round(e, 1)}  max |.| {np.abs(e).max():.1f}")
    ratio = result.history["loss_data"][:, -1] / np.array([c.loss for c in classical])
    print(f"  final data loss / least squares: {np.round(ratio, 3)}")
    # Diagnostic: least squares that may also move the initial E and I (the epidemic's timing)
    free_start = np.array([classical_fit(SEIR, o, estimate_initial=("E", "I")).r0 for o in obs])
    e = r0_error(result.log_rates, free_start)
    print(f"  final R0 vs least squares with E(0), I(0) free (%): {np.round(e, 1)}  max |.| {np.abs(e).max():.1f}")
    print(f"  least squares with E(0), I(0) free vs fixed (%): {np.round(100 * (free_start / r0_lsq - 1), 1)}")
    misfit = [ode_misfit(o, c, lr) for o, c, lr in zip(obs, classical, result.log_rates)]
    print(f"  ODE with the PINN's rates / least squares: {np.round(misfit, 3)}")


def ode_misfit(obs, fit, log_rates):
    return OdeObjective(SEIR, obs, {}, {}).loss_of(np.exp(log_rates), np.ones(len(obs.channels)), None) / fit.loss


if __name__ == "__main__":
    main()
