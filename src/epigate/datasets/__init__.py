"""Real outbreak data bundled with epigate, read through the normal CSV path.

``boarding_school_1978``: 1978 English boarding-school influenza outbreak, BMJ report of
4 March 1978 ('Influenza in a boarding school', BMJ 1978;1:587); series as printed in De Vries
et al., A Course in Mathematical Biology, SIAM 2006. Population 763 boys, one index case at
t = 0 (day 1 = 22 Jan 1978). Columns: ``day`` (1-14), ``date``, ``in_bed`` (boys confined to
bed, people), ``convalescent`` (people).
"""

from __future__ import annotations

from importlib import resources

from ..csvinput import InputError, read_csv
from ..data import Observations

DATASETS: dict[str, dict] = {
    "boarding_school_1978": {
        "file": "boarding_school_1978.csv",
        "time": "day",
        "observe": {"I": "in_bed"},
        "population": 763,
        "initial": {"I": 1 / 763},
        "model": "sir",
        "description": (
            "influenza, English boarding school, 22 Jan - 4 Feb 1978: boys confined to bed (~ I) "
            "on days 1-14 of 763 boys; t = day, one index case at t = 0"
        ),
        "credit": (
            "1978 English boarding-school influenza outbreak, BMJ report of 4 March 1978 "
            "('Influenza in a boarding school', BMJ 1978;1:587); series as printed in De Vries "
            "et al., A Course in Mathematical Biology, SIAM 2006. Population 763 boys, one index "
            "case at t = 0 (day 1 = 22 Jan 1978)."
        ),
    },
}


def dataset_names() -> list[str]:
    """Names of the bundled datasets, sorted."""
    return sorted(DATASETS)


def load_dataset(name: str) -> Observations:
    """Load a bundled dataset as Observations (times in days, counts in people).

    Raises InputError for an unknown name, listing the known ones.
    """
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; known datasets: {', '.join(dataset_names())}")
    spec = DATASETS[name]
    with resources.as_file(resources.files(__name__) / spec["file"]) as path:
        return read_csv(
            path,
            time=spec["time"],
            observe=dict(spec["observe"]),
            population=spec["population"],
            initial=dict(spec["initial"]),
        )
