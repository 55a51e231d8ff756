"""Parametric bootstrap: data sets resampled from the fitted model with the fitted noise model
(Chowell 2017, "Fitting dynamic models to epidemic outbreaks with quantified uncertainty").

The noise model follows the fit's likelihood (``Assumptions.likelihood``):

- ``squared``: gaussian with a standard deviation that may grow with the expected count,
  ``sd = sqrt(a^2 + (b * mean)^2)`` per channel, a and b fitted to the residuals by maximum
  likelihood (the degrees of freedom of the free parameters taken out). Counts are rarely equally
  noisy at 10 and at 10 000 cases: with one constant sd the resampled early points are far noisier
  than the real ones and the late ones far quieter, and the intervals cover the truth too seldom;
- ``lognormal``: the fitted count times exp(s e), e standard normal, with s per channel the root
  mean square of the log residuals (the degrees of freedom of the free parameters taken out);
- ``poisson``: Poisson counts; when the counts vary more than Poisson (quasi-likelihood dispersion
  phi = deviance / (n - p) above 1, as cumulative counts always do), negative binomial counts with
  variance phi * mean, so that the intervals are not overconfident;
- ``negbin``: negative-binomial counts with the fit's dispersion k (variance mean + mean^2 / k).

Gaussian draws are clipped at zero people: counts are never negative. Missing values stay missing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize

from .assumptions import Assumptions
from .classical import ClassicalFit, OdeObjective
from .data import Observations
from .likelihood import gaussian_residual
from .models import CompartmentalModel


@dataclass(frozen=True)
class NoiseModel:
    """The observation noise of a fit.

    Attributes:
        kind: ``gaussian``, ``lognormal``, ``poisson`` or ``negbin``.
        sd: (k,) gaussian standard deviation of each channel at zero mean, people (None otherwise).
        relative_sd: (k,) the part of the gaussian standard deviation proportional to the mean;
            for ``lognormal``, the standard deviation of the logarithm.
        dispersion: negative-binomial k (``negbin``), else None.
        overdispersion: quasi-Poisson phi >= 1 (``poisson``; 1 is plain Poisson), else 1.
    """

    kind: str
    sd: np.ndarray | None = None
    relative_sd: np.ndarray | None = None
    dispersion: float | None = None
    overdispersion: float = 1.0

    def sample(self, mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Observations drawn around ``mean`` (..., k) people; same shape."""
        mean = np.maximum(np.asarray(mean, dtype=float), 0.0)
        if self.kind == "gaussian":
            relative = self.relative_sd if self.relative_sd is not None else 0.0
            sd = np.sqrt(self.sd ** 2 + (relative * mean) ** 2)
            return np.maximum(mean + sd * rng.standard_normal(mean.shape), 0.0)
        if self.kind == "lognormal":
            return mean * np.exp(self.relative_sd * rng.standard_normal(mean.shape))
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
        mean = objective.expected_counts(rates, rho, fit.u0)
        scales = [_gaussian_scales(mean[objective.mask[:, j], j], obs.values[objective.mask[:, j], j])
                  for j in range(len(obs.channels))]
        a, b = (np.sqrt(dof_factor) * np.array(x) for x in zip(*scales))
        return NoiseModel("gaussian", sd=a, relative_sd=b)
    if assumptions.likelihood == "lognormal":
        mean = objective.expected_counts(rates, rho, fit.u0)
        log_residual = gaussian_residual("lognormal", mean, obs.values)
        sd = [np.sqrt(np.mean(log_residual[objective.mask[:, j], j] ** 2)) for j in range(len(obs.channels))]
        return NoiseModel("lognormal", relative_sd=np.sqrt(dof_factor) * np.array(sd))
    if assumptions.likelihood == "negbin":
        return NoiseModel("negbin", dispersion=assumptions.dispersion)
    # fit.loss is the mean deviance over the n observed values
    return NoiseModel("poisson", overdispersion=max(1.0, fit.loss * dof_factor))


def _gaussian_scales(mean: np.ndarray, observed: np.ndarray) -> tuple[float, float]:
    """(a, b) of sd = sqrt(a^2 + (b mean)^2) maximising the gaussian likelihood of the residuals."""
    residual2 = (observed - mean) ** 2
    if not len(residual2) or not residual2.any():
        return 0.0, 0.0
    mean2 = np.maximum(mean, 0.0) ** 2
    rms = float(np.sqrt(residual2.mean()))

    def negative_log_likelihood(x):
        var = np.exp(2 * x[0]) + np.exp(2 * x[1]) * mean2 + 1e-300
        return float(np.sum(np.log(var) + residual2 / var))

    typical = float(np.sqrt(mean2.mean())) or 1.0
    starts = [(np.log(rms), np.log(rms / typical) - 3), (np.log(rms) - 3, np.log(rms / typical))]
    best = min((minimize(negative_log_likelihood, np.array(x0), method="Nelder-Mead",
                         options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 2000}) for x0 in starts),
               key=lambda r: r.fun)
    return float(np.exp(best.x[0])), float(np.exp(best.x[1]))


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
