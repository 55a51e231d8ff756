"""``python -m epigate``: the same command line as ``epigate``."""

from .cli import app

app(prog_name="epigate")
