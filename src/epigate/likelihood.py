"""Data misfits: scaled squared error, or the deviance of counts (Poisson, negative binomial).

Shared by the PINN's data loss and the classical least-squares fit, so both minimise the same
objective.
"""

from __future__ import annotations

import numpy as np

LIKELIHOODS = ("squared", "poisson", "negbin")


def check_likelihood(likelihood: str, dispersion: float) -> None:
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")
    if not dispersion > 0:
        raise ValueError(f"negative-binomial dispersion must be > 0, got {dispersion}")


def data_misfit(likelihood: str, pred, y, count_scale, dispersion, xp=np):
    """Per-point data misfit, shape of ``pred``; the data loss is its mean over observed points.

    - ``squared``: (pred - y)^2 on the scaled values (each channel divided by its largest value);
    - ``poisson`` / ``negbin``: the deviance of the counts (twice the log-likelihood ratio to the
      saturated model; about 1 per point at a good fit, so the loss stays O(1)). Counts are
      ``value * count_scale``; the predicted mean is floored at 1e-3 people.

    Works for NumPy and JAX arrays (``xp``).
    """
    if likelihood == "squared":
        return (pred - y) ** 2
    mu = xp.maximum(pred * count_scale, 1e-3)
    counts = xp.maximum(y * count_scale, 0.0)
    y_log = xp.where(counts > 0, counts * xp.log(xp.maximum(counts, 1e-12) / mu), 0.0)
    if likelihood == "poisson":
        return 2.0 * (y_log - (counts - mu))
    k = dispersion
    return 2.0 * (y_log - (counts + k) * xp.log((counts + k) / (mu + k)))
