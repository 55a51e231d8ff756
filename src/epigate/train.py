"""Training: one compiled loop for every balancing strategy, many networks at once.

Two phases, the same for every method (docs/method.md, "The training recipe"):

1. **First-order phase** (Adam): the strategy under test combines the data and physics gradients
   of the network weights; the rates get the physics gradient alone, ungated, and estimated
   reporting fractions the data gradient alone.
2. **Refinement phase** (L-BFGS): ``L_data + lam_ref * L_phys`` over the network and the other
   free numbers, with the rates eliminated in closed form (``pinn.optimal_log_rates``), at the
   fixed reference weight. At a stationary point the two gradients are exactly opposite (c = -1),
   so no gate may set the weight here: it would switch physics off precisely at convergence.

Both phases run ``record_every`` steps per ``lax.scan`` iteration inside a compiled chunk; a chunk
is called repeatedly from Python, which checks for divergence and advances the progress bar.
Everything is ``vmap``-ed over a leading member axis (K networks trained at once).
"""

from __future__ import annotations

import functools
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import balancing
from .config import PRECISIONS, TrainConfig, make_strategy
from .pinn import Problem, ProblemArrays, ProblemSpec, initial_phi, make_losses, make_network

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
    """Training records of K members: ``step`` and ``phase`` (R,) (0 = Adam, 1 = refinement); every
    :class:`Record` field with shape (K, R) ((K, R, p) for ``log_rates``)."""

    step: np.ndarray
    phase: np.ndarray
    records: Record

    def member(self, k: int) -> "History":
        return History(self.step, self.phase, Record(*(x[k:k + 1] for x in self.records)))

    @property
    def rates(self) -> np.ndarray:
        """(K, R, p) rates over training."""
        return np.exp(self.records.log_rates)


@dataclass
class TrainResult:
    """Output of :func:`train` for K networks (leading axis K everywhere).

    Attributes:
        log_rates: (K, p) final log rates (NaN rows for diverged members).
        log_rho: (K, k) final log reporting fractions.
        log_u0: (K, s) final log initial fractions (known values where not estimated; S unused).
        log_rates_adam: (K, p) log rates at the end of the first-order phase.
        theta: (K, P) final network weights; theta_adam: (K, P) at the end of the first phase.
        history: the training records.
        diverged_step: (K,) first recorded step with a non-finite loss, -1 if none.
        compile_s, adam_s, refine_s: seconds spent compiling and in each phase.
    """

    log_rates: np.ndarray
    log_rho: np.ndarray
    log_u0: np.ndarray
    log_rates_adam: np.ndarray
    theta: np.ndarray
    theta_adam: np.ndarray
    history: History
    diverged_step: np.ndarray
    compile_s: float
    adam_s: float
    refine_s: float

    @property
    def train_s(self) -> float:
        return self.adam_s + self.refine_s

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_step >= 0

    def member(self, k: int) -> "TrainResult":
        """Member k alone (leading axis 1); timings stay those of the whole batch."""
        pick = lambda x: x[k:k + 1]
        return TrainResult(pick(self.log_rates), pick(self.log_rho), pick(self.log_u0), pick(self.log_rates_adam),
                           pick(self.theta), pick(self.theta_adam), self.history.member(k), pick(self.diverged_step),
                           self.compile_s, self.adam_s, self.refine_s)


STALL_RTOL = 1e-7  # a refinement block that lowers the objective by less than this has stalled


class _AdamState(NamedTuple):
    theta: jax.Array
    phi: tuple
    opt_state: object
    balance: object  # the strategy's state


class _RefineState(NamedTuple):
    params: tuple  # (theta, phi)
    opt_state: object
    last_value: jax.Array  # objective at the end of the previous block
    stalled: jax.Array  # bool: no progress in the last block


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


class _Steps:
    """The per-member functions of both phases for one problem structure and config."""

    def __init__(self, spec: ProblemSpec, cfg: TrainConfig):
        self.cfg = cfg
        self.network = make_network(spec.model, cfg.network)
        self.spec = spec
        self.losses = make_losses(spec, self.network)
        self.profiled = make_losses(spec, self.network, profile_rates=True)
        self.strategy = make_strategy(cfg)
        self.adam = optax.adam(cfg.learning_rate)
        self.lbfgs = optax.lbfgs(memory_size=cfg.lbfgs_memory)
        # both loss gradients from one forward pass: the Jacobian of the loss pair
        self.jacobian = jax.jacrev(lambda th, ph, a: (self.losses(th, ph, a)[0],) * 2, argnums=(0, 1), has_aux=True)

    def init(self, key, a: ProblemArrays):
        theta = self.network.init(key)
        phi = initial_phi(self.spec, a)
        params = (theta, phi)
        adam = _AdamState(theta, phi, self.adam.init(params), self.strategy.init())
        return adam, self.lbfgs.init(params)

    def adam_step(self, state: _AdamState, a: ProblemArrays):
        (j_theta, j_phi), L = self.jacobian(state.theta, state.phi, a)
        direction, balance, info = self.strategy.update(j_theta[0], j_theta[1], state.balance)
        # Ungated sum for phi: only L_phys depends on the rates and only L_data on reporting
        # fractions, so each gets its own loss's gradient; initial values get both.
        g_phi = jax.tree.map(lambda j: j[0] + j[1], j_phi)
        updates, opt_state = self.adam.update((direction, g_phi), state.opt_state, (state.theta, state.phi))
        theta, phi = optax.apply_updates((state.theta, state.phi), updates)
        return _AdamState(theta, phi, opt_state, balance), (L, info)

    def adam_block(self, state: _AdamState, a: ProblemArrays):
        state, (L, info) = jax.lax.scan(lambda s, _: self.adam_step(s, a), state, None, length=self.cfg.record_every)
        rec = Record(L[-1, 0], L[-1, 1], info.c[-1], info.c.mean(), info.m[-1], info.lam[-1], info.norm_data[-1],
                     info.norm_phys[-1], state.phi[0])
        return state, rec

    def objective(self, params, a: ProblemArrays):
        L, _ = self.profiled(params[0], params[1], a)
        return L[0] + self.cfg.lam_ref * L[1]

    def lbfgs_step(self, carry, a: ProblemArrays):
        params, opt_state = carry
        objective = functools.partial(self.objective, a=a)
        value, grad = optax.value_and_grad_from_state(objective)(params, state=opt_state)
        updates, new_state = self.lbfgs.update(grad, opt_state, params, value=value, grad=grad, value_fn=objective)
        new_params = optax.apply_updates(params, updates)
        # A line-search step into a region where the network overflows would poison the run:
        # refuse it, keep the last good point and restart L-BFGS's memory from there.
        ok = (_all_finite(new_params) & _all_finite(optax.tree_utils.tree_get(new_state, "value"))
              & _all_finite(optax.tree_utils.tree_get(new_state, "grad")))
        keep = lambda new, old: jax.tree.map(lambda x, y: jnp.where(ok, x, y), new, old)
        return keep(new_params, params), keep(new_state, self.lbfgs.init(params))

    def refine_block(self, r: _RefineState, a: ProblemArrays):
        scan = lambda c: jax.lax.scan(lambda c, _: (self.lbfgs_step(c, a), None), c, None,
                                      length=self.cfg.record_every)[0]
        # Once a whole block makes no progress the line search only burns evaluations: skip the
        # remaining blocks of this member.
        (theta, phi), opt_state = jax.lax.cond(r.stalled, lambda c: c, scan, (r.params, r.opt_state))
        L, log_rates = self.profiled(theta, phi, a)
        phi = (log_rates, *phi[1:])  # keep phi's rates equal to the profiled optimum
        value = L[0] + self.cfg.lam_ref * L[1]
        stalled = r.stalled | ~(value < r.last_value * (1.0 - STALL_RTOL))
        (j_theta, _), _ = self.jacobian(theta, phi, a)
        c, m, nd, np_ = balancing.gradient_stats(j_theta[0], j_theta[1])
        rec = Record(L[0], L[1], c, c, m, jnp.asarray(self.cfg.lam_ref, L.dtype), nd, np_, log_rates)
        return _RefineState((theta, phi), opt_state, value, stalled), rec


class _Programs(NamedTuple):
    """Jitted whole-batch functions: ``init(keys, arrays)``, and one chunk of each phase
    ``(carry, arrays) -> (carry, Record with a records axis)`` (None where the phase is empty)."""

    init: Callable
    adam: Callable | None
    refine: Callable | None
    adam_blocks: int  # records per compiled chunk
    refine_blocks: int


def _blocks_per_chunk(total: int, every: int, target_steps: int = 1000) -> int:
    """Records per compiled chunk: the largest divisor of total/every giving <= target_steps."""
    n = total // every
    return max(d for d in range(1, n + 1) if n % d == 0 and d * every <= max(target_steps, every))


@functools.lru_cache(maxsize=64)
def _programs(spec: ProblemSpec, cfg: TrainConfig, batched: bool) -> _Programs:
    steps = _Steps(spec, cfg)
    data_axis = 0 if batched else None

    def chunk(block, n_blocks):
        return lambda carry, a: jax.lax.scan(lambda s, _: block(s, a), carry, None, length=n_blocks)

    n_adam = _blocks_per_chunk(cfg.adam_steps, cfg.record_every) if cfg.adam_steps else 0
    n_refine = _blocks_per_chunk(cfg.refine_steps, cfg.record_every) if cfg.refine_steps else 0
    adam = jax.jit(jax.vmap(chunk(steps.adam_block, n_adam), in_axes=(0, data_axis))) if n_adam else None
    refine = None
    if n_refine:
        # L-BFGS's line search is a while loop: under vmap every member would run as many
        # evaluations as the slowest one, so members run one after another instead.
        run = chunk(steps.refine_block, n_refine)
        if batched:
            refine = jax.jit(lambda carry, a: jax.lax.map(lambda ca: run(*ca), (carry, a)))
        else:
            refine = jax.jit(lambda carry, a: jax.lax.map(lambda c: run(c, a), carry))
    init = jax.jit(jax.vmap(steps.init, in_axes=(0, data_axis)))
    return _Programs(init, adam, refine, n_adam, n_refine)


ProgressFn = Callable[[str, int, int], None]  # (phase, steps done, steps total)


class _Monitor:
    """Collects records, finds the first non-finite loss of each member, reports progress."""

    def __init__(self, cfg: TrainConfig, seeds, progress: ProgressFn | None, raise_on_divergence: bool):
        self.cfg, self.seeds, self.progress, self.raise_on_divergence = cfg, seeds, progress, raise_on_divergence
        self.records: list[Record] = []
        self.phases: list[np.ndarray] = []
        self.diverged_step = np.full(len(seeds), -1)
        self.done = 0

    def add(self, rec: Record, phase: str) -> bool:
        """Take a chunk's records (K, n); return True once every member has diverged."""
        rec = Record(*(np.asarray(x) for x in rec))
        loss = rec.loss_data + rec.loss_phys
        steps = self.done + self.cfg.record_every * np.arange(1, loss.shape[1] + 1)
        bad = ~np.isfinite(loss)
        for k in np.where(bad.any(axis=1) & (self.diverged_step < 0))[0]:
            self.diverged_step[k] = steps[np.argmax(bad[k])]
        self.records.append(rec)
        self.phases.append(np.full(loss.shape[1], 0 if phase == "adam" else 1))
        self.done = int(steps[-1])
        if self.progress:
            self.progress(phase, self.done, self.cfg.adam_steps + self.cfg.refine_steps)
        diverged = self.diverged_step >= 0
        if self.raise_on_divergence and diverged.any():
            k = int(np.argmax(diverged))
            raise TrainingDiverged(
                f"method {self.cfg.method}: the loss became NaN or infinite at step {self.diverged_step[k]} "
                f"({phase} phase, seed {int(self.seeds[k])}); try a smaller --lr or another --lam-ref")
        return bool(diverged.all())

    def history(self) -> History:
        records = Record(*(np.concatenate(xs, axis=1) for xs in zip(*self.records)))
        n = records.loss_data.shape[1]
        return History(self.cfg.record_every * np.arange(1, n + 1), np.concatenate(self.phases), records)


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
    with precision_scope(cfg):
        arrays = jax.tree.map(lambda x: jnp.asarray(x, PRECISIONS[cfg.precision]), problem.arrays)
        return _train(problem.spec, arrays, problem.batched, cfg, seeds, _Monitor(cfg, seeds, progress,
                                                                                  raise_on_divergence))


def precision_scope(cfg: TrainConfig):
    """JAX's x64 mode for float64 training only: the rest of the process stays float32."""
    return jax.enable_x64(True) if cfg.precision == "float64" else nullcontext()


def _train(spec: ProblemSpec, arrays: ProblemArrays, batched: bool, cfg: TrainConfig, seeds: list[int],
           monitor: _Monitor) -> TrainResult:
    programs = _programs(spec, cfg, batched)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    t0 = time.perf_counter()
    adam_state, lbfgs_state = programs.init(keys, arrays)
    refine_state = _RefineState((adam_state.theta, adam_state.phi), lbfgs_state,
                                jnp.full(len(seeds), jnp.inf, arrays.u0.dtype), jnp.zeros(len(seeds), bool))
    adam = programs.adam.lower(adam_state, arrays).compile() if programs.adam else None
    refine = programs.refine.lower(refine_state, arrays).compile() if programs.refine else None
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    all_diverged = False
    for _ in range(cfg.adam_steps // (cfg.record_every * programs.adam_blocks) if adam else 0):
        adam_state, rec = adam(adam_state, arrays)
        if all_diverged := monitor.add(rec, "adam"):
            break
    theta_adam = np.asarray(adam_state.theta)
    log_rates_adam = np.array(adam_state.phi[0], dtype=float)
    adam_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    refine_state = refine_state._replace(params=(adam_state.theta, adam_state.phi))
    for _ in range(cfg.refine_steps // (cfg.record_every * programs.refine_blocks) if refine and not all_diverged else 0):
        refine_state, rec = refine(refine_state, arrays)
        if monitor.add(rec, "refine"):
            break
    theta, (log_rates, log_rho, log_u0) = jax.block_until_ready(refine_state.params)
    refine_s = time.perf_counter() - t0

    # np.array copies: float64 device buffers come back as read-only views
    estimates = [np.array(x, dtype=float) for x in (log_rates, log_rho, log_u0)]
    for x in (*estimates, log_rates_adam):
        x[monitor.diverged_step >= 0] = np.nan
    return TrainResult(*estimates, log_rates_adam=log_rates_adam, theta=np.asarray(theta), theta_adam=theta_adam,
                       history=monitor.history(), diverged_step=monitor.diverged_step, compile_s=compile_s,
                       adam_s=adam_s, refine_s=refine_s)


def network_states(model, cfg: TrainConfig, theta: np.ndarray, tau: np.ndarray, u0: np.ndarray) -> np.ndarray:
    """The networks' compartments, in the training precision.

    Args:
        theta: (K, P) network weights; tau: (G,) scaled times; u0: (K, s) initial fractions.
    Returns:
        (K, G, s) population fractions.
    """
    network = make_network(model, cfg.network)
    with precision_scope(cfg):
        dtype = PRECISIONS[cfg.precision]
        states = jax.jit(jax.vmap(network.states, in_axes=(0, None, 0)))
        return np.array(states(jnp.asarray(theta, dtype), jnp.asarray(tau, dtype), jnp.asarray(u0, dtype)))
