"""The outer phase's trust in its shift d0 (``reduced.OuterSolver.fidelity``): a law on arrays."""

import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings, strategies as st

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
