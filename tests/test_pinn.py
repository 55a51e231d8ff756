"""The log-ratio representation and the closed-form (variable-projection) rates of pinn.py, checked
against exact ODE solutions of every model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from epigate.assumptions import Assumptions
from epigate.data import demo_observations, synthetic_outbreak
from epigate.models import SEIR, SEIRD, SIR, simulate_numpy
from hypothesis import given, settings, strategies as st
from scipy.special import expit

from epigate.pinn import (Layout, build_problem, cumulative_over_i, early_dynamics, make_network, NetworkConfig,
                          optimal_rates, residual_system, starting_state)

RATES = {"sir": np.array([0.5, 0.2]), "seir": np.array([0.5, 0.2, 0.1]), "seird": np.array([0.5, 0.2, 0.1, 0.02])}
MODELS = (SIR, SEIR, SEIRD)


def exact_representation(model, rates, u0, tau, T):
    """The representation (x, q.., c, d..) of the exact solution, and its tau-derivative."""
    u = simulate_numpy(model, rates, u0, tau * T)
    du = T * np.stack(model.rhs(u.T, rates), axis=1)
    lay = Layout.of(model)
    i = lay.infectious
    after = list(range(i, model.n_states))
    C, dC = u[:, after].sum(1) - u0[after].sum(), du[:, after].sum(1)
    I, dI = u[:, i], du[:, i]
    ratio = lambda a, da: (a / I, da / I - a * dI / I ** 2)
    cols = [(np.log(I), dI / I)] + [ratio(u[:, j], du[:, j]) for j in lay.before] + [ratio(C, dC)]
    cols += [ratio(u[:, j] - u0[j], du[:, j]) for j in lay.after]
    v, dv = (np.stack(x, axis=1) for x in zip(*cols))
    return u, v, dv


def problem_for(model, seed_fraction=1e-3, fixed=None):
    obs = synthetic_outbreak(model, dict(zip(model.params, RATES[model.name])), population=1e5, horizon=100,
                             observe=("I",), n_obs=20, noise_level=0.0, initial={"I": seed_fraction})
    return build_problem(model, obs, Assumptions(fixed=fixed or {}), n_colloc=64)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_compartments_of_the_exact_representation_are_the_exact_states(model):
    problem = problem_for(model)
    a = problem.arrays
    u, v, _ = exact_representation(model, RATES[model.name], a.u0, a.tau_colloc, float(a.horizon))
    with jax.enable_x64(True):
        states, _ = Layout.of(model).compartments(jnp.asarray(v), jnp.asarray(a.u0))
    np.testing.assert_allclose(np.asarray(states), u, atol=1e-10)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
@pytest.mark.parametrize("seed_fraction", [1e-7, 1e-2])
def test_the_exact_solution_has_zero_residual_and_gives_back_its_rates(model, seed_fraction):
    problem = problem_for(model, seed_fraction)
    a, spec = problem.arrays, problem.spec
    truth = RATES[model.name]
    _, v, dv = exact_representation(model, truth, a.u0, a.tau_colloc, float(a.horizon))
    with jax.enable_x64(True):
        A, b = residual_system(spec, Layout.of(model), jnp.asarray(v), jnp.asarray(dv), jnp.asarray(a.u0),
                               float(a.horizon))
        residual = np.asarray(b - A @ truth)
        rates = np.asarray(optimal_rates(spec, A, b, jnp.asarray(a.rates_guess)))
    # b is O(T x rate) ~ 10: the ODE solver's tolerance leaves ~1e-6
    assert np.max(np.abs(residual)) < 1e-5 * max(1.0, np.max(np.abs(np.asarray(b))))
    np.testing.assert_allclose(rates, truth, rtol=1e-4)


def test_fixed_rates_keep_their_value_and_the_others_are_solved_for():
    problem = problem_for(SEIR, fixed={"sigma": 0.25})
    a, spec = problem.arrays, problem.spec
    _, v, dv = exact_representation(SEIR, RATES["seir"], a.u0, a.tau_colloc, float(a.horizon))
    with jax.enable_x64(True):
        A, b = residual_system(spec, Layout.of(SEIR), jnp.asarray(v), jnp.asarray(dv), jnp.asarray(a.u0),
                               float(a.horizon))
        rates = np.asarray(optimal_rates(spec, A, b, jnp.asarray(a.rates_guess)))
    assert rates[1] == pytest.approx(0.25, rel=1e-12)
    # generated with sigma 0.2: the free rates compensate, and cannot be the truth
    assert np.all(np.isfinite(rates)) and not np.allclose(rates[[0, 2]], RATES["seir"][[0, 2]], rtol=1e-3)


def test_a_new_network_is_exponential_growth_from_the_initial_state():
    """Zero last layer: x = log I0 + g tau (below the soft cap at I = 1), q from q0, C = 0 at tau = 0."""
    problem = build_problem(SEIR, demo_observations(0), n_colloc=64)
    u0 = problem.arrays.u0
    net = make_network(SEIR, NetworkConfig(width=8, depth=1))
    kappa = 30.0
    theta = net.init(jax.random.PRNGKey(0), 2.0, kappa)
    tau = jnp.linspace(0.0, 1.0, 5)
    v = np.asarray(net.represent(theta, tau, jnp.asarray(u0, jnp.float32)))
    x_expected = -np.log1p(np.exp(-(np.log(u0[2]) + 2.0 * np.asarray(tau))))
    np.testing.assert_allclose(v[:, 0], x_expected, rtol=1e-5)
    # zero outputs: q = q0 (1 - ramp) + 2 softplus(0) ramp, ramp = 1 - exp(-kappa tau): from E0 / I0,
    # settling to 2 log 2 whatever q0
    ramp = -np.expm1(-kappa * np.asarray(tau))
    np.testing.assert_allclose(v[:, 1], u0[1] / u0[2] * (1 - ramp) + 2 * np.log(2) * ramp, rtol=1e-5)
    # C = P K(clock) with K's log level log I0 + g tau and P = S0 + E0 - E what can still enter I; the clock
    # is tau (e + (1 - e) ramp), e = E0 / (E0 + I0)
    level = np.log(u0[2]) + 2.0 * np.asarray(tau)
    early = u0[1] / (u0[1] + u0[2])
    clock = np.asarray(tau) * (early + (1 - early) * ramp)
    pool = u0[0] + u0[1] - v[:, 1] * np.exp(v[:, 0])
    capped = clock * np.exp(level) / (1.0 + clock * np.exp(level))
    np.testing.assert_allclose(v[:, 2] * np.exp(v[:, 0]), pool * capped, rtol=1e-5, atol=1e-12)
    states = np.asarray(net.states(theta, tau, jnp.asarray(u0, jnp.float32)))
    np.testing.assert_allclose(states.sum(axis=1), 1.0, atol=1e-6)  # conservation by construction
    np.testing.assert_allclose(states[0], u0, atol=1e-6)


def test_kappa_is_carried_by_the_network_but_never_trained():
    net = make_network(SEIR, NetworkConfig(width=8, depth=1))
    theta = net.init(jax.random.PRNGKey(1), 2.0, 30.0)
    u0 = jnp.asarray([0.99, 0.0, 0.01, 0.0])
    grad = jax.grad(lambda th: jnp.sum(net.represent(th, jnp.linspace(0.0, 1.0, 7), u0) ** 2))(theta)
    assert grad[-1] == 0.0 and grad[-2] != 0.0  # kappa frozen, the growth offset g trained


@settings(max_examples=200, deadline=None)
@given(tau=st.floats(0.0, 1.0), level=st.floats(-40.0, 60.0), x=st.floats(-40.0, 0.0))
def test_cumulative_times_i_is_the_capped_level_and_smooth_at_the_start(tau, level, x):
    """cumulative_over_i(s, l, x) e^x = s e^l / (1 + s e^l), in [0, 1), and its derivative is finite
    everywhere, e^(l - x) at s = 0 (the representation is differentiated there: a collocation point
    sits at tau = 0)."""
    with jax.enable_x64(True):
        f = lambda t: cumulative_over_i(t, jnp.asarray([level]), jnp.asarray([x]))
        c, dc = jax.jvp(f, (jnp.asarray([tau]),), (jnp.ones(1),))
    K = float(c[0]) * np.exp(x)
    expected = expit(np.log(tau) + level) if tau > 0 else 0.0
    assert K == pytest.approx(expected, rel=1e-9, abs=1e-300)
    assert 0.0 <= K <= 1.0 + 1e-12
    assert np.isfinite(float(dc[0]))
    if tau == 0.0:
        assert float(dc[0]) == pytest.approx(np.exp(level - x), rel=1e-12)


def test_early_dynamics_are_the_eigenvalues_of_the_linearised_infected_compartments():
    beta, sigma, gamma = RATES["seir"]
    u0 = np.array([1 - 1e-6, 0.0, 1e-6, 0.0])
    root = np.sqrt((sigma - gamma) ** 2 + 4 * sigma * beta * u0[0])
    early = early_dynamics(SEIR, RATES["seir"], u0)
    assert early.growth == pytest.approx(0.5 * (-(sigma + gamma) + root), rel=1e-9)
    assert early.relaxation == pytest.approx(root, rel=1e-9)  # the gap between the two eigenvalues
    growth = early.growth
    assert early.mode == pytest.approx([(growth + gamma) / sigma, 1.0], rel=1e-9)  # E / I on the growth mode
    sir = early_dynamics(SIR, RATES["sir"], np.array([0.9, 0.1, 0.0]))
    assert sir.growth == pytest.approx(0.5 * 0.9 - 0.2) and sir.relaxation == 0.0


def test_an_estimated_start_begins_at_one_person_with_e_on_the_growth_mode_and_a_pinned_one_as_given():
    beta, sigma, gamma = RATES["seir"]
    person = 1e-7
    given = np.array([1 - 3e-7, 3e-7, 0.0, 0.0])  # E given as 3 people, I as none
    start = starting_state(SEIR, given, ("E", "I"), RATES["seir"], person)
    growth = early_dynamics(SEIR, RATES["seir"], start).growth
    assert start[2] == pytest.approx(person, rel=1e-12)  # I: at least one person
    assert start[1] == pytest.approx((growth + gamma) / sigma * person, rel=1e-9)  # E on the growth mode
    assert start.sum() == pytest.approx(1.0, abs=1e-15)
    pinned = starting_state(SEIR, given, (), RATES["seir"], person)
    assert np.array_equal(pinned, given)  # a pinned start is the given one, zeros included


def test_a_zero_infectious_start_is_refused_with_the_option_to_use():
    obs = synthetic_outbreak(SEIR, dict(zip(SEIR.params, RATES["seir"])), population=1e5, horizon=50,
                             observe=("I",), n_obs=10, noise_level=0.0, initial={"E": 1e-4, "I": 1e-5})
    obs = type(obs)(**{**obs.__dict__, "initial": {"E": 1e-4}})
    with pytest.raises(ValueError, match="--initial I="):
        build_problem(SEIR, obs)
    # the option the message names works: an estimated I starts at one person
    estimated = build_problem(SEIR, obs, Assumptions(estimate_initial=("I",)))
    assert estimated.arrays.u0[2] * obs.population == pytest.approx(1.0, rel=1e-12)
