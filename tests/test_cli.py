"""The command line: every promised file, clear errors for bad options, nothing left behind."""

import json

import pytest
from typer.testing import CliRunner

from epigate.cli import app

runner = CliRunner(env={"COLUMNS": "200"})
FAST = ["--pretrain-steps", "200", "--steps", "400", "--refine-steps", "800", "--refine-rounds", "4", "--quiet"]


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    result = runner.invoke(app, ["fit", "--demo", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    return out, result


def test_fit_demo_writes_every_promised_file(demo_out):
    out, result = demo_out
    for name in ("result.json", "observations.csv", "trajectories.csv", "history.csv",
                 "fit.png", "training.png", "params.png"):
        assert (out / name).stat().st_size > 0, name
    r = json.loads((out / "result.json").read_text())
    assert r["model"] == "seir" and r["method"] == "cggs"
    q = r["quantities"]
    assert set(q) >= {"beta", "sigma", "gamma", "R0", "incubation_period", "infectious_period", "peak_time",
                      "peak_size"}
    assert q["beta"]["truth"] == 0.5 and q["beta"]["unit"] == "1/day" and q["infectious_period"]["unit"] == "days"
    assert q["R0"]["truth"] == pytest.approx(5.0) and q["R0"]["classical"] > 0
    assert q["R0"]["vs_classical"] == pytest.approx(q["R0"]["pinn"]["median"] / q["R0"]["classical"] - 1)
    assert 30 < q["peak_time"]["pinn"]["median"] < 60
    assert r["timing"]["runtime_s"] > 0
    assert r["settings"]["adam_steps"] == 400 and r["settings"]["refine_steps"] == 800
    obs_lines = (out / "observations.csv").read_text().splitlines()
    assert obs_lines[0] == "t,I,R" and len(obs_lines) == 41
    assert "beta" in (out / "history.csv").read_text().splitlines()[0]
    # the terminal table shows estimates and errors against the truth
    assert "PINN vs truth" in result.output and "R0" in result.output


@pytest.mark.parametrize("args, message", [
    (["--method", "nope"], "unknown method 'nope'"),
    (["--model", "sirx"], "unknown model 'sirx'"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--steps", "-5"], "must be"),
    (["--lr", "0"], "learning_rate"),
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
