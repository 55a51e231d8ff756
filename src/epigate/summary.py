"""What a fit reports: a typed summary of a :class:`~epigate.fit.FitResult`.

One :class:`FitSummary` feeds the terminal table, the HTML report and ``result.json``, so the
three always show the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .config import config_fields
from .data import initial_fractions
from .diagnosis import converged_bootstrap, diagnose
from .fit import FitResult, ode_peak, relative_difference
from .intervals import Interval, achieved_level, percentile_interval, required_draws

INTERVAL_PERCENTILES = (5.0, 95.0)  # the band of network trajectories in figures and trajectories.csv


@dataclass(frozen=True)
class Quantity:
    """One reported number: the PINN's estimate and interval, least squares' estimate and profile
    interval, and the truth when known.

    ``name`` is the key in ``result.json`` (e.g. ``beta``, ``infectious_period``, ``R0``,
    ``peak_time``); ``unit`` is its unit in words (``1/day``, ``days``, ``people``, or empty).
    ``pinn`` is the estimate of the network fitted to the data (the members' median for an
    ensemble of seeds); ``interval`` its interval (None with one network and no bootstrap: one
    number has no spread); ``classical_interval`` least squares' profile interval (None where not
    computed, e.g. for the peak).
    """

    name: str
    unit: str
    pinn: float
    interval: Interval | None
    classical: float | None
    classical_interval: Interval | None = None
    truth: float | None = None
    classical_free_start: float | None = None  # least squares with the start (E(0), I(0) in SEIR) estimated too

    @property
    def label(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name

    @property
    def vs_classical(self) -> float | None:
        return relative_difference(self.pinn, self.classical)

    @property
    def vs_truth(self) -> float | None:
        return relative_difference(self.pinn, self.truth)

    @property
    def classical_vs_truth(self) -> float | None:
        return relative_difference(self.classical, self.truth)


@dataclass(frozen=True)
class DataInfo:
    source: str
    population: float
    channels: list[str]
    n_times: int
    n_values: int
    n_missing: int
    time_unit: str


@dataclass(frozen=True)
class Timing:
    runtime_s: float
    compile_s: float
    train_s: float
    classical_s: float


@dataclass(frozen=True)
class FitSummary:
    """The reported result of a fit (what ``result.json`` holds)."""

    model: str
    method: str
    members: int
    status: str  # "ok" or "not_converged" (diagnosis.py)
    reasons: list[str]  # why not converged
    warnings: list[str]  # what a reader must know before reading the numbers (diagnosis.py, identifiability)
    quantities: list[Quantity]
    interval_kind: str | None  # of the PINN's intervals: bootstrap, training_spread, or None (one network)
    interval_level: float | None
    classical_interval_level: float | None  # of least squares' profile intervals
    correlation: dict  # {"parameters": [...], "matrix": [[...]]}: least squares' estimates (log scale)
    bootstrap: dict | None  # {"members", "used", "left_out_seeds", "noise"}
    misfit_ratio: float
    adam_phase_rates: dict[str, float]
    classical_restart: dict[str, float] | None  # least squares restarted from the PINN's estimate: rates, R0, loss
    classical_from_guess: dict[str, float] | None  # least squares from the guess, where the restart beat it
    seeds: list[int]
    diverged_seeds: list[int]
    fixed: dict[str, float]
    likelihood: str
    classical_loss: float
    has_truth: bool
    timing: Timing
    data: DataInfo
    settings: dict = field(default_factory=dict)

    def quantity(self, name: str) -> Quantity:
        for q in self.quantities:
            if q.name == name:
                return q
        raise KeyError(f"no reported quantity {name!r}; have {', '.join(q.name for q in self.quantities)}")

    @property
    def verdict(self) -> str | None:
        """What a reader must see first when the PINN has not converged."""
        if self.status == "ok":
            return None
        return ("NOT CONVERGED: the PINN's estimates are not an answer; use the least-squares column (LSQ). "
                "Why: " + "; ".join(self.reasons) + ".")

    def to_json(self) -> dict:
        out = asdict(self)
        out["quantities"] = {q.name: dict(asdict(q), vs_classical=q.vs_classical, vs_truth=q.vs_truth)
                             for q in self.quantities}
        out["intervals"] = {q.name: asdict(q.interval) for q in self.quantities if q.interval is not None}
        out["classical_intervals"] = {q.name: asdict(q.classical_interval) for q in self.quantities
                                      if q.classical_interval is not None}
        return out


UNIT_PLURAL = {"day": "days", "week": "weeks", "month": "months"}


def _values(model, obs, rates, u0, rho, estimate_initial, reporting, peak=None) -> dict[str, float]:
    """Every reported quantity of one set of estimates: rates (p,), initial state (s,), reporting (k,);
    ``peak`` (day, size) where already computed (``FitResult.peaks``), else solved here."""
    rates = np.asarray(rates, dtype=float)
    out = dict(zip(model.params, rates))
    for period, rate in model.periods.items():
        out[period] = 1.0 / out[rate]
    out["R0"] = float(model.r0(rates))
    for name in estimate_initial:
        out[f"initial_{name}"] = float(u0[model.state_index(name)] * obs.population)
    for j, ch in enumerate(obs.channels):
        if reporting.get(ch, 1.0) is None:
            out[f"reporting_{ch}"] = float(rho[j])
    out["peak_time"], out["peak_size"] = peak if peak is not None else ode_peak(model, rates, u0, obs.horizon,
                                                                               obs.population)
    return out


def _classical_values(result: FitResult, fit) -> dict[str, float]:
    if fit is None:
        return {}
    a, m = result.assumptions, result.model
    return _values(m, result.obs, [fit.rates[n] for n in m.params], fit.u0, [fit.rho[ch] for ch in result.obs.channels],
                   a.estimate_initial, a.reporting)


STRONG_CORRELATION = 0.95  # least-squares estimates correlated beyond this get a warning


def _member_values(result: FitResult) -> list[dict[str, float]]:
    m, obs, a = result.model, result.obs, result.assumptions
    return [_values(m, obs, result.rates[k], result.u0[k], result.rho[k], a.estimate_initial, a.reporting,
                    peak=tuple(result.peaks[k])) if result.usable[k] else {} for k in range(len(result.seeds))]


def _pinn_estimates(result: FitResult) -> tuple[dict[str, float], dict[str, Interval], str | None, int, list[int]]:
    """The PINN's estimates, their intervals, the intervals' kind, how many networks the intervals
    rest on, and the bootstrap networks' seeds left out (not converged or diverged)."""
    members = _member_values(result)
    names = set().union(*members)
    if result.bootstrap is not None:
        estimate = members[0]
        used, left_out = converged_bootstrap(result)
        samples, kind = [_member_values(fit)[0] for fit in used], "bootstrap"
    else:
        estimate = {n: float(np.nanmedian([v.get(n, np.nan) for v in members])) for n in names}
        samples, kind, left_out = [v for v in members if v], "training_spread", []
    intervals = {n: percentile_interval([v.get(n, np.nan) for v in samples], result.level, kind) for n in names}
    intervals = {n: iv for n, iv in intervals.items() if iv is not None}
    return estimate, intervals, kind if intervals else None, len(samples), left_out


def _identifiability_warnings(result: FitResult) -> list[str]:
    """Numbers least squares' profile leaves open, and strongly correlated pairs of estimates."""
    p = result.profile
    if p is None:
        return []
    out = []
    for name, iv in p.intervals.items():
        if iv.identifiable:
            continue
        side = (f">= {iv.lo:.3g}" if iv.lo is not None else f"<= {iv.hi:.3g}" if iv.hi is not None
                else "anywhere in the search")
        out.append(f"{name} {side}: not identifiable from these data (least squares' {100 * iv.level:g} % profile "
                   f"stays below its threshold up to the search bound {iv.bound:.3g})")
    names = p.parameters
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            r = p.correlation[i, j]
            if np.isfinite(r) and abs(r) > STRONG_CORRELATION:
                out.append(f"the least-squares estimates of {names[i]} and {names[j]} are correlated ({r:+.3f}): "
                           f"the data pin a combination of the two better than either")
    return out


def _bootstrap_bias_warnings(quantities: list[Quantity], replicates: list[FitResult]) -> list[str]:
    """The bootstrap's own check of the estimator: its data sets were drawn with least squares'
    estimates, so an unbiased estimator's replicates scatter around them. Where least squares'
    value lies outside the bootstrap interval, the networks are biased on data like these and the
    interval is not a confidence interval."""
    biased = [q for q in quantities if q.interval is not None and q.classical is not None
              and not q.interval.contains(q.classical)]
    if not biased:
        return []
    detail = "; ".join(f"{q.name}: {q.classical:.4g} outside [{q.interval.lo:.4g}, {q.interval.hi:.4g}]"
                       for q in biased)
    return [f"the bootstrap networks are biased on data like these: fitted to {len(replicates)} data sets drawn "
            f"with least squares' estimates, they do not recover them ({detail}); these PINN intervals are not "
            f"confidence intervals: use least squares' profile intervals"]


def _classical_row(fit) -> dict[str, float] | None:
    """A least-squares fit as {rate: value, "R0": ..., "loss": ...}, or None."""
    return None if fit is None else dict(fit.rates, R0=fit.r0, loss=fit.loss)


def summarise(result: FitResult) -> FitSummary:
    """The summary of one fit."""
    m, obs, a = result.model, result.obs, result.assumptions
    unit = obs.time_unit
    units = {n: f"1/{unit}" for n in m.params} | {p: UNIT_PLURAL[unit] for p in m.periods} | {
        f"initial_{n}": "people" for n in a.estimate_initial} | {"peak_time": unit, "peak_size": "people"}
    estimate, intervals, kind, used, left_out = _pinn_estimates(result)
    classical = _classical_values(result, result.classical)
    free_start = _classical_values(result, result.classical_free_start)
    profiled = result.profile.intervals if result.profile is not None else {}
    truth = {}
    if obs.truth is not None and obs.truth.get("model") == m.name:
        truth = _values(m, obs, [obs.truth["params"][n] for n in m.params], initial_fractions(m, obs), np.ones(len(
            obs.channels)), (), {})
    quantities = [Quantity(name, units.get(name, ""), estimate.get(name, np.nan), intervals.get(name), value,
                           profiled.get(name), truth.get(name), free_start.get(name)) for name, value in classical.items()]
    verdict = diagnose(result)
    warnings = list(verdict.warnings) + _identifiability_warnings(result)
    if kind and achieved_level(used, result.level) < result.level:
        warnings.append(f"with {used} networks the {kind.replace('_', ' ')} interval is their range, which holds a "
                        f"new draw with probability {100 * achieved_level(used, result.level):.0f} %, less than the "
                        f"nominal {100 * result.level:g} %; {required_draws(result.level)} networks reach it")
    if "cumulative" in obs.channels and (result.profile is not None or kind == "bootstrap"):
        warnings.append("the intervals assume independent errors from one observation to the next; cumulative "
                        "counts carry every earlier error forward, so on them the intervals are too narrow: fit "
                        "the differences (incidence) where the data allow")
    if kind == "bootstrap":
        warnings += _bootstrap_bias_warnings(quantities, result.bootstrap.replicates)
    if left_out:
        warnings.append(f"{len(left_out)} of {len(result.bootstrap.replicates) + 1} bootstrap networks did not "
                        f"converge (seeds {left_out}) and are left out of the intervals")
    t = result.train
    bootstrap = None
    if result.bootstrap is not None:
        noise = result.bootstrap.noise
        bootstrap = {"members": 1 + len(result.bootstrap.replicates),
                     "used": used,
                     "left_out_seeds": left_out,
                     "noise": {"kind": noise.kind, "sd": None if noise.sd is None else dict(zip(obs.channels, noise.sd)),
                               "relative_sd": None if noise.relative_sd is None else dict(zip(obs.channels,
                                                                                              noise.relative_sd)),
                               "dispersion": noise.dispersion, "overdispersion": noise.overdispersion}}
    profile = result.profile
    return FitSummary(
        model=m.name,
        method=result.config.method,
        members=len(result.seeds) + (len(result.bootstrap.replicates) if result.bootstrap else 0),
        status=verdict.status,
        reasons=list(verdict.reasons),
        warnings=warnings,
        quantities=quantities,
        interval_kind=kind,
        interval_level=result.level if kind else None,
        classical_interval_level=next(iter(profiled.values())).level if profiled else None,
        correlation={"parameters": list(profile.parameters), "matrix": profile.correlation.tolist()} if profile else {},
        bootstrap=bootstrap,
        misfit_ratio=result.misfit_ratio,
        adam_phase_rates={n: float(np.nanmedian(np.exp(t.log_rates_adam[:, i]))) for i, n in enumerate(m.params)},
        classical_restart=_classical_row(result.classical_restart),
        classical_from_guess=_classical_row(result.classical_from_guess),
        seeds=list(result.seeds),
        diverged_seeds=[s for s, d in zip(result.seeds, t.diverged) if d],
        fixed=dict(a.fixed),
        likelihood=a.likelihood,
        classical_loss=result.classical.loss,
        has_truth=bool(truth),
        timing=Timing(result.runtime_s, t.compile_s, t.train_s, result.classical.runtime_s),
        data=DataInfo(obs.source, obs.population, list(obs.channels), int(len(obs.t)), obs.n_valid, obs.n_missing,
                      unit),
        settings=config_fields(result.config),
    )
