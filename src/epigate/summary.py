"""What a fit reports: a typed summary of a :class:`~epigate.fit.FitResult`.

One :class:`FitSummary` feeds the terminal table, the HTML report and ``result.json``, so the
three always show the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .data import initial_fractions
from .fit import FitResult, ode_peak
from .train import config_fields

INTERVAL_PERCENTILES = (5.0, 95.0)  # the reported ensemble interval: a 90 % interval
INTERVAL_LABEL = "90 %"
MISFIT_WARNING_RATIO = 1.5


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

    @property
    def label(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name

    @property
    def vs_classical(self) -> float | None:
        return _relative(self.pinn.median, self.classical)

    @property
    def vs_truth(self) -> float | None:
        return _relative(self.pinn.median, self.truth)


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
    def misfit_warning(self) -> str | None:
        """A warning when the ODE with the PINN's rates fits the data much worse than least squares."""
        ratio = self.misfit_ratio
        if ratio is None or not np.isfinite(ratio) or ratio <= MISFIT_WARNING_RATIO:
            return None
        return (f"the ODE solved with the PINN's rates fits the data {ratio:.1f}x worse than least squares: the "
                "PINN has not found the best fit (trust the least-squares column, or rerun with more steps or "
                "--polish)")

    def to_json(self) -> dict:
        out = asdict(self)
        out["quantities"] = {q.name: dict(asdict(q), vs_classical=q.vs_classical, vs_truth=q.vs_truth)
                             for q in self.quantities}
        return out


UNIT_PLURAL = {"day": "days", "week": "weeks", "month": "months"}


def summarise(result: FitResult) -> FitSummary:
    """The summary of one fit."""
    m, obs = result.model, result.obs
    unit = obs.time_unit
    rate_unit, period_unit = f"1/{unit}", UNIT_PLURAL[unit]
    names = list(m.params)
    truth_rates = obs.truth["params"] if obs.truth is not None and obs.truth.get("model") == m.name else None
    c_rates = np.array([result.classical.rates[n] for n in names])
    true = np.array([truth_rates[n] for n in names]) if truth_rates else None

    quantities = [Quantity(n, rate_unit, Spread.of(result.rates[:, i]), float(c_rates[i]),
                           float(true[i]) if truth_rates else None) for i, n in enumerate(names)]
    for period, rate in m.periods.items():
        i = names.index(rate)
        quantities.append(Quantity(period, period_unit, Spread.of(1.0 / result.rates[:, i]), float(1.0 / c_rates[i]),
                                   float(1.0 / true[i]) if truth_rates else None))
    quantities.append(Quantity("R0", "", Spread.of(result.r0), float(m.r0(c_rates)),
                               float(m.r0(true)) if truth_rates else None))
    for name in result.assumptions.estimate_initial:
        i = m.state_index(name)
        quantities.append(Quantity(f"initial_{name}", "people", Spread.of(result.u0[:, i] * obs.population),
                                   float(result.classical.u0[i] * obs.population)))
    for j, ch in enumerate(obs.channels):
        if result.assumptions.reporting.get(ch, 1.0) is None:
            quantities.append(Quantity(f"reporting_{ch}", "", Spread.of(result.rho[:, j]),
                                       result.classical.rho[ch]))
    c_peak = ode_peak(m, c_rates, result.classical.u0, obs.horizon, obs.population)
    t_peak = ode_peak(m, true, initial_fractions(m, obs), obs.horizon, obs.population) if truth_rates else (None, None)
    quantities.append(Quantity("peak_time", unit, Spread.of(result.peaks[:, 0]), c_peak[0], t_peak[0]))
    quantities.append(Quantity("peak_size", "people", Spread.of(result.peaks[:, 1]), c_peak[1], t_peak[1]))

    t = result.train
    return FitSummary(
        model=m.name,
        method=result.config.method,
        members=len(result.seeds),
        quantities=quantities,
        misfit_ratio=result.misfit_ratio,
        adam_phase_rates={n: Spread.of(np.exp(t.log_rates_adam[:, i])).median for i, n in enumerate(names)},
        polish=dict(result.polish.rates, R0=result.polish.r0, loss=result.polish.loss) if result.polish else None,
        seeds=list(result.seeds),
        diverged_seeds=[s for s, d in zip(result.seeds, t.diverged) if d],
        fixed=dict(result.assumptions.fixed),
        likelihood=result.assumptions.likelihood,
        classical_loss=result.classical.loss,
        has_truth=truth_rates is not None,
        timing=Timing(result.runtime_s, t.compile_s, t.train_s, result.classical.runtime_s),
        data=DataInfo(obs.source, obs.population, list(obs.channels), int(len(obs.t)), obs.n_valid, obs.n_missing,
                      unit),
        settings=config_fields(result.config),
    )
