import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

from epigate.models import MODELS, SEIR, SIR, get_model, initial_state, simulate_numpy

RATES = {"sir": [0.5, 0.1], "seir": [0.5, 0.2, 0.1], "seird": [0.6, 0.25, 0.1, 0.02]}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_simulate_matches_a_tight_reference_and_conserves_population(name):
    m = MODELS[name]
    p = np.array(RATES[name])
    u0 = initial_state(m, {"I": 1e-3, **({"E": 1e-3} if "E" in m.states else {})})
    t = np.linspace(0.0, 100.0, 101)
    ours = simulate_numpy(m, p, u0, t)
    ref = solve_ivp(lambda _t, u: m.rhs(u, p), (0, 100), u0, t_eval=t, method="DOP853",
                    rtol=1e-12, atol=1e-14).y.T
    assert np.max(np.abs(ours - ref)) < 1e-7
    assert np.max(np.abs(ours.sum(axis=1) - 1.0)) < 1e-7
    # and it is a real epidemic, not a flat line
    assert ours[:, m.state_index("I")].max() > 0.05


@settings(max_examples=15)
@given(r0=st.floats(1.3, 6.0), gamma=st.floats(0.05, 0.5))
def test_sir_final_size_law(r0, gamma):
    """The SIR final size z from a tiny seed solves z = 1 - exp(-R0 z) (Kermack-McKendrick)."""
    u0 = initial_state(SIR, {"I": 1e-9})
    horizon = 60.0 * np.log(1e9) / (gamma * (r0 - 1.0))  # many e-foldings past the peak
    z = simulate_numpy(SIR, [r0 * gamma, gamma], u0, [0.0, horizon])[-1, 2]
    exact = brentq(lambda x: x - 1.0 + np.exp(-r0 * x), 1e-6, 1.0)
    assert z == pytest.approx(exact, abs=1e-5)


def test_r0_formulas():
    assert SEIR.r0([0.5, 0.2, 0.1]) == pytest.approx(5.0)
    assert MODELS["sir"].r0([0.3, 0.1]) == pytest.approx(3.0)
    assert MODELS["seird"].r0([0.6, 0.2, 0.1, 0.02]) == pytest.approx(5.0)
    # vectorised over leading axes
    np.testing.assert_allclose(SEIR.r0(np.array([[0.5, 0.2, 0.1], [0.3, 0.2, 0.1]])), [5.0, 3.0])


def test_unknown_model_and_bad_initial_state_are_named():
    with pytest.raises(ValueError, match="unknown model 'sirx'"):
        get_model("sirx")
    with pytest.raises(ValueError, match="'E'"):
        initial_state(MODELS["sir"], {"E": 0.1})
