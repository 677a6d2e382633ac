"""The `pyanode` command line: help without torch, options generated from the dataclasses (every
default shown, values read back as given), and every script under scripts/ honouring --help."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from pyanode.cli import COMMANDS, build_parser, main
from pyanode.cli._options import add_options, given
from pyanode.cli._trials import add_spec_options, spec_from_args
from pyanode.specs import ModelSpec, RunSpec, SolverSpec, TrainSpec

REPO = Path(__file__).resolve().parents[1]

BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is made unimportable by the test")
sys.meta_path.insert(0, _NoTorch())
sys.path.insert(0, {repo!r})
from pyanode.cli import main
try:
    main({argv!r})
except SystemExit as exit:
    print("modules:", sorted(m for m in sys.modules if m.startswith("pyanode")), file=sys.stderr)
    raise
"""


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["reproduce", "--help"], ["study", "--help"], ["collect", "--help"]],
    ids=lambda argv: " ".join(argv),
)
def test_help_runs_with_torch_made_unimportable(argv):
    """`pyanode --help` (and the lists of reproductions and studies) import no torch: a command's
    modules load only when it runs."""
    code = BLOCK_TORCH.format(repo=str(REPO), argv=argv)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: pyanode")
    if argv == ["--help"]:
        assert all(name in proc.stdout for name in COMMANDS)
        assert "experiments" not in proc.stderr and "backends" not in proc.stderr
    if argv[0] == "reproduce":
        assert "table1" in proc.stdout and "dupont-images" in proc.stdout


def test_a_command_imports_its_modules_only_when_it_runs():
    """Building the parser for `collect` does not import the training stack."""
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); from pyanode.cli import build_parser; "
        "build_parser(['collect', 'x']); print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


def test_every_spec_field_is_an_option_with_its_default_shown():
    parser = build_parser(["train"])
    text = parser._subparsers._group_actions[0].choices["train"].format_help()
    for cls in (RunSpec, ModelSpec, SolverSpec, TrainSpec):
        for f in dataclasses.fields(cls):
            if "help" not in f.metadata:
                continue  # the sections themselves
            option = "--" + f.metadata.get("option", f.name.replace("_", "-"))
            assert option in text, option
    assert "(default: dp5)" in text and "(default: 0.001)" in text  # solver, lr
    assert "(default: torch's choice)" in text  # a None default with its meaning


def test_options_read_back_as_given_and_unset_ones_keep_the_base():
    import argparse

    parser = argparse.ArgumentParser()
    add_spec_options(parser)
    args = parser.parse_args(
        ["--model", "anode", "--augment-dim", "2", "--solver", "dopri5", "--no-time-dependent",
         "--dataset-arg", "n=300", "--dataset-arg", "seed=4", "--test-slice", "0,0.5",
         "--test-fraction", "0", "--lr", "1e-2"]
    )  # fmt: skip
    base = RunSpec(dataset_kwargs={"noise": 0.1}, train=TrainSpec(epochs=7))
    spec = spec_from_args(args, base)
    assert spec.model == ModelSpec(kind="anode", augment_dim=2, time_dependent=False)
    assert spec.solver.solver == "dp5"  # the alias, stored by its canonical name
    assert spec.dataset_kwargs == {"noise": 0.1, "n": 300, "seed": 4}  # added to the base's
    assert spec.test_slice == (0.0, 0.5) and spec.test_fraction == 0
    assert spec.train == TrainSpec(epochs=7, lr=1e-2)  # epochs kept from the base
    assert given(parser.parse_args([]), TrainSpec, prefix="train.") == {}


def test_a_tuple_option_takes_spaces_or_commas():
    import argparse

    from pyanode.experiments.table1 import Table1Config

    parser = argparse.ArgumentParser()
    add_options(parser, Table1Config)
    assert given(parser.parse_args(["--nets", "resnet,node", "anode"]), Table1Config) == {
        "nets": ("resnet", "node", "anode")
    }


def test_unknown_options_and_bad_values_exit_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:  # no abbreviations: --epoch is not --epochs
        main(["reproduce", "table1", "--epoch", "3", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --epoch" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset-arg", "n"])
    assert exit_info.value.code == 2
    assert "'n' must be KEY=VALUE" in capsys.readouterr().err


def test_every_script_honours_help(tmp_path):
    """Each script prints its usage and exits 0 without training or writing anything."""
    scripts = sorted(str(p) for p in (REPO / "scripts").glob("*.py"))
    code = f"""
import runpy, sys
sys.path.insert(0, {str(REPO)!r})
for script in {scripts!r}:
    sys.argv = [script, "--help"]
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit:
        print("EXIT", script, exit.code)
    else:
        print("EXIT", script, "none")
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    exits = [line.split() for line in proc.stdout.splitlines() if line.startswith("EXIT ")]
    assert [e[1] for e in exits] == scripts and {e[2] for e in exits} == {"0"}
    assert proc.stdout.count("usage: ") == len(scripts)
    assert list(tmp_path.iterdir()) == []  # no results folder
