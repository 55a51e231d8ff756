"""Scenarios, presets and cells of the benchmark grid."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from ..config import TrainConfig
from ..models import SEIR, CompartmentalModel

NOISES = {  # name -> (noise model, level)
    "0%": ("none", 0.0),
    "5%": ("gaussian", 0.05),
    "10%": ("gaussian", 0.10),
    "20%": ("gaussian", 0.20),
    "poisson": ("poisson", 0.0),
    "negbin": ("negbin", 0.0),
}


@dataclass(frozen=True)
class Scenario:
    """A synthetic outbreak of ``model`` (SEIR unless said otherwise).

    ``stiff``: a fast incubation (1 day) and high transmission (R0 = 5 with a 3-day infectious
    period) give a sharp peak on day ~13 of a 40-day window: most of the dynamics happen in a few
    observation intervals, the residual's time scale is short relative to the horizon, and a fixed
    physics weight tuned for the baseline is far too stiff or too weak here.
    ``partial``: only I is observed; E and R are never seen.
    """

    name: str
    params: dict
    horizon: float
    observe: tuple[str, ...]
    population: float = 1e5
    initial: dict = field(default_factory=lambda: {"E": 1e-3, "I": 1e-3})
    model: CompartmentalModel = SEIR


SCENARIOS = {
    "baseline": Scenario("baseline", {"beta": 0.5, "sigma": 0.2, "gamma": 0.1}, 100.0, ("I", "R")),
    "stiff": Scenario("stiff", {"beta": 1.5, "sigma": 1.0, "gamma": 0.3}, 40.0, ("I", "R"), population=1e6),
    "partial": Scenario("partial", {"beta": 0.5, "sigma": 0.2, "gamma": 0.1}, 100.0, ("I",)),
}

# "fixed_best" is resolved to a fixed weight chosen by a sweep on separate seeds
METHODS = ("fixed", "fixed_best", "floor", "magnitude", "lra", "pcgrad", "config", "gate_only", "cggs")


@dataclass(frozen=True)
class Preset:
    name: str
    scenarios: tuple[str, ...]
    noises: tuple[str, ...]
    n_obs: tuple[int, ...]
    methods: tuple[str, ...]
    seeds: int
    adam_steps: int
    refine_steps: int
    width: int = 64
    pretrain_steps: int = 1000
    refine_rounds: int = 8
    n_colloc: int = 512
    precision: str = "float64"
    record_every: int = 50
    # the product's outer phase (reduced.py) is the same for every method and ends where least
    # squares does; tiny/quick/standard compare the phases before it, full runs it as fit does
    outer_steps: int = 0
    sweep_weights: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03)
    sweep_seeds: int = 3

    def settings(self) -> dict:
        return asdict(self)

    def fingerprint(self) -> str:
        """Hash of every setting, the training defaults they imply and the package version: results
        of different settings never mix."""
        from .. import __version__
        from ..config import config_fields
        from .runner import train_config

        training = {m: config_fields(train_config(self, m)) for m in self.methods}
        text = json.dumps({"preset": self.settings(), "training": training, "version": __version__}, sort_keys=True,
                          default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fit_recipe(name: str, seeds: int) -> Preset:
    """The whole grid trained as ``epigate fit`` trains (``TrainConfig``'s defaults, outer phase
    included), so that the preset follows the product's recipe when it changes. The benchmark
    (``fit_batch``) never runs ``fit``'s second start, a retry on rejected fits that belongs to no
    balancing method."""
    cfg = TrainConfig()
    return Preset(name, ("baseline", "stiff", "partial"), tuple(NOISES), (10, 20, 40), METHODS, seeds=seeds,
                  adam_steps=cfg.adam_steps, refine_steps=cfg.refine_steps, width=cfg.network.width,
                  pretrain_steps=cfg.pretrain_steps, refine_rounds=cfg.refine_rounds, n_colloc=cfg.network.n_colloc,
                  precision=cfg.precision, record_every=cfg.record_every, outer_steps=cfg.outer_steps)


PRESETS = {
    "tiny": Preset("tiny", ("baseline",), ("5%",), (10,), ("fixed", "floor", "cggs"), seeds=2,
                   adam_steps=100, refine_steps=100, width=16, pretrain_steps=50, refine_rounds=2, n_colloc=32,
                   precision="float32", sweep_weights=(0.003, 0.01), sweep_seeds=1),
    "quick": Preset("quick", ("baseline", "stiff", "partial"), ("5%",), (20,), METHODS, seeds=10,
                    adam_steps=1000, refine_steps=800, width=32, pretrain_steps=300, refine_rounds=4, n_colloc=128,
                    precision="float32"),
    # the whole grid at the quick training budget, with the 16 seeds that Holm's correction over
    # each phase's 864 comparisons needs; 104.8 min on 2 cores with release 0.2.7 (docs/benchmarks.md)
    "standard": Preset("standard", ("baseline", "stiff", "partial"), tuple(NOISES), (10, 20, 40), METHODS,
                       seeds=16, adam_steps=1000, refine_steps=800, width=32, pretrain_steps=300, refine_rounds=4,
                       n_colloc=128, precision="float32"),
    "full": _fit_recipe("full", seeds=10),
}


@dataclass(frozen=True)
class Cell:
    scenario: str
    noise: str
    n_obs: int

    @property
    def id(self) -> str:
        return f"{self.scenario}_{self.noise.replace('%', 'pct')}_n{self.n_obs}"


def cells(preset: Preset) -> list[Cell]:
    return [Cell(s, z, n) for s in preset.scenarios for z in preset.noises for n in preset.n_obs]
