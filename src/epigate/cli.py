"""The ``epigate`` command line: ``simulate`` and ``fit``.

Printing and file I/O live here and in ``output.py``; the numerics stay pure.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Epidemic parameter estimation with physics-informed networks trained by CGGS.")
console = Console(stderr=True)


class UsageError(typer.BadParameter):
    pass


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


def _progress_bar(quiet: bool):
    if quiet:
        return None, None
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)
    task = {"id": None}

    def update(phase: str, done: int, total: int):
        if task["id"] is None:
            task["id"] = bar.add_task("training", total=total)
        bar.update(task["id"], completed=done, description=f"training ({phase})")

    return bar, update


def _fmt(x: Optional[float], digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if abs(x) >= 10 ** digits:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def _pct(x: Optional[float]) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{100 * x:+.1f} %"


def print_summary(s: dict) -> None:
    """The short table of estimates on the terminal."""
    truth = s.get("truth")
    table = Table(title=f"{s['model'].upper()} estimates ({s['method']}, {len(s['seeds'])} network(s))")
    table.add_column("quantity")
    table.add_column("PINN")
    if len(s["seeds"]) > 1:
        table.add_column("90 % interval")
    table.add_column("LSQ")
    table.add_column("PINN vs LSQ")
    if truth:
        table.add_column("truth")
        table.add_column("PINN vs truth")
        table.add_column("LSQ vs truth")
    table.caption = "LSQ: least-squares ODE fit on the same data; rates in 1/day; peak of I (day, people)"
    rows = list(s["params"]) + ["peak day", "peak size"]
    for name in rows:
        if name.startswith("peak"):
            key = "time" if name == "peak day" else "height"
            p, c = s["peak"][key], s["classical"]["peak"][key]
            t = truth["peak"][key] if truth else None
            iv = s["peak"][f"{key}_interval"]
        else:
            p, c = s["params"][name], s["classical"][name]
            t = truth.get(name) if truth else None
            iv = s["intervals"][name]
        rel = lambda a, b: (a / b - 1.0) if (a is not None and b) else None
        row = [name, _fmt(p)]
        if len(s["seeds"]) > 1:
            row.append(f"[{_fmt(iv['lo'])}, {_fmt(iv['hi'])}]")
        row += [_fmt(c), _pct(rel(p, c))]
        if truth:
            row += [_fmt(t), _pct(rel(p, t)), _pct(rel(c, t))]
        table.add_row(*row)
    Console().print(table)
    from .fit import misfit_warning

    if warning := misfit_warning(s):
        console.print(f"[yellow]warning:[/] {warning}")
    if s.get("polish"):
        pol = s["polish"]
        console.print(f"polished (least squares from the PINN estimate): R0 {_fmt(pol['R0'])}, "
                      + ", ".join(f"{k} {_fmt(v)}" for k, v in pol.items() if k not in ("R0", "loss")))
    if s["diverged_seeds"]:
        console.print(f"[yellow]warning:[/] seeds {s['diverged_seeds']} diverged and were left out")
    console.print(f"time: {s['runtime_s']:.1f} s total ({s['compile_s']:.1f} s compiling, "
                  f"{s['train_s']:.1f} s training, least squares {s['classical']['runtime_s']:.2f} s)")


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


def _load_observations(csv_path, demo, dataset, time, observe, population, initial, start, seed, n_free):
    """Observations from exactly one of --demo, --dataset or a CSV path (``initial``: known
    initial people, NAME -> text)."""
    from .csvinput import read_csv
    from .data import demo_observations

    given = [x for x in (demo, dataset is not None, csv_path is not None) if x]
    if len(given) != 1:
        _fail("give exactly one of: a CSV file, --dataset NAME, or --demo")
    if initial and (demo or dataset is not None):
        _fail("--initial NAME=PEOPLE applies to CSV input; the demo and the datasets carry their own initial "
              "state (NAME=estimate works everywhere)")
    if demo:
        return demo_observations(seed), None
    if dataset is not None:
        from .datasets import DATASETS, load_dataset

        obs = load_dataset(dataset)
        return obs, DATASETS[dataset]["model"]
    if time is None or not observe or population is None:
        _fail("a CSV file needs --time COLUMN, --observe CHANNEL=COLUMN (e.g. I=in_bed) and --population N")
    pairs = _parse_assignments(observe, "--observe")
    init = {k: _number(v, f"--initial {k}") / population for k, v in initial.items()}
    return read_csv(csv_path, time=time, observe=pairs, population=population, initial=init or None,
                    start=start, n_free_params=n_free), None


def _fixed_rates(model, items: list[str]) -> dict[str, float]:
    """--fix NAME=VALUE: a rate (1/day) or a period (days, e.g. incubation_days=5.3)."""
    fixed = {}
    for name, text in _parse_assignments(items, "--fix").items():
        value = _number(text, f"--fix {name}")
        if value <= 0:
            _fail(f"--fix {name}: must be > 0, got {value:g}")
        if name in model.periods:
            fixed[model.periods[name]] = 1.0 / value
        elif name in model.params:
            fixed[name] = value
        else:
            _fail(f"--fix {name}: model {model.name} has rates {', '.join(model.params)} and periods "
                  f"{', '.join(model.periods)}")
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


@app.command()
def fit(
    csv_path: Optional[Path] = typer.Argument(None, help="CSV of case counts (see --time, --observe)."),
    demo: bool = typer.Option(False, "--demo", help="Fit the bundled synthetic SEIR outbreak."),
    dataset: Optional[str] = typer.Option(None, help="A bundled real dataset, e.g. boarding_school_1978."),
    time: Optional[str] = typer.Option(None, help="CSV: name of the time column (days or ISO dates)."),
    observe: list[str] = typer.Option([], help="CSV: CHANNEL=COLUMN, channel a compartment (I, R, D), "
                                               "incidence or cumulative; repeat for several."),
    population: Optional[float] = typer.Option(None, help="CSV: population N."),
    initial: list[str] = typer.Option([], help="Initial people in a compartment, e.g. I=1 (default I=1), or "
                                               "I=estimate to estimate it; repeat for several."),
    start: Optional[str] = typer.Option(None, help="CSV with dates: the date of t = 0 (ISO)."),
    fix: list[str] = typer.Option([], help="Hold a rate or period at a known value: sigma=1/5.3 or "
                                           "incubation_days=5.3; repeat for several."),
    reporting: list[str] = typer.Option([], help="Reporting fraction of a channel: incidence=0.5, or "
                                                 "incidence=estimate (default: all cases reported)."),
    model: Optional[str] = typer.Option(None, help="sir, seir or seird (default seir, or the dataset's own)."),
    method: str = typer.Option("cggs", help="Balancing method of the first-order phase."),
    steps: int = typer.Option(None, help="First-order (Adam) steps (default 6000)."),
    refine_steps: int = typer.Option(None, help="L-BFGS refinement iterations (default 6000)."),
    lr: float = typer.Option(1e-3, help="Adam learning rate."),
    lam_ref: float = typer.Option(None, help="Reference physics weight (see docs/method.md)."),
    precision: str = typer.Option("float64", help="float64 (refines further; about 2x slower) or float32."),
    seed: int = typer.Option(0, help="Seed of the (first) network and of the demo's noise."),
    seeds: int = typer.Option(1, help="Train this many networks at once (vmap) and report the spread."),
    polish: bool = typer.Option(False, help="Also run least squares started from the PINN estimate."),
    likelihood: str = typer.Option("squared", help="Data misfit: squared (scaled counts), poisson or negbin."),
    dispersion: float = typer.Option(10.0, help="Negative-binomial dispersion k (variance mu + mu^2/k)."),
    out: Optional[Path] = typer.Option(None, help="Folder for result.json, CSVs, figures and report."),
    quiet: bool = typer.Option(False, help="No progress bar."),
):
    """Estimate rates, R0 and the peak from observations (a CSV, a bundled dataset or the demo)."""
    from .csvinput import InputError
    from .fit import fit as run_fit, summary
    from .models import get_model
    from .train import TrainConfig, TrainingDiverged

    if seeds < 1:
        _fail(f"--seeds must be >= 1, got {seeds}")
    try:
        defaults = TrainConfig()
        cfg = TrainConfig(method=method,
                          adam_steps=defaults.adam_steps if steps is None else steps,
                          refine_steps=defaults.refine_steps if refine_steps is None else refine_steps,
                          learning_rate=lr, lam_ref=defaults.lam_ref if lam_ref is None else lam_ref,
                          precision=precision)
        m = get_model(model) if model else None
        known_initial, estimate_initial = _split_initial(initial)
        # free parameters, for the "enough observations" check (--fix is validated below, once the
        # model is known)
        n_fixed = len(_parse_assignments(fix, "--fix"))
        n_free = len((m or get_model("seir")).params) - n_fixed + len(estimate_initial)
        obs, suggested = _load_observations(csv_path, demo, dataset, time, observe, population, known_initial,
                                            start, seed, n_free)
        m = m or get_model(suggested or "seir")
        fixed = _fixed_rates(m, fix)
        report = _reporting(reporting)
        obs.check_against(m)
        from .likelihood import check_likelihood

        check_likelihood(likelihood, dispersion)
        for name in estimate_initial:
            if name not in m.states or name == "S":
                _fail(f"--initial {name}=estimate: model {m.name} has {', '.join(m.states[1:])} (S is the rest)")
        for ch in report:
            if ch not in obs.channels:
                _fail(f"--reporting {ch}: not an observed channel ({', '.join(obs.channels)})")
    except (ValueError, InputError) as e:
        _fail(str(e))
    bar, update = _progress_bar(quiet)
    try:
        if bar:
            bar.start()
        result = run_fit(obs, m, cfg, list(range(seed, seed + seeds)), fixed=fixed, reporting=report,
                         polish=polish, progress=update, likelihood=likelihood, dispersion=dispersion,
                         estimate_initial=estimate_initial)
    except TrainingDiverged as e:
        _fail(str(e))
    finally:
        if bar:
            bar.stop()
    if out is not None:
        from .output import write_fit

        s = write_fit(result, out)
        console.print(f"wrote {out}/: result.json, report.html, observations.csv, trajectories.csv, "
                      "history.csv, fit.png, training.png, params.png")
    else:
        s = summary(result)
    print_summary(s)


@app.command()
def bench(
    preset: str = typer.Option("quick", help="quick (minutes on 2 cores), full (the whole grid) or tiny (a smoke test)."),
    out: Path = typer.Option(..., "--out", help="Folder for results.csv, summary.csv, figures/, report.md."),
):
    """Benchmark CGGS against the baselines and the classical fit (resumable: rerun to continue)."""
    from .bench.grid import PRESETS
    from .bench.run import run_bench
    from .bench.store import SettingsMismatch

    if preset not in PRESETS:
        _fail(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} cells"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console)
    task = {}

    def update(done, total, cell_id):
        if "id" not in task:
            task["id"] = bar.add_task("benchmark", total=total, completed=done)
        bar.update(task["id"], completed=done, description=f"benchmark ({cell_id or 'starting'})")

    try:
        with bar:
            info = run_bench(PRESETS[preset], out, progress=update)
    except SettingsMismatch as e:
        _fail(str(e))
    console.print(f"wrote {out}/: results.csv ({info['rows']} rows), summary.csv, figures/, report.md "
                  f"in {info['elapsed_s'] / 60:.1f} min")


def main():  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
