"""Parametric bootstrap: data sets resampled from the fitted model with the fitted noise model
(Chowell 2017, "Fitting dynamic models to epidemic outbreaks with quantified uncertainty").

The noise model follows the fit's likelihood (``Assumptions.likelihood``):

- ``squared``: gaussian, one standard deviation per channel, the residual scale of the fit
  (root mean square residual with the degrees of freedom of the free parameters taken out);
- ``poisson``: Poisson counts; when the counts vary more than Poisson (quasi-likelihood dispersion
  phi = deviance / (n - p) above 1, as cumulative counts always do), negative binomial counts with
  variance phi * mean, so that the intervals are not overconfident;
- ``negbin``: negative-binomial counts with the fit's dispersion k (variance mean + mean^2 / k).

Gaussian draws are clipped at zero people: counts are never negative. Missing values stay missing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .assumptions import Assumptions
from .classical import ClassicalFit, OdeObjective
from .data import Observations
from .models import CompartmentalModel


@dataclass(frozen=True)
class NoiseModel:
    """The observation noise of a fit.

    Attributes:
        kind: ``gaussian``, ``poisson`` or ``negbin``.
        sd: (k,) gaussian standard deviation of each channel, people (None otherwise).
        dispersion: negative-binomial k (``negbin``), else None.
        overdispersion: quasi-Poisson phi >= 1 (``poisson``; 1 is plain Poisson), else 1.
    """

    kind: str
    sd: np.ndarray | None = None
    dispersion: float | None = None
    overdispersion: float = 1.0

    def sample(self, mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Observations drawn around ``mean`` (..., k) people; same shape."""
        mean = np.maximum(np.asarray(mean, dtype=float), 0.0)
        if self.kind == "gaussian":
            return np.maximum(mean + self.sd * rng.standard_normal(mean.shape), 0.0)
        if self.kind == "poisson" and self.overdispersion <= 1.0:
            return rng.poisson(mean).astype(float)
        # negative binomial, numpy's (n, p) = (k, k / (k + mean)); quasi-Poisson: k = mean / (phi - 1)
        k = self.dispersion if self.kind == "negbin" else np.maximum(mean, 1e-9) / (self.overdispersion - 1.0)
        return rng.negative_binomial(k, k / (k + mean + 1e-300)).astype(float)


def fitted_noise(model: CompartmentalModel, obs: Observations, fit: ClassicalFit,
                 assumptions: Assumptions = Assumptions()) -> NoiseModel:
    """The noise model of the least-squares fit ``fit`` of ``obs`` under ``assumptions``."""
    objective = OdeObjective(model, obs, assumptions)
    rates = [fit.rates[n] for n in model.params]
    rho = [fit.rho[ch] for ch in obs.channels]
    n, p = objective.n_valid, len(objective.parameter_names)
    dof_factor = n / max(n - p, 1)
    if assumptions.likelihood == "squared":
        residual = np.where(objective.mask, obs.values - objective.expected_counts(rates, rho, fit.u0), 0.0)
        per_channel = np.maximum(objective.mask.sum(axis=0), 1)
        return NoiseModel("gaussian", sd=np.sqrt((residual ** 2).sum(axis=0) / per_channel * dof_factor))
    if assumptions.likelihood == "negbin":
        return NoiseModel("negbin", dispersion=assumptions.dispersion)
    # fit.loss is the mean deviance over the n observed values
    return NoiseModel("poisson", overdispersion=max(1.0, fit.loss * dof_factor))


def resample(model: CompartmentalModel, obs: Observations, fit: ClassicalFit, noise: NoiseModel,
             count: int, seed: int) -> list[Observations]:
    """``count`` data sets drawn from the fitted model (``fit``'s rates, start and reporting) with
    ``noise``, at the times of ``obs``; deterministic in ``seed``."""
    objective = OdeObjective(model, obs)
    mean = objective.expected_counts([fit.rates[n] for n in model.params], [fit.rho[ch] for ch in obs.channels],
                                     fit.u0)
    rng = np.random.default_rng(seed)
    missing = ~np.isfinite(obs.values)
    out = []
    for k in range(count):
        values = noise.sample(mean, rng)
        values[missing] = np.nan
        out.append(replace(obs, values=values, truth=None, source=f"{obs.source} (bootstrap replicate {k + 1})"))
    return out
