import numpy as np
import pytest
from scipy.integrate import solve_ivp

from epigate.models import MODELS, SEIR, get_model, initial_state, simulate

RATES = {"sir": [0.5, 0.1], "seir": [0.5, 0.2, 0.1], "seird": [0.6, 0.25, 0.1, 0.02]}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_simulate_matches_solve_ivp_and_conserves_population(name):
    m = MODELS[name]
    p = np.array(RATES[name])
    u0 = initial_state(m, {"I": 1e-3, **({"E": 1e-3} if "E" in m.states else {})})
    t = np.linspace(0.0, 100.0, 101)
    ours = np.asarray(simulate(m, p, u0, t))
    ref = solve_ivp(lambda _t, u: m.rhs(u, p), (0, 100), u0, t_eval=t, method="DOP853",
                    rtol=1e-11, atol=1e-13).y.T
    assert np.max(np.abs(ours - ref)) < 1e-6
    assert np.max(np.abs(ours.sum(axis=1) - 1.0)) < 1e-6
    # and it is a real epidemic, not a flat line
    assert ours[:, m.state_index("I")].max() > 0.05


def test_r0_formulas():
    assert SEIR.r0([0.5, 0.2, 0.1]) == pytest.approx(5.0)
    assert MODELS["sir"].r0([0.3, 0.1]) == pytest.approx(3.0)
    assert MODELS["seird"].r0([0.6, 0.2, 0.1, 0.02]) == pytest.approx(5.0)


def test_unknown_model_and_bad_initial_state_are_named():
    with pytest.raises(ValueError, match="unknown model 'sirx'"):
        get_model("sirx")
    with pytest.raises(ValueError, match="'E'"):
        initial_state(MODELS["sir"], {"E": 0.1})
