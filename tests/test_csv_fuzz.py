"""Fuzz tests of the CSV reader (:func:`epigate.csvinput.read_csv`).

Two properties:

1. Arbitrary bytes in a file never make ``read_csv`` raise anything but ``InputError``.
2. Arbitrary tables (odd headers, quoting, blank lines, BOM, CRLF, huge and tiny numbers,
   negative numbers, NaN/inf text, empty cells, ISO and garbage dates, duplicated or missing
   columns, non-increasing times, odd ``population`` / ``initial`` / ``start`` / ``n_free_params``)
   never raise anything but ``InputError``; and whatever the reader accepts is a valid
   ``Observations`` (see :func:`check_observations`).

Two reader bugs this fuzz found are pinned as explicit examples (search for "FOUND BY FUZZ"): a
date column whose t = 0 falls before the year 1, and a population below one person.

Runs derandomized (deterministic) and small enough for ~20 s on two cores.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from epigate.csvinput import InputError, read_csv
from epigate.data import Observations

FUZZ = settings(max_examples=600, deadline=None, derandomize=True)


def read_bytes(data: bytes, **kw):
    """Write ``data`` to a fresh file and read it: the Observations, or the InputError raised.

    Any other exception propagates (and fails the test)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.csv"
        path.write_bytes(data)
        try:
            return read_csv(path, **kw)
        except InputError as e:
            assert str(e).startswith(str(path)), f"InputError message does not name the file: {e}"
            return e


REJECTIONS = [  # (what the message says, short label), most specific first
    ("file is empty", "empty file"), ("no data rows", "no data rows"), ("fields but the header", "ragged row"),
    ("malformed CSV", "malformed CSV"), ("UTF-8", "not UTF-8"), ("appears twice", "duplicated column"),
    ("nothing to observe", "nothing to observe"), ("population must", "bad population"),
    ("initial fraction", "bad initial"), ("start=", "bad start"), ("time is blank", "blank time"),
    ("is not finite", "non-finite time"), ("neither a number", "bad time"), ("is not a number (line", "bad time"),
    ("duplicate time", "duplicate time"), ("goes backwards", "time backwards"), ("is before", "time < 0"),
    ("negative count", "negative count"), ("not a finite count", "non-finite count"),
    ("is not a number", "bad count"), ("larger than the population", "count > N"),
    ("no observations at t > 0", "nothing at t > 0"), ("valid observations", "too few observations"),
    (" column ", "missing column"),
]


def record(out) -> None:
    """Tell Hypothesis's statistics (--hypothesis-show-statistics) what the reader made of the input."""
    if not isinstance(out, InputError):
        event("accepted")
        return
    event("InputError: " + next((label for text, label in REJECTIONS if text in str(out)), "other"))


def check_observations(obs, *, time, observe, population, initial=None, start=None, n_free_params=0):
    """Everything an accepted file must satisfy."""
    assert isinstance(obs, Observations)
    t, values = obs.t, obs.values
    n, k = len(t), len(observe)
    # times: finite, > 0 (t = 0 is the initial condition), strictly increasing
    assert isinstance(t, np.ndarray) and t.shape == (n,) and n >= 1
    assert np.all(np.isfinite(t)) and np.all(t > 0), t
    assert np.all(np.diff(t) > 0), t
    # values: (n, k) matching the channels; NaN = missing, otherwise finite, >= 0 and <= N
    assert obs.channels == tuple(observe)
    assert isinstance(values, np.ndarray) and values.shape == (n, k), values.shape
    assert not np.isinf(values).any(), values
    finite = values[np.isfinite(values)]
    assert np.all(finite >= 0), values
    assert np.all(finite <= population), (values, population)
    assert not np.isnan(values).all(axis=1).any(), "an all-blank row was kept"
    # population as asked, finite, > 0
    assert isinstance(obs.population, float) and obs.population == float(population)
    assert math.isfinite(obs.population) and obs.population > 0
    # interval starts: the previous row's time (>= the previous kept one), >= 0, < t
    assert obs.t_start is not None and obs.t_start.shape == (n,)
    assert np.all(np.isfinite(obs.t_start)) and np.all(obs.t_start >= 0), obs.t_start
    assert np.all(obs.t_start < t), (obs.t_start, t)
    assert np.all(obs.t_start[1:] >= t[:-1]), (obs.t_start, t)
    # initial fractions: each in [0, 1], summing to <= 1
    assert all(math.isfinite(v) and 0 <= v <= 1 for v in obs.initial.values()), obs.initial
    assert sum(obs.initial.values()) <= 1 + 1e-12, obs.initial
    if initial is not None:
        assert obs.initial == initial
    # bookkeeping
    assert obs.n_missing >= int(np.isnan(values).sum())
    assert obs.n_valid >= n_free_params
    assert obs.truth is None
    if obs.start_date is not None:
        d0 = date.fromisoformat(obs.start_date)
        if start is not None:
            assert d0 == date.fromisoformat(start.strip())
    else:
        assert start is None


# --- 1. arbitrary bytes ----------------------------------------------------------------------

BYTE_TOKENS = [
    b"t", b"x", b"y", b",", b",", b"\n", b"\n", b"\r\n", b"\r", b'"', b" ", b"\t",
    b"0", b"1", b"7", b"9", b".", b"-", b"+", b"e", b"E", b"_", b"nan", b"inf",
    b"2020-01-01", b"2020-02-30", b"\xef\xbb\xbf", b"\x00", b"\xff", b"\xc3\xa9", b"\xe2\x80\xa8",
    b"\xd9\xa3",  # ARABIC-INDIC DIGIT THREE (float() accepts it)
]
HEADERS = [b"t,x\n", b"\xef\xbb\xbft,x\r\n", b"t,x,y\n", b'"t","x"\n', b"x,t\n", b"\n\nt , x \n"]
csvish = st.lists(st.sampled_from(BYTE_TOKENS), max_size=60).map(b"".join)
byte_files = st.one_of(
    st.binary(max_size=200),
    csvish,
    st.tuples(st.sampled_from(HEADERS), csvish).map(b"".join),
)


@FUZZ
@given(data=byte_files)
@example(data=b"")
@example(data=b"\xef\xbb\xbf")
@example(data=b"t,x\n\x00,1\n")
@example(data=b"t,x\n1,2\n2,3\n")
# FOUND BY FUZZ 1: OverflowError from date arithmetic (fixed), see test_tables_never_crash_and_accepted_are_valid.
@example(data=b"t,x\n0001-01-01,1\n")
def test_arbitrary_bytes_raise_only_input_error(data):
    for observe in ({"I": "x"}, {"I": "x", "R": "y"}):
        out = read_bytes(data, time="t", observe=observe, population=1000)
        record(out)
        if not isinstance(out, InputError):
            check_observations(out, time="t", observe=observe, population=1000)


# --- 2. arbitrary tables ---------------------------------------------------------------------
#
# A case is a valid table (increasing numeric or ISO-date times, counts within the population,
# blank cells, odd extra columns, any quoting / line ending / blank lines / BOM) with zero or more
# mutations applied, each a departure the reader must either reject with InputError or accept
# as a valid Observations.

GARBAGE_CELLS = [
    "", " ", "\t", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-1", "-0", "-0.0", "-1e-300",
    "1e400", "-1e400", "1e-400", "5e-324", "1.7976931348623157e308", "1_000", "0x10", "1,5", "1.5.5",
    "  3  ", "+4", ".5", "5.", "1e", "e5", "٣", "１", "abc", '"', "'1'", "\x00", "\u00a0", "\u2028",
    "2020-02-30", "2020-13-01", "20-01-01", "2020/01/01", "2020-1-1", " 2020-01-01 ", "2020-01-01T00:00",
    "２０２０-01-01", "0000-01-01", "9999-12-31", "2020-01-01\n",
]
ODD_NAMES = ["", " ", "t ", " x", "T", "day", "date", "x,y", 'q"uote', "日付", "\ufefft", "a\nb", "Y"]
CHANNELS = ["I", "R", "D", "incidence", "cumulative"]
HUGE = 1.7976931348623157e308

garbage = st.one_of(st.sampled_from(GARBAGE_CELLS), st.text(max_size=6))
nonneg_numbers = st.one_of(
    st.integers(0, 1000),
    st.floats(0, 1000),
    st.sampled_from([0.0, 5e-324, 1e-300, 1e-9, 0.5, 1e15, 1e300, HUGE]),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False),
)
# ways a modeller's tool may write a number; "{:g}" may merge close times (then: duplicate time)
number_formats = st.sampled_from([repr, str, "{:g}".format, "{:.3e}".format, "{:.17g}".format,
                                  " {} ".format, "+{}".format, lambda x: repr(x).upper()])
# Valid populations: at least one person (below that the reader refuses, see FOUND BY FUZZ 2).
populations = st.one_of(
    st.sampled_from([1, 2, 10, 100, 763, 1000, 1e6, 1e300, HUGE]),
    st.integers(1, 10**9),
    st.floats(min_value=1, allow_infinity=False),
)
valid_initials = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["I", "E", "R"]), st.one_of(st.floats(0, 0.3), st.sampled_from([0, 1e-300])),
                    max_size=3),
)

MUTATIONS = [
    "garbage time", "garbage value", "negative value", "non-finite value", "value above N",
    "huge or tiny value", "reverse times", "shuffle times", "duplicate time", "time 0 row",
    "negative time", "dup header", "drop column", "ragged row", "upper header", "no rows",
    "blank rows only", "time arg", "observe arg", "observe the time column", "empty observe",
    "bad population", "tiny population", "bad initial", "bad start", "start with numbers",
    "many free params", "naive quoting",
]


def format_number(draw, x):
    if isinstance(x, int) and draw(st.booleans()):
        return str(x)
    return draw(number_formats)(float(x))


@st.composite
def csv_cases(draw):
    """(file bytes, read_csv keyword arguments)."""
    mutations = set(draw(st.lists(st.sampled_from(MUTATIONS), max_size=3)))
    n = draw(st.integers(1, 8))
    population = draw(populations)

    # the time column: increasing numbers, or ISO dates (with or without `start`)
    kind = draw(st.sampled_from(["number", "date", "date_start"]))
    start = None
    if kind == "number":
        xs = sorted(draw(st.lists(nonneg_numbers, min_size=n, max_size=n, unique_by=float)), key=float)
        times = [format_number(draw, x) for x in xs]
    elif kind == "date":
        ds = sorted(draw(st.lists(st.dates(), min_size=n, max_size=n, unique=True)))
        times = [d.isoformat() for d in ds]
    else:
        ds = sorted(draw(st.lists(st.dates(), min_size=n, max_size=n, unique=True)))
        times = [d.isoformat() for d in ds]
        start = ds[0].isoformat() if draw(st.booleans()) else draw(st.dates(max_value=ds[0])).isoformat()

    def count():
        kind = draw(st.sampled_from(["int", "int", "float", "blank"]))
        if kind == "int":
            return str(draw(st.integers(0, int(min(population, 1000)))))
        if kind == "float":
            return format_number(draw, draw(st.floats(0, population)))
        return draw(st.sampled_from(["", " ", " \t"]))

    extra = draw(st.lists(st.one_of(st.sampled_from(ODD_NAMES), st.text(max_size=5)), max_size=2))
    names = ["t", "x", "y"]
    for e in extra:  # odd extra columns, none a duplicate once stripped
        if e.strip() not in [m.strip() for m in names]:
            names.append(e)
    columns = {name: [count() for _ in range(n)] for name in names}
    columns["t"] = times
    order = draw(st.permutations(range(len(names))))
    pad = draw(st.sampled_from(["", "", " ", "\t"]))  # the reader strips header names and cells
    header = [pad + names[i] + pad for i in order]
    body = [[columns[names[i]][r] for i in order] for r in range(n)]
    ti = header.index(pad + "t" + pad)
    vcols = [header.index(pad + c + pad) for c in ("x", "y")]

    time = "t"
    observe = draw(st.dictionaries(st.sampled_from(CHANNELS), st.sampled_from(["x", "y"]), min_size=1, max_size=3))
    initial = draw(valid_initials)
    n_free_params = draw(st.integers(0, 2))
    row = lambda: draw(st.integers(0, len(body) - 1))  # noqa: E731

    # --- departures from the valid table
    if "garbage time" in mutations:
        body[row()][ti] = draw(garbage)
    if "negative time" in mutations:
        body[0][ti] = draw(st.sampled_from(["-1", "-0.5", "-1e-300", "-1e308", "-0"]))
    if "time 0 row" in mutations:  # the initial condition: validated, set aside
        if kind == "number":
            body.insert(0, [c if i != ti else draw(st.sampled_from(["0", "0.0", "-0", "0e5"])) for i, c in
                            enumerate(body[0])])
        elif start is not None:
            body.insert(0, [c if i != ti else start for i, c in enumerate(body[0])])
    for what, cells in [("garbage value", garbage),
                        ("negative value", st.sampled_from(["-1", "-0.5", "-1e-300", "-1e308", "-5"])),
                        ("non-finite value", st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e400"])),
                        ("value above N", st.just(repr(population * 2 if population < HUGE / 2 else HUGE) + "1")),
                        ("huge or tiny value", st.sampled_from(["5e-324", "1e-400", "1e300", repr(HUGE), "0e0"]))]:
        if what in mutations:
            body[row()][draw(st.sampled_from(vcols))] = draw(cells)
    if "reverse times" in mutations:
        for r, c in zip(body, [r[ti] for r in body][::-1]):
            r[ti] = c
    if "shuffle times" in mutations:
        for r, c in zip(body, draw(st.permutations([r[ti] for r in body]))):
            r[ti] = c
    if "duplicate time" in mutations:
        i = row()
        body.insert(i, list(body[i]))
    if "blank rows only" in mutations:
        for r in body:
            for c in vcols:
                r[c] = ""
    if "dup header" in mutations:
        header[draw(st.integers(0, len(header) - 1))] = header[draw(st.integers(0, len(header) - 1))]
    if "drop column" in mutations:
        i = draw(st.integers(0, len(header) - 1))
        header = header[:i] + header[i + 1:]
        body = [r[:i] + r[i + 1:] for r in body]
    if "ragged row" in mutations and body:
        i = row()
        body[i] = body[i][:-1] if draw(st.booleans()) else body[i] + [draw(st.sampled_from(["", "1"]))]
    if "upper header" in mutations:
        header = [h.upper() for h in header]
    if "no rows" in mutations:
        body = []
    if "time arg" in mutations:
        time = draw(st.sampled_from(["x", "y", "day", "", " t", "T"]))
    if "observe arg" in mutations:
        observe = {**observe, draw(st.sampled_from(CHANNELS)): draw(st.sampled_from(["z", " x", "", "X"] + ODD_NAMES))}
    if "observe the time column" in mutations:
        observe = {**observe, draw(st.sampled_from(CHANNELS)): "t"}
    if "empty observe" in mutations:
        observe = {}
    if "bad population" in mutations:
        population = draw(st.sampled_from([0, -1, -0.0, float("nan"), float("inf"), -float("inf")]))
    if "tiny population" in mutations:
        population = draw(st.sampled_from([5e-324, 1e-300, 0.5, 0.999]))
    if "bad initial" in mutations:
        initial = draw(st.dictionaries(st.sampled_from(["I", "E", "R"]),
                                       st.one_of(st.floats(), st.sampled_from([True, 2, -1, 0.6])), min_size=1))
    if "bad start" in mutations:
        start = draw(st.one_of(st.sampled_from(GARBAGE_CELLS), st.dates().map(date.isoformat)))
    if "start with numbers" in mutations and kind == "number":
        start = "2020-01-01"
    if "many free params" in mutations:
        n_free_params = draw(st.integers(3, 30))

    kw = dict(time=time, observe=observe, population=population, n_free_params=n_free_params)
    if initial is not None:
        kw["initial"] = initial
    if start is not None:
        kw["start"] = start
    return serialize(draw, header, body, naive="naive quoting" in mutations), kw


def serialize(draw, header, rows, naive=False) -> bytes:
    terminator = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    lines = []
    for fields in [header] + rows:
        if naive:  # no quoting at all: cells with commas/quotes/newlines break the table
            lines.append(",".join(fields))
        else:
            buf = io.StringIO()
            csv.writer(buf, quoting=quoting, lineterminator="").writerow(fields)
            lines.append(buf.getvalue())
    for _ in range(draw(st.integers(0, 3))):  # blank lines anywhere, before the header too
        lines.insert(draw(st.integers(0, len(lines))), "")
    text = terminator.join(lines) + (terminator if draw(st.booleans()) else "")
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + text).encode("utf-8")


@FUZZ
@given(case=csv_cases())
@example(case=(b"t,x\n1,2\n2,3\n", dict(time="t", observe={"I": "x"}, population=100)))
@example(case=(b"\xef\xbb\xbf t ,x\r\n\r\n1,\r\n2, 3 \r\n", dict(time="t", observe={"incidence": "x"},
                                                              population=100)))
@example(case=(b"t,x,y\n2020-01-01,,1\n2020-01-03,5,\n", dict(time="t", observe={"I": "x", "R": "y"},
                                                              population=10, start="2020-01-01")))
# FOUND BY FUZZ 1 (fixed: now an InputError): a date time column without `start` whose first date
# minus the median spacing falls before 0001-01-01 raises OverflowError ("date value out of
# range") from csvinput._to_model_time (`date.fromordinal(...) - timedelta(days=interval)`), not
# InputError. Both files below are minimal: one row dated 0001-01-01; two rows far apart.
@example(case=(b"t,x\n0001-01-01,1\n", dict(time="t", observe={"I": "x"}, population=100))
         )
@example(case=(b"t,x\n1000-01-01,1\n3000-01-01,1\n", dict(time="t", observe={"I": "x"}, population=100))
         )
# FOUND BY FUZZ 2 (fixed: a population must be >= 1 person): population < 1 is accepted and, without `initial`,
# the default initial condition {"I": 1 / population} is a fraction > 1 ({"I": 2.0} here; inf for
# population=5e-324), which the reader rejects when it is passed explicitly.
@example(case=(b"t,x\n1,0\n", dict(time="t", observe={"I": "x"}, population=0.5))
         )
def test_tables_never_crash_and_accepted_are_valid(case):
    data, kw = case
    out = read_bytes(data, **kw)
    record(out)
    if not isinstance(out, InputError):
        check_observations(out, **kw)
