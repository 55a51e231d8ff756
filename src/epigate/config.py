"""How to train: the settings of the two-phase recipe and the balancing strategy they select
(docs/method.md, "The training recipe")."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import jax.numpy as jnp

from . import balancing
from .pinn import NetworkConfig

PRECISIONS = {"float32": jnp.float32, "float64": jnp.float64}


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
        kappa, gate_threshold: sharpness and threshold of the CGGS gate sigmoid(kappa (c - threshold)).
        alpha: EMA factor of adaptive weights (1 = instantaneous).
        record_every: steps between history records (must divide both step counts).
        lbfgs_memory: number of past updates L-BFGS keeps for its curvature estimate.
        precision: ``float32`` (fast) or ``float64`` (JAX's x64 mode for this training only:
            about 2x slower, and L-BFGS can refine further before it stalls).
    """

    method: str = "cggs"
    adam_steps: int = 6000
    refine_steps: int = 6000
    learning_rate: float = 1e-3
    lam_ref: float = 1.0
    floor_ratio: float = 0.1
    fixed_weight: float | None = None
    kappa: float = 5.0
    gate_threshold: float = 0.0
    alpha: float = 0.1
    record_every: int = 50
    lbfgs_memory: int = 10
    precision: str = "float32"
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
        if self.precision not in PRECISIONS:
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
        "gate_only": lambda: balancing.gate_only(ref, cfg.kappa, cfg.gate_threshold, cfg.alpha),
        "cggs": lambda: balancing.cggs(cfg.kappa, cfg.gate_threshold, lo, ref, cfg.alpha, lam_init=ref),
        "cggs_literal": lambda: balancing.cggs(cfg.kappa, cfg.gate_threshold, name="cggs_literal"),
    }[cfg.method]()


def config_fields(cfg: TrainConfig) -> dict:
    """Every setting of ``cfg``, defaults included, as plain values (for result files and fingerprints)."""
    out = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        out[f.name] = config_fields(value) if f.name == "network" else value
    return out
