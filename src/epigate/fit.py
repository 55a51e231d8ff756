"""Fit observations end to end: PINN ensemble, classical reference, optional polish, summaries.

Pure orchestration without printing or file I/O (those live in ``cli.py`` and ``output.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .classical import ClassicalFit, OdeObjective, classical_fit
from .data import Observations, initial_fractions
from .models import CompartmentalModel, simulate_numpy
from .pinn import build_problem, make_network
from .train import ProgressFn, TrainConfig, TrainResult, train

INTERVAL = (5.0, 95.0)  # percentiles of the reported ensemble interval (a 90 % interval)


@dataclass
class FitResult:
    """Everything a fit produced.

    Attributes:
        rates: (K, p) PINN rate estimates per ensemble member, 1/day (NaN for diverged members).
        rho: (K, k) reporting fractions per member.
        classical: the least-squares fit on the same data.
        polish: least squares started from the PINN's median estimate (None unless asked).
        peaks: (K, 2) peak time (days) and height (people) of the infectious compartment, from the
            ODE solved with each member's rates.
        ode_loss: (K,) data loss of the exact ODE solution with each member's rates (same
            definition as the classical fit's loss), for misfit diagnostics.
        t_grid: (G,) fine time grid, days; ``network_states`` (K, G, s) the networks' fractions on it.
    """

    model: CompartmentalModel
    obs: Observations
    config: TrainConfig
    seeds: list[int]
    fixed: dict
    reporting: dict
    train: TrainResult
    rates: np.ndarray
    rho: np.ndarray
    classical: ClassicalFit
    polish: ClassicalFit | None
    peaks: np.ndarray
    ode_loss: np.ndarray
    t_grid: np.ndarray
    network_states: np.ndarray
    runtime_s: float
    likelihood: str = "squared"
    u0: np.ndarray | None = None  # (K, s) initial state of each member (estimated or known), fractions
    estimate_initial: tuple[str, ...] = ()

    @property
    def ok(self) -> np.ndarray:
        return ~self.train.diverged

    @property
    def r0(self) -> np.ndarray:
        return np.array([self.model.r0(p) if np.all(np.isfinite(p)) else np.nan for p in self.rates])


def member_initial_states(model: CompartmentalModel, obs: Observations, log_u0: np.ndarray,
                          estimate_initial) -> np.ndarray:
    """(K, s) initial states: known values from ``obs``, estimated ones from ``log_u0``, S the rest."""
    base = initial_fractions(model, obs)
    u0s = np.tile(base, (log_u0.shape[0], 1))
    for name in estimate_initial:
        i = model.state_index(name)
        u0s[:, i] = np.exp(log_u0[:, i])
    u0s[:, 0] = 1.0 - u0s[:, 1:].sum(axis=1)
    return u0s


def peak_of(model: CompartmentalModel, rates, u0, horizon: float, population: float) -> tuple[float, float]:
    """Time (days) and height (people) of the infectious peak of the ODE solution, searched up to
    four times the data horizon so that a peak after the data is still found."""
    t = np.linspace(0.0, 4.0 * horizon, 4001)
    u = simulate_numpy(model, rates, u0, t)
    i = int(np.argmax(u[:, model.state_index(model.infectious)]))
    return float(t[i]), float(u[i, model.state_index(model.infectious)] * population)


def fit(obs: Observations, model: CompartmentalModel, cfg: TrainConfig, seeds: list[int], *,
        fixed: dict[str, float] | None = None, reporting: dict[str, float | None] | None = None,
        polish: bool = False, progress: ProgressFn | None = None, grid_points: int = 401,
        likelihood: str = "squared", dispersion: float = 10.0,
        estimate_initial: tuple[str, ...] = ()) -> FitResult:
    """Train a PINN ensemble (one member per seed) and the classical reference on ``obs``."""
    t_start = time.perf_counter()
    fixed, reporting = dict(fixed or {}), dict(reporting or {})
    problem = build_problem(model, obs, n_colloc=cfg.network.n_colloc, fixed=fixed, reporting=reporting,
                            likelihood=likelihood, dispersion=dispersion, estimate_initial=tuple(estimate_initial))
    lik = dict(likelihood=likelihood, dispersion=dispersion, estimate_initial=tuple(estimate_initial))
    result = train(problem, cfg, seeds, progress=progress, raise_on_divergence=len(seeds) == 1)
    if result.diverged.all():
        from .train import TrainingDiverged

        raise TrainingDiverged(f"method {cfg.method}: every ensemble member diverged "
                               f"(first at step {result.diverged_step.min()})")
    rates = np.exp(result.log_rates)
    rho = np.exp(result.log_rho)
    u0s = member_initial_states(model, obs, result.log_u0, estimate_initial)
    classical = classical_fit(model, obs, fixed=fixed, reporting=reporting, **lik)
    objective = OdeObjective(model, obs, fixed, reporting, likelihood, dispersion, tuple(estimate_initial))
    peaks = np.full((len(seeds), 2), np.nan)
    ode_loss = np.full(len(seeds), np.nan)
    for k, p in enumerate(rates):
        if np.all(np.isfinite(p)) and np.all(np.isfinite(u0s[k])):
            peaks[k] = peak_of(model, p, u0s[k], obs.horizon, obs.population)
            ode_loss[k] = objective.loss_of(p, rho[k], u0s[k])
    polished = None
    if polish:
        median = np.nanmedian(rates, axis=0)
        start = {n: float(v) for n, v in zip(model.params, median) if n not in fixed}
        polished = classical_fit(model, obs, fixed=fixed, reporting=reporting, start=start, **lik)
    t_grid = np.linspace(0.0, obs.horizon, grid_points)
    network = make_network(model, cfg.network)
    states = jax.jit(jax.vmap(network.states, in_axes=(0, None, 0)))
    net_states = np.array(states(jnp.asarray(result.theta), jnp.asarray(t_grid / obs.horizon, jnp.float32),
                                 jnp.asarray(np.nan_to_num(u0s), jnp.float32)))
    net_states[result.diverged] = np.nan
    return FitResult(model=model, obs=obs, config=cfg, seeds=list(seeds), fixed=fixed, reporting=reporting,
                     train=result, rates=rates, rho=rho, classical=classical, polish=polished, peaks=peaks,
                     ode_loss=ode_loss, t_grid=t_grid, network_states=net_states,
                     runtime_s=time.perf_counter() - t_start, likelihood=likelihood, u0=u0s,
                     estimate_initial=tuple(estimate_initial))


MISFIT_WARNING_RATIO = 1.5


def misfit_warning(s: dict) -> str | None:
    """A warning when the ODE with the PINN's rates fits the data much worse than least squares."""
    ratio = s.get("misfit_ratio")
    if ratio is None or not np.isfinite(ratio) or ratio <= MISFIT_WARNING_RATIO:
        return None
    return (f"the ODE solved with the PINN's rates fits the data {ratio:.1f}x worse than least squares: the PINN "
            "has not found the best fit (trust the least-squares column, or rerun with more steps or --polish)")


def spread(values: np.ndarray) -> dict:
    """Median and 90 % interval of ensemble values, ignoring NaN (diverged members)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    lo, hi = np.percentile(v, INTERVAL) if v.size else (np.nan, np.nan)
    return {"median": float(np.median(v)) if v.size else np.nan, "lo": float(lo), "hi": float(hi)}


def summary(result: FitResult) -> dict:
    """The JSON-ready summary of a fit (what ``result.json`` holds)."""
    m, obs = result.model, result.obs
    names = list(m.params)
    pinn = {n: spread(result.rates[:, i])["median"] for i, n in enumerate(names)}
    pinn["R0"] = spread(result.r0)["median"]
    intervals = {n: spread(result.rates[:, i]) for i, n in enumerate(names)}
    intervals["R0"] = spread(result.r0)
    for period, rate in m.periods.items():
        intervals[period] = spread(1.0 / result.rates[:, names.index(rate)])
    classical = dict(result.classical.rates, R0=result.classical.r0)
    for period, rate in m.periods.items():
        classical[period] = 1.0 / classical[rate]
    u0 = initial_fractions(m, obs)
    c_peak = peak_of(m, [result.classical.rates[n] for n in names], result.classical.u0, obs.horizon, obs.population)
    truth = None
    if obs.truth is not None and obs.truth.get("model") == m.name:
        tp = [obs.truth["params"][n] for n in names]
        truth = dict(obs.truth["params"], R0=float(m.r0(tp)))
        for period, rate in m.periods.items():
            truth[period] = 1.0 / truth[rate]
        t_peak = peak_of(m, tp, u0, obs.horizon, obs.population)
        truth["peak"] = {"time": t_peak[0], "height": t_peak[1]}

    def rel(a, b):
        return {k: (a[k] / b[k] - 1.0) for k in b if k in a and isinstance(b[k], float)}

    out = {
        "model": m.name,
        "method": result.config.method,
        "params": pinn,
        "intervals": intervals,
        "peak": {"time": spread(result.peaks[:, 0])["median"], "height": spread(result.peaks[:, 1])["median"],
                 "time_interval": spread(result.peaks[:, 0]), "height_interval": spread(result.peaks[:, 1])},
        "classical": dict(classical, peak={"time": c_peak[0], "height": c_peak[1]},
                          loss=result.classical.loss, runtime_s=result.classical.runtime_s),
        "truth": truth,
        "rel_error_vs_classical": rel(pinn, classical),
        "rel_error_vs_truth": rel(pinn, truth) if truth else None,
        "adam_phase_params": {n: spread(np.exp(result.train.log_rates_adam[:, i]))["median"]
                              for i, n in enumerate(names)},
        "misfit_ratio": float(np.nanmedian(result.ode_loss) / max(result.classical.loss, 1e-300)),
        "polish": (dict(result.polish.rates, R0=result.polish.r0, loss=result.polish.loss)
                   if result.polish else None),
        "reporting_fraction": {ch: spread(result.rho[:, j]) for j, ch in enumerate(obs.channels)},
        "initial_people": {name: dict(spread(result.u0[:, m.state_index(name)] * obs.population),
                                      classical=float(result.classical.u0[m.state_index(name)] * obs.population))
                           for name in result.estimate_initial},
        "fixed": result.fixed,
        "likelihood": result.likelihood,
        "seeds": result.seeds,
        "diverged_seeds": [s for s, d in zip(result.seeds, result.train.diverged) if d],
        "steps": {"adam": result.config.adam_steps, "refine": result.config.refine_steps},
        "runtime_s": result.runtime_s,
        "train_s": result.train.train_s,
        "compile_s": result.train.compile_s,
        "data": {"source": obs.source, "population": obs.population, "channels": list(obs.channels),
                 "n_times": int(len(obs.t)), "n_values": obs.n_valid, "n_missing": obs.n_missing},
        "settings": _settings(result.config),
    }
    return out


def _settings(cfg: TrainConfig) -> dict:
    from dataclasses import asdict

    return asdict(cfg)
