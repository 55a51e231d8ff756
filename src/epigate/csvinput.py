"""Read a modeller's CSV of case counts into :class:`~epigate.data.Observations`, with validation.

The file is a plain comma-separated table (no comment lines) with a header line naming the
columns. One column holds the times; each observed channel (see :mod:`epigate.data`) is read from
one named column. Every problem found raises :class:`InputError`, whose message names the file
and, where it applies, the line (counted in the file, header = line 1) and the column.

Times and t = 0
---------------
t = 0 is the time of the initial condition (``initial``); the data are the rows with t > 0.

- Numeric times are used as given, in the unit of the column (days by convention). They must be
  >= 0. Rows at exactly t = 0 are the initial condition: they are validated but not kept as data
  (``source`` says how many were set aside).
- ISO dates (YYYY-MM-DD) become days since t = 0. With ``start`` (an ISO date), t = 0 is that
  date; dates before it are an error and a row dated ``start`` is treated as the initial
  condition, like a numeric t = 0. Without ``start``, t = 0 is one reporting interval before the
  first date (the median spacing of the dates, rounded to whole days, at least 1), so the first
  row is data. ``Observations.start_date`` is the ISO date of t = 0.

Missing values
--------------
A blank cell (empty or whitespace) in an observed column is a missing observation: NaN in
``values``, counted in ``Observations.n_missing`` (blank cells in rows with t > 0). Rows whose
observed cells are all blank are dropped (their cells still count in ``n_missing``).
"""

from __future__ import annotations

import csv
import math
import numbers
import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from .data import TIME_UNITS, Observations

DAYS_PER_UNIT = {"day": 1.0, "week": 7.0, "month": 365.25 / 12}

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class InputError(ValueError):
    """Bad input; the message names the file, and the row/column where it applies."""


def read_csv(
    path,
    *,
    time: str,
    observe: dict[str, str],
    population: float,
    initial: dict[str, float] | None = None,
    start: str | None = None,
    n_free_params: int = 0,
    time_unit: str = "day",
) -> Observations:
    """Read observed counts from a CSV file.

    Args:
        path: the CSV file (str or Path).
        time: name of the time column: numbers (days, or the column's own unit) or ISO dates.
        observe: channel -> column, e.g. ``{"I": "in_bed"}`` or ``{"cumulative": "cum_cases"}``.
            Channel names are not checked here (the model checks them).
        population: N, people; finite and > 0. Every count must be <= N.
        initial: fractions of non-susceptible compartments at t = 0, each in [0, 1], summing to
            <= 1; default one index case, ``{"I": 1 / population}``.
        start: ISO date of t = 0, only for a date time column (see module docstring).
        n_free_params: the number of parameters to be fitted; fewer valid (non-missing)
            observations than this is an error.
        time_unit: the unit of time (``day``, ``week`` or ``month``): a numeric time column is in
            this unit; dates are converted to it (a month is 365.25 / 12 days). Rates are per unit.

    Returns:
        Observations with ``t`` shape (n,) (strictly increasing, > 0), ``values`` shape (n, k)
        (k = len(observe), NaN = missing), ``t_start`` shape (n,): the start of each reporting
        interval, i.e. the time of the previous row of the file (blank rows included; for the
        first row its time minus the median spacing, not below 0).
    """
    name = str(path)
    if time_unit not in TIME_UNITS:
        raise InputError(f"{name}: unknown time unit {time_unit!r}; choose one of {', '.join(TIME_UNITS)}")
    _check_arguments(name, observe, population, initial)
    header, rows = _read_table(path, name)
    time_col, value_cols = _column_indices(name, header, time, observe)
    raw, kind = _parse_time_column(name, rows, time, time_col)
    _check_increasing(name, rows, raw, time, time_col)
    t, start_date, interval = _to_model_time(name, rows, raw, kind, start, time, time_col)
    if kind == "date":
        t, interval = t / DAYS_PER_UNIT[time_unit], interval / DAYS_PER_UNIT[time_unit]
    values = _parse_values(name, rows, observe, value_cols, population)
    t_start = _interval_starts(t, interval)

    blank = np.isnan(values)
    after_zero = t > 0
    keep = after_zero & ~blank.all(axis=1)
    n_missing = int(blank[after_zero].sum())
    if not keep.any():
        raise InputError(f"{name}: no observations at t > 0 (t = 0 is the initial condition)")
    n_valid = int(np.isfinite(values[keep]).sum())
    if n_valid < n_free_params:
        raise InputError(
            f"{name}: only {n_valid} valid observations (non-blank values at t > 0), but fitting "
            f"{n_free_params} free parameters needs at least {n_free_params}"
        )
    if initial is None:
        initial = {"I": 1.0 / population}
    return Observations(
        t=t[keep],
        values=values[keep],
        channels=tuple(observe),
        population=float(population),
        initial=dict(initial),
        t_start=t_start[keep],
        truth=None,
        source=_describe(Path(name).name, observe, int(keep.sum()), int((~after_zero).sum()),
                         int((after_zero & blank.all(axis=1)).sum())),
        start_date=start_date,
        n_missing=n_missing,
        time_unit=time_unit,
    )


def _check_arguments(name, observe, population, initial) -> None:
    """Validate the arguments that do not depend on the file's contents."""
    if not observe:
        raise InputError(f"{name}: nothing to observe: give at least one channel=column")
    try:
        pop = float(population)
    except (TypeError, ValueError):
        raise InputError(f"{name}: population must be a number, got {population!r}") from None
    if not math.isfinite(pop) or pop < 1:
        raise InputError(f"{name}: population must be a finite number of people >= 1, got {population!r}")
    if initial is not None:
        for comp, frac in initial.items():
            if not (isinstance(frac, numbers.Real) and math.isfinite(frac) and 0 <= frac <= 1):
                raise InputError(f"{name}: initial fraction of {comp!r} must be in [0, 1], got {frac!r}")
        if sum(initial.values()) > 1:
            raise InputError(f"{name}: initial fractions sum to {sum(initial.values()):g} > 1")


def _read_table(path, name) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Return the header (stripped column names) and the data rows as (line number, fields).

    Blank lines are skipped; rows whose field count differs from the header's are an error.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{name}: file not found" + (" (it is a directory)" if p.is_dir() else ""))
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header, header_line, rows = None, 0, []
            for fields in reader:
                if not fields:
                    continue
                if header is None:
                    header, header_line = [h.strip() for h in fields], reader.line_num
                    continue
                if len(fields) != len(header):
                    raise InputError(
                        f"{name}: line {reader.line_num} has {len(fields)} fields but the header "
                        f"(line {header_line}) has {len(header)} columns"
                    )
                rows.append((reader.line_num, fields))
    except UnicodeDecodeError as e:
        raise InputError(f"{name}: not a UTF-8 text file ({e.reason})") from None
    except csv.Error as e:
        raise InputError(f"{name}: malformed CSV: {e}") from None
    if header is None:
        raise InputError(f"{name}: the file is empty (expected a header line and data rows)")
    if not rows:
        raise InputError(f"{name}: the file has a header but no data rows")
    return header, rows


def _column_indices(name, header, time, observe) -> tuple[int, dict[str, int]]:
    """Map the time column and each channel's column to its index in the header."""
    seen: dict[str, int] = {}
    for i, col in enumerate(header):
        if col in seen:
            raise InputError(
                f"{name}: column {col!r} appears twice in the header (columns {seen[col] + 1} and {i + 1})"
            )
        seen[col] = i
    available = ", ".join(repr(c) for c in header)

    def find(col, what):
        if col not in seen:
            raise InputError(f"{name}: no {what} column {col!r}; the file has columns {available}")
        return seen[col]

    time_col = find(time, "time")
    return time_col, {ch: find(col, f"{ch!r}") for ch, col in observe.items()}


def _parse_time_column(name, rows, time, col) -> tuple[np.ndarray, str]:
    """Parse the time cells: ``(values, "number")`` or ``(date ordinals, "date")``, shape (n,).

    The first row decides the kind; every row must then be of that kind.
    """
    first_line, first_fields = rows[0]
    kind = "number" if _as_float(first_fields[col]) is not None else "date"
    out = np.empty(len(rows))
    for i, (line, fields) in enumerate(rows):
        cell = fields[col].strip()
        where = f"{name}: line {line}, column {time!r}"
        if not cell:
            raise InputError(f"{where}: the time is blank")
        if kind == "number":
            x = _as_float(cell)
            if x is None:
                raise InputError(f"{where}: time {cell!r} is not a number (line {first_line} is)")
            if not math.isfinite(x):
                raise InputError(f"{where}: time {cell!r} is not finite")
            out[i] = x
        else:
            d = _as_date(cell)
            if d is None:
                raise InputError(f"{where}: time {cell!r} is neither a number nor an ISO date (YYYY-MM-DD)")
            out[i] = d.toordinal()
    return out, kind


def _check_increasing(name, rows, raw, time, col) -> None:
    """Times must increase strictly from row to row; name both lines if not."""
    for i in range(1, len(rows)):
        if raw[i] <= raw[i - 1]:
            (l0, f0), (l1, f1) = rows[i - 1], rows[i]
            problem = "duplicate time" if raw[i] == raw[i - 1] else "time goes backwards"
            raise InputError(
                f"{name}: column {time!r}: {problem}: line {l1} has {f1[col].strip()!r} after "
                f"line {l0} with {f0[col].strip()!r} (times must be strictly increasing)"
            )


def _to_model_time(name, rows, raw, kind, start, time, col) -> tuple[np.ndarray, str | None, float]:
    """Convert parsed times to model time (shape (n,)), with the ISO date of t = 0 and the
    reporting interval used for the first row's interval start."""
    spacing = float(np.median(np.diff(raw))) if len(raw) > 1 else None
    if kind == "number":
        if start is not None:
            raise InputError(f"{name}: start={start!r} needs a date time column, but {time!r} holds numbers")
        _check_not_negative(name, rows, raw, time, col, "time {} is before t = 0")
        return raw.copy(), None, spacing if spacing is not None else float(raw[0])
    if start is not None:
        d0 = _as_date(start)
        if d0 is None:
            raise InputError(f"{name}: start={start!r} is not an ISO date (YYYY-MM-DD)")
        t = raw - d0.toordinal()
        _check_not_negative(name, rows, t, time, col, f"date {{}} is before start {start}")
        return t, d0.isoformat(), spacing if spacing is not None else float(t[0])
    interval = max(1, round(spacing)) if spacing is not None else 1
    try:
        d0 = date.fromordinal(int(raw[0])) - timedelta(days=interval)
    except OverflowError:
        raise InputError(f"{name}: column {time!r}: t = 0 would be {interval} days before the first date "
                         f"{date.fromordinal(int(raw[0])).isoformat()}, before the year 1; give --start") from None
    return raw - d0.toordinal(), d0.isoformat(), float(interval)


def _check_not_negative(name, rows, t, time, col, message) -> None:
    """Raise on the first row with t < 0; ``message`` is formatted with the time cell's text."""
    for (line, fields), ti in zip(rows, t):
        if ti < 0:
            raise InputError(
                f"{name}: line {line}, column {time!r}: {message.format(fields[col].strip())} "
                "(times must be >= 0; t = 0 is the initial condition)"
            )


def _parse_values(name, rows, observe, cols, population) -> np.ndarray:
    """Parse the observed cells into an (n, k) float array, NaN for blank cells."""
    values = np.full((len(rows), len(observe)), np.nan)
    for i, (line, fields) in enumerate(rows):
        for j, (channel, col) in enumerate(cols.items()):
            cell = fields[col].strip()
            if not cell:
                continue
            column = observe[channel]
            where = f"{name}: line {line}, column {column!r}"
            x = _as_float(cell)
            if x is None:
                raise InputError(f"{where}: {cell!r} is not a number")
            if not math.isfinite(x):
                raise InputError(f"{where}: {cell!r} is not a finite count (leave the cell blank if missing)")
            if x < 0:
                raise InputError(f"{where}: negative count {cell}")
            if x > population:
                raise InputError(f"{where}: count {cell} is larger than the population {population:g}")
            values[i, j] = x
    return values


def _interval_starts(t, interval) -> np.ndarray:
    """Start of each row's reporting interval: the previous row's time; for the first row its
    time minus ``interval``, not below 0. Shape (n,)."""
    t_start = np.empty_like(t)
    t_start[0] = max(0.0, t[0] - interval)
    t_start[1:] = t[:-1]
    return t_start


def _describe(file_name, observe, n_rows, n_at_zero, n_blank_rows) -> str:
    """One-line provenance, e.g. ``"data.csv: I=in_bed (14 rows)"``."""
    notes = [f"{n_rows} rows"]
    if n_at_zero:
        notes.append(f"{n_at_zero} row{'s' if n_at_zero > 1 else ''} at t = 0 set aside as the initial condition")
    if n_blank_rows:
        notes.append(f"{n_blank_rows} all-blank row{'s' if n_blank_rows > 1 else ''} dropped")
    channels = ", ".join(f"{ch}={col}" for ch, col in observe.items())
    return f"{file_name}: {channels} ({'; '.join(notes)})"


def _as_float(cell: str) -> float | None:
    """The cell as a float, or None if it is not a number (nan/inf parse, as non-finite)."""
    if "_" in cell:  # Python accepts "1_000"; a CSV number does not have underscores
        return None
    try:
        return float(cell)
    except ValueError:
        return None


def _as_date(cell: str) -> date | None:
    """The cell as a calendar date if it is exactly YYYY-MM-DD, else None."""
    cell = cell.strip()
    if not _ISO_DATE.match(cell):
        return None
    try:
        return date.fromisoformat(cell)
    except ValueError:
        return None
