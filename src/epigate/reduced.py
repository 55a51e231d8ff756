"""The outer phase: Gauss-Newton on the estimated numbers, with the network as the ODE solver
(docs/method.md, "The outer phase").

After the refinement the network solves the ODE at its closed-form rates, but the penalty
formulation stops at a point of the valley that the data hardly pin (the E/I start of SEIR). Here
the estimated numbers z (free log-rates, log reporting fractions, log initial values) are the outer
variables and the network only solves the ODE at fixed z. One outer step:

1. Linearise the physics residual r(theta, z) (rows m) and the predictions mu(theta, z) (n) at the
   current point. The smallest change of the weights that keeps r at zero for a change dz is
   ``dtheta = -J_theta^+ (r + J_z dz)`` (``J_theta^+ = J_theta^T (J_theta J_theta^T)^-1``), so the
   predictions move by ``M dz + d0`` with ``M = dmu/dz - dmu/dtheta J_theta^+ J_z`` and
   ``d0 = -dmu/dtheta J_theta^+ r`` (what removing the remaining residual would change).
   That linearisation in the weights holds only for small residuals (on 300-day horizons, for about
   1 % of a step), so d0 enters weighted by its fidelity (:meth:`OuterSolver.fidelity`): how far
   the corrected predictions (network + fidelity x d0) moved as the last step's linear model said.
2. A Newton step of the data misfit (the likelihood's own, per-point second derivative: Gauss-Newton
   for the squared error) on that linear model gives dz. The re-solve lags along the valley, so
   successive steps shrink geometrically; each step is stretched by 1 / (1 - rho), rho the
   projection of this step on the previous one (at most ``MAX_CONTRACTION``), then shortened (its
   direction kept) so that no coordinate moves by more than the cap (``MAX_LOG_STEP`` at most).
   The estimates stay inside least squares' search box (``classical.log_bounds``), so that the
   PINN searches where least squares does: a coordinate at a bound whose gradient points out of
   the box is held there for the step (an active set: the Newton step is solved without it), and
   the step is projected onto the box (docs/method.md, "The search box"). A coordinate that the
   Newton step would carry out of the box moves by the cap towards that bound, apart from the
   shortening, and the others take their Newton step given that move (:meth:`OuterSolver.bounded_step`).
3. Re-solve: L-BFGS on the physics alone at the new z, from the current weights.
4. Trust: if the residual left after the re-solve grew by more than ``RESIDUAL_GROWTH``, the network
   is falling behind the steps, and the Newton steps it computes next cannot be trusted as far: the
   cap is halved and the next step is not stretched. Otherwise the cap doubles (up to its maximum).

Stops (for a member) once no coordinate moves by more than ``STEP_TOL``, or a step produces a
non-finite value (the last good point is kept); then a longer re-solve (``POLISH`` times the
re-solve) at the final estimates, so that the network handed back solves the ODE there. The
re-solves leave an error, so the steps wander around the optimum and no loss of the network tells
reliably whether a step improved on the last: every point of the path is recorded
(:class:`OuterRecord`) and ``fit`` reports the one the exact ODE fits best. Runs in float64
whatever the training precision: ``J_theta J_theta^T`` is too ill-conditioned for float32.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from .classical import log_bounds
from .pinn import (Network, ProblemArrays, ProblemSpec, data_loss, effective_phi, effective_u0, make_predictions,
                   residual_system)

MAX_LOG_STEP = 0.2  # no estimate changes by more than about 20 % in one outer step
MAX_CONTRACTION = 0.8  # the stretch 1 / (1 - rho) of a step is at most 5
STEP_TOL = 1e-4  # a member stops once its largest log step is below this
DAMPING = 1e-3  # Levenberg-Marquardt damping of the outer Newton step, relative to the diagonal
POLISH = 3  # the final re-solve is this many re-solves long
RESIDUAL_GROWTH = 1.5  # a re-solve that leaves more than this times the previous residual halves the cap
KERNEL_RIDGE = 1e-10  # regularisation of J_theta J_theta^T, relative to its mean diagonal
AT_BOUND = 1e-9  # a log estimate this close to a bound of the box is at it


class OuterState(NamedTuple):
    """One member's outer iteration (a pytree; every field gains a member axis under ``lax.map``)."""

    theta: jax.Array  # (P,) network weights
    phi: tuple  # (log rates, log rho, log u0), as in training
    previous: jax.Array  # (z,) the previous log step (for the stretch; zero: no stretch)
    cap: jax.Array  # () the largest log step allowed now
    residual: jax.Array  # () mean squared physics residual after the last re-solve
    expected: jax.Array  # (n,) the predictions the last step's linear model expected, d0 left out
    shift: jax.Array  # (n,) the last step's d0
    measured: jax.Array  # () bool: expected and shift hold a step (false before the first)
    done: jax.Array  # () bool: converged or stopped


class OuterRecord(NamedTuple):
    """After each outer step: the network's data loss and mean squared residual, and the point
    reached (estimates and weights)."""

    loss_data: jax.Array
    loss_phys: jax.Array
    log_rates: jax.Array  # (p,) fixed rates at their values
    phi: tuple  # the estimates reached, as in training
    theta: jax.Array  # (P,) the weights reached


class LinearModel(NamedTuple):
    """The outer step's linear model of the predictions (n,) in the estimated numbers (z,)."""

    pred: jax.Array  # (n,) the network's predictions now
    sensitivity: jax.Array  # (n, z) M
    shift: jax.Array  # (n,) d0
    grad: jax.Array  # (n,) the data misfit's gradient in the predictions
    curvature: jax.Array  # (n,) its per-point second derivative (>= 0)


def free_mask(spec: ProblemSpec) -> np.ndarray:
    """(z,) which entries of the flattened phi are estimated."""
    return np.array(spec.rates_free + spec.rho_free + (spec.u0_free or (False,) * spec.model.n_states))


def search_box(spec: ProblemSpec) -> tuple[np.ndarray, np.ndarray]:
    """(z,) lower and upper bounds of the flattened phi: least squares' search box, in the same logs
    (rates per time unit, reporting fractions, initial fractions)."""
    return log_bounds(len(spec.rates_free), len(spec.rho_free), len(spec.u0_free) or spec.model.n_states)


class OuterSolver:
    """The outer phase for one problem structure: ``step`` and ``resolve`` on one member."""

    def __init__(self, spec: ProblemSpec, network: Network, resolve_steps: int):
        self.spec, self.network, self.resolve_steps = spec, network, resolve_steps
        self.predictions = make_predictions(spec, network)
        self.free = free_mask(spec)
        self.lower, self.upper = search_box(spec)
        self.lbfgs = optax.lbfgs()

    def _inputs(self, phi, a: ProblemArrays):
        """(log rates (p,), log rho (k,), initial state u0 (s,)) with fixed entries at their values."""
        log_rates, log_rho, log_u0 = effective_phi(self.spec, a, phi)
        return log_rates, log_rho, effective_u0(self.spec, a, log_u0)

    def _residual(self, theta, tau, log_rates, u0, a: ProblemArrays):
        """Physics residual rows at scaled times ``tau`` (c,), shape (c * n_vars,), divided by the
        square root of the number of rows at all collocation points (so their sum of squares over
        the collocation points is mean(r^2))."""
        v, dv = jax.jvp(lambda t: self.network.represent(theta, t, u0), (tau,), (jnp.ones_like(tau),))
        A, b = residual_system(self.spec, self.network.layout, v, dv, u0, a.horizon)
        rows = a.tau_colloc.shape[0] * self.network.layout.n_vars
        return (b - A @ jnp.exp(log_rates)) / jnp.sqrt(rows)

    def _parts(self, theta, phi, a: ProblemArrays):
        """Scaled physics residual (m,) and predictions (n * k,)."""
        log_rates, log_rho, u0 = self._inputs(phi, a)
        return (self._residual(theta, a.tau_colloc, log_rates, u0, a),
                self.predictions(theta, log_rho, u0, a).reshape(-1))

    def _jacobians_in_theta(self, theta, phi, a: ProblemArrays):
        """d(scaled residual)/d(theta) (m, P) and d(predictions)/d(theta) (n * k, P).

        The residual's is built point by point: each collocation point's rows depend on the network
        at that point only, so one small reverse pass per point (vmapped) replaces one pass over
        every point per row (about 4x less time on the demo)."""
        log_rates, log_rho, u0 = self._inputs(phi, a)
        point_rows = lambda th, tau: self._residual(th, jnp.reshape(tau, (1,)), log_rates, u0, a)
        per_point = jax.vmap(jax.jacrev(point_rows), in_axes=(None, 0))(theta, a.tau_colloc)  # (c, n_vars, P)
        predictions = jax.jacrev(lambda th: self.predictions(th, log_rho, u0, a).reshape(-1))(theta)
        return per_point.reshape(-1, theta.shape[0]), predictions

    def _misfit(self, pred_flat, a: ProblemArrays):
        return data_loss(self.spec, pred_flat.reshape(a.y.shape), a)

    def losses(self, theta, phi, a: ProblemArrays):
        residual, pred = self._parts(theta, phi, a)
        return self._misfit(pred, a), jnp.sum(residual ** 2)

    def linearise(self, theta, phi, a: ProblemArrays) -> LinearModel:
        """The linear model of the predictions at the current point (step 1 above)."""
        flat, unravel = ravel_pytree(phi)
        residual, pred = self._parts(theta, phi, a)
        j_theta = self._jacobians_in_theta(theta, phi, a)  # ((m, P), (n, P))
        j_z = jax.jacfwd(lambda z: self._parts(theta, unravel(z), a))(flat)  # ((m, z), (n, z))
        kernel = j_theta[0] @ j_theta[0].T
        ridge = KERNEL_RIDGE * jnp.trace(kernel) / kernel.shape[0] + 1e-300
        rhs = jnp.concatenate([j_z[0], residual[:, None]], axis=1)
        through_net = j_theta[1] @ (j_theta[0].T @ jnp.linalg.solve(kernel + ridge * jnp.eye(kernel.shape[0]), rhs))
        free = jnp.asarray(self.free, flat.dtype)
        sensitivity = (j_z[1] - through_net[:, :-1]) * free  # M (n, z)
        shift = -through_net[:, -1]  # d0 (n,)
        grad = jax.grad(self._misfit)(pred, a)
        curvature = jax.jvp(lambda x: jax.grad(self._misfit)(x, a), (pred,), (jnp.ones_like(pred),))[1]
        curvature = jnp.maximum(curvature, 0.0)  # per point: the misfit is a sum over points
        return LinearModel(pred, sensitivity, shift, grad, curvature)

    def _newton_system(self, lm: LinearModel, fidelity, z):
        """The gradient g (z,) and Gauss-Newton matrix H (z, z) of the data misfit on the linear model
        (d0 weighted by ``fidelity``), and which entries move (z,): estimated, and not at a bound of
        the box with the gradient pointing out of it."""
        g = lm.sensitivity.T @ (lm.grad + lm.curvature * fidelity * lm.shift)
        held = ((z <= self.lower + AT_BOUND) & (g > 0)) | ((z >= self.upper - AT_BOUND) & (g < 0))
        moving = jnp.asarray(self.free, lm.pred.dtype) * (1.0 - held)
        return g, lm.sensitivity.T @ (lm.curvature[:, None] * lm.sensitivity), moving

    @staticmethod
    def _solve(g, H, moving, fixed):
        """The damped Newton step of the entries that move (``moving`` 1), the others taking the
        step ``fixed`` (z,): minimises g.d + d.H.d / 2 over the moving entries."""
        Hm = H * jnp.outer(moving, moving)
        damp = DAMPING * jnp.diag(Hm) + 1e-30 + (1.0 - moving)  # unit diagonal where not moving: no step there
        return -jnp.linalg.solve(Hm + jnp.diag(damp), (g + H @ fixed) * moving) * moving + fixed * (1.0 - moving)

    def bounded_step(self, lm: LinearModel, fidelity, z, cap):
        """The outer log step from the point ``z`` (z,), before stretching, d0 weighted by
        ``fidelity``, with the entries the Newton step would carry out of the box taken apart
        (docs/method.md, "Estimates the step carries out of the box"): (step of those entries (z,),
        the Newton step of the others given it (z,), 0 at the ones taken apart). Both are zero where
        not estimated and where ``z`` is at a bound of the box with the gradient pointing out of it.

        An entry whose Newton step leaves the box (an initial value the data want at 0: its
        log-sensitivity vanishes there, so its log step is unbounded) moves by ``cap`` towards
        that bound (at most to it), and the others take the Newton step of the misfit given that
        move; repeated while that step carries another entry out. Shortened as a whole, a step
        that moves one entry by 10^5 in log would leave the others still."""
        g, H, moving = self._newton_system(lm, fidelity, z)
        fixed = jnp.zeros_like(g)
        step = self._solve(g, H, moving, fixed)
        for _ in range(len(self.free)):  # each pass takes out at least one entry, or changes nothing
            leaving = (moving > 0) & ((z + step < self.lower) | (z + step > self.upper))
            fixed = jnp.where(leaving, jnp.clip(z + jnp.sign(step) * cap, self.lower, self.upper) - z, fixed)
            moving = moving * (1.0 - leaving)
            step = self._solve(g, H, moving, fixed)
        return fixed, step * moving

    @staticmethod
    def fidelity(lm: LinearModel, s: "OuterState"):
        """How far d0 can be trusted, in [0, 1]: the share alpha of the change of d0 that makes the
        corrected predictions (network + alpha d0) move as the last step's linear model said. The
        re-solve's persistent error shows in both the predictions and d0 and cancels; where the
        linearisation behind d0 fails, d0 changes at random and alpha goes to 0. 1 before a step."""
        surprise = lm.pred - s.expected
        change = lm.shift - s.shift
        spread = jnp.sum(lm.curvature * change ** 2)
        alpha = -jnp.sum(lm.curvature * surprise * change) / jnp.where(spread > 0, spread, 1.0)
        return jnp.where(s.measured, jnp.clip(alpha, 0.0, 1.0), 1.0)

    def resolve(self, theta, phi, a: ProblemArrays):
        """L-BFGS on mean(r^2) at fixed phi from ``theta``; non-finite steps are refused."""
        objective = lambda th: jnp.sum(self._parts(th, phi, a)[0] ** 2)
        value_and_grad = optax.value_and_grad_from_state(objective)

        def step(carry, _):
            th, state = carry
            value, grad = value_and_grad(th, state=state)
            updates, new_state = self.lbfgs.update(grad, state, th, value=value, grad=grad, value_fn=objective)
            new = optax.apply_updates(th, updates)
            ok = jnp.all(jnp.isfinite(new)) & jnp.isfinite(optax.tree_utils.tree_get(new_state, "value"))
            keep = lambda x, y: jax.tree.map(lambda u, v: jnp.where(ok, u, v), x, y)
            return (keep(new, th), keep(new_state, self.lbfgs.init(th))), None

        (theta, _), _ = jax.lax.scan(step, (theta, self.lbfgs.init(theta)), None, length=self.resolve_steps)
        return theta

    def outer_step(self, s: OuterState, a: ProblemArrays) -> tuple[OuterState, OuterRecord]:
        def move(s: OuterState) -> OuterState:
            flat, unravel = ravel_pytree(s.phi)
            lm = self.linearise(s.theta, s.phi, a)
            fidelity = self.fidelity(lm, s)
            fixed, dz = self.bounded_step(lm, fidelity, flat, s.cap)
            overlap = jnp.dot(dz, s.previous) / jnp.maximum(jnp.dot(s.previous, s.previous), 1e-300)
            stretched = dz / (1.0 - jnp.clip(overlap, 0.0, MAX_CONTRACTION))
            # shortened as a whole, not clipped per coordinate: clipping turns a step along the
            # valley into one across it (beta and gamma both moved by the cap, keeping R0)
            longest = jnp.maximum(jnp.max(jnp.abs(stretched)), 1e-300)
            step = fixed + stretched * jnp.minimum(1.0, s.cap / longest)
            inside = jnp.where(self.free, jnp.clip(flat + step, self.lower, self.upper), flat)
            step = inside - flat
            phi = unravel(inside)
            theta = self.resolve(s.theta, phi, a)
            residual = self.losses(theta, phi, a)[1]
            ok = jnp.all(jnp.isfinite(theta)) & jnp.all(jnp.isfinite(ravel_pytree(phi)[0]))
            ok = ok & jnp.all(jnp.isfinite(dz)) & jnp.isfinite(residual)
            small = (jnp.max(jnp.abs(dz)) < STEP_TOL) & jnp.all(fixed == 0.0)
            behind = residual > RESIDUAL_GROWTH * s.residual
            cap = jnp.where(behind, 0.5 * s.cap, jnp.minimum(2.0 * s.cap, MAX_LOG_STEP))
            new = s._replace(theta=theta, phi=phi, previous=jnp.where(behind, 0.0, dz), cap=cap,
                             residual=residual, expected=lm.pred + lm.sensitivity @ step, shift=lm.shift,
                             measured=jnp.ones((), bool), done=~ok | small)
            return jax.tree.map(lambda u, v: jnp.where(ok, u, v), new, s._replace(done=jnp.ones((), bool)))

        s = jax.lax.cond(s.done, lambda s: s, move, s)
        log_rates, log_rho, u0 = self._inputs(s.phi, a)  # s.residual is already that of (s.theta, s.phi)
        data = self._misfit(self.predictions(s.theta, log_rho, u0, a).reshape(-1), a)
        return s, OuterRecord(data, s.residual, log_rates, s.phi, s.theta)

    def polish(self, theta, phi, a: ProblemArrays):
        """The final re-solve: ``POLISH`` re-solves in a row at the final estimates."""
        return jax.lax.fori_loop(0, POLISH, lambda _, th: self.resolve(th, phi, a), theta)

    def init(self, theta, phi, a: ProblemArrays) -> OuterState:
        """A diverged member (non-finite weights or estimates) starts, and stays, done."""
        flat = ravel_pytree(phi)[0]
        residual = self.losses(theta, phi, a)[1]
        finite = jnp.all(jnp.isfinite(theta)) & jnp.all(jnp.isfinite(flat)) & jnp.isfinite(residual)
        no_step = jnp.zeros(a.y.size, flat.dtype)  # (n,) as the flattened predictions
        return OuterState(theta, phi, jnp.zeros_like(flat), jnp.asarray(MAX_LOG_STEP, flat.dtype), residual,
                          no_step, no_step, jnp.zeros((), bool), ~finite)
