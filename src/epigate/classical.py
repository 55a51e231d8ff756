"""The classical reference: ODE least squares of the same model on the same observations.

This is the fit a modeller would do instead of a PINN: solve the ODE for candidate rates, compare
with the data, and minimise the same objective as the PINN's data loss (squared error of each
observed channel divided by its largest observed value). On gaussian noise it is the maximum-
likelihood estimate, so it is the reference every PINN estimate is judged against.

SciPy's ``least_squares`` (trust-region reflective, bounded) over log-rates with LSODA solves, from
a few deterministic starting points; the best is kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from .assumptions import Assumptions
from .data import Observations, initial_fractions, needs_interval_starts, observe_states, scaled_values
from .likelihood import SCALE_ESTIMATED, data_misfit, gaussian_residual
from .models import CompartmentalModel, simulate_numpy

LOG_RATE_BOUNDS = (np.log(1e-4), np.log(50.0))  # rates in 1/day
LOG_RHO_BOUNDS = (np.log(1e-4), 0.0)
LOG_U0_BOUNDS = (np.log(1e-9), np.log(0.5))  # an estimated initial fraction


def log_bounds(n_rates: int, n_rho: int, n_u0: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds (log scale) of a vector of n_rates rates, n_rho reporting fractions and
    n_u0 initial fractions, in that order: the search box of least squares, and of the PINN's outer phase."""
    kinds = [LOG_RATE_BOUNDS] * n_rates + [LOG_RHO_BOUNDS] * n_rho + [LOG_U0_BOUNDS] * n_u0
    return np.array([k[0] for k in kinds]), np.array([k[1] for k in kinds])


@dataclass
class ClassicalFit:
    """Result of :func:`classical_fit`.

    Attributes:
        rates: fitted rates by name, per time unit.
        rho: reporting fraction per channel.
        r0: basic reproduction number.
        loss: the data loss at the optimum (same definition as the PINN's L_data).
        n_evals: ODE solves spent.
        runtime_s: seconds.
        success: whether the optimiser reported convergence.
        u0: initial state (fractions), with any estimated initial values.
    """

    rates: dict[str, float]
    rho: dict[str, float]
    r0: float
    loss: float
    n_evals: int
    runtime_s: float
    success: bool
    u0: np.ndarray | None = None


class OdeObjective:
    """The least-squares objective: residuals of the scaled observations for a vector of free
    log-parameters, and the data loss of given estimates (:meth:`loss_of`)."""

    def __init__(self, model: CompartmentalModel, obs: Observations, assumptions: Assumptions = Assumptions()):
        self.model, self.obs = model, obs
        self.likelihood, self.dispersion = assumptions.likelihood, assumptions.dispersion
        self.y, self.mask, self.scale = scaled_values(obs)
        self.fixed = dict(assumptions.fixed)
        self.rho_spec = [assumptions.reporting.get(ch, 1.0) for ch in obs.channels]
        self.free_rates = [k for k in model.params if k not in self.fixed]
        self.free_rho = [j for j, r in enumerate(self.rho_spec) if r is None]
        self.u0 = initial_fractions(model, obs)
        self.free_u0 = [model.state_index(name) for name in assumptions.estimate_initial]
        use_starts = needs_interval_starts(obs.channels) and obs.t_start is not None
        self.t_start = obs.t_start if use_starts else None
        times = [[0.0], obs.t] + ([obs.t_start] if use_starts else [])
        self.grid = np.unique(np.concatenate(times))
        self.n_valid = max(int(self.mask.sum()), 1)
        self.n_evals = 0

    @property
    def parameter_names(self) -> list[str]:
        """Names of the entries of the free-parameter vector: rates, ``reporting_<channel>``,
        ``initial_<compartment>`` (each the log of the value)."""
        return (list(self.free_rates) + [f"reporting_{self.obs.channels[j]}" for j in self.free_rho]
                + [f"initial_{self.model.states[i]}" for i in self.free_u0])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the free-parameter vector (log scale)."""
        return log_bounds(len(self.free_rates), len(self.free_rho), len(self.free_u0))

    def unpack(self, x):
        """Parameter vector (log rates, log rho, log initial fractions; free ones only) -> rates,
        reporting fractions, initial state."""
        n_r, n_rho = len(self.free_rates), len(self.free_rho)
        rates = dict(self.fixed)
        rates.update({k: float(np.exp(v)) for k, v in zip(self.free_rates, x[:n_r])})
        rho = np.array([1.0 if r is None else r for r in self.rho_spec], dtype=float)
        rho[self.free_rho] = np.exp(x[n_r:n_r + n_rho])
        u0 = self.u0.copy()
        if self.free_u0:
            u0[self.free_u0] = np.exp(x[n_r + n_rho:])
            u0[0] = 1.0 - u0[1:].sum()
        return np.array([rates[k] for k in self.model.params]), rho, u0

    def pack(self, rates: dict, rho, u0) -> np.ndarray:
        """Inverse of :meth:`unpack` (for starting points and evaluating given estimates)."""
        x = [np.log(rates[k]) for k in self.free_rates] + [np.log(rho[j]) for j in self.free_rho]
        return np.array(x + [np.log(max(u0[i], 1e-12)) for i in self.free_u0])

    def loss_of(self, rates, rho, u0) -> float:
        """Data loss (sum of squared residuals, as ``ClassicalFit.loss``) of the exact ODE solution
        with the given rates (p,) in the model's order, reporting fractions (k,) and initial state."""
        return float(np.sum(self.residuals_at(np.asarray(rates, float), np.asarray(rho, float),
                                              np.asarray(u0, float)) ** 2))

    def expected_counts(self, rates, rho, u0) -> np.ndarray:
        """(n, k) people the model expects at the observation times, reporting included, for
        rates (p,) in the model's order, reporting fractions (k,) and initial fractions (s,).
        Raises RuntimeError when the ODE solve fails."""
        u = simulate_numpy(self.model, rates, u0, self.grid)
        at = lambda times: u[np.searchsorted(self.grid, times)]
        u_start = at(self.t_start) if self.t_start is not None else None
        return observe_states(self.model, self.obs.channels, at(self.obs.t), u_start, u0) * rho * self.obs.population

    def residuals(self, x):
        """Residuals (n_valid,) at the free-parameter vector ``x`` (log scale); counts the solve."""
        self.n_evals += 1
        return self.residuals_at(*self.unpack(x))

    def residuals_at(self, p, rho, u0):
        """Residuals (n_valid,) of the ODE solved with rates p (p,), reporting fractions rho (k,) and
        initial state u0 (s,), whatever the assumptions leave free."""
        if u0[0] <= 0:
            return np.full(self.mask.shape, 1e3)[self.mask]
        try:
            pred = self.expected_counts(p, rho, u0) / (self.obs.population * self.scale)
        except RuntimeError:
            return np.full(self.mask.shape, 1e3)[self.mask]
        if self.likelihood in SCALE_ESTIMATED:
            return gaussian_residual(self.likelihood, pred, self.y)[self.mask] / np.sqrt(self.n_valid)
        # signed deviance residuals: their sum of squares is the mean deviance
        dev = data_misfit(self.likelihood, pred, self.y, self.obs.population * self.scale, self.dispersion)
        return (np.sign(pred - self.y) * np.sqrt(np.maximum(dev, 0.0)))[self.mask] / np.sqrt(self.n_valid)


def classical_fit(model: CompartmentalModel, obs: Observations, assumptions: Assumptions = Assumptions(), *,
                  start: dict[str, float] | None = None) -> ClassicalFit:
    """Fit the model's free rates (and free reporting fractions and initial values) by ODE least
    squares, minimising the same data loss as the PINN under the same ``assumptions``.

    Args:
        start: a starting point for the rates (e.g. a PINN estimate). Without it the fit starts
            from the model's generic guess with beta scaled by 1, 2, 4 and 0.5, and keeps the best.
            Estimated initial values start from ``obs.initial`` (at least one person).
    """
    t0 = time.perf_counter()
    assumptions.check(model, obs)
    obj = OdeObjective(model, obs, assumptions)
    n_rho = len(obj.free_rho)
    lower, upper = obj.bounds()
    u0_start = [np.clip(np.log(max(obj.u0[i], 1.0 / obs.population)), *LOG_U0_BOUNDS) for i in obj.free_u0]
    base = dict(model.guess)
    starts = []
    if start is not None:
        starts.append({**base, **start})
    else:
        starts += [{**base, "beta": base["beta"] * factor} for factor in (1.0, 2.0, 4.0, 0.5)]
    best = None
    for s in starts:
        x0 = [np.clip(np.log(s[k]), *LOG_RATE_BOUNDS) for k in obj.free_rates] + [np.log(0.5)] * n_rho + u0_start
        if not x0:
            break
        sol = least_squares(obj.residuals, np.array(x0), bounds=(lower, upper), method="trf",
                            x_scale=1.0, xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=400)
        if best is None or sol.cost < best.cost:
            best = sol
    x = best.x if best is not None else np.zeros(0)
    p, rho, u0 = obj.unpack(x)
    loss = float(np.sum(obj.residuals(x) ** 2))
    return ClassicalFit(
        rates={k: float(v) for k, v in zip(model.params, p)},
        rho={ch: float(r) for ch, r in zip(obs.channels, rho)},
        r0=float(model.r0(p)),
        loss=loss,
        n_evals=obj.n_evals,
        runtime_s=time.perf_counter() - t0,
        success=bool(best.success) if best is not None else True,
        u0=u0,
    )
