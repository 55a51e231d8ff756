"""A self-contained HTML report of one fit (figures embedded), for a modeller to open or send."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from .formatting import interval_heading, interval_text, number, percent
from .summary import FitSummary

DASH = "&ndash;"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def estimates_table(s: FitSummary) -> str:
    """One row per reported quantity: the PINN's estimate and interval, least squares' estimate and
    profile interval, their difference, and the truth when known. Headings name each interval's kind."""
    free_start = any(q.classical_free_start is not None for q in s.quantities)
    head = ["quantity", "PINN"] + ([interval_heading(s.interval_kind, s.interval_level)] if s.interval_kind else [])
    head += ["least squares"] + ([interval_heading("profile", s.classical_interval_level)]
                                 if s.classical_interval_level else []) + ["PINN vs LSQ"]
    head += ["least squares, start estimated"] if free_start else []
    if s.has_truth:
        head += ["truth", "PINN vs truth"]
    rows = []
    for q in s.quantities:
        row = [html.escape(q.label), number(q.pinn, missing=DASH)]
        row += [html.escape(interval_text(q.interval, missing=DASH))] if s.interval_kind else []
        row += [number(q.classical, missing=DASH)]
        row += [html.escape(interval_text(q.classical_interval, missing=DASH))] if s.classical_interval_level else []
        row += [percent(q.vs_classical, missing=DASH)]
        row += [number(q.classical_free_start, missing=DASH)] if free_start else []
        if s.has_truth:
            row += [number(q.truth, missing=DASH), percent(q.vs_truth, missing=DASH)]
        rows.append(row)
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{v}</td>" for v in r) + "</tr>" for r in rows]
    return "\n".join(out + ["</table>"])


def intervals_note(s: FitSummary) -> str:
    """What the intervals of the table are."""
    kinds = {
        "bootstrap": (f"a parametric bootstrap: {s.members} networks trained together, the first on the data, the "
                      "others on data sets resampled from the least-squares fit with its fitted noise; the interval "
                      "holds the central percentiles of the converged networks' estimates"),
        "training_spread": (f"the spread of {s.members} networks trained from different seeds on the same data: "
                            "training variability, not the uncertainty the data leave (use --bootstrap K for that)"),
        None: "one network: no interval (use --bootstrap K)",
    }
    note = f"PINN interval: {kinds[s.interval_kind]}."
    if s.classical_interval_level:
        note += (" Least squares' interval: profile likelihood (each number held, the others refitted), open on a "
                 "side where the data do not bound it.")
    return f"<p>{html.escape(note)}</p>"


def write_fit_report(s: FitSummary, folder: Path, path: Path) -> None:
    """Write ``path`` from the summary ``s`` and the PNG figures in ``folder``."""
    d, timing = s.data, s.timing
    warnings = [html.escape(s.verdict)] if s.verdict else []
    warnings += [html.escape(w[0].upper() + w[1:] + ".") for w in s.warnings]
    if s.diverged_seeds:
        warnings.append(f"Seeds {s.diverged_seeds} diverged and are left out.")
    restart = ""
    if s.classical_restart:
        values = (f"{k} {number(v, missing=DASH)}" for k, v in s.classical_restart.items() if k != "loss")
        restart = f"<p>Least squares restarted from the PINN estimate: {', '.join(values)}.</p>"
    settings = json.dumps({"model": s.model, "method": s.method, "fixed": s.fixed, "seeds": s.seeds,
                           "likelihood": s.likelihood, **s.settings}, indent=1, default=str)
    model = html.escape(s.model.upper())
    forecast = ""
    if (folder / "forecast.png").exists():
        forecast = ("<h2>Forecast</h2><p>Each series past the last observation (dashed line), with its band: "
                    "predictive for observed channels (observation noise included), confidence for latent "
                    "compartments. Values in forecast.csv.</p>" + _img(folder / "forecast.png", "forecast"))
    figures = [(folder / "fit.png", "data and fit"), (folder / "params.png", "estimates over training"),
               (folder / "training.png", "losses, physics weight and gradient cosine over training")]
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>epigate: {model} fit</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }} .warn {{ background: #fff3cd; padding: .6em 1em; border-radius: 4px; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }}
</style></head><body>
<h1>{model} fit by PINN ({html.escape(s.method)})</h1>
<p><b>Data:</b> {html.escape(d.source)}. Population {number(d.population, 7)}; observed
{html.escape(', '.join(d.channels))}; {d.n_values} values at {d.n_times} times, {d.n_missing} missing; time in
{d.time_unit}s.</p>
{''.join(f'<p class="warn">{w}</p>' for w in warnings)}
<h2>Estimates</h2>
<p>The least-squares column is the classical ODE fit of the same model to the same data: the reference the
PINN is judged against.</p>
{intervals_note(s)}
{estimates_table(s)}
{forecast}
{restart}
<h2>Fit</h2>
{_img(*figures[0])}
<h2>Training diagnostics</h2>
<p>Estimates over training (dashed: least squares), then losses, the physics weight &lambda; and the cosine c
between the data and physics gradients (dashed vertical lines: start of the L-BFGS refinement, of the outer phase
and, where one ran, of the second start).</p>
{_img(*figures[1])}
{_img(*figures[2])}
<p>Time: {number(timing.runtime_s, 3)} s in all ({number(timing.compile_s, 3)} s compiling,
{number(timing.train_s, 3)} s training; least squares {number(timing.classical_s, 3)} s).</p>
<h2>Settings</h2>
<pre>{html.escape(settings)}</pre>
</body></html>
"""
    path.write_text(body)
