"""The outer phase's trust in its shift d0 (``reduced.OuterSolver.fidelity``) and its step at the bounds of
the search box (``bounded_step``): laws on arrays."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings, strategies as st

from epigate.models import SEIR
from epigate.pinn import NetworkConfig, ProblemSpec, make_network
from epigate.reduced import LinearModel, OuterSolver, OuterState

N = 6  # predictions
vectors = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=N, max_size=N).map(np.array)
weights = st.lists(st.floats(1e-3, 1e3), min_size=N, max_size=N).map(np.array)


def state(expected, shift, measured=True):
    zero = jnp.zeros(())
    return OuterState(theta=zero, phi=(), previous=zero, cap=zero, residual=zero, expected=jnp.asarray(expected),
                      shift=jnp.asarray(shift), measured=jnp.asarray(measured), done=jnp.asarray(False))


def model(pred, shift, curvature):
    zeros = jnp.zeros(N)
    return LinearModel(pred=jnp.asarray(pred), sensitivity=jnp.zeros((N, 1)), shift=jnp.asarray(shift), grad=zeros,
                       curvature=jnp.asarray(curvature))


@settings(max_examples=60, deadline=None)
@given(expected=vectors, old_shift=vectors, new_shift=vectors, curvature=weights, alpha=st.floats(0.0, 1.0))
def test_fidelity_is_the_share_of_d0_that_keeps_the_corrected_predictions_on_the_linear_model(
        expected, old_shift, new_shift, curvature, alpha):
    """If the network's predictions land where the last step's linear model expected them, less
    alpha times the change of d0 (so that network + alpha d0 moved exactly as predicted), the
    fidelity is alpha."""
    change = new_shift - old_shift
    if np.sum(curvature * change ** 2) < 1e-6:
        return  # d0 did not change: nothing to measure
    pred = expected - alpha * change
    got = float(OuterSolver.fidelity(model(pred, new_shift, curvature), state(expected, old_shift)))
    assert abs(got - alpha) < 1e-6 * (1 + np.max(np.abs(pred))), (got, alpha)


@settings(max_examples=60, deadline=None)
@given(pred=vectors, expected=vectors, old_shift=vectors, new_shift=vectors, curvature=weights)
def test_fidelity_stays_in_the_unit_interval_and_is_one_before_any_step(pred, expected, old_shift, new_shift,
                                                                       curvature):
    lm = model(pred, new_shift, curvature)
    got = float(OuterSolver.fidelity(lm, state(expected, old_shift)))
    assert 0.0 <= got <= 1.0
    assert float(OuterSolver.fidelity(lm, state(expected, old_shift, measured=False))) == 1.0


SPEC = ProblemSpec(model=SEIR, channels=("I",), rates_free=(True, False, True), rho_free=(False,),
                   u0_free=(False, True, True, False))  # z = (beta, sigma, gamma, rho, S0, E0, I0, R0)
Z = 8


def box_solver() -> OuterSolver:
    return OuterSolver(SPEC, make_network(SEIR, NetworkConfig(width=4, depth=1, n_colloc=8)), resolve_steps=1)


@settings(max_examples=40, deadline=None)
@given(sensitivity=st.lists(st.floats(-10, 10), min_size=N * Z, max_size=N * Z).map(lambda v: np.reshape(v, (N, Z))),
       grad=vectors, curvature=weights, side=st.lists(st.sampled_from([-1, 0, 1]), min_size=Z, max_size=Z))
def test_the_outer_step_holds_an_estimate_at_a_bound_it_would_leave_and_is_the_plain_newton_step_inside(
        sensitivity, grad, curvature, side):
    """side -1: the estimate sits at the lower bound of the search box, +1 at the upper, 0 inside.
    A coordinate at a bound whose gradient points out of the box does not move; the others take
    the damped Gauss-Newton step of the problem without the held ones; what is not estimated never
    moves. In float64, as the outer phase runs."""
    with jax.enable_x64(True):
        check_box_step(sensitivity, grad, curvature, np.array(side))


def check_box_step(sensitivity, grad, curvature, side):
    solver = box_solver()
    lm = LinearModel(pred=jnp.zeros(N), sensitivity=jnp.asarray(sensitivity), shift=jnp.zeros(N),
                     grad=jnp.asarray(grad), curvature=jnp.asarray(curvature))
    z = np.where(side < 0, solver.lower, np.where(side > 0, solver.upper, 0.5 * (solver.lower + solver.upper)))
    fixed, dz = (np.asarray(x) for x in solver.bounded_step(lm, 0.0, jnp.asarray(z), 0.2))
    g = sensitivity.T @ grad
    held = ((side < 0) & (g > 0)) | ((side > 0) & (g < 0))
    moving = solver.free & ~held
    assert np.all(dz[~moving] == 0.0) and np.all(fixed[~moving] == 0.0)
    m, expected = newton_of_the_rest(sensitivity, grad, curvature, moving, np.zeros(Z))
    if m.size and margin_inside(solver, z, m, expected) > 0:  # else the law of the next test
        np.testing.assert_allclose(dz[m], expected, rtol=1e-6, atol=1e-9 * (1 + np.max(np.abs(expected))))


def newton_of_the_rest(sensitivity, grad, curvature, moving, fixed):
    """The damped Gauss-Newton step of the ``moving`` entries given the step ``fixed`` of the others."""
    g = sensitivity.T @ grad
    H = sensitivity.T @ (curvature[:, None] * sensitivity)
    m = np.flatnonzero(moving)
    Hm = H[np.ix_(m, m)]
    return m, -np.linalg.solve(Hm + np.diag(1e-3 * np.diag(Hm) + 1e-30), g[m] + H[m] @ fixed)


def margin_inside(solver, z, m, step):
    """How far inside the box the entries ``m`` end after ``step``: positive inside, negative
    outside, 0 where the step ends within rounding of a bound (either answer is right there)."""
    end = z[m] + step
    margin = np.min(np.minimum(end - np.asarray(solver.lower)[m], np.asarray(solver.upper)[m] - end))
    return 0.0 if abs(margin) < 1e-6 * (1 + np.max(np.abs(step))) else margin


@settings(max_examples=60, deadline=None)
@given(sensitivity=st.lists(st.floats(-10, 10), min_size=N * Z, max_size=N * Z).map(lambda v: np.reshape(v, (N, Z))),
       grad=vectors, curvature=weights, side=st.lists(st.sampled_from([-1, 0, 1]), min_size=Z, max_size=Z),
       distance=st.floats(1e-3, 1.0), cap=st.floats(0.01, 0.2))
def test_an_estimate_the_newton_step_carries_out_of_the_box_moves_by_the_cap_and_the_others_take_their_step_given_it(
        sensitivity, grad, curvature, side, distance, cap):
    """Estimates near (``distance`` in log from) a bound or in the middle of the box. Where the
    Newton step stays inside the box, ``bounded_step`` is that step. Otherwise the estimates it
    carries out move towards that bound by the cap (at most to the bound), and the others take the
    damped Gauss-Newton step of the misfit given that move, which keeps them inside the box."""
    with jax.enable_x64(True):
        solver = box_solver()
        lm = LinearModel(pred=jnp.zeros(N), sensitivity=jnp.asarray(sensitivity), shift=jnp.zeros(N),
                         grad=jnp.asarray(grad), curvature=jnp.asarray(curvature))
        side = np.array(side)
        z = np.where(side < 0, solver.lower + distance,
                     np.where(side > 0, solver.upper - distance, 0.5 * (solver.lower + solver.upper)))
        fixed, rest = (np.asarray(x) for x in solver.bounded_step(lm, 0.0, jnp.asarray(z), cap))
    taken = fixed != 0
    m, newton = newton_of_the_rest(sensitivity, grad, curvature, solver.free, np.zeros(Z))
    margin = margin_inside(solver, z, m, newton)
    if margin == 0:
        return
    if margin > 0:
        assert not taken.any(), (fixed, newton)
        np.testing.assert_allclose(rest[m], newton, rtol=1e-6, atol=1e-9 * (1 + np.max(np.abs(newton))))
        return
    assert taken.any() and np.all(rest[taken] == 0.0) and np.all(rest[~solver.free] == 0.0)
    assert np.all(np.abs(fixed) <= cap * (1 + 1e-12))
    at_cap_or_bound = np.isclose(np.abs(fixed), cap) | np.isclose(z + fixed, solver.lower) | np.isclose(
        z + fixed, solver.upper)
    assert np.all(at_cap_or_bound[taken]), (fixed, z)
    assert np.all((z + fixed + rest >= solver.lower - 1e-9) & (z + fixed + rest <= solver.upper + 1e-9))
    m, expected = newton_of_the_rest(sensitivity, grad, curvature, solver.free & ~taken, fixed)
    if m.size:
        np.testing.assert_allclose(rest[m], expected, rtol=1e-6, atol=1e-9 * (1 + np.max(np.abs(expected))))
