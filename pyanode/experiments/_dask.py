"""What pyanode adds to a Dask cluster: each nanny reports how its worker process ended.

Dask retries a task whose worker died and, past its `allowed-failures`, gives up with
`KilledWorker`, but the signal that killed the worker (SIGKILL from the out-of-memory killer,
say) is only in the nanny's log. `ReportExits`, a nanny plugin, sends each worker's exit code to
the scheduler's event log, so that a trial whose workers keep dying is recorded with the signal,
as on the local pool. It hooks the nanny's own exit callback (not a public API of Dask): where
that callback is missing, nothing is reported and the signal stays unknown.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from distributed.diagnostics.plugin import NannyPlugin

TOPIC = "pyanode-worker-exit"


class ReportExits(NannyPlugin):
    """Log `{"worker": address, "exitcode": code}` under `TOPIC` when a worker process ends."""

    name = "pyanode-report-exits"
    idempotent = True

    def setup(self, nanny: Any) -> None:
        original = getattr(nanny, "_on_worker_exit_sync", None)
        if original is None:
            return

        def on_exit(exitcode: int) -> None:
            with contextlib.suppress(Exception):
                address = getattr(nanny.process, "worker_address", None)
                nanny.log_event(TOPIC, {"worker": address, "exitcode": exitcode})
            original(exitcode)

        nanny._on_worker_exit_sync = on_exit  # the next worker process gets it
        if getattr(nanny, "process", None) is not None:
            nanny.process.on_exit = on_exit  # and the running one


def exit_code(client: Any, worker: str, wait: float = 3.0) -> int | None:
    """The exit code a nanny reported for the worker at `worker` (waiting up to `wait` seconds
    for the report, which travels apart from the task's failure), or None."""
    deadline = time.monotonic() + wait
    while True:
        with contextlib.suppress(Exception):
            for _, event in reversed(client.get_events(TOPIC)):
                if isinstance(event, dict) and event.get("worker") == worker:
                    return event.get("exitcode")
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)
