"""From benchmark rows to statistics, figures and report.md (the research questions RQ1-RQ4 of
docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .. import metrics  # noqa: E402
from ..balancing import gate  # noqa: E402
from ..formatting import number, percent  # noqa: E402
from ..train import History  # noqa: E402
from .grid import NOISES, SCENARIOS, Cell, Preset  # noqa: E402
from .runner import RunRow, train_config  # noqa: E402

ABS_METRICS = ("r0_error", "r0_error_vs_lsq", "beta_error", "sigma_error", "gamma_error",
               "peak_time_error_days", "peak_height_rel_error")
PLAIN_METRICS = ("l2_S", "l2_E", "l2_I", "l2_R", "time_per_step_ms", "wall_s")
COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _nanmedian(values) -> float:
    """Median ignoring NaN; NaN (without a warning) when nothing is finite."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else np.nan


def _select(rows: list[RunRow], **where) -> list[RunRow]:
    return [r for r in rows if all(getattr(r, k) == v for k, v in where.items())]


def _metric(row: RunRow, key: str) -> float:
    """A metric of a row by its CSV column name (NaN for a diverged run or an absent metric)."""
    return np.nan if row.diverged else float(row.flat().get(key, np.nan))


def _values(rows, key, absolute=False):
    v = np.array([_metric(r, key) for r in rows], dtype=float)
    return np.abs(v) if absolute else v


def _by_seed(rows, key):
    """Absolute metric indexed by seed (NaN for diverged runs), for paired tests."""
    return {r.seed: abs(_metric(r, key)) for r in rows}


def summarise(rows: list[RunRow]) -> list[dict]:
    """One row per (cell, method, phase): median and IQR of each metric, diverged count, steps to
    5 % of least squares, and paired Wilcoxon p-values of cggs against this method (|R0 error|,
    |peak-time error|), over the cell's seeds."""
    out = []
    keys = sorted({(r.scenario, r.noise, r.n_obs, r.method, r.phase) for r in rows})
    for sc, noise, n, method, phase in keys:
        sel = _select(rows, scenario=sc, noise=noise, n_obs=n, method=method, phase=phase)
        s = {"scenario": sc, "noise": noise, "n_obs": n, "method": method, "phase": phase, "runs": len(sel),
             "diverged": int(sum(r.diverged for r in sel))}
        for key in ABS_METRICS:
            med, q1, q3 = metrics.median_iqr(_values(sel, key, absolute=True))
            s[f"abs_{key}_median"], s[f"abs_{key}_q25"], s[f"abs_{key}_q75"] = med, q1, q3
        for key in PLAIN_METRICS:
            s[f"{key}_median"] = metrics.median_iqr(_values(sel, key))[0]
        reached = _values(sel, "steps_to_5pct")
        s["reached_5pct"] = int(np.isfinite(reached).sum())
        s["steps_to_5pct_median"] = _nanmedian(reached)
        ref = _select(rows, scenario=sc, noise=noise, n_obs=n, method="cggs", phase=phase)
        for key, short in (("r0_error", "r0"), ("peak_time_error_days", "peak")):
            if method in ("cggs", "classical") or not ref:
                s[f"p_{short}_vs_cggs"] = np.nan
                s[f"d_{short}_vs_cggs"] = s[f"d_{short}_vs_cggs_lo"] = s[f"d_{short}_vs_cggs_hi"] = np.nan
                continue
            a, b = _by_seed(ref, key), _by_seed(sel, key)
            common = sorted(set(a) & set(b))
            a, b = [a[k] for k in common], [b[k] for k in common]
            s[f"p_{short}_vs_cggs"] = metrics.paired_wilcoxon(a, b)
            # effect size: median over seeds of |error of cggs| - |error of this method| (< 0: cggs better)
            d = metrics.paired_median_difference(a, b)
            s[f"d_{short}_vs_cggs"], s[f"d_{short}_vs_cggs_lo"], s[f"d_{short}_vs_cggs_hi"] = d
        out.append(s)
    # one family per phase: "which method ends closest" and "which is closest after the balancing
    # phase" are two questions; each family holds every cell, method and both metrics
    for phase in PHASES:
        family = [s for s in out if s["phase"] == phase]
        raw = [s[f"p_{short}_vs_cggs"] for short in ("r0", "peak") for s in family]
        adjusted = iter(metrics.holm(raw))
        for short in ("r0", "peak"):
            for s in family:
                s[f"p_{short}_vs_cggs_holm"] = float(next(adjusted))
    return out


PHASES = ("final", "adam")
COMPARATORS = ("magnitude", "floor", "fixed_best")  # the controls that isolate what CGGS adds


def surviving_comparisons(summary: list[dict], phase: str, alpha: float = 0.05) -> tuple[int, list[dict]]:
    """(number of comparisons tested in ``phase``'s family, those whose Holm-adjusted p-value is
    below ``alpha``)."""
    tested, survivors = 0, []
    for s in summary:
        if s["phase"] != phase:
            continue
        for short, metric in (("r0", "|R0 error|"), ("peak", "|peak-day error|")):
            p = s.get(f"p_{short}_vs_cggs_holm", np.nan)
            if np.isfinite(p):
                tested += 1
                if p < alpha:
                    survivors.append(dict(s, metric=metric, short=short))
    return tested, sorted(survivors, key=lambda s: _grid_order((s["scenario"], s["noise"], s["n_obs"])))


def _grid_order(cell: tuple[str, str, int]) -> tuple[int, int, int]:
    """Cells in the grid's order: scenario, then noise (0 % up to 20 %, poisson, negbin), then count."""
    scenario, noise, n = cell
    return list(SCENARIOS).index(scenario), list(NOISES).index(noise), n


def verdicts(summary: list[dict], phase: str, comparator: str, short: str, alpha: float = 0.05) -> dict:
    """How often cggs is significantly better or worse than ``comparator`` (Holm-adjusted p <
    ``alpha``, sign of the paired median difference) over the grid's cells, on metric ``short``
    (r0 or peak), and the median of the per-cell effect sizes."""
    rows = [s for s in summary if s["method"] == comparator and s["phase"] == phase]
    p = np.array([s[f"p_{short}_vs_cggs_holm"] for s in rows], dtype=float)
    d = np.array([s[f"d_{short}_vs_cggs"] for s in rows], dtype=float)
    significant = np.isfinite(p) & (p < alpha)
    return {"cells": len(rows), "better": int(np.sum(significant & (d < 0))),
            "worse": int(np.sum(significant & (d > 0))), "median_effect": _nanmedian(d),
            "better_cells": [(s["scenario"], s["noise"], s["n_obs"]) for s, ok, x in zip(rows, significant, d)
                             if ok and x < 0]}


def _survivor_lines(survivors: list[dict]) -> list[str]:
    """One line per comparison that survives the correction."""
    out = []
    for row in survivors:
        short = row["short"]
        scale, unit = (100.0, "points") if short == "r0" else (1.0, "days")
        d = row[f"d_{short}_vs_cggs"] * scale
        out.append(f"- {row['scenario']}, noise {row['noise']}, {row['n_obs']} observations, {row['phase']} phase, "
                   f"{row['metric']}: cggs {'better' if d < 0 else 'worse'} than {row['method']} by {abs(d):.3g} "
                   f"{unit} (median over seeds; {_difference(row, short, scale)}; Holm p = "
                   f"{_fmt(row[f'p_{short}_vs_cggs_holm'])}).")
    return out


def _fmt(x, pct=False):
    """A table cell: a percentage without sign, or 3 significant digits; "–" when missing."""
    return percent(x, missing="–", sign=False) if pct else number(x, 3, missing="–")


def _difference(s: dict, short: str, scale: float) -> str:
    """The paired median difference and its interval, e.g. ``+1.2 [0.4, 2.0]`` (scale 100: points)."""
    d, lo, hi = (s.get(f"d_{short}_vs_cggs{end}", np.nan) for end in ("", "_lo", "_hi"))
    if not np.isfinite(d):
        return "–"
    return f"{scale * d:+.3g} [{scale * lo:.3g}, {scale * hi:.3g}]"


def cell_table(summary: list[dict], sc: str, noise: str, n: int) -> str:
    rows = [s for s in summary if s["scenario"] == sc and s["noise"] == noise and s["n_obs"] == n]
    head = ("| method | phase | \\|R0 err\\| % (IQR) | \\|R0 − LSQ\\| % | \\|β err\\| % | \\|σ err\\| % | "
            "\\|peak day err\\| | \\|peak size err\\| % | L2 of E | ms/step | reached 5 % of LSQ | "
            "diverged | cggs − method, \\|R0 err\\| pts [95 % CI] | p R0 (Holm) | cggs − method, peak days "
            "[95 % CI] | p peak (Holm) |")
    lines = [head, "|" + "---|" * 16]
    order = {"classical": -1}
    for s in sorted(rows, key=lambda s: (order.get(s["method"], 0), s["method"], s["phase"] != "adam")):
        lines.append(
            f"| {s['method']} | {s['phase']} | {_fmt(s['abs_r0_error_median'], True)} "
            f"({_fmt(s['abs_r0_error_q25'], True)}–{_fmt(s['abs_r0_error_q75'], True)}) | "
            f"{_fmt(s['abs_r0_error_vs_lsq_median'], True)} | {_fmt(s['abs_beta_error_median'], True)} | "
            f"{_fmt(s['abs_sigma_error_median'], True)} | {_fmt(s['abs_peak_time_error_days_median'])} | "
            f"{_fmt(s['abs_peak_height_rel_error_median'], True)} | {_fmt(s['l2_E_median'])} | "
            f"{_fmt(s['time_per_step_ms_median'])} | {s['reached_5pct']}/{s['runs']} | {s['diverged']} | "
            f"{_difference(s, 'r0', 100.0)} | {_fmt(s['p_r0_vs_cggs_holm'])} | {_difference(s, 'peak', 1.0)} | "
            f"{_fmt(s['p_peak_vs_cggs_holm'])} |")
    return "\n".join(lines)


def winners(summary, sc, noise, n, phase="final"):
    """Method (not classical) with the lowest median |R0 error| and |peak-time error|, and whether
    its difference from cggs is significant (paired Wilcoxon, Holm-adjusted p < 0.05)."""
    rows = [s for s in summary if (s["scenario"], s["noise"], s["n_obs"], s["phase"]) == (sc, noise, n, phase)
            and s["method"] != "classical"]
    out = {}
    for key, p in (("abs_r0_error_median", "p_r0_vs_cggs_holm"),
                   ("abs_peak_time_error_days_median", "p_peak_vs_cggs_holm")):
        finite = [s for s in rows if np.isfinite(s[key])]
        if not finite:
            continue
        best = min(finite, key=lambda s: s[key])
        cggs = next((s for s in rows if s["method"] == "cggs"), None)
        out[key] = (best["method"], best[key], best[p], cggs[key] if cggs else np.nan)
    return out


# ---------------------------------------------------------------- figures


def fig_rq1(histories: dict[str, History], path: Path) -> dict:
    """Cosine under fixed weights: distribution and trace; deadlocks counted per run."""
    fixed_like = [m for m in ("fixed", "fixed_best", "floor") if m in histories]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    counts = {}
    for i, m in enumerate(fixed_like):
        h, rec = histories[m], histories[m].records
        adam = h.phase == 0
        c = rec.c[:, adam]
        axes[0].hist(c[np.isfinite(c)].ravel(), bins=40, range=(-1, 1), alpha=0.5, color=COLORS[i], label=m)
        axes[1].plot(h.step[adam], rec.c_mean[0, adam], color=COLORS[i], lw=1, label=f"{m} (seed 0)")
        n = 0
        for k in range(rec.c.shape[0]):
            n += len(metrics.count_deadlocks(h.step[adam], rec.loss_data[k, adam], rec.loss_phys[k, adam],
                                             rec.c[k, adam], window=10))
        counts[m] = (n, rec.c.shape[0], float(np.nanmean(c < 0)), float(_nanmedian(c)))
    axes[0].set_xlabel("cosine c(g_data, g_phys), Adam phase")
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("c (mean over record)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return counts


def fig_rq2(summary: list[dict], path: Path, methods) -> None:
    """Median |R0 error| (final) with IQR against noise and against the number of observations."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, axis in zip(axes, ("noise", "n_obs")):
        for i, m in enumerate(list(methods) + ["classical"]):
            rows = [s for s in summary if s["method"] == m and s["phase"] == "final"]
            groups = sorted({s[axis] for s in rows}, key=lambda x: list(NOISES).index(x) if axis == "noise" else x)
            if not groups:
                continue
            med = [_nanmedian([s["abs_r0_error_median"] for s in rows if s[axis] == g]) for g in groups]
            lo = [_nanmedian([s["abs_r0_error_q25"] for s in rows if s[axis] == g]) for g in groups]
            hi = [_nanmedian([s["abs_r0_error_q75"] for s in rows if s[axis] == g]) for g in groups]
            x = np.arange(len(groups)) + 0.06 * (i - len(methods) / 2)
            style = dict(color="k", lw=2) if m == "classical" else dict(color=COLORS[i % len(COLORS)])
            ax.errorbar(x, 100 * np.array(med), yerr=100 * np.abs(np.array([np.array(med) - lo, np.array(hi) - med])),
                        marker="o", ms=4, capsize=2, label=m, **style)
            ax.set_xticks(np.arange(len(groups)), [str(g) for g in groups])
        ax.set_xlabel(axis)
        ax.set_ylabel("|R0 error| vs truth, % (median, IQR)")
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def fig_rq3(summary: list[dict], path: Path, methods) -> None:
    """Time per Adam step of each method, and steps to reach R0 within 5 % of least squares."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    ms = [_nanmedian([s["time_per_step_ms_median"] for s in summary if s["method"] == m and s["phase"] == "adam"])
          for m in methods]
    axes[0].bar(range(len(methods)), ms, color=[COLORS[i % len(COLORS)] for i in range(len(methods))])
    axes[0].set_xticks(range(len(methods)), methods, rotation=45, ha="right")
    axes[0].set_ylabel("ms per Adam step per network (vmapped)")
    lsq = _nanmedian([s["wall_s_median"] for s in summary if s["method"] == "classical"])
    steps = [_nanmedian([s["steps_to_5pct_median"] for s in summary if s["method"] == m and s["phase"] == "final"])
             for m in methods]
    axes[1].bar(range(len(methods)), steps, color=[COLORS[i % len(COLORS)] for i in range(len(methods))])
    axes[1].set_xticks(range(len(methods)), methods, rotation=45, ha="right")
    axes[1].set_ylabel("steps until R0 stays within 5 % of LSQ")
    axes[1].set_title(f"least squares: {lsq:.2f} s per fit", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def fig_rq4(h: History, path: Path, kappa: float, threshold: float) -> dict:
    """CGGS's lambda and c over training, relaxation (gate closed) and refinement (gate open)
    stretches marked from the gate values themselves."""
    rec = h.records
    adam = h.phase == 0
    step = h.step[adam]
    s = np.asarray(gate(rec.c_mean[0, adam], kappa, threshold))
    phases = metrics.gate_phases(step, s)
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    for k in range(rec.lam.shape[0]):
        axes[0].semilogy(step, rec.lam[k, adam], color=COLORS[0], alpha=0.4)
        axes[1].plot(step, rec.c_mean[k, adam], color=COLORS[1], alpha=0.4)
    for ax in axes:
        for a, b in phases["relaxation"]:
            ax.axvspan(a, b, color="tab:red", alpha=0.08, lw=0)
        for a, b in phases["refinement"]:
            ax.axvspan(a, b, color="tab:green", alpha=0.08, lw=0)
    axes[0].set_ylabel("lambda (all seeds)")
    axes[1].set_ylabel("c (all seeds)")
    axes[1].set_xlabel("Adam step (red: gate closed, s < 0.5, seed 0; green: gate open)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    closed = sum(b - a for a, b in phases["relaxation"])
    return {"phases": phases, "closed_fraction": closed / max(step[-1] - step[0], 1),
            "lam_final_median": float(_nanmedian(rec.lam[:, adam][:, -1]))}


def fig_convergence(histories: dict[str, History], path: Path) -> dict:
    """min over t <= T of |grad L_data|^2 against T (log-log), Adam phase, median over seeds."""
    fig, ax = plt.subplots(figsize=(6, 4))
    slopes = {}
    for i, m in enumerate(("cggs", "fixed", "magnitude")):
        if m not in histories:
            continue
        h, norm = histories[m], histories[m].records.norm_data
        adam = h.phase == 0
        T = h.step[adam].astype(float)
        g2 = np.array([metrics.running_min(norm[k, adam] ** 2) for k in range(norm.shape[0])])
        y = np.nanmedian(g2, axis=0)
        slopes[m] = metrics.loglog_slope(T, y)
        ax.loglog(T, y, color=COLORS[i], label=f"{m} (slope {slopes[m]:.2f})")
    ax.set_xlabel("T (Adam steps)")
    ax.set_ylabel("min_{t<=T} |grad L_data|^2")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return slopes


# ---------------------------------------------------------------- report


def write_bench_report(out: Path, preset: Preset, rows: list[RunRow], summary: list[dict], histories_of,
                       machine: str, elapsed_s: float, fixed_best: float, sweep: dict, *,
                       computed: tuple[int, int] | None = None) -> None:
    """report.md and its figures; ``computed`` = (cells computed by this invocation, cells in all)."""
    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    cells = sorted({(s["scenario"], s["noise"], s["n_obs"]) for s in summary}, key=_grid_order)
    methods = [m for m in preset.methods]
    conflict_cell = next((c for c in cells if c[0] == "stiff"), cells[0])
    base_cell = next((c for c in cells if c[0] == "baseline"), cells[0])
    base_histories = histories_of(Cell(*base_cell).id)
    rq1 = fig_rq1(base_histories, figs / "rq1_conflict.png")
    fig_rq2(summary, figs / "rq2_robustness.png", methods)
    fig_rq3(summary, figs / "rq3_cost.png", methods)
    cggs_cfg = train_config(preset, "cggs")
    rq4 = fig_rq4(base_histories["cggs"], figs / "rq4_curriculum.png", cggs_cfg.kappa, cggs_cfg.gate_threshold) \
        if "cggs" in base_histories else None
    slopes = fig_convergence(histories_of(Cell(*conflict_cell).id), figs / "convergence.png")

    L = [f"# Benchmark report: preset `{preset.name}`", "",
         f"Command: `epigate bench --preset {preset.name} --out DIR`. Machine: {machine}. "
         f"Wall time of the invocation that wrote this report: {elapsed_s / 60:.1f} min"
         + (f", computing {computed[0]} of {computed[1]} cells (the rest were resumed from disk)." if computed
            and computed[0] < computed[1] else "."), "",
         f"Grid: scenarios {', '.join(preset.scenarios)}; noise {', '.join(preset.noises)}; observation counts "
         f"{', '.join(map(str, preset.n_obs))}; {preset.seeds} seeds per cell, trained together under vmap; every "
         f"method gets the same data, initialisation and budget ({preset.adam_steps} Adam steps + "
         f"{preset.refine_steps} L-BFGS iterations, network 3x{preset.width}). `fixed` is weight 1, "
         f"`fixed_best` the weight {fixed_best:g} chosen on separate seeds (median |R0 error| vs least squares "
         f"after refinement: " + ", ".join(f"{w:g}: {100 * v:.1f} %" for w, v in sweep.items()) + "), `floor` "
         "a fixed weight equal to CGGS's floor. Errors are against the truth unless marked LSQ (the classical "
         "least-squares fit on the same data, the first row of every table). p-values: paired Wilcoxon "
         "signed-rank test of |error| of cggs against the row's method over seeds, Holm-adjusted within one "
         "family per phase (both metrics, every cell and method; raw values in summary.csv); "
         "beside each, the effect size: the median over seeds of |error of cggs| − |error of the method| "
         "(negative: cggs better) with a 95 % bootstrap interval (– for cggs itself).", ""]
    n_div = sum(r.diverged for r in rows)
    L += [f"Runs: {len(rows)} rows, {n_div} marked diverged (counted in the tables, never dropped silently).", ""]
    L += ["## Does CGGS beat magnitude balancing, the floor control or the best fixed weight?", "",
          "Cells of the grid where cggs is significantly better or worse than each control (Holm-adjusted "
          "p < 0.05 within the phase's family), and the median over cells of the paired median difference "
          "|error of cggs| − |error of the control| (negative: cggs better). `final`: after the shared "
          "refinement; `adam`: the end of the first-order phase, where the balancing acts.", "",
          "| phase | control | metric | cggs significantly better | cggs significantly worse | median effect |",
          "|---|---|---|---|---|---|"]
    for phase in PHASES:
        for comparator in (c for c in COMPARATORS if c in methods):
            for short, metric, scale, unit in (("r0", "\\|R0 error\\|", 100.0, " pts"),
                                               ("peak", "\\|peak day error\\|", 1.0, " d")):
                v = verdicts(summary, phase, comparator, short)
                where = "".join(f"; {c[0]} {c[1]} n{c[2]}" for c in v["better_cells"][:6])
                more = "…" if len(v["better_cells"]) > 6 else ""
                L.append(f"| {phase} | {comparator} | {metric} | {v['better']} of {v['cells']}{where}{more} | "
                         f"{v['worse']} of {v['cells']} | {scale * v['median_effect']:+.3g}{unit} |")
    L += [""]
    floor_p = 2.0 / 2.0 ** preset.seeds  # the exact two-sided signed-rank test's smallest p-value
    for phase in PHASES:
        tested, survivors = surviving_comparisons(summary, phase)
        L += [f"## Which differences survive the correction: {phase} phase", "",
              f"{len(survivors)} of {tested} comparisons of cggs against another method have a Holm-adjusted p "
              "below 0.05" + (":" if survivors else "."), ""]
        if tested and floor_p >= 0.05 / tested:
            need = int(np.ceil(np.log2(2.0 * tested / 0.05)))
            L += [f"With {preset.seeds} seeds the signed-rank test cannot give a p-value below 2/2^{preset.seeds} "
                  f"= {floor_p:.3g}, and Holm over {tested} comparisons needs {0.05 / tested:.2g} for the first: no "
                  f"comparison can survive here, whatever the methods do. That takes at least {need} seeds; until "
                  "then read the effect sizes and their intervals.", ""]
        L += _survivor_lines(survivors) + [""]
    L += ["", "## Who wins each cell (measured)", ""]
    for c in cells:
        for phase in ("adam", "final"):
            w = winners(summary, *c, phase=phase)
            if "abs_r0_error_median" not in w:
                continue
            m, v, p, vc = w["abs_r0_error_median"]
            mt, vt, pt, vct = w.get("abs_peak_time_error_days_median", ("–", np.nan, np.nan, np.nan))
            sig = lambda p, m: "it is cggs" if m == "cggs" else (
                f"difference from cggs {'significant' if np.isfinite(p) and p < 0.05 else 'not significant'} "
                f"(p = {_fmt(p)})")
            L.append(f"- **{c[0]}, noise {c[1]}, {c[2]} observations, {phase} phase**: lowest median |R0 error| "
                     f"{m} ({_fmt(v, True)} %, cggs {_fmt(vc, True)} %; {sig(p, m)}); lowest median peak-day error "
                     f"{mt} ({_fmt(vt)} d, cggs {_fmt(vct)} d; {sig(pt, mt)}).")
    L += ["", "## Tables", ""]
    for c in cells:
        L += [f"### {c[0]}, noise {c[1]}, {c[2]} observations", "", cell_table(summary, *c), ""]
    L += ["## RQ1: conflict", "", "![RQ1](figures/rq1_conflict.png)", ""]
    for m, (n, k, neg, med) in rq1.items():
        L.append(f"- `{m}` ({base_cell[0]} cell, Adam phase): c < 0 in {100 * neg:.0f} % of records, median c "
                 f"{med:.2f}; {n} deadlock stretch(es) over {k} runs (>= 10 records with c <= -0.9 while both "
                 "losses change by < 1 %).")
    L += ["", "## RQ2: robustness to noise and sparsity", "", "![RQ2](figures/rq2_robustness.png)", "",
          "Median |R0 error| after refinement (bars: IQR), each point the median over the cells of that noise "
          "level (left) or observation count (right)"
          + (". This preset has one noise level and one observation count: one group per panel."
             if len(preset.noises) == 1 and len(preset.n_obs) == 1 else "."), "",
          "## RQ3: cost", "", "![RQ3](figures/rq3_cost.png)", ""]
    per_step = {m: _nanmedian([s["time_per_step_ms_median"] for s in summary
                                 if s["method"] == m and s["phase"] == "adam"]) for m in methods}
    L.append("Time per Adam step per network (ms, vmapped, median over cells): "
             + ", ".join(f"{m} {_fmt(v)}" for m, v in per_step.items()) + ".")
    lsq_s = _nanmedian([s["wall_s_median"] for s in summary if s["method"] == "classical"])
    L += [f"The classical least-squares fit takes {_fmt(lsq_s)} s per data set.", ""]
    L += ["## RQ4: curriculum", "", "![RQ4](figures/rq4_curriculum.png)", ""]
    if rq4:
        L.append(f"In the {base_cell[0]} cell the gate (computed from the recorded cosine, seed 0) was closed "
                 f"(s < 0.5) for {100 * rq4['closed_fraction']:.0f} % of the Adam phase; relaxation stretches "
                 f"{rq4['phases']['relaxation'][:5]}{'…' if len(rq4['phases']['relaxation']) > 5 else ''}, "
                 f"refinement stretches {rq4['phases']['refinement'][:5]}"
                 f"{'…' if len(rq4['phases']['refinement']) > 5 else ''}. Median final lambda "
                 f"{rq4['lam_final_median']:.3g} (floor {cggs_cfg.floor:g}, ceiling {cggs_cfg.lam_ref:g}).")
    L += ["", "## Convergence of the data-gradient norm", "", "![convergence](figures/convergence.png)", "",
          f"Scenario {conflict_cell[0]}: fitted log-log slopes of min_(t<=T) |grad L_data|^2 against T: "
          + ", ".join(f"{m} {v:.2f}" for m, v in slopes.items()) + " (O(1/T) means slope <= -1).", ""]
    (out / "report.md").write_text("\n".join(L) + "\n")
