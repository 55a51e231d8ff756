"""Run one cell of the benchmark: every method on the same data, initialisation and budget.

A cell's K seeds are K noise replicates of its scenario; seed k's network is initialised from key
k for every method, so the comparison between methods is paired. The seeds of a cell train
together (data batched under vmap).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from .. import metrics
from ..classical import classical_fit
from ..data import synthetic_outbreak
from ..data import initial_fractions
from ..models import SEIR, simulate_numpy
from ..pinn import NetworkConfig, Problem, build_problem, make_network
from ..train import TrainConfig, train
from .grid import NOISES, SCENARIOS, Cell, Preset

RATES = ("beta", "sigma", "gamma")


def cell_data(cell: Cell, seeds) -> list:
    sc = SCENARIOS[cell.scenario]
    noise, level = NOISES[cell.noise]
    return [synthetic_outbreak(SEIR, sc.params, population=sc.population, horizon=sc.horizon, observe=sc.observe,
                               n_obs=cell.n_obs, noise=noise, noise_level=level, dispersion=10.0,
                               initial=sc.initial, seed=int(s)) for s in seeds]


def batched_problem(observations, n_colloc: int) -> Problem:
    problems = [build_problem(SEIR, o, n_colloc=n_colloc) for o in observations]
    return Problem(problems[0].spec, jax.tree.map(lambda *x: jnp.stack(x), *[p.arrays for p in problems]))


def train_config(preset: Preset, method: str, weight: float | None = None) -> TrainConfig:
    name = "fixed" if method == "fixed_best" else method
    return TrainConfig(method=name, adam_steps=preset.adam_steps, refine_steps=preset.refine_steps,
                       record_every=preset.record_every, fixed_weight=weight,
                       network=NetworkConfig(width=preset.width))


def choose_fixed_weight(preset: Preset) -> tuple[float, dict]:
    """The fixed weight with the lowest median |R0 error| against least squares after refinement,
    chosen on the baseline scenario with seeds 1000.. (never used in the benchmark cells)."""
    cell = Cell("baseline", preset.noises[0], preset.n_obs[0])
    seeds = list(range(1000, 1000 + preset.sweep_seeds))
    obs = cell_data(cell, seeds)
    problem = batched_problem(obs, 256)
    r0_lsq = np.array([classical_fit(SEIR, o).r0 for o in obs])
    scores = {}
    for w in preset.sweep_weights:
        res = train(problem, train_config(preset, "fixed", w), seeds, batched_data=True, raise_on_divergence=False)
        p = np.exp(res.log_rates)
        scores[w] = float(np.nanmedian(np.abs(p[:, 0] / p[:, 2] / r0_lsq - 1)))
    return min(scores, key=lambda w: (np.nan_to_num(scores[w], nan=np.inf), w)), scores


def run_cell(cell: Cell, preset: Preset, fixed_best: float) -> tuple[list[dict], dict]:
    """Train every method on the cell; return one row per (method, seed, phase) plus the
    classical fit's rows, and the histories (for the figures) keyed by method."""
    seeds = list(range(preset.seeds))
    obs = cell_data(cell, seeds)
    sc = SCENARIOS[cell.scenario]
    truth = sc.params
    r0_true = SEIR.r0([truth[k] for k in RATES])
    problem = batched_problem(obs, 256)
    u0 = initial_fractions(SEIR, obs[0])
    grid = np.linspace(0.0, sc.horizon, 401)
    true_states = simulate_numpy(SEIR, [truth[k] for k in RATES], u0, grid)
    i_idx = SEIR.state_index("I")
    rows, histories = [], {}
    base = {"scenario": cell.scenario, "noise": cell.noise, "n_obs": cell.n_obs}

    def peak_row(rates):
        if not np.all(np.isfinite(rates)):
            return {"peak_time_error_days": np.nan, "peak_height_rel_error": np.nan}
        states = simulate_numpy(SEIR, rates, u0, grid)
        return metrics.peak_errors(grid, states[:, i_idx], true_states[:, i_idx])

    # the reference: least squares on the same data
    lsq = []
    for k, o in enumerate(obs):
        t0 = time.perf_counter()
        c = classical_fit(SEIR, o)
        rates = np.array([c.rates[n] for n in RATES])
        lsq.append(c)
        row = dict(base, method="classical", seed=k, phase="final", diverged=False,
                   wall_s=time.perf_counter() - t0, time_per_step_ms=np.nan, steps_to_5pct=np.nan,
                   weight=np.nan, r0=c.r0, r0_error_vs_lsq=0.0, misfit_ratio=1.0)
        row.update({f"{n}_error": v for n, v in metrics.relative_errors(c.rates, truth).items()})
        row["r0_error"] = c.r0 / r0_true - 1
        row.update(peak_row(rates))
        row.update({f"l2_{s}": v for s, v in metrics.trajectory_rel_l2(
            simulate_numpy(SEIR, rates, u0, grid), true_states, SEIR.states).items()})
        rows.append(row)
    r0_lsq = np.array([c.r0 for c in lsq])

    for method in preset.methods:
        weight = fixed_best if method == "fixed_best" else None
        cfg = train_config(preset, method, weight)
        res = train(problem, cfg, seeds, batched_data=True, raise_on_divergence=False)
        network = make_network(SEIR, cfg.network)
        states_fn = jax.jit(jax.vmap(network.states, in_axes=(0, None, None)))
        tau = jnp.asarray(grid / sc.horizon, jnp.float32)
        h = res.history
        histories[method] = {k: np.asarray(v) for k, v in h.items()}
        hist_rates = np.exp(h["log_rates"])
        hist_r0 = hist_rates[:, :, 0] / hist_rates[:, :, 2]
        per_step_ms = 1e3 * res.adam_s / max(cfg.adam_steps * len(seeds), 1)
        for phase, log_rates, theta in (("adam", res.log_rates_adam, res.theta_adam), ("final", res.log_rates, res.theta)):
            net_states = np.asarray(states_fn(jnp.asarray(theta), tau, problem.arrays.u0[0]))
            for k in seeds:
                rates = np.exp(log_rates[k])
                diverged = bool(res.diverged[k]) or not np.all(np.isfinite(rates))
                est = dict(zip(RATES, rates))
                row = dict(base, method=method, seed=k, phase=phase, diverged=diverged,
                           wall_s=(res.adam_s if phase == "adam" else res.train_s) / len(seeds),
                           time_per_step_ms=per_step_ms,
                           weight=cfg.fixed_weight if method == "fixed_best" else np.nan,
                           r0=SEIR.r0(rates))
                row.update({f"{n}_error": v for n, v in metrics.relative_errors(est, truth).items()})
                row["r0_error"] = row["r0"] / r0_true - 1
                row["r0_error_vs_lsq"] = row["r0"] / r0_lsq[k] - 1
                row.update(peak_row(rates))
                row.update({f"l2_{s}": v for s, v in metrics.trajectory_rel_l2(
                    net_states[k], true_states, SEIR.states).items()})
                upto = h["phase"] == 0 if phase == "adam" else slice(None)
                reached = metrics.steps_to_within(h["step"][upto], hist_r0[k][upto], r0_lsq[k], 0.05)
                row["steps_to_5pct"] = np.nan if reached is None else reached
                row["misfit_ratio"] = np.nan
                rows.append(row)
    return rows, histories
