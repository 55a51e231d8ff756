"""Least squares' profile-likelihood intervals, the correlation of its estimates, and the numbers
the data cannot pin (Raue et al. 2009, "Structural and practical identifiability analysis of
partially observed dynamical models by exploiting the profile likelihood").

The profile of one number (a free rate, R0, an estimated initial value or reporting fraction) holds
it at a value and refits every other free parameter. Its likelihood-ratio statistic against the
optimum is

- squared error (of the counts, or of their logarithms: ``lognormal``): ``n log(L / L_opt)``:
  gaussian errors of one unknown scale per fit, profiled out;
- counts (poisson, negbin): ``n (L - L_opt) / phi``, the deviance difference, where
  ``phi = max(1, n L_opt / (n - p))`` is the quasi-likelihood dispersion. Counts more variable than
  the likelihood says (cumulative counts always are) widen the interval instead of leaving it
  overconfident.

with ``L`` the data loss (mean misfit over the n observed values) and p free parameters. The
interval is where the statistic stays below its threshold (:func:`threshold`): the chi-square(1)
quantile of the level where the noise scale is known, its small-sample version where the noise
scale is estimated from the same n residuals (the squared errors' always, counts' when phi > 1),
raised by the robust adjustment of Royall & Tsou (2003, "Interpreting statistical evidence by using imperfect
models: robust adjusted likelihood functions"): the ratio of the sandwich variance of the number
to its model-based variance, when above 1 (at most ``MAX_WIDENING``, and only with at least
``MIN_RESIDUAL_DOF`` spare observations). The statistic is chi-square only when the likelihood
is the noise's; relative noise fitted by squared error, the common case, has it far from that
(measured in docs/method.md). A side whose
profile stays below it up to the edge of the search (``classical.LOG_*_BOUNDS``), or rises only once
another number is pushed to the edge of its own search, is open: the data do not pin the number on
that side.

SciPy's bounded trust-region least squares fits every profile point, warm-started from the last:
the same optimiser and objective as the reference fit (``classical.py``), so a profile point is the
reference fit with one number held. pyPESTO would add a dependency and its own objective wrapper
for the same walk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.optimize import least_squares
from scipy.stats import chi2
from scipy.stats import f as f_distribution

from .assumptions import Assumptions
from .classical import ClassicalFit, OdeObjective
from .data import Observations
from .intervals import Interval
from .likelihood import SCALE_ESTIMATED
from .models import CompartmentalModel

DEFAULT_LEVEL = 0.95
FIRST_STEP = 0.5  # the walk's first step, in (Wald) standard errors of the number
STEP_GROWTH = 1.5  # each next step is this much longer
MAX_POINTS = 25  # profile points per side at most
R0_SPAN = 5.0  # the R0 profile searches log R0 within this distance of the optimum (a factor e^5)
JACOBIAN_STEP = 1e-4  # central differences in log-parameter space
BOUND_ATOL = 1e-6  # a refitted log parameter this close to its search bound is at it
# The sandwich needs residuals to estimate it: with fewer spare degrees of freedom than this the
# plain threshold is used (7 boarding-school days gave a 10x "widening" that opened every interval),
# and it never raises the threshold more than MAX_WIDENING times (interval about twice as wide).
MIN_RESIDUAL_DOF = 10
MAX_WIDENING = 4.0


@dataclass(frozen=True)
class ProfileResult:
    """Profile intervals of least squares.

    Attributes:
        intervals: by reported name (rates, periods, ``R0``, ``initial_<compartment>`` in people,
            ``reporting_<channel>``), in the quantity's unit.
        parameters: the free parameters, in the order of ``correlation``.
        correlation: (p, p) correlation of the estimates of the free (log) parameters, from the
            curvature at the optimum; NaN where the curvature is singular.
        dispersion: the quasi-likelihood dispersion phi of count likelihoods (1 for squared error).
        threshold: the statistic's threshold before the robust adjustment (:func:`threshold`).
        widening: by profiled number, the factor (>= 1) its threshold was raised by the robust
            (sandwich) adjustment.
        runtime_s: seconds.
    """

    intervals: dict[str, Interval]
    parameters: tuple[str, ...]
    correlation: np.ndarray
    dispersion: float
    threshold: float
    widening: dict[str, float]
    runtime_s: float

    def not_identifiable(self) -> list[str]:
        """Names whose interval the data leave open on at least one side."""
        return [name for name, iv in self.intervals.items() if not iv.identifiable]


def threshold(level: float, n: int, n_free: int, *, squared: bool, dispersion: float) -> float:
    """The likelihood-ratio statistic's threshold at ``level`` for n observations and ``n_free``
    estimated parameters.

    Where the noise scale is estimated from the residuals, the statistic is not chi-square(1) in
    small samples. For a model linear in its parameters with gaussian noise,
    ``(S - S_opt) / (S_opt / (n - p))`` is exactly F(1, n - p), so ``n log(S / S_opt)`` crosses
    ``n log(1 + F / (n - p))`` (the squared error; Bates & Watts' profile-t intervals), and the
    quasi-likelihood's deviance over an estimated phi crosses F itself (counts, phi > 1). Both tend
    to the chi-square(1) quantile as n grows: 2.83 against 2.71 at 90 % for the demo (80 values,
    3 rates), 3.28 for 20 values. With phi known (1) or no spare observation, chi-square(1).
    """
    dof = n - n_free
    if dof <= 0 or not (squared or dispersion > 1.0):
        return float(chi2.ppf(level, 1))
    quantile = float(f_distribution.ppf(level, 1, dof))
    return float(n * np.log1p(quantile / dof)) if squared else quantile


class _Statistic:
    """The likelihood-ratio statistic of a parameter vector against the optimum."""

    def __init__(self, objective: OdeObjective, x_opt: np.ndarray):
        self.objective = objective
        self.n = objective.n_valid
        self.loss_opt = self.loss(x_opt)
        self.squared = objective.likelihood in SCALE_ESTIMATED  # squared error of counts or of their logs
        dof = self.n - len(x_opt)
        self.dispersion = 1.0 if self.squared or dof <= 0 else max(1.0, self.n * self.loss_opt / dof)

    def loss(self, x) -> float:
        return float(np.sum(self.objective.residuals(x) ** 2))

    def of_loss(self, loss: float) -> float:
        if self.squared:
            value = self.n * np.log(max(loss, 1e-300) / max(self.loss_opt, 1e-300))
        else:
            value = self.n * (loss - self.loss_opt) / self.dispersion
        return max(float(value), 0.0)

    def scale(self) -> float:
        """Statistic per unit of (residuals' Gauss-Newton) squared distance: for Wald steps."""
        return self.n / max(self.loss_opt, 1e-300) if self.squared else self.n / self.dispersion


@dataclass(frozen=True)
class _Coordinate:
    """One profiled number: ``value(x)`` its log from a full parameter vector; ``complete(c, y)``
    the full vector with the number at log value c and the other free parameters ``y``;
    ``others(x)`` the other free parameters of x; ``span`` the search range of c."""

    name: str
    value: Callable[[np.ndarray], float]
    complete: Callable[[float, np.ndarray], np.ndarray]
    others: Callable[[np.ndarray], np.ndarray]
    other_bounds: tuple[np.ndarray, np.ndarray]
    span: tuple[float, float]


def _parameter_coordinate(name: str, i: int, lower: np.ndarray, upper: np.ndarray) -> _Coordinate:
    keep = np.arange(len(lower)) != i
    return _Coordinate(name, lambda x: float(x[i]), lambda c, y: np.insert(y, i, c), lambda x: x[keep],
                       (lower[keep], upper[keep]), (float(lower[i]), float(upper[i])))


def _r0_coordinate(objective: OdeObjective, x_opt: np.ndarray, lower, upper) -> _Coordinate | None:
    """R0 is proportional to beta in every model: hold log R0 = c by setting log beta = c - log(R0 at beta 1)."""
    if "beta" not in objective.free_rates:
        return None
    i = objective.free_rates.index("beta")
    model = objective.model

    def log_r0_per_beta(y):
        rates, _, _ = objective.unpack(np.insert(y, i, 0.0))
        return float(np.log(model.r0(rates)))

    def value(x):
        rates, _, _ = objective.unpack(x)
        return float(np.log(model.r0(rates)))

    keep = np.arange(len(x_opt)) != i
    c_opt = value(x_opt)
    return _Coordinate("R0", value, lambda c, y: np.insert(y, i, c - log_r0_per_beta(y)), lambda x: x[keep],
                       (lower[keep], upper[keep]), (c_opt - R0_SPAN, c_opt + R0_SPAN))


def _jacobian(f, x: np.ndarray) -> np.ndarray:
    cols = []
    for j in range(len(x)):
        e = np.zeros_like(x)
        e[j] = JACOBIAN_STEP
        cols.append((f(x + e) - f(x - e)) / (2 * JACOBIAN_STEP))
    return np.stack(cols, axis=-1)


def _covariances(objective: OdeObjective, x_opt: np.ndarray, statistic: "_Statistic") -> tuple[np.ndarray, np.ndarray]:
    """The model-based covariance of the estimates, (J^T J)^-1 / scale (Gauss-Newton, pseudo-inverse
    if singular), and the sandwich covariance (J^T J)^-1 J^T diag(r^2) J (J^T J)^-1 (with the HC3
    leverage correction), which holds when the noise is not what the likelihood says (e.g.
    relative noise fitted by squared error)."""
    J = _jacobian(objective.residuals, x_opt)
    r = objective.residuals(x_opt)
    bread = np.linalg.pinv(J.T @ J)
    # HC3: each squared residual divided by (1 - leverage)^2, against the sandwich's small-sample shrinkage
    leverage = np.clip(np.einsum("ij,jk,ik->i", J, bread, J), 0.0, 0.99)
    return bread / statistic.scale(), bread @ (J.T * (r / (1.0 - leverage)) ** 2) @ J @ bread


class _Walk:
    """The profile of one coordinate, walked outward from the optimum on both sides."""

    def __init__(self, statistic: _Statistic, coordinate: _Coordinate, x_opt: np.ndarray, threshold: float):
        self.statistic, self.coord, self.threshold = statistic, coordinate, threshold
        self.x_opt = x_opt

    def at(self, c: float, y0: np.ndarray) -> tuple[float, np.ndarray]:
        """Statistic of the best fit with the coordinate held at c (others refitted from y0)."""
        complete = self.coord.complete
        if not len(y0):
            return self.statistic.of_loss(self.statistic.loss(complete(c, y0))), y0
        lo, hi = self.coord.other_bounds
        sol = least_squares(lambda y: self.statistic.objective.residuals(complete(c, y)), np.clip(y0, lo, hi),
                            bounds=(lo, hi), method="trf", xtol=1e-10, ftol=1e-10, gtol=1e-10, max_nfev=200)
        return self.statistic.of_loss(2.0 * sol.cost), sol.x

    def _others_at_bound(self, y: np.ndarray) -> bool:
        lo, hi = self.coord.other_bounds
        return bool(np.any(y <= lo + BOUND_ATOL) or np.any(y >= hi - BOUND_ATOL))

    def side(self, direction: int, step: float) -> tuple[float | None, float | None]:
        """(end, None) where the statistic crosses the threshold, or (None, bound) when it stays
        below it up to the edge of the search; log scale."""
        c_opt = self.coord.value(self.x_opt)
        edge = self.coord.span[1] if direction > 0 else self.coord.span[0]
        prev_c, prev_s, y = c_opt, 0.0, self.coord.others(self.x_opt)
        offset = 0.0
        for k in range(MAX_POINTS):
            offset += step * STEP_GROWTH ** k
            c = c_opt + direction * offset
            at_edge = (c - edge) * direction >= 0
            c = edge if at_edge else c
            s, y = self.at(c, y)
            if s >= self.threshold and self._others_at_bound(y):
                # the rise comes from another number's search bound, not from the data
                return None, c
            if s >= self.threshold:  # the profile is about quadratic: sqrt(statistic) about linear in c
                a, b = np.sqrt(prev_s), np.sqrt(s)
                return prev_c + (np.sqrt(self.threshold) - a) / (b - a) * (c - prev_c), None
            if at_edge:
                return None, edge
            prev_c, prev_s = c, s
        return None, prev_c


def profile_intervals(model: CompartmentalModel, obs: Observations, fit: ClassicalFit,
                      assumptions: Assumptions = Assumptions(), *, level: float = DEFAULT_LEVEL) -> ProfileResult:
    """Profile-likelihood intervals at ``level`` of every free parameter of the least-squares fit
    ``fit`` (made under the same ``assumptions``), of R0 (when beta is free) and of the periods."""
    if not 0 < level < 1:
        raise ValueError(f"an interval level must be in (0, 1), got {level}")
    t0 = time.perf_counter()
    objective = OdeObjective(model, obs, assumptions)
    x_opt = objective.pack(fit.rates, [fit.rho[ch] for ch in obs.channels], fit.u0)
    lower, upper = objective.bounds()
    x_opt = np.clip(x_opt, lower, upper)
    statistic = _Statistic(objective, x_opt)
    base = threshold(level, statistic.n, len(x_opt), squared=statistic.squared, dispersion=statistic.dispersion)
    names = objective.parameter_names
    model_cov, sandwich = _covariances(objective, x_opt, statistic) if len(x_opt) else (np.zeros((0, 0)),) * 2
    coordinates = [_parameter_coordinate(name, i, lower, upper) for i, name in enumerate(names)]
    r0 = _r0_coordinate(objective, x_opt, lower, upper)
    coordinates += [r0] if r0 is not None else []

    log_intervals, widening = {}, {}
    for coord in coordinates:
        grad = _jacobian(lambda x: np.array([coord.value(x)]), x_opt)[0]
        model_var, robust_var = float(grad @ model_cov @ grad), float(grad @ sandwich @ grad)
        wald_se = float(np.sqrt(max(model_var, 0.0)))
        step = float(np.clip(FIRST_STEP * wald_se, 1e-3, 0.5)) if np.isfinite(wald_se) else 0.1
        # robust adjustment: the statistic is chi-square only when the likelihood is right; where the
        # sandwich says the estimate varies more than the curvature implies, widen by that ratio
        robust = statistic.n - len(x_opt) >= MIN_RESIDUAL_DOF and model_var > 0 and np.isfinite(robust_var)
        widening[coord.name] = float(np.clip(robust_var / model_var, 1.0, MAX_WIDENING)) if robust else 1.0
        walk = _Walk(statistic, coord, x_opt, base * widening[coord.name])
        lo, lo_bound = walk.side(-1, step)
        hi, hi_bound = walk.side(+1, step)
        log_intervals[coord.name] = (coord.value(x_opt), lo, hi, lo_bound if lo is None else hi_bound)

    intervals = {}
    exp = lambda v: None if v is None else float(np.exp(v))
    for name, (c, lo, hi, bound) in log_intervals.items():
        iv = Interval(float(np.exp(c)), exp(lo), exp(hi), level, "profile", exp(bound))
        if name.startswith("initial_"):
            iv = iv.scaled(obs.population)
        intervals[name] = iv
    for period, rate in model.periods.items():
        if rate in intervals:
            intervals[period] = intervals[rate].inverted()
    sd = np.sqrt(np.diag(model_cov))
    with np.errstate(all="ignore"):
        correlation = model_cov / np.outer(sd, sd)
    return ProfileResult(intervals, tuple(names), correlation, statistic.dispersion, base, widening,
                         time.perf_counter() - t0)
