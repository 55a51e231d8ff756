import numpy as np
import pytest

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
    fit = classical_fit(SIR, halved, fixed={"gamma": 0.2}, reporting={"incidence": None})
    assert fit.rates["gamma"] == 0.2
    assert fit.rates["beta"] == pytest.approx(0.6, rel=1e-4)
    assert fit.rho["incidence"] == pytest.approx(0.5, rel=1e-4)
