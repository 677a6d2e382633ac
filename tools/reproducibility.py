"""How far one Table 1 trial moves with the thread count and the precision; the page that says so.

`measure` trains Table 1's ANODE (seed 0, the README main job's settings: 1024 points, batch 96,
Adam 1e-3, dp5 at 1e-3, backprop, 50 epochs) six times on this machine (`RUNS`): with 1 torch
thread, again with 1, with 2 threads, in float64 (1 thread; the same initial weights, cast), and
on the torch path instead of MLPField's compiled kernels (`PYANODE_COMPILED=0`) with 1 and with
2 threads. After the first Adam step and after chosen epochs it compares each run's weights and
test accuracy with those of the run it is set against, and writes
docs/data/reproducibility.json.

`render` fills the generated blocks of docs/reproducibility.md (between `<!-- generated:NAME -->`
and `<!-- end:NAME -->`) from that file and from docs/data/seed_groups.json
(tools/seed_groups.py); tests/test_reproducibility_page.py fails when the page and the data
disagree.

Usage:
    python tools/reproducibility.py measure    # about 1 minute of one core; then render
    python tools/reproducibility.py render
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "docs" / "data"
PAGE = ROOT / "docs" / "reproducibility.md"
CHECKPOINTS = (1, 2, 5, 10, 20, 50)  # epochs at which the weights are compared
RUNS = (  # name, torch threads, dtype, the compiled path, compared against
    ("1 thread", 1, "float32", True, None),
    ("1 thread, again", 1, "float32", True, "1 thread"),
    ("2 threads", 2, "float32", True, "1 thread"),
    ("float64", 1, "float64", True, "1 thread"),
    ("torch path, 1 thread", 1, "float32", False, "1 thread"),
    ("torch path, 2 threads", 2, "float32", False, "torch path, 1 thread"),
)


@contextlib.contextmanager
def _path(compiled: bool) -> Iterator[None]:
    """While open, MLPField's steps take the compiled kernels or (False) the torch path."""
    from pyanode.torch import _compiled

    before = os.environ.get(_compiled.ENV_SWITCH)
    os.environ[_compiled.ENV_SWITCH] = "1" if compiled else "0"
    _compiled.kernels.cache_clear()
    try:
        yield
    finally:
        if before is None:
            del os.environ[_compiled.ENV_SWITCH]
        else:
            os.environ[_compiled.ENV_SWITCH] = before
        _compiled.kernels.cache_clear()


def _train(threads: int, dtype: str) -> dict[str, Any]:
    """The trial's weights after the first step and at `CHECKPOINTS`, and its test accuracy."""
    from pyanode.backends import TorchBackend
    from pyanode.experiments.runner import load_data
    from pyanode.experiments.table1 import Table1Config, trials
    from pyanode.torch import Trainer, flat_parameters

    config = Table1Config(epochs=max(CHECKPOINTS), threads=threads, nets=("anode",))
    spec = trials(config)[0].spec  # the main job's ANODE trial, seed 0
    train, (train_data, test_data) = spec.train, load_data(spec)
    train = train.replace(dtype=dtype)  # float64: the float32 initial weights, cast exactly
    model = TorchBackend().build(spec.model, spec.solver, train, train_data)
    trainer = Trainer(model, train, train_data, test_data)
    record: dict[str, Any] = {"weights": {}, "test_acc": {}}

    def on_batch(t: Trainer) -> None:
        if t.epoch == 0 and t.batch == 1:
            record["weights"]["step 1"] = flat_parameters(t.model).astype("float64")

    def on_epoch(t: Trainer, row: dict[str, Any]) -> None:
        if row["epoch"] in CHECKPOINTS:
            record["weights"][f"epoch {row['epoch']}"] = flat_parameters(t.model).astype("float64")
            record["test_acc"][f"epoch {row['epoch']}"] = row["test_acc"]

    trainer.run(on_batch=on_batch, on_epoch=on_epoch, progress=False)
    return record


def measure() -> dict[str, Any]:
    import numpy as np
    import torch

    runs = {}
    for name, threads, dtype, compiled, _ in RUNS:
        with _path(compiled):
            runs[name] = _train(threads, dtype)
    rows = []
    for name, _, _, _, against in RUNS[1:]:
        reference = runs[against]
        for point in reference["weights"]:
            a, b = reference["weights"][point], runs[name]["weights"][point]
            row = {
                "run": name,
                "against": against,
                "at": point,
                "max_weight_diff": float(np.abs(a - b).max()),
                "max_weight": float(np.abs(a).max()),
            }
            if point in reference["test_acc"]:
                row["test_acc_reference"] = reference["test_acc"][point]
                row["test_acc"] = runs[name]["test_acc"][point]
            rows.append(row)
    meta = {
        "trial": "Table 1 ANODE, seed 0: three spheres, 1024 points, batch 96, Adam lr 1e-3, "
        "dp5 rtol = atol = 1e-3, backprop",
        "command": "python tools/reproducibility.py measure",
        "machine": cpu_name(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "blas": _blas(),
    }
    return {"meta": meta, "rows": rows}


def cpu_name() -> str:
    """The CPU's model name (`pyanode.experiments.report.cpu_model`; imported here, so that
    `render` runs without pyanode on the path)."""
    from pyanode.experiments.report import cpu_model

    return cpu_model()


def _blas() -> str:
    import torch

    config = torch.__config__.show()
    found = re.search(r"BLAS_INFO=(\w+)", config)
    isa = re.search(r"CPU capability usage: (\w+)", config)
    return f"{found.group(1) if found else 'unknown'}, {isa.group(1) if isa else 'unknown ISA'}"


# -- the page ----------------------------------------------------------------------------------
def thread_table(data: dict[str, Any]) -> str:
    """Markdown: per run and checkpoint, the largest weight difference and the test accuracies
    (one line for a run equal to the reference at every checkpoint)."""
    lines = [
        "| run | against | at | max abs weight difference | relative | test acc | "
        "test acc (against) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for run in dict.fromkeys(row["run"] for row in data["rows"]):
        rows = [row for row in data["rows"] if row["run"] == run]
        if all(row["max_weight_diff"] == 0 for row in rows):
            span = f"{rows[0]['at']} to {rows[-1]['at']}"
            lines.append(
                f"| {run} | {rows[0]['against']} | every checkpoint, {span} | 0 | 0 | the same | |"
            )
            continue
        for row in rows:
            acc = f"{100 * row['test_acc']:.1f}%" if "test_acc" in row else ""
            ref = f"{100 * row['test_acc_reference']:.1f}%" if "test_acc" in row else ""
            lines.append(
                f"| {run} | {row['against']} | {row['at']} | {row['max_weight_diff']:.3g} | "
                f"{row['max_weight_diff'] / row['max_weight']:.2g} | {acc} | {ref} |"
            )
    meta = data["meta"]
    lines.append(
        f"\n{meta['trial']}; measured on {meta['machine']} ({meta['blas']}), torch "
        f"{meta['torch']}, numpy {meta['numpy']}, Python {meta['python']}; `{meta['command']}`."
    )
    return "\n".join(lines)


def seed_group_table(data: dict[str, Any]) -> str:
    """Markdown: each claim's statistic against its bound, per run the values on the seed
    groups (in the order 0-2 / 3-5 / 6-8)."""
    rows = data["rows"]
    runs = list(dict.fromkeys(r["run"] for r in rows))
    groups = list(dict.fromkeys(r["seeds"] for r in rows))
    lines = [
        "| test | statistic | bound | " + " | ".join(runs) + " |",
        "|---|---|---|" + "---:|" * len(runs),
    ]
    values = {(r["claim"], r["statistic"], r["bound"], r["run"], r["seeds"]): r for r in rows}
    for key in dict.fromkeys((r["claim"], r["statistic"], r["bound"]) for r in rows):
        cells = []
        for run in runs:
            found = [values.get((*key, run, g)) for g in groups]
            cells.append(
                " / ".join(
                    "" if r is None else f"{r['value']:.4g}" + ("" if r["holds"] else " **fails**")
                    for r in found
                )
            )
        lines.append(f"| {key[0]} | `{key[1]}` | {key[2]} | " + " | ".join(cells) + " |")
    lines.append(
        f"\nSeeds {' / '.join(groups)} in each cell; measured on {data['meta']['cpu']}, torch "
        f"{data['meta']['torch']}: `python tools/seed_groups.py` with `--threads 1`, "
        "`--threads 2` and `--nudge` (thr.: torch threads; nudged: every initial weight moved "
        "by one float step)."
    )
    return "\n".join(lines)


BLOCKS = {
    "threads": ("reproducibility.json", thread_table),
    "seed-groups": ("seed_groups.json", seed_group_table),
}


def rendered(page: str) -> str:
    """`page` with every generated block rewritten from the stored data."""
    for name, (file, render_block) in BLOCKS.items():
        data = json.loads((DATA / file).read_text())
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(\n<!-- end:{name} -->)", re.S)
        if not pattern.search(page):
            raise ValueError(f"{PAGE.name} has no block <!-- generated:{name} -->")
        page = pattern.sub(lambda m, d=data, f=render_block: m.group(1) + f(d) + m.group(2), page)
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("measure", "render"))
    args = parser.parse_args(argv)
    if args.action == "measure":
        sys.path.insert(0, str(ROOT))
        DATA.mkdir(parents=True, exist_ok=True)
        (DATA / "reproducibility.json").write_text(json.dumps(measure(), indent=1) + "\n")
    PAGE.write_text(rendered(PAGE.read_text()))
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
