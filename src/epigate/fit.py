"""Fit observations end to end: PINN members, the classical reference, peaks, misfits.

The one pipeline behind the CLI, the benchmark and the scripts: :func:`fit` trains K networks on
one data set (an ensemble), :func:`fit_batch` trains one network per data set (e.g. noise
replicates), both in one compiled, vmapped run. Pure orchestration: no printing, no files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Sequence

import numpy as np

from . import metrics
from .assumptions import Assumptions
from .bootstrap import NoiseModel, fitted_noise, resample
from .classical import ClassicalFit, OdeObjective, classical_fit
from .data import Observations, initial_fractions
from .likelihood import SCALE_ESTIMATED
from .models import CompartmentalModel, simulate_numpy
from .pinn import build_problem, stack_problems
from .profile import DEFAULT_LEVEL as PROFILE_LEVEL, ProfileResult, profile_intervals
from .config import TrainConfig
from .train import ProgressFn, TrainingDiverged, TrainResult, network_states, second_start, train

GRID_POINTS = 401  # points of the fine time grid for trajectories and figures
PEAK_SEARCH_HORIZONS = 4.0  # the peak is searched up to this many data horizons
INTERVAL_LEVEL = 0.9  # default level of the PINN's intervals (bootstrap or training spread)
LR_LIMIT = 3.841  # chi-square(1) 95 % point: the likelihood-ratio statistic above which the data reject the PINN
AGREEMENT = 0.01  # estimates within this relative difference of least squares' agree, whatever the data say
PEAK_AGREEMENT = 0.05  # and peaks (day, size) within this one: the peak amplifies a rate's difference
BOX_TOLERANCE = 1e-6  # in log: an estimate this far outside a bound of the search box is still inside
REFERENCE_GAIN = 1e-3  # a restart from the PINN's estimate this much (relative loss) better replaces the reference


@dataclass
class Bootstrap:
    """The replicates of a parametric bootstrap (``fit(..., bootstrap=K)``).

    Attributes:
        noise: the fitted noise model the replicates were drawn with.
        replicates: K - 1 fits, network k on data set k resampled from least squares' fit; each
            with its own least-squares reference, so that each can be diagnosed.
    """

    noise: NoiseModel
    replicates: list["FitResult"]


@dataclass
class FitResult:
    """Everything a fit of one data set produced.

    Attributes:
        rates: (K, p) PINN rate estimates per member, per time unit (NaN for diverged members).
        rho: (K, k) reporting fractions per member.
        u0: (K, s) initial state of each member (estimated or known), fractions.
        classical: the least-squares fit under the same assumptions.
        classical_free_start: least squares that also estimates the initial values up to the
            infectious compartment (E(0), I(0)), when the fit pinned them; it shows how much the
            assumed start moves the answer (None when the start is estimated, or not asked).
        classical_restart: least squares restarted from the PINN's median rates (:func:`restarted_reference`);
            where it found a better optimum than least squares' own restarts, it is ``classical`` too.
        classical_from_guess: least squares' own restarts from the model's guess, when the restart
            from the PINN's estimate beat them (then ``classical`` is that restart); None otherwise.
        ode_loss: (K,) data loss of the exact ODE solution with each member's estimates (the
            classical fit's loss definition), for misfit diagnostics.
        t_grid: (G,) fine time grid; ``network_states`` (K, G, s) the networks' fractions on it.
        profile: least squares' profile-likelihood intervals (None unless asked).
        bootstrap: the bootstrap replicates (None unless asked); then K = 1 here: the network
            fitted to the data.
        level: the nominal level of the PINN's intervals.
    """

    model: CompartmentalModel
    obs: Observations
    config: TrainConfig
    assumptions: Assumptions
    seeds: list[int]
    train: TrainResult
    rates: np.ndarray
    rho: np.ndarray
    u0: np.ndarray
    classical: ClassicalFit
    classical_free_start: ClassicalFit | None
    classical_restart: ClassicalFit | None
    ode_loss: np.ndarray
    t_grid: np.ndarray
    network_states: np.ndarray
    runtime_s: float
    profile: ProfileResult | None = None
    bootstrap: Bootstrap | None = None
    classical_from_guess: ClassicalFit | None = None
    level: float = INTERVAL_LEVEL

    @property
    def ok(self) -> np.ndarray:
        return ~self.train.diverged

    @property
    def usable(self) -> np.ndarray:
        """(K,) members that trained without diverging and have finite rates."""
        return self.ok & np.all(np.isfinite(self.rates), axis=1)

    @property
    def r0(self) -> np.ndarray:
        """(K,) R0 of each member."""
        return self.model.r0(self.rates)

    @property
    def misfit_ratio(self) -> float:
        """Median ODE misfit of the members over the least-squares loss (1 = as good as least squares)."""
        with np.errstate(all="ignore"):
            return float(np.nanmedian(self.ode_loss) / max(self.classical.loss, 1e-300)) if self.ok.any() else np.nan

    @property
    def likelihood_ratio(self) -> float:
        """The likelihood-ratio statistic of the PINN's estimates (median member's ODE misfit) against
        least squares: >= 0, about chi-square(1) distributed when the PINN is at least squares'
        optimum along one direction, infinite when it cannot be computed. The deviance difference
        for counts; n log(L_pinn / L_lsq) for the squared errors (gaussian noise of unknown scale)."""
        n = int(np.isfinite(self.obs.values).sum())
        pinn, lsq = np.nanmedian(self.ode_loss) if self.ok.any() else np.nan, self.classical.loss
        with np.errstate(all="ignore"):
            if self.assumptions.likelihood in SCALE_ESTIMATED:
                stat = n * np.log(pinn / max(lsq, 1e-300))
            else:  # the losses are mean deviances
                stat = n * (pinn - lsq)
        return float(max(stat, 0.0)) if np.isfinite(stat) else np.inf

    @cached_property
    def peaks(self) -> np.ndarray:
        """(K, 2) day and size (people) of the infectious peak of the ODE solved with each member's
        estimates (NaN for members that are not usable)."""
        out = np.full((len(self.seeds), 2), np.nan)
        for k in np.flatnonzero(self.usable):
            out[k] = ode_peak(self.model, self.rates[k], self.u0[k], self.obs.horizon, self.obs.population)
        return out

    @property
    def largest_difference(self) -> float:
        """Largest relative difference between the PINN's (median) estimates and least squares': over
        R0 and every free rate."""
        pinn = np.nanmedian(self.rates, axis=0)
        gaps = [relative_gap(np.nanmedian(self.r0), self.classical.r0)]
        gaps += [relative_gap(pinn[i], self.classical.rates[name]) for i, name in enumerate(self.model.params)
                 if name not in self.assumptions.fixed]
        return max(gaps)

    @cached_property
    def peak_difference(self) -> float:
        """Largest relative difference between the infectious peak (day and size) of the ODE solved
        with the PINN's estimates (median over members) and with least squares' (cached: the check
        asks for it more than once and least squares' peak is an ODE solve)."""
        lsq = ode_peak(self.model, [self.classical.rates[n] for n in self.model.params], self.classical.u0,
                       self.obs.horizon, self.obs.population)
        with np.errstate(all="ignore"):
            pinn = np.nanmedian(self.peaks, axis=0) if self.usable.any() else np.full(2, np.nan)
        return max(relative_gap(a, b) for a, b in zip(pinn, lsq))

    @property
    def agrees(self) -> bool:
        """R0 and every free rate within ``AGREEMENT`` of least squares', and the peak's day and size
        within ``PEAK_AGREEMENT``."""
        return self.largest_difference <= AGREEMENT and self.peak_difference <= PEAK_AGREEMENT

    @property
    def rejected(self) -> bool:
        """The data reject the PINN's estimates against least squares' (likelihood ratio above
        ``LR_LIMIT``) and the two differ (not :attr:`agrees`). The fit has not converged."""
        return not self.likelihood_ratio <= LR_LIMIT and not self.agrees


def relative_difference(value: float | None, reference: float | None) -> float | None:
    """``value / reference - 1``: 0 where the two are equal (a peak at day 0 in both), None where it
    cannot be computed (a missing or non-finite value, a reference of 0 and a different value)."""
    if value is None or reference is None or not (np.isfinite(value) and np.isfinite(reference)):
        return None
    if value == reference:
        return 0.0
    return None if reference == 0 else float(value / reference - 1.0)


def relative_gap(value: float, reference: float) -> float:
    """``|relative_difference|``, infinite where it cannot be computed."""
    difference = relative_difference(value, reference)
    return np.inf if difference is None else abs(difference)


def ode_peak(model: CompartmentalModel, rates, u0, horizon: float, population: float) -> tuple[float, float]:
    """Time and height (people) of the infectious peak of the ODE solution, searched up to
    ``PEAK_SEARCH_HORIZONS`` data horizons so that a peak after the data is still found."""
    t = np.linspace(0.0, PEAK_SEARCH_HORIZONS * horizon, 4001)
    curve = simulate_numpy(model, rates, u0, t)[:, model.state_index(model.infectious)] * population
    return metrics.peak(t, curve)


def member_initial_states(model: CompartmentalModel, obs: Observations, log_u0: np.ndarray,
                          estimate_initial: Sequence[str]) -> np.ndarray:
    """(K, s) initial states: known values from ``obs``, estimated ones from ``log_u0``, S the rest."""
    u0s = np.tile(initial_fractions(model, obs), (log_u0.shape[0], 1))
    for name in estimate_initial:
        i = model.state_index(name)
        u0s[:, i] = np.exp(log_u0[:, i])
    u0s[:, 0] = 1.0 - u0s[:, 1:].sum(axis=1)
    return u0s


def fit(obs: Observations, model: CompartmentalModel, cfg: TrainConfig, seeds: Sequence[int],
        assumptions: Assumptions = Assumptions(), *, bootstrap: int = 0, profile: bool = True,
        level: float | None = None, progress: ProgressFn | None = None) -> FitResult:
    """Train K networks (one per seed) on ``obs`` together, and the classical reference.

    The reference is least squares from the model's guess (four restarts), or least squares
    restarted from the PINN's estimate where that finds a better optimum (:func:`restarted_reference`):
    a likelihood can have more than one, and the PINN is judged against the best one found.

    Args:
        bootstrap: K >= 2 for a parametric bootstrap: network 0 (``seeds[0]``) fits ``obs``, networks
            1..K-1 fit data sets resampled from least squares' fit (see ``bootstrap.py``), all in
            one vmapped run; ``seeds`` must then hold one seed. 0: no bootstrap.
        profile: also compute least squares' profile-likelihood intervals.
        level: nominal level of every interval; default 0.9 for the PINN's and 0.95 for the profile.

    Raises TrainingDiverged if a lone network diverges, or every member of an ensemble does, or
    the bootstrap's network on the data does.
    """
    t_start = time.perf_counter()
    if bootstrap and (bootstrap < 2 or len(seeds) != 1):
        raise ValueError(f"a bootstrap needs K >= 2 networks and one seed, got K = {bootstrap}, seeds {list(seeds)}")
    classical = classical_fit(model, obs, assumptions)

    def finish(fitted: FitResult) -> FitResult:
        """The reference checked against a restart from the PINN, then what is built on it."""
        fitted = restarted_reference(fitted)
        free_start = None
        if not assumptions.estimate_initial:  # the start is pinned: show how much that assumption moves the answer
            # started from the pinned-start optimum: one local search instead of four restarts
            free_start = classical_fit(model, obs, replace(assumptions, estimate_initial=start_compartments(model)),
                                       start={n: v for n, v in fitted.classical.rates.items()
                                              if n not in assumptions.fixed})
        profiled = (profile_intervals(model, obs, fitted.classical, assumptions, level=level or PROFILE_LEVEL)
                    if profile else None)
        return replace(fitted, profile=profiled, level=level or INTERVAL_LEVEL, classical_free_start=free_start,
                       runtime_s=time.perf_counter() - t_start)

    if bootstrap:
        noise = fitted_noise(model, obs, classical, assumptions)
        datasets = [obs] + resample(model, obs, classical, noise, bootstrap - 1, seed=seeds[0])
        start = {n: v for n, v in classical.rates.items() if n not in assumptions.fixed}
        references = [classical] + [classical_fit(model, d, assumptions, start=start) for d in datasets[1:]]
        members = fit_batch(datasets, model, cfg, [seeds[0] + k for k in range(bootstrap)], assumptions,
                            references=references, progress=progress)
        if members[0].train.diverged.all():
            raise TrainingDiverged(f"method {cfg.method}: the network fitted to the data diverged "
                                   f"(step {members[0].train.diverged_step.min()})")
        return finish(replace(members[0], bootstrap=Bootstrap(noise, members[1:])))
    problem = build_problem(model, obs, assumptions, n_colloc=cfg.network.n_colloc)
    result = train(problem, cfg, seeds, progress=progress, raise_on_divergence=len(seeds) == 1)
    if result.diverged.all():
        raise TrainingDiverged(f"method {cfg.method}: every ensemble member diverged "
                               f"(first at step {result.diverged_step.min()})")
    fitted = _assemble(obs, model, cfg, assumptions, list(seeds), result, classical, t_start)
    if cfg.outer_steps and cfg.restart_steps and not fitted.agrees:
        result = second_start(problem, cfg, fitted.train, progress=progress)
        fitted = _assemble(obs, model, cfg, assumptions, list(seeds), result, classical, t_start)
    return finish(fitted)


def restarted_reference(fitted: FitResult) -> FitResult:
    """``fitted`` with ``classical_restart``: least squares restarted from the PINN's median rates (one
    local search; estimated initial values start where least squares' own search does). Where that
    restart's loss is more than ``REFERENCE_GAIN`` below the reference's, least squares' restarts
    from the guess stopped in a worse local optimum: the restart becomes the reference
    (``classical``) and the old one is kept as ``classical_from_guess`` (diagnosis warns).
    Measured: 2 of the robustness suite's 42 cases (docs/method.md, "Where the remaining failures stop")."""
    if not fitted.usable.any():
        return fitted
    median = np.median(fitted.rates[fitted.usable], axis=0)
    start = {n: float(v) for n, v in zip(fitted.model.params, median) if n not in fitted.assumptions.fixed}
    restart = classical_fit(fitted.model, fitted.obs, fitted.assumptions, start=start)
    if not restart.loss < fitted.classical.loss * (1.0 - REFERENCE_GAIN):
        return replace(fitted, classical_restart=restart)
    return replace(fitted, classical_restart=restart, classical=restart, classical_from_guess=fitted.classical)


def fit_batch(datasets: Sequence[Observations], model: CompartmentalModel, cfg: TrainConfig,
              seeds: Sequence[int], assumptions: Assumptions = Assumptions(), *,
              references: Sequence[ClassicalFit] | None = None,
              progress: ProgressFn | None = None) -> list[FitResult]:
    """Train one network per data set (network k from ``seeds[k]`` on ``datasets[k]``), all at
    once; a diverged member is marked, not raised. ``references`` reuses least-squares fits of the
    same data sets and assumptions (e.g. when several methods are compared on them)."""
    t_start = time.perf_counter()
    if len(seeds) != len(datasets):
        raise ValueError(f"{len(seeds)} seeds for {len(datasets)} data sets")
    problem = stack_problems([build_problem(model, o, assumptions, n_colloc=cfg.network.n_colloc)
                              for o in datasets])
    result = train(problem, cfg, seeds, progress=progress, raise_on_divergence=False)
    references = references or [None] * len(datasets)
    return [_assemble(o, model, cfg, assumptions, [int(seeds[k])], result.member(k), references[k], t_start)
            for k, o in enumerate(datasets)]


def start_compartments(model: CompartmentalModel) -> tuple[str, ...]:
    """The compartments that make up an epidemic's start: every one after S up to the infectious."""
    return model.states[1:model.state_index(model.infectious) + 1]


def _in_search_box(model: CompartmentalModel, obs: Observations, assumptions: Assumptions, objective: OdeObjective,
                   log_rates: np.ndarray, log_rho: np.ndarray, log_u0: np.ndarray) -> np.ndarray:
    """(K,) whether each member's free estimates lie inside least squares' search box
    (``OdeObjective.bounds``; False where not finite)."""
    lower, upper = objective.bounds()
    u0s = member_initial_states(model, obs, log_u0, assumptions.estimate_initial)
    out = np.zeros(len(log_rates), bool)
    for k, p in enumerate(np.exp(log_rates)):
        x = objective.pack(dict(zip(model.params, p)), np.exp(log_rho[k]), u0s[k])
        out[k] = bool(np.all(np.isfinite(x)) and np.all(x >= lower - BOX_TOLERANCE) and np.all(x <= upper + BOX_TOLERANCE))
    return out


def _ode_losses(model: CompartmentalModel, obs: Observations, assumptions: Assumptions, objective: OdeObjective,
                log_rates: np.ndarray, log_rho: np.ndarray, log_u0: np.ndarray) -> np.ndarray:
    """(K,) data loss of the exact ODE solution with each member's estimates (NaN where not finite)."""
    rates, rho = np.exp(log_rates), np.exp(log_rho)
    u0s = member_initial_states(model, obs, log_u0, assumptions.estimate_initial)
    out = np.full(len(rates), np.nan)
    for k, p in enumerate(rates):
        if np.all(np.isfinite(p)) and np.all(np.isfinite(u0s[k])):
            out[k] = objective.loss_of(p, rho[k], u0s[k])
    return out


def _assemble(obs: Observations, model: CompartmentalModel, cfg: TrainConfig, assumptions: Assumptions,
              seeds: list[int], result: TrainResult, classical: ClassicalFit | None, t_start: float) -> FitResult:
    """The classical reference, the ODE checks of every member, and the networks on a fine grid.

    Where the outer phase ran, each member reports the point of its path (the refinement's, or the
    one after an outer step) whose estimates the ODE explains best, the latest among equals. The
    outer phase is a local method whose re-solves leave an error: its steps wander around the
    optimum, and from far off (the gamma -> 0 basin of long horizons) it can wander away; the
    choice is by the same misfit the convergence check uses. Only points inside least squares'
    search box are candidates (the refinement's can lie outside: its closed-form rates go down to
    ``pinn.RATE_FLOOR``), unless a member has none."""
    classical = classical or classical_fit(model, obs, assumptions)
    objective = OdeObjective(model, obs, assumptions)
    if cfg.outer_steps:
        points = result.points()
        at = lambda j: [x[:, j] for x in points[:3]]
        losses = np.stack([_ode_losses(model, obs, assumptions, objective, *at(j))
                           for j in range(points.theta.shape[1])], axis=1)  # (K, S + 1)
        losses = np.where(np.isfinite(losses), losses, np.inf)
        inside = np.stack([_in_search_box(model, obs, assumptions, objective, *at(j))
                           for j in range(points.theta.shape[1])], axis=1)  # (K, S + 1)
        boxed = np.where(inside, losses, np.inf)
        losses = np.where(np.isfinite(boxed).any(axis=1, keepdims=True), boxed, losses)
        latest_best = losses.shape[1] - 1 - np.argmin(losses[:, ::-1], axis=1)
        result = result.choose(latest_best)
    ode_loss = _ode_losses(model, obs, assumptions, objective, result.log_rates, result.log_rho, result.log_u0)
    rates, rho = np.exp(result.log_rates), np.exp(result.log_rho)
    u0s = member_initial_states(model, obs, result.log_u0, assumptions.estimate_initial)
    t_grid = np.linspace(0.0, obs.horizon, GRID_POINTS)
    states = network_states(model, cfg, result.theta, t_grid / obs.horizon, np.nan_to_num(u0s))
    states[result.diverged] = np.nan
    return FitResult(model=model, obs=obs, config=cfg, assumptions=assumptions, seeds=seeds, train=result,
                     rates=rates, rho=rho, u0=u0s, classical=classical,
                     classical_free_start=None, classical_restart=None,
                     ode_loss=ode_loss, t_grid=t_grid, network_states=states,
                     runtime_s=time.perf_counter() - t_start)
