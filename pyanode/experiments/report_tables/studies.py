"""The regions of docs/studies.md: the solver-accuracy and gradient studies."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pyanode.experiments.report_tables.common import Data, and_list, pct, sci, table


def study_forward(data: Data) -> str:
    rows = data.rows("study-forward", "forward.csv")
    chosen = [("dp5", 1e-3), ("dp5", 1e-5), ("dp5", 1e-8), ("tsit5", 1e-3), ("tsit5", 1e-5),
              ("tsit5", 1e-8), ("bosh3", 1e-8)]  # fmt: skip
    t1 = data.json("study-forward", "study.json")["problem"]["t1"]
    steps = [("rk4", 4), ("rk4", 32), ("rk4", 128), ("euler", 128)]
    picked = [r for s, tol in chosen for r in rows if r["backend"] == "torch"
              and r["solver"] == s and r["rtol"] == tol]  # fmt: skip
    picked += [r for s, n in steps for r in rows if r["backend"] == "torch"
               and r["solver"] == s and math.isclose(r["dt"], t1 / n)]  # fmt: skip
    body = table(
        ["solver", "tol / dt", "NFE", "time [s]", "error of z(T)"],
        [[r["solver"], _tol_or_dt(r, t1), f"{r['nfe_forward']:.0f}", f"{r['seconds']:.4f}",
          sci(r["error"])] for r in picked],
        "llrrr",
    )  # fmt: skip
    steps = data.json("study-forward", "study.json")["config"]["steps"]
    orders = data.rows("study-forward", "orders.csv")
    measured = ", ".join(f"{o['solver']} {o['measured_order']:.2f}" for o in orders
                         if o["backend"] == "torch")  # fmt: skip
    return "\n\n".join([
        body,
        f"Measured orders on this flow (least-squares slope over {min(steps)}-{max(steps)} "
        f"steps): "
        f"{measured}.",
        data.source("study-forward"),
    ])  # fmt: skip


def _tol_or_dt(row: dict[str, Any], t1: float) -> str:
    if not math.isnan(row["rtol"]):
        return f"{row['rtol']:.0e}".replace("e-0", "e-")
    return f"dt = {t1:g}/{round(t1 / row['dt'])}"


def study_gradient(data: Data) -> str:
    rows = [r for r in data.rows("study-gradient", "gradient.csv")
            if r["backend"] == "torch" and r["solver"] == "dp5"]  # fmt: skip
    shown = [r for tol in SHOWN_TOLERANCES for r in rows if r["rtol"] == tol]
    body = table(
        ["gradient", "rtol", "NFE fwd + bwd", "time [s]", "peak memory", "gradient error"],
        [[r["gradient"], _tol_or_dt(r, 1.0), f"{r['nfe_forward']:.0f} + {r['nfe_backward']:.0f}",
          f"{r['seconds']:.3f}", _mb(r["peak_bytes"]), sci(r["error"])] for r in shown],
        "llrrrr",
    )  # fmt: skip

    def peaks(gradient: str) -> list[float]:
        return [r["peak_bytes"] for r in rows if r["gradient"] == gradient]

    backprop = sorted((r["nfe_forward"], r["peak_bytes"]) for r in rows
                      if r["gradient"] == "backprop")  # fmt: skip
    per_eval = (backprop[-1][1] - backprop[0][1]) / (backprop[-1][0] - backprop[0][0])
    adjoint, full = peaks("adjoint"), peaks("adjoint-fullnorm")
    return "\n\n".join([
        body,
        f"Peak memory allocated by dp5's forward + backward (see Memory above), rtol "
        f"{_tol_or_dt(rows[0], 1)} to {_tol_or_dt(rows[-1], 1)}: backprop's grows with the "
        f"steps, {_mb(per_eval)} per forward evaluation ({_mb(backprop[0][1])} to "
        f"{_mb(backprop[-1][1])}); the seminorm adjoint's stays within {_span(adjoint)} (its "
        f"chunks of stage VJP records), the full-norm adjoint's within {_span(full)}.",
        data.source("study-gradient"),
    ])  # fmt: skip


def _mb(value: float) -> str:
    return f"{value / 1e6:.2f} MB"


def _span(values: Sequence[float]) -> str:
    lo, hi = min(values), max(values)
    return _mb(lo) if _mb(lo) == _mb(hi) else f"{lo / 1e6:.2f}-{_mb(hi)}"


def study_reference(data: Data) -> str:
    study = data.json("study-forward", "study.json")
    fwd = study["reference"]
    grad = data.json("study-gradient", "study.json")["reference"]
    problem = study["problem"]
    scipy = fwd.get("scipy_dop853_change")
    return "\n\n".join([
        f"For `{problem['name']}` ({problem['description']}; {problem['n_parameters']} "
        f"parameters): the reference end state ({fwd['solver']}, rtol {fwd['rtol']:g}, "
        f"{fwd['nfe']} NFE) changes by {sci(fwd['halving_change'], 1)} when the tolerance is "
        f"halved; Tsit5 differs from it by {sci(fwd['tsit5_change'], 1)}"
        + ("" if scipy is None else f", scipy's DOP853 by {sci(scipy, 1)}")
        + f". The reference gradient ({grad['solver']}) changes by "
        f"{sci(grad['halving_change'], 1)} when the tolerance is halved and differs from the "
        f"full-norm adjoint's by {sci(grad['adjoint_change'], 1)}.",
        data.source("study-forward", "study-gradient"),
    ])  # fmt: skip


def study_cross_solver(data: Data) -> str:
    rows = [r for r in data.rows("study-cross-solver", "cross_solver.csv")
            if r["backend"] == "torch"]  # fmt: skip
    trained = list(dict.fromkeys(r["trained_with"] for r in rows))
    evaluated = list(dict.fromkeys(r["evaluated_with"] for r in rows))
    acc = {(r["trained_with"], r["evaluated_with"]): r["test_acc"] for r in rows}
    body = table(
        ["trained with \\ tested with", *evaluated],
        [[t, *(pct(acc[t, e]) if (t, e) in acc else "—" for e in evaluated)] for t in trained],
    )
    return "\n\n".join([
        "Test accuracy % of each trained net (rows) with each solver setting (columns; `exact`: "
        "float64 Dopri5 at rtol 1e-10):",
        body,
        data.source("study-cross-solver"),
    ])  # fmt: skip


SHOWN_TOLERANCES = (1e-3, 1e-5, 1e-8)  # the rows of the tables excerpted from a study


def study_batch_coupling(data: Data) -> str:
    rows = [r for r in data.rows("study-batch-coupling", "batch_coupling.csv")
            if r["backend"] == "torch"]  # fmt: skip
    by = {(r["solver"], r["rtol"], r["mode"]): r for r in rows}
    out = []
    for solver, rtol, mode in by:
        if mode != "batch" or rtol not in SHOWN_TOLERANCES:
            continue
        b, s = by[solver, rtol, "batch"], by.get((solver, rtol, "per-sample"))
        if s is None:
            continue
        out.append(
            [
                solver,
                _tol_or_dt(b, 1),
                f"{b['nfe_forward']:.0f}",
                f"{s['nfe_forward']:.0f} ({s['nfe_min']:.0f}-{s['nfe_max']:.0f})",
                f"{1 - s['nfe_forward'] / b['nfe_forward']:.0%}",
                f"{s['seconds'] / b['seconds']:.0f}x",
                sci(b["error"]),
                sci(s["error"]),
            ]
        )
    samples = data.json("study-batch-coupling", "study.json")["config"]["samples"]
    shown = ", ".join(_tol_or_dt({"rtol": t}, 1) for t in SHOWN_TOLERANCES)
    return "\n\n".join([
        table(["solver", "rtol", "NFE, batch", "NFE per sample alone: mean (min-max)",
               "NFE saved", "time, per-sample loop / batch", "error, batch",
               "error, per sample"], out, "llrrrrrr"),
        f"{samples} test points; tolerances {shown} of the study's (all in "
        "`batch_coupling.csv`).",
        data.source("study-batch-coupling"),
    ])  # fmt: skip


def controller_study(data: Data) -> str:
    """The last-step rules and the PI coefficients (`benchmarks/controller_study.py`)."""
    study = data.json("controller-study", "controller_study.json")
    config = study["config"]
    by = {(e["rule"], e["band"]): e for e in study["last_step"]["summary"]}
    rules = list(dict.fromkeys(e["rule"] for e in study["last_step"]["summary"]))
    bands = list(dict.fromkeys(e["band"] for e in study["last_step"]["summary"]))
    issue = {r["rule"]: r for r in study["last_step"]["rows"] if "B=8192" in r["problem"]}
    steps = []
    for rule in rules:
        cells = []
        for band in bands:
            e = by[rule, band]
            cells.append(f"{e['nfe'] / e['nfe_clip'] - 1:+.1%} ({e['fewer']}/{e['more']})")
        e = by[rule, "all"]
        extra = [f"{issue[rule]['nfe']}"] if issue else []
        steps.append([rule, *cells, f"{e['rejected']}", f"{e['error_ratio']:.2f}", *extra])
    n_cases = by[rules[0], "all"]["cases"]
    header = ["rule", *(f"NFE vs clip, {b} (solves fewer/more)" for b in bands),
              "rejected steps", "error / clip's (geometric mean)",
              *(["issue 18 case: NFE"] if issue else [])]  # fmt: skip
    levels = config["levels"]
    summary = study["controller"]["summary"]
    names = list(dict.fromkeys(e["controller"] for e in summary))
    at = {(e["controller"], e["level"]): e for e in summary}
    rows = []
    for name in names:
        entries = [at[name, level] for level in levels]
        rows.append([f"{name}: {entries[0]['source']}",
                     *(f"{e['nfe']:.2f}" for e in entries),
                     *(f"{e['seconds']:.2f}" for e in entries),
                     f"{entries[0]['rejected']}"])  # fmt: skip
    problems = sorted({r["problem"] for r in study["controller"]["rows"]})
    tols = ", ".join(sci(t, 0) for t in config["tolerances"])
    return "\n\n".join([
        table(header, steps, "l" + "r" * (len(header) - 1)),
        f"Dopri5, float64, {n_cases} solves (random MLP fields, t1 in "
        f"{and_list(f'{t:g}' for t in config['end_times'])}, rtol = atol in {tols}); error "
        "relative to an rtol 1e-12 solve.",
        table(["controller (pcoeff/icoeff)",
               *(f"NFE to {sci(v, 0)}" for v in levels),
               *(f"time to {sci(v, 0)}" for v in levels), "rejected steps"], rows,
              "l" + "r" * (2 * len(levels) + 1)),
        "Cost to reach a relative error (log-log interpolation along each work-precision "
        "curve over the tolerances), over the default's: geometric mean over the curves "
        f"(Dopri5 and Tsit5 on {and_list(problems)}); time: median of {config['reps']} solves.",
        data.source("controller-study"),
    ])  # fmt: skip
