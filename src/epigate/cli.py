"""The ``epigate`` command line: ``simulate`` and ``fit``.

Printing and file I/O live here and in ``output.py``; the numerics stay pure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Epidemic parameter estimation with physics-informed networks trained by CGGS.")
console = Console(stderr=True)


def _enable_compilation_cache() -> None:
    """JAX's persistent compilation cache, so that a second run with the same shapes does not compile
    again: in $JAX_COMPILATION_CACHE_DIR if set, else in $XDG_CACHE_HOME/epigate/jax (~/.cache)."""
    import os

    import jax

    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return  # JAX reads it itself
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    jax.config.update("jax_compilation_cache_dir", str(root / "epigate" / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


def _progress_bar(quiet: bool):
    if quiet:
        return None, None
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)
    task = {"id": None}

    def update(phase: str, done: int, total: int):  # the total grows if a second start runs
        if task["id"] is None:
            task["id"] = bar.add_task("training", total=total)
        bar.update(task["id"], completed=done, total=total, description=f"training ({phase})")

    return bar, update


def print_summary(s) -> None:
    """The short table of estimates on the terminal (``s`` a :class:`~epigate.summary.FitSummary`)."""
    from .fit import start_compartments
    from .formatting import interval_heading, interval_text, number, percent
    from .models import get_model

    if s.verdict:
        console.print(f"[bold red]{s.verdict}[/]")
    for warning in s.warnings:  # before the table: a loosely pinned estimate must not be read alone
        console.print(f"[yellow]warning:[/] {warning}")
    free_start = any(q.classical_free_start is not None for q in s.quantities)
    table = Table(title=f"{s.model.upper()} estimates ({s.method}, {s.members} network(s)): {s.status}")
    columns = ["quantity", "PINN"] + ([interval_heading(s.interval_kind, s.interval_level)] if s.interval_kind else [])
    columns += ["LSQ"] + ([interval_heading("profile", s.classical_interval_level)] if s.classical_interval_level
                          else []) + ["PINN vs LSQ"]
    columns += ["LSQ free start"] if free_start else []
    columns += ["truth", "PINN vs truth", "LSQ vs truth"] if s.has_truth else []
    for column in columns:
        table.add_column(column)
    start = ", ".join(f"{c}(0)" for c in start_compartments(get_model(s.model)))
    table.caption = (f"LSQ: least-squares ODE fit on the same data and start; time in {s.data.time_unit}s; peaks "
                     "of the infectious compartment" + (f"; LSQ free start: least squares that also estimates "
                                                        f"the start ({start})" if free_start else ""))
    for q in s.quantities:
        row = [q.label, number(q.pinn)] + ([interval_text(q.interval)] if s.interval_kind else [])
        row += [number(q.classical)] + ([interval_text(q.classical_interval)] if s.classical_interval_level else [])
        row += [percent(q.vs_classical)]
        row += [number(q.classical_free_start)] if free_start else []
        if s.has_truth:
            row += [number(q.truth), percent(q.vs_truth), percent(q.classical_vs_truth)]
        table.add_row(*row)
    Console().print(table)
    if s.classical_restart:
        console.print("least squares restarted from the PINN estimate: "
                      + ", ".join(f"{k} {number(v)}" for k, v in s.classical_restart.items() if k != "loss"))
    if s.diverged_seeds:
        console.print(f"[yellow]warning:[/] seeds {s.diverged_seeds} diverged and were left out")
    t = s.timing
    console.print(f"time: {t.runtime_s:.1f} s total ({t.compile_s:.1f} s compiling, {t.train_s:.1f} s training, "
                  f"least squares {t.classical_s:.2f} s)")


def _parse_assignments(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            _fail(f"{what} {item!r}: expected NAME=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _number(text: str, what: str) -> float:
    """A number, or a simple fraction like 1/5.3."""
    try:
        if "/" in text:
            a, b = text.split("/", 1)
            value = float(a) / float(b)
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        _fail(f"{what}: {text!r} is not a number")
    if not math.isfinite(value):
        _fail(f"{what}: {text!r} is not a finite number")
    return value


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", help="CSV file to write."),
    model: str = typer.Option("seir", help="sir, seir or seird."),
    beta: float = typer.Option(0.5, help="Transmission rate, 1/day."),
    sigma: float = typer.Option(0.2, help="Incubation rate, 1/day (SEIR, SEIRD)."),
    gamma: float = typer.Option(0.1, help="Recovery rate, 1/day."),
    mu: float = typer.Option(0.01, help="Death rate, 1/day (SEIRD)."),
    population: float = typer.Option(100_000, help="Population N."),
    horizon: float = typer.Option(100.0, help="Last observation day."),
    observe: str = typer.Option("I,R", help="Comma-separated: compartments, incidence, cumulative."),
    n_obs: int = typer.Option(40, help="Number of observation times."),
    spacing: str = typer.Option("even", help="even or random."),
    noise: str = typer.Option("gaussian", help="none, gaussian (relative), poisson or negbin."),
    noise_level: float = typer.Option(0.05, help="Relative sd of gaussian noise."),
    dispersion: float = typer.Option(10.0, help="Negative-binomial dispersion k."),
    seed: int = typer.Option(0, help="Random seed."),
):
    """Write a synthetic outbreak as CSV (columns t and one per observed quantity)."""
    from .data import synthetic_outbreak
    from .models import get_model

    try:
        m = get_model(model)
        obs = synthetic_outbreak(m, {"beta": beta, "sigma": sigma, "gamma": gamma, "mu": mu},
                                 population=population, horizon=horizon,
                                 observe=tuple(s.strip() for s in observe.split(",") if s.strip()),
                                 n_obs=n_obs, spacing=spacing, noise=noise, noise_level=noise_level,
                                 dispersion=dispersion, seed=seed)
    except ValueError as e:
        _fail(str(e))
    from .output import write_csv

    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(out, ["t"] + list(obs.channels), [[float(t)] + [float(v) for v in row] for t, row in zip(obs.t, obs.values)])
    console.print(f"wrote {out} ({len(obs.t)} times; {obs.source})")


def _split_initial(items: list[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """--initial NAME=PEOPLE (known) and NAME=estimate (estimated) -> (known, estimated names)."""
    known, estimated = {}, []
    for name, text in _parse_assignments(items, "--initial").items():
        if text.lower() in ("estimate", "free", "?"):
            estimated.append(name)
        else:
            known[name] = text
    return known, tuple(estimated)


def _fixed_rates(model, items: list[str], time_unit: str) -> dict[str, float]:
    """--fix NAME=VALUE: a rate (per time unit) or a period (e.g. infectious_period=5.6, or
    infectious_days=5.6 when time is in days)."""
    from .summary import UNIT_PLURAL

    fixed = {}
    plural = UNIT_PLURAL[time_unit]
    for name, text in _parse_assignments(items, "--fix").items():
        value = _number(text, f"--fix {name}")
        if value <= 0:
            _fail(f"--fix {name}: must be > 0, got {value:g}")
        stem, _, suffix = name.rpartition("_")
        if name in model.params:
            fixed[name] = value
        elif name in model.periods or (f"{stem}_period" in model.periods and suffix == plural):
            fixed[model.periods[name if name in model.periods else f"{stem}_period"]] = 1.0 / value
        elif f"{stem}_period" in model.periods and suffix in UNIT_PLURAL.values():
            _fail(f"--fix {name}: the time unit is {time_unit} (--time-unit); give {stem}_{plural} or {stem}_period")
        else:
            _fail(f"--fix {name}: model {model.name} has rates {', '.join(model.params)} and periods "
                  f"{', '.join(model.periods)} (or {', '.join(p.replace('_period', '_' + plural) for p in model.periods)})")
    return fixed


def _reporting(items: list[str]) -> dict[str, float | None]:
    """--reporting CHANNEL=FRACTION or CHANNEL=estimate."""
    out = {}
    for ch, text in _parse_assignments(items, "--reporting").items():
        if text.lower() in ("estimate", "free", "?"):
            out[ch] = None
        else:
            value = _number(text, f"--reporting {ch}")
            if not 0 < value <= 1:
                _fail(f"--reporting {ch}: a reporting fraction must be in (0, 1], got {value:g}")
            out[ch] = value
    return out


def _load_observations(csv_path, demo, dataset, time, observe, population, initial, start, seed, n_free, time_unit):
    """Observations from exactly one of --demo, --dataset or a CSV path (``initial``: known
    initial people, NAME -> text)."""
    from .csvinput import read_csv
    from .data import demo_observations
    from .datasets import load_dataset

    if initial and (demo or dataset is not None):
        _fail("--initial NAME=PEOPLE applies to CSV input; the demo and the datasets carry their own initial "
              "state (NAME=estimate works everywhere)")
    if demo or dataset is not None:
        if time_unit != "day":
            _fail("--time-unit applies to CSV input; the demo and the bundled datasets are in days")
        return demo_observations(seed) if demo else load_dataset(dataset)
    if time is None or not observe or population is None:
        _fail("a CSV file needs --time COLUMN, --observe CHANNEL=COLUMN (e.g. I=in_bed) and --population N")
    pairs = _parse_assignments(observe, "--observe")
    init = {k: _number(v, f"--initial {k}") / population for k, v in initial.items()}
    return read_csv(csv_path, time=time, observe=pairs, population=population, initial=init or None,
                    start=start, n_free_params=n_free, time_unit=time_unit)


def _choose_model(model: Optional[str], dataset: Optional[str]):
    """--model, else the bundled dataset's own model, else SEIR."""
    from .datasets import DATASETS
    from .models import get_model

    if model:
        return get_model(model)
    return get_model(DATASETS[dataset]["model"] if dataset in DATASETS else "seir")


@app.command()
def fit(
    csv_path: Optional[Path] = typer.Argument(None, help="CSV of case counts (see --time, --observe)."),
    demo: bool = typer.Option(False, "--demo", help="Fit the bundled synthetic SEIR outbreak."),
    dataset: Optional[str] = typer.Option(None, help="A bundled real dataset, e.g. boarding_school_1978."),
    time: Optional[str] = typer.Option(None, help="CSV: name of the time column (numbers or ISO dates)."),
    time_unit: str = typer.Option("day", help="CSV: unit of time (day, week or month); rates are per unit."),
    observe: list[str] = typer.Option([], help="CSV: CHANNEL=COLUMN, channel a compartment (I, R, D), "
                                               "incidence or cumulative; repeat for several."),
    population: Optional[float] = typer.Option(None, help="CSV: population N."),
    initial: list[str] = typer.Option([], help="Initial people in a compartment, e.g. I=1 (default I=1), or "
                                               "I=estimate to estimate it; repeat for several."),
    start: Optional[str] = typer.Option(None, help="CSV with dates: the date of t = 0 (ISO)."),
    fix: list[str] = typer.Option([], help="Hold a rate or period at a known value: sigma=1/5.3, "
                                           "incubation_period=5.3 or incubation_days=5.3; repeat for several."),
    reporting: list[str] = typer.Option([], help="Reporting fraction of a channel: incidence=0.5, or "
                                                 "incidence=estimate (default: all cases reported)."),
    model: Optional[str] = typer.Option(None, help="sir, seir or seird (default seir, or the dataset's own)."),
    method: str = typer.Option("cggs", help="Balancing method of the first-order phase."),
    pretrain_steps: int = typer.Option(None, help="Physics-only Adam steps before the data (default 1000)."),
    steps: int = typer.Option(None, help="First-order (Adam) steps, the balancing method's phase (default 2000)."),
    refine_steps: int = typer.Option(None, help="L-BFGS refinement iterations in all (default 1600)."),
    refine_rounds: int = typer.Option(None, help="Augmented-Lagrangian rounds the refinement is split into "
                                                 "(default 8)."),
    outer_steps: int = typer.Option(None, help="Outer Gauss-Newton steps on the estimates, the network re-solving "
                                               "the ODE at each (default 50; a network stops early once its "
                                               "steps fall below 1e-4 in log; 0 skips them: see docs/method.md)."),
    restart_steps: int = typer.Option(None, help="Outer steps of the second start, run only where the estimates "
                                                 "differ from least squares' (default 150, each re-solve "
                                                 "1000 L-BFGS iterations: minutes; 0: none; see docs/method.md)."),
    lr: float = typer.Option(None, help="Adam's initial learning rate (default 2e-3)."),
    lam_ref: float = typer.Option(None, help="Reference physics weight (default 0.01; see docs/method.md)."),
    precision: str = typer.Option("float64", help="float64 (the default) or float32 (not faster with this recipe: see docs/method.md)."),
    seed: int = typer.Option(0, help="Seed of the (first) network and of the demo's noise."),
    seeds: int = typer.Option(1, help="Train this many networks at once (vmap) from different seeds and report "
                                      "their spread (training variability, not a confidence interval)."),
    bootstrap: Optional[int] = typer.Option(None, help="Parametric bootstrap with K networks trained at once: "
                                                       "the first on the data, K-1 on data resampled from the "
                                                       "fitted model; gives confidence intervals and bands."),
    forecast: Optional[float] = typer.Option(None, help="Extend every trajectory this many time units past the "
                                                        "last observation (forecast.csv, with bands from "
                                                        "--bootstrap)."),
    level: Optional[float] = typer.Option(None, help="Level of every interval (default 0.9 for the PINN's, 0.95 "
                                                     "for least squares' profile intervals)."),
    likelihood: str = typer.Option("squared", help="Data misfit: squared (scaled counts), lognormal (squared error of "
                                    "the logarithms: noise proportional to the count; every count > 0), poisson "
                                    "or negbin."),
    dispersion: float = typer.Option(10.0, help="Negative-binomial dispersion k (variance mu + mu^2/k)."),
    out: Optional[Path] = typer.Option(None, help="Folder for result.json, CSVs, figures and report."),
    quiet: bool = typer.Option(False, help="No progress bar."),
):
    """Estimate rates, R0 and the peak from observations (a CSV, a bundled dataset or the demo)."""
    from .assumptions import AssumptionError, Assumptions
    from .csvinput import InputError
    from .data import TIME_UNITS
    from .fit import fit as run_fit
    from .summary import summarise
    from .config import TrainConfig
    from .train import TrainingDiverged

    if seeds < 1:
        _fail(f"--seeds must be >= 1, got {seeds}")
    if outer_steps is not None and outer_steps < 0:
        _fail(f"--outer-steps must be >= 0 (0 skips the outer phase), got {outer_steps}")
    if restart_steps is not None and restart_steps < 0:
        _fail(f"--restart-steps must be >= 0 (0: no second start), got {restart_steps}")
    if bootstrap is not None and bootstrap < 2:
        _fail(f"--bootstrap K needs K >= 2 (one network on the data, K-1 on resampled data), got {bootstrap}")
    if bootstrap is not None and seeds > 1:
        _fail("--bootstrap and --seeds > 1 cannot be combined: the bootstrap's networks already start from "
              "different seeds")
    if forecast is not None and not (math.isfinite(forecast) and forecast > 0):
        _fail(f"--forecast DAYS must be a number of time units > 0, got {forecast:g}")
    if level is not None and not 0 < level < 1:
        _fail(f"--level must be in (0, 1), e.g. 0.9, got {level:g}")
    _enable_compilation_cache()
    if time_unit not in TIME_UNITS:
        _fail(f"--time-unit {time_unit!r}: choose one of {', '.join(TIME_UNITS)}")
    if sum([demo, dataset is not None, csv_path is not None]) != 1:
        _fail("give exactly one of: a CSV file, --dataset NAME, or --demo")
    try:
        given = {"pretrain_steps": pretrain_steps, "adam_steps": steps, "refine_steps": refine_steps,
                 "refine_rounds": refine_rounds, "outer_steps": outer_steps, "restart_steps": restart_steps,
                 "learning_rate": lr, "lam_ref": lam_ref}
        cfg = TrainConfig(method=method, precision=precision, **{k: v for k, v in given.items() if v is not None})
        model_ = _choose_model(model, dataset)
        known_initial, estimate_initial = _split_initial(initial)
        assumptions = Assumptions(fixed=_fixed_rates(model_, fix, time_unit), reporting=_reporting(reporting),
                                  likelihood=likelihood, dispersion=dispersion, estimate_initial=estimate_initial)
        channels = _parse_assignments(observe, "--observe")
        obs = _load_observations(csv_path, demo, dataset, time, observe, population, known_initial, start, seed,
                                 assumptions.n_free(model_, channels), time_unit)
        assumptions.check(model_, obs)
    except AssumptionError as e:
        option = {"fixed": "--fix {}", "reporting": "--reporting {}", "estimate_initial": "--initial {}=estimate",
                  "likelihood": "--likelihood {}"}
        _fail(f"{option[e.field].format(e.name)}: {e}")
    except (ValueError, InputError) as e:
        _fail(str(e))
    bar, update = _progress_bar(quiet)
    try:
        if bar:
            bar.start()
        result = run_fit(obs, model_, cfg, list(range(seed, seed + seeds)), assumptions, bootstrap=bootstrap or 0,
                         level=level, progress=update)
    except TrainingDiverged as e:
        _fail(str(e))
    finally:
        if bar:
            bar.stop()
    if out is not None:
        from .output import FILES, FORECAST_FILES, write_fit

        summary = write_fit(result, out, forecast_days=forecast)
        console.print(f"wrote {out}/: {', '.join(FILES + (FORECAST_FILES if forecast else ()))}")
    else:
        summary = summarise(result)
        if forecast is not None:
            console.print("[yellow]note:[/] --forecast writes forecast.csv into --out DIR; without it only the "
                          "peak (searched past the data) is shown")
    print_summary(summary)


@app.command()
def bench(
    preset: str = typer.Option("quick", help="quick (minutes on 2 cores), standard (the whole grid, 16 seeds, quick's budget), "
                                           "full (the whole grid at the fit's budget) or tiny (a smoke test)."),
    out: Path = typer.Option(..., "--out", help="Folder for results.csv, summary.csv, figures/, report.md."),
    executor: str = typer.Option("inprocess", help="inprocess, or ray: one Ray task per (cell, method)."),
    address: Optional[str] = typer.Option(None, help="With --executor ray: a running cluster's address "
                                                     "(default: start a local Ray)."),
):
    """Benchmark CGGS against the baselines and the classical fit (resumable: rerun to continue)."""
    from .bench.executor import EXECUTORS, InProcessExecutor, RayExecutor
    from .bench.grid import PRESETS
    from .bench.run import run_bench
    from .bench.store import SettingsMismatch

    if preset not in PRESETS:
        _fail(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    _enable_compilation_cache()
    if executor not in EXECUTORS:
        _fail(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if address is not None and executor != "ray":
        _fail("--address applies to --executor ray")
    try:
        runner_ = RayExecutor(address) if executor == "ray" else InProcessExecutor()
    except (RuntimeError, ConnectionError, ValueError) as e:
        _fail(f"--executor ray: {e}")
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} cells"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console)
    task = {}

    def update(done, total, cell_id):
        if "id" not in task:
            task["id"] = bar.add_task("benchmark", total=total, completed=done)
        bar.update(task["id"], completed=done, description=f"benchmark ({cell_id or 'starting'})")

    try:
        with bar:
            info = run_bench(PRESETS[preset], out, executor=runner_, progress=update)
    except SettingsMismatch as e:
        _fail(str(e))
    console.print(f"wrote {out}/: results.csv ({info['rows']} rows), summary.csv, figures/, report.md "
                  f"in {info['elapsed_s'] / 60:.1f} min")
