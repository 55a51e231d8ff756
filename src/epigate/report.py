"""A self-contained HTML report of one fit (figures embedded), for a modeller to open or send."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

from .fit import misfit_warning


def _num(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "&ndash;"
    return f"{x:.{digits}g}"


def _pct(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "&ndash;"
    return f"{100 * x:+.1f}&nbsp;%"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def estimates_table(s: dict) -> str:
    """Rows: each rate, each period, R0, peak; columns: PINN median and 90 % interval, least
    squares, their difference, and the truth when known."""
    truth = s.get("truth")
    head = ["quantity", "PINN (median)", "90 % interval", "least squares", "PINN vs LSQ"]
    if truth:
        head += ["truth", "PINN vs truth"]
    rows = []
    names = list(s["intervals"])
    for name in names:
        iv = s["intervals"][name]
        p = iv["median"]
        c = s["classical"].get(name)
        t = truth.get(name) if truth else None
        row = [name, _num(p), f"[{_num(iv['lo'])}, {_num(iv['hi'])}]", _num(c),
               _pct(p / c - 1 if c else None)]
        if truth:
            row += [_num(t), _pct(p / t - 1 if t else None)]
        rows.append(row)
    for key, label in (("time", "peak time (days)"), ("height", "peak height (people)")):
        iv = s["peak"][f"{key}_interval"]
        p, c = s["peak"][key], s["classical"]["peak"][key]
        row = [label, _num(p), f"[{_num(iv['lo'])}, {_num(iv['hi'])}]", _num(c), _pct(p / c - 1 if c else None)]
        if truth:
            t = truth["peak"][key]
            row += [_num(t), _pct(p / t - 1 if t else None)]
        rows.append(row)
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{v}</td>" for v in r) + "</tr>" for r in rows]
    return "\n".join(out + ["</table>"])


def write_report(s: dict, folder: Path, path: Path) -> None:
    """Write ``path`` from the summary ``s`` and the PNG figures in ``folder``."""
    d = s["data"]
    warnings = []
    if warning := misfit_warning(s):
        warnings.append(html.escape(warning[0].upper() + warning[1:] + "."))
    if s.get("diverged_seeds"):
        warnings.append(f"Seeds {s['diverged_seeds']} diverged and are left out.")
    polish = ""
    if s.get("polish"):
        p = s["polish"]
        polish = ("<p>Least squares started from the PINN estimate (<code>--polish</code>): R0 "
                  f"{_num(p['R0'])}, " + ", ".join(f"{k} {_num(v)}" for k, v in p.items() if k not in ("R0", "loss"))
                  + ".</p>")
    settings = json.dumps({"model": s["model"], "method": s["method"], "fixed": s["fixed"], "seeds": s["seeds"],
                           **s["settings"]}, indent=1, default=str)
    figures = [(folder / "fit.png", "data and fit"), (folder / "params.png", "estimates over training"),
               (folder / "training.png", "losses, physics weight and gradient cosine over training")]
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>epigate: {html.escape(s['model'].upper())} fit</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }} .warn {{ background: #fff3cd; padding: .6em 1em; border-radius: 4px; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }}
</style></head><body>
<h1>{html.escape(s['model'].upper())} fit by PINN ({html.escape(s['method'])})</h1>
<p><b>Data:</b> {html.escape(d['source'])}. Population {_num(d['population'], 7)}; observed
{html.escape(', '.join(d['channels']))}; {d['n_values']} values at {d['n_times']} times, {d['n_missing']} missing.</p>
{''.join(f'<p class="warn">{w}</p>' for w in warnings)}
<h2>Estimates</h2>
<p>Median and 90&nbsp;% interval over {len(s['seeds'])} network(s) trained together; rates in 1/day, periods in
days. The least-squares column is the classical ODE fit of the same model to the same data: the reference the PINN
is judged against.</p>
{estimates_table(s)}
{polish}
<h2>Fit</h2>
{_img(*figures[0])}
<h2>Training diagnostics</h2>
<p>Estimates over training (dashed: least squares), then losses, the physics weight &lambda; and the cosine c
between the data and physics gradients (dashed vertical line: start of the L-BFGS refinement phase).</p>
{_img(*figures[1])}
{_img(*figures[2])}
<p>Time: {_num(s['runtime_s'], 3)} s in all ({_num(s['compile_s'], 3)} s compiling, {_num(s['train_s'], 3)} s
training; least squares {_num(s['classical']['runtime_s'], 3)} s).</p>
<h2>Settings</h2>
<pre>{html.escape(settings)}</pre>
</body></html>
"""
    path.write_text(body)
