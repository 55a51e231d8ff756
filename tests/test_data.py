import numpy as np
import pytest

from epigate.data import demo_observations, synthetic_outbreak
from epigate.models import SEIR, simulate_numpy, initial_state


def test_demo_is_deterministic_and_as_documented():
    a, b = demo_observations(3), demo_observations(3)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, demo_observations(4).values)
    assert a.channels == ("I", "R") and a.values.shape == (40, 2)
    assert a.population == 100_000 and a.t[-1] == 100.0
    assert a.truth["params"] == {"beta": 0.5, "sigma": 0.2, "gamma": 0.1}


def test_noise_free_values_are_the_ode_solution():
    obs = synthetic_outbreak(noise="none", observe=("I", "R", "cumulative"), n_obs=10)
    u = simulate_numpy(SEIR, [0.5, 0.2, 0.1], initial_state(SEIR, obs.initial), obs.t)
    np.testing.assert_allclose(obs.values[:, 0], 1e5 * u[:, 2], rtol=1e-6)
    cumulative = 1e5 * (u[:, 2] + u[:, 3] - 1e-3)
    np.testing.assert_allclose(obs.values[:, 2], cumulative, rtol=1e-6)


def test_incidence_sums_to_cumulative():
    kw = dict(noise="none", n_obs=20, horizon=60.0)
    inc = synthetic_outbreak(observe=("incidence",), **kw)
    cum = synthetic_outbreak(observe=("cumulative",), **kw)
    np.testing.assert_allclose(np.cumsum(inc.values[:, 0]), cum.values[:, 0], rtol=1e-6)


@pytest.mark.parametrize("noise", ["gaussian", "poisson", "negbin"])
def test_noise_models_have_the_right_scale(noise):
    clean = synthetic_outbreak(noise="none", n_obs=200, observe=("I",))
    noisy = synthetic_outbreak(noise=noise, noise_level=0.1, dispersion=5.0, n_obs=200, observe=("I",), seed=1)
    x, y = clean.values[:, 0], noisy.values[:, 0]
    assert np.all(y >= 0)
    big = x > 1000
    rel = (y[big] - x[big]) / x[big]
    expected = {"gaussian": 0.1, "poisson": np.median(1 / np.sqrt(x[big])), "negbin": np.sqrt(1 / 5.0)}[noise]
    assert 0.6 * expected < np.std(rel) < 1.6 * expected
    if noise != "gaussian":
        assert np.all(y == np.round(y))


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="noise model 'laplace'"):
        synthetic_outbreak(noise="laplace")
    with pytest.raises(ValueError, match="'Q'"):
        synthetic_outbreak(observe=("Q",))
