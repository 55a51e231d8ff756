"""Run one cell of the benchmark: every method on the same data, initialisation and budget.

A cell's K seeds are K noise replicates of its scenario; seed k's network is initialised from key
k for every method, so the comparison between methods is paired. The seeds of a cell train
together through :func:`epigate.fit.fit_batch` (data batched under vmap), the same pipeline as
``epigate fit``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields

import numpy as np

from .. import metrics
from ..classical import ClassicalFit, classical_fit
from ..data import Observations, initial_fractions, synthetic_outbreak
from ..fit import FitResult, fit_batch
from ..models import simulate_numpy
from ..pinn import NetworkConfig
from ..config import TrainConfig
from ..train import History, Record, network_states
from .grid import NOISES, SCENARIOS, Cell, Preset, Scenario


@dataclass
class RunRow:
    """One estimate of one run: a (cell, method, seed, phase), or the classical fit (phase final).

    Errors are signed relative errors against the truth unless named ``_vs_lsq``; the peak-time
    error is in days. ``rate_errors`` and ``l2`` are keyed by the scenario model's rates and states.
    """

    scenario: str
    noise: str
    n_obs: int
    method: str
    seed: int
    phase: str  # "adam" (end of the first-order phase) or "final"
    diverged: bool
    wall_s: float  # seconds per network (a batch's time shared among its members)
    time_per_step_ms: float  # Adam phase, per network
    steps_to_5pct: float  # step from which R0 stays within 5 % of least squares (NaN: never)
    weight: float  # the fixed weight of fixed_best (NaN otherwise)
    r0: float
    r0_error_vs_lsq: float
    misfit_ratio: float
    r0_error: float
    peak_time_error_days: float
    peak_height_rel_error: float
    rate_errors: dict[str, float] = field(default_factory=dict)
    l2: dict[str, float] = field(default_factory=dict)  # relative L2 of each compartment

    def flat(self) -> dict:
        """One CSV row: ``rate_errors`` as ``<rate>_error`` and ``l2`` as ``l2_<state>`` columns."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("rate_errors", "l2")}
        out.update({f"{k}_error": v for k, v in self.rate_errors.items()})
        out.update({f"l2_{k}": v for k, v in self.l2.items()})
        return out

    @classmethod
    def from_flat(cls, row: dict[str, str]) -> "RunRow":
        """Inverse of :meth:`flat` for a row read back from CSV (all values as text)."""
        kinds = {f.name: f.type for f in fields(cls)}
        known = {}
        for name, kind in kinds.items():
            if name in ("rate_errors", "l2"):
                continue
            text = row[name]
            known[name] = (text if kind == "str" else text == "True" if kind == "bool"
                           else int(float(text)) if kind == "int" else float(text or "nan"))
        known["rate_errors"] = {k[:-len("_error")]: float(v or "nan") for k, v in row.items()
                                if k.endswith("_error") and k not in kinds}
        known["l2"] = {k[3:]: float(v or "nan") for k, v in row.items() if k.startswith("l2_")}
        return cls(**known)


def cell_data(cell: Cell, seeds) -> list[Observations]:
    sc = SCENARIOS[cell.scenario]
    noise, level = NOISES[cell.noise]
    return [synthetic_outbreak(sc.model, sc.params, population=sc.population, horizon=sc.horizon, observe=sc.observe,
                               n_obs=cell.n_obs, noise=noise, noise_level=level, dispersion=10.0,
                               initial=sc.initial, seed=int(s)) for s in seeds]


def train_config(preset: Preset, method: str, weight: float | None = None) -> TrainConfig:
    name = "fixed" if method == "fixed_best" else method
    return TrainConfig(method=name, pretrain_steps=preset.pretrain_steps, adam_steps=preset.adam_steps,
                       refine_steps=preset.refine_steps, refine_rounds=preset.refine_rounds,
                       record_every=preset.record_every, outer_steps=preset.outer_steps, fixed_weight=weight,
                       precision=preset.precision,
                       network=NetworkConfig(width=preset.width, n_colloc=preset.n_colloc))


def choose_fixed_weight(preset: Preset) -> tuple[float, dict]:
    """The fixed weight with the lowest median |R0 error| against least squares after refinement,
    chosen on the baseline scenario with seeds 1000.. (never used in the benchmark cells)."""
    cell = Cell("baseline", preset.noises[0], preset.n_obs[0])
    seeds = list(range(1000, 1000 + preset.sweep_seeds))
    datasets = cell_data(cell, seeds)
    model = SCENARIOS[cell.scenario].model
    references = [classical_fit(model, o) for o in datasets]
    scores = {}
    for w in preset.sweep_weights:
        fits = fit_batch(datasets, model, train_config(preset, "fixed", w), seeds, references=references)
        scores[w] = float(np.nanmedian([abs(f.r0[0] / f.classical.r0 - 1) for f in fits]))
    return min(scores, key=lambda w: (np.nan_to_num(scores[w], nan=np.inf), w)), scores


class _Truth:
    """The scenario's true trajectory on the evaluation grid, and the errors of estimates against it."""

    def __init__(self, sc: Scenario, obs: Observations):
        self.sc, self.model = sc, sc.model
        self.rates = np.array([sc.params[k] for k in self.model.params])
        self.r0 = float(self.model.r0(self.rates))
        self.u0 = initial_fractions(self.model, obs)
        self.grid = np.linspace(0.0, sc.horizon, 401)
        self.states = simulate_numpy(self.model, self.rates, self.u0, self.grid)
        self.i = self.model.state_index(self.model.infectious)

    def row(self, base: dict, rates: np.ndarray, states: np.ndarray, r0_lsq: float, **extra) -> RunRow:
        """A row for estimated ``rates`` (p,) and trajectory ``states`` (G, s) on the grid."""
        finite = bool(np.all(np.isfinite(rates)))
        r0 = float(self.model.r0(rates)) if finite else np.nan
        if finite:
            peak = metrics.peak_errors(self.grid, simulate_numpy(self.model, rates, self.u0, self.grid)[:, self.i],
                                       self.states[:, self.i])
        else:
            peak = {"peak_time_error_days": np.nan, "peak_height_rel_error": np.nan}
        return RunRow(**base, **extra, r0=r0, r0_error_vs_lsq=r0 / r0_lsq - 1, r0_error=r0 / self.r0 - 1, **peak,
                      rate_errors=metrics.relative_errors(dict(zip(self.model.params, rates)), self.sc.params),
                      l2=metrics.trajectory_rel_l2(states, self.states, self.model.states))


@dataclass
class CellReference:
    """A cell's data sets and least-squares fits (shared by every method), and its classical rows."""

    cell: Cell
    datasets: list[Observations]
    fits: list[ClassicalFit]
    rows: list[RunRow]


def cell_reference(cell: Cell, preset: Preset) -> CellReference:
    """The cell's noise replicates and least squares on each: the reference for every method."""
    sc = SCENARIOS[cell.scenario]
    datasets = cell_data(cell, range(preset.seeds))
    truth = _Truth(sc, datasets[0])
    base = {"scenario": cell.scenario, "noise": cell.noise, "n_obs": cell.n_obs}
    fits, rows = [], []
    for k, o in enumerate(datasets):
        t0 = time.perf_counter()
        c = classical_fit(sc.model, o)
        fits.append(c)
        rates = np.array([c.rates[n] for n in sc.model.params])
        rows.append(truth.row(dict(base, method="classical", seed=k, phase="final"), rates,
                              simulate_numpy(sc.model, rates, truth.u0, truth.grid), c.r0, diverged=False,
                              wall_s=time.perf_counter() - t0, time_per_step_ms=np.nan, steps_to_5pct=np.nan,
                              weight=np.nan, misfit_ratio=1.0))
    return CellReference(cell, datasets, fits, rows)


def run_method(reference: CellReference, preset: Preset, method: str, fixed_best: float) -> tuple[list[RunRow], History]:
    """Train one method on every seed of a cell (together), against the cell's reference."""
    cell = reference.cell
    sc = SCENARIOS[cell.scenario]
    truth = _Truth(sc, reference.datasets[0])
    base = {"scenario": cell.scenario, "noise": cell.noise, "n_obs": cell.n_obs}
    seeds = list(range(preset.seeds))
    cfg = train_config(preset, method, fixed_best if method == "fixed_best" else None)
    fits = fit_batch(reference.datasets, sc.model, cfg, seeds, references=reference.fits)
    rows = [row for fit in fits for row in _method_rows(fit, truth, base, method, cfg, len(seeds))]
    return rows, _stack_histories(fits)


def run_cell(cell: Cell, preset: Preset, fixed_best: float) -> tuple[list[RunRow], dict[str, History]]:
    """Train every method on the cell; return one row per (method, seed, phase) plus the
    classical fit's rows, and the training histories (for the figures) keyed by method."""
    reference = cell_reference(cell, preset)
    rows, histories = list(reference.rows), {}
    for method in preset.methods:
        method_rows, histories[method] = run_method(reference, preset, method, fixed_best)
        rows += method_rows
    return rows, histories


def _method_rows(fit: FitResult, truth: _Truth, base: dict, method: str, cfg: TrainConfig, n_members: int):
    """The Adam-phase and final rows of one member."""
    res, h = fit.train, fit.train.history
    r0_lsq = fit.classical.r0
    adam_states = network_states(fit.model, cfg, res.theta_adam, truth.grid / fit.obs.horizon, fit.u0)[0]
    hist_r0 = fit.model.r0(h.rates[0])
    out = []
    for phase, log_rates, states in (("adam", res.log_rates_adam[0], adam_states),
                                     ("final", res.log_rates[0], fit.network_states[0])):
        upto = h.phase == 0 if phase == "adam" else slice(None)
        reached = metrics.steps_to_within(h.step[upto], hist_r0[upto], r0_lsq, 0.05)
        rates = np.exp(log_rates)
        out.append(truth.row(
            dict(base, method=method, seed=fit.seeds[0], phase=phase), rates, states, r0_lsq,
            diverged=bool(res.diverged[0]) or not np.all(np.isfinite(rates)),
            wall_s=(res.adam_s if phase == "adam" else res.train_s) / n_members,
            time_per_step_ms=1e3 * res.adam_s / max(cfg.adam_steps * n_members, 1),
            steps_to_5pct=np.nan if reached is None else reached,
            weight=cfg.fixed_weight if method == "fixed_best" else np.nan,
            misfit_ratio=fit.misfit_ratio if phase == "final" else np.nan))
    return out


def _stack_histories(fits: list[FitResult]) -> History:
    """The members' histories as one (records with a leading member axis K)."""
    h0 = fits[0].train.history
    return History(h0.step, h0.phase, Record(*(np.concatenate(xs) for xs in
                                               zip(*(f.train.history.records for f in fits)))))
