"""Has a PINN fit converged to an answer? The checks behind ``status`` in result.json.

A fit is ``not_converged`` when any of these holds (each adds a reason):

- the data reject the PINN's estimates against least squares under the same assumptions, and
  they differ from least squares' by more than ``fit.AGREEMENT`` (R0 or a free rate) or the peak of
  the ODE solved with them by more than ``fit.PEAK_AGREEMENT`` (day or size). The data reject
  them when the likelihood-ratio statistic of the ODE solved with the PINN's rates and start,
  against the least-squares optimum, exceeds ``LR_LIMIT`` (the 95 % point of chi-square with 1
  degree of freedom). Below it, every number the PINN reports lies inside least squares' 95 %
  profile-likelihood interval of that number. The statistic is the deviance difference for
  counts, and n log(L_pinn / L_lsq) for the squared errors, ``squared`` and ``lognormal`` (gaussian
  noise of unknown scale, on the counts or on their logarithms) over
  n observed values. Counts such as cumulative cases are far from independent Poisson draws, so
  there the statistic rejects estimates that agree with least squares to 0.02 %: hence the
  agreement margin;
- a free rate sits at the floor of the PINN's search (``pinn.RATE_FLOOR``);
- a compartment of the network's trajectory goes below zero by more than half a person.

Warnings: least squares' own estimates, or the PINN's, at a bound of their search (the reference
itself is then not an interior optimum; the PINN's outer phase searches the same box); estimates
the data distinguish from least squares' but that agree within ``fit.AGREEMENT``; and an ``ok``
fit whose estimates or peak differ from least squares' by more than ``LOOSE_R0`` although the
data cannot tell the two apart (they are then only loosely pinned).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .classical import LOG_RATE_BOUNDS, LOG_RHO_BOUNDS, ClassicalFit
from .fit import LR_LIMIT, FitResult
from .pinn import RATE_FLOOR
from .train import PHASES

LOOSE_R0 = 0.05  # an ok fit whose estimates differ from least squares' by more than this gets a warning
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
    reasons, warnings = [], []
    ratio, stat = result.misfit_ratio, result.likelihood_ratio
    gap, peak_gap = result.largest_difference, result.peak_difference
    rejected = not stat <= LR_LIMIT
    if result.rejected:
        reasons.append(f"the data reject the PINN's estimates against least squares (likelihood ratio {stat:.3g} > "
                       f"{LR_LIMIT:g}; the ODE with the PINN's estimates fits {ratio:.3g}x worse; its estimates "
                       f"differ by up to {100 * gap:.3g} %, its peak by {100 * peak_gap:.3g} %)")
    elif rejected:
        warnings.append(f"the data distinguish the PINN's estimates from least squares' (likelihood ratio {stat:.3g} > "
                        f"{LR_LIMIT:g}), but they agree within {100 * gap:.2g} % (the peak within "
                        f"{100 * peak_gap:.2g} %)")
    elif max(gap, peak_gap) > LOOSE_R0:
        warnings.append(f"the PINN's estimates differ from least squares' by up to {100 * gap:.3g} % (the peak by "
                        f"{100 * peak_gap:.3g} %) although the data cannot tell them apart (likelihood ratio "
                        f"{stat:.2g} <= {LR_LIMIT:g}): these data pin them only loosely")
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
    given_up = ~result.train.outer_kept & ok
    if given_up.any():
        warnings.append(f"the outer phase did not improve the fit of {int(given_up.sum())} of {int(ok.sum())} "
                        f"network(s): the refinement's estimates are reported for them (docs/method.md, "
                        f"\"The outer phase\")")
    second = result.train.history.phase == PHASES.index("restart")
    if second.any():
        chosen = result.train.outer_point > result.config.outer_steps
        warnings.append(f"the outer phase's estimates differed from least squares', so a second start ran from "
                        f"the rates training started from ({int(second.sum())} outer steps, docs/method.md, "
                        f"\"The second start\"); the point reported comes from it in {int((chosen & ok).sum())} of "
                        f"{int(ok.sum())} network(s)")
    status = "not_converged" if reasons else "ok"
    return Verdict(status, tuple(reasons), tuple(warnings + reference_warnings(result) + pinn_bound_warnings(result)
                                                 + classical_bound_warnings(result.classical, result)))


def reference_warnings(result: FitResult) -> list[str]:
    """Where least squares' restarts from the guess found a worse optimum than its restart from the
    PINN's estimate (``fit.restarted_reference``): the likelihood has more than one optimum."""
    guess = result.classical_from_guess
    if guess is None:
        return []
    out = [f"least squares from the model's guess stopped in a worse optimum (R0 {guess.r0:.4g}, loss "
           f"{guess.loss / result.classical.loss:.4g}x); the least-squares row is least squares restarted from "
           f"the PINN's estimate (R0 {result.classical.r0:.4g}): these data have more than one optimum"]
    if result.bootstrap is not None:
        out.append("the bootstrap's data sets were drawn from the worse optimum (least squares from the guess)")
    return out


def classical_bound_warnings(fit: ClassicalFit, result: FitResult) -> list[str]:
    """Least-squares rates and reporting fractions that sit at a bound of their search."""
    return _bound_warnings("least squares", fit.rates, fit.rho, result)


def pinn_bound_warnings(result: FitResult) -> list[str]:
    """The PINN's (median) rates and reporting fractions at a bound of the same search box (the
    outer phase keeps its estimates inside it: ``reduced.search_box``)."""
    if not result.usable.any():
        return []
    rates = np.median(result.rates[result.usable], axis=0)
    rho = np.median(result.rho[result.usable], axis=0)
    return _bound_warnings("the PINN", dict(zip(result.model.params, rates)), dict(zip(result.obs.channels, rho)),
                           result)


def _bound_warnings(who: str, rates: dict[str, float], rho: dict[str, float], result: FitResult) -> list[str]:
    out = []
    lo, hi = np.exp(LOG_RATE_BOUNDS)
    for name, value in rates.items():
        if name not in result.assumptions.fixed and not lo * (1 + BOUND_RTOL) < value < hi * (1 - BOUND_RTOL):
            out.append(f"{who}: {name} = {value:.3g} is at a bound of its search [{lo:g}, {hi:g}]")
    rho_lo = np.exp(LOG_RHO_BOUNDS[0])
    for channel, value in rho.items():
        if result.assumptions.reporting.get(channel, 1.0) is None and value <= rho_lo * (1 + BOUND_RTOL):
            out.append(f"{who}: the reporting fraction of {channel} is at its lower bound {rho_lo:g}")
    return out


def converged_bootstrap(result: FitResult) -> tuple[list[FitResult], list[int]]:
    """The fits of a bootstrap (``result`` on the data, then its replicates) that trained without
    diverging and passed :func:`diagnose`, and the seeds of those that did not."""
    used, left_out = [], []
    for fit in [result] + result.bootstrap.replicates:
        (used if fit.ok[0] and diagnose(fit).ok else left_out).append(fit)
    return used, [fit.seeds[0] for fit in left_out]
