"""Training speed against DeepXDE 1.15 (PyTorch backend) on the same SEIR inverse problem, side by side.

The problem: the demo's SEIR outbreak (I and R observed at 40 times over 100 days), a 3x64 tanh
network, 256 collocation points, beta, sigma and gamma unknown, Adam, float32 in both. Measured:
steps per second after a warm-up, for

- DeepXDE: one network (its Model.train loop, data and ODE losses, one backward pass per step);
- epigate: one network, and 16 networks under vmap (Adam with CGGS: both loss gradients and the
  gate every step, whole chunks compiled with lax.scan).

DeepXDE runs in its own environment, made once with
``python -m venv dde-venv && dde-venv/bin/pip install torch==2.13.0 deepxde==1.15.0``; this script
runs its half there (``--deepxde-python``) and its own half here, one after the other.

    python scripts/compare_deepxde.py --deepxde-python dde-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from epigate.config import TrainConfig
from epigate.data import demo_observations
from epigate.models import SEIR
from epigate.pinn import NetworkConfig, build_problem
from epigate.train import train

DEEPXDE_PROGRAM = r'''
import json, os, sys, time
os.environ["DDE_BACKEND"] = "pytorch"
import numpy as np
import deepxde as dde
import torch
torch.set_num_threads(os.cpu_count())
data = json.loads(sys.argv[1])
t_obs, I_obs, R_obs, N = np.array(data["t"])[:, None], np.array(data["I"]), np.array(data["R"]), data["N"]
T, steps, warmup = data["T"], data["steps"], data["warmup"]
scale = np.array([I_obs.max(), R_obs.max()])
log_beta, log_sigma, log_gamma = (dde.Variable(float(np.log(v))) for v in (0.4, 0.3, 0.2))

def ode(t, y):  # y = (S, E, I, R) as fractions, t in days
    beta, sigma, gamma = torch.exp(log_beta), torch.exp(log_sigma), torch.exp(log_gamma)
    S, E, I, R = (y[:, i:i + 1] for i in range(4))
    dS, dE, dI, dR = (dde.grad.jacobian(y, t, i=i) for i in range(4))
    return [dS + beta * S * I, dE - beta * S * I + sigma * E, dI - sigma * E + gamma * I, dR - gamma * I]

geom = dde.geometry.TimeDomain(0.0, T)
observe_I = dde.icbc.PointSetBC(t_obs, (I_obs / N)[:, None], component=2)
observe_R = dde.icbc.PointSetBC(t_obs, (R_obs / N)[:, None], component=3)
problem = dde.data.PDE(geom, ode, [observe_I, observe_R], num_domain=256, num_boundary=0, anchors=t_obs)
net = dde.nn.FNN([1, 64, 64, 64, 4], "tanh", "Glorot normal")
model = dde.Model(problem, net)
model.compile("adam", lr=1e-3, external_trainable_variables=[log_beta, log_sigma, log_gamma])
model.train(iterations=warmup, display_every=10 ** 9, verbose=0)
t0 = time.perf_counter()
model.train(iterations=steps, display_every=10 ** 9, verbose=0)
print(json.dumps({"steps_per_s": steps / (time.perf_counter() - t0), "torch": torch.__version__,
                  "deepxde": dde.__version__, "threads": torch.get_num_threads()}))
'''


def epigate_steps_per_second(n_networks: int, steps: int) -> float:
    """Adam + CGGS steps per second per network, float32, 3x64 tanh, 256 collocation points."""
    network = NetworkConfig(width=64, depth=3, activation="tanh", n_colloc=256)
    problem = build_problem(SEIR, demo_observations(0), n_colloc=network.n_colloc)
    cfg = TrainConfig(method="cggs", pretrain_steps=0, adam_steps=steps, refine_steps=0, outer_steps=0,
                      precision="float32", network=network)
    train(problem, cfg, list(range(n_networks)))  # compile and warm up
    result = train(problem, cfg, list(range(n_networks)))
    return steps * n_networks / result.train_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deepxde-python", required=True, help="python of the environment with DeepXDE")
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    obs = demo_observations(0)
    data = {"t": obs.t.tolist(), "I": obs.values[:, 0].tolist(), "R": obs.values[:, 1].tolist(),
            "N": obs.population, "T": obs.horizon, "steps": args.steps, "warmup": 200}
    with tempfile.TemporaryDirectory() as tmp:
        program = Path(tmp) / "deepxde_seir.py"
        program.write_text(DEEPXDE_PROGRAM)
        run = subprocess.run([args.deepxde_python, str(program), json.dumps(data)], capture_output=True, text=True,
                             env={**os.environ, "DDE_BACKEND": "pytorch"})
    if run.returncode != 0:
        sys.exit(f"compare_deepxde: the DeepXDE run failed:\n{run.stderr[-3000:]}")
    dde = json.loads(run.stdout.strip().splitlines()[-1])
    one = epigate_steps_per_second(1, args.steps)
    many = epigate_steps_per_second(16, args.steps)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores; SEIR inverse "
          f"problem, 3x64 tanh, 256 collocation points, I and R at 40 times, Adam, float32, {args.steps} steps")
    print(f"DeepXDE {dde['deepxde']} (PyTorch {dde['torch']}, {dde['threads']} threads): "
          f"{dde['steps_per_s']:7.0f} steps/s")
    print(f"epigate, 1 network (CGGS, both gradients):  {one:7.0f} steps/s  = {one / dde['steps_per_s']:.1f}x DeepXDE")
    print(f"epigate, 16 networks under vmap:            {many:7.0f} steps/s per network "
          f"= {many / dde['steps_per_s']:.1f}x DeepXDE")


if __name__ == "__main__":
    main()
