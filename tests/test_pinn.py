"""The closed-form (variable-projection) rates of pinn.optimal_log_rates."""

import jax.numpy as jnp
import numpy as np
import pytest

from epigate.data import demo_observations
from epigate.models import SEIR, simulate_numpy
from epigate.assumptions import Assumptions
from epigate.pinn import build_problem, optimal_log_rates

TRUTH = np.array([0.5, 0.2, 0.1])  # beta, sigma, gamma of the demo


def exact_trajectory(problem):
    """States and exact tau-derivatives of the ODE solution at the collocation points."""
    a = problem.arrays
    T = float(a.horizon)
    u = simulate_numpy(SEIR, TRUTH, np.asarray(a.u0, float), np.asarray(a.tau_colloc, float) * T)
    du = T * np.stack(SEIR.rhs(u.T, TRUTH), axis=1)
    return jnp.asarray(u, jnp.float32), jnp.asarray(du, jnp.float32)


def test_rates_of_an_exact_solution_are_the_true_rates():
    problem = build_problem(SEIR, demo_observations(0), n_colloc=64)
    u, du = exact_trajectory(problem)
    rates = np.exp(np.asarray(optimal_log_rates(problem.spec, u, du, problem.arrays)))
    np.testing.assert_allclose(rates, TRUTH, rtol=1e-3)


def test_fixed_rates_keep_their_value_and_the_others_are_solved_for():
    problem = build_problem(SEIR, demo_observations(0), Assumptions(fixed={"sigma": 0.25}), n_colloc=64)
    u, du = exact_trajectory(problem)  # generated with sigma 0.2: the free rates must compensate
    rates = np.exp(np.asarray(optimal_log_rates(problem.spec, u, du, problem.arrays)))
    assert rates[1] == pytest.approx(0.25, rel=1e-6)
    assert np.all(np.isfinite(rates)) and not np.allclose(rates[[0, 2]], TRUTH[[0, 2]], rtol=1e-3)
