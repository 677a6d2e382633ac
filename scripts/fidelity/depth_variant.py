"""Why are Table 1's depth-variant nets below the survey's numbers? One factor at a time.

"Overcoming Limitations of Neural ODEs", Table 1: Chebyshev 97.4 %, Fourier 97.7 %, stacked
98.0 % test accuracy (widths 15, 11, 14; 1.3k, 1.4k, 1.4k parameters; tanh; three spheres of
1024 points, batches of 96, Adam 1e-3, dp5, backprop). Our Table 1 gives 87.1 / 89.4 / 81.9 at
50 epochs. Starting from our Table 1 setting (the baseline: Chebyshev degree 3, Fourier degree 2,
stacked 4 pieces, tanh, widths matched to 1.3k parameters, depth interval [0, 1], lr 1e-3),
each variant changes ONE setting, for the three nets and `--seeds` seeds. Controls: a vanilla
NODE with tanh at the Chebyshev net's width (a basis of one term) and Table 1's ReLU NODE.

Raw trials: results/fidelity/depth-variant/trials.jsonl (per-epoch histories). Summary:
docs/data/fidelity-depth-variant/depth_variant.csv; figure: docs/figures/fidelity/depth_variant.png.

    python scripts/fidelity/depth_variant.py                 # every variant, 3 seeds
    python scripts/fidelity/depth_variant.py --variants baseline,relu --seeds 1
    python scripts/fidelity/depth_variant.py --plot-only
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from _trials import (
    FIGURES,
    SUMMARIES,
    TrialStore,
    chosen,
    log,
    mean_std,
    save_figure,
    variants_parser,
    write_csv,
)

NETS = ("chebyshev", "fourier", "stacked")
PAPER = {"chebyshev": 97.4, "fourier": 97.7, "stacked": 98.0, "node": 98.4}
PAPER_WIDTH = {"chebyshev": 15, "fourier": 11, "stacked": 14, "node": 32}
# our Table 1: Chebyshev T_0..T_3, Fourier harmonics 0..2, 4 stacked pieces
BASELINE_BASIS = {"chebyshev": 3, "fourier": 2, "stacked": 4}
BUDGET = 1300
TEST_SEED_OFFSET = 1000  # Table 1's test set: an independent draw, seed + 1000


@dataclass(frozen=True)
class Variant:
    """One level of one factor; every field not named keeps Table 1's value."""

    name: str
    factor: str
    nets: tuple[str, ...] = NETS
    activation: str = "tanh"
    basis: dict[str, int] = field(default_factory=lambda: dict(BASELINE_BASIS))
    width: str | int = "match"  # "match" (1.3k +- tolerance), "paper" (15, 11, 14) or a width
    tolerance: float = 0.05
    t1: float = 1.0  # the depth interval [0, t1] (4: the 4 stacked pieces have length 1 each)
    lr: float = 1e-3
    epochs: int = 50
    time_dependent: bool = True


def _basis(**changes: int) -> dict[str, int]:
    return {**BASELINE_BASIS, **changes}


VARIANTS = (
    Variant("baseline", "baseline (Table 1)", epochs=200),
    Variant("relu", "activation", activation="relu"),
    Variant("basis-small", "basis size", basis=_basis(chebyshev=1, fourier=1, stacked=2)),
    # the paper's widths 15, 11, 14 and the bases that give its 1.3k, 1.4k, 1.4k parameters
    Variant("basis-paper", "basis size", basis=_basis(fourier=3, stacked=5), width="paper"),
    Variant(
        "basis-large", "basis size", basis=_basis(chebyshev=6, fourier=5, stacked=8), tolerance=0.1
    ),
    Variant("depth-4", "time grid", t1=4.0),
    Variant("lr-3e-3", "learning rate", lr=3e-3),
    Variant("lr-1e-2", "learning rate", lr=1e-2),
    Variant("width-32", "width matching", width=32),
    Variant("width-paper", "width matching", width="paper"),
    Variant("no-time-input", "time input", time_dependent=False),
    # controls: a basis of one term (a plain NODE) at the Chebyshev net's width, with tanh,
    # and Table 1's ReLU NODE
    Variant("node-tanh", "control", nets=("node",), width=15, epochs=200),
    Variant("node-relu", "control", nets=("node",), activation="relu", epochs=200),
)
BY_NAME = {v.name: v for v in VARIANTS}


def model_spec(variant: Variant, net: str):
    from pyanode.specs import ModelSpec
    from pyanode.torch import match_width

    degree = {"degree": variant.basis[net]} if net in ("chebyshev", "fourier") else {}
    pieces = {"n_pieces": variant.basis[net]} if net == "stacked" else {}
    spec = ModelSpec(
        kind=net,
        activation=variant.activation,
        time_dependent=variant.time_dependent,
        **degree,
        **pieces,
    )
    if variant.width == "match":
        width, _ = match_width(spec, 2, 3, BUDGET, variant.tolerance)
    elif variant.width == "paper":
        width = PAPER_WIDTH[net]
    else:
        width = int(variant.width)
    return spec.replace(hidden=width)


def train_trial(variant: Variant, net: str, seed: int) -> dict[str, Any]:
    from pyanode.backends import TorchBackend
    from pyanode.data import three_spheres
    from pyanode.specs import SolverSpec, TrainSpec
    from pyanode.torch import count_parameters

    spec = model_spec(variant, net)
    solver = SolverSpec(solver="dp5", rtol=1e-3, atol=1e-3, t1=variant.t1)
    train = TrainSpec(epochs=variant.epochs, batch_size=96, lr=variant.lr, seed=seed, threads=1)
    data = three_spheres(n=1024, seed=seed)
    test = three_spheres(n=1024, seed=seed + TEST_SEED_OFFSET)
    fitted = TorchBackend().fit(spec, solver, train, data, test, progress=False)
    keep = ("epoch", "loss", "train_acc", "test_acc", "nfe_forward", "nfe_backward", "seconds")
    return {
        "variant": variant.name,
        "net": net,
        "seed": seed,
        "model": spec.to_dict(),
        "t1": solver.t1,
        "lr": variant.lr,
        "n_parameters": count_parameters(spec, 2, 3),
        "history": [{k: row[k] for k in keep} for row in fitted.history],
    }


def at_epoch(row: dict[str, Any], epoch: int, key: str) -> float:
    return row["history"][min(epoch, len(row["history"])) - 1][key]


def summary_rows(store: TrialStore, variants: list[Variant], epochs: int) -> list[dict[str, Any]]:
    """One row per (variant, net) at `epochs` epochs (or the variant's last epoch), and for the
    longer runs (baseline, controls) also at 100, 150 and 200 epochs (the factor "epochs")."""
    out = []
    for v in variants:
        for net in v.nets:
            rows = [r for r in store.rows.values() if r["variant"] == v.name and r["net"] == net]
            if not rows:
                continue
            stops = [min(epochs, v.epochs)] + [e for e in (100, 150, 200) if epochs < e <= v.epochs]
            for e in stops:
                name = v.name if e == stops[0] else f"{v.name}@{e}"
                test, std = mean_std(100 * at_epoch(r, e, "test_acc") for r in rows)
                train, train_std = mean_std(100 * at_epoch(r, e, "train_acc") for r in rows)
                hists = [r["history"][:e] for r in rows]
                out.append(
                    {
                        "variant": name,
                        "factor": v.factor if e == stops[0] else "epochs",
                        "net": net,
                        "hidden": rows[0]["model"]["hidden"],
                        "n_parameters": rows[0]["n_parameters"],
                        "basis": basis_size(rows[0]["model"]),
                        "activation": v.activation,
                        "t1": rows[0]["t1"],
                        "lr": v.lr,
                        "epochs": e,
                        "seeds": len(rows),
                        "train_acc_mean": train,
                        "train_acc_std": train_std,
                        "test_acc_mean": test,
                        "test_acc_std": std,
                        "paper_test_acc": PAPER[net],
                        "seconds_per_epoch": float(
                            np.mean([h["seconds"] for x in hists for h in x])
                        ),
                        "nfe_forward": float(np.mean([h["nfe_forward"] for x in hists for h in x])),
                    }
                )
    return out


def basis_size(model: dict[str, Any]) -> int:
    """The number of basis functions (coefficients per weight) of a stored model spec."""
    if model["kind"] == "chebyshev":
        return model["degree"] + 1
    if model["kind"] == "fourier":
        return 2 * model["degree"] + 1
    return model["n_pieces"] if model["kind"] == "stacked" else 1


def plot(store: TrialStore, variants: list[Variant], epochs: int, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"chebyshev": "C0", "fourier": "C1", "stacked": "C2", "node": "C7"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), width_ratios=(1, 1.5))
    for name, style in (("baseline", "-"), ("node-tanh", "--"), ("node-relu", ":")):
        for r in [r for r in store.rows.values() if r["variant"] == name]:
            acc = [100 * h["test_acc"] for h in r["history"]]
            label = f"{r['net']} ({name})" if r["seed"] == 0 else None
            left.plot(
                range(1, len(acc) + 1), acc, style, color=colours[r["net"]], lw=1, label=label
            )
    for net in NETS:
        left.axhline(PAPER[net], color=colours[net], lw=0.8, alpha=0.6)
    left.axvline(epochs, color="k", lw=0.6, ls=":")
    left.set(
        xlabel="epoch (11 batches of 96)",
        ylabel="test accuracy (%)",
        ylim=(30, 101),
        title="Test accuracy against epochs, 3 seeds\n(thin lines: the paper's Table 1)",
    )
    left.legend(fontsize=7, loc="lower right")

    rows = summary_rows(store, [v for v in variants if v.factor != "control"], epochs)
    rows = [r for r in rows if r["factor"] != "epochs" or r["epochs"] == 200]
    names = list(dict.fromkeys(r["variant"] for r in rows))
    for i, net in enumerate(NETS):
        xs, ms, ss = [], [], []
        for j, name in enumerate(names):
            match = [r for r in rows if r["variant"] == name and r["net"] == net]
            if match:
                xs.append(j + (i - 1) * 0.25)
                ms.append(match[0]["test_acc_mean"])
                ss.append(match[0]["test_acc_std"])
        right.errorbar(xs, ms, yerr=ss, fmt="o", color=colours[net], label=net, capsize=2)
        right.axhline(PAPER[net], color=colours[net], lw=0.8, alpha=0.6)
    right.set_xticks(np.arange(len(names)), names, rotation=35, ha="right", fontsize=8)
    right.set(
        ylabel="test accuracy (%)",
        title=f"One factor at a time, at {epochs} epochs "
        "(baseline@200: 200 epochs)\nmean ± std over seeds; thin lines: the paper",
    )
    right.legend(fontsize=8)
    save_figure(fig, path)


def main(
    variants: str = ",".join(BY_NAME),
    seeds: int = 3,
    epochs: int = 50,
    plot_only: bool = False,
) -> list[dict[str, Any]]:
    """Train each variant x net x seed (skipping stored trials), then write the summary at
    `epochs` epochs and the figure."""
    picked = chosen(variants, BY_NAME)
    store = TrialStore("depth-variant")
    if not plot_only:
        import torch

        torch.set_num_threads(1)
        for v in picked:
            for net in v.nets:
                for seed in range(seeds):
                    key = f"{v.name}/{net}/seed-{seed}/epochs-{v.epochs}"
                    row = store.run(key, lambda v=v, net=net, seed=seed: train_trial(v, net, seed))
                    log(
                        f"{key}: width {row['model']['hidden']}, {row['n_parameters']} params, "
                        f"test acc at {min(epochs, v.epochs)} epochs "
                        f"{100 * at_epoch(row, min(epochs, v.epochs), 'test_acc'):.1f} %, "
                        f"{row['wall_seconds']:.0f} s"
                    )
    rows = summary_rows(store, list(VARIANTS), epochs)
    if rows:
        write_csv(SUMMARIES / "fidelity-depth-variant" / "depth_variant.csv", rows)
        plot(store, list(VARIANTS), epochs, FIGURES / "depth_variant.png")
        for r in rows:
            print(
                f"{r['variant']:<16} {r['net']:<10} width {r['hidden']:>3} "
                f"{r['n_parameters']:>5} params, {r['epochs']:>3} epochs: test "
                f"{r['test_acc_mean']:.1f} ± {r['test_acc_std']:.1f} (paper {r['paper_test_acc']})"
            )
    return rows


def parse(argv: list[str] | None = None) -> dict[str, Any]:
    parser = variants_parser(__doc__, list(BY_NAME))
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..n-1 (default: 3)")
    parser.add_argument("--epochs", type=int, default=50, help="epoch of the summary (50)")
    parser.add_argument("--plot-only", action="store_true", help="summarise stored trials")
    return vars(parser.parse_args(argv))


if __name__ == "__main__":
    main(**parse())
