"""End-to-end: a small PINN fit lands near the classical least-squares fit on the same data."""

import numpy as np
import pytest

from epigate.fit import fit
from epigate.data import demo_observations
from epigate.models import SEIR
from epigate.pinn import build_problem
from epigate.summary import summarise
from epigate.config import TrainConfig
from epigate.train import TrainingDiverged, train

SMALL = TrainConfig(method="cggs", adam_steps=2000, refine_steps=2000)


@pytest.fixture(scope="module")
def demo_fit():
    return fit(demo_observations(0), SEIR, SMALL, [0])


def test_small_fit_lands_near_the_classical_fit(demo_fit):
    s = summarise(demo_fit)
    # a short run (a fifth of the default budget): R0 within 5 %, rates within 15 % of least squares
    assert abs(s.quantity("R0").vs_classical) < 0.05
    for name in ("beta", "sigma", "gamma"):
        assert abs(s.quantity(name).vs_classical) < 0.15
    # it really fits the data: the ODE with the PINN's rates is nearly as good as least squares
    assert s.misfit_ratio < 1.1
    assert np.all(np.isfinite(demo_fit.network_states))


def test_history_records_both_phases_and_the_gate(demo_fit):
    h = demo_fit.train.history
    rec = h.records
    assert h.step[-1] == 4000 and set(np.unique(h.phase)) == {0, 1}
    adam = h.phase == 0
    lam = rec.lam[0, adam]
    # CGGS's weight stays within [floor, lam_ref] and the cosine is a cosine
    assert np.all(lam >= SMALL.floor * (1 - 1e-6)) and np.all(lam <= SMALL.lam_ref * (1 + 1e-6))
    assert np.all(np.abs(rec.c) <= 1 + 1e-5)
    # the data loss fell by orders of magnitude
    assert rec.loss_data[0, -1] < 0.01 * rec.loss_data[0, 0]


def test_divergence_is_reported_with_method_and_step():
    problem = build_problem(SEIR, demo_observations(0))
    cfg = TrainConfig(method="fixed", adam_steps=100, refine_steps=0, learning_rate=1e6)
    with pytest.raises(TrainingDiverged, match=r"method fixed: .* at step \d+"):
        train(problem, cfg, [0])


def test_ensemble_members_differ_but_agree():
    cfg = TrainConfig(method="cggs", adam_steps=2000, refine_steps=2000)
    r = fit(demo_observations(0), SEIR, cfg, [0, 1, 2])
    assert r.rates.shape == (3, 3)
    assert not np.allclose(r.rates[0], r.rates[1])  # different initialisations
    r0 = r.r0
    assert np.all(np.abs(r0 / r.classical.r0 - 1) < 0.08)


def test_float64_training_stays_inside_its_own_context():
    import jax.numpy as jnp

    problem = build_problem(SEIR, demo_observations(0))
    r = train(problem, TrainConfig(method="cggs", adam_steps=100, refine_steps=50, precision="float64"), [0])
    assert r.theta.dtype == np.float64 and np.all(np.isfinite(r.log_rates))
    assert jnp.array(1.0).dtype == jnp.float32  # x64 mode did not leak into the rest of the process
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="float16")


def test_a_fit_far_from_least_squares_is_flagged_not_converged(demo_fit):
    """The same fit, with the PINN's rates replaced by a worse answer (beta halved, the R0 of a
    stalled run), must be reported as not converged, with the misfit as the reason."""
    from dataclasses import replace

    from epigate.classical import OdeObjective
    from epigate.diagnosis import diagnose

    assert diagnose(demo_fit).status == "ok"
    worse = demo_fit.rates * np.array([0.5, 1.0, 1.0])
    objective = OdeObjective(demo_fit.model, demo_fit.obs, demo_fit.assumptions)
    bad = replace(demo_fit, rates=worse, ode_loss=np.array([objective.loss_of(worse[0], demo_fit.rho[0],
                                                                              demo_fit.u0[0])]))
    verdict = diagnose(bad)
    assert verdict.status == "not_converged" and "worse than least squares" in verdict.reasons[0]
    s = summarise(bad)
    assert s.status == "not_converged" and s.verdict.startswith("NOT CONVERGED")
    # the start assumption is visible: least squares with E(0), I(0) estimated is reported beside it
    assert s.quantity("R0").classical_free_start == pytest.approx(demo_fit.classical_free_start.r0)
