"""`pyanode reproduce table1`: a reduced run writes the table (CSV, Markdown) and both figures; the
parameter matching of every net of the paper's table; the table's format."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from matplotlib.image import imread

from pyanode import SpecError
from pyanode.cli import main as cli_main
from pyanode.experiments import table1
from pyanode.experiments.store import read_batch
from pyanode.experiments.table1 import (
    CSV_FIELDS,
    HEADER,
    NET_KINDS,
    NETS,
    Row,
    Table1Config,
    markdown_table,
    text_table,
)
from pyanode.torch import match_width


def test_reduced_run_writes_table_and_figures(tmp_path, capsys):
    out = tmp_path / "t1"
    argv = ["reproduce", "table1", "--epochs", "1", "--nets", "resnet,data-controlled"]
    argv += ["--n-points", "96", "--grid-size", "24", "--out", str(out)]
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    assert "ResNet" in printed and "Data Controlled" in printed and "Vanilla NODE" not in printed
    assert "99.0" in printed and "99.3" in printed  # the paper's test accuracies, beside ours

    with open(out / "table1.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["kind"] for r in rows] == ["resnet", "data-controlled"]
    assert tuple(rows[0]) == CSV_FIELDS
    for r in rows:
        assert abs(int(r["n_parameters"]) - 1300) <= 65
        assert 0.0 <= float(r["train_acc_mean"]) <= 1.0 and 0.0 <= float(r["test_acc_mean"]) <= 1.0
        assert float(r["seconds_per_epoch_mean"]) > 0 and r["seeds"] == "1"
    assert float(rows[1]["nfe_forward_mean"]) >= 7  # dp5: at least one step
    assert rows[0]["paper_hidden"] == "33" and rows[1]["paper_test_acc"] == "0.993"

    md = (out / "table1.md").read_text().splitlines()
    table_lines = [line for line in md if line.startswith("|")]
    assert len(table_lines) == 2 + 2 and table_lines[0].count("paper") == 5
    assert "96 training and 96 test points" in md[0]

    for name in ("fig1_dataset", "fig2_decision_boundaries"):
        image = imread(out / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
        assert image[..., :3].std() > 0.05  # not blank
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    with np.load(out / "boundaries.npz") as npz:
        assert npz["resnet"].shape == (24, 24) and set(np.unique(npz["resnet"])) <= {0, 1, 2}
    (resnet,) = read_batch(out, net="resnet")
    # seed 0 trains on one draw and tests on an independent one (seed + 1000)
    assert resnet.spec.dataset_kwargs == {"n": 96, "seed": 0}
    assert resnet.spec.test_kwargs == {"seed": 1000} and resnet.spec.test_fraction == 0
    assert resnet.result["n_test"] == 96 and resnet.arrays["boundary"].shape == (24, 24)


def test_every_net_of_table1_is_matched_to_the_budget():
    widths = {}
    for net in NETS:
        width, n = match_width(net.spec, 2, 3, 1300, 0.05)
        assert 1235 <= n <= 1365, (net.name, width, n)
        widths[net.spec.kind] = width
    assert widths["resnet"] == table1.paper["resnet"].hidden == 33
    assert widths["chebyshev"] == table1.paper["chebyshev"].hidden == 15
    assert all(widths[k] < widths["node"] for k in ("chebyshev", "fourier", "stacked"))


def test_paper_numbers_and_nets():
    assert tuple(table1.paper) == NET_KINDS
    assert table1.paper["node"].test_acc == 0.984 and table1.paper["stacked"].hidden == 14
    assert table1.paper["adaptive-depth"].test_acc is None
    activations = {net.spec.kind: net.spec.activation for net in NETS}
    assert {k for k, a in activations.items() if a == "tanh"} == {"chebyshev", "fourier", "stacked"}


def test_table_format():
    rows = [
        Row("ResNet", "resnet", "relu", 33, 1298, [0.97, 0.99], [0.98, 1.0], [0.5, 0.7], [0, 0]),
        Row("Adaptive depth", "adaptive-depth", "relu", 20, 1301, [0.9], [0.91], [1.234], [26.0]),
    ]
    text = text_table(rows).splitlines()
    assert text[0].split() == [w for h in HEADER for w in h.split()]
    assert "98.0 ± 1.4" in text[2] and "99.0 ± 1.4" in text[2] and "0.60 ± 0.14" in text[2]
    assert text[2].split()[-2:] == ["~10", "—"]  # the ResNet has no NFE
    assert text[3].split()[-2:] == ["—", "26.0"] and "91.0" in text[3]
    md = markdown_table(rows).splitlines()
    assert md[2].startswith("| ResNet | 33 | 33 | 1298 | 1.3k | 98.0 ± 1.4 | 98.7 |")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"nets": ("node", "cnn")}, "nets='node,cnn' must be a non-empty subset of: resnet"),
        ({"seeds": 0}, "seeds must be an integer >= 1, got 0"),
        ({"gradient": "forward"}, "solver.gradient='forward' is not known"),
        ({"epochs": -1}, "train.epochs must be an integer >= 0, got -1"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(SpecError, match=match):
        Table1Config(**kwargs)
