import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from epigate.metrics import (
    count_deadlocks,
    gate_phases,
    holm,
    paired_median_difference,
    loglog_slope,
    median_iqr,
    paired_wilcoxon,
    peak,
    peak_errors,
    relative_errors,
    running_min,
    steps_to_within,
    trajectory_rel_l2,
)

# --- relative_errors ------------------------------------------------------------------------


def test_relative_errors_hand_computed():
    out = relative_errors({"beta": 0.55, "gamma": 0.09, "extra": 1.0},
                          {"beta": 0.5, "gamma": 0.1, "sigma": 0.2})
    assert set(out) == {"beta", "gamma"}
    assert out["beta"] == pytest.approx(0.1)
    assert out["gamma"] == pytest.approx(-0.1)


def test_relative_errors_nan_cases():
    out = relative_errors({"a": float("nan"), "b": 1.0, "c": 2.0}, {"a": 1.0, "b": 0.0, "c": 1.0})
    assert math.isnan(out["a"]) and math.isnan(out["b"])
    assert out["c"] == pytest.approx(1.0)


@given(x=st.floats(1e-6, 1e6), e=st.floats(-0.99, 10.0))
def test_relative_error_law(x, e):
    assert relative_errors({"p": x * (1 + e)}, {"p": x})["p"] == pytest.approx(e, abs=1e-9)


# --- peaks ----------------------------------------------------------------------------------


def test_peak_of_triangle():
    t = np.arange(11.0)
    tri = np.minimum(t, 10.0 - t) * 0.1  # apex 0.5 at t = 5
    assert peak(t, tri) == (5.0, 0.5)


def test_peak_ignores_nan_and_all_nan():
    t = np.arange(4.0)
    assert peak(t, [1.0, np.nan, 3.0, 2.0]) == (2.0, 3.0)
    tp, hp = peak(t, [np.nan] * 4)
    assert math.isnan(tp) and math.isnan(hp)


def test_peak_errors():
    t = np.arange(11.0)
    ref = np.minimum(t, 10.0 - t) * 0.1           # peak (5, 0.5)
    est = np.roll(ref, 2) * 1.2                    # peak (7, 0.6)
    out = peak_errors(t, est, ref)
    assert out["peak_time_error_days"] == pytest.approx(2.0)
    assert out["peak_height_rel_error"] == pytest.approx(0.2)


# --- trajectory_rel_l2 ----------------------------------------------------------------------


def test_trajectory_rel_l2_scaled_and_zero_column():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0.1, 1.0, size=(50, 3))
    ref[:, 2] = 0.0
    est = 1.1 * ref
    out = trajectory_rel_l2(est, ref, ["S", "E", "I"])
    assert list(out) == ["S", "E", "I"]
    assert out["S"] == pytest.approx(0.1) and out["E"] == pytest.approx(0.1)
    assert math.isnan(out["I"])


def test_trajectory_rel_l2_hand_value_and_shape_checks():
    ref = np.array([[3.0], [4.0]])     # norm 5
    est = np.array([[3.0], [5.0]])     # diff norm 1
    assert trajectory_rel_l2(est, ref, ["I"]) == {"I": pytest.approx(0.2)}
    with pytest.raises(ValueError):
        trajectory_rel_l2(est, ref, ["I", "R"])
    with pytest.raises(ValueError):
        trajectory_rel_l2(est[:, 0], ref[:, 0], ["I"])


# --- steps_to_within ------------------------------------------------------------------------


def test_steps_to_within_enter_leave_reenter():
    steps = np.array([0, 10, 20, 30, 40, 50])
    values = np.array([2.0, 1.03, 1.2, 1.04, 0.96, 1.0])   # reference 1.0, tol 5 %
    assert steps_to_within(steps, values, 1.0) == 30
    assert isinstance(steps_to_within(steps, values, 1.0), int)


def test_steps_to_within_boundaries():
    steps = np.array([0, 10, 20])
    assert steps_to_within(steps, [1.0, 1.0, 1.0], 1.0) == 0                 # within from start
    assert steps_to_within(steps, [1.0, 1.0, 1.5], 1.0) is None              # left at the end
    assert steps_to_within(steps, [2.0, 2.0, 2.0], 1.0) is None              # never
    assert steps_to_within(steps, [2.0, np.nan, 1.0], 1.0) == 20             # NaN is outside
    assert steps_to_within(steps, [2.0, 1.09, 1.0], 1.0, tol=0.1) == 10
    assert steps_to_within([], [], 1.0) is None
    assert steps_to_within(steps, [0.0, 0.0, 0.0], 0.0) is None


# --- median_iqr -----------------------------------------------------------------------------


def test_median_iqr():
    assert median_iqr([1, 2, 3, 4, 5]) == (3.0, 2.0, 4.0)
    assert median_iqr([1, 2, np.nan, 3, 4, 5]) == (3.0, 2.0, 4.0)
    assert all(math.isnan(v) for v in median_iqr([np.nan, np.nan]))
    assert all(math.isnan(v) for v in median_iqr([]))


# --- paired_wilcoxon ------------------------------------------------------------------------


def test_paired_wilcoxon_identical_is_one():
    a = np.arange(10.0)
    assert paired_wilcoxon(a, a.copy()) == 1.0


def test_paired_wilcoxon_shifted_and_nan_dropping():
    a = np.linspace(0.1, 1.0, 10)
    b = a + 1.0 + 0.01 * np.arange(10)   # every difference negative, distinct magnitudes
    p = paired_wilcoxon(a, b)
    assert p < 0.01
    assert p == pytest.approx(2 / 2**10)          # exact two-sided: both extreme rank sums
    a9 = a.copy()
    a9[3] = np.nan
    p9 = paired_wilcoxon(a9, b)
    keep = np.arange(10) != 3
    assert p9 == pytest.approx(stats.wilcoxon(a[keep], b[keep]).pvalue)
    assert p9 == pytest.approx(2 / 2**9)


@given(st.lists(st.one_of(st.floats(0.0, 1.0), st.just(float("nan"))), min_size=1, max_size=40))
def test_holm_adjustment_laws(p):
    adjusted = holm(p)
    raw = np.array(p)
    finite = np.isfinite(raw)
    assert np.array_equal(np.isnan(adjusted), ~finite)
    a, r = adjusted[finite], raw[finite]
    assert np.all(a >= r - 1e-15) and np.all(a <= 1.0)
    order = np.argsort(r, kind="stable")
    assert np.all(np.diff(a[order]) >= -1e-15)  # adjusted values keep the order of the raw ones
    if r.size:
        assert a[order[0]] == pytest.approx(min(1.0, r.size * r[order[0]]))  # the first step is Bonferroni


def test_holm_hand_computed():
    assert np.allclose(holm([0.01, 0.04, 0.03, np.nan]), [0.03, 0.06, 0.06, np.nan], equal_nan=True)


def test_paired_median_difference_holds_the_median_in_its_interval():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    b = a - np.array([0.5, 0.7, 0.9, 1.1, 1.3, 1.5, 1.7, 1.9])
    d, lo, hi = paired_median_difference(a, b)
    assert d == pytest.approx(1.2) and 0.5 <= lo <= d <= hi <= 1.9
    assert paired_median_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == (0.0, 0.0, 0.0)
    assert all(math.isnan(x) for x in paired_median_difference([1.0, np.nan], [0.0, 0.0]))


def test_paired_wilcoxon_too_few_pairs():
    assert math.isnan(paired_wilcoxon([1.0, np.nan], [2.0, 3.0]))
    assert math.isnan(paired_wilcoxon([], []))


# --- count_deadlocks ------------------------------------------------------------------------


def _series_with_flat_stretch(c_outside):
    r, a, n_flat = 100, 40, 30
    steps = np.arange(r) * 10
    ld = np.empty(r)
    lp = np.empty(r)
    ld[:a] = 1.0 * 0.95 ** np.arange(a)          # falling 5 % per record
    lp[:a] = 2.0 * 0.95 ** np.arange(a)
    ld[a:a + n_flat] = ld[a - 1] * 0.95           # flat
    lp[a:a + n_flat] = lp[a - 1] * 0.95
    k = np.arange(1, r - a - n_flat + 1)
    ld[a + n_flat:] = ld[a] * 0.95 ** k           # falling again
    lp[a + n_flat:] = lp[a] * 0.95 ** k
    c = np.full(r, c_outside)
    c[a:a + n_flat] = -0.99
    return steps, ld, lp, c, a, n_flat


@pytest.mark.parametrize("c_outside", [0.3, -0.99])
def test_count_deadlocks_one_flat_stretch(c_outside):
    steps, ld, lp, c, a, n = _series_with_flat_stretch(c_outside)
    out = count_deadlocks(steps, ld, lp, c, window=20)
    assert out == [(int(steps[a]), int(steps[a + n - 1]))]


def test_count_deadlocks_none_when_losses_fall_or_c_not_opposed():
    steps, ld, lp, c, a, n = _series_with_flat_stretch(-0.99)
    falling = 0.95 ** np.arange(len(steps))
    assert count_deadlocks(steps, falling, 2 * falling, c, window=20) == []
    # only the physics loss flat: not a deadlock
    assert count_deadlocks(steps, falling, lp, c, window=20) == []
    # flat losses but gradients only mildly opposed
    assert count_deadlocks(steps, ld, lp, np.full(len(steps), -0.5), window=20) == []
    # flat stretch shorter than the window
    assert count_deadlocks(steps, ld, lp, c, window=31) == []


def test_count_deadlocks_two_stretches_and_c_blip():
    r = 60
    steps = np.arange(r)
    loss = np.ones(r)
    c = np.full(r, -1.0)
    c[25] = 0.0                       # one aligned record splits the stretch
    out = count_deadlocks(steps, loss, loss, c, window=10)
    assert out == [(0, 24), (26, 59)]
    # a blip leaving fewer than `window` records on one side removes that side
    c2 = np.full(r, -1.0)
    c2[5] = 0.0
    assert count_deadlocks(steps, loss, loss, c2, window=10) == [(6, 59)]
    assert count_deadlocks(steps[:5], loss[:5], loss[:5], c[:5], window=10) == []


# --- gate -----------------------------------------------------------------------------------


def test_gate_phases():
    steps = np.array([0, 10, 20, 30, 40, 50, 60, 70])
    s = np.array([0.1, 0.2, 0.6, 0.5, 0.4, 0.9, 0.95, 0.99])
    out = gate_phases(steps, s)
    assert out == {"relaxation": [(0, 10), (40, 40)], "refinement": [(20, 30), (50, 70)]}
    # NaN belongs to neither phase
    s[6] = np.nan
    out = gate_phases(steps, s)
    assert out["refinement"] == [(20, 30), (50, 50), (70, 70)]
    assert gate_phases([], []) == {"relaxation": [], "refinement": []}


# --- convergence ----------------------------------------------------------------------------


def test_running_min():
    np.testing.assert_array_equal(running_min([3.0, 1.0, 2.0, 0.5, 4.0]),
                                  [3.0, 1.0, 1.0, 0.5, 0.5])
    out = running_min([np.nan, 2.0, np.nan, 1.0])
    assert math.isnan(out[0])
    np.testing.assert_array_equal(out[1:], [2.0, 2.0, 1.0])


def test_loglog_slope():
    T = np.arange(1.0, 1001.0)
    assert loglog_slope(T, 3.0 / T) == pytest.approx(-1.0, abs=1e-9)
    assert loglog_slope(T, 0.5 * T**-2.5) == pytest.approx(-2.5, abs=1e-9)
    y = 3.0 / T
    y[::7] = 0.0                       # non-positive entries ignored
    y[::11] = np.nan
    assert loglog_slope(T, y) == pytest.approx(-1.0, abs=1e-9)
    assert math.isnan(loglog_slope([1.0], [1.0]))
    assert math.isnan(loglog_slope([2.0, 2.0], [1.0, 3.0]))
