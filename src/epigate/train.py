"""Training: one compiled loop for every balancing strategy, many seeds at once.

Two phases, the same for every method (see docs/method.md for why):

1. **First-order phase** (Adam): the strategy under test combines the data and physics gradients
   of the network weights; the rates get the physics gradient alone, ungated, and estimated
   reporting fractions the data gradient alone.
2. **Refinement phase** (L-BFGS): ``L_data + lam_ref * L_phys`` over everything, at the fixed
   reference weight. At a stationary point the two gradients are exactly opposite (c = -1), so
   no gate may set the weight here: it would switch physics off precisely at convergence.

Both phases run ``record_every`` steps per ``lax.scan`` iteration inside a compiled chunk; a chunk
is called repeatedly from Python, which checks for divergence and advances the progress bar.
Everything is ``vmap``-ed over a leading seed axis (K networks trained at once).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import balancing
from .pinn import NetworkConfig, Problem, ProblemSpec, initial_phi, make_losses, make_network


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Attributes:
        method: balancing strategy for the first-order phase (see ``balancing.METHODS``).
        adam_steps: first-order steps.
        refine_steps: L-BFGS iterations of the refinement phase (0 skips it).
        learning_rate: Adam's step size.
        lam_ref: reference physics weight: the refinement weight, the weight of ``fixed``,
            ``pcgrad``, ``config`` and ``gate_only``, and the ceiling of ``cggs``/``magnitude``.
        floor_ratio: floor of ``cggs``/``magnitude`` and the ``floor`` control, times lam_ref.
        fixed_weight: overrides lam_ref as the weight of the ``fixed`` method (e.g. 1.0).
        kappa, tau: sharpness and threshold of the CGGS gate.
        alpha: EMA factor of adaptive weights (1 = instantaneous).
        record_every: steps between history records (must divide both step counts).
        lbfgs_memory: number of past updates L-BFGS keeps for its curvature estimate.
        profile_rates: in the refinement phase, eliminate the rates in closed form (they enter the
            residual linearly) instead of iterating on them; same objective, far better conditioned.
        refine_growth: multiply the refinement weight by this after every compiled chunk (1000
            iterations), restarting L-BFGS's memory: penalty continuation. Measured worse; kept for
            the record in docs/method.md.
        profile_rates_adam: use the closed-form rates in the first-order phase too (measured:
            better Adam-phase estimates, the same final ones).
        precision: ``float32`` (fast) or ``float64`` (JAX's x64 mode for this training only:
            about 2x slower, and L-BFGS can refine further before it stalls).
        residual: ``absolute`` (in population fractions, the default) or ``log`` (the residual of
            log u for S..I, i.e. relative, so the first weeks when E and I are tiny count as much
            as the peak). Measured worse on the demo (docs/method.md); kept for that record.
    """

    method: str = "cggs"
    adam_steps: int = 6000
    refine_steps: int = 6000
    learning_rate: float = 1e-3
    lam_ref: float = 1.0
    floor_ratio: float = 0.1
    fixed_weight: float | None = None
    kappa: float = 5.0
    tau: float = 0.0
    alpha: float = 0.1
    record_every: int = 50
    lbfgs_memory: int = 10
    refine_growth: float = 1.0
    profile_rates_adam: bool = False
    profile_rates: bool = True
    precision: str = "float32"
    residual: str = "absolute"
    network: NetworkConfig = field(default_factory=NetworkConfig)

    def __post_init__(self):
        if self.method not in balancing.METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(balancing.METHODS)}")
        if self.adam_steps < 0 or self.refine_steps < 0 or self.adam_steps + self.refine_steps == 0:
            raise ValueError(f"step counts must be >= 0 and not both 0, got {self.adam_steps}, {self.refine_steps}")
        if self.record_every < 1:
            raise ValueError("record_every must be >= 1")
        for name in ("adam_steps", "refine_steps"):
            if getattr(self, name) % self.record_every:
                raise ValueError(f"{name} ({getattr(self, name)}) must be a multiple of record_every ({self.record_every})")
        if self.residual not in ("absolute", "log"):
            raise ValueError(f"residual must be absolute or log, got {self.residual!r}")
        if self.precision not in ("float32", "float64"):
            raise ValueError(f"precision must be float32 or float64, got {self.precision!r}")
        if not self.learning_rate > 0 or not self.lam_ref > 0 or not 0 < self.alpha <= 1:
            raise ValueError("learning_rate and lam_ref must be > 0 and alpha in (0, 1]")

    @property
    def floor(self) -> float:
        return self.floor_ratio * self.lam_ref


def make_strategy(cfg: TrainConfig) -> balancing.Strategy:
    """The balancing strategy of ``cfg.method`` under the shared recipe."""
    ref, lo = cfg.lam_ref, cfg.floor
    return {
        "fixed": lambda: balancing.fixed(cfg.fixed_weight if cfg.fixed_weight is not None else ref),
        "floor": lambda: balancing.fixed(lo, name="floor"),
        "magnitude": lambda: balancing.magnitude(cfg.alpha, lo, ref, lam_init=ref),
        "lra": lambda: balancing.lra(0.1, lam_init=ref),
        "pcgrad": lambda: balancing.pcgrad(ref),
        "config": lambda: balancing.config(ref),
        "gate_only": lambda: balancing.gate_only(ref, cfg.kappa, cfg.tau, cfg.alpha),
        "cggs": lambda: balancing.cggs(cfg.kappa, cfg.tau, lo, ref, cfg.alpha, lam_init=ref),
        "cggs_literal": lambda: balancing.cggs(cfg.kappa, cfg.tau, name="cggs_literal"),
    }[cfg.method]()


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


RECORD_KEYS = ("loss_data", "loss_phys", "c", "c_mean", "m", "lam", "norm_data", "norm_phys")


@dataclass
class TrainResult:
    """Output of :func:`train` for K networks (leading axis K everywhere).

    Attributes:
        log_rates: (K, p) final log rates (NaN rows for diverged members).
        log_rho: (K, k) final log reporting fractions.
        log_u0: (K, s) final log initial fractions (known values where not estimated; S unused).
        log_rates_adam: (K, p) log rates at the end of the first-order phase.
        theta: (K, P) final network weights.
        history: ``step`` (R,), ``phase`` (R,) 0 = Adam, 1 = refinement, each of RECORD_KEYS
            (K, R), ``log_rates`` (K, R, p).
        diverged_step: (K,) first recorded step with a non-finite loss, -1 if none.
        compile_s, train_s: seconds spent compiling and training (adam_s + refine_s).
        theta_adam: (K, P) network weights at the end of the first-order phase.
    """

    log_rates: np.ndarray
    log_rho: np.ndarray
    log_u0: np.ndarray
    log_rates_adam: np.ndarray
    theta: np.ndarray
    history: dict
    diverged_step: np.ndarray
    compile_s: float
    train_s: float
    adam_s: float = 0.0
    refine_s: float = 0.0
    theta_adam: np.ndarray | None = None

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_step >= 0


STALL_RTOL = 1e-7  # a refinement block that lowers the objective by less than this has stalled


class _Refine(NamedTuple):
    params: tuple  # (theta, phi)
    opt_state: object
    lam: jax.Array  # physics weight of the refinement objective
    last_value: jax.Array  # objective at the end of the previous block
    stalled: jax.Array  # bool: no progress in the last block


def _fresh_refine(params, opt_state, lam) -> _Refine:
    K = lam.shape[0]
    return _Refine(params, opt_state, lam, jnp.full(K, jnp.inf, lam.dtype), jnp.zeros(K, bool))


class _State(NamedTuple):
    theta: jax.Array
    phi: tuple
    opt_state: object
    lam: jax.Array


def _chunk_records(total: int, every: int, target_steps: int = 1000) -> int:
    """Records per compiled chunk: the largest divisor of total/every giving <= target_steps."""
    n = total // every
    best = 1
    for d in range(1, n + 1):
        if n % d == 0 and d * every <= max(target_steps, every):
            best = d
    return best


@functools.lru_cache(maxsize=64)
def _compiled(spec: ProblemSpec, cfg: TrainConfig, batched_data: bool):
    """Build (and cache) the jitted, vmapped init, Adam-chunk and L-BFGS-chunk functions."""
    network = make_network(spec.model, cfg.network)
    losses_and_rates = make_losses(spec, network, residual=cfg.residual)
    losses = lambda th, ph, a: losses_and_rates(th, ph, a)[0]
    profiled = make_losses(spec, network, profile_rates=True, residual=cfg.residual) if cfg.profile_rates else losses_and_rates
    strategy = make_strategy(cfg)
    adam = optax.adam(cfg.learning_rate)
    jac = jax.jacrev(lambda th, ph, a: (losses(th, ph, a),) * 2, argnums=(0, 1), has_aux=True)
    lbfgs = optax.lbfgs(memory_size=cfg.lbfgs_memory)
    every = cfg.record_every
    data_axis = 0 if batched_data else None

    def stats(theta, phi, a):
        (j_theta, _), L = jac(theta, phi, a)
        c, m, nd, np_ = balancing.gradient_stats(j_theta[0], j_theta[1])
        return L, c, m, nd, np_

    def init(key, a):
        theta = network.init(key)
        phi = initial_phi(spec, a)
        return _State(theta, phi, adam.init((theta, phi)), strategy.init()), lbfgs.init((theta, phi))

    def _profiled_with_aux(th, ph, a):
        out = profiled(th, ph, a)
        return out[0], out

    jac_profiled = jax.jacrev(_profiled_with_aux, argnums=(0, 1), has_aux=True)

    def adam_step(state: _State, a):
        if cfg.profile_rates_adam:
            (j_theta, j_phi), (L, log_rates) = jac_profiled(state.theta, state.phi, a)
        else:
            (j_theta, j_phi), L = jac(state.theta, state.phi, a)
        direction, lam, info = strategy.update(j_theta[0], j_theta[1], state.lam)
        # rates: physics gradient only; rho: data only; initial values: both (they shape the network)
        g_phi = jax.tree.map(lambda j: j[0] + j[1], j_phi)
        updates, opt_state = adam.update((direction, g_phi), state.opt_state, (state.theta, state.phi))
        theta, phi = optax.apply_updates((state.theta, state.phi), updates)
        if cfg.profile_rates_adam:
            phi = (log_rates, *phi[1:])
        return _State(theta, phi, opt_state, lam), (L, info)

    def adam_record(state, a):
        def body(s, _):
            return adam_step(s, a)

        state, (L, info) = jax.lax.scan(body, state, None, length=every)
        rec = {"loss_data": L[-1, 0], "loss_phys": L[-1, 1], "c": info["c"][-1], "c_mean": info["c"].mean(),
               "m": info["m"][-1], "lam": info["lam"][-1], "norm_data": info["norm_data"][-1],
               "norm_phys": info["norm_phys"][-1], "log_rates": state.phi[0]}
        return state, rec

    def lbfgs_record(r: "_Refine", a):
        objective = lambda params: profiled(params[0], params[1], a)[0] @ jnp.stack([1.0, r.lam])
        value_and_grad = optax.value_and_grad_from_state(objective)

        def body(c, _):
            params, opt_state = c
            value, grad = value_and_grad(params, state=opt_state)
            updates, new_state = lbfgs.update(grad, opt_state, params, value=value, grad=grad, value_fn=objective)
            new_params = optax.apply_updates(params, updates)
            # A line-search step into a region where the network overflows would poison the run:
            # refuse it, keep the last good point and restart L-BFGS's memory from there.
            finite = lambda tree: jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))
            ok = finite(new_params) & finite(optax.tree_utils.tree_get(new_state, "value")) & finite(
                optax.tree_utils.tree_get(new_state, "grad"))
            keep = lambda new, old: jax.tree.map(lambda x, y: jnp.where(ok, x, y), new, old)
            return (keep(new_params, params), keep(new_state, lbfgs.init(params))), None

        # Once a whole block makes no progress the line search only burns evaluations (float32 has
        # reached its resolution): skip the remaining blocks of this member.
        (theta, phi), opt_state = jax.lax.cond(
            r.stalled, lambda c: c, lambda c: jax.lax.scan(body, c, None, length=every)[0], (r.params, r.opt_state))
        if cfg.profile_rates:  # keep phi's rates equal to the profiled optimum
            phi = (profiled(theta, phi, a)[1], *phi[1:])
        value = objective((theta, phi))
        stalled = r.stalled | ~(value < r.last_value * (1.0 - STALL_RTOL))
        L, c, m, nd, np_ = stats(theta, phi, a)
        rec = {"loss_data": L[0], "loss_phys": L[1], "c": c, "c_mean": c, "m": m, "lam": r.lam,
               "norm_data": nd, "norm_phys": np_, "log_rates": phi[0]}
        return _Refine((theta, phi), opt_state, r.lam, value, stalled), rec

    def chunk(record_fn, n_records, vectorise=True):
        def run(carry, a):
            return jax.lax.scan(lambda s, _: record_fn(s, a), carry, None, length=n_records)

        if vectorise:
            return jax.jit(jax.vmap(run, in_axes=(0, data_axis)))
        # L-BFGS's line search is a while loop: under vmap every member would run as many
        # evaluations as the slowest one, so members run one after another instead.
        if batched_data:
            return jax.jit(lambda carry, a: jax.lax.map(lambda ca: run(*ca), (carry, a)))
        return jax.jit(lambda carry, a: jax.lax.map(lambda c: run(c, a), carry))

    n_adam = _chunk_records(cfg.adam_steps, every) if cfg.adam_steps else 0
    n_lbfgs = _chunk_records(cfg.refine_steps, every) if cfg.refine_steps else 0
    return {
        "init": jax.jit(jax.vmap(init, in_axes=(0, data_axis))),
        "adam": chunk(adam_record, n_adam) if n_adam else None,
        "lbfgs": chunk(lbfgs_record, n_lbfgs, vectorise=False) if n_lbfgs else None,
        "lbfgs_init": jax.jit(jax.vmap(lbfgs.init)),
        "n_adam": n_adam,
        "n_lbfgs": n_lbfgs,
    }


ProgressFn = Callable[[str, int, int], None]  # (phase, steps done, steps total)


def train(problem: Problem, cfg: TrainConfig, seeds, *, batched_data: bool = False,
          progress: ProgressFn | None = None, raise_on_divergence: bool = True) -> TrainResult:
    """Train one network per seed, all at once.

    Args:
        problem: from :func:`epigate.pinn.build_problem`. With ``batched_data`` its arrays carry a
            leading axis K (one data set per seed, e.g. noise replicates); otherwise all seeds
            share the data.
        seeds: K integer seeds (network initialisation).
        raise_on_divergence: raise :class:`TrainingDiverged` if any member's loss becomes
            non-finite; otherwise mark it in ``diverged_step`` and set its estimates to NaN.
    """
    kwargs = dict(batched_data=batched_data, progress=progress, raise_on_divergence=raise_on_divergence)
    if cfg.precision == "float64":
        with jax.enable_x64(True):  # only for this training: the rest of the process stays float32
            arrays = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), problem.arrays)
            return _train(Problem(problem.spec, arrays), cfg, seeds, **kwargs)
    return _train(problem, cfg, seeds, **kwargs)


def _train(problem: Problem, cfg: TrainConfig, seeds, *, batched_data: bool, progress: ProgressFn | None,
           raise_on_divergence: bool) -> TrainResult:
    spec, arrays = problem.spec, problem.arrays
    dtype = arrays.u0.dtype
    fns = _compiled(spec, cfg, batched_data)
    keys = jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])
    K = keys.shape[0]
    total = cfg.adam_steps + cfg.refine_steps

    t0 = time.perf_counter()
    compiled = {}
    state, lbfgs_state = fns["init"](keys, arrays)
    if fns["adam"] is not None:
        compiled["adam"] = fns["adam"].lower(state, arrays).compile()
    if fns["lbfgs"] is not None:
        refine0 = _fresh_refine((state.theta, state.phi), lbfgs_state, jnp.full(K, cfg.lam_ref, dtype))
        compiled["lbfgs"] = fns["lbfgs"].lower(refine0, arrays).compile()
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    records, phases = [], []
    diverged_step = np.full(K, -1)
    done = 0

    def check(rec, phase_name):
        nonlocal done
        loss = np.asarray(rec["loss_data"]) + np.asarray(rec["loss_phys"])  # (K, n)
        steps = done + cfg.record_every * np.arange(1, loss.shape[1] + 1)
        bad = ~np.isfinite(loss)
        for k in np.where(bad.any(axis=1) & (diverged_step < 0))[0]:
            diverged_step[k] = steps[np.argmax(bad[k])]
        records.append(rec)
        phases.append(np.full(loss.shape[1], 0 if phase_name == "adam" else 1))
        done = int(steps[-1])
        if progress:
            progress(phase_name, done, total)
        if raise_on_divergence and (diverged_step >= 0).any():
            k = int(np.argmax(diverged_step >= 0))
            raise TrainingDiverged(
                f"method {cfg.method}: the loss became NaN or infinite at step {diverged_step[k]} "
                f"({phase_name} phase, seed {int(seeds[k])}); try a smaller --lr or another --lam-ref")
        return bool((diverged_step >= 0).all())

    all_bad = False
    for _ in range(cfg.adam_steps // (cfg.record_every * max(fns["n_adam"], 1)) if fns["n_adam"] else 0):
        state, rec = compiled["adam"](state, arrays)
        if all_bad := check(rec, "adam"):
            break
    log_rates_adam = np.array(state.phi[0], dtype=float)
    theta_adam = np.asarray(state.theta)
    adam_s = time.perf_counter() - t0
    lam_refine = np.full(K, cfg.lam_ref, dtype=dtype)
    carry = _fresh_refine((state.theta, state.phi), lbfgs_state, jnp.asarray(lam_refine))
    if fns["n_lbfgs"] and not all_bad:
        for _ in range(cfg.refine_steps // (cfg.record_every * fns["n_lbfgs"])):
            carry, rec = compiled["lbfgs"](carry, arrays)
            if cfg.refine_growth != 1.0:  # continuation: a larger weight, and a fresh L-BFGS memory
                lam_refine = lam_refine * cfg.refine_growth
                carry = _fresh_refine(carry.params, fns["lbfgs_init"](carry.params), jnp.asarray(lam_refine))
            if check(rec, "refine"):
                break
    theta, phi = jax.block_until_ready(carry.params)
    train_s = time.perf_counter() - t0

    history = {key: np.concatenate([np.asarray(r[key]) for r in records], axis=1) for key in records[0]}
    n_rec = history["loss_data"].shape[1]
    history["step"] = cfg.record_every * np.arange(1, n_rec + 1)
    history["phase"] = np.concatenate(phases)
    log_rates = np.array(phi[0], dtype=float)
    log_rho = np.array(phi[1], dtype=float)
    log_u0 = np.array(phi[2], dtype=float)
    bad = diverged_step >= 0
    log_rates[bad] = np.nan
    log_rho[bad] = np.nan
    log_u0[bad] = np.nan
    log_rates_adam[bad] = np.nan
    return TrainResult(log_rates=log_rates, log_rho=log_rho, log_u0=log_u0, log_rates_adam=log_rates_adam,
                       theta=np.asarray(theta), history=history, diverged_step=diverged_step,
                       compile_s=compile_s, train_s=train_s, adam_s=adam_s, refine_s=train_s - adam_s,
                       theta_adam=theta_adam)
