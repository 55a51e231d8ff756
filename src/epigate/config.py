"""How to train: the settings of the two-phase recipe and the balancing strategy they select
(docs/method.md, "The training recipe")."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import jax.numpy as jnp

from . import balancing
from .pinn import NetworkConfig

PRECISIONS = {"float32": jnp.float32, "float64": jnp.float64}


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Attributes:
        method: balancing strategy for the first-order phase (see ``balancing.METHODS``).
        pretrain_steps: Adam steps on the physics alone at the guess rates, before any data.
        adam_steps: first-order steps (the balancing strategy's phase).
        refine_steps: L-BFGS iterations of the refinement phase in all (0 skips it), split
            evenly over ``refine_rounds`` augmented-Lagrangian rounds.
        refine_rounds: augmented-Lagrangian rounds; round r weighs the physics
            ``min(1, lam_ref 10^(r // 2))``.
        learning_rate: Adam's initial step size (cosine decay over each Adam phase).
        lam_ref: reference physics weight: the weight of ``fixed``, ``pcgrad``, ``config`` and
            ``gate_only``, the ceiling of ``cggs``/``magnitude``, and the first refinement weight.
        physics_ramp: in the first-order phase the physics gradient is multiplied by a factor
            rising geometrically from ``physics_ramp`` to 1 (continuation from the data towards
            the ODE), for every method alike.
        floor_ratio: floor of ``cggs``/``magnitude`` and the ``floor`` control, times lam_ref.
        fixed_weight: overrides lam_ref as the weight of the ``fixed`` method.
        kappa, gate_threshold: sharpness and threshold of the CGGS gate sigmoid(kappa (c - threshold)).
        alpha: EMA factor of adaptive weights (1 = instantaneous).
        record_every: steps between history records (must divide every phase's step count).
        lbfgs_memory: number of past updates L-BFGS keeps for its curvature estimate.
        outer_steps: outer Gauss-Newton steps on the estimated numbers after the refinement, the
            network re-solving the ODE at each (``reduced.py``; 0 skips the phase); ``fit`` reports
            the point of the path the exact ODE fits best.
        resolve_steps: L-BFGS iterations of each re-solve.
        restart_steps: outer steps of the second start (0: none): where the estimates differ from
            least squares' (``FitResult.agrees``), ``fit`` runs a second outer phase from the rates
            where training started (docs/method.md, "The second start").
        restart_resolve_steps: L-BFGS iterations of each of the second start's re-solves.
        precision: ``float64`` (JAX's x64 mode for this training only; the default) or
            ``float32`` (the demo trains no faster in it: its L-BFGS line searches take longer).
    """

    method: str = "cggs"
    pretrain_steps: int = 1000
    adam_steps: int = 2000
    refine_steps: int = 1600
    refine_rounds: int = 8
    learning_rate: float = 2e-3
    lam_ref: float = 0.01
    physics_ramp: float = 0.01
    floor_ratio: float = 0.1
    fixed_weight: float | None = None
    kappa: float = 5.0
    gate_threshold: float = 0.0
    alpha: float = 0.1
    record_every: int = 50
    lbfgs_memory: int = 20
    outer_steps: int = 50
    resolve_steps: int = 300
    restart_steps: int = 150
    restart_resolve_steps: int = 1000
    precision: str = "float64"
    network: NetworkConfig = field(default_factory=NetworkConfig)

    def __post_init__(self):
        if self.method not in balancing.METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(balancing.METHODS)}")
        steps = (self.pretrain_steps, self.adam_steps, self.refine_steps)
        if min(steps) < 0 or self.adam_steps + self.refine_steps == 0:
            raise ValueError(f"step counts must be >= 0 and adam + refine > 0, got {steps}")
        if self.record_every < 1 or self.refine_rounds < 1:
            raise ValueError("record_every and refine_rounds must be >= 1")
        for name in ("pretrain_steps", "adam_steps"):
            if getattr(self, name) % self.record_every:
                raise ValueError(f"{name} ({getattr(self, name)}) must be a multiple of record_every "
                                 f"({self.record_every})")
        unit = self.refine_rounds * self.record_every
        if self.refine_steps % unit:
            raise ValueError(f"refine_steps ({self.refine_steps}) must be a multiple of refine_rounds x record_every "
                             f"({self.refine_rounds} x {self.record_every} = {unit})")
        if self.outer_steps < 0 or self.resolve_steps < 1:
            raise ValueError(f"outer_steps must be >= 0 and resolve_steps >= 1, got {self.outer_steps} and "
                             f"{self.resolve_steps}")
        if self.restart_steps < 0 or self.restart_resolve_steps < 1:
            raise ValueError(f"restart_steps must be >= 0 and restart_resolve_steps >= 1, got {self.restart_steps} "
                             f"and {self.restart_resolve_steps}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be float32 or float64, got {self.precision!r}")
        if not self.learning_rate > 0 or not self.lam_ref > 0 or not 0 < self.alpha <= 1:
            raise ValueError("learning_rate and lam_ref must be > 0 and alpha in (0, 1]")
        if not 0 < self.physics_ramp <= 1:
            raise ValueError(f"physics_ramp must be in (0, 1], got {self.physics_ramp}")

    @property
    def total_steps(self) -> int:
        return self.pretrain_steps + self.adam_steps + self.refine_steps + self.outer_steps * self.resolve_steps

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
        "gate_only": lambda: balancing.gate_only(ref, cfg.kappa, cfg.gate_threshold, cfg.alpha),
        "cggs": lambda: balancing.cggs(cfg.kappa, cfg.gate_threshold, lo, ref, cfg.alpha, lam_init=ref),
        "cggs_literal": lambda: balancing.cggs(cfg.kappa, cfg.gate_threshold, name="cggs_literal"),
    }[cfg.method]()


# the settings read only by make_strategy: programs of the other phases do not depend on them
STRATEGY_FIELDS = ("method", "fixed_weight", "kappa", "gate_threshold", "alpha", "floor_ratio")


def strategy_neutral(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the strategy's own settings at their defaults: equal for every method."""
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.name in STRATEGY_FIELDS}
    return replace(cfg, **defaults)


def config_fields(cfg: TrainConfig) -> dict:
    """Every setting of ``cfg``, defaults included, as plain values (for result files and fingerprints)."""
    out = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        out[f.name] = config_fields(value) if f.name == "network" else value
    return out
