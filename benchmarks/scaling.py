"""Cost as the work grows (issue 18): one solve of a random MLP field at growing batch, width
and state dim in every library, and the libraries' work-precision at two sizes.

    python -m benchmarks.scaling --json results/benchmarks/scaling.json \
        --figure benchmarks/work_precision.png

The field is `[z, t] -> Linear(d+1, w) -> ReLU -> Linear(w, w) -> ReLU -> Linear(w, d)`, the same
weights (uniform in ±1/sqrt(fan-in), seeded) and initial states (standard normal) for all; Dopri5
on [0, 1] in every library:

- pyanode `MLPField` solved by `pyanode.solve` (the fused kernel, "pyanode fused"), and the same
  `nn.Sequential` as a plain `nn.Module` field `f(t, z)` ("pyanode generic");
- torchdiffeq `odeint`, torchdyn `NeuralODE` (`DepthCat`), diffrax `diffeqsolve` (compiled once
  per shape and tolerance; the compile time is stored apart).

Sizes: forward + backward (backprop) of `sum(z(1) * w)` at rtol = atol = 1e-3, float32: the median
time over rounds (the libraries taking turns), the noise, forward NFE and ms per forward NFE.

Work-precision: float64, the forward solve at rtol = atol = 1e-2 ... 1e-8 against a reference
(torchdiffeq `dopri8` at rtol = atol = 1e-10); the error is the RMS of `z(1) - z_ref(1)` over every
element. The target (`time_to_error`): at three error levels inside the range every library
reached, each library's time read off its curve (linear in log-log), pyanode's against the best
peer's.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import sys
from dataclasses import asdict

import numpy as np
import torch
from torch import nn

from benchmarks._timing import LoadMeter, Samples, alternate
from benchmarks.peers import NFECounter, _CountedField, _TorchdynBlock
from pyanode import SolverSpec
from pyanode.solvers import PIController, solve
from pyanode.torch import MLPField

SIZES = ((2, 96, 32), (2, 1024, 32), (2, 8192, 32), (2, 1024, 256), (20, 1024, 256))
PRECISION_SIZES = ((2, 96, 32), (2, 1024, 256))
TOLERANCES = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
LIBRARIES = ("pyanode fused", "pyanode generic", "torchdiffeq", "torchdyn", "diffrax")


class PlainField(nn.Module):
    """The same MLP as a plain `nn.Module` field `f(t, z)`: pyanode's generic (autograd) path."""

    def __init__(self, net: nn.Sequential):
        super().__init__()
        self.net = net

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, t.to(z.dtype).expand(z.shape[0], 1)], dim=1))


def problem(dim: int, batch: int, width: int, seed: int, dtype: torch.dtype):
    """The pyanode `MLPField` with seeded weights, the initial states and the loss weights."""
    gen = torch.Generator().manual_seed(seed)
    field = MLPField(dim, width, act="relu").to(dtype)
    with torch.no_grad():
        for module in field.net:
            if isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.in_features)
                for p in (module.weight, module.bias):
                    p.copy_((torch.rand(p.shape, generator=gen, dtype=dtype) * 2 - 1) * bound)
    z0 = torch.randn(batch, dim, generator=gen, dtype=dtype)
    weight = torch.randn(batch, dim, generator=gen, dtype=dtype)
    return field, z0, weight


class Solvers:
    """Every library's forward solve `z(1) = solve(z0)` and its forward NFE, at one tolerance."""

    def __init__(self, field: MLPField, rtol: float, atol: float, libraries: tuple[str, ...]):
        import torchdiffeq

        self.libraries, self.counters, self.calls = libraries, {}, {}
        controller = PIController(rtol=rtol, atol=atol)
        plain = PlainField(field.net)
        self.last_stats = {}

        def pyanode_solve(f, name):
            def call(z0):
                sol = solve(f, z0, 0.0, 1.0, controller=controller)
                self.last_stats[name] = sol.stats.nfe_forward
                return sol.ys

            return call

        self.calls["pyanode fused"] = pyanode_solve(field, "pyanode fused")
        self.calls["pyanode generic"] = pyanode_solve(plain, "pyanode generic")
        counter = self.counters["torchdiffeq"] = NFECounter()
        counted = _CountedField(field.net, counter)
        self.calls["torchdiffeq"] = lambda z0: torchdiffeq.odeint(
            counted, z0, torch.tensor([0.0, 1.0], dtype=z0.dtype), rtol=rtol, atol=atol,
            method="dopri5")[-1]  # fmt: skip
        counter = self.counters["torchdyn"] = NFECounter()
        spec = SolverSpec(solver="dp5", rtol=rtol, atol=atol)
        block = _TorchdynBlock(field.net, counter, spec).to(next(field.parameters()).dtype)
        self.calls["torchdyn"] = block

    def nfe(self, library: str, z0: torch.Tensor) -> int:
        """Forward evaluations of one solve (untimed)."""
        with torch.no_grad():
            if library in self.counters:
                self.counters[library].reset()
                self.calls[library](z0)
                return self.counters[library].forward
            self.calls[library](z0)
            return self.last_stats[library]


def sizes_table(args) -> list[dict]:
    """Forward + backward of one solve at every size, the libraries taking turns."""
    out = []
    for dim, batch, width in args.sizes:
        out.append(_size(args, dim, batch, width))
        print(sizes_rows(out[-1]), flush=True)
    return out


def _size(args, dim: int, batch: int, width: int) -> dict:
    field, z0, weight = problem(dim, batch, width, args.seed, torch.float32)
    torch_libraries = tuple(lib for lib in args.libraries if lib != "diffrax")
    solvers = Solvers(field, args.rtol, args.atol, torch_libraries)
    fns, nfe, compile_s = {}, {}, {}

    def forward_backward(call):
        def run():
            z = z0.detach().requires_grad_()
            (call(z) * weight).sum().backward()

        return run

    for library in torch_libraries:
        fns[library] = forward_backward(solvers.calls[library])
        nfe[library] = solvers.nfe(library, z0)
    if "diffrax" in args.libraries:
        from benchmarks.diffrax_peer import solve_calls

        jax_calls = solve_calls(field.net, z0, weight, rtol=args.rtol, atol=args.atol,
                                gradients=("backprop",))  # fmt: skip
        fns["diffrax"] = jax_calls.calls["backprop"]
        nfe["diffrax"] = jax_calls.nfe["forward"][0]
        compile_s["diffrax"] = jax_calls.compile_s["backprop"]
    gc.collect()
    # calls per round: about `budget` seconds per library over the rounds (fwd + bwd ~ 3 x 20
    # evaluations at ~30 GMAC/s, plus ~2 ms of overhead)
    seconds = 60 * batch * width * (width + 2 * dim + 1) / 30e9 + 2e-3
    reps = min(20, max(1, round(args.budget / args.rounds / seconds)))
    samples = alternate(fns, rounds=args.rounds, reps=reps, warmup=1)
    return {"dim": dim, "batch": batch, "width": width, "reps": reps, "results": [
        {"library": library, "nfe_forward": nfe[library], "compile_s": compile_s.get(library),
         **asdict(times)} for library, times in samples.items()]}  # fmt: skip


def sizes_rows(row: dict) -> str:
    """One size's Markdown rows: library, ms, noise, NFE, ms per forward NFE."""
    lines = []
    for r in row["results"]:
        ms = Samples(r["wall"], r["cpu"]).median * 1e3
        lines.append(f"| {row['dim']}, {row['batch']}, {row['width']} | {r['library']} | "
                     f"{ms:.2f} | {Samples(r['wall'], r['cpu']).spread:.2f} | "
                     f"{r['nfe_forward']} | {ms / r['nfe_forward']:.3f} |")  # fmt: skip
    return "\n".join(lines)


def precision(args) -> list[dict]:
    """Error against the float64 reference and forward time, per library and tolerance."""
    import torchdiffeq

    out = []
    for dim, batch, width in args.precision_sizes:
        field, z0, _ = problem(dim, batch, width, args.seed, torch.float64)
        plain = PlainField(field.net)
        with torch.no_grad():
            reference = torchdiffeq.odeint(plain, z0, torch.tensor([0.0, 1.0], dtype=z0.dtype),
                                           rtol=1e-10, atol=1e-10, method="dopri8")[-1]  # fmt: skip
        points = []
        for tol in args.tolerances:
            with _x64(args.libraries):
                points += _precision_points(args, field, z0, reference, tol)
            print(f"precision {dim}, {batch}, {width} at tol {tol:g}: " + ", ".join(
                f"{p['library']} {Samples(p['wall'], p['cpu']).median * 1e3:.2f} ms, error "
                f"{p['error']:.1e}" for p in points if p["tol"] == tol), flush=True)  # fmt: skip
        out.append({"dim": dim, "batch": batch, "width": width, "points": points})
    return out


def _x64(libraries):
    """diffrax in float64 (jax computes in float32 unless told), for the error study only."""
    if "diffrax" not in libraries:
        return contextlib.nullcontext()
    import jax

    return jax.enable_x64(True)


def _precision_points(args, field, z0, reference, tol) -> list[dict]:
    """Every library's forward solve at rtol = atol = `tol`: error, NFE and times."""
    torch_libraries = tuple(lib for lib in args.libraries if lib != "diffrax")
    solvers = Solvers(field, tol, tol, torch_libraries)
    fns, ys, nfe, compile_s = {}, {}, {}, {}
    for library in torch_libraries:
        fns[library] = _no_grad(solvers.calls[library], z0)
        with torch.no_grad():
            ys[library] = solvers.calls[library](z0)
        nfe[library] = solvers.nfe(library, z0)
    if "diffrax" in args.libraries:
        from benchmarks.diffrax_peer import solve_calls

        jax_calls = solve_calls(field.net, z0, z0, rtol=tol, atol=tol, gradients=())
        fns["diffrax"] = jax_calls.calls["forward"]
        ys["diffrax"] = torch.tensor(np.asarray(jax_calls.calls["forward"]()))
        nfe["diffrax"] = jax_calls.nfe["forward"][0]
        compile_s["diffrax"] = jax_calls.compile_s["forward"]
    samples = alternate(fns, rounds=args.precision_rounds, reps=1, warmup=1)
    points = []
    for library, times in samples.items():
        error = (ys[library] - reference).pow(2).mean().sqrt().item()
        points.append({"library": library, "tol": tol, "error": error,
                       "nfe_forward": nfe[library], "compile_s": compile_s.get(library),
                       **asdict(times)})  # fmt: skip
    return points


def _no_grad(call, z0):
    def run():
        with torch.no_grad():
            call(z0)

    return run


def time_to_error(points: list[dict], levels: int = 3) -> dict:
    """Each library's forward time at `levels` error levels, read off its work-precision curve
    (linear interpolation of log time against log error), the levels spread geometrically over
    the middle half of the error range that every library covered."""
    curves = {}
    for p in points:
        wall = Samples(p["wall"], p["cpu"]).median
        curves.setdefault(p["library"], []).append((math.log(p["error"]), math.log(wall)))
    low = max(min(e for e, _ in c) for c in curves.values())
    high = min(max(e for e, _ in c) for c in curves.values())
    if not low < high:
        return {"levels": [], "times": {}}
    span = high - low
    at = [low + span * (0.25 + 0.5 * k / (levels - 1)) for k in range(levels)]
    times = {}
    for library, curve in curves.items():
        curve.sort()
        errors, walls = zip(*curve, strict=True)
        times[library] = [math.exp(float(np.interp(a, errors, walls))) for a in at]
    return {"levels": [math.exp(a) for a in at], "times": times}


def plot(panels: list[dict], path: str) -> None:
    """Work-precision curves, one panel per size (the pyanode plots' figure helpers)."""
    from matplotlib.ticker import NullFormatter

    from pyanode.plots import new_figure, save_figure

    colors = dict(zip(LIBRARIES, ("#1f77b4", "#17becf", "#ff7f0e", "#2ca02c", "#d62728"),
                      strict=True))  # fmt: skip
    fig = new_figure(4.2 * len(panels), 3.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=True):
        for library in LIBRARIES:
            mine = sorted((p["error"], Samples(p["wall"], p["cpu"]).median * 1e3)
                          for p in panel["points"] if p["library"] == library)  # fmt: skip
            if mine:
                dashed = library == "pyanode generic"
                ax.plot(*zip(*mine, strict=True), marker="o", markersize=3, label=library,
                        color=colors[library], linestyle="--" if dashed else "-")  # fmt: skip
        for level in time_to_error(panel["points"])["levels"]:
            ax.axvline(level, color="grey", linewidth=0.6, linestyle=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("RMS error of z(1) against the float64 reference")
        ax.set_ylabel("forward solve, ms (median)")
        ax.set_title(f"d = {panel['dim']}, batch {panel['batch']}, width {panel['width']}",
                     fontsize=9)  # fmt: skip
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path, formats=("png",))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtol", type=float, default=1e-3)
    parser.add_argument("--atol", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=7,
                        help="rounds per size (the libraries take turns)")  # fmt: skip
    parser.add_argument(
        "--budget",
        type=float,
        default=1.0,
        help="seconds per library and size, roughly (sets the calls per round)",
    )
    parser.add_argument("--precision-rounds", type=int, default=5)
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES), choices=LIBRARIES)
    parser.add_argument("--no-sizes", dest="sizes_run", action="store_false")
    parser.add_argument("--no-precision", dest="precision_run", action="store_false")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 rounds, two small sizes, four tolerances (a smoke run)",
    )
    parser.add_argument("--json", help="write every measurement to this file")
    parser.add_argument("--figure", help="write the work-precision figure (PNG) here")
    args = parser.parse_args(argv)
    args.sizes, args.precision_sizes, args.tolerances = SIZES, PRECISION_SIZES, TOLERANCES
    if args.quick:
        args.rounds, args.precision_rounds, args.budget = 3, 3, 0.2
        args.sizes, args.tolerances = SIZES[:2], TOLERANCES[::2]
        args.precision_sizes = ((2, 96, 32), (2, 256, 32))
    args.libraries = tuple(args.libraries)
    return args


def main(argv: list[str] | None = None) -> None:
    from benchmarks.run import _versions, available, finish

    args = parse(argv)
    args.libraries = available(args.libraries)
    torch.set_num_threads(1)
    load = LoadMeter()
    print(f"# Cost as the work grows\n\n{_versions(args.libraries)}\n")
    data: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    if args.sizes_run:
        print("| d, batch, width | library | ms (fwd + bwd) | noise | NFE f | ms per NFE f |\n"
              "|---|---|---|---|---|---|")  # fmt: skip
        data["sizes"] = sizes_table(args)
    if args.precision_run:
        data["precision"] = precision(args)
        for panel in data["precision"]:
            panel["time_to_error"] = time_to_error(panel["points"])
        if args.figure:
            plot(data["precision"], args.figure)
    finish(data, load, args.json)


if __name__ == "__main__":
    sys.exit(main())
