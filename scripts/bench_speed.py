"""Speed benchmark (not a test): training throughput of the compiled loop.

Prints, measured side by side in one run on this machine:
- first-order (Adam + CGGS, both gradients every step) steps per second for one network;
- the same per network for 16 networks trained together under vmap, and the ratio;
- L-BFGS refinement iterations per second for one network;
- the demo's time to result (compile, train, least squares) as `epigate fit --demo` runs it
  (float64, the CLI's default) and in float32. The throughput lines are float64 (the default);
  scripts/compare_deepxde.py measures float32 against DeepXDE.

Usage: python scripts/bench_speed.py [--steps 3000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax

from epigate.data import demo_observations
from epigate.fit import fit
from epigate.models import SEIR
from epigate.pinn import build_problem
from epigate.config import TrainConfig
from epigate.train import members_in_parallel, train


def throughput(problem, cfg: TrainConfig, n_networks: int) -> float:
    """Steps per second per network (compile excluded)."""
    result = train(problem, cfg, list(range(n_networks)))
    steps = cfg.pretrain_steps + cfg.adam_steps + cfg.refine_steps
    return steps * n_networks / result.train_s


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"Python {platform.python_version()}, JAX {jax.__version__} on {jax.devices()[0].device_kind}")
    problem = build_problem(SEIR, demo_observations(0))
    adam = TrainConfig(method="cggs", pretrain_steps=0, adam_steps=args.steps, refine_steps=0, outer_steps=0)
    one = throughput(problem, adam, 1)
    many = throughput(problem, adam, 16)
    print(f"Adam + CGGS, default network 3x64 tanh, {problem.arrays.tau_colloc.size} collocation points, "
          "two gradients per step:")
    print(f"  1 network:    {one:7.0f} steps/s")
    print(f"  16 networks:  {many:7.0f} steps/s per network ({many / one:.2f}x one network)")
    refine = TrainConfig(method="cggs", pretrain_steps=0, adam_steps=0, refine_steps=800, outer_steps=0)
    lbfgs_one, lbfgs_many = throughput(problem, refine, 1), throughput(problem, refine, 16)
    order = "side by side (vmap)" if members_in_parallel() else "one after another"
    print(f"L-BFGS refinement (from the initial network), members {order} on {jax.default_backend()}:")
    print(f"  1 network:    {lbfgs_one:7.0f} iterations/s")
    print(f"  16 networks:  {lbfgs_many:7.0f} iterations/s per network ({lbfgs_many / lbfgs_one:.2f}x one network)")
    for precision in ("float64", "float32"):
        t0 = time.perf_counter()
        r = fit(demo_observations(0), SEIR, TrainConfig(precision=precision), [0])
        total = time.perf_counter() - t0
        label = "epigate fit --demo, the default" if precision == "float64" else "--precision float32"
        print(f"demo time to result ({label}, {precision}): {total:.1f} s = "
              f"{r.train.compile_s:.1f} s compile + {r.train.train_s:.1f} s train + "
              f"{r.classical.runtime_s:.1f} s least squares + rest")


if __name__ == "__main__":
    main()
