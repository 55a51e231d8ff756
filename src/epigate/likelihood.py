"""Data misfits: scaled squared error, squared error of the logarithms (lognormal noise), or the
deviance of counts (Poisson, negative binomial).

Shared by the PINN's data loss and the classical least-squares fit, so both minimise the same
objective.
"""

from __future__ import annotations

import numpy as np

LIKELIHOODS = ("squared", "lognormal", "poisson", "negbin")
# gaussian errors (on the counts or on their logarithms) of one unknown scale, estimated from the
# residuals; the count likelihoods' scale is fixed by the mean
SCALE_ESTIMATED = ("squared", "lognormal")
LOG_FLOOR = 1e-12  # lognormal: predictions (scaled to the channel's largest value) floored here


def check_likelihood(likelihood: str, dispersion: float) -> None:
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")
    if not dispersion > 0:
        raise ValueError(f"negative-binomial dispersion must be > 0, got {dispersion}")


def data_misfit(likelihood: str, pred, y, count_scale, dispersion, xp=np):
    """Per-point data misfit, shape of ``pred``; the data loss is its mean over observed points.

    - ``squared``: (pred - y)^2 on the scaled values (each channel divided by its largest value);
    - ``lognormal``: (log pred - log y)^2: noise proportional to the value (a 10 % error weighs the
      same at 10 and at 10 000 cases); every observed value must be > 0;
    - ``poisson`` / ``negbin``: the deviance of the counts (twice the log-likelihood ratio to the
      saturated model; about 1 per point at a good fit, so the loss stays O(1)). Counts are
      ``value * count_scale``; the predicted mean is floored at 1e-3 people.

    Works for NumPy and JAX arrays (``xp``).
    """
    if likelihood in SCALE_ESTIMATED:
        return gaussian_residual(likelihood, pred, y, xp) ** 2
    mu = xp.maximum(pred * count_scale, 1e-3)
    counts = xp.maximum(y * count_scale, 0.0)
    y_log = xp.where(counts > 0, counts * xp.log(xp.maximum(counts, 1e-12) / mu), 0.0)
    if likelihood == "poisson":
        return 2.0 * (y_log - (counts - mu))
    k = dispersion
    return 2.0 * (y_log - (counts + k) * xp.log((counts + k) / (mu + k)))


def gaussian_residual(likelihood: str, pred, y, xp=np):
    """Signed residual of a ``SCALE_ESTIMATED`` likelihood: pred - y, or log pred - log y."""
    if likelihood == "squared":
        return pred - y
    return xp.log(xp.maximum(pred, LOG_FLOOR)) - xp.log(xp.maximum(y, LOG_FLOOR))
