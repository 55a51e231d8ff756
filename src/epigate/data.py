"""Observations of an outbreak, and a deterministic generator of synthetic ones.

Counts are in people, times in the data's time unit (days by default; see ``TIME_UNITS``) since
the initial condition (t = 0). A *channel* names what a
column of values measures:

- a compartment name (``"I"``, ``"R"``, ``"D"`` …): its prevalence, people in it at time t;
- ``"incidence"``: new entries into the model's infectious compartment during the reporting
  interval ``(t_start, t]`` (e.g. daily new cases);
- ``"cumulative"``: entries into the infectious compartment since t = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .models import CompartmentalModel, get_model, initial_state, params_array, simulate_numpy

FLOW_CHANNELS = ("incidence", "cumulative")
NOISE_MODELS = ("none", "gaussian", "poisson", "negbin")
TIME_UNITS = ("day", "week", "month")


@dataclass(frozen=True)
class Observations:
    """What was measured.

    Attributes:
        t: observation times since the initial condition, in ``time_unit``, shape (n,), strictly
            increasing.
        values: counts, shape (n, k); NaN marks a missing observation.
        channels: what each of the k columns measures (see module docstring).
        population: N, people.
        initial: known initial fractions of non-susceptible compartments, e.g. ``{"I": 1/763}``.
        t_start: start of each reporting interval for ``incidence`` channels, shape (n,).
        truth: ``{"model": name, "params": {...}}`` when the data is synthetic, else None.
        source: where the data came from (file, dataset or generator description).
        start_date: calendar date of t = 0 as ISO string, when the times came from dates.
        n_missing: blank cells among the observations.
        time_unit: the unit of ``t`` (one of ``TIME_UNITS``); rates are per this unit.
    """

    t: np.ndarray
    values: np.ndarray
    channels: tuple[str, ...]
    population: float
    initial: dict[str, float]
    t_start: np.ndarray | None = None
    truth: dict | None = None
    source: str = ""
    start_date: str | None = None
    n_missing: int = 0
    time_unit: str = "day"

    def __post_init__(self):
        if self.time_unit not in TIME_UNITS:
            raise ValueError(f"unknown time unit {self.time_unit!r}; choose one of {', '.join(TIME_UNITS)}")

    @property
    def horizon(self) -> float:
        return float(self.t[-1])

    @property
    def n_valid(self) -> int:
        return int(np.isfinite(self.values).sum())

    def check_against(self, model: CompartmentalModel) -> None:
        """Raise ValueError if this data cannot be fitted by ``model``."""
        for ch in self.channels:
            if ch not in FLOW_CHANNELS and ch not in model.states:
                raise ValueError(
                    f"observed quantity {ch!r} is not a compartment of model {model.name} "
                    f"{model.states} nor one of {FLOW_CHANNELS}"
                )
        for name in self.initial:
            if name not in model.states:
                raise ValueError(f"initial value given for {name!r}, not a compartment of {model.name}")


def observe_states(model: CompartmentalModel, channels, u, u_start, u0, xp=np):
    """Map model states to the observed quantities, in population fractions.

    Works for NumPy and JAX arrays (``xp`` is the array module).

    Args:
        u: states at the observation times, shape (n, n_states).
        u_start: states at the reporting-interval starts, shape (n, n_states) (or None when no
            channel is ``incidence``).
        u0: initial state, shape (n_states,).
    Returns:
        array (n, k) of fractions, before any reporting fraction.
    """
    after = np.array(model.after_infectious)
    cols = []
    for ch in channels:
        if ch == "cumulative":
            cols.append(u[:, after].sum(axis=1) - u0[after].sum())
        elif ch == "incidence":
            cols.append(u[:, after].sum(axis=1) - u_start[:, after].sum(axis=1))
        else:
            cols.append(u[:, model.state_index(ch)])
    return xp.stack(cols, axis=1)


def scaled_values(obs: Observations) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The observations as both fits see them.

    Returns:
        y: (n, k) values / N / scale, 0 where missing; mask: (n, k) True where observed;
        scale: (k,) each channel's largest observed fraction (1/N if it is all zero), so that
        every channel lies in [0, 1] and counts equally in the data loss.
    """
    frac = np.asarray(obs.values, dtype=float) / obs.population
    mask = np.isfinite(frac)
    scale = np.array([np.nanmax(np.abs(frac[:, j])) if mask[:, j].any() else 1.0 for j in range(frac.shape[1])])
    scale = np.where(scale > 0, scale, 1.0 / obs.population)
    return np.where(mask, frac / scale, 0.0), mask, scale


def initial_fractions(model: CompartmentalModel, obs: Observations) -> np.ndarray:
    """Initial state (n_states,) in fractions: the known compartments, S the rest."""
    u0 = np.zeros(model.n_states)
    for name, value in obs.initial.items():
        u0[model.state_index(name)] = value
    u0[0] = 1.0 - u0[1:].sum()
    return u0


def needs_interval_starts(channels) -> bool:
    return "incidence" in channels


def synthetic_outbreak(
    model: CompartmentalModel | str = "seir",
    params: dict[str, float] | None = None,
    *,
    population: float = 100_000,
    horizon: float = 100.0,
    observe: tuple[str, ...] = ("I", "R"),
    n_obs: int = 40,
    spacing: str = "even",
    noise: str = "gaussian",
    noise_level: float = 0.05,
    dispersion: float = 10.0,
    initial: dict[str, float] | None = None,
    seed: int = 0,
) -> Observations:
    """Generate noisy observations of a model outbreak, deterministically from ``seed``.

    Args:
        params: true rates (1/day); default SEIR beta 0.5, sigma 0.2, gamma 0.1.
        population: N, people.
        horizon: last observation time, days.
        observe: channels to observe (compartments, ``incidence`` or ``cumulative``).
        n_obs: number of observation times, in (0, horizon].
        spacing: ``even`` (t_k = k * horizon / n_obs) or ``random`` (sorted uniform, seeded).
        noise: ``none``; ``gaussian`` relative (x * (1 + level * eps)); ``poisson`` counts;
            ``negbin`` counts with mean x and variance x + x^2 / dispersion.
        initial: initial fractions of non-susceptible compartments; default E = I = 1e-3
            (or I = 1e-3 for models without E).
    """
    model = get_model(model) if isinstance(model, str) else model
    if params is None:
        params = {"beta": 0.5, "sigma": 0.2, "gamma": 0.1, "mu": 0.01}
    params = {k: params[k] for k in model.params if k in params}
    p = params_array(model, params)
    if initial is None:
        initial = {"E": 1e-3, "I": 1e-3} if "E" in model.states else {"I": 1e-3}
    if noise not in NOISE_MODELS:
        raise ValueError(f"unknown noise model {noise!r}; choose one of {NOISE_MODELS}")
    if spacing not in ("even", "random"):
        raise ValueError(f"spacing must be 'even' or 'random', got {spacing!r}")
    if n_obs < 2:
        raise ValueError(f"need at least 2 observation times, got {n_obs}")
    u0 = initial_state(model, initial)
    rng = np.random.default_rng(seed)
    if spacing == "even":
        t = horizon * np.arange(1, n_obs + 1) / n_obs
    else:
        t = np.sort(rng.uniform(0.0, horizon, n_obs))
        t[-1] = horizon
    interval = np.diff(np.concatenate([[0.0], t]))
    t_start = t - interval
    grid = np.unique(np.concatenate([[0.0], t, t_start]))
    u_grid = simulate_numpy(model, p, u0, grid)
    at = lambda times: u_grid[np.searchsorted(grid, times)]
    obs_tmp = Observations(t=t, values=np.zeros((n_obs, len(observe))), channels=tuple(observe),
                           population=population, initial=initial)
    obs_tmp.check_against(model)
    clean = population * observe_states(model, observe, at(t), at(t_start), u0)
    clean = np.maximum(clean, 0.0)
    if noise == "none":
        values = clean
    elif noise == "gaussian":
        values = np.maximum(clean * (1.0 + noise_level * rng.standard_normal(clean.shape)), 0.0)
    elif noise == "poisson":
        values = rng.poisson(clean).astype(float)
    else:
        # numpy's negative binomial: n = dispersion, p = n / (n + mean)
        values = rng.negative_binomial(dispersion, dispersion / (dispersion + clean)).astype(float)
    return Observations(
        t=t,
        values=values,
        channels=tuple(observe),
        population=float(population),
        initial=dict(initial),
        t_start=t_start if needs_interval_starts(observe) else None,
        truth={"model": model.name, "params": dict(params)},
        source=(f"synthetic {model.name} {params}, N={population:g}, {n_obs} {spacing} times over "
                f"{horizon:g} days, noise={noise}" + (f" {noise_level:g}" if noise == "gaussian" else "")
                + f", seed={seed}"),
    )


DEMO = dict(
    model="seir",
    params={"beta": 0.5, "sigma": 0.2, "gamma": 0.1},
    population=100_000,
    horizon=100.0,
    observe=("I", "R"),
    n_obs=40,
    noise="gaussian",
    noise_level=0.05,
    initial={"E": 1e-3, "I": 1e-3},
)


def demo_observations(seed: int = 0) -> Observations:
    """The bundled demo: SEIR, N = 1e5, beta 0.5, sigma 0.2, gamma 0.1, I and R at 40 times over
    100 days with 5 % relative gaussian noise; E = I = 100 people at t = 0."""
    return synthetic_outbreak(**DEMO, seed=seed)
