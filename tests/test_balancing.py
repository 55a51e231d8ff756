"""Laws of the balancing strategies, as properties over random gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from epigate import balancing as B

jax.config.update("jax_enable_x64", False)

DIM = 8
finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, width=32)
vectors = arrays(np.float32, DIM, elements=finite).filter(lambda v: np.linalg.norm(v) > 1e-2)
kappas = st.sampled_from([1.0, 2.0, 5.0, 10.0])


_JITTED = {}


def run(label, factory, g_d, g_p):
    """Apply the strategy ``factory()`` once; compiled once per ``label`` to keep the suite fast."""
    if label not in _JITTED:
        strategy = factory()
        _JITTED[label] = (jax.jit(strategy.update), strategy.init())
    update, state = _JITTED[label]
    direction, _, info = update(jnp.asarray(g_d), jnp.asarray(g_p), state)
    return np.asarray(direction, dtype=np.float64), float(info.lam), {k: float(v) for k, v in info._asdict().items()}


def test_descent_constant_value():
    # 1 - max_x x sigmoid(-5x) ~ 0.94 for kappa = 5 (docs/method.md)
    assert B.descent_constant(5.0) == pytest.approx(0.9446, abs=1e-3)
    assert 0 < B.descent_constant(1.0) < B.descent_constant(5.0) < B.descent_constant(20.0) < 1


@given(vectors, vectors, kappas)
def test_cggs_literal_is_always_a_descent_direction_for_the_data_loss(g_d, g_p, kappa):
    direction, _, _ = run(f"cggs-kappa{kappa}", lambda: B.cggs(kappa=kappa), g_d, g_p)
    g_d64 = g_d.astype(np.float64)
    lhs = g_d64 @ direction
    bound = B.descent_constant(kappa) * (g_d64 @ g_d64)
    assert lhs >= bound * (1 - 1e-4) - 1e-6 * np.linalg.norm(g_d64) * np.linalg.norm(direction)


def test_descent_bound_is_tight_and_fixed_weights_break_it():
    # at c = -1 with |g_p| chosen so x = c s m |g_p|/|g_d| hits the bound's maximiser, CGGS is near
    # the bound; a fixed weight 1 with a larger opposite g_p ascends the data loss.
    g_d = np.array([1.0, 0.0], np.float32)
    g_p = np.array([-3.0, 0.0], np.float32)
    d_cggs, _, info = run("B.cggs(kappa=5.0)", lambda: B.cggs(kappa=5.0), g_d, g_p)
    assert info["c"] == pytest.approx(-1.0, abs=1e-6)
    assert g_d @ d_cggs == pytest.approx(1 - 1 / (1 + np.exp(-5 * -1)), rel=1e-4)  # 1 + c s(c) at c=-1
    d_fixed, _, _ = run("B.fixed(1.0)", lambda: B.fixed(1.0), g_d, g_p)
    assert g_d @ d_fixed < 0


@given(vectors, vectors)
def test_pcgrad_removes_the_conflict(g_d, g_p):
    direction, _, info = run("B.pcgrad(1.0)", lambda: B.pcgrad(1.0), g_d, g_p)
    if info["c"] < -1e-3:
        # the projected gradients are each orthogonal to the other original: no component of the
        # direction opposes either gradient beyond rounding
        tol = 1e-5 * (np.linalg.norm(g_d) + np.linalg.norm(g_p)) ** 2  # float32 rounding
        assert g_d @ direction >= -tol
        assert g_p @ direction >= -tol
    elif info["c"] > 1e-3:
        np.testing.assert_allclose(direction, g_d + g_p, rtol=1e-4, atol=1e-3)


@given(vectors, vectors)
def test_config_has_equal_positive_projections(g_d, g_p):
    direction, _, info = run("B.config(1.0)", lambda: B.config(1.0), g_d, g_p)
    if info["c"] > -0.99:
        u = direction / np.linalg.norm(direction)
        pd = u @ (g_d / np.linalg.norm(g_d))
        pp = u @ (g_p / np.linalg.norm(g_p))
        assert pd > 0 and pp > 0
        assert pd == pytest.approx(pp, rel=1e-3, abs=1e-4)


@given(vectors, vectors)
def test_config_equals_the_sum_when_gradients_align(g_d, _):
    direction, _, _ = run("B.config(1.0)", lambda: B.config(1.0), g_d, 2.0 * g_d)
    np.testing.assert_allclose(direction, 3.0 * g_d, rtol=1e-4, atol=1e-2)


@given(vectors, vectors)
def test_strategies_reduce_to_plain_summation(g_d, g_p):
    plain = g_d.astype(np.float64) + 0.5 * g_p
    # fixed weight, and magnitude/cggs clipped to that single value, are the weighted sum
    for expr in ("B.fixed(0.5)", "B.magnitude(lam_min=0.5, lam_max=0.5)", "B.cggs(lam_min=0.5, lam_max=0.5)",
                 "B.gate_only(1.0, kappa=0.0)"):
        direction, lam, _ = run(expr, lambda: eval(expr), g_d, g_p)
        assert lam == pytest.approx(0.5)
        np.testing.assert_allclose(direction, plain, rtol=1e-4, atol=1e-2)
    # PCGrad without conflict is the sum
    direction, _, _ = run("B.pcgrad(1.0)", lambda: B.pcgrad(1.0), np.abs(g_d), np.abs(g_p))
    np.testing.assert_allclose(direction, np.abs(g_d) + np.abs(g_p), rtol=1e-4, atol=1e-2)


def test_cggs_gate_and_magnitude_values():
    g_d = np.array([2.0, 0.0], np.float32)
    g_p = np.array([0.0, 8.0], np.float32)  # orthogonal: c = 0, s = 1/2, m = 1/4
    _, lam, info = run("B.cggs(kappa=5.0)", lambda: B.cggs(kappa=5.0), g_d, g_p)
    assert info["c"] == pytest.approx(0.0, abs=1e-7)
    assert info["m"] == pytest.approx(0.25)
    assert lam == pytest.approx(0.125)
    _, lam, _ = run("B.magnitude()", lambda: B.magnitude(), g_d, g_p)
    assert lam == pytest.approx(0.25)
    # lra: max|g_d| / mean|g_p| = 2 / 4, EMA 0.1 from 1
    _, lam, _ = run("B.lra(alpha=0.1, lam_init=1.0)", lambda: B.lra(alpha=0.1, lam_init=1.0), g_d, g_p)
    assert lam == pytest.approx(0.9 * 1.0 + 0.1 * 0.5)
    # the EMA moves lambda part of the way
    _, lam, _ = run("B.cggs(kappa=5.0, alpha=0.5, lam_init=1.0)", lambda: B.cggs(kappa=5.0, alpha=0.5, lam_init=1.0), g_d, g_p)
    assert lam == pytest.approx(0.5 * 1.0 + 0.5 * 0.125)


# ------------------------------------------------------------------ laws shared by every method
# Each strategy of balancing.METHODS, as the training recipe builds it (train.make_strategy), is
# held to the same laws, whatever its rule: a finite direction for finite gradients; the plain
# weighted sum g_d + lam g_p for the weighting methods (lam the weight it reports); for PCGrad the
# plain sum g_d + lam_ref g_p where the gradients do not conflict (ConFIG only promises it for
# parallel gradients: test_config_equals_the_sum_when_gradients_align); and descent of the data
# loss for the methods that promise it.

from epigate.config import TrainConfig, make_strategy  # noqa: E402

PROJECTIONS = ("pcgrad", "config")
PROMISE_DESCENT = ("cggs_literal", "pcgrad", "config")


@pytest.mark.parametrize("method", B.METHODS)
@given(g_d=vectors, g_p=vectors)
def test_every_method_obeys_the_shared_laws(method, g_d, g_p):
    cfg = TrainConfig(method=method)
    direction, lam, info = run(f"law-{method}", lambda: make_strategy(cfg), g_d, g_p)
    g_d64, g_p64 = g_d.astype(np.float64), g_p.astype(np.float64)
    scale = np.linalg.norm(g_d64) + np.linalg.norm(g_p64)
    assert np.all(np.isfinite(direction)), f"{method}: non-finite direction"
    assert -1 - 1e-5 <= info["c"] <= 1 + 1e-5
    if method in PROJECTIONS:
        assert np.isnan(lam), f"{method} reports a weight it does not use"
        if method == "pcgrad" and info["c"] > 1e-3:
            np.testing.assert_allclose(direction, g_d64 + cfg.lam_ref * g_p64, rtol=1e-4, atol=1e-4 * scale)
    else:
        np.testing.assert_allclose(direction, g_d64 + lam * g_p64, rtol=1e-4, atol=1e-4 * scale)
    if method in PROMISE_DESCENT and info["c"] > -0.99:
        assert g_d64 @ direction >= -1e-5 * scale ** 2, f"{method} ascends the data loss"


def test_gate_values_on_numpy_input():
    assert float(B.gate(0.0, 5.0, 0.0)) == pytest.approx(0.5)
    assert float(B.gate(-1.0, 5.0, 0.0)) == pytest.approx(1 / (1 + np.exp(5.0)), rel=1e-5)
    assert float(B.gate(0.5, 2.0, 0.5)) == pytest.approx(0.5)
    s = np.asarray(B.gate(np.array([-1.0, 0.0, 1.0]), 5.0, 0.0))
    assert s.shape == (3,) and np.all(np.diff(s) > 0)
    assert np.isfinite(float(B.gate(-1e6, 1e3, 0.0)))
