"""The regions of docs/experiments.md and the README: the reproductions' tables and runtimes."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from pyanode.experiments.report_tables.common import (
    Data,
    and_list,
    commit_of,
    duration_of,
    machine,
    num,
    pct,
    pm,
    pm_pct,
    table,
)

WHAT = {
    "table1-paper": '"Overcoming Limitations of Neural ODEs", Table 1 and Figs. 1-2, paper '
    "settings",
    "table1": "the same, trained long enough to converge (README's main job)",
    "dupont-1d": "Dupont et al. Figs. 5 and 8",
    "dupont-flows": "Dupont et al. Figs. 2 and 9",
    "dupont-features": "Dupont et al. Figs. 6 and 10",
    "dupont-nfe": "Dupont et al. Figs. 7 and 11b",
    "dupont-nfe-50": "the same at the paper's 50 epochs, 5 seeds",
    "dupont-generalisation": "Dupont et al. Fig. 11a and 11c",
    "dupont-generalisation-50": "the same at the paper's 20 seeds and 50 epochs",
    "dupont-images": "Dupont et al. §5.2, Figs. 13-14 (on 8x8 digits)",
}


def runtimes(data: Data) -> str:
    rows = []
    for name, what in WHAT.items():
        p = data.provenance(name)
        rows.append([f"`{p['documented_command']}`", what, duration_of(p),
                     f"{p['training_seconds']:.0f} s", p["trials"]])  # fmt: skip
    loads = [data.provenance(n).get("load_average") or math.nan for n in WHAT]
    first = data.provenance("table1")
    return "\n\n".join([
        table(["command", "what", "wall time", "training time", "trials"], rows, "llrrr"),
        "Wall time: the whole command (imports, training, summary, figures); training time: the "
        f"sum of its trials' `seconds_total`. Measured by `pyanode report --rerun`, one command "
        f"at a time, on {machine(first, load=False)} (load average "
        f"{min(loads):.1f}-{max(loads):.1f} during the runs: the machine was shared); "
        f"{commit_of(first)}.",
    ])  # fmt: skip


def _table1_rows(summary: dict[str, Any]) -> list:
    from pyanode.experiments.table1 import rows_of

    return rows_of(summary)


def table1_main(data: Data) -> str:
    from pyanode.experiments.table1 import markdown_table

    summary = data.json("table1")
    rows = _table1_rows(summary)
    seeds = table(
        ["net", *[f"seed {s}" for s in range(len(rows[0].test_acc))]],
        [[r.name, *(pct(a) for a in r.test_acc)] for r in rows],
    )
    gaps = {r.name: 100 * (sum(r.test_acc) / len(r.test_acc) - r.paper.test_acc)
            for r in rows if r.paper.test_acc is not None}  # fmt: skip
    below = [f"{name} ({gap:+.1f})" for name, gap in gaps.items() if gap < -GAP]
    near = [name for name, gap in gaps.items() if gap >= -GAP]
    ranked = sorted(rows, key=lambda r: -sum(r.test_acc) / len(r.test_acc))
    return "\n\n".join([
        markdown_table(rows),
        summary["caption"],
        f"Ranked by mean test accuracy: {', '.join(r.name for r in ranked)}. Within {GAP:g} "
        f"points of the paper's test accuracy or above: {and_list(near) if near else 'none'}; "
        f"further below (points): {and_list(below) if below else 'none'}.",
        "Test accuracy % of each seed:",
        seeds,
        data.source("table1"),
    ])  # fmt: skip


GAP = 3.0  # points of test accuracy: "near the paper's" within this


def table1_paper(data: Data) -> str:
    summary = data.json("table1-paper")
    rows = _table1_rows(summary)
    means = [sum(r.test_acc) / len(r.test_acc) for r in rows]
    body = table(
        ["net", "test acc % (ours)", "train acc % (ours)", "the paper (test)"],
        [[r.name, pm_pct(r.test_acc), pm_pct(r.train_acc),
          "—" if r.paper.test_acc is None else pct(r.paper.test_acc)] for r in rows],
    )  # fmt: skip
    return "\n\n".join([
        f"Mean test accuracies are {pct(min(means), 0)}-{pct(max(means), 0)} %, against the "
        "paper's 97-99 %:",
        body,
        summary["caption"],
        data.source("table1-paper"),
    ])  # fmt: skip


CLEAN = 0.99  # a panel is clean where this share of each region is drawn as its class


def table1_figure2(data: Data) -> str:
    summary = data.json("table1")
    figure = summary["figure2"]
    rows = [r for r in _table1_rows(summary) if r.kind in figure]
    groups: dict[str, list[str]] = {}
    for r in rows:
        f = figure[r.kind]
        if f["leaks"]:
            said = "a disk's region crosses the annulus to the outside"
        elif f["disks_correct"] < CLEAN:
            said = (
                "the regions stay inside the annulus, but one disk's region takes in part "
                "of the other disk"
            )
        elif min(f["annulus_correct"], f["outside_correct"]) < CLEAN:
            said = "no region crosses the annulus, but parts of it are drawn as a disk"
        else:
            said = "clean regions around the two disks"
        groups.setdefault(said, []).append(r.name)
    body = table(
        ["net (seed 0)", "test acc %", "disks drawn as their own disk %",
         "annulus band drawn as annulus %", "outside drawn as annulus %",
         "a disk's region crosses the annulus"],
        [[r.name, pct(r.test_acc[0]), pct(figure[r.kind]["disks_correct"]),
          pct(figure[r.kind]["annulus_correct"]), pct(figure[r.kind]["outside_correct"]),
          "yes" if figure[r.kind]["leaks"] else "no"] for r in rows],
    )  # fmt: skip
    said = "; ".join(f"{and_list(names)}: {text}" for text, names in groups.items())
    return "\n\n".join([
        f"Fig. 2 draws seed 0 of each net. What it shows, measured on its grid of predicted "
        f"classes (`figure2` in summary.json; shares of the grid points in each region): "
        f"{said}.",
        body,
        data.source("table1"),
    ])  # fmt: skip


def readme_main_job(data: Data) -> str:
    paper = _table1_rows(data.json("table1-paper"))
    best = max(sum(r.test_acc) / len(r.test_acc) for r in paper)
    p = data.provenance("table1")
    c = data.json("table1-paper", "config.json")["config"]
    batches = math.ceil(c["n_points"] / c["batch_size"])
    long = data.json("table1", "config.json")["config"]["epochs"]
    return (
        f"`pyanode reproduce table1` alone uses the paper's stated settings ({c['n_points']} "
        f"points, batch {c['batch_size']}, Adam {c['lr']:g}, {c['epochs']} epochs). That is only "
        f"{c['epochs'] * batches} Adam steps, and no net gets past {pct(best, 0)} % mean test "
        "accuracy with it (the paper reports 97–99 % and 10–80 s per epoch, i.e. far more work "
        f"per epoch than {batches} batches); with {long} epochs the paper's picture appears "
        "([docs/experiments.md](docs/experiments.md) has both tables), and `--preset "
        "paper-timing` trains the epochs of about 1000 batches that the paper's times imply "
        "([docs/fidelity.md](docs/fidelity.md)). The main job took "
        f"{p['wall_seconds']:.0f} s when the docs were last regenerated ({p['machine']['cpu']}, "
        f"{p['machine']['logical_cpus']} logical CPUs at load average {p['load_average']:.1f}, "
        f"one torch thread, {p['date'][:10]})."
    )


def dupont_1d(data: Data) -> str:
    summary = data.json("dupont-1d")
    paper = {
        "g1d": "NODE maps both points to 0 (Fig. 2d); ResNet crosses (Fig. 2b)",
        "spheres-1d": '"the ResNet easily fits the function, while the NODE can not '
        'approximate g(x)"; ANODE fits it (Fig. 8)',
        "spheres-2d": '"the NODE eventually learns to approximate g(x), but struggles '
        'compared to ResNets"; ANODE learns "much faster"',
    }
    names = {"g1d": "g_1d (flow only)", "spheres-1d": "spheres, d = 1", "spheres-2d":
             "spheres, d = 2"}  # fmt: skip
    rows = []
    for panel, entry in summary.items():
        models, ref = entry["models"], entry["references"]
        cells = [pm(models[m]["final_loss_mean"], models[m]["final_loss_std"])
                 if m in models else "—" for m in ("node", "anode", "resnet")]  # fmt: skip
        floor = num(ref["node_floor"], 3) if "node_floor" in ref else "—"
        rows.append([names.get(panel, panel), *cells, num(ref["constant"], 3), floor,
                     paper.get(panel, "")])  # fmt: skip
    config = data.json("dupont-1d", "config.json")["config"]
    return "\n\n".join([
        table(["data", "NODE", "ANODE (p = 5)", "ResNet (5 blocks)", "best constant",
               "lowest NODE loss", "the paper"], rows, "lrrrrrl"),
        f"Final full-data training MSE, mean ± std over {config['seeds']} seeds.",
        data.source("dupont-1d"),
    ])  # fmt: skip


PANELS = ("identity", "g1d", "spheres-1d", "spheres-2d", "separable")  # the papers' order
MODELS = ("node", "anode", "resnet")


def _by_label(summary: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(key, result) of a summary keyed by trial labels (`panel="g1d" model="node" seed=0`),
    in the papers' order of panels and models."""
    out = []
    for label, result in summary.items():
        key = dict(part.split("=", 1) for part in label.split(" "))
        out.append(({k: json.loads(v) for k, v in key.items()}, result))
    return sorted(out, key=lambda kr: (PANELS.index(kr[0]["panel"]),
                                       MODELS.index(kr[0]["model"])))  # fmt: skip


def _models(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The entries of a summary keyed by model, NODE first."""
    return sorted(summary.items(), key=lambda item: MODELS.index(item[0]))


def dupont_trials(job: str, *, nfe: bool) -> Callable[[Data], str]:
    """Final training MSE (and forward NFE per iteration) of each trial of a one-seed
    experiment."""

    def render(data: Data) -> str:
        rows = [[key["panel"], key["model"], num(r["train_loss"]),
                 *([f"{r['nfe_forward']:.0f}" if key["model"] != "resnet" else "—"]
                   if nfe else [])]
                for key, r in _by_label(data.json(job))]  # fmt: skip
        header = ["panel", "model", "final training MSE", *(["final NFE"] if nfe else [])]
        return "\n\n".join([table(header, rows, "ll" + "r" * (len(header) - 2)),
                            data.source(job)])  # fmt: skip

    return render


def dupont_nfe(job: str, paper: bool) -> Callable[[Data], str]:
    def render(data: Data) -> str:
        said = {"node": 'NFE "nearly doubles"', "anode": 'NFE "hardly increases"'}
        rows = [
            [{"node": "NODE", "anode": "ANODE (p = 5)"}[model],
             f"{m['nfe_first_mean']:.1f} ± {m['nfe_first_std']:.1f}",
             f"{m['nfe_last_mean']:.1f} ± {m['nfe_last_std']:.1f}",
             f"{m['nfe_ratio_mean']:.2f}", num(m["final_loss_mean"]),
             *([said[model]] if paper else [])]
            for model, m in _models(data.json(job))
        ]  # fmt: skip
        some = next(iter(data.json(job).values()))
        header = ["", "NFE, first 5% of iterations", "NFE, last 5%", "ratio", "final MSE",
                  *(["the paper"] if paper else [])]  # fmt: skip
        return "\n\n".join([
            table(header, rows, "lrrrr" + ("l" if paper else "")),
            f"{some['seeds']} seeds, {some['iterations']} iterations; mean ± std over seeds.",
            data.source(job),
        ])  # fmt: skip

    return render


def dupont_generalisation(job: str, paper: bool) -> Callable[[Data], str]:
    def render(data: Data) -> str:
        said = {"node": "\"a large generalization gap for NODEs\"",
                "anode": "\"near zero validation loss\""}  # fmt: skip
        rows = [
            [{"node": "NODE", "anode": "ANODE (p = 5)"}[model], num(m["map_train_loss"]),
             pm(m["slice_train_loss_mean"], m["slice_train_loss_std"]),
             pm(m["val_loss_mean"], m["val_loss_std"]), num(m["val_loss_median"]),
             f"{m['val_loss_mean'] / m['slice_train_loss_mean']:.1f}",
             f"{m['seeds_through_slice']} of {m['seeds']}",
             *([said[model]] if paper else [])]
            for model, m in _models(data.json(job))
        ]  # fmt: skip
        header = ["", "training MSE (all data)", "training MSE (slice removed)",
                  "validation MSE (the slice)", "median", "validation / training",
                  "runs through the slice", *(["the paper"] if paper else [])]  # fmt: skip
        m = data.json(job)
        gaps = {k: v["val_loss_mean"] - v["slice_train_loss_mean"] for k, v in m.items()}
        said = (
            f"Validation minus training MSE (slice removed): NODE {num(gaps['node'])}, ANODE "
            f"{num(gaps['anode'])}; the ANODE's validation loss is "
            f"{m['node']['val_loss_mean'] / m['anode']['val_loss_mean']:.0f} times lower than "
            f"the NODE's. {m['node']['seeds']} seeds, {m['node']['n_validation']} validation "
            "points; mean ± std over seeds."
        )
        return "\n\n".join([table(header, rows, "lrrrrrr" + ("l" if paper else "")), said,
                            _per_seed(m), data.source(job)])  # fmt: skip

    return render


def _per_seed(summary: dict[str, Any]) -> str:
    """Each seed's validation MSE and where its flow cuts the annulus (`*`: in the slice)."""
    models = [model for model, _ in _models(summary)]
    seeds = {s["seed"]: {} for m in models for s in summary[m]["per_seed"]}
    for model in models:
        for s in summary[model]["per_seed"]:
            seeds[s["seed"]][model] = s
    name = {"node": "NODE", "anode": "ANODE"}

    def cell(s: dict[str, Any] | None) -> list[str]:
        if s is None:
            return ["—", "—"]
        where = f"{s['channel_degrees']:.0f}° ({s['lowest_on_annulus']:+.2f})"
        return [num(s["val_loss"]), where + (" *" if s["through_slice"] else "")]

    header = [
        "seed",
        *(
            f"{name[m]} {what}"
            for m in models
            for what in ("validation MSE", "lowest prediction on the annulus")
        ),
    ]
    rows = [[seed, *(c for m in models for c in cell(by.get(m)))] for seed, by in seeds.items()]
    return "\n\n".join([
        "Per seed: the validation MSE, and the angle where the prediction over the annulus is "
        "lowest (its value; below 0 the flow carries the inner disc out there; `*`: in the "
        "removed slice):",
        table(header, rows),
    ])  # fmt: skip


def dupont_images(data: Data) -> str:
    summary = data.json("dupont-images")
    rows = []
    for model, m in _models(summary):
        name = f"NODE, k = {m['filters']}" if model == "node" else (
            f"ANODE, k = {m['filters']}, p = {m['augment_dim']}")  # fmt: skip
        rows.append([name, m["n_parameters"], f"{m['train_loss']:.3f}", f"{m['test_loss']:.3f}",
                     f"{m['test_acc']:.3f}", f"{m['nfe_first']:.0f} / {m['nfe_last']:.0f}",
                     f"{m['nfe_mean']:.1f}"])  # fmt: skip
    reach = summary.get("anode", {}).get("iterations_to_node_final_loss")
    n = summary.get("node", {}).get("iterations")
    reached = (f"The ANODE reaches the NODE's final training loss (mean of its last 10 % of "
               f"iterations) after {reach} of its {n} iterations." if reach is not None else
               "The ANODE never reaches the NODE's final training loss.")  # fmt: skip
    return "\n\n".join([
        table(["", "parameters", "final training CE", "test CE", "test accuracy",
               "NFE first / last 10%", "mean NFE"], rows),
        reached,
        data.source("dupont-images"),
    ])  # fmt: skip
