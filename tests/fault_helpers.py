"""What test_batch ships to worker processes: `Record.arrays` functions that kill the process
running them, as the out-of-memory killer does (SIGKILL: no cleanup, no flush). They are named by
module and function in a trial, so they live in a module that workers import (tests/ is on the
path the pool's and Dask's workers inherit)."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def kill_own_process(fitted, train, test):
    """Every time: a trial that always kills its worker."""
    os.kill(os.getpid(), signal.SIGKILL)


def kill_own_process_once(fitted, train, test, *, marker: str):
    """The first time only (the marker file remembers): a worker killed once mid-trial."""
    path = Path(marker)
    if not path.exists():
        path.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return {}
