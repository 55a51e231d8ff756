"""Has a PINN fit converged to an answer? The checks behind ``status`` in result.json.

A fit is ``not_converged`` when any of these holds (each adds a reason):

- the ODE solved with the PINN's estimates (rates and start) fits the data more than
  ``MISFIT_LIMIT`` times worse than least squares under the same assumptions;
- a free rate sits at the floor of the PINN's search (``pinn.RATE_FLOOR``);
- a compartment of the network's trajectory goes below zero by more than half a person.

Least squares' own estimates at a bound of their search are flagged too, as warnings: the
reference itself is then not an interior optimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .classical import LOG_RATE_BOUNDS, LOG_RHO_BOUNDS, ClassicalFit
from .fit import FitResult
from .pinn import RATE_FLOOR

MISFIT_LIMIT = 1.5  # ODE misfit of the PINN's estimates over least squares' loss
NEGATIVE_PEOPLE = 0.5  # a compartment below minus this many people is not a trajectory
BOUND_RTOL = 1e-3  # an estimate within this relative distance of a bound is at the bound


@dataclass(frozen=True)
class Verdict:
    """``status`` is ``ok`` or ``not_converged``; ``reasons`` say why (empty when ok);
    ``warnings`` flag least-squares estimates at a bound of their search."""

    status: str
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def diagnose(result: FitResult) -> Verdict:
    reasons = []
    ratio = result.misfit_ratio
    if not np.isfinite(ratio) or ratio > MISFIT_LIMIT:
        reasons.append(f"the ODE solved with the PINN's estimates fits the data {ratio:.3g}x worse than least "
                       f"squares (limit {MISFIT_LIMIT:g}x)")
    model, ok = result.model, result.ok
    for i, name in enumerate(model.params):
        if name in result.assumptions.fixed:
            continue
        at_floor = result.rates[ok, i] <= RATE_FLOOR * (1 + BOUND_RTOL)
        if at_floor.any():
            reasons.append(f"{name} is at the floor {RATE_FLOOR:g} of the PINN's search in "
                           f"{int(at_floor.sum())} of {int(ok.sum())} network(s)")
    people = result.network_states[ok] * result.obs.population
    for j, state in enumerate(model.states):
        lowest = float(np.nanmin(people[..., j])) if people.size else 0.0
        if lowest < -NEGATIVE_PEOPLE:
            reasons.append(f"the network's {state} falls to {lowest:.3g} people")
    status = "not_converged" if reasons else "ok"
    return Verdict(status, tuple(reasons), tuple(classical_bound_warnings(result.classical, result)))


def classical_bound_warnings(fit: ClassicalFit, result: FitResult) -> list[str]:
    """Least-squares rates and reporting fractions that sit at a bound of their search."""
    out = []
    lo, hi = np.exp(LOG_RATE_BOUNDS)
    for name, value in fit.rates.items():
        if name not in result.assumptions.fixed and not lo * (1 + BOUND_RTOL) < value < hi * (1 - BOUND_RTOL):
            out.append(f"least squares: {name} = {value:.3g} is at a bound of its search [{lo:g}, {hi:g}]")
    rho_lo = np.exp(LOG_RHO_BOUNDS[0])
    for channel, value in fit.rho.items():
        if result.assumptions.reporting.get(channel, 1.0) is None and value <= rho_lo * (1 + BOUND_RTOL):
            out.append(f"least squares: the reporting fraction of {channel} is at its lower bound {rho_lo:g}")
    return out
