"""The benchmark command on a tiny grid: every file, resumability, refusal to mix settings."""

import csv
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from epigate.bench.analysis import summarise, verdicts, winners
from epigate.bench.grid import PRESETS
from epigate.bench.run import run_bench
from epigate.bench.runner import RunRow
from epigate.bench.store import SettingsMismatch, Store
from epigate.cli import app

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "tiny"
    result = runner.invoke(app, ["bench", "--preset", "tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_tiny_bench_writes_every_file_with_every_method_and_seed(tiny_run):
    out = tiny_run
    for name in ("results.csv", "summary.csv", "report.md", "settings.json"):
        assert (out / name).stat().st_size > 0
    for fig in ("rq1_conflict", "rq2_robustness", "rq3_cost", "rq4_curriculum", "convergence"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    preset = PRESETS["tiny"]
    for method in preset.methods:
        for phase in ("adam", "final"):
            sel = [r for r in rows if r["method"] == method and r["phase"] == phase]
            assert sorted(int(r["seed"]) for r in sel) == list(range(preset.seeds))
    assert len([r for r in rows if r["method"] == "classical"]) == preset.seeds
    report = (out / "report.md").read_text()
    assert "lowest median |R0 error|" in report and "| classical | final |" in report


def test_rerun_skips_finished_cells_and_refuses_other_settings(tiny_run):
    out = tiny_run
    before = (out / "cells").stat().st_mtime_ns, sorted(p.name for p in (out / "cells").iterdir())
    calls = []
    run_bench(PRESETS["tiny"], out, progress=lambda d, t, c: calls.append((d, t, c)))
    assert calls[0] == (1, 1, None) and len(calls) == 1  # nothing left to run
    assert sorted(p.name for p in (out / "cells").iterdir()) == before[1]
    other = replace(PRESETS["tiny"], adam_steps=150)
    with pytest.raises(SettingsMismatch, match="other settings"):
        Store(out, other).open()
    result = runner.invoke(app, ["bench", "--preset", "quick", "--out", str(out)])
    assert result.exit_code == 2 and "other settings" in result.output


def test_unknown_preset_is_named(tmp_path):
    result = runner.invoke(app, ["bench", "--preset", "huge", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "unknown preset 'huge'" in result.output


def test_summary_statistics_on_hand_made_rows():
    rows = []
    for seed in range(6):
        for method, err in (("cggs", 0.01 * (seed + 1)), ("fixed", 0.10 + 0.01 * seed)):
            rows.append(RunRow(scenario="s", noise="5%", n_obs=10, method=method, seed=seed, phase="final",
                               diverged=False, wall_s=1.0, time_per_step_ms=1.0,
                               steps_to_5pct=100.0 if err < 0.05 else np.nan, weight=np.nan, r0=5.0,
                               r0_error_vs_lsq=err, misfit_ratio=1.0, r0_error=-err, peak_time_error_days=err,
                               peak_height_rel_error=err, rate_errors={"beta": err, "sigma": err, "gamma": err},
                               l2={"S": 0.0, "E": 0.0, "I": 0.0, "R": 0.0}))
    rows[-1].diverged = True  # fixed, seed 5: counted, excluded from the statistics
    summary = summarise(rows)
    cggs = next(s for s in summary if s["method"] == "cggs")
    fixed = next(s for s in summary if s["method"] == "fixed")
    assert cggs["abs_r0_error_median"] == pytest.approx(0.035)
    assert cggs["abs_r0_error_q25"] == pytest.approx(0.0225)
    assert fixed["abs_r0_error_median"] == pytest.approx(0.12) and fixed["diverged"] == 1
    assert cggs["reached_5pct"] == 4 and fixed["reached_5pct"] == 0
    # 5 pairs, all in cggs's favour: exact two-sided p = 2 / 2^5
    assert fixed["p_r0_vs_cggs"] == pytest.approx(2 / 2 ** 5)
    # every comparison in one Holm family: no adjusted p below its raw value, and cggs better by the median gap
    assert fixed["p_r0_vs_cggs_holm"] >= fixed["p_r0_vs_cggs"]
    assert fixed["d_r0_vs_cggs"] < 0 and fixed["d_r0_vs_cggs_lo"] <= fixed["d_r0_vs_cggs"] <= fixed["d_r0_vs_cggs_hi"]
    best = winners(summary, "s", "5%", 10)
    assert best["abs_r0_error_median"][0] == "cggs"


def test_rows_survive_the_csv_round_trip(tiny_run):
    rows = Store(tiny_run, PRESETS["tiny"]).rows()
    assert rows and all(isinstance(r, RunRow) for r in rows)
    again = [RunRow.from_flat({k: str(v) for k, v in r.flat().items()}) for r in rows]
    for a, b in zip(rows, again):
        assert a.flat().keys() == b.flat().keys()
        for key, value in a.flat().items():
            other = b.flat()[key]
            assert value == other or (isinstance(value, float) and np.isnan(value) and np.isnan(other)), key
    classical = [r for r in rows if r.method == "classical"]
    assert all(set(r.rate_errors) == {"beta", "sigma", "gamma"} and set(r.l2) == {"S", "E", "I", "R"}
               for r in classical)


def test_ray_executor_gives_the_in_process_results(tiny_run, tmp_path):
    """The tiny preset on a local Ray (2 CPUs), one task per (cell, method): the same rows as the
    in-process run except for the timings."""
    try:
        import ray
    except ImportError:
        pytest.fail("Ray is missing: it is part of the test extra, pip install -e '.[test]'")
    from epigate.bench.executor import RayExecutor

    out = tmp_path / "ray"
    try:
        run_bench(PRESETS["tiny"], out, executor=RayExecutor(num_cpus=2))
    finally:
        ray.shutdown()
    timing = {"wall_s", "time_per_step_ms"}
    ours, theirs = Store(out, PRESETS["tiny"]).rows(), Store(tiny_run, PRESETS["tiny"]).rows()
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        fa, fb = a.flat(), b.flat()
        for key in fa.keys() - timing:
            same = fa[key] == fb[key] or (isinstance(fa[key], float) and np.isnan(fa[key]) and np.isnan(fb[key]))
            assert same, f"{a.method} seed {a.seed} {a.phase}: {key} {fa[key]} (ray) vs {fb[key]} (in process)"


def test_fingerprint_covers_the_training_settings(monkeypatch):
    """A changed training default (here the gate's sharpness) changes the fingerprint, so a resumed
    run refuses to mix results of the old and new settings."""
    from epigate.bench import runner

    preset = PRESETS["tiny"]
    before = preset.fingerprint()
    original = runner.train_config
    monkeypatch.setattr(runner, "train_config", lambda p, m, w=None: replace(original(p, m, w), kappa=7.0))
    assert preset.fingerprint() != before


def test_full_preset_trains_as_fit_does():
    """`full` is the product's recipe (TrainConfig's defaults, outer phase included) for every
    method, so it cannot drift from what `epigate fit` runs."""
    from epigate.bench.runner import train_config
    from epigate.config import TrainConfig

    for method in ("cggs", "fixed", "pcgrad"):
        assert train_config(PRESETS["full"], method) == TrainConfig(method=method), method


def test_holm_family_is_one_phase_and_verdicts_count_cells():
    # 7 seeds, cggs better on every one: exact two-sided p = 2 / 2^7 per comparison. Each phase's
    # family holds 2 comparisons (R0 and peak), so Holm doubles p to 0.031 < 0.05; one family over
    # both phases would quadruple it to 0.0625 and nothing would be significant.
    rows = []
    for phase in ("adam", "final"):
        for seed in range(7):
            for method, err in (("cggs", 0.01 * (seed + 1)), ("magnitude", 0.10 + 0.01 * seed)):
                rows.append(RunRow(scenario="s", noise="5%", n_obs=10, method=method, seed=seed, phase=phase,
                                   diverged=False, wall_s=1.0, time_per_step_ms=1.0, steps_to_5pct=np.nan,
                                   weight=np.nan, r0=5.0, r0_error_vs_lsq=err, misfit_ratio=1.0, r0_error=err,
                                   peak_time_error_days=err, peak_height_rel_error=err))
    summary = summarise(rows)
    for phase in ("adam", "final"):
        s = next(s for s in summary if s["method"] == "magnitude" and s["phase"] == phase)
        assert s["p_r0_vs_cggs"] == pytest.approx(2 / 2 ** 7)
        assert s["p_r0_vs_cggs_holm"] == pytest.approx(2 * 2 / 2 ** 7)
        v = verdicts(summary, phase, "magnitude", "r0")
        assert (v["better"], v["worse"], v["cells"]) == (1, 0, 1) and v["better_cells"] == [("s", "5%", 10)]
        assert v["median_effect"] == pytest.approx(-0.09)
