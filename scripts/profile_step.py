"""Where one first-order training step spends its time (not a test): each part of an Adam + CGGS
step timed alone, compiled (`jit` + `lax.scan` over 500 steps), on the problem of
scripts/compare_deepxde.py (SEIR demo, 3x64 tanh, 256 collocation points, float32).

    python scripts/profile_step.py
"""

from __future__ import annotations

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


def per_step_us(body, carry) -> float:
    run = jax.jit(lambda c: jax.lax.scan(lambda c, _: (body(c), None), c, None, length=STEPS)[0])
    jax.block_until_ready(run(carry))  # compile
    t0 = time.perf_counter()
    jax.block_until_ready(run(carry))
    return 1e6 * (time.perf_counter() - t0) / STEPS


def main() -> None:
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
          f"{STEPS} steps per part, float32, 3x64 tanh, 256 collocation points")
    for name, body, carry in parts:
        print(f"{name:45s} {per_step_us(body, carry):8.1f} us per step", flush=True)


if __name__ == "__main__":
    main()
