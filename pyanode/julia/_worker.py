"""Run Julia-backend work in a fresh Python process that starts Julia before anything else.

juliacall should be imported before torch; a process that already imported torch (a test run,
a notebook, an experiment comparing both backends) can hand the Julia side to this worker:

    result = run_worker(request, arrays)   # or: python -m pyanode.julia._worker IN.npz OUT.npz

`request` is plain JSON: `model`, `solver`, `train` (spec dicts), `data` (`task`, `n_classes` for
classification) and `ops`, a list of operations run in order on one model:

    {"op": "set_parameters"}            arrays["parameters"]
    {"op": "fit", "epochs": 3}          arrays["x"], ["y"] (and ["x_test"], ["y_test"])
    {"op": "predict"} / {"op": "logits"} / {"op": "features"} / {"op": "forward_nfe"}
    {"op": "trajectories"}              arrays["ts"]
    {"op": "loss_and_gradient"}         arrays["x"], ["y"]
    {"op": "parameters"}

Inputs default to arrays["x"]; each result is stored under the op's name (or its "as").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pyanode._errors import JuliaUnavailable

_REQUEST_KEY = "__request__"


def run_worker(
    request: dict[str, Any], arrays: dict[str, np.ndarray], timeout: float | None = None
) -> dict[str, Any]:
    """Run `request` in a child process; returns its results (arrays, and `history`).

    Raises:
        JuliaUnavailable: if the child fails or times out (with its last output).
    """
    with tempfile.TemporaryDirectory(prefix="pyanode-julia-") as folder:
        inbox, outbox = Path(folder) / "in.npz", Path(folder) / "out.npz"
        np.savez(inbox, **arrays, **{_REQUEST_KEY: np.array(json.dumps(request))})
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pyanode.julia._worker", str(inbox), str(outbox)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=dict(os.environ),
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as err:
            raise JuliaUnavailable(f"the Julia worker timed out after {timeout} s") from err
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise JuliaUnavailable(f"the Julia worker failed (exit {done.returncode}):\n{tail}")
        with np.load(outbox, allow_pickle=False) as stored:
            results: dict[str, Any] = {key: stored[key] for key in stored.files}
    if "history" in results:
        results["history"] = json.loads(str(results["history"]))
    return results


def _serve(inbox: Path, outbox: Path) -> None:
    # Julia first, before anything imports torch or matplotlib.
    from pyanode.julia._load import load

    with np.load(inbox, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    request = json.loads(str(arrays.pop(_REQUEST_KEY)))
    load(cuda=request["train"].get("device") == "cuda")

    from pyanode.data import Dataset
    from pyanode.julia.backend import JuliaBackend
    from pyanode.specs import ModelSpec, SolverSpec, TrainSpec

    model = ModelSpec.from_dict(request["model"])
    solver = SolverSpec.from_dict(request["solver"])
    train = TrainSpec.from_dict(request["train"])
    meta = dict(request.get("data", {}))
    task = meta.pop("task", "classification")

    def dataset(x_key: str, y_key: str) -> Dataset:
        return Dataset(arrays[x_key], arrays[y_key], "worker", task, meta)

    fitted = JuliaBackend().build(model, solver, train, dataset("x", "y"))
    results: dict[str, Any] = {}
    for op in request["ops"]:
        name = op["op"]
        key = op.get("as", name)
        x = arrays[op.get("x", "x")]
        if name == "set_parameters":
            fitted.set_parameters(arrays[op.get("parameters", "parameters")])
        elif name == "fit":
            test = dataset("x_test", "y_test") if "x_test" in arrays else None
            for epoch in range(int(op.get("epochs", train.epochs))):
                fitted.train_epoch(dataset("x", "y"), epoch, test)
            results["history"] = np.array(json.dumps(fitted.history))
        elif name == "predict":
            results[key] = fitted.predict(x)
        elif name == "logits":
            results[key] = fitted.logits(x)
        elif name == "features":
            results[key] = fitted.features(x)
        elif name == "trajectories":
            results[key] = fitted.trajectories(x, arrays[op.get("ts", "ts")])
        elif name == "forward_nfe":
            results[key] = np.array(fitted.forward_nfe(x))
        elif name == "loss_and_gradient":
            out = fitted.loss_and_gradient(x, arrays[op.get("y", "y")])
            for part, value in out.items():
                results[f"{key}.{part}"] = np.asarray(value)
        elif name == "parameters":
            results[key] = fitted.parameters()
        else:
            raise ValueError(
                f"unknown worker op {name!r}; accepted: set_parameters, fit, predict, logits, "
                "features, trajectories, forward_nfe, loss_and_gradient, parameters"
            )
    np.savez(outbox, **results)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m pyanode.julia._worker REQUEST.npz RESULT.npz")
    _serve(Path(sys.argv[1]), Path(sys.argv[2]))
