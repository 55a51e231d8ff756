"""Where one first-order training step spends its time (not a test): each part of an Adam + CGGS
step timed alone, compiled (`jit` + `lax.scan` over 500 steps), on the problem of
scripts/compare_deepxde.py (SEIR demo, 3x64 tanh, 256 collocation points, float32).

    python scripts/profile_step.py                  # one network
    python scripts/profile_step.py --networks 16    # 16 networks under vmap, times per network

It also prints the work of one step as XLA counts it (floating-point operations) and the rate the
machine multiplies matrices of the network's hidden-layer shape at, batched as under vmap: their
ratio is the fastest the step could run if all its work ran at that rate.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import optax

from epigate.config import TrainConfig
from epigate.data import demo_observations
from epigate.models import SEIR
from epigate.pinn import NetworkConfig, build_problem
from epigate.train import _Steps

STEPS = 500
EPS = 1e-12  # each timed body feeds a negligible multiple of its result back, so nothing is optimised away


def seconds_per_step(step, carry) -> float:
    """Seconds per iteration of ``step`` (carry -> carry), compiled and run ``STEPS`` times in a scan."""
    run = jax.jit(lambda c: jax.lax.scan(lambda c, _: (step(c), None), c, None, length=STEPS)[0])
    jax.block_until_ready(run(carry))  # compile
    t0 = time.perf_counter()
    jax.block_until_ready(run(carry))
    return (time.perf_counter() - t0) / STEPS


def per_step_us(body, carry, networks: int) -> float:
    """Microseconds per step and network of ``body`` vmapped over ``networks`` copies of ``carry``."""
    batched = jax.tree.map(lambda x: jnp.broadcast_to(x, (networks, *jnp.shape(x))), carry)
    return 1e6 * seconds_per_step(jax.vmap(body), batched) / networks


def step_flops(body, carry) -> float:
    """Floating-point operations of one ``body`` on one network, as XLA's cost analysis counts them."""
    cost = jax.jit(body).lower(carry).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"])


def matmul_gflops(networks: int, rows: int, width: int) -> float:
    """GFLOP/s of ``networks`` batched (rows x width) @ (width x width) float32 products, each followed
    by its tanh: a hidden layer applied to the collocation points and their time tangents."""
    x = jnp.ones((networks, rows, width), jnp.float32)
    w = jnp.ones((networks, width, width), jnp.float32)
    layer = lambda x: jnp.tanh(1e-3 * jnp.einsum("bci,bio->bco", x, w))
    return 2.0 * networks * rows * width * width / seconds_per_step(layer, x) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", type=int, default=1, help="networks trained at once under vmap")
    networks = parser.parse_args().networks
    if networks < 1:
        parser.error(f"--networks must be at least 1, got {networks}")
    network = NetworkConfig(width=64, depth=3, activation="tanh", n_colloc=256)
    problem = build_problem(SEIR, demo_observations(0), n_colloc=network.n_colloc)
    cfg = TrainConfig(method="cggs", pretrain_steps=0, adam_steps=STEPS, refine_steps=0, precision="float32",
                      network=network)
    steps = _Steps(problem.spec, cfg)
    a = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), problem.arrays)
    pre, phi = steps.init(jax.random.PRNGKey(0), a)
    theta, state = pre.theta, steps.adam_init(pre.theta, phi)
    losses = lambda t: steps.losses(t, phi, a, smooth=True)

    def pair(t):
        L = losses(t)
        return jnp.stack([L.data, L.phys])

    def update_only(s):
        direction, balance, _ = steps.strategy.update(s.theta, 0.5 * s.theta, s.balance)
        zero_phi = jax.tree.map(jnp.zeros_like, s.phi)
        updates, opt_state = steps.adam.update((direction, zero_phi), s.opt_state, (s.theta, s.phi))
        new_theta, new_phi = optax.apply_updates((s.theta, s.phi), updates)
        return s._replace(theta=new_theta, phi=new_phi, opt_state=opt_state, balance=balance)

    def time_derivative(t):
        _, dv = jax.jvp(lambda tau: steps.network.represent(t, tau, a.u0), (a.tau_colloc,),
                        (jnp.ones_like(a.tau_colloc),))
        return t + EPS * jnp.sum(dv)

    parts = [
        ("whole step (two gradients, gate, Adam)", lambda s: steps.adam_step(s, a)[0], state),
        ("both gradients, as the step takes them", lambda t: t - EPS * steps.jacobian(t, phi, a)[0][0].sum(0), theta),
        ("both gradients, one jacrev of the pair", lambda t: t - EPS * jax.jacrev(pair)(t).sum(0), theta),
        ("data gradient alone", lambda t: t - EPS * jax.grad(lambda u: losses(u).data)(t), theta),
        ("physics gradient alone", lambda t: t - EPS * jax.grad(lambda u: losses(u).phys)(t), theta),
        ("both losses, forward only", lambda t: t + EPS * losses(t).phys, theta),
        ("network and its time derivative, forward", time_derivative, theta),
        ("gate + Adam update", update_only, state),
    ]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores; "
          f"{STEPS} steps per part, float32, 3x64 tanh, 256 collocation points, {networks} network(s)")
    times = []
    for name, body, carry in parts:
        times.append(per_step_us(body, carry, networks))
        print(f"{name:45s} {times[-1]:8.1f} us per step and network", flush=True)
    flops, whole = step_flops(parts[0][1], state), times[0]
    rate = matmul_gflops(networks, 2 * network.n_colloc, network.width)
    print(f"whole step: {flops / 1e6:.1f} MFLOP per network (XLA's count), run at {flops / whole / 1e3:.0f} "
          f"GFLOP/s; hidden layers of this shape (product and tanh) run at {rate:.0f} GFLOP/s here, so all of the "
          f"step's work at that rate would take {flops / rate / 1e3:.0f} us per network "
          f"({1e6 * rate * 1e3 / flops:.0f} steps/s)")


if __name__ == "__main__":
    main()
