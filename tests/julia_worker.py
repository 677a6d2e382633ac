"""The Julia worker of the conformance tests (started by `julia_helpers.JuliaWorker`).

It starts Julia before anything imports torch (juliacall must come first), answers one JSON line
on the file descriptor PYANODE_TEST_REPLY_FD (`{"ok": true, "julia": VERSION}` or `{"ok": false,
"error": ...}`), then serves requests read from stdin, one JSON line each, until stdin closes:

    {"request": {...}, "arrays": IN.npz, "results": OUT.npz}  ->  {"ok": true} | {"ok": false}

A request holds `model`, `solver`, `train` (spec dicts), `data` (`task`, `n_classes` for
classification) and `ops`, run in order on one new model:

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
import sys
import traceback
from typing import Any


def answer(reply: Any, message: dict[str, Any]) -> None:
    reply.write(json.dumps(message) + "\n")
    reply.flush()


def serve(request: dict[str, Any], arrays: dict[str, Any]) -> dict[str, Any]:
    """Run one request's ops on a new model; returns the results to store."""
    import numpy as np

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
        elif name in ("predict", "logits", "features"):
            results[key] = getattr(fitted, name)(x)
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
    return results


def main() -> int:
    reply = os.fdopen(int(os.environ["PYANODE_TEST_REPLY_FD"]), "w")
    # Julia first, before anything imports torch or matplotlib.
    from pyanode._errors import JuliaUnavailable
    from pyanode.julia import load

    try:
        session = load()
    except JuliaUnavailable as err:
        answer(reply, {"ok": False, "error": str(err)})
        return 1
    answer(reply, {"ok": True, "julia": session.version})

    import numpy as np

    for line in sys.stdin:
        message = json.loads(line)
        try:
            request = message["request"]
            if request["train"].get("device") == "cuda":
                load(cuda=True)
            with np.load(message["arrays"], allow_pickle=False) as stored:
                arrays = {key: stored[key] for key in stored.files}
            np.savez(message["results"], **serve(request, arrays))
        except Exception as err:  # report it and serve the next request
            answer(reply, {"ok": False, "error": "".join(traceback.format_exception(err))})
        else:
            answer(reply, {"ok": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
