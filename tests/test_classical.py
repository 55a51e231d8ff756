import numpy as np
import pytest

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
