"""Intervals: profile likelihood of least squares, the bootstrap's noise models, interval laws."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chi2

from epigate.assumptions import Assumptions
from epigate.bootstrap import NoiseModel, fitted_noise, resample
from epigate.classical import OdeObjective, classical_fit
from epigate.data import synthetic_outbreak
from epigate.intervals import Interval, achieved_level, order_statistic_rank, percentile_interval, required_draws
from epigate.models import SEIR, SIR
from epigate.profile import _Statistic, profile_intervals, threshold

positive = st.floats(min_value=1e-3, max_value=1e3)


@given(positive, positive, positive)
def test_a_period_interval_is_the_rate_interval_inverted(a, b, c):
    lo, med, hi = sorted([a, b, c])
    iv = Interval(med, lo, hi, 0.9, "profile")
    period = iv.inverted()
    assert period.lo == pytest.approx(1 / hi) and period.hi == pytest.approx(1 / lo)
    assert period.contains(1 / med) and period.inverted().lo == pytest.approx(lo)
    open_above = Interval(med, lo, None, 0.9, "profile", bound=50.0).inverted()
    assert open_above.lo is None and open_above.hi == pytest.approx(1 / lo) and open_above.contains(1e-9)


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=2, max_size=50), st.floats(0.5, 0.99))
def test_a_percentile_interval_holds_its_median_and_widens_with_the_level(values, level):
    iv = percentile_interval(values, level, "bootstrap")
    assert iv.lo <= iv.median <= iv.hi
    wider = percentile_interval(values, min(level + 0.009, 0.999), "bootstrap")
    assert wider.lo <= iv.lo and wider.hi >= iv.hi


@given(st.integers(2, 400), st.floats(0.5, 0.99))
def test_an_order_statistic_interval_reaches_its_level_from_enough_draws(n, level):
    achieved = achieved_level(n, level)
    assert (achieved >= level - 1e-12) == (n >= required_draws(level))
    k = order_statistic_rank(n, level)
    iv = percentile_interval(np.arange(n, dtype=float), level, "bootstrap")
    assert (iv.lo, iv.hi) == (k - 1, n - k)  # the k-th smallest and largest of 0..n-1
    if n >= required_draws(level):  # never wider than it must be: one rank further would fall short
        assert (n + 1 - 2 * (k + 1)) / (n + 1) < level


def test_one_value_has_no_interval():
    assert percentile_interval([4.2, np.nan], 0.9, "training_spread") is None


@pytest.fixture(scope="module")
def beta_only():
    """SEIR with sigma and gamma known: R0 = beta / gamma, so their intervals must agree exactly."""
    obs = synthetic_outbreak(SEIR, {"beta": 0.6, "sigma": 0.25, "gamma": 0.2}, population=1e6, horizon=80,
                             observe=("incidence",), n_obs=40, noise="poisson", initial={"I": 1e-5}, seed=3)
    a = Assumptions(fixed={"sigma": 0.25, "gamma": 0.2}, likelihood="poisson")
    fit = classical_fit(SEIR, obs, a)
    return obs, a, fit, profile_intervals(SEIR, obs, fit, a, level=0.95)


def test_the_profile_crosses_its_threshold_at_the_interval_ends(beta_only):
    obs, a, fit, p = beta_only
    objective = OdeObjective(SEIR, obs, a)
    statistic = _Statistic(objective, objective.pack(fit.rates, [1.0], fit.u0))
    for end in (p.intervals["beta"].lo, p.intervals["beta"].hi):
        rates = dict(fit.rates, beta=end)
        stat = statistic.of_loss(objective.loss_of([rates[n] for n in SEIR.params], [1.0], fit.u0))
        assert stat == pytest.approx(p.threshold * p.widening["beta"], rel=0.02), end
    iv = p.intervals["beta"]
    assert iv.lo < fit.rates["beta"] < iv.hi and iv.kind == "profile" and iv.identifiable
    assert p.intervals["R0"].lo == pytest.approx(iv.lo / 0.2, rel=1e-4)
    assert p.intervals["R0"].hi == pytest.approx(iv.hi / 0.2, rel=1e-4)
    assert p.dispersion >= 1.0 and p.not_identifiable() == []
    assert 1.0 <= p.widening["beta"] < 3.0 and p.widening["R0"] == pytest.approx(p.widening["beta"], rel=1e-3)


@given(st.integers(1, 400), st.integers(1, 6), st.floats(0.5, 0.99), st.booleans(), st.floats(0.5, 20.0))
def test_the_threshold_is_chi_square_once_the_noise_scale_is_known_and_above_it_while_estimated(
        extra, n_free, level, squared, dispersion):
    n = n_free + extra
    plain = chi2.ppf(level, 1)
    value = threshold(level, n, n_free, squared=squared, dispersion=dispersion)
    if not squared and dispersion <= 1.0:  # the counts' scale is the likelihood's own: nothing estimated
        assert value == pytest.approx(plain)
        return
    assert value > plain  # an estimated scale leaves the statistic more variable than chi-square(1)
    more = threshold(level, n + 50, n_free, squared=squared, dispersion=dispersion)
    assert plain < more < value  # the excess shrinks with more observations, to nothing:
    assert threshold(level, 10 ** 6, n_free, squared=squared, dispersion=dispersion) == pytest.approx(plain, rel=1e-3)


def test_the_small_sample_threshold_is_the_exact_one_for_a_straight_line():
    """Linear regression with gaussian noise: the F-based interval of the slope is the textbook
    t interval, so its coverage over many noise draws is the nominal level."""
    rng = np.random.default_rng(0)
    x = np.linspace(0.0, 1.0, 8)
    level, hits, draws = 0.9, 0, 4000
    cut = threshold(level, x.size, 2, squared=True, dispersion=1.0)
    for _ in range(draws):
        y = 1.0 + 2.0 * x + rng.normal(0.0, 0.3, x.size)
        design = np.stack([np.ones_like(x), x], axis=1)
        best = np.sum((y - design @ np.linalg.lstsq(design, y, rcond=None)[0]) ** 2)
        # profile at the true slope: the intercept refitted
        held = np.sum((y - 2.0 * x - np.mean(y - 2.0 * x)) ** 2)
        hits += x.size * np.log(held / best) < cut
    assert abs(hits / draws - level) < 0.015, hits / draws  # chi-square(1) gives 0.82 here


def test_a_number_the_data_cannot_pin_is_named_with_its_bound():
    # the first 12 days of an SIR outbreak: growth pins beta - gamma, not gamma itself
    obs = synthetic_outbreak(SIR, {"beta": 0.5, "gamma": 0.2}, population=1e6, horizon=12, observe=("I",),
                             n_obs=12, noise="gaussian", noise_level=0.05, initial={"I": 1e-5}, seed=1)
    fit = classical_fit(SIR, obs)
    p = profile_intervals(SIR, obs, fit, level=0.95)
    gamma = p.intervals["gamma"]
    assert not gamma.identifiable and gamma.bound is not None
    assert "gamma" in p.not_identifiable() and "R0" in p.not_identifiable()
    assert abs(p.correlation[0, 1]) > 0.99  # beta and gamma move together


def test_fitted_noise_recovers_the_noise_that_made_the_data():
    demo = synthetic_outbreak(SEIR, noise="gaussian", noise_level=0.05, seed=0)  # 5 % relative noise
    noise = fitted_noise(SEIR, demo, classical_fit(SEIR, demo))
    assert noise.kind == "gaussian" and np.all(np.abs(noise.relative_sd - 0.05) < 0.015), noise
    assert np.all(noise.sd < 50.0)  # next to 5 % of tens of thousands of people: the noise is relative
    truth = {"beta": 0.5, "sigma": 0.2, "gamma": 0.1}
    counts = dict(population=1e5, horizon=100, observe=("incidence",), n_obs=60, initial={"E": 1e-3, "I": 1e-3})
    poisson = synthetic_outbreak(SEIR, truth, noise="poisson", seed=0, **counts)
    noise = fitted_noise(SEIR, poisson, classical_fit(SEIR, poisson, Assumptions(likelihood="poisson")),
                         Assumptions(likelihood="poisson"))
    assert noise.kind == "poisson" and noise.overdispersion < 1.6
    negbin = synthetic_outbreak(SEIR, truth, noise="negbin", dispersion=5.0, seed=0, **counts)
    noise = fitted_noise(SEIR, negbin, classical_fit(SEIR, negbin, Assumptions(likelihood="poisson")),
                         Assumptions(likelihood="poisson"))
    assert noise.overdispersion > 5.0  # far more variable than Poisson: quasi-Poisson draws


@pytest.mark.parametrize("noise, variance", [
    (NoiseModel("gaussian", sd=np.array([30.0])), lambda mu: 900.0 + 0 * mu),
    (NoiseModel("gaussian", sd=np.array([30.0]), relative_sd=np.array([0.1])), lambda mu: 900.0 + (0.1 * mu) ** 2),
    (NoiseModel("poisson"), lambda mu: mu),
    (NoiseModel("poisson", overdispersion=4.0), lambda mu: 4.0 * mu),
    (NoiseModel("negbin", dispersion=5.0), lambda mu: mu + mu ** 2 / 5.0),
])
def test_noise_draws_have_the_stated_mean_and_variance(noise, variance):
    mu = np.full((20000, 1), 400.0)
    draws = noise.sample(mu, np.random.default_rng(0))
    assert draws.mean() == pytest.approx(400.0, rel=0.01)
    assert draws.var() == pytest.approx(variance(400.0), rel=0.05)
    assert draws.min() >= 0


def test_lognormal_draws_have_the_fitted_count_as_median_and_the_stated_log_spread():
    draws = NoiseModel("lognormal", relative_sd=np.array([0.3])).sample(np.full((20000, 1), 400.0),
                                                                        np.random.default_rng(0))
    assert np.median(draws) == pytest.approx(400.0, rel=0.01)
    assert np.log(draws).std() == pytest.approx(0.3, rel=0.03)
    assert draws.min() > 0


def test_resampled_data_keep_the_times_and_the_gaps():
    obs = synthetic_outbreak(SEIR, n_obs=10, seed=0)
    values = obs.values.copy()
    values[3, 1] = np.nan
    obs = obs.__class__(**{**obs.__dict__, "values": values})
    fit = classical_fit(SEIR, obs)
    noise = fitted_noise(SEIR, obs, fit)
    first, second = resample(SEIR, obs, fit, noise, 2, seed=7)
    assert np.isnan(first.values[3, 1]) and np.isfinite(first.values).sum() == np.isfinite(values).sum()
    assert np.array_equal(first.t, obs.t) and first.truth is None and not np.allclose(first.values[:3],
                                                                                      second.values[:3])
    again = resample(SEIR, obs, fit, noise, 2, seed=7)[0]
    assert np.array_equal(again.values, first.values, equal_nan=True)


def test_a_bootstrap_that_misses_its_own_generating_values_says_so():
    from epigate.summary import Quantity, _bootstrap_bias_warnings

    def quantity(name, classical, lo, hi):
        return Quantity(name, "", (lo + hi) / 2, Interval((lo + hi) / 2, lo, hi, 0.9, "bootstrap"), classical)

    fine = [quantity("R0", 5.1, 4.5, 5.6), quantity("gamma", 0.1, 0.098, 0.102)]
    assert _bootstrap_bias_warnings(fine, [None] * 15) == []
    biased = fine + [quantity("beta", 0.51, 0.42, 0.44)]
    (warning,) = _bootstrap_bias_warnings(biased, [None] * 15)
    assert "beta: 0.51 outside [0.42, 0.44]" in warning and "R0" not in warning and "not confidence" in warning
