"""Ways to combine the data and physics gradients of the shared network weights.

Every strategy is a small pure object in the style of optax's ``GradientTransformation``::

    state = strategy.init()
    direction, state, info = strategy.update(g_data, g_phys, state)

``g_data`` and ``g_phys`` are flat gradients (shape (P,)) of L_data and L_phys with respect to the
network weights only; ``direction`` is what the optimiser receives for those weights. ``info`` is a
:class:`StepInfo` of scalars: cosine ``c``, magnitude ratio ``m = |g_d| / |g_p|``, physics weight
``lam`` (the effective weight of g_phys, NaN for projection methods where no single weight exists),
and the two norms. The state of a weighting strategy is its current weight lambda (a scalar); the
projection methods (``pcgrad``, ``config``) keep no state (an empty tuple).

CGGS (docs/method.md, "CGGS and the baselines")::

    s = sigmoid(kappa (c - threshold));  lam_hat = clip(s m, lam_min, lam_max);
    lam <- (1 - alpha) lam + alpha lam_hat;  direction = g_d + lam g_p

With alpha = 1 and no clipping, <g_d, direction> = |g_d|^2 (1 + c s(c)) >= (1 - M(kappa)) |g_d|^2
where M(kappa) = max_{x in [0,1]} x sigmoid(-kappa x): every step descends the data loss.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

EPS = 1e-12


class StepInfo(NamedTuple):
    """What one combination step saw and did (scalars)."""

    c: jax.Array  # cosine of g_d and g_p
    m: jax.Array  # magnitude ratio |g_d| / |g_p|
    lam: jax.Array  # effective physics weight (NaN for projection methods)
    norm_data: jax.Array
    norm_phys: jax.Array


class UpdateFn(Protocol):
    """``update(g_data, g_phys, state) -> (direction, new state, info)``, all flat (P,) vectors."""

    def __call__(self, g_data: jax.Array, g_phys: jax.Array, state: Any) -> tuple[jax.Array, Any, StepInfo]: ...


class Strategy(NamedTuple):
    name: str
    init: Callable[[], Any]  # () -> state (a pytree)
    update: UpdateFn


def gradient_stats(g_d, g_p, eps: float = EPS):
    """Cosine c, magnitude ratio m and both norms of two flat gradients."""
    nd = jnp.linalg.norm(g_d)
    np_ = jnp.linalg.norm(g_p)
    c = jnp.dot(g_d, g_p) / (nd * np_ + eps)
    m = nd / (np_ + eps)
    return c, m, nd, np_


def _weighted(name: str, target: Callable, *, alpha: float, lam_init: float) -> Strategy:
    """A strategy of the form direction = g_d + lam g_p with lam an EMA of ``target``."""

    def update(g_d, g_p, lam):
        c, m, nd, np_ = gradient_stats(g_d, g_p)
        lam_hat = jax.lax.stop_gradient(target(g_d, g_p, c, m))
        lam = (1.0 - alpha) * lam + alpha * lam_hat
        return g_d + lam * g_p, lam, StepInfo(c, m, lam, nd, np_)

    return Strategy(name, lambda: jnp.asarray(lam_init, jnp.result_type(float)), update)


def fixed(weight: float = 1.0, name: str = "fixed") -> Strategy:
    """Plain weighted sum g_d + weight * g_p."""
    return _weighted(name, lambda g_d, g_p, c, m: jnp.asarray(weight, g_d.dtype), alpha=1.0, lam_init=weight)


def magnitude(alpha: float = 1.0, lam_min: float = 0.0, lam_max: float = np.inf, lam_init: float = 1.0) -> Strategy:
    """Magnitude balancing: lam_hat = clip(m) (CGGS without its gate)."""
    return _weighted("magnitude", lambda g_d, g_p, c, m: jnp.clip(m, lam_min, lam_max),
                     alpha=alpha, lam_init=lam_init)


def lra(alpha: float = 0.1, lam_init: float = 1.0) -> Strategy:
    """Wang, Teng & Perdikaris (2021) learning-rate annealing with the data loss as reference:
    lam_hat = max |g_d| / mean |g_p|, smoothed by an EMA."""
    target = lambda g_d, g_p, c, m: jnp.max(jnp.abs(g_d)) / (jnp.mean(jnp.abs(g_p)) + EPS)
    return _weighted("lra", target, alpha=alpha, lam_init=lam_init)


def gate(c, kappa: float, threshold: float):
    """The conflict gate s = sigmoid(kappa (c - threshold)) in (0, 1), elementwise; works on NumPy
    and JAX arrays (the benchmark applies it to recorded cosines)."""
    return jax.nn.sigmoid(kappa * (jnp.asarray(c) - threshold))


def cggs(kappa: float = 5.0, threshold: float = 0.0, lam_min: float = 0.0, lam_max: float = np.inf,
         alpha: float = 1.0, lam_init: float = 1.0, name: str = "cggs") -> Strategy:
    """Conflict-Gated Gradient Scaling: lam_hat = clip(sigmoid(kappa (c - threshold)) m, lam_min, lam_max).

    The defaults (no clip, alpha = 1) are the literal formula of docs/method.md (``cggs_literal``).
    """
    target = lambda g_d, g_p, c, m: jnp.clip(gate(c, kappa, threshold) * m, lam_min, lam_max)
    return _weighted(name, target, alpha=alpha, lam_init=lam_init)


def gate_only(weight: float = 1.0, kappa: float = 5.0, threshold: float = 0.0, alpha: float = 1.0) -> Strategy:
    """Ablation: lam_hat = weight * sigmoid(kappa (c - threshold)), no magnitude term."""
    return _weighted("gate_only", lambda g_d, g_p, c, m: weight * gate(c, kappa, threshold),
                     alpha=alpha, lam_init=weight)


def pcgrad(weight: float = 1.0) -> Strategy:
    """Yu et al. (2020) for two tasks: if the gradients g_d and weight*g_p conflict (c < 0), project
    each onto the normal plane of the other, then sum; otherwise sum."""

    def update(g_d, g_p, state):
        c, m, nd, np_ = gradient_stats(g_d, g_p)
        g2 = weight * g_p
        dot = jnp.dot(g_d, g2)
        proj_d = g_d - dot / (jnp.dot(g2, g2) + EPS) * g2
        proj_p = g2 - dot / (jnp.dot(g_d, g_d) + EPS) * g_d
        direction = jnp.where(dot < 0, proj_d + proj_p, g_d + g2)
        return direction, state, StepInfo(c, m, jnp.full_like(c, jnp.nan), nd, np_)

    return Strategy("pcgrad", tuple, update)


def config(weight: float = 1.0) -> Strategy:
    """Liu, Chu & Thuerey (2024) ConFIG, closed form for two gradients: the direction is the
    bisector b of the unit gradients (the only unit vector with equal projections on both, which
    are positive unless c = -1), scaled by the summed projections (g_d + weight g_p) . b."""

    def update(g_d, g_p, state):
        c, m, nd, np_ = gradient_stats(g_d, g_p)
        g2 = weight * g_p
        bisector = g_d / (nd + EPS) + g_p / (np_ + EPS)
        b = bisector / (jnp.linalg.norm(bisector) + EPS)
        direction = (jnp.dot(g_d, b) + jnp.dot(g2, b)) * b
        return direction, state, StepInfo(c, m, jnp.full_like(c, jnp.nan), nd, np_)

    return Strategy("config", tuple, update)


METHODS = ("fixed", "floor", "magnitude", "lra", "pcgrad", "config", "gate_only", "cggs", "cggs_literal")


def descent_constant(kappa: float, threshold: float = 0.0, n: int = 100_001) -> float:
    """1 - max_{x in [0,1]} x sigmoid(kappa (-x - threshold)): CGGS's guaranteed descent fraction."""
    x = np.linspace(0.0, 1.0, n)
    return float(1.0 - np.max(x / (1.0 + np.exp(-kappa * (-x - threshold)))))
