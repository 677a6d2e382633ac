"""What is an "epoch" in the survey's Table 1? Its times against ours, and what that setting gives.

"Overcoming Limitations of Neural ODEs", §4: 1024 points in batches of 96, Adam 1e-3, 5 epochs;
Table 1: 97.4-99.3 % test accuracy at ~10-80 s per epoch. Read literally that is 11 batches per
epoch, 55 Adam steps in all, which gives 35-53 % here at 0.03-0.4 s per epoch.

1. `timing`: our seconds per training iteration t_i of each of the table's 8 nets (Table 1's
   settings, `--timing-epochs` epochs, batches of 96 and of 1). If an epoch of the paper held N
   iterations on a machine as fast as this one, its time per epoch would be N t_i for every net:
   N_i = paper_i / t_i should agree across nets, and its geometric mean estimates N.
   `fit`: paper_i = a t_i + b by least squares, and a divided by torchdyn's slowness against
   pyanode (measured by benchmarks/run.py) estimates N for the survey's library.
2. `candidates`: Table 1 at 5 epochs of the settings the paper's words allow and that give
   epochs of about N iterations: a larger data set in batches of 96 (n = 96 N points), or the
   1024 points one at a time (batch size 1, N = 1024); test accuracy and s/epoch against the
   paper's.

Raw results: results/fidelity/table1-epoch/; summary:
docs/data/fidelity-table1-epoch/table1_epoch.json.

    python scripts/fidelity/table1_epoch.py timing
    python scripts/fidelity/table1_epoch.py fit
    python scripts/fidelity/table1_epoch.py candidates --n-points 196608 --seeds 3
    python scripts/fidelity/table1_epoch.py candidates --batch-size 1 --seeds 3
    python scripts/fidelity/table1_epoch.py candidates --seeds 3      # the literal reading
    python scripts/fidelity/table1_epoch.py table
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from _trials import RESULTS, SUMMARIES, log, mean_std, write_json

NETS = ("resnet", "node", "anode", "il-node", "data-controlled", "chebyshev", "fourier", "stacked")
SUMMARY = SUMMARIES / "fidelity-table1-epoch" / "table1_epoch.json"


def _table1(out: Path, **config: Any) -> list[dict[str, Any]]:
    """Table 1 at `config` (Table1Config fields), one dict per net."""
    import torch

    from pyanode.experiments.table1 import TABLE1, Table1Config, rows_of

    torch.set_num_threads(1)
    summary = TABLE1.run(Table1Config(nets=NETS, **config), out).summary
    return [
        {
            "kind": row.kind,
            "hidden": row.hidden,
            "n_parameters": row.parameters,
            "train_acc": row.train_acc,
            "test_acc": row.test_acc,
            "seconds_per_epoch": row.seconds_per_epoch,
            "nfe_forward": row.nfe_forward,
            "paper_test_acc": row.paper.test_acc,
            "paper_train_acc": row.paper.train_acc,
            "paper_seconds_per_epoch": row.paper.seconds_per_epoch,
        }
        for row in rows_of(summary)
    ]


def _load() -> dict[str, Any]:
    return json.loads(SUMMARY.read_text()) if SUMMARY.exists() else {}


def timing(epochs: int = 5, batch_sizes: tuple[int, ...] = (96, 1)) -> dict[str, Any]:
    """Seconds per iteration of each net at each batch size, and the implied N per net."""
    summary = _load()
    out = summary.setdefault("timing", {})
    for batch in batch_sizes:
        n_batches = math.ceil(1024 / batch)
        rows = _table1(
            RESULTS / "table1-epoch" / f"timing-b{batch}", epochs=epochs, seeds=1, batch_size=batch
        )
        per_net = {}
        for r in rows:
            t = r["seconds_per_epoch"][0] / n_batches
            per_net[r["kind"]] = {
                "seconds_per_iteration": t,
                "nfe_forward": r["nfe_forward"][0],
                "paper_seconds_per_epoch": r["paper_seconds_per_epoch"],
                "implied_iterations_per_epoch": r["paper_seconds_per_epoch"] / t,
            }
        logs = [math.log(v["implied_iterations_per_epoch"]) for v in per_net.values()]
        m, s = mean_std(logs)
        out[f"batch-{batch}"] = {
            "epochs_timed": epochs,
            "iterations_per_epoch_here": n_batches,
            "nets": per_net,
            "implied_iterations_geomean": math.exp(m),
            "implied_iterations_spread_factor": math.exp(s),
        }
        log(f"batch {batch}: N = {math.exp(m):.0f} (x/÷ {math.exp(s):.2f} over the nets)")
        for kind, v in per_net.items():
            log(
                f"  {kind:<16} {1e3 * v['seconds_per_iteration']:6.2f} ms/iteration, "
                f"NFE {v['nfe_forward']:5.1f}, N = {v['implied_iterations_per_epoch']:7.0f}"
            )
    write_json(SUMMARY, summary)
    return summary


def fit(benchmark: str = "benchmarks/results/cpu.json") -> dict[str, Any]:
    """Least squares of the paper's s/epoch on our s/iteration (batches of 96) over the 8 nets:
    paper_i = a t_i + b. On a machine and library as fast as ours, a would be the iterations per
    epoch and b a fixed cost per epoch. The survey trained with torchdyn, which
    `benchmarks/run.py` measured here at `ratio` times pyanode's time per epoch (NODE and ANODE,
    backprop, three spheres), so a / ratio estimates the iterations per epoch of the paper."""
    import numpy as np

    summary = _load()
    nets = summary["timing"]["batch-96"]["nets"]
    t = np.array([v["seconds_per_iteration"] for v in nets.values()])
    paper = np.array([v["paper_seconds_per_epoch"] for v in nets.values()])
    (a, b), *_ = np.linalg.lstsq(np.stack([t, np.ones_like(t)], axis=1), paper, rcond=None)
    training = json.loads(Path(benchmark).read_text())["training"]
    ratios = {}
    for key in ("node/backprop/three-spheres", "anode/backprop/three-spheres"):
        runs = {r["library"]: float(np.median(r["epochs"]["cpu"])) for r in training[key]}
        ratios[key] = runs["torchdyn"] / runs["pyanode"]
    ratio = float(np.mean(list(ratios.values())))
    summary["fit"] = {
        "slope_iterations": float(a),
        "intercept_seconds": float(b),
        "r": float(np.corrcoef(t, paper)[0, 1]),
        "residuals_seconds": dict(zip(nets, (paper - (a * t + b)).round(2).tolist(), strict=True)),
        "torchdyn_over_pyanode": ratios,
        "implied_iterations_per_epoch_torchdyn": float(a) / ratio,
    }
    log(
        f"paper s/epoch = {a:.0f} x (our s/iteration) + {b:.1f} s (r = {summary['fit']['r']:.2f});"
        f" torchdyn is {ratio:.2f}x slower than pyanode here, so ~{a / ratio:.0f} iterations "
        "per epoch"
    )
    write_json(SUMMARY, summary)
    return summary


def candidates(
    n_points: int = 1024, batch_size: int = 96, seeds: int = 3, epochs: int = 5
) -> dict[str, Any]:
    """Table 1 at 5 epochs of `n_points` points in batches of `batch_size`."""
    name = f"n{n_points}-b{batch_size}-e{epochs}"
    rows = _table1(
        RESULTS / "table1-epoch" / name,
        epochs=epochs,
        seeds=seeds,
        n_points=n_points,
        batch_size=batch_size,
    )
    summary = _load()
    entry = {
        "n_points": n_points,
        "batch_size": batch_size,
        "epochs": epochs,
        "iterations_per_epoch": math.ceil(n_points / batch_size),
        "seeds": seeds,
        "nets": {},
    }
    for r in rows:
        ta, ts = mean_std(r["test_acc"])
        tr, trs = mean_std(r["train_acc"])
        sp, _ = mean_std(r["seconds_per_epoch"])
        entry["nets"][r["kind"]] = {
            "hidden": r["hidden"],
            "n_parameters": r["n_parameters"],
            "test_acc": r["test_acc"],
            "test_acc_mean": ta,
            "test_acc_std": ts,
            "train_acc_mean": tr,
            "train_acc_std": trs,
            "seconds_per_epoch": sp,
            "nfe_forward": mean_std(r["nfe_forward"])[0],
            "paper_test_acc": r["paper_test_acc"],
            "paper_train_acc": r["paper_train_acc"],
            "paper_seconds_per_epoch": r["paper_seconds_per_epoch"],
            "paper_over_ours_seconds": r["paper_seconds_per_epoch"] / sp,
        }
        log(
            f"{name} {r['kind']:<16} test {100 * ta:5.1f} ± {100 * ts:4.1f} "
            f"(paper {100 * r['paper_test_acc']:.1f}), train {100 * tr:5.1f}, "
            f"{sp:7.2f} s/epoch (paper ~{r['paper_seconds_per_epoch']:.0f})"
        )
    summary.setdefault("candidates", {})[name] = entry
    write_json(SUMMARY, summary)
    return summary


def table() -> str:
    """The stored candidates side by side as a Markdown table (test accuracy, mean ± std)."""
    summary = _load()
    names = sorted(
        summary["candidates"], key=lambda n: summary["candidates"][n]["iterations_per_epoch"]
    )
    head = ["net", "the paper"] + [
        f"{c['n_points']} points, batch {c['batch_size']} ({c['iterations_per_epoch']} it/epoch)"
        for c in (summary["candidates"][n] for n in names)
    ]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for net in NETS:
        cells = [net, f"{100 * summary['candidates'][names[0]]['nets'][net]['paper_test_acc']:.1f}"]
        for n in names:
            r = summary["candidates"][n]["nets"][net]
            cells.append(f"{100 * r['test_acc_mean']:.1f} ± {100 * r['test_acc_std']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    return text


def main(command: str = "timing", **kwargs: Any) -> Any:
    commands = {"timing": timing, "fit": fit, "candidates": candidates, "table": table}
    return commands[command](**kwargs)


def parse(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("timing", help="our s/iteration per net against the paper's s/epoch")
    t.add_argument("--epochs", type=int, default=5, help="epochs timed per net (5)")
    t.add_argument(
        "--batch-sizes",
        type=lambda s: tuple(int(b) for b in s.split(",")),
        default=(96, 1),
        help="comma-separated (96,1)",
    )
    f = sub.add_parser("fit", help="fit the paper's s/epoch to ours (from the stored timing)")
    f.add_argument(
        "--benchmark",
        default="benchmarks/results/cpu.json",
        help="benchmarks.run's JSON (torchdyn against pyanode)",
    )
    sub.add_parser("table", help="print the stored candidates as a Markdown table")
    c = sub.add_parser("candidates", help="Table 1 at 5 epochs of a candidate setting")
    c.add_argument("--n-points", type=int, default=1024, help="training (and test) points")
    c.add_argument("--batch-size", type=int, default=96)
    c.add_argument("--seeds", type=int, default=3)
    c.add_argument("--epochs", type=int, default=5)
    return vars(parser.parse_args(argv))


if __name__ == "__main__":
    main(**parse())
