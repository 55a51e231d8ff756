"""One reported interval, and the percentile interval of a sample of estimates.

Every interval says what it is (``kind``):

- ``profile``: least squares' profile-likelihood confidence interval (``profile.py``);
- ``bootstrap``: percentiles of PINN networks each fitted to a data set resampled from the fitted
  model with the fitted noise model (``bootstrap.py``): a confidence interval;
- ``training_spread``: percentiles of networks trained from different seeds on the same data. It
  measures training variability only, not the uncertainty the data leave.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("profile", "bootstrap", "training_spread")


@dataclass(frozen=True)
class Interval:
    """A confidence (or spread) interval of one reported number.

    Attributes:
        median: the centre: least squares' optimum for a profile interval (the median of its
            confidence distribution), the members' median otherwise; in the quantity's unit.
        lo, hi: the ends, same unit; None where the data do not bound the number within the
            search range (then it is not identifiable from these data on that side).
        level: the nominal coverage, e.g. 0.9.
        kind: one of ``KINDS``.
        bound: the edge of the search the open side ran into (lo or hi is None), else None.
    """

    median: float
    lo: float | None
    hi: float | None
    level: float
    kind: str
    bound: float | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown interval kind {self.kind!r}; one of {KINDS}")

    @property
    def identifiable(self) -> bool:
        """Whether the data bound the number on both sides."""
        return self.lo is not None and self.hi is not None

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the interval (an open side extends to infinity)."""
        return (self.lo is None or self.lo <= value) and (self.hi is None or value <= self.hi)

    def inverted(self) -> "Interval":
        """The interval of 1/x (a period from a rate): the ends swap, an open end stays open."""
        inv = lambda x: None if x is None else 1.0 / x
        return Interval(1.0 / self.median, inv(self.hi), inv(self.lo), self.level, self.kind, inv(self.bound))

    def scaled(self, factor: float) -> "Interval":
        """The interval of factor * x, factor > 0 (e.g. a fraction to people)."""
        mul = lambda x: None if x is None else x * factor
        return Interval(self.median * factor, mul(self.lo), mul(self.hi), self.level, self.kind, mul(self.bound))


def order_statistic_rank(n: int, level: float) -> int:
    """k such that the interval between the k-th smallest and k-th largest of n draws holds a new
    draw from the same distribution with probability (n + 1 - 2k) / (n + 1) >= ``level`` (k = 1,
    the range, when n is too small for that)."""
    return max(1, int(np.floor((n + 1) * (1.0 - level) / 2.0 + 1e-9)))


def achieved_level(n: int, level: float) -> float:
    """The probability that :func:`percentile_interval` of n draws holds a new draw."""
    return (n + 1 - 2 * order_statistic_rank(n, level)) / (n + 1)


def required_draws(level: float) -> int:
    """The fewest draws whose :func:`percentile_interval` reaches ``level``."""
    return int(np.ceil(2.0 / (1.0 - level) - 1.0 - 1e-9))


def percentile_interval(values, level: float, kind: str) -> Interval | None:
    """Median and central interval of a sample (NaN ignored): the k-th smallest to the k-th largest
    value, k from :func:`order_statistic_rank`. With few values this is wider than the interpolated
    percentiles, which hold a new draw far less often than ``level`` (about 79 % for a nominal 90 %
    with 16 values); a 90 % interval needs 19 values, fewer give the range (:func:`achieved_level`).
    None when fewer than two values are finite: one number has no spread."""
    v = np.sort(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    if v.size < 2:
        return None
    k = order_statistic_rank(v.size, level)
    return Interval(float(np.median(v)), float(v[k - 1]), float(v[v.size - k]), level, kind)
