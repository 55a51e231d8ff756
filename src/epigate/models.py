"""Compartmental epidemic models as data.

Every model works in *population fractions* (states sum to 1) and in the time unit of the data
(days unless the data say otherwise). A model's right-hand
side ``rhs(u, p)`` takes a sequence of state values ``u`` (in the order of ``states``) and a
sequence of rates ``p`` (in the order of ``params``, per time unit) and returns a tuple of
derivatives. It is written with plain arithmetic so that the same function serves NumPy (for
SciPy's ``solve_ivp``) and JAX (for the PINN residual).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: models are singletons
class CompartmentalModel:
    """A compartmental ODE model.

    Attributes:
        name: short name used on the command line (``sir``, ``seir``, ``seird``).
        states: compartment names, e.g. ``("S", "E", "I", "R")``.
        params: rate names, e.g. ``("beta", "sigma", "gamma")``; all rates are per time unit.
        rhs: ``rhs(u, p) -> tuple`` of d(state)/dt in fractions per day.
        r0: ``r0(p)``, the basic reproduction number; ``p`` (..., n_params) gives shape (...).
        infectious: name of the compartment whose entries count as new cases (incidence).
        guess: rates the fits start from (deliberately not any scenario's truth).
        periods: ``{"incubation_period": "sigma", ...}``: a period (in the time unit) is 1 / that rate.
    """

    name: str
    states: tuple[str, ...]
    params: tuple[str, ...]
    rhs: Callable[[Sequence, Sequence], tuple]
    r0: Callable[[Sequence], float]
    infectious: str
    guess: dict[str, float]
    periods: dict[str, str] = field(default_factory=dict)

    @property
    def n_states(self) -> int:
        return len(self.states)

    def state_index(self, name: str) -> int:
        return self.states.index(name)

    @property
    def after_infectious(self) -> tuple[int, ...]:
        """Indices of the infectious compartment and every compartment downstream of it.

        Cumulative incidence (entries into the infectious compartment since t0) equals the sum of
        these states minus their initial sum, because nothing leaves this set.
        """
        return tuple(range(self.state_index(self.infectious), self.n_states))


def _sir_rhs(u, p):
    S, I, R = u[0], u[1], u[2]
    beta, gamma = p[0], p[1]
    infection = beta * S * I
    return (-infection, infection - gamma * I, gamma * I)


def _seir_rhs(u, p):
    S, E, I, R = u[0], u[1], u[2], u[3]
    beta, sigma, gamma = p[0], p[1], p[2]
    infection = beta * S * I
    return (-infection, infection - sigma * E, sigma * E - gamma * I, gamma * I)


def _seird_rhs(u, p):
    S, E, I, R, D = u[0], u[1], u[2], u[3], u[4]
    beta, sigma, gamma, mu = p[0], p[1], p[2], p[3]
    infection = beta * S * I
    return (-infection, infection - sigma * E, sigma * E - (gamma + mu) * I, gamma * I, mu * I)


SIR = CompartmentalModel(
    name="sir",
    states=("S", "I", "R"),
    params=("beta", "gamma"),
    rhs=_sir_rhs,
    r0=lambda p: np.asarray(p)[..., 0] / np.asarray(p)[..., 1],
    infectious="I",
    guess={"beta": 0.4, "gamma": 0.2},
    periods={"infectious_period": "gamma"},
)

SEIR = CompartmentalModel(
    name="seir",
    states=("S", "E", "I", "R"),
    params=("beta", "sigma", "gamma"),
    rhs=_seir_rhs,
    r0=lambda p: np.asarray(p)[..., 0] / np.asarray(p)[..., 2],
    infectious="I",
    guess={"beta": 0.4, "sigma": 0.3, "gamma": 0.2},
    periods={"incubation_period": "sigma", "infectious_period": "gamma"},
)

SEIRD = CompartmentalModel(
    name="seird",
    states=("S", "E", "I", "R", "D"),
    params=("beta", "sigma", "gamma", "mu"),
    rhs=_seird_rhs,
    r0=lambda p: np.asarray(p)[..., 0] / (np.asarray(p)[..., 2] + np.asarray(p)[..., 3]),
    infectious="I",
    guess={"beta": 0.4, "sigma": 0.3, "gamma": 0.2, "mu": 0.01},
    periods={"incubation_period": "sigma", "infectious_period": "gamma"},
)

MODELS: dict[str, CompartmentalModel] = {m.name: m for m in (SIR, SEIR, SEIRD)}


def get_model(name: str) -> CompartmentalModel:
    """Look a model up by name, with an error that lists the known ones."""
    try:
        return MODELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def params_array(model: CompartmentalModel, params: dict[str, float]) -> np.ndarray:
    """Rates dict -> array in the model's order, with an error naming a missing rate."""
    missing = [k for k in model.params if k not in params]
    if missing:
        raise ValueError(f"model {model.name} needs rates {missing}")
    return np.array([float(params[k]) for k in model.params])


def initial_state(model: CompartmentalModel, seeds: dict[str, float]) -> np.ndarray:
    """Initial fractions from the non-susceptible compartments; S takes the rest.

    Args:
        seeds: ``{"I": 1e-3, "E": 1e-3}`` in fractions of the population.
    Returns:
        array (n_states,) summing to 1.
    """
    u0 = np.zeros(model.n_states)
    for name, value in seeds.items():
        if name not in model.states or name == "S":
            raise ValueError(f"initial value for {name!r}: model {model.name} has {model.states[1:]}")
        if not 0 <= value < 1:
            raise ValueError(f"initial fraction of {name} must be in [0, 1), got {value}")
        u0[model.state_index(name)] = value
    u0[0] = 1.0 - u0[1:].sum()
    if u0[0] <= 0:
        raise ValueError("initial values leave no susceptibles")
    return u0


def simulate_numpy(model: CompartmentalModel, params, u0, t, *, rtol: float = 1e-9, atol: float = 1e-11):
    """Solve the model from t = 0 with SciPy's LSODA in float64.

    Args:
        params: rates, array (n_params,), per time unit.
        u0: initial fractions, array (n_states,).
        t: output times, array (n,), non-decreasing, t >= 0.
    Returns:
        array (n, n_states) of fractions.
    """
    from scipy.integrate import solve_ivp

    p = np.asarray(params, dtype=float)
    t = np.asarray(t, dtype=float)
    sol = solve_ivp(
        lambda _t, u: model.rhs(u, p),
        (0.0, float(t[-1])),
        np.asarray(u0, dtype=float),
        t_eval=t,
        method="LSODA",
        rtol=rtol,
        atol=atol,
    )
    if not sol.success:
        raise RuntimeError(f"ODE solve failed for {model.name} with rates {p}: {sol.message}")
    return sol.y.T
