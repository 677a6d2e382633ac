"""The regions of benchmarks/README.md: pyanode against its peers, the targets, the floor."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pyanode.experiments.report_tables.common import Data, sci, table

PEERS = ("torchdiffeq", "torchdyn", "diffrax")
SHORT = {"pyanode": "pa", "torchdiffeq": "tde", "torchdyn": "tdy", "diffrax": "dfx"}
# the speed targets of issues 7 and 14: (configuration, peer, speed-up at least)
TARGETS = tuple((f"node/{gradient}/{data}", peer, goal)
                for gradient, peer, goal in (("backprop", "torchdyn", 5.0),
                                             ("backprop", "torchdiffeq", 7.0),
                                             ("adjoint", "torchdyn", 4.0))
                for data in ("three-spheres", "concentric-spheres"))  # fmt: skip
PER_BATCH_OF_DIFFRAX = 0.8  # issue 14: pyanode's time per training batch at most this x diffrax's
FLOOR_FACTOR = 2.0  # issue 14: one forward solve within this factor of the arithmetic floor


def _median(values: Sequence[float]) -> float:
    import statistics

    return statistics.median(values)


def _config_name(config: str) -> str:
    kind, gradient, dataset = config.split("/")
    return f"{kind.upper()} {gradient}, {dataset.replace('-', ' ')}"


def _epoch(results: list[dict[str, Any]]) -> dict[str, float]:
    """Median wall seconds per epoch of each library."""
    return {r["library"]: _median(r["epochs"]["wall"]) for r in results}


def _batches(cpu: dict[str, Any]) -> int:
    """Training batches per epoch of the run."""
    args = cpu["args"]
    return -(-int(args["points"]) // int(args["batch_size"]))


def _speed(mine: float, theirs: float) -> str:
    return f"{mine / theirs:.3f} ({theirs / mine:.1f}x)"


def _nfe(pair: Sequence[float]) -> str:
    return "/".join(f"{v:g}" if float(v).is_integer() else f"{v:.1f}" for v in pair)


def bench_training(data: Data) -> str:
    cpu = data.json("benchmarks", "cpu.json")
    rows, per_batch = [], 1e3 / _batches(cpu)
    present = [
        lib
        for lib in ("pyanode", *PEERS)
        if any(r["library"] == lib for rs in cpu["training"].values() for r in rs)
    ]
    peers = present[1:]
    for config, results in cpu["training"].items():
        by, epoch = {r["library"]: r for r in results}, _epoch(results)
        compiled = by.get("diffrax", {}).get("compile_s")
        rows.append([
            _config_name(config), *(f"{epoch[lib] * per_batch:.2f}" for lib in present),
            *(_speed(epoch["pyanode"], epoch[peer]) for peer in peers),
            ", ".join(_nfe(by[lib]["nfe_last"]) for lib in present),
            " / ".join(f"{by[lib]['test_acc']:.3f}" for lib in present),
            " / ".join("—" if by[lib]["peak_mib"] is None else f"{by[lib]['peak_mib']:.1f}"
                       for lib in present),
            *([] if "diffrax" not in peers else ["—" if compiled is None else f"{compiled:.1f}"]),
        ])  # fmt: skip
    short = " / ".join(SHORT[lib] for lib in present)
    header = ["configuration", *(f"{lib} ms/batch" for lib in present),
              *(f"pyanode / {p}" for p in peers), f"NFE f/b per batch, last ({short})",
              f"test acc ({short})", f"peak MiB per batch ({short})",
              *(["diffrax compile s"] if "diffrax" in peers else [])]  # fmt: skip
    return "\n\n".join([table(header, rows), _bench_source(data)])


def _bench_source(data: Data) -> str:
    cpu = data.json("benchmarks", "cpu.json")
    args, load = cpu["args"], cpu.get("load", "")
    return (f"ms per training batch (forward, loss, backward and Adam): the median epoch of "
            f"{args['epochs']} timed epochs (wall clock) over its {_batches(cpu)} batches; "
            f"diffrax's compilation is not in it (last column, once per batch shape). "
            f"During the run: {load}.\n\n" + data.source("benchmarks"))  # fmt: skip


def bench_solve(data: Data) -> str:
    solve = data.json("benchmarks", "cpu.json")["single_solve"]
    parts = []
    for kind, entry in solve.items():
        by = {(r["library"], r["mode"]): r for r in entry["results"]}
        libs = [lib for lib in ("pyanode", *PEERS) if (lib, "forward") in by]
        mlp = entry["mlp_forward_s"]
        rows = []
        for mode in dict.fromkeys(r["mode"] for r in entry["results"]):
            mine = by["pyanode", mode]
            nfe = mine["nfe"][0] + (mine["nfe"][1] if mode != "forward" else 0)
            rows.append([mode, *(f"{_median(by[lib, mode]['wall']) * 1e3:.3f} ms" for lib in libs),
                         " / ".join(_nfe(by[lib, mode]["nfe"][: 1 if mode == "forward" else 2])
                                    for lib in libs),
                         f"{_median(mine['wall']) / (nfe * mlp):.2f}"])  # fmt: skip
        compiled = [f"{mode} {by['diffrax', mode]['compile_s']:.1f} s"
                    for mode in dict.fromkeys(r["mode"] for r in entry["results"])
                    if ("diffrax", mode) in by]  # fmt: skip
        parts.append(
            f"{kind.upper()}; bare MLP: {mlp * 1e3:.3f} ms forward, "
            f"{entry['mlp_forward_vjp_s'] * 1e3:.3f} ms forward + VJP (autograd)"
            + (f"; diffrax compiles once: {', '.join(compiled)}" if compiled else "") + ".\n\n"
            + table(["mode", *libs, f"NFE f/b ({' / '.join(SHORT[lib] for lib in libs)})",
                     "pyanode solve / (NFE x MLP)"], rows)
        )  # fmt: skip
    return "\n\n".join(
        [
            *parts,
            "Median wall time of the calls; NFE b of diffrax: the field evaluations in its "
            "backward pass (recomputed forward stages included).",
            data.source("benchmarks"),
        ]
    )


def _dims(cpu: dict[str, Any]) -> dict[str, str]:
    """The state dim of each kind of block, as the floor's keys."""
    return {"node": "2", "anode": str(2 + int(cpu["args"]["augment_dim"]))}


def _floor_forward(cpu: dict[str, Any]) -> dict[str, tuple[int, float, float]]:
    """Per kind of block: pyanode's forward NFE, its forward solve (s) and the floor (s)."""
    floor, out = cpu.get("floor"), {}
    if floor is None:
        return out
    for kind, entry in cpu.get("single_solve", {}).items():
        for r in entry["results"]:
            if r["library"] == "pyanode" and r["mode"] == "forward":
                per = floor["fields"][_dims(cpu)[kind]]["seconds_per_evaluation"]
                out[kind] = (r["nfe"][0], _median(r["wall"]), r["nfe"][0] * per)
    return out


def bench_target_rows(cpu: dict[str, Any]) -> list[list[str]]:
    """The targets of issues 7 and 14 checked on one run's JSON: (target, measured, met)."""
    training, rows = cpu.get("training", {}), []

    def met(ok: bool) -> str:
        return "yes" if ok else "no"

    for config, results in training.items():
        epoch = _epoch(results)
        if "diffrax" in epoch and "pyanode" in epoch:
            ratio = epoch["pyanode"] / epoch["diffrax"]
            rows.append(
                [
                    f"{_config_name(config)}: per batch <= {PER_BATCH_OF_DIFFRAX:g}x "
                    "diffrax's time",
                    f"{ratio:.2f}x",
                    met(ratio <= PER_BATCH_OF_DIFFRAX),
                ]
            )
    for config, peer, goal in TARGETS:
        epoch = _epoch(training.get(config, []))
        if peer in epoch and "pyanode" in epoch:
            speed = epoch[peer] / epoch["pyanode"]
            rows.append([f"{_config_name(config)}: epoch >= {goal:g}x faster than {peer}",
                         f"{speed:.1f}x", met(speed >= goal)])  # fmt: skip
    for kind, (nfe, seconds, floor) in _floor_forward(cpu).items():
        ratio = seconds / floor
        rows.append(
            [
                f"{kind.upper()}: one forward solve within {FLOOR_FACTOR:g}x of the "
                f"arithmetic floor ({nfe} NFE)",
                f"{ratio:.1f}x",
                met(ratio <= FLOOR_FACTOR),
            ]
        )
    return rows


def bench_targets(data: Data) -> str:
    rows = bench_target_rows(data.json("benchmarks", "cpu.json"))
    return "\n\n".join([table(["target", "measured", "met"], rows, "lrl"),
                        data.source("benchmarks")])  # fmt: skip


def bench_floor(data: Data) -> str:
    """The floor's derivation: multiply-adds per evaluation, GEMM rates, NFE, the solve."""
    cpu = data.json("benchmarks", "cpu.json")
    floor = cpu["floor"]
    batch, dims = floor["batch"], {d: kind.upper() for kind, d in _dims(cpu).items()}
    rows = []
    for dim, field in floor["fields"].items():
        for layer in field["layers"]:
            rows.append([f"{dims.get(dim, dim)} (d = {dim})",
                         f"{batch} x {layer['k']} by {layer['k']} x {layer['n']}",
                         f"{layer['macs']:,}", f"{layer['macs_per_s'] / 1e9:.1f}",
                         f"{layer['macs_per_s_call'] / 1e9:.2f}",
                         f"{layer['macs'] / layer['macs_per_s'] * 1e6:.2f}"])  # fmt: skip
    solves = []
    for kind, (nfe, seconds, low) in _floor_forward(cpu).items():
        field = floor["fields"][_dims(cpu)[kind]]
        solves.append(
            [
                kind.upper(),
                f"{field['macs_per_evaluation']:,}",
                f"{field['seconds_per_evaluation'] * 1e6:.2f} µs",
                str(nfe),
                f"{low * 1e6:.1f} µs",
                f"{seconds * 1e6:.1f} µs",
                f"{seconds / low:.1f}x",
            ]
        )
    peak = floor["peak"]
    return "\n\n".join([
        f"GEMM rate of this core, one thread, float32 (`torch.mm`): {peak['macs_per_s'] / 1e9:.1f} "
        f"GMAC/s on {' x '.join(map(str, peak['shape'][:2]))} by "
        f"{' x '.join(map(str, peak['shape'][1:]))}; at the field's products:",
        table(["field", "product", "MACs", f"GMAC/s ({floor['long']} x {batch} rows)",
               f"GMAC/s (one call, {batch} rows)", "µs of arithmetic"], rows, "llrrrr"),
        table(["block", "MACs per evaluation", "floor per evaluation", "NFE forward",
               "floor per solve", "pyanode forward solve", "solve / floor"], solves),
        data.source("benchmarks")])  # fmt: skip


SCALING = ("pyanode fused", "pyanode generic", "torchdiffeq", "torchdyn", "diffrax")


def _size_name(entry: dict[str, Any]) -> str:
    return f"{entry['dim']}, {entry['batch']}, {entry['width']}"


def bench_scaling(data: Data) -> str:
    """One forward + backward solve per size and library: ms, noise, NFE, ms per forward NFE."""
    sizes = data.json("benchmarks-scaling", "scaling.json")["sizes"]
    rows = []
    for entry in sizes:
        by = {r["library"]: r for r in entry["results"]}
        libs = [lib for lib in SCALING if lib in by]
        ms = {lib: _median(by[lib]["wall"]) * 1e3 for lib in libs}
        fused = ms.get("pyanode fused", math.nan) / ms.get("pyanode generic", math.nan)
        rows.append([
            _size_name(entry), *(f"{ms[lib]:.2f}" for lib in libs),
            " / ".join(str(by[lib]["nfe_forward"]) for lib in libs),
            " / ".join(f"{ms[lib] / by[lib]['nfe_forward']:.3f}" for lib in libs),
            f"{fused:.2f}",
        ])  # fmt: skip
    libs = [lib for lib in SCALING if any(r["library"] == lib for r in sizes[0]["results"])]
    noise = [_spread(r["wall"]) for entry in sizes for r in entry["results"]]
    noise = [v for v in noise if math.isfinite(v)]
    compile_s = [r["compile_s"] for entry in sizes for r in entry["results"] if r["compile_s"]]
    header = ["d, batch, width", *(f"{lib} ms" for lib in libs), "NFE forward",
              "ms per forward NFE", "fused / generic"]  # fmt: skip
    return "\n\n".join([
        table(header, rows),
        f"Median wall time of one forward + backward (backprop) solve over "
        f"{data.json('benchmarks-scaling', 'scaling.json')['args']['rounds']} rounds, the "
        f"libraries taking turns; noise (interquartile range / median) "
        + (f"{min(noise):.2f}-{max(noise):.2f}" if noise else "not measured (under 4 rounds)")
        + (f"; diffrax compiled each size once in {min(compile_s):.1f}-{max(compile_s):.1f} s "
           "(not in the times)" if compile_s else "") + ". NFE and ms per NFE in the order of "
        "the columns; ms per forward NFE includes the backward pass.",
        data.source("benchmarks-scaling")])  # fmt: skip


def _spread(values: Sequence[float]) -> float:
    import statistics

    if len(values) < 4:
        return math.nan
    q = statistics.quantiles(values, n=4)
    return (q[2] - q[0]) / statistics.median(values)


def bench_precision(data: Data) -> str:
    """Issue 18's targets: time to reach an error (read off the work-precision curves) against
    the best peer's at each size, and the fused path never slower than the generic one."""
    stored = data.json("benchmarks-scaling", "scaling.json")
    rows = []
    for panel in stored.get("precision", []):
        reach = panel["time_to_error"]
        if not reach["levels"]:
            rows.append([_size_name(panel), "the curves share no error range", "—", "no"])
            continue
        mine = reach["times"]["pyanode fused"]
        peers = {lib: t for lib, t in reach["times"].items() if not lib.startswith("pyanode")}
        ratios, best = [], []
        for k, _ in enumerate(reach["levels"]):
            peer = min(peers, key=lambda lib, k=k: peers[lib][k])
            ratios.append(mine[k] / peers[peer][k])
            best.append(peer)
        rows.append([
            f"{_size_name(panel)}: time to reach an error <= the best peer's",
            ", ".join(f"{sci(level, 1)}: {r:.2f}x ({peer})"
                      for level, r, peer in zip(reach["levels"], ratios, best, strict=True)),
            f"{max(ratios):.2f}x", "yes" if max(ratios) <= 1 else "no",
        ])  # fmt: skip
    for entry in stored.get("sizes", []):
        ms = {r["library"]: _median(r["wall"]) for r in entry["results"]}
        if "pyanode fused" in ms and "pyanode generic" in ms:
            ratio = ms["pyanode fused"] / ms["pyanode generic"]
            rows.append([f"{_size_name(entry)}: fused path never slower than the generic one",
                         "forward + backward, fused / generic", f"{ratio:.2f}x",
                         "yes" if ratio <= 1 else "no"])  # fmt: skip
    return "\n\n".join([
        table(["target (d, batch, width)", "pyanode fused / best peer at each error level",
               "worst", "met"], rows, "llrl"),
        "Time to reach an error: each library's forward-solve time at three error levels (spread "
        "over the middle of the error range every library reached), read off its curve by linear "
        "interpolation in log-log; ratios above 1 mean pyanode is slower.",
        data.source("benchmarks-scaling")])  # fmt: skip


def _profile_ms(r: dict[str, Any], category: str) -> float:
    """A category's ms per batch: its share of the profiled self time x the unprofiled batch."""
    return r["self_seconds"][category] / r["total_self_seconds"] * r["ms_per_batch"]


def bench_profile(data: Data) -> str:
    """Where one training batch's time goes, per category of code (`benchmarks/profile.py`)."""
    prof = data.json("benchmarks-profile", "profile.json")
    configs = prof["configs"]
    names = list(next(iter(configs.values()))["self_seconds"])
    rows = []
    for name in names:
        cells = []
        for r in configs.values():
            share = r["self_seconds"][name] / r["total_self_seconds"]
            cells.append(f"{_profile_ms(r, name):.3f} ({share:.0%})")
        rows.append([name, *cells])
    rows.append(["**batch, unprofiled**: wall (IQR / median; CPU time)",
                 *(f"**{r['ms_per_batch']:.3f}** ({r['spread']:.0%}; {r['cpu_ms_per_batch']:.3f})"
                   for r in configs.values())])  # fmt: skip
    rows.append(["batch under cProfile", *(f"{r['profiled_ms_per_batch']:.3f}"
                                           for r in configs.values())])  # fmt: skip
    rows.append(["forward NFE per batch (timed / profiled)",
                 *(f"{r['nfe_forward']:.1f} / {r['profiled_nfe_forward']:.1f}"
                   for r in configs.values())])  # fmt: skip
    fused = prof.get("fused_adam", {})
    if fused:
        adam = "optimiser (torch.optim Adam)"
        rows.append(["with `Adam(fused=True)`: batch, unprofiled",
                     *(f"{fused[c]['ms_per_batch']:.3f}" for c in configs)])  # fmt: skip
        rows.append(["with `Adam(fused=True)`: optimiser",
                     *(f"{_profile_ms(fused[c], adam):.3f}" for c in configs)])  # fmt: skip
    header = ["where (self time)", *(f"{c.split('/')[0].upper()} {c.split('/')[1]} ms (share)"
                                     for c in configs)]  # fmt: skip
    r0 = next(iter(configs.values()))
    return "\n\n".join([
        table(header, rows),
        f"{prof['settings']}; the compiled kernels {'on' if prof['compiled'] else 'off'}. "
        f"{prof['args']['epochs']} epochs of {r0['batches_per_epoch']} batches timed, then as "
        f"many under cProfile; a category's ms = its share of the profiled self time x the "
        f"unprofiled batch time (cProfile's per-call cost inflates the Python categories, so "
        f"their shares are upper bounds). Builtins (torch ops, numpy, the standard library) are "
        f"charged to their callers' categories. During the run: {prof['load']}.",
        data.source("benchmarks-profile"),
    ])  # fmt: skip


def bench_memory(data: Data) -> str:
    """The table `python -m benchmarks.memory` printed, as it printed it."""
    text = data.text("benchmarks-memory", "memory.md").strip()
    table_lines = [line for line in text.splitlines() if line.startswith("|")]
    caption = [line for line in text.splitlines() if line.startswith("Peak memory")]
    return "\n\n".join([*caption, "\n".join(table_lines), data.source("benchmarks-memory")])
