"""What the fidelity studies share: an append-only store of finished trials, and summaries.

Each study keeps its raw results in one JSON-lines file under results/fidelity/<study>/ (one
line per finished trial, keyed by a string that names the trial's settings); a rerun skips the
keys already there, so an interrupted study resumes. Summaries go to docs/data/fidelity-<study>/
(with the provenance that `pyanode report --rerun` writes beside them).

The scripts import this file as a sibling module (`python scripts/fidelity/<study>.py` puts
this folder first on sys.path).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from pyanode.experiments.store import atomic_write_text

RESULTS = Path("results/fidelity")
SUMMARIES = Path("docs/data")  # each study writes docs/data/fidelity-<study>/
FIGURES = Path("docs/figures/fidelity")

T = TypeVar("T")


def chosen(names: str, by_name: Mapping[str, T]) -> list[T]:
    """The entries of `by_name` named in the comma-separated `names`, in its order."""
    return [by_name[name.strip()] for name in names.split(",") if name.strip()]


def variants_parser(doc: str, names: Sequence[str]) -> argparse.ArgumentParser:
    """A study's command line: its docstring's first paragraph, and `--variants` (a
    comma-separated subset of `names`, all by default)."""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="variants: " + ", ".join(names),
    )
    parser.add_argument("--variants", default=",".join(names), help="comma-separated names")
    return parser


class TrialStore:
    """The finished trials of one study: `results/fidelity/<study>/trials.jsonl`."""

    def __init__(self, study: str, root: Path = RESULTS):
        self.path = Path(root) / study / "trials.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.rows[row["key"]] = row

    def run(self, key: str, train: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The stored row of `key`, or `train()`'s row appended, with its wall seconds and this
        process's CPU seconds (with one torch thread: the time on one core, whatever the load)."""
        if key in self.rows:
            return self.rows[key]
        tic, cpu = time.perf_counter(), time.process_time()
        row = {
            "key": key,
            **train(),
            "wall_seconds": time.perf_counter() - tic,
            "cpu_seconds": time.process_time() - cpu,
        }
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        self.rows[key] = row
        return row


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value, nan for none)."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def pm(values: Iterable[float], scale: float = 1.0, digits: int = 1) -> str:
    """`mean ± std` of `values` times `scale`, as text."""
    m, s = mean_std(values)
    return f"{scale * m:.{digits}f} ± {scale * s:.{digits}f}"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """`rows` (dicts with the same keys) as CSV, floats to 6 significant digits."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    return atomic_write_text(path, buffer.getvalue())


def write_json(path: Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def save_figure(fig: Any, path: Path) -> Path:
    """Lay out, save (110 dpi) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)
