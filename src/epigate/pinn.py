"""The physics-informed network and its losses, in the log-ratio formulation.

An outbreak that starts from one case in a million grows over six orders of magnitude; a network
that outputs the compartments (or their logarithms) directly has to resolve all of them at once,
and fails (docs/method.md, "The PINN"). The network here outputs quantities that stay O(1) for any
seed size instead, an exact rewrite of the model (I the infectious compartment, C(t) the
cumulative entries into I since t = 0):

    x   = log I
    q_j = E_j / I                  for each compartment E_j between S and I (SEIR's E)
    c   = C / I
    d_j = (D_j - D_j(0)) / I       for each compartment after R (SEIRD's D)

and every compartment follows from them: I = e^x, E_j = q_j I, D_j = D_j(0) + d_j I,
R = R(0) + C - (I - I(0)) - sum_j (D_j - D_j(0)), S = 1 - the rest. Conservation holds exactly;
the output layer (:func:`make_network`) builds the initial condition in and keeps x <= 0 and
q, c, d >= 0 and C below what can still enter I, so I, E, D and S are non-negative; R is whenever the
residual is small.

Losses, in scaled units so that both start O(1):

- ``L_data``: the likelihood's misfit of the observed quantities, the same objective as least
  squares' (each channel divided by its largest observed value; count deviances divided by the
  largest count, one constant, so that they are on the scale of a squared error).
- ``L_phys``: mean squared residual of the rewritten ODE, rows ``dv/dtau - T g(v; rates)`` for
  each representation variable v, the c and d rows divided by (1 + v) so that no row dominates
  once c grows; dv/dtau by one forward-mode ``jax.jvp``.

Every model's right-hand side is linear in its rates, so the residual is too:
``r = b - A p``. The rates are never trained: for the current network they are the closed-form
minimiser of the (augmented) physics loss (:func:`optimal_rates`, variable projection).

Trainable: the flat vector ``theta`` (network weights and the growth offset g, shape (P,)) and
``phi = (log rates, log reporting fractions, log initial fractions)``; only reporting fractions
and initial values marked as estimated are used from phi (the rates in phi are a record of the
closed-form values).
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
from .data import Observations, initial_fractions, needs_interval_starts, scaled_values
from .likelihood import SCALE_ESTIMATED, data_misfit
from .models import CompartmentalModel

ACTIVATIONS = {"tanh": jnp.tanh, "silu": jax.nn.silu, "gelu": jax.nn.gelu, "sin": jnp.sin}
ZERO_FLOOR = 1e-6  # log placeholder of a pinned zero initial value in phi (the model uses the pinned value)
RATE_FLOOR = 1e-8  # the closed-form rates are floored here (per time unit): a rate there is at a bound
COUNT_FLOOR = 1e-3  # people: the predicted mean of a count likelihood is floored here
LOG_I_SCALE = 5.0  # x = log I changes by O(5) per unit of network output over the horizon
RATIO_SCALE = 2.0  # q's log-multiplier and additive term scale


@dataclass(frozen=True)
class NetworkConfig:
    """The MLP and its collocation points.

    Attributes:
        n_colloc: evenly spaced collocation points on [0, 1]; ``n_colloc // 8`` more are placed
            geometrically in [1e-4, 0.05], where the early growth is resolved.
    """

    width: int = 64
    depth: int = 3
    activation: str = "tanh"
    n_colloc: int = 512

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {list(ACTIVATIONS)}")
        if self.width < 1 or self.depth < 1:
            raise ValueError(f"network width and depth must be >= 1, got {self.width}x{self.depth}")
        if self.n_colloc < 8:
            raise ValueError(f"need at least 8 collocation points, got {self.n_colloc}")


def collocation_points(n_colloc: int) -> np.ndarray:
    """(c,) sorted scaled times: ``n_colloc`` uniform on [0, 1] plus ``n_colloc // 8`` geometric early."""
    early = np.geomspace(1e-4, 0.05, n_colloc // 8)
    return np.unique(np.concatenate([np.linspace(0.0, 1.0, n_colloc), early]))


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
    u0: np.ndarray  # (s,) initial fractions; estimated ones where training starts (:func:`starting_state`)
    horizon: np.ndarray  # () T, in the data's time unit
    rates_guess: np.ndarray  # (p,) where training starts: fixed rates' values, the model's guess for free ones
    log_rho_fixed: np.ndarray  # (k,) log of fixed reporting fractions (ignored where free)
    count_scale: np.ndarray  # (k,) people per unit of y (N * scale), for count likelihoods
    dispersion: np.ndarray  # () negative-binomial dispersion k
    growth_guess: np.ndarray  # () the initial offset g: T x the early growth rate at rates_guess, at most -0.8 log I(0)
    relaxation_guess: np.ndarray  # () T x the rate at which E/I settles at rates_guess (the network's kappa)


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


class EarlyDynamics(NamedTuple):
    """The model linearised in E .. I with S held at S(0), per time unit."""

    growth: float  # the exponential growth rate: the largest eigenvalue
    relaxation: float  # how fast E/I settles onto the growth mode: the gap to the next eigenvalue (0 for SIR)
    mode: np.ndarray  # (number of states E .. I,) the growth mode's shape: each of E .. I divided by I


def early_dynamics(model: CompartmentalModel, rates: np.ndarray, u0: np.ndarray) -> EarlyDynamics:
    """Growth and relaxation rates (per time unit) and growth mode of the infected compartments at
    the start."""
    infected = list(range(1, model.state_index(model.infectious) + 1))
    f0 = np.array(model.rhs(u0, rates))
    # the infected rows are linear in the infected states while S is held fixed: differences are exact
    jac = np.empty((len(infected), len(infected)))
    for j, i in enumerate(infected):
        u = u0.copy()
        u[i] += 1.0
        jac[:, j] = (np.array(model.rhs(u, rates)) - f0)[infected]
    values, vectors = np.linalg.eig(jac)
    order = np.argsort(values.real)[::-1]
    eigen, leading = values.real[order], vectors[:, order[0]].real
    return EarlyDynamics(float(eigen[0]), float(eigen[0] - eigen[1]) if len(eigen) > 1 else 0.0,
                         leading / leading[-1])


def starting_state(model: CompartmentalModel, u0: np.ndarray, estimate_initial, rates: np.ndarray,
                   person: float) -> np.ndarray:
    """(s,) the initial fractions training starts from: the given ones, except that an estimated
    value starts at least at one person (``person``, a fraction), and an estimated compartment
    between S and I (SEIR's E) on the early growth mode at ``rates`` relative to I (SEIR: E/I =
    (growth + gamma) / sigma). The first formulation started it at 1e-6 of the population, ten
    times a one-person seed in ten million: the network's closed-form sigma and gamma went
    negative in the first Adam steps, were floored, and training settled on a constant epidemic.
    Starting it near zero (1 % of the mode) removed that collapse; on the mode, two more
    one-in-1e7 cases reach least squares (docs/method.md, "The start")."""
    start = u0.copy()
    infectious = model.state_index(model.infectious)
    for name in estimate_initial:
        i = model.state_index(name)
        start[i] = max(start[i], person)
    mode = early_dynamics(model, rates, start).mode
    for j, i in enumerate(range(1, infectious)):
        if model.states[i] in estimate_initial:
            start[i] = mode[j] * start[infectious]
    start[0] = 1.0 - start[1:].sum()
    return start


def build_problem(model: CompartmentalModel, obs: Observations, assumptions: Assumptions = Assumptions(),
                  *, n_colloc: int = 512) -> Problem:
    """Scale observations into a :class:`Problem`."""
    assumptions.check(model, obs)
    T = float(obs.horizon)
    if T <= 0:
        raise ValueError("the last observation time must be after t = 0")
    fixed = assumptions.fixed
    rates_guess = np.array([fixed.get(k, model.guess[k]) for k in model.params], dtype=np.float64)
    u0 = starting_state(model, initial_fractions(model, obs), assumptions.estimate_initial, rates_guess,
                        1.0 / obs.population)
    infectious = model.infectious
    if not u0[model.state_index(infectious)] > 0:
        raise ValueError(f"the PINN needs a positive initial value of {infectious} (its log is a state of the "
                         f"network): give --initial {infectious}=PEOPLE, or {infectious}=estimate")
    y, mask, scale = scaled_values(obs)
    t_start = obs.t_start if (obs.t_start is not None and needs_interval_starts(obs.channels)) else obs.t
    rho_vals = [assumptions.reporting.get(ch, 1.0) for ch in obs.channels]
    f64 = lambda a: np.asarray(a, dtype=np.float64)
    early = early_dynamics(model, rates_guess, u0)
    arrays = ProblemArrays(
        tau_obs=f64(obs.t / T),
        tau_start=f64(t_start / T),
        y=f64(y),
        mask=f64(mask),
        scale=f64(scale),
        tau_colloc=collocation_points(n_colloc),
        u0=f64(u0),
        horizon=f64(T),
        rates_guess=rates_guess,
        log_rho_fixed=f64([0.0 if r is None else np.log(r) for r in rho_vals]),
        count_scale=f64(obs.population * scale),
        dispersion=f64(assumptions.dispersion),
        # start growing at the guess rates' early rate, but not past I = 1 by the end of the data
        growth_guess=f64(min(T * early.growth, -0.8 * np.log(u0[model.state_index(infectious)]))),
        relaxation_guess=f64(T * early.relaxation),
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


@dataclass(frozen=True)
class Layout:
    """Where each compartment of ``model`` lives in the representation (module docstring)."""

    infectious: int  # index of I among the states
    before: tuple[int, ...]  # states between S and I (q variables)
    removed: int  # index of R (derived from C)
    after: tuple[int, ...]  # states after R (d variables)

    @staticmethod
    def of(model: CompartmentalModel) -> "Layout":
        i = model.state_index(model.infectious)
        return Layout(i, tuple(range(1, i)), i + 1, tuple(range(i + 2, model.n_states)))

    @property
    def n_vars(self) -> int:
        """Representation variables: x, q_j, c, d_j."""
        return 2 + len(self.before) + len(self.after)

    def compartments(self, v, u0):
        """States (c, s) and cumulative entries into I, C (c,), from the representation v (c, n_vars)."""
        x, q = v[:, 0], v[:, 1:1 + len(self.before)]
        c, d = v[:, 1 + len(self.before)], v[:, 2 + len(self.before):]
        infectious = jnp.exp(x)
        cumulative = c * infectious
        cols = {self.infectious: infectious}
        for j, i in enumerate(self.before):
            cols[i] = q[:, j] * infectious
        new_after = d * infectious[:, None]
        for j, i in enumerate(self.after):
            cols[i] = u0[i] + new_after[:, j]
        cols[self.removed] = u0[self.removed] + cumulative - (infectious - u0[self.infectious]) - new_after.sum(axis=1)
        rest = sum(cols.values())
        n = len(cols) + 1
        states = jnp.stack([1.0 - rest] + [cols[i] for i in range(1, n)], axis=1)
        return states, cumulative


class Network(NamedTuple):
    """A network as a flat weight vector plus how to call it."""

    init: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]  # (key, growth offset g, kappa) -> theta (P,)
    represent: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]  # (theta, tau (c,), u0 (s,)) -> v (c, n_vars)
    layout: Layout

    def states(self, theta, tau, u0):
        """(c, s) population fractions at scaled times ``tau``."""
        return self.layout.compartments(self.represent(theta, tau, u0), u0)[0]


EARLY_TIME = 0.01  # tau scale of the log-time input feature that resolves the first days


def input_features(tau):
    """(c, 2) network inputs in [-1, 1]: scaled time, and log-time stretched at tau ~ EARLY_TIME so that
    fast transients at the start (E/I settling onto the growth mode) are as easy to fit as the rest."""
    log_time = jnp.log1p(tau / EARLY_TIME) / np.log1p(1.0 / EARLY_TIME)
    return jnp.stack([2.0 * tau - 1.0, 2.0 * log_time - 1.0], axis=1)


def cumulative_over_i(clock, log_level, x):
    """(c,) a cumulative quantity K divided by I: K = s e^l / (1 + s e^l) for the clock s (>= 0, s = 0 at
    t = 0) and the log level l, so 0 <= K < 1 and K(0) = 0; returned as K e^-x.

    K is represented by its own logarithm, not as a ratio to I: after the peak K levels off while
    I decays over many orders of magnitude, and a ratio would make the network cancel two outputs
    that each change by e^30 (on a 300-day horizon) to keep S = 1 - K - ... right to 1e-4.
    """
    positive = clock > 0
    log_clock = jnp.log(jnp.where(positive, clock, 1.0))  # clock = 0 gives K = 0 through the factor clock
    saturation = jnp.where(positive, jax.nn.softplus(log_level + log_clock), 0.0)  # log(1 + s e^l)
    return clock * jnp.exp(log_level - saturation - x)


def make_network(model: CompartmentalModel, config: NetworkConfig) -> Network:
    """The MLP tau -> representation of the module docstring. Outputs z (one per variable, and
    two per q):

        x(tau)   = -softplus(-(log I0 + tau (g + 5 z_x)))             (x <= 0; g a trainable offset)
        q_j(tau) = q_j(0) exp(2 tau z_a) (1 - ramp) + 2 ramp(tau) softplus(z_b)    (q >= 0, from its initial value)
        c(tau)   = P K(tau w(tau); l_c) / I,   d_j(tau) = K(tau; l_d) / I,   l = log I0 + tau g + 5 z
                                                          (>= 0, zero at t = 0; K: :func:`cumulative_over_i`)

    with P = S(0) + sum_j E_j(0) - sum_j E_j(tau), what can still enter I: C <= P, so S = P (1 - K) >= 0
    while the E_j are below S(0) + sum_j E_j(0) (always, in practice). ``ramp = 1 - exp(-kappa tau)``
    is the settling of E/I onto the growth mode (kappa: T x the relaxation rate at the guess rates,
    :func:`early_dynamics`, a few days whatever the horizon): without it the network has to output
    ~T beta at tau = 0 and O(1) a few days later when E(0) = 0. The same delay is in C's clock,
    ``w = e + (1 - e) ramp`` with e = E(0) / (E(0) + I(0)): with E(0) = 0 nothing enters I at first,
    C grows as t^2, and log(C / tau) would have to fall to -infinity at t = 0. q(0) fades over the
    same settling (the factor 1 - ramp): added on top of the settled level instead, an E(0) as
    large as I(0) made a new network's E/I rise to q(0) + 1.4 within days, and on a seed of one
    person in ten million training then settled on a constant epidemic (docs/method.md, "The start").

    ``theta`` is (MLP weights, g, kappa); kappa is a constant the network carries (its gradient is
    stopped), so that a trained network is self-contained. The last layer starts at zero, so a new
    network is pure exponential growth at rate g / T.
    """
    layout = Layout.of(model)
    nb, na = len(layout.before), len(layout.after)
    n_out = 2 + 2 * nb + na
    activation = ACTIVATIONS[config.activation]

    def build(key):
        mlp = eqx.nn.MLP(2, n_out, config.width, config.depth, activation=activation, key=key)
        last = mlp.layers[-1]
        return eqx.tree_at(lambda m: (m.layers[-1].weight, m.layers[-1].bias), mlp,
                           (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)))

    params0, static = eqx.partition(build(jax.random.PRNGKey(0)), eqx.is_array)
    _, unravel = ravel_pytree(params0)

    def init(key, growth, kappa):
        weights = ravel_pytree(eqx.partition(build(key), eqx.is_array)[0])[0]
        extra = jnp.stack([jnp.asarray(growth), jnp.asarray(kappa)]).astype(weights.dtype)
        return jnp.concatenate([weights, extra])

    def represent(theta, tau, u0):
        mlp = eqx.combine(unravel(theta[:-2]), static)
        growth, kappa = theta[-2], jax.lax.stop_gradient(theta[-1])
        z = jax.vmap(mlp)(input_features(tau))  # (c, n_out)
        log_i0 = jnp.log(u0[layout.infectious])
        x = -jax.nn.softplus(-(log_i0 + tau * (growth + LOG_I_SCALE * z[:, 0])))
        ramp = -jnp.expm1(-kappa * tau)
        cols = [x]
        for j, i in enumerate(layout.before):
            q0 = u0[i] / u0[layout.infectious]
            za, zb = z[:, 1 + 2 * j], z[:, 2 + 2 * j]
            cols.append(q0 * jnp.exp(RATIO_SCALE * tau * za) * (1.0 - ramp) + RATIO_SCALE * ramp * jax.nn.softplus(zb))
        exposed0 = sum(u0[i] for i in layout.before)
        pool = u0[0] + exposed0 - sum(cols[1:]) * jnp.exp(x)
        early = exposed0 / (exposed0 + u0[layout.infectious]) if layout.before else 1.0
        clock = tau * (early + (1.0 - early) * ramp)
        levels = [log_i0 + tau * growth + LOG_I_SCALE * z[:, 1 + 2 * nb + j] for j in range(1 + na)]
        cols.append(pool * cumulative_over_i(clock, levels[0], x))
        cols += [cumulative_over_i(tau, level, x) for level in levels[1:]]  # each d_j
        return jnp.stack(cols, axis=1)

    return Network(init=init, represent=represent, layout=layout)


def effective_phi(spec: ProblemSpec, arrays: ProblemArrays, phi):
    """(log rates, log rho, log u0) with fixed entries replaced by their known values."""
    log_rates, log_rho, log_u0 = phi
    log_rates = jnp.where(jnp.array(spec.rates_free), log_rates, jnp.log(arrays.rates_guess))
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
    """Starting point of phi: the guess rates, reporting 0.5 if free, the initial values of
    :func:`starting_state`."""
    dtype = arrays.u0.dtype
    log_rates = jnp.log(arrays.rates_guess)
    log_rho = jnp.where(jnp.array(spec.rho_free), jnp.log(0.5), 0.0).astype(dtype)
    log_u0 = jnp.log(jnp.where(arrays.u0 > 0, arrays.u0, ZERO_FLOOR)).astype(dtype)  # estimated ones are > 0
    return effective_phi(spec, arrays, (log_rates, log_rho, log_u0))


def residual_system(spec: ProblemSpec, layout: Layout, v, dv, u0, horizon):
    """The physics residual as a linear function of the rates: ``r(p) = b - A p``.

    Args:
        v, dv: representation and its tau-derivative at the collocation points, (c, n_vars).
    Returns:
        A (c * n_vars, p) and b (c * n_vars,), rows weighted as in the module docstring.
    """
    model = spec.model
    states, _ = layout.compartments(v, u0)
    infectious = states[:, layout.infectious]

    def rhs_over_i(p):  # d(v)/dt of the rewritten model at these states, per variable (c, n_vars)
        f = jnp.stack(model.rhs(states.T, p), axis=1) / infectious[:, None]
        growth = f[:, layout.infectious]  # I'/I
        inflow = f[:, layout.infectious:].sum(axis=1)  # C'/I: what enters I (and stays in I..R..D)
        cols = [growth]
        cols += [f[:, i] - v[:, 1 + j] * growth for j, i in enumerate(layout.before)]
        cols.append(inflow - v[:, 1 + len(layout.before)] * growth)
        cols += [f[:, i] - v[:, 2 + len(layout.before) + j] * growth for j, i in enumerate(layout.after)]
        return jnp.stack(cols, axis=1)

    n_p = len(model.params)
    A = jax.jacfwd(rhs_over_i)(jnp.ones(n_p, v.dtype))  # (c, n_vars, p): exact, the rhs is linear in p
    weight = jnp.ones_like(v).at[:, 1 + len(layout.before):].set(1.0 / (1.0 + v[:, 1 + len(layout.before):]))
    A = horizon * A * weight[..., None]
    b = dv * weight
    return A.reshape(-1, n_p), b.reshape(-1)


def optimal_rates(spec: ProblemSpec, A, b, rates_guess, shift=None):
    """The free rates minimising ``mean((b - A p)^2)`` (or, with the augmented-Lagrangian
    ``shift = mu / (2 lam)``, ``mean(mu r) / lam + mean(r^2)``), fixed rates at their values:
    one small linear least-squares solve, columns equilibrated. Returns rates (p,), floored at
    ``RATE_FLOOR``."""
    free = np.array(spec.rates_free)
    if shift is not None:
        b = b + shift
    if (~free).any():
        b = b - A[:, ~free] @ rates_guess[~free]
    A_free = A[:, free]
    col = jnp.linalg.norm(A_free, axis=0) + 1e-30
    An = A_free / col
    p_free = jnp.linalg.solve(An.T @ An + 1e-12 * jnp.eye(An.shape[1], dtype=An.dtype), An.T @ b) / col
    return rates_guess.at[np.where(free)[0]].set(jnp.maximum(p_free, RATE_FLOOR))


def observe(spec: ProblemSpec, layout: Layout, v, v_start, u0):
    """Observed quantities (n, k) in population fractions (before reporting) from the representation."""
    states, cumulative = layout.compartments(v, u0)
    cols = []
    for ch in spec.channels:
        if ch == "cumulative":
            cols.append(cumulative)
        elif ch == "incidence":
            cols.append(cumulative - layout.compartments(v_start, u0)[1])
        else:
            cols.append(states[:, spec.model.state_index(ch)])
    return jnp.stack(cols, axis=1)


class Losses(NamedTuple):
    """Both losses of one network and the rates they were evaluated at."""

    data: jax.Array  # ()
    phys: jax.Array  # () mean squared residual (without the augmented-Lagrangian term)
    rates: jax.Array  # (p,)
    residual: jax.Array  # (rows,)


def make_predictions(spec: ProblemSpec, network: Network):
    """Return ``predictions(theta, log_rho, u0, arrays) -> (n, k)``: the observed quantities as the
    network predicts them, reported and divided by each channel's scale (the units of ``arrays.y``)."""
    layout = network.layout
    use_starts = needs_interval_starts(spec.channels)

    def predictions(theta, log_rho, u0, a: ProblemArrays):
        n = a.tau_obs.shape[0]
        tau = jnp.concatenate([a.tau_obs, a.tau_start]) if use_starts else a.tau_obs
        v_obs = network.represent(theta, tau, u0)
        pred = observe(spec, layout, v_obs[:n], v_obs[n:] if use_starts else None, u0)
        return pred * jnp.exp(log_rho) / a.scale

    return predictions


def data_loss(spec: ProblemSpec, pred, a: ProblemArrays, *, smooth: bool = False):
    """``L_data`` () of scaled predictions (n, k): the likelihood's mean misfit over observed points.

    ``smooth`` replaces the hard count floor by a smooth one (its gradient is zero below the hard
    floor, where a tiny seed starts)."""
    counts = spec.likelihood not in SCALE_ESTIMATED
    if counts and smooth:
        people = pred * a.count_scale
        pred = (COUNT_FLOOR + jax.nn.softplus(10.0 * (people - COUNT_FLOOR)) / 10.0) / a.count_scale
    per_point = data_misfit(spec.likelihood, pred, a.y, a.count_scale, a.dispersion, xp=jnp)
    if counts:  # a deviance is about count x squared scaled error: back to O(squared error), by one
        per_point = per_point / jnp.max(a.count_scale)  # constant, so the optimum stays least squares'
    return (a.mask * per_point).sum() / jnp.maximum(a.mask.sum(), 1.0)


def physics_system(spec: ProblemSpec, network: Network, theta, u0, a: ProblemArrays):
    """The network's residual system ``(A, b)`` at the collocation points (:func:`residual_system`)."""
    tc = a.tau_colloc
    v, dv = jax.jvp(lambda t: network.represent(theta, t, u0), (tc,), (jnp.ones_like(tc),))
    return residual_system(spec, network.layout, v, dv, u0, a.horizon)


def make_losses(spec: ProblemSpec, network: Network):
    """Return ``losses(theta, phi, arrays, *, rates=None, shift=None, smooth=False) -> Losses``.

    ``rates=None`` uses the closed-form rates of the network (:func:`optimal_rates`, with the
    augmented-Lagrangian ``shift``); ``smooth`` as in :func:`data_loss`.
    """
    predictions = make_predictions(spec, network)

    def losses(theta, phi, a: ProblemArrays, *, rates=None, shift=None, smooth=False) -> Losses:
        _, log_rho, log_u0 = effective_phi(spec, a, phi)
        u0 = effective_u0(spec, a, log_u0)
        A, b = physics_system(spec, network, theta, u0, a)
        if rates is None:
            rates = optimal_rates(spec, A, b, a.rates_guess, shift)
        residual = b - A @ rates
        data = data_loss(spec, predictions(theta, log_rho, u0, a), a, smooth=smooth)
        return Losses(data, jnp.mean(residual ** 2), rates, residual)

    return losses
