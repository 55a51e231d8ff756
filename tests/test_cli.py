"""The command line: every promised file, clear errors for bad options, nothing left behind."""

import json

import pytest
from typer.testing import CliRunner

from epigate.cli import app

runner = CliRunner(env={"COLUMNS": "200"})
FAST = ["--pretrain-steps", "200", "--steps", "400", "--refine-steps", "800", "--refine-rounds", "4",
        "--restart-steps", "0", "--quiet"]


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    result = runner.invoke(app, ["fit", "--demo", "--out", str(out), "--bootstrap", "3", "--forecast", "20", *FAST])
    assert result.exit_code == 0, result.output
    return out, result


def test_fit_demo_writes_every_promised_file(demo_out):
    out, result = demo_out
    for name in ("result.json", "observations.csv", "trajectories.csv", "history.csv",
                 "fit.png", "training.png", "params.png", "forecast.csv", "forecast.png"):
        assert (out / name).stat().st_size > 0, name
    r = json.loads((out / "result.json").read_text())
    assert r["model"] == "seir" and r["method"] == "cggs"
    q = r["quantities"]
    assert set(q) >= {"beta", "sigma", "gamma", "R0", "incubation_period", "infectious_period", "peak_time",
                      "peak_size"}
    assert q["beta"]["truth"] == 0.5 and q["beta"]["unit"] == "1/day" and q["infectious_period"]["unit"] == "days"
    assert q["R0"]["truth"] == pytest.approx(5.0) and q["R0"]["classical"] > 0
    assert q["R0"]["vs_classical"] == pytest.approx(q["R0"]["pinn"] / q["R0"]["classical"] - 1)
    assert 30 < q["peak_time"]["pinn"] < 60
    assert r["timing"]["runtime_s"] > 0
    assert r["settings"]["adam_steps"] == 400 and r["settings"]["refine_steps"] == 800
    obs_lines = (out / "observations.csv").read_text().splitlines()
    assert obs_lines[0] == "t,I,R" and len(obs_lines) == 41
    assert "beta" in (out / "history.csv").read_text().splitlines()[0]
    # the terminal table shows estimates and errors against the truth, and names each interval's kind
    assert "PINN vs truth" in result.output and "R0" in result.output
    assert "95 % profile" in result.output


def test_every_interval_says_what_it_is(demo_out):
    out, result = demo_out
    r = json.loads((out / "result.json").read_text())
    profile = r["classical_intervals"]
    assert set(profile) >= {"beta", "sigma", "gamma", "R0", "incubation_period", "infectious_period"}
    for name, iv in profile.items():
        assert iv["kind"] == "profile" and iv["level"] == 0.95, name
        assert iv["lo"] < iv["median"] < iv["hi"], (name, iv)  # the demo pins every number
        assert iv["median"] == pytest.approx(r["quantities"][name]["classical"]), name
    # R0 = beta / gamma: its profile interval must lie within what beta's and gamma's allow
    assert profile["R0"]["lo"] >= profile["beta"]["lo"] / profile["gamma"]["hi"] * (1 - 1e-6)
    assert profile["R0"]["hi"] <= profile["beta"]["hi"] / profile["gamma"]["lo"] * (1 + 1e-6)
    assert r["correlation"]["parameters"] == ["beta", "sigma", "gamma"]
    assert r["correlation"]["matrix"][0][1] < -0.9  # beta and sigma trade off along the demo's valley
    assert r["bootstrap"]["members"] == 3 and r["bootstrap"]["noise"]["kind"] == "gaussian"
    for name, iv in r["intervals"].items():  # bootstrap intervals only from converged members, else none
        assert iv["kind"] == "bootstrap" and iv["level"] == 0.9 and iv["lo"] <= iv["median"] <= iv["hi"], name
    assert bool(r["intervals"]) == (r["bootstrap"]["used"] >= 2)


def test_forecast_csv_extends_every_series_past_the_data(demo_out):
    out, _ = demo_out
    lines = (out / "forecast.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header == ["day"] + [f"{n}_{p}" for n in ("I", "R") for p in ("median", "lo", "hi")]
    rows = [[float(v) if v else float("nan") for v in line.split(",")] for line in lines[1:]]
    days = [row[0] for row in rows]
    assert days[0] == 0 and days[-1] == 120.0 and all(b > a for a, b in zip(days, days[1:]))
    observed = json.loads((out / "result.json").read_text())["quantities"]["peak_size"]["pinn"]
    peak = max(row[1] for row in rows)  # the median I curve peaks near the reported peak
    assert peak == pytest.approx(observed, rel=0.1)
    for row in rows:
        for j in (1, 4):
            lo, med, hi = row[j + 1], row[j], row[j + 2]
            assert med >= 0 and (lo != lo or lo <= med <= hi), row


@pytest.mark.parametrize("args, message", [
    (["--method", "nope"], "unknown method 'nope'"),
    (["--model", "sirx"], "unknown model 'sirx'"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--steps", "-5"], "must be"),
    (["--lr", "0"], "learning_rate"),
    (["--bootstrap", "0"], "--bootstrap K needs K >= 2"),
    (["--bootstrap", "1"], "--bootstrap K needs K >= 2"),
    (["--bootstrap", "4", "--seeds", "2"], "cannot be combined"),
    (["--forecast", "-3"], "--forecast DAYS must be"),
    (["--level", "1.5"], "--level must be in (0, 1)"),
    (["--outer-steps", "-1"], "--outer-steps must be >= 0"),
    (["--restart-steps", "-1"], "--restart-steps must be >= 0"),
])
def test_bad_options_give_a_clear_error_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    result = runner.invoke(app, ["fit", "--demo", "--out", str(out), *FAST, *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_simulate_writes_a_csv(tmp_path):
    path = tmp_path / "outbreak.csv"
    result = runner.invoke(app, ["simulate", "--out", str(path), "--n-obs", "10", "--observe", "I,incidence"])
    assert result.exit_code == 0, result.output
    lines = path.read_text().splitlines()
    assert lines[0] == "t,I,incidence" and len(lines) == 11
