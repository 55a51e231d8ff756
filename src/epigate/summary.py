"""What a fit reports: a typed summary of a :class:`~epigate.fit.FitResult`.

One :class:`FitSummary` feeds the terminal table, the HTML report and ``result.json``, so the
three always show the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .data import initial_fractions
from .diagnosis import diagnose
from .fit import FitResult, ode_peak
from .config import config_fields

INTERVAL_PERCENTILES = (5.0, 95.0)  # the reported ensemble interval: a 90 % interval
INTERVAL_LABEL = "90 %"


@dataclass(frozen=True)
class Spread:
    """Median and interval of the members' values (NaN members ignored)."""

    median: float
    lo: float
    hi: float

    @classmethod
    def of(cls, values) -> "Spread":
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        if not v.size:
            return cls(np.nan, np.nan, np.nan)
        lo, hi = np.percentile(v, INTERVAL_PERCENTILES)
        return cls(float(np.median(v)), float(lo), float(hi))


@dataclass(frozen=True)
class Quantity:
    """One reported number: the PINN members' spread, least squares, and the truth when known.

    ``name`` is the key in ``result.json`` (e.g. ``beta``, ``infectious_period``, ``R0``,
    ``peak_time``); ``unit`` is its unit in words (``1/day``, ``days``, ``people``, or empty).
    """

    name: str
    unit: str
    pinn: Spread
    classical: float | None
    truth: float | None = None
    classical_free_start: float | None = None  # least squares with E(0), I(0) estimated too

    @property
    def label(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name

    @property
    def vs_classical(self) -> float | None:
        return _relative(self.pinn.median, self.classical)

    @property
    def vs_truth(self) -> float | None:
        return _relative(self.pinn.median, self.truth)

    @property
    def classical_vs_truth(self) -> float | None:
        return _relative(self.classical, self.truth)


def _relative(a, b) -> float | None:
    if a is None or b is None or not np.isfinite(a) or not np.isfinite(b) or b == 0:
        return None
    return a / b - 1.0


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
    warnings: list[str]  # least-squares estimates at a bound of their search
    quantities: list[Quantity]
    misfit_ratio: float
    adam_phase_rates: dict[str, float]
    polish: dict[str, float] | None
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
        return out


UNIT_PLURAL = {"day": "days", "week": "weeks", "month": "months"}


def _values(model, obs, rates, u0, rho, estimate_initial, reporting) -> dict[str, float]:
    """Every reported quantity of one set of estimates: rates (p,), initial state (s,), reporting (k,)."""
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
    out["peak_time"], out["peak_size"] = ode_peak(model, rates, u0, obs.horizon, obs.population)
    return out


def _classical_values(result: FitResult, fit) -> dict[str, float]:
    if fit is None:
        return {}
    a, m = result.assumptions, result.model
    return _values(m, result.obs, [fit.rates[n] for n in m.params], fit.u0, [fit.rho[ch] for ch in result.obs.channels],
                   a.estimate_initial, a.reporting)


def summarise(result: FitResult) -> FitSummary:
    """The summary of one fit."""
    m, obs, a = result.model, result.obs, result.assumptions
    unit = obs.time_unit
    units = {n: f"1/{unit}" for n in m.params} | {p: UNIT_PLURAL[unit] for p in m.periods} | {
        f"initial_{n}": "people" for n in a.estimate_initial} | {"peak_time": unit, "peak_size": "people"}
    members = [_values(m, obs, result.rates[k], result.u0[k], result.rho[k], a.estimate_initial, a.reporting)
               if result.ok[k] and np.all(np.isfinite(result.rates[k])) else {} for k in range(len(result.seeds))]
    classical = _classical_values(result, result.classical)
    free_start = _classical_values(result, result.classical_free_start)
    truth = {}
    if obs.truth is not None and obs.truth.get("model") == m.name:
        truth = _values(m, obs, [obs.truth["params"][n] for n in m.params], initial_fractions(m, obs), np.ones(len(
            obs.channels)), (), {})
    quantities = [Quantity(name, units.get(name, ""), Spread.of([v.get(name, np.nan) for v in members]), value,
                           truth.get(name), free_start.get(name)) for name, value in classical.items()]
    verdict = diagnose(result)
    t = result.train
    return FitSummary(
        model=m.name,
        method=result.config.method,
        members=len(result.seeds),
        status=verdict.status,
        reasons=list(verdict.reasons),
        warnings=list(verdict.warnings),
        quantities=quantities,
        misfit_ratio=result.misfit_ratio,
        adam_phase_rates={n: Spread.of(np.exp(t.log_rates_adam[:, i])).median for i, n in enumerate(m.params)},
        polish=dict(result.polish.rates, R0=result.polish.r0, loss=result.polish.loss) if result.polish else None,
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
