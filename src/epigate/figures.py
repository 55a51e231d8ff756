"""Figures of a fit (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .fit import FitResult  # noqa: E402
from .models import simulate_numpy  # noqa: E402
from .summary import INTERVAL_PERCENTILES  # noqa: E402

COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fit_figure(result: FitResult, path: Path) -> None:
    """Data, the PINN members (median and interval) and the classical fit, every compartment."""
    m, obs, N = result.model, result.obs, result.obs.population
    t = result.t_grid
    ok = result.ok
    cl = simulate_numpy(m, [result.classical.rates[n] for n in m.params], result.classical.u0, t) * N
    states = result.network_states[ok] * N
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    for j, s in enumerate(m.states):
        if s == "S":
            continue
        col = COLORS[j % len(COLORS)]
        ax.plot(t, np.median(states[:, :, j], axis=0), color=col, label=f"{s} (PINN)")
        if states.shape[0] > 1:
            lo, hi = (np.percentile(states[:, :, j], q, axis=0) for q in INTERVAL_PERCENTILES)
            ax.fill_between(t, lo, hi, color=col, alpha=0.25)
        ax.plot(t, cl[:, j], color=col, ls="--", lw=1, label=f"{s} (least squares)")
        if s in obs.channels:
            k = obs.channels.index(s)
            ax.plot(obs.t, obs.values[:, k], "o", color=col, ms=3.5, label=f"{s} observed")
    for k, ch in enumerate(obs.channels):
        if ch not in m.states:
            ax.plot(obs.t, obs.values[:, k], "s", color="k", ms=3.5, label=f"{ch} observed")
    ax.set_xlabel(f"time ({obs.time_unit}s)")
    ax.set_ylabel("people")
    ax.set_title(f"{m.name.upper()} fit ({result.config.method}, {len(result.seeds)} network(s))")
    ax.legend(fontsize=7, ncol=2)
    ax = axes[1]
    ax.plot(t, np.median(states[:, :, 0], axis=0), color=COLORS[0], label="S (PINN)")
    ax.plot(t, cl[:, 0], color=COLORS[0], ls="--", lw=1, label="S (least squares)")
    ax.set_xlabel(f"time ({obs.time_unit}s)")
    ax.set_ylabel("people")
    ax.legend(fontsize=8)
    _save(fig, path)


def training_figure(result: FitResult, path: Path) -> None:
    """Losses, physics weight lambda and cosine c over training (all members)."""
    h = result.train.history
    step, rec = h.step, h.records
    phase_starts = [step[np.argmax(h.phase == k)] for k in (1, 2, 3) if (h.phase == k).any()]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for k in range(rec.loss_data.shape[0]):
        axes[0].semilogy(step, rec.loss_data[k], color=COLORS[0], alpha=0.6, label="L_data" if k == 0 else None)
        axes[0].semilogy(step, rec.loss_phys[k], color=COLORS[1], alpha=0.6, label="L_phys" if k == 0 else None)
        axes[1].semilogy(step, rec.lam[k], color=COLORS[2], alpha=0.6)
        axes[2].plot(step, rec.c_mean[k], color=COLORS[3], alpha=0.6)
    if result.classical.loss > 0:
        axes[0].axhline(result.classical.loss, color="k", ls=":", lw=1, label="least-squares L_data")
    axes[0].legend(fontsize=8)
    axes[0].set_title("losses")
    axes[1].set_title("physics weight lambda")
    axes[2].set_title("cosine c(g_data, g_phys), mean per record")
    axes[2].set_ylim(-1.05, 1.05)
    for ax in axes:
        ax.set_xlabel("step")
        for start in phase_starts:  # refinement, outer phase, second start
            ax.axvline(start, color="gray", ls="--", lw=1)
    _save(fig, path)


def params_figure(result: FitResult, path: Path) -> None:
    """Rate estimates and R0 over training, with the classical fit (dashed) and truth (dotted)."""
    m, h = result.model, result.train.history
    step = h.step
    rates = h.rates  # (K, R, p)
    names = list(m.params) + ["R0"]
    r0 = m.r0(rates)
    fig, axes = plt.subplots(1, len(names), figsize=(3.3 * len(names), 3.3))
    truth = result.obs.truth["params"] if result.obs.truth and result.obs.truth.get("model") == m.name else None
    for i, name in enumerate(names):
        ax = axes[i]
        series = r0 if name == "R0" else rates[:, :, i]
        for k in range(series.shape[0]):
            ax.plot(step, series[k], color=COLORS[i % len(COLORS)], alpha=0.6)
        ref = result.classical.r0 if name == "R0" else result.classical.rates[name]
        ax.axhline(ref, color="k", ls="--", lw=1, label="least squares")
        if truth:
            tv = m.r0([truth[n] for n in m.params]) if name == "R0" else truth[name]
            ax.axhline(tv, color="k", ls=":", lw=1, label="truth")
        ax.set_title(name)
        ax.set_xlabel("step")
    axes[0].legend(fontsize=8)
    _save(fig, path)


def forecast_figure(result: FitResult, bands, path: Path) -> None:
    """Data, and each forecast series' median and band (``bands`` a :class:`~epigate.forecast.Bands`)."""
    obs = result.obs
    fig, axes = plt.subplots(1, len(bands.names), figsize=(4.6 * len(bands.names), 3.8), squeeze=False)
    for j, (name, ax) in enumerate(zip(bands.names, axes[0])):
        col = COLORS[j % len(COLORS)]
        ax.plot(bands.t, bands.median[:, j], color=col, label="median")
        if bands.kind is not None:
            what = "predictive" if bands.predictive[j] else "confidence"
            ax.fill_between(bands.t, bands.lo[:, j], bands.hi[:, j], color=col, alpha=0.25,
                            label=f"{100 * bands.level:g} % {what} band ({bands.kind.replace('_', ' ')})")
        if name in obs.channels:
            ax.plot(obs.t, obs.values[:, obs.channels.index(name)], "o", color="k", ms=3, label="observed")
        ax.axvline(bands.last_observation, color="gray", ls="--", lw=1)
        ax.set_title(f"{name}: forecast past the last observation (dashed)")
        ax.set_xlabel(f"time ({obs.time_unit}s)")
        ax.set_ylabel("people")
        ax.legend(fontsize=7)
    _save(fig, path)
