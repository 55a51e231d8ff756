"""How numbers are written for people (terminal, HTML, Markdown) and for CSV files."""

from __future__ import annotations

import math

import numpy as np


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float, np.integer, np.floating)) and math.isfinite(x)


def number(x, digits: int = 4, missing: str = "-") -> str:
    """``digits`` significant digits; whole numbers past ``10**digits`` without a decimal point."""
    if not _finite(x):
        return missing
    if abs(x) >= 10 ** digits:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def percent(x, missing: str = "-", sign: bool = True) -> str:
    """A fraction as a percentage with one decimal (``+2.3 %``)."""
    if not _finite(x):
        return missing
    return f"{100 * x:+.1f} %" if sign else f"{100 * x:.1f}"


def csv_cell(v, missing: str = ""):
    """A value as a CSV cell: floats with 8 significant digits, non-finite floats as ``missing``."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.8g}" if math.isfinite(v) else missing
    if isinstance(v, np.integer):
        return int(v)
    return v


def interval_text(iv, missing: str = "-") -> str:
    """An interval as ``[lo, hi]``, or ``>= lo`` / ``<= hi`` when the data leave one side open."""
    if iv is None:
        return missing
    if iv.lo is None and iv.hi is None:
        return "not bounded"
    if iv.hi is None:
        return f">= {number(iv.lo)}"
    if iv.lo is None:
        return f"<= {number(iv.hi)}"
    return f"[{number(iv.lo)}, {number(iv.hi)}]"


def interval_heading(kind: str, level: float) -> str:
    """Column heading of an interval, naming its kind: ``90 % bootstrap``."""
    return f"{100 * level:g} % {kind.replace('_', ' ')}"
