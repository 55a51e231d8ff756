"""How well does the network solve the ODE on a long horizon, and re-solve it after the rates change?

The outer phase (docs/method.md) uses the network as the ODE solver: after each change of the rates it
re-solves the physics alone with ``resolve_steps`` L-BFGS iterations. This probe measures that inner
solve on a synthetic SEIR outbreak (beta 0.6, sigma 0.25, gamma 0.2 per day, one seed in
1 / seed_fraction people, E(0) = 0): L-BFGS on the physics alone at the model's guess rates from a new
network, then at the true rates, then one re-solve after beta changes by 2 % and by 5 %. It prints the
mean squared residual after each, and where it sits: in time, and by row (x = log I, then E/I,
then C/I). On the demo's 100 days the
re-solves of the outer phase leave 1e-5 to 1e-3.

Usage: python scripts/probe_resolve.py [--horizon 300] [--seed-fraction 1e-5] [--iterations 2000]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from epigate.assumptions import Assumptions
from epigate.data import synthetic_outbreak
from epigate.models import SEIR
from epigate.pinn import NetworkConfig, build_problem, initial_phi, make_network
from epigate.reduced import OuterSolver

TRUTH = {"beta": 0.6, "sigma": 0.25, "gamma": 0.2}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=float, default=300.0, help="days")
    parser.add_argument("--seed-fraction", type=float, default=1e-5)
    parser.add_argument("--iterations", type=int, default=2000, help="L-BFGS iterations of each full solve")
    parser.add_argument("--width", type=int, default=64)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    obs = synthetic_outbreak(SEIR, TRUTH, population=1.0 / args.seed_fraction, horizon=args.horizon,
                             observe=("I",), n_obs=20, noise_level=0.0, initial={"I": args.seed_fraction})
    problem = build_problem(SEIR, obs, Assumptions(fixed={"sigma": TRUTH["sigma"]}))
    spec, a = problem.spec, jax.tree.map(jnp.asarray, problem.arrays)
    network = make_network(SEIR, NetworkConfig(width=args.width))
    theta = network.init(jax.random.PRNGKey(0), a.growth_guess, a.relaxation_guess)
    guess = initial_phi(spec, a)
    flat, unravel = ravel_pytree(guess)
    at_rates = lambda rates: unravel(flat.at[:len(rates)].set(jnp.log(jnp.asarray(rates))))
    truth = np.array([TRUTH[k] for k in SEIR.params])
    full = OuterSolver(spec, network, args.iterations)
    short = OuterSolver(spec, network, 300)
    solve_full, solve_short = jax.jit(full.resolve), jax.jit(short.resolve)
    residual = jax.jit(lambda th, phi: full.losses(th, phi, a)[1])
    print(f"SEIR, horizon {args.horizon:g} days, seed fraction {args.seed_fraction:g}, network "
          f"{args.width}x{NetworkConfig().depth}, float64; mean squared physics residual:", flush=True)
    t0 = time.perf_counter()
    theta = solve_full(theta, guess, a)
    print(f"  {args.iterations} L-BFGS iterations at the guess rates: {float(residual(theta, guess)):.3g}", flush=True)
    theta = solve_full(theta, at_rates(truth), a)
    print(f"  then {args.iterations} at the true rates:        {float(residual(theta, at_rates(truth))):.3g}",
          flush=True)
    rows = np.asarray(full._parts(theta, at_rates(truth), a)[0]).reshape(len(a.tau_colloc), -1) ** 2
    tau = np.asarray(a.tau_colloc)
    for lo, hi in ((0.0, 0.1), (0.1, 0.3), (0.3, 0.6), (0.6, 1.01)):
        inside = (tau >= lo) & (tau < hi)
        shares = 100 * rows[inside].sum(axis=0) / rows.sum()
        print(f"    days {lo * args.horizon:5.0f}-{min(hi, 1) * args.horizon:3.0f}: {shares.sum():5.1f} % of it "
              f"(rows {', '.join(f'{s:.1f}' for s in shares)} %)", flush=True)
    for factor in (1.02, 1.05):
        moved = truth * np.array([factor, 1.0, 1.0])
        after = solve_short(theta, at_rates(moved), a)
        print(f"  re-solve (300 iterations) after beta x {factor}: {float(residual(after, at_rates(moved))):.3g}",
              flush=True)
    print(f"  {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
