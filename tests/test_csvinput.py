"""Reading case-count CSVs: the bundled dataset, the shared real data, and every input error."""

import numpy as np
import pytest

from epigate.csvinput import InputError, read_csv
from epigate.datasets import DATASETS, dataset_names, load_dataset

IN_BED = [3, 8, 26, 76, 225, 298, 258, 233, 189, 128, 68, 29, 14, 4]
CONVALESCENT = [0, 0, 0, 0, 9, 17, 105, 162, 176, 166, 150, 85, 47, 20]


# --- bundled dataset ------------------------------------------------------------------------


def test_bundled_boarding_school_loads():
    obs = load_dataset("boarding_school_1978")
    assert obs.channels == ("I",) and obs.values.shape == (14, 1)
    np.testing.assert_array_equal(obs.t, np.arange(1, 15))
    np.testing.assert_array_equal(obs.values[:, 0], IN_BED)
    np.testing.assert_array_equal(obs.t_start, np.arange(0, 14))
    assert obs.population == 763 and obs.initial == {"I": 1 / 763}
    assert obs.n_missing == 0 and obs.truth is None
    assert obs.source == "boarding_school_1978.csv: I=in_bed (14 rows)"


def test_dataset_registry():
    assert dataset_names() == ["boarding_school_1978"]
    spec = DATASETS["boarding_school_1978"]
    assert spec["model"] == "sir" and "BMJ 1978;1:587" in spec["credit"]
    with pytest.raises(InputError, match="unknown dataset 'nope'.*boarding_school_1978"):
        load_dataset("nope")


def test_bundled_convalescent_column_matches():
    from importlib import resources

    with resources.as_file(resources.files("epigate.datasets") / "boarding_school_1978.csv") as p:
        obs = read_csv(p, time="date", observe={"I": "in_bed", "R": "convalescent"}, population=763)
    np.testing.assert_array_equal(obs.values, np.column_stack([IN_BED, CONVALESCENT]))
    assert obs.start_date == "1978-01-21"  # one reporting interval before day 1
    np.testing.assert_array_equal(obs.t, np.arange(1, 15))


# --- shared real data -----------------------------------------------------------------------

@pytest.mark.parametrize(
    "file, kw, n, channels",
    [
        ("boarding_school_flu_1978.csv", dict(time="day", observe={"I": "in_bed"}, population=763), 14, ("I",)),
        ("boarding_school_flu_1978.csv",
         dict(time="date", observe={"I": "in_bed", "R": "convalescent"}, population=763), 14, ("I", "R")),
        ("boarding_school_flu_1978_variants.csv",
         dict(time="day", observe={"I": "benmaier_digitised_in_bed"}, population=763), 14, ("I",)),
        ("eyam_plague_1666.csv",
         dict(time="time_months", observe={"S": "S", "I": "I", "R": "R"}, population=261), 7, ("S", "I", "R")),
        ("ebola_nigeria_2014_daily.csv",
         dict(time="day", observe={"incidence": "new_cases"}, population=1e6), 92, ("incidence",)),
        ("ebola_kikwit_1995_daily.csv",
         dict(time="day", observe={"incidence": "onset"}, population=5_364_500), 191, ("incidence",)),
        ("measles_hagelloch_1861_daily.csv",
         dict(time="day", observe={"incidence": "rash_onsets"}, population=200), 89, ("incidence",)),
    ],
)
def test_shared_series_read(file, kw, n, channels, shared_data):
    obs = read_csv(shared_data / file, **kw)
    assert obs.values.shape == (n, len(channels)) and obs.channels == channels
    assert np.all(np.diff(obs.t) > 0) and obs.t[0] > 0
    assert np.all(obs.t_start < obs.t) and obs.t_start[0] >= 0
    assert np.all(np.isfinite(obs.values)) and obs.n_missing == 0


def test_shared_boarding_school_matches_bundled(shared_data):
    shared = read_csv(shared_data / "boarding_school_flu_1978.csv", time="day", observe={"I": "in_bed"}, population=763)
    bundled = load_dataset("boarding_school_1978")
    np.testing.assert_array_equal(shared.values, bundled.values)
    np.testing.assert_array_equal(shared.t, bundled.t)


def test_shared_daily_incidence_sets_aside_day_zero(shared_data):
    obs = read_csv(shared_data / "ebola_nigeria_2014_daily.csv", time="day", observe={"incidence": "new_cases"},
                   population=1e6)
    np.testing.assert_array_equal(obs.t, np.arange(1, 93))
    np.testing.assert_array_equal(obs.t_start, np.arange(0, 92))
    assert obs.values.sum() == 19
    assert "1 row at t = 0" in obs.source


def test_shared_ebola_cumulative_with_gaps(shared_data):
    obs = read_csv(shared_data / "ebola_west_africa_2014_cumulative.csv", time="date",
                   observe={"cumulative": "cum_guinea_cases"}, population=1e6)
    assert obs.n_missing == 5  # five reports without a Guinea count
    assert obs.values.shape == (53, 1)
    assert not np.isnan(obs.values).all(axis=1).any()
    assert obs.start_date == "2014-03-20"  # first date minus the median spacing (2 days)
    assert obs.t[0] == 2 and obs.t[-1] == 153
    assert obs.values[-1, 0] == 607

    both = read_csv(shared_data / "ebola_west_africa_2014_cumulative.csv", time="date", start="2014-03-22",
                    observe={"cumulative": "cum_guinea_cases", "D": "cum_guinea_deaths"}, population=1e6)
    assert both.start_date == "2014-03-22" and both.t[0] == 2  # the 22 March row is t = 0
    assert both.n_missing == 10 and both.values.shape == (52, 2)


# --- dates, blanks and interval starts ------------------------------------------------------


def write(tmp_path, text, name="cases.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_dates_irregular_blanks_and_interval_starts(tmp_path):
    path = write(tmp_path, "date,new,prev\n2020-03-01,1,\n2020-03-02,,\n2020-03-04,3,5\n2020-03-08,,7\n")
    obs = read_csv(path, time="date", observe={"incidence": "new", "I": "prev"}, population=100)
    assert obs.start_date == "2020-02-28"  # median spacing 2 days
    np.testing.assert_array_equal(obs.t, [2, 5, 9])  # the all-blank 2 March row is dropped
    np.testing.assert_array_equal(obs.t_start, [0, 3, 5])  # 2 March still ends the interval
    assert obs.n_missing == 4
    assert np.isnan(obs.values[0, 1]) and np.isnan(obs.values[2, 0])
    assert obs.source == "cases.csv: incidence=new, I=prev (3 rows; 1 all-blank row dropped)"


def test_default_initial_is_one_index_case(tmp_path):
    obs = read_csv(write(tmp_path, "t,x\n1,2\n2,3\n"), time="t", observe={"I": "x"}, population=50)
    assert obs.initial == {"I": 1 / 50}
    np.testing.assert_array_equal(obs.t_start, [0, 1])


# --- bad input: one test per error ----------------------------------------------------------

KW = dict(time="t", observe={"I": "x"}, population=100)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.csv: file not found"):
        read_csv(tmp_path / "nothere.csv", **KW)


def test_empty_file(tmp_path):
    with pytest.raises(InputError, match=r"cases\.csv: the file is empty"):
        read_csv(write(tmp_path, ""), **KW)


def test_header_only(tmp_path):
    with pytest.raises(InputError, match=r"cases\.csv: the file has a header but no data rows"):
        read_csv(write(tmp_path, "t,x\n"), **KW)


def test_unknown_time_column(tmp_path):
    with pytest.raises(InputError, match=r"cases\.csv: no time column 'day'; the file has columns 't', 'x'"):
        read_csv(write(tmp_path, "t,x\n1,2\n"), time="day", observe={"I": "x"}, population=100)


def test_unknown_observed_column(tmp_path):
    with pytest.raises(InputError, match=r"cases\.csv: no 'I' column 'in_bed'; the file has columns 't', 'x'"):
        read_csv(write(tmp_path, "t,x\n1,2\n"), time="t", observe={"I": "in_bed"}, population=100)


def test_duplicated_column(tmp_path):
    with pytest.raises(InputError, match=r"cases\.csv: column 'x' appears twice in the header \(columns 2 and 3\)"):
        read_csv(write(tmp_path, "t,x,x\n1,2,3\n"), **KW)


def test_non_numeric_value(tmp_path):
    with pytest.raises(InputError, match=r"cases\.csv: line 3, column 'x': 'ten' is not a number"):
        read_csv(write(tmp_path, "t,x\n1,2\n2,ten\n"), **KW)


def test_non_numeric_time(tmp_path):
    with pytest.raises(InputError, match=r"cases\.csv: line 3, column 't': time 'two' is not a number"):
        read_csv(write(tmp_path, "t,x\n1,2\ntwo,3\n"), **KW)


def test_unparseable_date(tmp_path):
    with pytest.raises(InputError, match=r"line 3, column 't': time '2020-02-30' is neither a number nor an ISO date"):
        read_csv(write(tmp_path, "t,x\n2020-02-28,2\n2020-02-30,3\n"), **KW)


def test_blank_time(tmp_path):
    with pytest.raises(InputError, match=r"line 2, column 't': the time is blank"):
        read_csv(write(tmp_path, "t,x\n,2\n"), **KW)


def test_negative_count(tmp_path):
    with pytest.raises(InputError, match=r"cases\.csv: line 2, column 'x': negative count -4"):
        read_csv(write(tmp_path, "t,x\n1,-4\n"), **KW)


@pytest.mark.parametrize("cell", ["nan", "inf", "-Infinity"])
def test_non_finite_count(tmp_path, cell):
    with pytest.raises(InputError, match=rf"cases\.csv: line 3, column 'x': '{cell}' is not a finite count"):
        read_csv(write(tmp_path, f"t,x\n1,2\n2,{cell}\n"), **KW)


def test_non_finite_time(tmp_path):
    with pytest.raises(InputError, match=r"line 3, column 't': time 'inf' is not finite"):
        read_csv(write(tmp_path, "t,x\n1,2\ninf,3\n"), **KW)


def test_duplicate_times(tmp_path):
    with pytest.raises(InputError, match=r"cases\.csv: column 't': duplicate time: line 4 has '2' after line 3"):
        read_csv(write(tmp_path, "t,x\n1,2\n2,3\n2,4\n"), **KW)


def test_decreasing_times(tmp_path):
    with pytest.raises(InputError, match=r"time goes backwards: line 3 has '2020-01-01' after line 2 with '2020-01-05'"):
        read_csv(write(tmp_path, "t,x\n2020-01-05,2\n2020-01-01,3\n"), **KW)


def test_negative_time(tmp_path):
    with pytest.raises(InputError, match=r"line 2, column 't': time -1 is before t = 0"):
        read_csv(write(tmp_path, "t,x\n-1,2\n1,3\n"), **KW)


def test_date_before_start(tmp_path):
    with pytest.raises(InputError, match=r"line 2, column 't': date 2020-01-01 is before start 2020-01-03"):
        read_csv(write(tmp_path, "t,x\n2020-01-01,2\n2020-01-05,3\n"), start="2020-01-03", **KW)


def test_bad_start(tmp_path):
    with pytest.raises(InputError, match=r"start='March' is not an ISO date"):
        read_csv(write(tmp_path, "t,x\n2020-01-01,2\n"), start="March", **KW)
    with pytest.raises(InputError, match=r"start='2020-01-01' needs a date time column"):
        read_csv(write(tmp_path, "t,x\n1,2\n"), start="2020-01-01", **KW)


@pytest.mark.parametrize("channel", ["I", "cumulative", "incidence"])
def test_count_above_population(tmp_path, channel):
    with pytest.raises(InputError, match=r"line 3, column 'x': count 101 is larger than the population 100"):
        read_csv(write(tmp_path, "t,x\n1,2\n2,101\n"), time="t", observe={channel: "x"}, population=100)


def test_too_few_observations(tmp_path):
    with pytest.raises(InputError, match=r"only 2 valid observations .* needs at least 3"):
        read_csv(write(tmp_path, "t,x\n0,1\n1,2\n2,\n3,4\n"), n_free_params=3, **KW)


def test_nothing_after_t_zero(tmp_path):
    with pytest.raises(InputError, match=r"no observations at t > 0"):
        read_csv(write(tmp_path, "t,x\n0,1\n1,\n"), **KW)


@pytest.mark.parametrize("population", [0, -5, float("inf"), float("nan")])
def test_bad_population(tmp_path, population):
    with pytest.raises(InputError, match=r"cases\.csv: population must be a finite number of people >= 1"):
        read_csv(write(tmp_path, "t,x\n1,2\n"), time="t", observe={"I": "x"}, population=population)


def test_empty_observe(tmp_path):
    with pytest.raises(InputError, match=r"cases\.csv: nothing to observe"):
        read_csv(write(tmp_path, "t,x\n1,2\n"), time="t", observe={}, population=100)


def test_bad_initial(tmp_path):
    with pytest.raises(InputError, match=r"initial fraction of 'I' must be in \[0, 1\]"):
        read_csv(write(tmp_path, "t,x\n1,2\n"), initial={"I": 2.0}, **KW)


@pytest.mark.parametrize("row, n", [("2,3,4", 3), ("2", 1)])
def test_ragged_row(tmp_path, row, n):
    with pytest.raises(InputError, match=rf"cases\.csv: line 3 has {n} fields but the header \(line 1\) has 2 columns"):
        read_csv(write(tmp_path, f"t,x\n1,2\n{row}\n"), **KW)
