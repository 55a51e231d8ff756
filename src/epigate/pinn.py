"""The physics-informed network and its losses.

The network maps scaled time tau = t / T in [0, 1] to the model's compartments as population
fractions. Its output layer builds the initial condition and positivity in:

    log u_i(tau) = log u0_i + tau * NN_i(tau)      for S and every compartment up to I
    R (+ D)      = 1 - sum of the above               (conservation by construction)

(with SEIRD's removed share split between R and D by a sigmoid of a further output). Because
positivity of S .. I and conservation hold exactly, no initial-condition loss is needed (see
docs/method.md, "The PINN").

Losses, all in scaled units so both start O(1):

- ``L_data``: mean squared error of the observed quantities, each channel divided by its largest
  observed value (so every channel lies in [0, 1]).
- ``L_phys``: mean squared residual ``du/dtau - T f(u; rates)`` over collocation points and
  compartments, in population fractions, du/dtau by forward-mode autodiff.

Trainable: the flat network weights ``theta`` (shape (P,)) and ``phi = (log rates, log reporting
fractions, log initial fractions)``. Entries of phi marked fixed are replaced by their known values, so they get no
gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .assumptions import Assumptions
from .data import Observations, initial_fractions, needs_interval_starts, observe_states, scaled_values
from .likelihood import data_misfit
from .models import CompartmentalModel

ACTIVATIONS = {"tanh": jnp.tanh, "silu": jax.nn.silu, "gelu": jax.nn.gelu, "sin": jnp.sin}
ZERO_FLOOR = 1e-6  # fraction used in place of a zero initial value inside a logarithm
RATE_FLOOR = 1e-8  # the closed-form rates are floored here (per time unit): a rate there is at a bound


@dataclass(frozen=True)
class NetworkConfig:
    width: int = 64
    depth: int = 3
    activation: str = "tanh"
    n_colloc: int = 256
    output_scale: float = 5.0  # multiplies NN outputs: log-states change by O(5) over the horizon

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {list(ACTIVATIONS)}")
        if self.width < 1 or self.depth < 1:
            raise ValueError(f"network width and depth must be >= 1, got {self.width}x{self.depth}")
        if self.n_colloc < 2:
            raise ValueError(f"need at least 2 collocation points, got {self.n_colloc}")


class ProblemArrays(NamedTuple):
    """The numbers a fit needs (a pytree, so a batch of them can be vmapped).

    Built in float64 NumPy; training casts them once to its own precision. Shapes: n observation
    times, k channels, c collocation points, s states, p rates; a batch adds a leading axis.
    """

    tau_obs: np.ndarray  # (n,) observation times / T
    tau_start: np.ndarray  # (n,) reporting-interval starts / T (= tau_obs when unused)
    y: np.ndarray  # (n, k) observed fractions / channel scale, 0 where missing
    mask: np.ndarray  # (n, k) 1 where observed
    scale: np.ndarray  # (k,) channel scale, fractions (largest observed value)
    tau_colloc: np.ndarray  # (c,)
    u0: np.ndarray  # (s,) initial fractions
    horizon: np.ndarray  # () T, in the data's time unit
    log_rates_fixed: np.ndarray  # (p,) log of fixed rates (ignored where free)
    log_rho_fixed: np.ndarray  # (k,) log of fixed reporting fractions (ignored where free)
    count_scale: np.ndarray  # (k,) people per unit of y (N * scale), for count likelihoods
    dispersion: np.ndarray  # () negative-binomial dispersion k


@dataclass(frozen=True)
class ProblemSpec:
    """The static (hashable) structure of a fitting problem: what is observed and what is free."""

    model: CompartmentalModel
    channels: tuple[str, ...]
    rates_free: tuple[bool, ...]
    rho_free: tuple[bool, ...]
    likelihood: str = "squared"
    u0_free: tuple[bool, ...] = ()  # per compartment: initial value estimated (never S)


@dataclass(frozen=True)
class Problem:
    """A fitting problem: static structure plus arrays (with a leading data-set axis if ``batched``)."""

    spec: ProblemSpec
    arrays: ProblemArrays
    batched: bool = False


def build_problem(model: CompartmentalModel, obs: Observations, assumptions: Assumptions = Assumptions(),
                  *, n_colloc: int = 256) -> Problem:
    """Scale observations into a :class:`Problem` (``n_colloc`` evenly spaced collocation points)."""
    assumptions.check(model, obs)
    T = float(obs.horizon)
    if T <= 0:
        raise ValueError("the last observation time must be after t = 0")
    y, mask, scale = scaled_values(obs)
    t_start = obs.t_start if (obs.t_start is not None and needs_interval_starts(obs.channels)) else obs.t
    fixed = assumptions.fixed
    rho_vals = [assumptions.reporting.get(ch, 1.0) for ch in obs.channels]
    f64 = lambda a: np.asarray(a, dtype=np.float64)
    arrays = ProblemArrays(
        tau_obs=f64(obs.t / T),
        tau_start=f64(t_start / T),
        y=f64(y),
        mask=f64(mask),
        scale=f64(scale),
        tau_colloc=np.linspace(0.0, 1.0, n_colloc),
        u0=f64(initial_fractions(model, obs)),
        horizon=f64(T),
        log_rates_fixed=f64([np.log(fixed[k]) if k in fixed else 0.0 for k in model.params]),
        log_rho_fixed=f64([0.0 if r is None else np.log(r) for r in rho_vals]),
        count_scale=f64(obs.population * scale),
        dispersion=f64(assumptions.dispersion),
    )
    spec = ProblemSpec(
        model=model,
        channels=tuple(obs.channels),
        rates_free=tuple(k not in fixed for k in model.params),
        rho_free=tuple(r is None for r in rho_vals),
        likelihood=assumptions.likelihood,
        u0_free=tuple(name in assumptions.estimate_initial for name in model.states),
    )
    return Problem(spec=spec, arrays=arrays)


def stack_problems(problems: list[Problem]) -> Problem:
    """One batched problem from problems of the same structure (e.g. noise replicates)."""
    specs = {p.spec for p in problems}
    if len(specs) != 1 or any(p.batched for p in problems):
        raise ValueError("can only stack unbatched problems with the same model, channels and free parameters")
    shapes = {tuple(np.shape(x) for x in p.arrays) for p in problems}
    if len(shapes) != 1:
        raise ValueError("can only stack problems with the same number of observation times and collocation points")
    arrays = ProblemArrays(*(np.stack(xs) for xs in zip(*(p.arrays for p in problems))))
    return Problem(problems[0].spec, arrays, batched=True)


class Network(NamedTuple):
    """A network as a flat weight vector plus how to call it."""

    init: Callable[[jax.Array], jax.Array]  # key -> theta (P,)
    states: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]  # (theta, tau (c,), u0 (s,)) -> (c, s)


def make_network(model: CompartmentalModel, config: NetworkConfig) -> Network:
    """Build the MLP tau -> compartments described in the module docstring."""
    i_inf = model.state_index(model.infectious)
    n_log = i_inf + 1  # S .. I predicted in log space
    n_removed = model.n_states - n_log  # R (and D) share the rest
    n_out = n_log + max(n_removed - 1, 0)
    activation = ACTIVATIONS[config.activation]

    def build(key):
        mlp = eqx.nn.MLP(1, n_out, config.width, config.depth, activation=activation, key=key)
        # start from the constant initial state: a zero last layer, so early curves are tame
        last = mlp.layers[-1]
        mlp = eqx.tree_at(lambda m: (m.layers[-1].weight, m.layers[-1].bias), mlp,
                          (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)))
        return mlp

    template = build(jax.random.PRNGKey(0))
    params0, static = eqx.partition(template, eqx.is_array)
    _, unravel = ravel_pytree(params0)

    def init(key):
        params, _ = eqx.partition(build(key), eqx.is_array)
        return ravel_pytree(params)[0]

    def states(theta, tau, u0):
        mlp = eqx.combine(unravel(theta), static)
        z = jax.vmap(mlp)((2.0 * tau - 1.0)[:, None]) * config.output_scale  # (c, n_out)
        log_u0 = jnp.log(jnp.maximum(u0[:n_log], ZERO_FLOOR))
        upstream = jnp.exp(log_u0 + tau[:, None] * z[:, :n_log])  # (c, n_log)
        removed = 1.0 - upstream.sum(axis=1, keepdims=True)
        if n_removed == 1:
            rest = removed
        else:  # split removed between R and D, starting from their initial ratio
            total0 = u0[n_log:].sum()
            q0 = jnp.where(total0 > 0, u0[-1] / jnp.maximum(total0, 1e-12), 0.5)
            q0 = jnp.clip(q0, 1e-6, 1 - 1e-6)
            q = jax.nn.sigmoid(jnp.log(q0 / (1 - q0)) + tau[:, None] * z[:, n_log:])
            rest = jnp.concatenate([removed * (1 - q), removed * q], axis=1)
        return jnp.concatenate([upstream, rest], axis=1)

    return Network(init=init, states=states)


def effective_phi(spec: ProblemSpec, arrays: ProblemArrays, phi):
    """(log rates, log rho, log u0) with fixed entries replaced by their known values."""
    log_rates, log_rho, log_u0 = phi
    log_rates = jnp.where(jnp.array(spec.rates_free), log_rates, arrays.log_rates_fixed)
    log_rho = jnp.where(jnp.array(spec.rho_free), log_rho, arrays.log_rho_fixed)
    log_u0 = jnp.where(jnp.array(spec.u0_free), log_u0, jnp.log(jnp.maximum(arrays.u0, ZERO_FLOOR)))
    return log_rates, log_rho, log_u0


def effective_u0(spec: ProblemSpec, arrays: ProblemArrays, log_u0):
    """Initial state (s,): known values, estimated ones from ``log_u0``, S the rest."""
    if not any(spec.u0_free):
        return arrays.u0
    u0 = jnp.where(jnp.array(spec.u0_free), jnp.exp(log_u0), arrays.u0)
    return u0.at[0].set(1.0 - u0[1:].sum())


def initial_phi(spec: ProblemSpec, arrays: ProblemArrays):
    """Starting point of phi: the model's generic guess for free rates, reporting 0.5 if free."""
    guess = spec.model.guess
    dtype = arrays.u0.dtype
    log_rates = jnp.log(jnp.array([guess[k] for k in spec.model.params], dtype=dtype))
    log_rho = jnp.where(jnp.array(spec.rho_free), jnp.log(0.5), 0.0).astype(dtype)
    log_u0 = jnp.log(jnp.maximum(arrays.u0, ZERO_FLOOR)).astype(dtype)
    return effective_phi(spec, arrays, (log_rates, log_rho, log_u0))


def optimal_log_rates(spec: ProblemSpec, u_c, du_c, arrays: ProblemArrays):
    """The free rates that minimise L_phys for a given trajectory, in closed form.

    Every model's right-hand side is linear in its rates, f(u; p) = A(u) p, so for a fixed network
    the residual du/dtau - T A(u) p is linear in p and its least-squares minimiser is one small
    linear solve (variable projection). Rates are returned as logs; fixed ones keep their values.

    Args:
        u_c, du_c: states and their tau-derivatives at the collocation points, shape (c, s).
    """
    model = spec.model
    n_p = len(model.params)
    A = jax.vmap(jax.jacfwd(lambda p, u: jnp.stack(model.rhs(u, p))), in_axes=(None, 0))(
        jnp.ones(n_p, u_c.dtype), u_c)  # (c, s, p)
    A = arrays.horizon * A
    A, b = A.reshape(-1, n_p), du_c.reshape(-1)
    free = np.array(spec.rates_free)
    fixed_rates = jnp.exp(arrays.log_rates_fixed)
    if (~free).any():
        b = b - A[:, ~free] @ fixed_rates[~free]
    A_free = A[:, free]
    col = jnp.linalg.norm(A_free, axis=0) + 1e-12  # equilibrate columns before the normal equations
    An = A_free / col
    p_free = jnp.linalg.solve(An.T @ An + 1e-10 * jnp.eye(An.shape[1], dtype=An.dtype), An.T @ b) / col
    log_free = jnp.log(jnp.maximum(p_free, RATE_FLOOR))
    return jnp.zeros(n_p, u_c.dtype).at[np.where(free)[0]].set(log_free) + jnp.where(
        jnp.array(free), 0.0, arrays.log_rates_fixed)


def make_losses(spec: ProblemSpec, network: Network, *, profile_rates: bool = False):
    """Return ``losses(theta, phi, arrays) -> (array([L_data, L_phys]), log_rates)``.

    With ``profile_rates`` the rates in ``phi`` are ignored and replaced by the L_phys-optimal
    rates of the current network (:func:`optimal_log_rates`).
    """
    model, channels = spec.model, spec.channels
    use_starts = needs_interval_starts(channels)

    def losses(theta, phi, a: ProblemArrays):
        log_rates, log_rho, log_u0 = effective_phi(spec, a, phi)
        u0 = effective_u0(spec, a, log_u0)
        # physics: du/dtau by one forward-mode pass (each output depends on its own tau only)
        tc = a.tau_colloc
        u_c, du_c = jax.jvp(lambda t: network.states(theta, t, u0), (tc,), (jnp.ones_like(tc),))
        if profile_rates:
            log_rates = optimal_log_rates(spec, u_c, du_c, a)
        f = jnp.stack(model.rhs(u_c.T, jnp.exp(log_rates)), axis=1)  # (c, s)
        l_phys = jnp.mean((du_c - a.horizon * f) ** 2)
        # data
        tau = jnp.concatenate([a.tau_obs, a.tau_start]) if use_starts else a.tau_obs
        u = network.states(theta, tau, u0)
        n = a.tau_obs.shape[0]
        pred = observe_states(model, channels, u[:n], u[n:] if use_starts else None, u0, xp=jnp)
        pred = pred * jnp.exp(log_rho) / a.scale
        per_point = data_misfit(spec.likelihood, pred, a.y, a.count_scale, a.dispersion, xp=jnp)
        l_data = (a.mask * per_point).sum() / jnp.maximum(a.mask.sum(), 1.0)
        return jnp.stack([l_data, l_phys]), log_rates

    return losses
