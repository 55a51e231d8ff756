"""Training: one compiled loop for every balancing strategy, many networks at once.

Three phases, the same for every method (docs/method.md, "The training recipe"); the rates are
always the closed-form minimiser of the physics residual for the current network
(``pinn.optimal_rates``), never trained:

0. **Pre-training** (Adam): the physics alone at the guess rates, so the network starts from an
   epidemic-shaped curve.
1. **First-order phase** (Adam): the strategy under test combines the data gradient and the
   physics gradient of the network weights, the physics gradient ramped from ``physics_ramp`` to
   1; estimated reporting fractions and initial values get the combined gradient.
2. **Refinement** (L-BFGS): augmented-Lagrangian rounds ``L_data + lam_r mean(r^2) + mean(mu r)``
   at a fixed weight per round (``refine_weights``), the multipliers updated between rounds. At a
   stationary point the two gradients are exactly opposite (c = -1), so no gate may set the
   weight here: it would switch physics off precisely at convergence.
3. **Outer phase** (``reduced.py``): Gauss-Newton steps on the estimated numbers, the network
   re-solving the ODE at each (L-BFGS on the physics alone), in float64.

Every phase runs ``record_every`` steps per ``lax.scan`` iteration inside a compiled chunk; a chunk
is called repeatedly from Python, which checks for divergence and advances the progress bar.
Everything is ``vmap``-ed over a leading member axis (K networks trained at once).
"""

from __future__ import annotations

import functools
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import balancing, reduced
from .config import PRECISIONS, TrainConfig, make_strategy, strategy_neutral
from .pinn import NetworkConfig, Problem, ProblemArrays, ProblemSpec, initial_phi, make_losses, make_network

PHASES = ("adam", "refine", "outer", "restart")  # History.phase indexes this


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class Record(NamedTuple):
    """One history record: the state of training after a block of ``record_every`` steps.

    Inside training each field is a scalar per member ((p,) for ``log_rates``); in
    :class:`History` each gains the axes (K, R).
    """

    loss_data: jax.Array
    loss_phys: jax.Array
    c: jax.Array  # gradient cosine at the last step of the block
    c_mean: jax.Array  # mean cosine over the block
    m: jax.Array  # magnitude ratio |g_d| / |g_p|
    lam: jax.Array  # physics weight
    norm_data: jax.Array
    norm_phys: jax.Array
    log_rates: jax.Array


@dataclass(frozen=True)
class History:
    """Training records of K members: ``step`` and ``phase`` (R,) (an index into ``PHASES``); every
    :class:`Record` field with shape (K, R) ((K, R, p) for ``log_rates``)."""

    step: np.ndarray
    phase: np.ndarray
    records: Record

    def member(self, k: int) -> "History":
        return History(self.step, self.phase, Record(*(x[k:k + 1] for x in self.records)))

    def then(self, later: "History") -> "History":
        """These records followed by ``later``'s."""
        return History(np.concatenate([self.step, later.step]), np.concatenate([self.phase, later.phase]),
                       Record(*(np.concatenate([x, y], axis=1) for x, y in zip(self.records, later.records))))

    @property
    def rates(self) -> np.ndarray:
        """(K, R, p) rates over training."""
        return np.exp(self.records.log_rates)


class Estimates(NamedTuple):
    """The estimates and weights of K members at one point of training (leading axis K)."""

    log_rates: np.ndarray  # (K, p)
    log_rho: np.ndarray  # (K, k)
    log_u0: np.ndarray  # (K, s)
    theta: np.ndarray  # (K, P)


@dataclass
class TrainResult:
    """Output of :func:`train` for K networks (leading axis K everywhere).

    Attributes:
        log_rates: (K, p) final log rates (NaN rows for diverged members).
        log_rho: (K, k) final log reporting fractions.
        log_u0: (K, s) final log initial fractions (known values where not estimated; S unused).
        log_rates_adam: (K, p) log rates at the end of the first-order phase.
        refined: the estimates and weights at the end of the refinement, before the outer phase.
        outer_path: the estimates and weights after each outer step, axes (K, S, ...) (S = 0
            without an outer phase), then after each step of the second start where one ran
            (:func:`second_start`); each phase's last weights are its final re-solve's.
        outer_point: (K,) the point reported: 0 the refinement's, j >= 1 after step j of that
            path (:meth:`choose`); S where nothing was chosen.
        theta: (K, P) final network weights; theta_adam: (K, P) at the end of the first phase.
        history: the training records.
        diverged_step: (K,) first recorded step with a non-finite loss, -1 if none.
        compile_s, adam_s, refine_s, outer_s: seconds spent compiling and in each phase.
    """

    log_rates: np.ndarray
    log_rho: np.ndarray
    log_u0: np.ndarray
    log_rates_adam: np.ndarray
    refined: Estimates
    outer_path: Estimates
    outer_point: np.ndarray
    theta: np.ndarray
    theta_adam: np.ndarray
    history: History
    diverged_step: np.ndarray
    compile_s: float
    adam_s: float
    refine_s: float
    outer_s: float

    @property
    def train_s(self) -> float:
        return self.adam_s + self.refine_s + self.outer_s

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_step >= 0

    @property
    def outer_kept(self) -> np.ndarray:
        """(K,) False where the refinement's point is reported instead of the outer phase's (True
        where there was no outer phase)."""
        return (self.outer_point > 0) | (self.outer_path.theta.shape[1] == 0)

    def member(self, k: int) -> "TrainResult":
        """Member k alone (leading axis 1); timings stay those of the whole batch."""
        pick = lambda x: x[k:k + 1]
        return TrainResult(pick(self.log_rates), pick(self.log_rho), pick(self.log_u0), pick(self.log_rates_adam),
                           Estimates(*map(pick, self.refined)), Estimates(*map(pick, self.outer_path)),
                           pick(self.outer_point), pick(self.theta),
                           pick(self.theta_adam), self.history.member(k), pick(self.diverged_step), self.compile_s,
                           self.adam_s, self.refine_s, self.outer_s)

    def points(self) -> Estimates:
        """The refinement's point and the point after each outer step, axes (K, S + 1, ...)."""
        return Estimates(*(np.concatenate([r[:, None], p], axis=1) for r, p in zip(self.refined, self.outer_path)))

    def choose(self, point: np.ndarray) -> "TrainResult":
        """This result with member k's estimates and weights at ``point[k]`` of :meth:`points`."""
        rows = np.arange(len(point))
        chosen = Estimates(*(x[rows, point] for x in self.points()))
        return replace(self, log_rates=chosen.log_rates, log_rho=chosen.log_rho, log_u0=chosen.log_u0,
                       theta=chosen.theta, outer_point=np.asarray(point))


STALL_RTOL = 1e-7  # a refinement block that lowers the objective by less than this has stalled
ALM_STEP = 0.5  # multiplier update mu += ALM_STEP * 2 lam r (damped: the full step oscillates)
PRETRAIN_LR_DECAY = 0.1  # cosine decay of the pre-training step size to this fraction
ADAM_LR_DECAY = 0.05  # and of the first-order phase's


class _PretrainState(NamedTuple):
    theta: jax.Array
    opt_state: object


class _AdamState(NamedTuple):
    theta: jax.Array
    phi: tuple
    opt_state: object
    balance: object  # the strategy's state
    step: jax.Array  # steps done in this phase (for the physics ramp)


class _RefineState(NamedTuple):
    params: tuple  # (theta, phi)
    opt_state: object
    multiplier: jax.Array  # (rows,) augmented-Lagrangian multipliers mu of the residual
    last_value: jax.Array  # objective at the end of the previous block
    stalled: jax.Array  # bool: no progress in the last block of this round


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def refine_weights(cfg: TrainConfig) -> list[float]:
    """Physics weight of each refinement round: lam_ref, raised tenfold every second round, at most 1."""
    return [min(1.0, cfg.lam_ref * 10.0 ** (r // 2)) for r in range(cfg.refine_rounds)]


class _Steps:
    """The per-member functions of the three phases for one problem structure and config."""

    def __init__(self, spec: ProblemSpec, cfg: TrainConfig):
        self.cfg = cfg
        self.network = make_network(spec.model, cfg.network)
        self.spec = spec
        self.losses = make_losses(spec, self.network)
        self.strategy = make_strategy(cfg)
        lr = cfg.learning_rate
        self.pretrain_opt = optax.adam(optax.cosine_decay_schedule(lr, max(cfg.pretrain_steps, 1), PRETRAIN_LR_DECAY))
        self.adam = optax.adam(optax.cosine_decay_schedule(lr, max(cfg.adam_steps, 1), ADAM_LR_DECAY))
        self.lbfgs = optax.lbfgs(memory_size=cfg.lbfgs_memory)

        def data_loss(theta, phi, a):  # only .data is used: the physics part of this pass is dead code
            return self.losses(theta, phi, a, smooth=True).data

        def phys_loss(theta, phi, a):
            L = self.losses(theta, phi, a, smooth=True)
            return L.phys, L

        grad_data = jax.grad(data_loss, argnums=(0, 1))
        grad_phys = jax.grad(phys_loss, argnums=(0, 1), has_aux=True)

        def jacobian(theta, phi, a):
            """Both loss gradients, stacked (data first) on a leading axis of 2, and the losses.

            Two reverse passes, not one ``jacrev`` of the loss pair: a batched reverse pass of
            the pair carries the data cotangent through the whole physics graph too, and costs
            1.6x two separate passes (scripts/profile_step.py)."""
            g_data = grad_data(theta, phi, a)
            g_phys, L = grad_phys(theta, phi, a)
            return jax.tree.map(lambda d, p: jnp.stack([d, p]), g_data, g_phys), L

        self.jacobian = jacobian

    def init(self, key, a: ProblemArrays):
        theta = self.network.init(key, a.growth_guess, a.relaxation_guess)
        phi = initial_phi(self.spec, a)
        return _PretrainState(theta, self.pretrain_opt.init(theta)), phi

    # -- phase 0: the network learns an epidemic-shaped curve (physics alone, the guess rates)
    def pretrain_step(self, state: _PretrainState, phi, a: ProblemArrays):
        def phys(theta):
            return self.losses(theta, phi, a, rates=a.rates_guess).phys

        L, g = jax.value_and_grad(phys)(state.theta)
        updates, opt_state = self.pretrain_opt.update(g, state.opt_state, state.theta)
        return _PretrainState(optax.apply_updates(state.theta, updates), opt_state), L

    def pretrain_block(self, carry, a: ProblemArrays):
        state, phi = carry
        state, L = jax.lax.scan(lambda s, _: self.pretrain_step(s, phi, a), state, None, length=self.cfg.record_every)
        zero = jnp.zeros((), L.dtype)  # only the physics loss exists here
        rec = Record(zero, L[-1], zero, zero, zero, zero, zero, zero, jnp.log(a.rates_guess))
        return (state, phi), rec

    def adam_init(self, theta, phi) -> _AdamState:
        step = jnp.zeros((), theta.dtype)
        return _AdamState(theta, phi, self.adam.init((theta, phi)), self.strategy.init(), step)

    def refine_init(self, theta, phi, a: ProblemArrays) -> _RefineState:
        rows = a.tau_colloc.shape[0] * self.network.layout.n_vars
        return _RefineState((theta, phi), self.lbfgs.init((theta, phi)), jnp.zeros(rows, theta.dtype),
                            jnp.full((), jnp.inf, theta.dtype), jnp.zeros((), bool))

    # -- phase 1: the strategy under test balances data and (ramped) physics
    def adam_step(self, state: _AdamState, a: ProblemArrays):
        (j_theta, j_phi), L = self.jacobian(state.theta, state.phi, a)
        ramp = self.cfg.physics_ramp ** (1.0 - state.step / max(self.cfg.adam_steps, 1))
        direction, balance, info = self.strategy.update(j_theta[0], ramp * j_theta[1], state.balance)
        weight = ramp * jnp.nan_to_num(info.lam, nan=self.cfg.lam_ref)
        # phi's rates are closed-form (no gradient); reporting fractions and initial values get the
        # gradient of the combined objective at the current weight
        g_phi = jax.tree.map(lambda j: j[0] + weight * j[1], j_phi)
        updates, opt_state = self.adam.update((direction, g_phi), state.opt_state, (state.theta, state.phi))
        theta, phi = optax.apply_updates((state.theta, state.phi), updates)
        phi = (jnp.log(L.rates), *phi[1:])
        info = info._replace(lam=info.lam * ramp, norm_phys=info.norm_phys / ramp)
        return _AdamState(theta, phi, opt_state, balance, state.step + 1), (jnp.stack([L.data, L.phys]), info)

    def adam_block(self, state: _AdamState, a: ProblemArrays):
        state, (L, info) = jax.lax.scan(lambda s, _: self.adam_step(s, a), state, None, length=self.cfg.record_every)
        rec = Record(L[-1, 0], L[-1, 1], info.c[-1], info.c.mean(), info.m[-1], info.lam[-1], info.norm_data[-1],
                     info.norm_phys[-1], state.phi[0])
        return state, rec

    # -- phase 2: augmented-Lagrangian rounds of L-BFGS at a fixed weight per round
    def objective(self, params, multiplier, lam, a: ProblemArrays):
        L = self.losses(params[0], params[1], a, shift=multiplier / (2.0 * lam))
        return L.data + lam * L.phys + jnp.mean(multiplier * L.residual)

    def lbfgs_step(self, carry, multiplier, lam, a: ProblemArrays):
        params, opt_state = carry
        objective = lambda p: self.objective(p, multiplier, lam, a)
        value, grad = optax.value_and_grad_from_state(objective)(params, state=opt_state)
        updates, new_state = self.lbfgs.update(grad, opt_state, params, value=value, grad=grad, value_fn=objective)
        new_params = optax.apply_updates(params, updates)
        # A line-search step into a region where the network overflows would poison the run:
        # refuse it, keep the last good point and restart L-BFGS's memory from there.
        ok = (_all_finite(new_params) & _all_finite(optax.tree_utils.tree_get(new_state, "value"))
              & _all_finite(optax.tree_utils.tree_get(new_state, "grad")))
        keep = lambda new, old: jax.tree.map(lambda x, y: jnp.where(ok, x, y), new, old)
        return keep(new_params, params), keep(new_state, self.lbfgs.init(params))

    def start_round(self, r: _RefineState) -> _RefineState:
        inf = jnp.full((), jnp.inf, r.last_value.dtype)
        return r._replace(opt_state=self.lbfgs.init(r.params), last_value=inf, stalled=jnp.zeros((), bool))

    def end_round(self, r: _RefineState, lam, a: ProblemArrays) -> _RefineState:
        """The multiplier update of the augmented Lagrangian: mu += ALM_STEP * 2 lam r."""
        theta, phi = r.params
        L = self.losses(theta, phi, a, shift=r.multiplier / (2.0 * lam))
        return r._replace(multiplier=r.multiplier + ALM_STEP * 2.0 * lam * L.residual)

    def refine_block(self, r: _RefineState, lam, a: ProblemArrays):
        scan = lambda c: jax.lax.scan(lambda c, _: (self.lbfgs_step(c, r.multiplier, lam, a), None), c, None,
                                      length=self.cfg.record_every)[0]
        # Once a whole block makes no progress the line search only burns evaluations: skip the
        # remaining blocks of this round.
        (theta, phi), opt_state = jax.lax.cond(r.stalled, lambda c: c, scan, (r.params, r.opt_state))
        value = self.objective((theta, phi), r.multiplier, lam, a)
        stalled = r.stalled | ~(value < r.last_value * (1.0 - STALL_RTOL))
        (j_theta, _), L = self.jacobian(theta, phi, a)
        phi = (jnp.log(L.rates), *phi[1:])
        c, m, nd, np_ = balancing.gradient_stats(j_theta[0], j_theta[1])
        rec = Record(L.data, L.phys, c, c, m, jnp.asarray(lam, L.data.dtype), nd, np_, phi[0])
        return r._replace(params=(theta, phi), opt_state=opt_state, last_value=value, stalled=stalled), rec


class _Programs(NamedTuple):
    """Jitted whole-batch functions: ``init(keys, arrays)``, one chunk of each phase
    ``(carry, arrays) -> (carry, Record with a records axis)`` (None where the phase is empty;
    the refinement chunk also takes the round's weight), and the round boundaries."""

    init: Callable
    adam_init: Callable
    refine_init: Callable
    pretrain: Callable | None
    adam: Callable | None
    refine: Callable | None
    start_round: Callable
    end_round: Callable
    chunks: tuple[int, int, int]  # chunk calls per phase (pre-training, first-order, one refinement round)


def _blocks_per_chunk(total: int, every: int, target_steps: int = 1000) -> int:
    """Records per compiled chunk: the largest divisor of total/every giving <= target_steps."""
    n = total // every
    return max(d for d in range(1, n + 1) if n % d == 0 and d * every <= max(target_steps, every))


def _programs(spec: ProblemSpec, cfg: TrainConfig, batched: bool) -> _Programs:
    """The compiled programs of a run. Only the first-order phase's depend on the balancing
    strategy: the others are shared by every method of the same problem shape, so a benchmark cell
    compiles them once, not once per method."""
    shared = _shared_programs(spec, strategy_neutral(cfg), batched, members_in_parallel())
    first_order = _first_order_programs(spec, cfg, batched)
    return _Programs(shared.init, first_order.adam_init, shared.refine_init, shared.pretrain, first_order.adam,
                     shared.refine, shared.start_round, shared.end_round, _chunking(cfg)[1])


def _chunking(cfg: TrainConfig) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Records per compiled chunk of each phase, and chunk calls per phase."""
    phase_steps = (cfg.pretrain_steps, cfg.adam_steps, cfg.refine_steps // cfg.refine_rounds)
    blocks = tuple(_blocks_per_chunk(n, cfg.record_every) if n else 0 for n in phase_steps)
    chunks = tuple(n // (cfg.record_every * b) if b else 0 for n, b in zip(phase_steps, blocks))
    return blocks, chunks


def _chunk(block, n_blocks):
    return lambda carry, a: jax.lax.scan(lambda s, _: block(s, a), carry, None, length=n_blocks)


class _FirstOrderPrograms(NamedTuple):
    adam_init: Callable
    adam: Callable | None


@functools.lru_cache(maxsize=256)
def _first_order_programs(spec: ProblemSpec, cfg: TrainConfig, batched: bool) -> _FirstOrderPrograms:
    steps = _Steps(spec, cfg)
    n_blocks = _chunking(cfg)[0][1]
    adam = jax.jit(jax.vmap(_chunk(steps.adam_block, n_blocks), in_axes=(0, 0 if batched else None)))
    return _FirstOrderPrograms(jax.jit(jax.vmap(steps.adam_init)), adam if n_blocks else None)


class _SharedPrograms(NamedTuple):
    init: Callable
    refine_init: Callable
    pretrain: Callable | None
    refine: Callable | None
    start_round: Callable
    end_round: Callable


def members_in_parallel() -> bool:
    """Whether the second-order phases (L-BFGS refinement, outer phase) run the members side by
    side (``vmap``) or one after another (``lax.map``). Their line searches and re-solves are while
    loops: under ``vmap`` every member runs as many evaluations as the slowest one. On a CPU that
    is wasted work; on an accelerator the extra members are nearly free, and running them one after
    another leaves the device idle."""
    return jax.default_backend() != "cpu"


def _over_members(fn: Callable, in_axes: tuple, parallel: bool) -> Callable:
    """``fn`` applied to every member: arguments with axis 0 in ``in_axes`` carry the member axis,
    ``None`` ones are shared."""
    if parallel:
        return jax.vmap(fn, in_axes=in_axes)
    mapped = [i for i, ax in enumerate(in_axes) if ax == 0]

    def one_by_one(*args):
        def member(xs):
            full = list(args)
            for i, x in zip(mapped, xs):
                full[i] = x
            return fn(*full)
        return jax.lax.map(member, tuple(args[i] for i in mapped))
    return one_by_one


@functools.lru_cache(maxsize=64)
def _shared_programs(spec: ProblemSpec, cfg: TrainConfig, batched: bool, parallel: bool) -> _SharedPrograms:
    steps = _Steps(spec, cfg)
    data_axis = 0 if batched else None
    blocks = _chunking(cfg)[0]
    pretrain = jax.jit(jax.vmap(_chunk(steps.pretrain_block, blocks[0]), in_axes=(0, data_axis))) if blocks[0] else None
    refine = None
    if blocks[2]:
        def run(carry, lam, a):
            return jax.lax.scan(lambda s, _: steps.refine_block(s, lam, a), carry, None, length=blocks[2])

        refine = jax.jit(_over_members(run, (0, None, data_axis), parallel))
    return _SharedPrograms(init=jax.jit(jax.vmap(steps.init, in_axes=(0, data_axis))),
                           refine_init=jax.jit(jax.vmap(steps.refine_init, in_axes=(0, 0, data_axis))),
                           pretrain=pretrain, refine=refine, start_round=jax.jit(jax.vmap(steps.start_round)),
                           end_round=jax.jit(jax.vmap(steps.end_round, in_axes=(0, None, data_axis))))


ProgressFn = Callable[[str, int, int], None]  # (phase, steps done, steps total)


class _Monitor:
    """Collects records, finds the first non-finite loss of each member, reports progress."""

    def __init__(self, cfg: TrainConfig, seeds, progress: ProgressFn | None, raise_on_divergence: bool,
                 done: int = 0, total: int | None = None):
        self.cfg, self.seeds, self.progress, self.raise_on_divergence = cfg, seeds, progress, raise_on_divergence
        self.records: list[Record] = []
        self.phases: list[np.ndarray] = []
        self.steps: list[np.ndarray] = []
        self.diverged_step = np.full(len(seeds), -1)
        self.done = done  # steps before this monitor's first record
        self.total = cfg.total_steps if total is None else total

    def add(self, rec: Record, phase: str) -> bool:
        """Take a chunk's records (K, n) of ``phase`` (pretrain, adam, refine or outer; pre-training
        is checked for divergence but not kept in the history); return True once every member has
        diverged. A record stands for ``record_every`` steps, or one re-solve in the outer phase and the
        second start (restart)."""
        rec = Record(*(np.asarray(x) for x in rec))
        loss = rec.loss_data + rec.loss_phys
        every = {"outer": self.cfg.resolve_steps, "restart": self.cfg.restart_resolve_steps}.get(phase,
                                                                                             self.cfg.record_every)
        steps = self.done + every * np.arange(1, loss.shape[1] + 1)
        bad = ~np.isfinite(loss)
        for k in np.where(bad.any(axis=1) & (self.diverged_step < 0))[0]:
            self.diverged_step[k] = steps[np.argmax(bad[k])]
        if phase != "pretrain":
            self.records.append(rec)
            self.phases.append(np.full(loss.shape[1], PHASES.index(phase)))
            self.steps.append(steps)
        self.done = int(steps[-1])
        if self.progress:
            self.progress(phase, self.done, self.total)
        diverged = self.diverged_step >= 0
        if self.raise_on_divergence and diverged.any():
            k = int(np.argmax(diverged))
            raise TrainingDiverged(
                f"method {self.cfg.method}: the loss became NaN or infinite at step {self.diverged_step[k]} "
                f"({phase} phase, seed {int(self.seeds[k])}); try a smaller --lr or another --lam-ref")
        return bool(diverged.all())

    def history(self) -> History:
        records = Record(*(np.concatenate(xs, axis=1) for xs in zip(*self.records)))
        return History(np.concatenate(self.steps), np.concatenate(self.phases), records)


def train(problem: Problem, cfg: TrainConfig, seeds, *, progress: ProgressFn | None = None,
          raise_on_divergence: bool = True) -> TrainResult:
    """Train one network per seed, all at once.

    Args:
        problem: from :func:`epigate.pinn.build_problem`, or a batch from
            :func:`epigate.pinn.stack_problems` (then member k fits data set k).
        seeds: K integer seeds (network initialisation); K must equal the batch size if batched.
        raise_on_divergence: raise :class:`TrainingDiverged` if any member's loss becomes
            non-finite; otherwise mark it in ``diverged_step`` and set its estimates to NaN.
    """
    seeds = [int(s) for s in seeds]
    if problem.batched and len(seeds) != problem.arrays.y.shape[0]:
        raise ValueError(f"{len(seeds)} seeds for a batch of {problem.arrays.y.shape[0]} data sets")
    monitor = _Monitor(cfg, seeds, progress, raise_on_divergence)
    with precision_scope(cfg):
        arrays = jax.tree.map(lambda x: jnp.asarray(x, PRECISIONS[cfg.precision]), problem.arrays)
        result = _train(problem.spec, arrays, problem.batched, cfg, seeds, monitor)
    if cfg.outer_steps and not result.diverged.all():
        result = _outer_phase(problem, cfg, result, monitor)
    return result


@functools.lru_cache(maxsize=64)
def _outer_program(spec: ProblemSpec, network: NetworkConfig, outer_steps: int, resolve_steps: int,
                   batched: bool, parallel: bool) -> Callable:
    """``(theta (K, P), phi, arrays) -> (theta after the final re-solve, OuterRecord (K, outer_steps))``
    (the records hold the estimates after every step); members side by side or one after another
    (:func:`members_in_parallel`)."""
    solver = reduced.OuterSolver(spec, make_network(spec.model, network), resolve_steps)

    def run(theta, phi, a):
        state = solver.init(theta, phi, a)
        state, records = jax.lax.scan(lambda s, _: solver.outer_step(s, a), state, None, length=outer_steps)
        return solver.polish(state.theta, state.phi, a), records

    return jax.jit(_over_members(run, (0, 0, 0 if batched else None), parallel))


def _outer_path(problem: Problem, cfg: TrainConfig, start: Estimates, phase: str, monitor: _Monitor) -> Estimates:
    """The outer phase (``reduced.py``) from ``start``, in float64: the estimates and weights after
    each of ``cfg.outer_steps`` steps of ``cfg.resolve_steps``-iteration re-solves, axes (K, S, ...).
    A member that starts with NaNs (diverged) starts done (reduced.OuterSolver.init) and stays NaN."""
    with jax.enable_x64(True):
        f64 = lambda x: jnp.asarray(x, jnp.float64)
        arrays = jax.tree.map(f64, problem.arrays)
        phi = tuple(f64(x) for x in start[:3])
        program = _outer_program(problem.spec, cfg.network, cfg.outer_steps, cfg.resolve_steps, problem.batched,
                                 members_in_parallel())
        theta, rec = jax.block_until_ready(program(f64(start.theta), phi, arrays))
        nan = np.full(np.shape(rec.loss_data), np.nan)
        monitor.add(Record(rec.loss_data, rec.loss_phys, nan, nan, nan, nan, nan, nan, rec.log_rates), phase)
        path = Estimates(*(np.array(x, dtype=float) for x in rec.phi), np.array(rec.theta, dtype=start.theta.dtype))
        path.theta[:, -1] = theta  # the last point is the final one: its network re-solved once more
    for x in path[:3]:
        x[~np.all(np.isfinite(start.log_rates), axis=1)] = np.nan
    return path


def _outer_phase(problem: Problem, cfg: TrainConfig, result: TrainResult, monitor: _Monitor) -> TrainResult:
    """The outer phase from the refinement's point on every member that has not diverged."""
    t0 = time.perf_counter()
    path = _outer_path(problem, cfg, result.refined, "outer", monitor)
    done = replace(result, outer_path=path, history=monitor.history(), outer_s=time.perf_counter() - t0)
    return done.choose(np.full(len(path.theta), cfg.outer_steps))


def second_start(problem: Problem, cfg: TrainConfig, result: TrainResult, *,
                 progress: ProgressFn | None = None) -> TrainResult:
    """``result`` with a second outer phase appended to its path (docs/method.md, "The second start"):
    from the refinement's network and estimates with the rates reset to where training started
    (``rates_guess``), ``cfg.restart_steps`` steps of ``cfg.restart_resolve_steps``-iteration re-solves.

    The outer phase is a local method: from the refinement's point it goes to the nearest optimum,
    which on long cumulative series is a local one; the rates training started from lie in the
    global optimum's basin there. ``outer_point`` is left as it was: the caller chooses among
    the points of the longer path."""
    t0 = time.perf_counter()
    restart = replace(cfg, outer_steps=cfg.restart_steps, resolve_steps=cfg.restart_resolve_steps)
    steps = int(result.history.step[-1]) if len(result.history.step) else 0
    monitor = _Monitor(cfg, list(range(len(result.theta))), progress, raise_on_divergence=False, done=steps,
                       total=steps + cfg.restart_steps * cfg.restart_resolve_steps)
    guess = np.broadcast_to(np.log(np.asarray(problem.arrays.rates_guess, float)), result.refined.log_rates.shape)
    start = result.refined._replace(log_rates=np.where(result.diverged[:, None], np.nan, guess))
    path = _outer_path(problem, restart, start, "restart", monitor)
    joined = Estimates(*(np.concatenate([x, y], axis=1) for x, y in zip(result.outer_path, path)))
    return replace(result, outer_path=joined, history=result.history.then(monitor.history()),
                   outer_s=result.outer_s + time.perf_counter() - t0)


def precision_scope(cfg: TrainConfig):
    """JAX's x64 mode for float64 training only: the rest of the process stays float32."""
    return jax.enable_x64(True) if cfg.precision == "float64" else nullcontext()


def _train(spec: ProblemSpec, arrays: ProblemArrays, batched: bool, cfg: TrainConfig, seeds: list[int],
           monitor: _Monitor) -> TrainResult:
    programs = _programs(spec, cfg, batched)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    n_pre, n_adam, n_round = programs.chunks
    t0 = time.perf_counter()
    pre_state, phi = programs.init(keys, arrays)
    theta = pre_state.theta
    pretrain = programs.pretrain.lower((pre_state, phi), arrays).compile() if n_pre else None
    adam_state = programs.adam_init(theta, phi) if n_adam else None
    adam = programs.adam.lower(adam_state, arrays).compile() if n_adam else None
    refine_state = programs.refine_init(theta, phi, arrays) if n_round else None
    lam0 = jnp.asarray(refine_weights(cfg)[0] if n_round else 1.0, arrays.u0.dtype)
    refine = programs.refine.lower(refine_state, lam0, arrays).compile() if n_round else None
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    all_diverged = False
    carry = (pre_state, phi)
    for _ in range(n_pre):
        carry, rec = pretrain(carry, arrays)
        if all_diverged := monitor.add(rec, "pretrain"):
            break
    theta = carry[0].theta
    if n_adam and not all_diverged:
        adam_state = programs.adam_init(theta, phi)
        for _ in range(n_adam):
            adam_state, rec = adam(adam_state, arrays)
            if all_diverged := monitor.add(rec, "adam"):
                break
        theta, phi = adam_state.theta, adam_state.phi
    theta_adam = np.asarray(theta)
    log_rates_adam = np.array(phi[0], dtype=float)
    adam_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    if n_round and not all_diverged:
        refine_state = programs.refine_init(theta, phi, arrays)
        for lam in refine_weights(cfg):
            lam = jnp.asarray(lam, arrays.u0.dtype)
            refine_state = programs.start_round(refine_state)
            for _ in range(n_round):
                refine_state, rec = refine(refine_state, lam, arrays)
                if all_diverged := monitor.add(rec, "refine"):
                    break
            if all_diverged:
                break
            refine_state = programs.end_round(refine_state, lam, arrays)
        theta, phi = refine_state.params
    theta, (log_rates, log_rho, log_u0) = jax.block_until_ready((theta, phi))
    refine_s = time.perf_counter() - t0

    # np.array copies: float64 device buffers come back as read-only views
    estimates = [np.array(x, dtype=float) for x in (log_rates, log_rho, log_u0)]
    for x in (*estimates, log_rates_adam):
        x[monitor.diverged_step >= 0] = np.nan
    theta = np.asarray(theta)
    return TrainResult(*estimates, log_rates_adam=log_rates_adam, refined=Estimates(*estimates, theta),
                       outer_path=Estimates(*(x[:, :0] for x in (*estimates, theta))),
                       outer_point=np.zeros(len(seeds), int), theta=theta, theta_adam=theta_adam,
                       history=monitor.history(),
                       diverged_step=monitor.diverged_step, compile_s=compile_s, adam_s=adam_s, refine_s=refine_s,
                       outer_s=0.0)


def network_states(model, cfg: TrainConfig, theta: np.ndarray, tau: np.ndarray, u0: np.ndarray) -> np.ndarray:
    """The networks' compartments, in the training precision.

    Args:
        theta: (K, P) network weights; tau: (G,) scaled times; u0: (K, s) initial fractions.
    Returns:
        (K, G, s) population fractions.
    """
    with precision_scope(cfg):
        dtype = PRECISIONS[cfg.precision]
        states = _states_program(model, cfg.network)
        return np.array(states(jnp.asarray(theta, dtype), jnp.asarray(tau, dtype), jnp.asarray(u0, dtype)))


def clear_compiled() -> None:
    """Forget every compiled program (this module's and JAX's). A long process that fits many
    problem shapes (the robustness suite) otherwise accumulates compiled code until LLVM runs out
    of memory for it."""
    for cached in (_shared_programs, _first_order_programs, _outer_program, _states_program):
        cached.cache_clear()
    jax.clear_caches()


@functools.lru_cache(maxsize=64)
def _states_program(model, network: NetworkConfig) -> Callable:
    """One compiled program per network shape (a new jit object per call would compile every time)."""
    return jax.jit(jax.vmap(make_network(model, network).states, in_axes=(0, None, 0)))
