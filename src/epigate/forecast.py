"""Trajectories with bands, past the data: the ODE solved with each member's estimates.

The members are the network fitted to the data plus the converged bootstrap replicates (a
confidence band), or the networks of an ensemble of seeds (training spread). Bands of observed
channels are predictive: each member's curve gets draws of the fitted observation noise, so the
band is where new observations should fall. Bands of latent compartments are confidence bands.
With one network and no bootstrap there is no band (lo and hi are NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import observe_states
from .diagnosis import converged_bootstrap
from .fit import FitResult
from .intervals import order_statistic_rank
from .models import simulate_numpy

NOISE_DRAWS = 64  # noise draws per member for predictive bands
FORECAST_SEED = 20_261_129


@dataclass(frozen=True)
class Bands:
    """Median and band of each forecast series on a time grid.

    Attributes:
        t: (G,) times from 0 to the last observation plus the forecast, in the data's time unit.
        names: the series: every observed channel, then the infectious compartment if unobserved.
        median, lo, hi: (G, c) people (reporting applied to observed channels).
        predictive: (c,) whether each band includes the observation noise.
        level: nominal level of the bands; kind: ``bootstrap``, ``training_spread`` or None (no band).
        last_observation: the time of the last observation.
    """

    t: np.ndarray
    names: tuple[str, ...]
    median: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    predictive: tuple[bool, ...]
    level: float
    kind: str | None
    last_observation: float


def _members(result: FitResult) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(rates, reporting, initial state) of every member the bands are made of."""
    if result.bootstrap is None:
        return [(result.rates[k], result.rho[k], result.u0[k]) for k in np.flatnonzero(result.usable)]
    return [(fit.rates[0], fit.rho[0], fit.u0[0]) for fit in converged_bootstrap(result)[0]]


def _series(result: FitResult, rates, rho, u0, t: np.ndarray, names) -> np.ndarray:
    """(G, c) people of each series for one member; incidence over the data's last reporting interval."""
    m, obs = result.model, result.obs
    width = float(obs.t[-1] - obs.t_start[-1]) if obs.t_start is not None else 1.0
    starts = np.maximum(t - width, 0.0)
    grid = np.unique(np.concatenate([t, starts]))
    u = simulate_numpy(m, rates, u0, grid)
    at = lambda times: u[np.searchsorted(grid, times)]
    cols = []
    for name in names:
        j = obs.channels.index(name) if name in obs.channels else None
        scale = rho[j] if j is not None else 1.0
        cols.append(observe_states(m, (name,), at(t), at(starts), u0)[:, 0] * scale)
    return np.stack(cols, axis=1) * obs.population


def forecast_bands(result: FitResult, days: float) -> Bands:
    """Every observed channel and the infectious compartment from t = 0 to ``days`` past the last
    observation, on a grid of one time unit (finer when the whole span is under 30 units)."""
    obs, m = result.obs, result.model
    end = obs.horizon + days
    step = 1.0 if end >= 30 else end / 60.0
    t = np.unique(np.concatenate([np.arange(0.0, end + 1e-9, step), obs.t, [end]]))
    names = tuple(obs.channels) + ((m.infectious,) if m.infectious not in obs.channels else ())
    predictive = tuple(name in obs.channels for name in names)
    members = _members(result)
    if len(members) < 2:  # one curve has no band: the fitted network's own (its status says whether to use it)
        curve = _series(result, result.rates[0], result.rho[0], result.u0[0], t, names)
        nan = np.full(curve.shape, np.nan)
        return Bands(t, names, curve, nan, nan, predictive, result.level, None, obs.horizon)
    curves = np.stack([_series(result, r, rho, u0, t, names) for r, rho, u0 in members])  # (M, G, c)
    noise = result.bootstrap.noise if result.bootstrap is not None else None
    kind = "bootstrap" if result.bootstrap is not None else "training_spread"
    draws = curves
    if noise is not None:  # predictive: each member's curve plus observation noise, channels only
        rng = np.random.default_rng(FORECAST_SEED)
        k = len(obs.channels)
        noisy = noise.sample(np.repeat(curves[:, :, :k], NOISE_DRAWS, axis=0), rng)
        latent = np.repeat(curves[:, :, k:], NOISE_DRAWS, axis=0)
        draws = np.concatenate([noisy, latent], axis=2)
    else:
        predictive = tuple(False for _ in names)
    tail = 50.0 * (1.0 - result.level)
    lo, median, hi = np.percentile(draws, [tail, 50.0, 100.0 - tail], axis=0)
    # a confidence band rests on the M member curves alone: order statistics, as percentile_interval
    k = order_statistic_rank(curves.shape[0], result.level)
    ordered = np.sort(curves, axis=0)
    for j, noisy in enumerate(predictive):
        if not noisy:
            lo[:, j], hi[:, j] = ordered[k - 1, :, j], ordered[-k, :, j]
    return Bands(t, names, median, lo, hi, predictive, result.level, kind, obs.horizon)


def bands_rows(bands: Bands, time_unit: str):
    """forecast.csv: column ``day`` (the time unit), then ``<name>_median``, ``_lo``, ``_hi`` per series."""
    header = [time_unit] + [f"{n}_{part}" for n in bands.names for part in ("median", "lo", "hi")]
    rows = []
    for i, t in enumerate(bands.t):
        row = [float(t)]
        for j in range(len(bands.names)):
            row += [float(bands.median[i, j]), float(bands.lo[i, j]), float(bands.hi[i, j])]
        rows.append(row)
    return header, rows
