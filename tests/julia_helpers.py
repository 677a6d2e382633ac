"""Test helpers for the Julia bridge: stand-ins for juliacall's values, the flat-order
conversions in numpy, a Julia worker process for the conformance tests, and the CUDA gate.

Nothing here is used by the package itself.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import pyanode
from pyanode._errors import JuliaUnavailable
from pyanode.julia.backend import Shapes, _check_shape, parameter_count

# --- juliacall's values ------------------------------------------------------------------------
#
# What a PyANODE exception looks like from Python (PythonCall 0.9.34, src/JlWrap/raw.jl, any.jl,
# base.jl and pysrc/juliacall/__init__.py): `JuliaError.exception` is a `RawValue`. A RawValue's
# attributes and call results are RawValues again; it has no `__float__`, `__int__` or
# `__index__`, `__str__` is Julia's `print`, `__bool__` accepts only a Julia `Bool`, and
# `_jl_any()` gives the `AnyValue` of the same object. An AnyValue's attributes and call results
# are converted as `Py(x)` converts: `nothing`, `Bool`, strings, integers, floats and tuples
# become Python values, anything else another AnyValue. Arguments of a call are converted back
# to the Julia values they wrap.


def julia_name(name: str) -> str:
    """juliacall's spelling of a Julia name: a trailing `_b` is `!` (`_bb` is `!!`)."""
    return re.sub(r"_(b+)$", lambda match: "!" * len(match.group(1)), name)


def unwrap(value: Any) -> Any:
    """The Julia object a juliacall value wraps (what a Julia call receives)."""
    return value._jl_value if isinstance(value, _Value) else value


class _Value:
    """What RawValue and AnyValue share: a Julia object, reached by attribute and call."""

    __slots__ = ("_jl_value",)

    def __init__(self, value: Any):
        object.__setattr__(self, "_jl_value", value)

    def _result(self, value: Any) -> Any:  # how a Julia result comes back
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._result(getattr(self._jl_value, julia_name(name)))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        values = {key: unwrap(value) for key, value in kwargs.items()}
        return self._result(self._jl_value(*map(unwrap, args), **values))

    def __str__(self) -> str:
        return str(self._jl_value)


class RawValue(_Value):
    """A stand-in for `juliacall.RawValue` around a Python object playing a Julia object."""

    __slots__ = ()

    def _result(self, value: Any) -> RawValue:
        return RawValue(value)

    def __repr__(self) -> str:
        return f"<jl {self._jl_value!r}>"

    def __bool__(self) -> bool:
        if isinstance(self._jl_value, bool):
            return self._jl_value
        raise TypeError("Only Julia 'Bool' can be tested for truthyness")

    def _jl_any(self) -> AnyValue:
        return AnyValue(self._jl_value)


def to_python(value: Any) -> Any:
    """What `Py(x)` gives for a Julia object `x` (a Python list or numpy array plays a Julia
    array, a dict a Julia `Dict`)."""
    if value is None or isinstance(value, bool | str | int | float):
        return value
    if isinstance(value, tuple):
        return tuple(to_python(item) for item in value)
    if isinstance(value, list | np.ndarray):
        return ArrayValue(value)
    if isinstance(value, dict):
        return DictValue(value)
    return AnyValue(value)


class AnyValue(_Value):
    """A stand-in for `juliacall.AnyValue`: attributes and results convert to Python values."""

    __slots__ = ()

    def _result(self, value: Any) -> Any:
        return to_python(value)

    def __repr__(self) -> str:
        return f"Julia: {self._jl_value!r}"


class ArrayValue(AnyValue):
    """A stand-in for `juliacall.ArrayValue`: numpy reads it through the array interface."""

    __slots__ = ()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self._jl_value, dtype=dtype)

    def __len__(self) -> int:
        return len(self._jl_value)


class DictValue(AnyValue):
    """A stand-in for `juliacall.DictValue`: a mapping whose keys and values convert."""

    __slots__ = ()

    def items(self) -> list[tuple[Any, Any]]:
        return [(to_python(key), to_python(value)) for key, value in self._jl_value.items()]


class JuliaError(Exception):
    """A stand-in for `juliacall.JuliaError`: `exception` is the Julia exception as a
    `RawValue`, as PythonCall raises it."""

    def __init__(self, exception: Any, backtrace: Any = None):
        super().__init__(RawValue(exception), backtrace)

    @property
    def exception(self) -> RawValue:
        return self.args[0]


# --- the flat parameter order in numpy --------------------------------------------------------


def _checked(vector: np.ndarray, shapes: Shapes) -> np.ndarray:
    flat = np.asarray(vector)
    n = parameter_count(shapes)
    if flat.ndim != 1 or flat.shape[0] != n:
        raise ValueError(
            f"parameter vector must have shape ({n},) for layers with weights {list(shapes)}, "
            f"got {flat.shape}"
        )
    return flat


def _convert(vector: np.ndarray, shapes: Shapes, *, to_julia: bool) -> np.ndarray:
    flat = _checked(vector, shapes)
    out = np.empty_like(flat)
    offset = 0
    for shape in map(_check_shape, shapes):
        size = int(np.prod(shape))
        segment = flat[offset : offset + size]
        # torch (..., out, in) row-major <-> Julia's (out, in, ...) column-major: each (out, in)
        # matrix is transposed in place, the leading K (if any) stays the slowest index
        *lead, rows, cols = shape
        source = (*lead, rows, cols) if to_julia else (*lead, cols, rows)
        out[offset : offset + size] = segment.reshape(source).swapaxes(-1, -2).reshape(-1)
        offset += size
        n_bias = int(np.prod(shape[:-1]))  # (out,) or (K, out): the same in both orders
        out[offset : offset + n_bias] = flat[offset : offset + n_bias]
        offset += n_bias
    return out


def torch_to_julia(vector: np.ndarray, shapes: Shapes) -> np.ndarray:
    """The shared (torch, row-major) order -> Julia's memory order (column-major weights)."""
    return _convert(vector, shapes, to_julia=True)


def julia_to_torch(vector: np.ndarray, shapes: Shapes) -> np.ndarray:
    """Julia's memory order (column-major weights) -> the shared (torch, row-major) order."""
    return _convert(vector, shapes, to_julia=False)


def split_layers(vector: np.ndarray, shapes: Shapes) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (weight, bias) of every layer from a vector in the shared order, in torch's shapes:
    (out, in) and (out,), or (K, out, in) and (K, out)."""
    flat = _checked(vector, shapes)
    layers = []
    offset = 0
    for shape in map(_check_shape, shapes):
        size = int(np.prod(shape))
        weight = flat[offset : offset + size].reshape(shape)
        offset += size
        n_bias = int(np.prod(shape[:-1]))
        layers.append((weight, flat[offset : offset + n_bias].reshape(shape[:-1])))
        offset += n_bias
    return layers


# --- a Julia worker process -------------------------------------------------------------------

WORKER = Path(__file__).with_name("julia_worker.py")
REPLY_FD = "PYANODE_TEST_REPLY_FD"  # the pipe the worker answers on (Julia may print to stdout)


class JuliaWorker:
    """One Python process that started Julia before anything else (this process imported torch,
    and juliacall must come first), kept for many requests so that Julia starts and compiles
    once. See tests/julia_worker.py for the requests.

    Arguments:
        start_timeout: seconds to wait for Julia to start and PyANODE to load.
    """

    def __init__(self, start_timeout: float = 1800.0):
        self.folder = tempfile.TemporaryDirectory(prefix="pyanode-julia-worker-")
        self.log = Path(self.folder.name) / "worker.log"
        read_end, write_end = os.pipe()
        # the worker is a script in tests/: it imports pyanode from where this process did
        root = str(Path(pyanode.__file__).resolve().parents[1])
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(WORKER)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                pass_fds=(write_end,),
                env=dict(os.environ, PYTHONPATH=path, **{REPLY_FD: str(write_end)}),
            )
        os.close(write_end)
        self.replies: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(read_end,), daemon=True).start()
        self.n_requests = 0
        first = self._reply(start_timeout, "start Julia")
        if not first.get("ok"):
            self.close()
            raise JuliaUnavailable(f"the Julia worker could not start: {first['error']}")
        self.julia = first["julia"]

    def _read(self, fd: int) -> None:
        with os.fdopen(fd) as replies:
            for line in replies:
                self.replies.put(line)
        self.replies.put(None)

    def _tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines()[-30:]
        return "\n".join(lines)

    def _reply(self, timeout: float, doing: str) -> dict[str, Any]:
        try:
            line = self.replies.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise TimeoutError(
                f"the Julia worker did not {doing} within {timeout:g} s; last output:\n"
                + self._tail()
            ) from None
        if line is None:
            code = self.process.wait()
            raise RuntimeError(
                f"the Julia worker exited (status {code}) instead of answering; last output:\n"
                + self._tail()
            )
        return json.loads(line)

    def run(
        self, request: dict[str, Any], arrays: dict[str, np.ndarray], timeout: float = 1800.0
    ) -> dict[str, Any]:
        """Run `request` on the arrays; returns the results (arrays, and `history`).

        Raises:
            RuntimeError: with the Julia error when the request failed.
        """
        self.n_requests += 1
        inbox = Path(self.folder.name) / f"in-{self.n_requests}.npz"
        outbox = Path(self.folder.name) / f"out-{self.n_requests}.npz"
        np.savez(inbox, **arrays)
        assert self.process.stdin is not None
        message = {"request": request, "arrays": str(inbox), "results": str(outbox)}
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        reply = self._reply(timeout, f"answer request {self.n_requests}")
        if not reply.get("ok"):
            raise RuntimeError(f"the Julia worker failed: {reply['error']}")
        with np.load(outbox, allow_pickle=False) as stored:
            results: dict[str, Any] = {key: stored[key] for key in stored.files}
        if "history" in results:
            results["history"] = json.loads(str(results["history"]))
        return results

    def close(self) -> None:
        """Stop the worker (closing its input ends it) and remove its files."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.folder.cleanup()


# --- CUDA ---------------------------------------------------------------------------------------


def nvidia_gpus() -> list[str]:
    """The GPUs `nvidia-smi -L` lists (none without the NVIDIA driver)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        done = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if done.returncode != 0:
        return []
    return [line for line in done.stdout.splitlines() if line.startswith("GPU ")]


def cuda_skip_reason(state: Any, gpus: Sequence[str] | None = None) -> str | None:
    """Why a Julia CUDA test cannot run here (None when it can): it needs the backend usable,
    CUDA.jl and cuDNN.jl installed (`pyanode julia install --gpu`) and an NVIDIA GPU."""
    if not state.usable:
        return state.reason
    if not state.gpu:
        return "CUDA.jl and cuDNN.jl are not installed: run `pyanode julia install --gpu`"
    if not (nvidia_gpus() if gpus is None else gpus):
        return "no NVIDIA GPU found (`nvidia-smi -L` lists none)"
    return None
