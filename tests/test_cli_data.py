"""Real data through the normal CLI path: every usable series in ../shared/data fits, bad CSVs fail
cleanly and leave --out empty."""

import json

import pytest
from typer.testing import CliRunner

from epigate.cli import app

runner = CliRunner(env={"COLUMNS": "200"})
TINY = ["--pretrain-steps", "50", "--steps", "100", "--refine-steps", "100", "--refine-rounds", "2",
        "--restart-steps", "0", "--quiet"]


# file, arguments (what a modeller would type)
SERIES = [
    ("boarding_school_flu_1978.csv", ["--time", "day", "--observe", "I=in_bed", "--observe", "R=convalescent",
                                      "--population", "763", "--model", "sir"]),
    ("boarding_school_flu_1978_variants.csv", ["--time", "day", "--observe", "I=benmaier_digitised_in_bed",
                                               "--population", "763", "--model", "sir"]),
    ("eyam_plague_1666.csv", ["--time", "time_months", "--time-unit", "month", "--observe", "I=I", "--observe", "S=S",
                              "--population", "261", "--initial", "I=7", "--model", "sir"]),
    ("ebola_west_africa_2014_cumulative.csv", ["--time", "date", "--observe", "cumulative=cum_guinea_cases",
                                               "--population", "1e6", "--initial", "I=49",
                                               "--fix", "incubation_days=5.3", "--fix", "infectious_days=5.61"]),
    ("ebola_nigeria_2014_daily.csv", ["--time", "date", "--observe", "incidence=new_cases", "--population", "1e6",
                                      "--fix", "incubation_days=9.31"]),
    ("ebola_kikwit_1995_daily.csv", ["--time", "day", "--observe", "incidence=onset", "--population", "5364500",
                                     "--reporting", "incidence=estimate", "--fix", "incubation_days=5.3",
                                     "--fix", "infectious_days=5.61"]),
    ("measles_hagelloch_1861_daily.csv", ["--time", "date", "--observe", "incidence=rash_onsets",
                                          "--population", "200"]),
]


@pytest.mark.parametrize("name, args", SERIES, ids=[s[0] for s in SERIES])
def test_every_shared_series_fits_through_the_cli(tmp_path, name, args, shared_data):
    out = tmp_path / "out"
    result = runner.invoke(app, ["fit", str(shared_data / name), *args, *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    r = json.loads((out / "result.json").read_text())
    assert r["has_truth"] is False
    if "sir" in args:  # the free-start row names the model's own start compartments
        assert "E(0)" not in result.output
    r0 = r["quantities"]["R0"]
    assert r0["classical"] > 0
    # None is silently wrong: a short run either agrees with least squares, or says it has not
    # converged, or (the data cannot tell the two apart) warns that the data pin R0 only loosely and
    # lies inside least squares' own 95 % profile interval (an open side extends to infinity)
    agrees = r0["pinn"] is not None and abs(r0["pinn"] / r0["classical"] - 1) < 0.05
    assert r["status"] in ("ok", "not_converged")
    if r["status"] == "ok" and not agrees:
        profile = r["classical_intervals"]["R0"]
        assert any("only loosely" in w for w in r["warnings"]), f"status ok, no warning, but R0 {r0['pinn']} " \
                                                                 f"vs least squares {r0['classical']}"
        assert (profile["lo"] is None or profile["lo"] <= r0["pinn"]) and \
               (profile["hi"] is None or r0["pinn"] <= profile["hi"]), (r0["pinn"], profile)
    elif r["status"] != "ok":
        assert r["reasons"] and "NOT CONVERGED" in result.output
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 3
    # intervals on cumulative counts are too narrow, and the output says so
    assert any("cumulative counts carry every earlier error forward" in w for w in r["warnings"]) == (
        "cumulative" in r["data"]["channels"])


def test_blank_cells_are_counted_in_the_output(tmp_path, shared_data):
    name, args = SERIES[3]
    out = tmp_path / "out"
    result = runner.invoke(app, ["fit", str(shared_data / name), *args, *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    r = json.loads((out / "result.json").read_text())
    assert r["data"]["n_missing"] > 0
    assert r["fixed"] == {"sigma": pytest.approx(1 / 5.3), "gamma": pytest.approx(1 / 5.61)}
    assert r["quantities"]["sigma"]["pinn"] == pytest.approx(1 / 5.3, rel=1e-5)


BAD = {
    "unknown column": ("day,cases\n1,3\n2,5\n3,9\n4,12\n", ["--observe", "I=in_bed"], "in_bed"),
    "negative count": ("day,cases\n1,3\n2,-5\n3,9\n4,12\n", ["--observe", "I=cases"], "line 3"),
    "not a number": ("day,cases\n1,3\n2,five\n3,9\n4,12\n", ["--observe", "I=cases"], "five"),
    "time goes back": ("day,cases\n1,3\n3,5\n2,9\n4,12\n", ["--observe", "I=cases"], "line 4"),
    "above population": ("day,cases\n1,3\n2,5000\n3,9\n4,12\n", ["--observe", "I=cases"], "population"),
    "too few values": ("day,cases\n1,3\n", ["--observe", "I=cases"], "observation"),
    "empty file": ("", ["--observe", "I=cases"], "empty"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_csv_gives_a_clear_error_and_leaves_out_empty(tmp_path, case):
    text, args, message = BAD[case]
    path = tmp_path / "cases.csv"
    path.write_text(text)
    out = tmp_path / "out"
    result = runner.invoke(app, ["fit", str(path), "--time", "day", "--population", "1000", "--model", "sir",
                                 *args, *TINY, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "cases.csv" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_unknown_fix_and_dataset_are_named(tmp_path):
    result = runner.invoke(app, ["fit", "--demo", "--fix", "kappa=3", *TINY])
    assert result.exit_code == 2 and "--fix kappa" in result.output
    result = runner.invoke(app, ["fit", "--dataset", "nope", *TINY])
    assert result.exit_code == 2 and "unknown dataset 'nope'" in result.output
    result = runner.invoke(app, ["fit", *TINY])
    assert result.exit_code == 2 and "exactly one of" in result.output


def test_initial_value_can_be_estimated_and_is_reported(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["fit", "--dataset", "boarding_school_1978", "--initial", "I=estimate", *TINY,
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    r = json.loads((out / "result.json").read_text())
    initial = r["quantities"]["initial_I"]
    assert 0 < initial["pinn"] < 20 and 0 < initial["classical"] < 20 and initial["unit"] == "people"
    profile = r["classical_intervals"]["initial_I"]  # in people, around least squares' estimate
    assert profile["kind"] == "profile" and profile["median"] == pytest.approx(initial["classical"])
    assert profile["lo"] is None or profile["lo"] < initial["classical"]
    assert profile["hi"] is None or profile["hi"] > initial["classical"]
    bad = runner.invoke(app, ["fit", "--dataset", "boarding_school_1978", "--initial", "S=estimate", *TINY])
    assert bad.exit_code == 2 and "--initial S=estimate" in bad.output


def test_a_zero_count_under_the_lognormal_likelihood_is_named(tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text("day,cases\n1,3\n2,0\n3,8\n4,0\n5,20\n6,31\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["fit", str(path), "--time", "day", "--population", "1000", "--model", "sir",
                                 "--observe", "incidence=cases", "--likelihood", "lognormal", *TINY, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "--likelihood lognormal" in result.output and "incidence is 0 at t = 2" in result.output
    assert "2 such value(s)" in result.output and "Traceback" not in result.output
    assert not out.exists()
