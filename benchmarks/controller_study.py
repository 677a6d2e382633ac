"""How the adaptive steps are chosen, measured: the last step before a stop, and the PI
controller's coefficients and safety factor against OrdinaryDiffEq's and diffrax's defaults.

Both parts solve forward in float64 against a reference (the same problem at rtol = atol =
1e-12) and count the evaluations of `f` (NFE, rejected steps included); the work-precision part
also times each solve (median of `--reps` on one thread).

- `last_step`: the rule for the steps before a stop (`PIController.toward`), over random MLP
  fields, end times and tolerances: "clip" (pyanode's old rule: land when the rest is within
  1.01 dt, else step dt and clip the next), "stretch" (land within dt / safety), "halve" (land
  within 1.01 dt, two equal steps within 2 dt) and "stretch+halve" (pyanode's rule now).
- `controller`: error against NFE and wall time over rtol = atol = 1e-2 ... 1e-8 for the
  coefficient sets below, with Dopri5 and Tsit5, on MLP fields and Van der Pol.

    python -m benchmarks.controller_study --out results/benchmarks/controller-study
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from pyanode.solvers import Dopri5, PIController, Tsit5, solve
from pyanode.torch import MLPField

TOLERANCES = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
END_TIMES = (0.7, 1.0, 1.3, 2.0, 3.1)  # where the last step falls varies with t1


@dataclass(frozen=True)
class Clip(PIController):
    """The old rule: land within 1.01 dt, else a full step (a sliver may remain)."""

    def toward(self, rest, dt, floor):
        return (rest, True) if rest <= 1.01 * dt + floor else (dt, False)


@dataclass(frozen=True)
class Stretch(PIController):
    """Land within dt / safety, else a full step."""

    def toward(self, rest, dt, floor):
        return (rest, True) if rest <= dt / self.safety + floor else (dt, False)


@dataclass(frozen=True)
class Halve(PIController):
    """Land within 1.01 dt, two equal steps within 2 dt, else a full step."""

    def toward(self, rest, dt, floor):
        if rest <= 1.01 * dt + floor:
            return rest, True
        return (0.5 * rest, False) if rest <= 2.0 * dt else (dt, False)


RULES: dict[str, type[PIController]] = {
    "clip": Clip,
    "stretch": Stretch,
    "halve": Halve,
    "stretch+halve": PIController,
}

# (name, PIController settings, where they come from). pyanode's exponents are
# -(icoeff + pcoeff) / k on the error and pcoeff / k on the previous one (k = 5 for both
# methods), so OrdinaryDiffEq's beta1, beta2 are (icoeff + pcoeff) / 5 and pcoeff / 5.
CONTROLLERS: tuple[tuple[str, dict, str], ...] = (
    ("I, safety 0.9", {}, "pyanode's and diffrax's default (PIDController())"),
    ("PI 0.2/0.65", {"pcoeff": 0.2, "icoeff": 0.65},
     "OrdinaryDiffEq DP5: beta1 = 0.17, beta2 = 0.04 (Hairer's DOPRI5)"),
    ("PI 0.4/0.3", {"pcoeff": 0.4, "icoeff": 0.3},
     "OrdinaryDiffEq's default, so Tsit5's: beta1 = 7/50, beta2 = 2/25"),
    ("PI 0.4/1", {"pcoeff": 0.4, "icoeff": 1.0},
     "diffrax's suggestion for smooth problems"),
    ("I, safety 0.8", {"safety": 0.8}, "a more cautious safety factor"),
    ("I, safety 0.95", {"safety": 0.95}, "a bolder safety factor"),
)  # fmt: skip


@dataclass(frozen=True)
class Problem:
    name: str
    f: Callable
    y0: torch.Tensor
    t1: float


def mlp_problem(seed: int, batch: int, width: int, dim: int = 2, t1: float = 1.0) -> Problem:
    """A random MLP field `[z, t] -> width -> relu -> width -> relu -> dim` (PyTorch's default
    initialisation) from standard normal states, in float64."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    field = MLPField(dim, width).double()
    y0 = torch.randn(batch, dim, generator=gen, dtype=torch.float64)
    return Problem(f"mlp d={dim} B={batch} W={width} seed={seed}", field, y0, t1)


def van_der_pol(t1: float = 6.0) -> Problem:
    def f(t, y, args):
        x, v = y[:, 0], y[:, 1]
        return torch.stack([v, (1.0 - x * x) * v - x], dim=1)

    y0 = torch.tensor([[2.0, 0.0], [0.5, -1.0], [-1.0, 1.5]], dtype=torch.float64)
    return Problem("van der pol mu=1", f, y0, t1)


def reference(p: Problem, solver) -> torch.Tensor:
    tight = PIController(rtol=1e-12, atol=1e-12, max_steps=10**6)
    with torch.no_grad():
        return solve(p.f, p.y0, 0.0, p.t1, solver=solver, controller=tight).ys


def run_one(p: Problem, solver, controller, ref: torch.Tensor, reps: int = 0) -> dict:
    """NFE, steps and relative RMS error of one solve (and its median wall time over `reps`)."""
    with torch.no_grad():
        sol = solve(p.f, p.y0, 0.0, p.t1, solver=solver, controller=controller)
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            solve(p.f, p.y0, 0.0, p.t1, solver=solver, controller=controller)
            times.append(time.perf_counter() - start)
    err = float(torch.linalg.vector_norm(sol.ys - ref) / torch.linalg.vector_norm(ref))
    s = sol.stats
    row = {"nfe": s.nfe_forward, "accepted": s.n_accepted, "rejected": s.n_rejected, "error": err}
    if reps:
        row["seconds"] = statistics.median(times)
    return row


def last_step(seeds: int) -> list[dict]:
    rows = []
    problems = [mlp_problem(seed, 256, 32, t1=t1) for seed in range(seeds) for t1 in END_TIMES]
    problems.append(mlp_problem(0, 8192, 256))  # issue 18's case (at rtol 1e-3 only)
    for p in problems:
        ref = reference(p, Dopri5())
        tols = (1e-3,) if p.y0.shape[0] == 8192 else TOLERANCES
        for tol in tols:
            for rule, cls in RULES.items():
                row = run_one(p, Dopri5(), cls(rtol=tol, atol=tol), ref)
                rows.append({"problem": p.name, "t1": p.t1, "tol": tol, "rule": rule, **row})
    return rows


def controllers(seeds: int, reps: int) -> list[dict]:
    rows = []
    problems = [mlp_problem(seed, 256, 32) for seed in range(seeds)]
    problems += [mlp_problem(0, 256, 256), van_der_pol()]
    for p in problems:
        for solver in (Dopri5(), Tsit5()):
            ref = reference(p, solver)
            for tol in TOLERANCES:
                for name, settings, _ in CONTROLLERS:
                    controller = PIController(rtol=tol, atol=tol, **settings)
                    row = run_one(p, solver, controller, ref, reps)
                    rows.append({"problem": p.name, "solver": type(solver).__name__,
                                 "tol": tol, "controller": name, **row})  # fmt: skip
    return rows


# -- summaries (also used by the docs' renderer) --------------------------------------------------
def _geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def summarise_last_step(rows: list[dict]) -> list[dict]:
    """Per rule and tolerance band: total NFE, rejected steps, and the geometric mean of the
    error ratio, relative to "clip" on the same problems."""
    by = {(r["problem"], r["t1"], r["tol"], r["rule"]): r for r in rows}
    bands = {"all": lambda tol: True, "rtol >= 1e-4": lambda tol: tol >= 1e-4,
             "rtol <= 1e-5": lambda tol: tol <= 1e-5}  # fmt: skip
    out = []
    for rule in RULES:
        for band, keep in bands.items():
            pairs = [(by[(*k[:3], rule)], r) for k, r in by.items()
                     if k[3] == "clip" and keep(k[2])]  # fmt: skip
            out.append({
                "rule": rule, "band": band, "cases": len(pairs),
                "nfe": sum(a["nfe"] for a, _ in pairs),
                "nfe_clip": sum(b["nfe"] for _, b in pairs),
                "rejected": sum(a["rejected"] for a, _ in pairs),
                "fewer": sum(a["nfe"] < b["nfe"] for a, b in pairs),
                "more": sum(a["nfe"] > b["nfe"] for a, b in pairs),
                "error_ratio": _geomean([max(a["error"], 1e-300) / max(b["error"], 1e-300)
                                         for a, b in pairs]),
            })  # fmt: skip
    return out


def cost_at(rows: list[dict], key: str, level: float) -> float:
    """The `key` (NFE or seconds) a curve of `rows` (one controller, one problem and solver,
    over the tolerances) needs to reach relative error `level`: log-log interpolation between
    the two tolerances around it; NaN when the curve does not reach it or starts below it."""
    pts = sorted(((r["error"], r[key]) for r in rows), reverse=True)
    for (e0, c0), (e1, c1) in zip(pts, pts[1:], strict=False):
        if e1 <= level <= e0 and e0 > e1 > 0:
            w = math.log(e0 / level) / math.log(e0 / e1)
            return math.exp((1 - w) * math.log(c0) + w * math.log(c1))
    return math.nan


LEVELS = (1e-4, 1e-5, 1e-6)  # reached by every curve


def summarise_controllers(rows: list[dict]) -> list[dict]:
    """Per controller and error level: the geometric mean over (problem, solver) of the NFE
    and of the wall time it needs to reach the level, relative to the default's."""
    curves: dict[tuple, list[dict]] = {}
    for r in rows:
        curves.setdefault((r["problem"], r["solver"], r["controller"]), []).append(r)
    base = CONTROLLERS[0][0]
    out = []
    for name, _, source in CONTROLLERS:
        for level in LEVELS:
            entry = {"controller": name, "source": source, "level": level}
            for key in ("nfe", "seconds"):
                ratios = []
                for (prob, solver, c), curve in curves.items():
                    if c != name:
                        continue
                    mine = cost_at(curve, key, level)
                    theirs = cost_at(curves[prob, solver, base], key, level)
                    if math.isfinite(mine) and math.isfinite(theirs):
                        ratios.append(mine / theirs)
                entry[key] = _geomean(ratios) if ratios else math.nan
                entry["curves"] = len(ratios)
            out.append(entry)
    rejected = {}
    for r in rows:
        rejected[r["controller"]] = rejected.get(r["controller"], 0) + r["rejected"]
    for entry in out:
        entry["rejected"] = rejected[entry["controller"]]
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON")
    parser.add_argument("--seeds", type=int, default=2, help="random MLP fields per part")
    parser.add_argument("--reps", type=int, default=3, help="timed repeats per solve")
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 rep (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.reps = 1, 1
    torch.set_num_threads(1)
    start = time.perf_counter()
    steps = last_step(args.seeds)
    ctrl = controllers(args.seeds, args.reps)
    result = {
        "config": {**{k: str(v) for k, v in vars(args).items()}, "tolerances": TOLERANCES,
                   "end_times": END_TIMES, "levels": LEVELS,
                   "controllers": [{"name": n, "settings": s, "source": src}
                                   for n, s, src in CONTROLLERS]},
        "last_step": {"rows": steps, "summary": summarise_last_step(steps)},
        "controller": {"rows": ctrl, "summary": summarise_controllers(ctrl)},
        "seconds": time.perf_counter() - start,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "controller_study.json").write_text(json.dumps(result, indent=1) + "\n")
    for entry in result["last_step"]["summary"]:
        print(entry)
    for entry in result["controller"]["summary"]:
        print(entry)
    return result


if __name__ == "__main__":
    main()
