"""Benchmark metrics and statistics (pure numpy / scipy, no JAX).

Everything here is a pure function of plain arrays or dicts, used by the benchmark
(docs/benchmarks.md):

* accuracy of one run — :func:`relative_errors` (β, σ, γ, R0 …), :func:`peak` /
  :func:`peak_errors` (timing and height of the infectious peak), :func:`trajectory_rel_l2`
  (relative L2 per compartment, including unobserved ones);
* cost — :func:`steps_to_within` (training step at which an estimate reached *and stayed* within a
  tolerance of its reference);
* aggregation over seeds — :func:`median_iqr`, :func:`paired_wilcoxon`;
* training diagnostics — :func:`count_deadlocks` (RQ1), :func:`gate_phases` (RQ4, from gate
  values computed by ``balancing.gate``), :func:`running_min` / :func:`loglog_slope` (convergence plot).

Conventions shared by all functions:

* "records" are the entries of a training log, one per logged step; ``steps`` has shape (R,) and
  holds the (usually integer) step number of every record, in increasing order.
* Stretches of records are returned as inclusive ``(start_step, end_step)`` pairs: the steps of the
  first and the last record of the stretch, converted to Python scalars (``int`` for integer
  ``steps`` arrays).
* NaN never raises: it propagates into the result, or the record/pair/entry holding it is ignored,
  as each docstring states.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

__all__ = [
    "relative_errors",
    "peak",
    "peak_errors",
    "trajectory_rel_l2",
    "steps_to_within",
    "median_iqr",
    "paired_wilcoxon",
    "holm",
    "paired_median_difference",
    "count_deadlocks",
    "gate_phases",
    "running_min",
    "loglog_slope",
]


# ---------------------------------------------------------------------------------------------
# helpers


def _vector(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"length mismatch: {lengths}")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True in a boolean vector, as inclusive (first_index, last_index) pairs."""
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return []
    padded = np.concatenate(([False], m, [False])).astype(np.int8)
    d = np.diff(padded)
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return [(int(s), int(e)) for s, e in zip(starts, ends)]


def _step_pairs(steps: np.ndarray, runs: list[tuple[int, int]]) -> list[tuple]:
    return [(steps[s].item(), steps[e].item()) for s, e in runs]


# ---------------------------------------------------------------------------------------------
# accuracy of one run


def relative_errors(estimate: Mapping[str, float],
                    reference: Mapping[str, float]) -> dict[str, float]:
    """Signed relative error ``estimate / reference - 1`` per parameter (dimensionless).

    Computed for every key present in both mappings, in the order of ``reference``. The result is
    NaN where the estimate is NaN, the reference is NaN, or the reference is 0 (a relative error is
    undefined there). ``+0.1`` means 10 % too high, ``-0.1`` 10 % too low.

    >>> relative_errors({"beta": 0.55, "gamma": 0.1}, {"beta": 0.5, "sigma": 0.2})
    {'beta': 0.10000000000000009}
    """
    out: dict[str, float] = {}
    for key, ref in reference.items():
        if key not in estimate:
            continue
        est = float(estimate[key])
        ref = float(ref)
        if np.isnan(est) or np.isnan(ref) or ref == 0.0:
            out[key] = float("nan")
        else:
            out[key] = est / ref - 1.0
    return out


def peak(t, infectious) -> tuple[float, float]:
    """Time and height of the maximum of a curve.

    Parameters
    ----------
    t : array, shape (G,)
        Time grid in days.
    infectious : array, shape (G,)
        The curve (e.g. the infectious compartment I(t), as a fraction or in persons).

    Returns
    -------
    (t_peak, height) : the time (days) of the maximum and its value (same unit as ``infectious``).
    NaN entries of the curve are ignored; the first maximum wins on ties; ``(nan, nan)`` if the
    curve has no non-NaN entry.
    """
    t = _vector(t, "t")
    y = _vector(infectious, "infectious").astype(float)
    _same_length(t=t, infectious=y)
    if y.size == 0 or np.all(np.isnan(y)):
        return float("nan"), float("nan")
    k = int(np.nanargmax(y))
    return float(t[k]), float(y[k])


def peak_errors(t, i_est, i_ref) -> dict[str, float]:
    """Error of the peak of an estimated curve against a reference curve on the same grid.

    ``t`` shape (G,) in days; ``i_est``, ``i_ref`` shape (G,). Returns
    ``{"peak_time_error_days": t_est - t_ref, "peak_height_rel_error": h_est / h_ref - 1}``
    where ``(t_*, h_*) = peak(t, i_*)``. The time error is signed (positive: estimated peak is
    late) and limited to the grid resolution; the height error is NaN if ``h_ref`` is 0 or NaN.
    """
    t_est, h_est = peak(t, i_est)
    t_ref, h_ref = peak(t, i_ref)
    rel = relative_errors({"h": h_est}, {"h": h_ref})["h"]
    return {"peak_time_error_days": t_est - t_ref, "peak_height_rel_error": rel}


def trajectory_rel_l2(est, ref, names: Sequence[str]) -> dict[str, float]:
    """Relative L2 error of every compartment over the time grid (dimensionless).

    ``est`` and ``ref`` have shape (G, s) (time × compartment, e.g. ``model.states`` order), and
    ``names`` has length s. Returns ``{names[j]: ||est[:, j] - ref[:, j]||_2 / ||ref[:, j]||_2}``;
    the entry is NaN where the reference column is identically zero (or contains NaN), and NaN
    in ``est`` propagates. The grid is assumed uniform (a plain vector norm, no quadrature weights).
    """
    est = np.asarray(est, dtype=float)
    ref = np.asarray(ref, dtype=float)
    if est.ndim != 2 or est.shape != ref.shape:
        raise ValueError(
            f"est and ref must have the same (G, s) shape, got {est.shape}, {ref.shape}")
    if len(names) != est.shape[1]:
        raise ValueError(f"{len(names)} names for {est.shape[1]} compartments")
    num = np.linalg.norm(est - ref, axis=0)
    den = np.linalg.norm(ref, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return {str(n): float(r) for n, r in zip(names, rel)}


# ---------------------------------------------------------------------------------------------
# cost


def steps_to_within(steps, values, reference: float, tol: float = 0.05):
    """First step from which an estimate stays within ``tol`` (relative) of its reference.

    ``steps`` and ``values`` have shape (R,) (e.g. the R0 estimate logged at each record). A record
    is *within* when ``|values / reference - 1| <= tol``; NaN values, and any value when
    ``reference`` is 0 or NaN, count as outside. Returns the step of the first record of the final
    unbroken run of within-records that lasts to the end of the log — i.e. the step at which the
    estimate reached the band for the last time and never left it again. Returns ``None`` if the
    last record is outside (including "never entered") or the log is empty.

    Example: within-pattern ``[F, T, F, T, T]`` at steps ``[0, 10, 20, 30, 40]`` gives 30.
    """
    steps = _vector(steps, "steps")
    values = _vector(values, "values").astype(float)
    _same_length(steps=steps, values=values)
    if values.size == 0:
        return None
    reference = float(reference)
    if np.isnan(reference) or reference == 0.0:
        return None
    with np.errstate(invalid="ignore"):
        within = np.abs(values / reference - 1.0) <= tol
    if not within[-1]:
        return None
    outside = np.flatnonzero(~within)
    first = 0 if outside.size == 0 else int(outside[-1]) + 1
    return steps[first].item()


# ---------------------------------------------------------------------------------------------
# aggregation over seeds


def median_iqr(x) -> tuple[float, float, float]:
    """``(median, 25th percentile, 75th percentile)`` of ``x`` ignoring NaN.

    ``x`` is any array (flattened). Percentiles use numpy's default linear interpolation, so
    ``median_iqr([1, 2, 3, 4, 5]) == (3, 2, 4)``. An empty or all-NaN input gives three NaNs.
    """
    a = np.asarray(x, dtype=float).ravel()
    if a.size == 0 or np.all(np.isnan(a)):
        return float("nan"), float("nan"), float("nan")
    q25, q50, q75 = np.nanpercentile(a, [25.0, 50.0, 75.0])
    return float(q50), float(q25), float(q75)


def paired_wilcoxon(a, b) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test on paired samples ``a``, ``b``.

    ``a`` and ``b`` have shape (n,) and are paired by index (e.g. the same seed under two methods).

    * Pairs where either value is NaN are dropped.
    * If fewer than 2 pairs remain, returns NaN (too little data for any test).
    * If every remaining difference is exactly zero, returns 1.0 (no evidence of a difference;
      scipy would otherwise warn / return NaN).
    * Otherwise returns ``scipy.stats.wilcoxon(a, b, zero_method="wilcox",
      alternative="two-sided").pvalue`` with scipy's default ``method="auto"`` (the exact
      distribution for small samples, the normal approximation for large ones).
      ``zero_method="wilcox"`` discards zero differences before ranking (the classical test);
      e.g. with a single non-zero difference left the p-value is 1.0.
    """
    a = _vector(a, "a").astype(float)
    b = _vector(b, "b").astype(float)
    _same_length(a=a, b=b)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if a.size < 2:
        return float("nan")
    if np.all(a - b == 0.0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        res = stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    return float(res.pvalue)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (NaN entries are not tests and stay NaN).

    The k-th smallest of m p-values becomes max over j <= k of min(1, (m - j + 1) p_(j)); rejecting
    where the adjusted value is below alpha controls the family-wise error rate at alpha.
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    idx = np.where(np.isfinite(p))[0]
    m = idx.size
    if not m:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adjusted)
    return out


def paired_median_difference(a, b, *, level: float = 0.95, resamples: int = 2000, seed: int = 0):
    """Median of the paired differences a - b (shape (n,) each, paired by index, NaN pairs
    dropped) and its bootstrap percentile interval at ``level`` (scipy.stats.bootstrap, paired):
    ``(median, lo, hi)``; NaNs when fewer than 3 pairs remain."""
    a = _vector(a, "a").astype(float)
    b = _vector(b, "b").astype(float)
    _same_length(a=a, b=b)
    keep = ~(np.isnan(a) | np.isnan(b))
    d = a[keep] - b[keep]
    if d.size < 3:
        return float("nan"), float("nan"), float("nan")
    if np.all(d == d[0]):
        return float(d[0]), float(d[0]), float(d[0])
    res = stats.bootstrap((d,), np.median, confidence_level=level, n_resamples=resamples, method="percentile",
                          random_state=np.random.default_rng(seed))
    return float(np.median(d)), float(res.confidence_interval.low), float(res.confidence_interval.high)


# ---------------------------------------------------------------------------------------------
# training diagnostics


def count_deadlocks(steps, loss_data, loss_phys, c, *, window: int = 20, c_max: float = -0.9,
                    rel_change: float = 0.01) -> list[tuple[int, int]]:
    """Stretches of training where the two gradients are opposed and both losses have stalled.

    Inputs ``steps``, ``loss_data``, ``loss_phys``, ``c`` all have shape (R,): one entry per log
    record (``c`` is the cosine between the data- and physics-loss gradients, in [-1, 1]).

    Definition (sliding window of ``window`` consecutive *records*, not steps). For every start
    index ``k`` with ``k + window - 1 < R``, the window ``W_k = [k, k + window - 1]`` is
    *deadlocked* when all of

    * ``c[i] <= c_max`` for every record i in ``W_k``;
    * ``|L[e] - L[k]| / |L[k]| < rel_change`` with ``e = k + window - 1``, for ``L = loss_data``
      and for ``L = loss_phys`` (end-to-end relative change over the window; if ``L[k] == 0`` the
      window is flat only if ``L[e] == 0`` as well).

    Any NaN in a window makes it not deadlocked. A record is flagged when it belongs to at least
    one deadlocked window (the *containing* convention), and maximal runs of consecutive flagged
    records are returned as inclusive ``(steps[first], steps[last])`` pairs, in order. The pairs
    are therefore non-overlapping and maximal, and each covers at least ``window`` records; every
    window-long sub-stretch starting at a deadlocked window's start is itself deadlocked, but a
    merged stretch longer than ``window`` need not satisfy the flatness test end to end (a slow
    creep of < ``rel_change`` per window counts as stalled). ``len(result)`` is the deadlock count.
    """
    steps = _vector(steps, "steps")
    ld = _vector(loss_data, "loss_data").astype(float)
    lp = _vector(loss_phys, "loss_phys").astype(float)
    c = _vector(c, "c").astype(float)
    _same_length(steps=steps, loss_data=ld, loss_phys=lp, c=c)
    if window < 1:
        raise ValueError("window must be >= 1")
    r = c.size
    if r < window:
        return []
    n_win = r - window + 1

    # c <= c_max on every record of the window (NaN compares False).
    with np.errstate(invalid="ignore"):
        c_ok = (c <= c_max).astype(np.int64)
    csum = np.concatenate(([0], np.cumsum(c_ok)))
    all_c = (csum[window:] - csum[:n_win]) == window

    def flat(loss: np.ndarray) -> np.ndarray:
        start, end = loss[:n_win], loss[window - 1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(end - start) / np.abs(start)
        zero = (start == 0.0) & (end == 0.0)
        with np.errstate(invalid="ignore"):
            return zero | (rel < rel_change)

    dead = all_c & flat(ld) & flat(lp)
    # flag every record covered by a deadlocked window: difference array over coverage counts
    cover = np.zeros(r + 1, dtype=np.int64)
    starts = np.flatnonzero(dead)
    np.add.at(cover, starts, 1)
    np.add.at(cover, starts + window, -1)
    flagged = np.cumsum(cover[:r]) > 0
    return _step_pairs(steps, _runs(flagged))


def gate_phases(steps, gate_values, threshold: float = 0.5) -> dict[str, list[tuple[int, int]]]:
    """Split training into relaxation (gate closed) and refinement (gate open) phases.

    ``steps`` and ``gate_values`` have shape (R,); ``gate_values`` is the gate s in (0, 1) at each
    record (e.g. ``balancing.gate(c, kappa, threshold)``). Returns
    ``{"relaxation": [...], "refinement": [...]}``: the maximal runs of consecutive records with
    ``s < threshold`` (physics relaxed) and with ``s >= threshold`` (physics enforced), each as an
    inclusive ``(steps[first], steps[last])`` pair, in order. Records with NaN gate belong to
    neither phase and break runs.
    """
    steps = _vector(steps, "steps")
    s = _vector(gate_values, "gate_values").astype(float)
    _same_length(steps=steps, gate_values=s)
    with np.errstate(invalid="ignore"):
        closed = s < threshold
        open_ = s >= threshold
    return {"relaxation": _step_pairs(steps, _runs(closed)),
            "refinement": _step_pairs(steps, _runs(open_))}


def running_min(x) -> np.ndarray:
    """Running minimum ``out[k] = min(x[:k + 1])``, shape (R,) -> (R,), float.

    NaN entries are skipped (``np.fmin``): the output is NaN only before the first non-NaN entry.
    Used for the convergence plot, ``min_{t <= T} |grad L_data(t)|^2`` against T.
    """
    a = _vector(x, "x").astype(float)
    if a.size == 0:
        return a
    return np.fmin.accumulate(a)


def loglog_slope(T, y) -> float:
    """Least-squares slope of ``log y`` against ``log T`` (dimensionless exponent).

    ``T`` and ``y`` have shape (R,). Only entries with finite positive ``T`` and finite positive
    ``y`` are used; NaN if fewer than two such entries with distinct ``T`` remain. For
    ``y = a * T**p`` the result is ``p``; an O(1/T) rate shows as a slope <= -1.
    """
    T = _vector(T, "T").astype(float)
    y = _vector(y, "y").astype(float)
    _same_length(T=T, y=y)
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(T) & np.isfinite(y) & (T > 0) & (y > 0)
    lt, ly = np.log(T[keep]), np.log(y[keep])
    if lt.size < 2 or np.ptp(lt) == 0.0:
        return float("nan")
    lt_c = lt - lt.mean()
    return float(np.dot(lt_c, ly - ly.mean()) / np.dot(lt_c, lt_c))
