"""Shared fixtures: float64 where a test asks for it, one thread for reproducible timings, a
pyanode command killed mid-run, and the trainings a test counts or forbids (stored results read
back, not trained again)."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def float64():
    """Run the test with torch's default dtype float64, restoring it afterwards."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch.float64
    torch.set_default_dtype(before)


_KILLED_CLI = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from pyanode.torch._trainer import Trainer
step, count = Trainer.step, 0
def killing_step(self):
    global count
    count += 1
    if count == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)
    step(self)
Trainer.step = killing_step
from pyanode.cli import main
sys.exit(main({argv!r}))
"""


@pytest.fixture
def cli_killed_at():
    """`cli_killed_at(argv, batch)`: run `pyanode argv` in a fresh interpreter that SIGKILLs
    itself just before its `batch`-th training batch (no cleanup, no flush: as `kill -9` or the
    OOM killer would); asserts that it was killed."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[1])

    def run(argv: list[str], batch: int) -> None:
        code = _KILLED_CLI.format(repo=repo, kill_at=batch, argv=[str(a) for a in argv])
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr

    return run


@pytest.fixture
def forbid_training(monkeypatch):
    """`forbid_training()`: from then on, a trainer run fails the test (what is stored must be
    read back, not trained again)."""
    from pyanode.torch import Trainer

    def trained_again(*args, **kwargs):
        raise AssertionError("trained again: a stored result must be read back")

    return lambda: monkeypatch.setattr(Trainer, "run", trained_again)


@pytest.fixture
def count_trainings(monkeypatch):
    """`count_trainings()`: a list that gets one entry per trainer run from then on (the trials
    actually trained)."""
    from pyanode.torch import Trainer

    def start() -> list:
        runs: list = []
        original = Trainer.run

        def run(trainer, *args, **kwargs):
            runs.append(trainer)
            return original(trainer, *args, **kwargs)

        monkeypatch.setattr(Trainer, "run", run)
        return runs

    return start
