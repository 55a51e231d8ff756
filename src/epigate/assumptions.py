"""What a fit assumes besides the model: known rates, reporting, the likelihood, the start.

One :class:`Assumptions` value is handed to the PINN (``pinn.build_problem``) and to least squares
(``classical.classical_fit``) alike, so both estimators answer the same question, and it is
validated in one place (:meth:`Assumptions.check`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .data import Observations
from .likelihood import check_likelihood
from .models import CompartmentalModel


class AssumptionError(ValueError):
    """An assumption the model or the data cannot meet; ``field`` and ``name`` say which."""

    def __init__(self, field_name: str, name: str, message: str):
        super().__init__(message)
        self.field, self.name = field_name, name


@dataclass(frozen=True)
class Assumptions:
    """Everything held known or chosen about a fit, shared by both estimators.

    Attributes:
        fixed: rates held at known values, per time unit of the data, e.g. ``{"sigma": 1/5.3}``.
        reporting: reporting fraction per observed channel; a number fixes it, None estimates it;
            channels not named are fully reported (1).
        likelihood: ``squared`` (scaled squared error), ``lognormal`` (squared error of the
            logarithms: noise proportional to the count; every observed value > 0), ``poisson`` or
            ``negbin`` (count deviance).
        dispersion: negative-binomial dispersion k (variance mu + mu^2 / k).
        estimate_initial: compartments whose initial value is estimated (never S); the others keep
            the values in ``Observations.initial``.
    """

    fixed: dict[str, float] = field(default_factory=dict)
    reporting: dict[str, float | None] = field(default_factory=dict)
    likelihood: str = "squared"
    dispersion: float = 10.0
    estimate_initial: tuple[str, ...] = ()

    def check(self, model: CompartmentalModel, obs: Observations) -> None:
        """Raise :class:`AssumptionError` (or ValueError for the likelihood or the data's channels)
        naming the first assumption that ``model`` and ``obs`` cannot meet."""
        obs.check_against(model)
        check_likelihood(self.likelihood, self.dispersion)
        if self.likelihood == "lognormal":
            rows, cols = np.nonzero(obs.values <= 0)  # NaN (missing) compares False
            if len(rows):
                i, j = rows[0], cols[0]
                raise AssumptionError("likelihood", "lognormal",
                                      f"the lognormal likelihood needs every observed value > 0, but "
                                      f"{obs.channels[j]} is {obs.values[i, j]:g} at t = {obs.t[i]:g} "
                                      f"({len(rows)} such value(s)); use squared, poisson or negbin")
        for name, value in self.fixed.items():
            if name not in model.params:
                raise AssumptionError("fixed", name, f"cannot fix {name!r}: model {model.name} has rates "
                                                     f"{', '.join(model.params)}")
            if not value > 0:
                raise AssumptionError("fixed", name, f"a fixed rate must be > 0, got {name} = {value:g}")
        for channel, value in self.reporting.items():
            if channel not in obs.channels:
                raise AssumptionError("reporting", channel, f"reporting fraction given for {channel!r}, which is "
                                                            f"not an observed channel ({', '.join(obs.channels)})")
            if value is not None and not 0 < value <= 1:
                raise AssumptionError("reporting", channel,
                                      f"a reporting fraction must be in (0, 1], got {channel} = {value:g}")
        for name in self.estimate_initial:
            if name not in model.states or name == "S":
                raise AssumptionError("estimate_initial", name,
                                      f"cannot estimate the initial value of {name!r}: model {model.name} has "
                                      f"{', '.join(model.states[1:])} (S is the rest)")

    def n_free(self, model: CompartmentalModel, channels) -> int:
        """How many numbers the fit estimates: free rates, reporting fractions, initial values."""
        n_rho = sum(1 for ch in channels if ch in self.reporting and self.reporting[ch] is None)
        return len(model.params) - len(self.fixed) + n_rho + len(self.estimate_initial)
