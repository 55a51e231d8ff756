import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from epigate.assumptions import Assumptions
from epigate.classical import classical_fit
from epigate.data import synthetic_outbreak
from epigate.models import SEIR, SIR


def test_recovers_the_truth_on_noise_free_data():
    obs = synthetic_outbreak(noise="none", n_obs=20)
    fit = classical_fit(SEIR, obs)
    for name, true in {"beta": 0.5, "sigma": 0.2, "gamma": 0.1}.items():
        assert fit.rates[name] == pytest.approx(true, rel=1e-4)
    assert fit.r0 == pytest.approx(5.0, rel=1e-4)
    assert fit.loss < 1e-12


def test_fixed_rate_and_estimated_reporting_fraction():
    obs = synthetic_outbreak("sir", {"beta": 0.6, "gamma": 0.2}, noise="none", observe=("incidence",),
                             n_obs=30, horizon=60.0)
    halved = type(obs)(**{**obs.__dict__, "values": 0.5 * obs.values})
    fit = classical_fit(SIR, halved, Assumptions(fixed={"gamma": 0.2}, reporting={"incidence": None}))
    assert fit.rates["gamma"] == 0.2
    assert fit.rates["beta"] == pytest.approx(0.6, rel=1e-4)
    assert fit.rho["incidence"] == pytest.approx(0.5, rel=1e-4)


def test_count_likelihoods_fit_count_data():
    from epigate.classical import OdeObjective
    from epigate.likelihood import data_misfit

    clean = synthetic_outbreak(noise="none", n_obs=30, observe=("incidence",), horizon=80.0)
    noisy = synthetic_outbreak(noise="poisson", n_obs=30, observe=("incidence",), horizon=80.0, seed=2)
    truth = np.log([0.5, 0.2, 0.1])
    for likelihood in ("poisson", "negbin"):
        fit = classical_fit(SEIR, clean, Assumptions(likelihood=likelihood, dispersion=50.0))
        assert fit.r0 == pytest.approx(5.0, rel=1e-4)
        fit = classical_fit(SEIR, noisy, Assumptions(likelihood=likelihood, dispersion=50.0))
        at_truth = np.sum(OdeObjective(SEIR, noisy, Assumptions(likelihood=likelihood, dispersion=50.0)).residuals(truth) ** 2)
        assert fit.loss <= at_truth  # the maximum-likelihood fit beats the truth on its own data
        if likelihood == "poisson":
            assert 0.3 < fit.loss < 3.0  # mean deviance ~1 per point for Poisson counts
    # the deviance is zero exactly at the data and positive elsewhere
    y = np.array([3.0, 1.0, 10.0])
    assert np.allclose(data_misfit("poisson", y, y, 1.0, 10.0), 0.0, atol=1e-9)
    assert np.all(data_misfit("negbin", y + 1, y, 1.0, 10.0) > 0)
    with pytest.raises(ValueError, match="unknown likelihood 'gauss'"):
        classical_fit(SEIR, noisy, Assumptions(likelihood="gauss"))


def test_estimates_an_initial_value_with_the_rates():
    obs = synthetic_outbreak("sir", {"beta": 0.6, "gamma": 0.2}, noise="none", observe=("I",), n_obs=25,
                             horizon=50.0, initial={"I": 3e-4})
    start = type(obs)(**{**obs.__dict__, "initial": {"I": 1e-5}})  # a wrong starting value
    fit = classical_fit(SIR, start, Assumptions(estimate_initial=("I",)))
    assert fit.u0[1] == pytest.approx(3e-4, rel=1e-4)
    assert fit.rates["beta"] == pytest.approx(0.6, rel=1e-4)
    assert fit.u0.sum() == pytest.approx(1.0)


def test_lognormal_likelihood_fits_the_logarithms():
    from dataclasses import replace

    from epigate.assumptions import AssumptionError
    from epigate.bootstrap import NoiseModel, fitted_noise

    lognormal = Assumptions(likelihood="lognormal")
    clean = synthetic_outbreak(noise="none", n_obs=20)
    assert classical_fit(SEIR, clean, lognormal).r0 == pytest.approx(5.0, rel=1e-4)
    # 20 % multiplicative noise: the fit recovers it, and weighs a 20 % error alike at 10 and 10 000
    # people, so it beats the truth on its own data in the log misfit
    mean = clean.values
    noisy = replace(clean, values=NoiseModel("lognormal", relative_sd=np.array([0.2, 0.2])).sample(
        mean, np.random.default_rng(3)))
    fit = classical_fit(SEIR, noisy, lognormal)
    assert fit.r0 == pytest.approx(5.0, rel=0.15)
    noise = fitted_noise(SEIR, noisy, fit, lognormal)
    assert noise.kind == "lognormal" and np.all(np.abs(noise.relative_sd - 0.2) < 0.05), noise
    zero = clean.values.copy()
    zero[4, 1] = 0.0
    with pytest.raises(AssumptionError, match=rf"R is 0 at t = {clean.t[4]:g} \(1 such value"):
        classical_fit(SEIR, replace(clean, values=zero), lognormal)


@given(values=st.lists(st.floats(1e-3, 1e6), min_size=1, max_size=8), ratio=st.floats(0.05, 20.0),
       scale=st.floats(1e-4, 1e4))
def test_the_lognormal_misfit_depends_only_on_the_ratio_of_prediction_to_data(values, ratio, scale):
    from epigate.likelihood import data_misfit

    y = np.array(values)
    misfit = data_misfit("lognormal", ratio * y, y, 1.0, 10.0)
    assert np.allclose(misfit, np.log(ratio) ** 2, rtol=1e-9, atol=1e-12)  # the same at every count
    assert np.allclose(data_misfit("lognormal", scale * ratio * y, scale * y, 1.0, 10.0), misfit, rtol=1e-9,
                       atol=1e-12)
    assert np.all(data_misfit("lognormal", y, y, 1.0, 10.0) == 0.0)
